"""Parsers the deployment tests share: Dockerfiles, .dockerignore, absl
durations and flags, the server's --help, PromQL metric names, Prometheus
text exposition. Plain functions, no pytest; test_deploy_checks.py tests them.
"""
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Set, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DEPLOY = os.path.join(REPO_ROOT, "deploy")


# --- absl durations and flags -------------------------------------------------

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|ms|s|m|h)")


def parse_absl_duration(text: str) -> float:
    """Seconds in an absl::ParseDuration string ("5s", "1m30s", "250ms", "0",
    "inf"). Raises ValueError on anything absl would reject."""
    s = text.strip()
    sign = 1.0
    if s[:1] in "+-" and s:
        sign, s = (-1.0 if s[0] == "-" else 1.0), s[1:]
    if s == "0":
        return 0.0
    if s == "inf":
        return sign * float("inf")
    if not s:
        raise ValueError(f"empty duration {text!r}")
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            raise ValueError(f"not an absl duration: {text!r}")
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def flag_values(args: Iterable[str]) -> Dict[str, str]:
    """{'name': 'value'} from --name=value / --name value / --name (boolean)
    arguments; the last occurrence wins, as in absl."""
    out: Dict[str, str] = {}
    args = list(args)
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--") or (a.startswith("-") and len(a) > 1):
            name = a.lstrip("-")
            if "=" in name:
                k, v = name.split("=", 1)
                out[k] = v
            elif i + 1 < len(args) and not args[i + 1].startswith("-"):
                out[name] = args[i + 1]
                i += 1
            else:
                out[name] = "true"
        i += 1
    return out


def split_host_port(address: str) -> Tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


@dataclass
class ServerHelp:
    """What `fusion-server --helpfull` says: every flag and its default."""
    defaults: Dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> Set[str]:
        return set(self.defaults)


# absl wraps help at 80 columns: "; default:" may be split over two lines.
_HELP_FLAG = re.compile(r"--(\w+) \(.*?\);\s+default: (.*?);(?:\s|$)", re.S)


def parse_server_help(text: str) -> ServerHelp:
    help_ = ServerHelp()
    for m in _HELP_FLAG.finditer(text):
        value = m.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        help_.defaults[m.group(1)] = value
    return help_


def server_help(binary: str) -> ServerHelp:
    proc = subprocess.run([binary, "--helpfull"], capture_output=True, text=True,
                          timeout=30)
    help_ = parse_server_help(proc.stdout + proc.stderr)
    if "grpc_address" not in help_.defaults:
        raise RuntimeError(f"{binary} --helpfull lists no --grpc_address:\n"
                           f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return help_


# --- Dockerfiles ----------------------------------------------------------------

@dataclass
class Instruction:
    keyword: str  # upper case
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: Optional[str]
    instructions: List[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> List[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Optional[Instruction]:
        found = self.all(keyword)
        return found[-1] if found else None


@dataclass
class Dockerfile:
    path: str
    global_args: List[Instruction]
    stages: List[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Optional[Stage]:
        return next((s for s in self.stages if s.name == name), None)


def parse_dockerfile(path: str) -> Dockerfile:
    """Instructions with continuation lines joined and comments dropped
    (comment lines inside a continued instruction too, as Docker does)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    logical: List[Tuple[int, str]] = []
    buf, start = [], 0
    for n, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buf):
            continue
        if not buf:
            start = n
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        logical.append((start, " ".join(p for p in buf if p)))
        buf = []
    if buf:
        logical.append((start, " ".join(buf)))

    global_args: List[Instruction] = []
    stages: List[Stage] = []
    for line, text in logical:
        keyword, _, rest = text.partition(" ")
        ins = Instruction(keyword.upper(), rest.strip(), line)
        if ins.keyword == "FROM":
            parts = ins.args.split()
            parts = [p for p in parts if not p.startswith("--platform")]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
        elif not stages:
            global_args.append(ins)
        else:
            stages[-1].instructions.append(ins)
    return Dockerfile(path, global_args, stages)


def exec_form(ins: Optional[Instruction]) -> List[str]:
    """CMD/ENTRYPOINT in JSON (exec) form as a list; [] when absent."""
    if ins is None:
        return []
    value = json.loads(ins.args)
    if not isinstance(value, list):
        raise ValueError(f"line {ins.line}: {ins.keyword} is not a JSON array")
    return value


def apt_installed(stage: Stage) -> List[str]:
    """Package names given to `apt-get install` in the stage's RUNs."""
    out: List[str] = []
    for ins in stage.all("RUN"):
        for segment in re.split(r"&&|;|\|\|", ins.args):
            words = segment.split()
            if "apt-get" not in words or "install" not in words:
                continue
            after = words[words.index("install") + 1:]
            out += [w.strip("'\"") for w in after if not w.startswith("-")]
    return out


def copy_sources(stage: Stage) -> List[str]:
    """Context paths COPY'd into the stage (COPY --from=... excluded)."""
    out: List[str] = []
    for ins in stage.all("COPY"):
        words = ins.args.split()
        if any(w.startswith("--from") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        out += words[:-1]
    return out


def exposed_ports(stage: Stage) -> Set[int]:
    ports: Set[int] = set()
    for ins in stage.all("EXPOSE"):
        for p in ins.args.split():
            ports.add(int(p.split("/")[0]))
    return ports


# --- .dockerignore ----------------------------------------------------------------

def _dockerignore_regex(pattern: str) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            if pattern.startswith("/", i):  # "**/" also matches nothing
                out = out[:-2] + "(?:.*/)?"
                i += 1
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c))
        i += 1
    return re.compile(out + r"\Z")


def dockerignore_excludes(patterns: List[str], path: str) -> bool:
    """Whether `path` (relative to the context) is left out of the build
    context. Docker's rules: a pattern that matches a directory excludes what
    is inside it, `!` re-includes, and the last matching pattern wins."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    excluded = False
    for raw in patterns:
        p = raw.strip()
        if not p or p.startswith("#"):
            continue
        negate = p.startswith("!")
        p = os.path.normpath(p.lstrip("!").strip().strip("/"))
        rx = _dockerignore_regex(p)
        if any(rx.match(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def read_dockerignore(path: str) -> List[str]:
    with open(path, encoding="utf-8") as f:
        return [l.strip() for l in f if l.strip() and not l.strip().startswith("#")]


# --- PromQL -----------------------------------------------------------------------

_PROMQL_KEYWORDS = {
    # aggregation operators and their modifiers
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
    "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio",
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    # binary set operators, modifiers, literals
    "and", "or", "unless", "atan2", "offset", "start", "end", "inf", "nan",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def promql_metric_names(expr: str) -> Set[str]:
    """Metric names an expression selects (identifiers that are neither
    functions, keywords, label names nor inside strings or ranges).
    Also finds the names in {__name__="..."} matchers."""
    names = set(re.findall(r'__name__\s*=\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"', expr))
    s = _STRING.sub('""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)        # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)       # ranges, subqueries
    s = _GROUPING.sub(" ", s)               # by (le), on (job, instance)
    s = re.sub(r"\$\{?\w+\}?", " ", s)      # Grafana variables outside ranges
    for m in _IDENT.finditer(s):
        word = m.group(0)
        following = s[m.end():].lstrip()
        if following.startswith("("):
            continue  # a function call
        if word.lower() in _PROMQL_KEYWORDS:
            continue
        if re.match(r"\d", s[m.start() - 1:m.start()] or " "):
            continue  # the exponent or unit of a number literal
        names.add(word)
    return names


def grafana_expressions(dashboard: dict) -> List[Tuple[str, str]]:
    """(where, PromQL) for every panel target (nested rows included) and every
    query variable (label_values(selector, label) gives its selector)."""
    out: List[Tuple[str, str]] = []

    def panels(items):
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dashboard.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                out.append((f"panel {p.get('title')!r} {t.get('refId')}", t["expr"]))
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = re.fullmatch(r"\s*label_values\((.*?)(?:,\s*\w+)?\)\s*", q, re.S)
        if m:
            q = m.group(1)
        if q.strip():
            out.append((f"variable ${v.get('name')}", q))
    return out


def substitute_grafana_variables(expr: str, values: Dict[str, str]) -> str:
    """Replaces $name, ${name} and [[name]] with values[name]."""
    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in values:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return values[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", repl, expr)


# --- Prometheus text exposition -----------------------------------------------------

def exposition_names(text: str) -> Set[str]:
    """Every sample name (histogram _bucket/_sum/_count included) and family
    name (# TYPE lines) in a /metrics answer."""
    names: Set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def exposition_types(text: str) -> Dict[str, str]:
    return {l.split()[2]: l.split()[3] for l in text.splitlines() if l.startswith("# TYPE ")}


# --- prometheus-adapter ----------------------------------------------------------------

def adapter_exposed_name(rule: dict, series: str) -> Optional[str]:
    """The custom-metric name a rule gives `series` (None when its `matches`
    does not match). Go's ${1}/$1 replacement syntax is converted."""
    name = rule.get("name") or {}
    matches = name.get("matches") or "^(.*)$"
    m = re.search(matches, series)
    if not m:
        return None
    as_ = name.get("as")
    if not as_:
        return m.group(1) if m.groups() else series
    return m.expand(re.sub(r"\$\{?(\d+)\}?", r"\\g<\1>", as_))


def series_query_metric(series_query: str) -> str:
    m = re.match(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", series_query)
    if m:
        return m.group(1)
    m = re.search(r'__name__\s*=\s*"([^"]+)"', series_query)
    if not m:
        raise ValueError(f"no metric name in seriesQuery {series_query!r}")
    return m.group(1)


def expand_adapter_query(metrics_query: str, series: str, label_matchers: str,
                         group_by: str) -> str:
    """A metricsQuery with prometheus-adapter's Go template fields filled in,
    as the adapter does for one request."""
    return (metrics_query.replace("<<.Series>>", series)
            .replace("<<.LabelMatchers>>", label_matchers)
            .replace("<<.GroupBy>>", group_by))
