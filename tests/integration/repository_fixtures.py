"""Fixtures and helpers for test_model_repository.py: repositories built in
tmp dirs, servers with the admin service and the repository poller on, the
fusion-bench load generator run in the background, a Python client loop and
a version-state monitor that run beside it, and metric/RSS readers.

Imported by name from the test module (tests/integration is on sys.path
when pytest collects it; conftest.py puts tests/e2e there for harness).
"""
import contextlib
import importlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
from typing import Dict, List, Optional

import grpc
import pytest
from google.protobuf import text_format

import harness
import small_bundle

BENCH_BIN = os.environ.get(
    "FUSION_BENCH_BIN", os.path.join(harness.REPO_ROOT, "build", "client", "fusion-bench"))
TOL = 1e-4  # probabilities against golden.jsonl, as tests/e2e/test_scoring.py
RPC_TIMEOUT_S = 30
# Waits for state changes (a version loading, unloading): generous, this
# machine has 2 cores and the load generator keeps them busy.
STATE_TIMEOUT_S = 90


# --- stubs for fusion.v1.ModelRepositoryService ------------------------------

class RepoStubs:
    def __init__(self, pb2, pb2_grpc):
        self.pb2 = pb2
        self.pb2_grpc = pb2_grpc


def generate_repository_stubs(stubs) -> RepoStubs:
    """model_repository.proto's modules, compiled next to harness's stubs
    (same out dir, so its import of fusion.v1.scoring_pb2 is the module the
    tests already use) unless harness compiled them already."""
    if getattr(stubs, "model_repository_pb2", None) is not None:
        return RepoStubs(stubs.model_repository_pb2, stubs.model_repository_pb2_grpc)
    proto = os.path.join(harness.PROTO_DIR, "fusion", "v1", "model_repository.proto")
    if not os.path.exists(proto):
        raise harness.HarnessError("missing proto/fusion/v1/model_repository.proto")
    generated = os.path.join(stubs.out_dir, "fusion", "v1", "model_repository_pb2.py")
    if not os.path.exists(generated):
        harness._protoc(["-I", harness.PROTO_DIR, f"--python_out={stubs.out_dir}",
                         f"--grpc_out={stubs.out_dir}",
                         f"--plugin=protoc-gen-grpc={harness.GRPC_PYTHON_PLUGIN}", proto])
    return RepoStubs(importlib.import_module("fusion.v1.model_repository_pb2"),
                     importlib.import_module("fusion.v1.model_repository_pb2_grpc"))


@pytest.fixture(scope="session")
def repo_stubs(stubs):
    return harness.call_or_fail(generate_repository_stubs, stubs)


@pytest.fixture(scope="session")
def moderation_bundle(tmp_path_factory):
    """The small second model, built once (a few seconds); tests copy it."""
    out = str(tmp_path_factory.mktemp("moderation-bundle") / "1")
    small_bundle.build_bundle(out)
    problems = small_bundle.check_bundle(out)
    assert not problems, "small_bundle wrote a bad bundle:\n" + "\n".join(problems)
    return out


class _ObservationSummary:
    """A plugin printing this module's figures in pytest's terminal summary
    (the integration conftest has no summary hook of its own)."""

    def __init__(self):
        self.figures = {}

    def pytest_terminal_summary(self, terminalreporter):
        if self.figures:
            terminalreporter.section("model repository observations")
            for k, v in self.figures.items():
                terminalreporter.write_line(f"{k}: {v}")


@pytest.fixture(scope="module", autouse=True)
def report_observations(request):
    """Collects this module's harness.observe figures for the terminal
    summary, and writes them as JSON to $FUSION_REPOSITORY_OBSERVATIONS when
    set."""
    summary = _ObservationSummary()
    request.config.pluginmanager.register(summary, f"repository-observations-{id(summary)}")
    before = dict(harness.OBSERVATIONS)
    yield
    summary.figures = {k: v for k, v in harness.OBSERVATIONS.items()
                       if k not in before or before[k] is not v}
    path = os.environ.get("FUSION_REPOSITORY_OBSERVATIONS")
    if path and summary.figures:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(summary.figures, f, indent=2, default=str)


# --- repositories --------------------------------------------------------------

def read_config(stubs, bundle: str):
    cfg = stubs.model_config_pb2.ModelConfig()
    with open(os.path.join(bundle, "config.pbtxt"), encoding="utf-8") as f:
        text_format.Parse(f.read(), cfg)
    return cfg


def write_config(bundle: str, cfg) -> None:
    with open(os.path.join(bundle, "config.pbtxt"), "w", encoding="utf-8") as f:
        f.write(text_format.MessageToString(cfg, as_utf8=True))


def make_version(stubs, src: str, dst: str, version: int, *,
                 policy: Optional[str] = None, name: Optional[str] = None) -> str:
    """Copies bundle `src` to `dst` with config.pbtxt saying `version` (and
    `name`, and `policy`: VersionPolicy in text format, e.g.
    'latest { num_versions: 2 }'). Returns dst."""
    shutil.copytree(src, dst)
    cfg = read_config(stubs, dst)
    cfg.version = version
    if name is not None:
        cfg.name = name
    if policy is not None:
        cfg.ClearField("version_policy")
        text_format.Merge(policy, cfg.version_policy)
    write_config(dst, cfg)
    return dst


def add_fusion_version(stubs, repo, version: int, *, policy: Optional[str] = None) -> str:
    """repo/fusion/<version>: the bundled model with its config renumbered."""
    return make_version(stubs, harness.bundle_dir(), os.path.join(str(repo), "fusion",
                                                                  str(version)),
                        version, policy=policy)


def load_golden_file(path: str) -> List[harness.Golden]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                out.append(harness.Golden(
                    request_id=str(d["request_id"]), text=d["text"],
                    features={k: float(v) for k, v in d["features"].items()},
                    feature_vector=[float(v) for v in d["feature_vector"]],
                    tokens=list(d["tokens"]), token_ids=[int(t) for t in d["token_ids"]],
                    probabilities=[float(p) for p in d["probabilities"]],
                    score=float(d["score"]), text_to_features=d["text_to_features"],
                    features_to_text=d["features_to_text"], raw=d))
    return out


# --- a server with the admin service ------------------------------------------

class Serving:
    """A running server plus channels and stubs to it."""

    def __init__(self, srv, stubs, repo_stubs, admin_address):
        self.srv = srv
        self.pid = srv.proc.pid
        self.stubs = stubs
        self.pb = stubs.scoring_pb2
        self.admin_pb = repo_stubs.pb2 if repo_stubs else None
        self.admin_address = admin_address
        self.channel = grpc.insecure_channel(srv.grpc_address)
        grpc.channel_ready_future(self.channel).result(timeout=15)
        self.stub = stubs.scoring_pb2_grpc.ScoringServiceStub(self.channel)
        self.admin_channel = None
        self.admin = None
        if admin_address and repo_stubs:
            self.admin_channel = grpc.insecure_channel(admin_address)
            self.admin = repo_stubs.pb2_grpc.ModelRepositoryServiceStub(self.admin_channel)

    def log_tail(self, n: int = 60) -> str:
        return self.srv.log_tail(n)

    def log_text(self) -> str:
        with open(self.srv.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def metadata(self, model: str = "", version: str = ""):
        return self.stub.GetModelMetadata(
            self.pb.GetModelMetadataRequest(model=model, model_version=version),
            timeout=RPC_TIMEOUT_S)

    def states(self, model: str = "") -> Dict[str, str]:
        """{version: state name} from GetModelMetadata's version_status;
        {} when the model is not found."""
        try:
            md = self.metadata(model)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.NOT_FOUND:
                return {}
            raise
        return {vs.version: self.pb.VersionState.Name(vs.state) for vs in md.version_status}

    def status_of(self, model: str, version: str):
        md = self.metadata(model)
        for vs in md.version_status:
            if vs.version == version:
                return vs
        return None

    def score(self, request, timeout: float = RPC_TIMEOUT_S):
        return self.stub.Score(request, timeout=timeout)

    def score_code(self, request, timeout: float = RPC_TIMEOUT_S):
        """(code, response or details)."""
        try:
            return grpc.StatusCode.OK, self.stub.Score(request, timeout=timeout)
        except grpc.RpcError as e:
            return e.code(), e.details() or ""

    def metrics(self) -> Dict[str, float]:
        return harness.scrape_metrics(self.srv)

    def close(self):
        for ch in (self.channel, self.admin_channel):
            if ch is not None:
                ch.close()


@contextlib.contextmanager
def serving(stubs, repo_stubs, tmp_path, repo, *, poll: Optional[str] = "500ms",
            admin: bool = True, extra: Optional[List[str]] = None):
    """Starts a server on `repo` (poller every `poll`, admin service on its
    own port), yields a Serving, stops it (by its pid) at the end."""
    admin_address = f"127.0.0.1:{harness.free_port()}" if admin else None
    args = []
    if poll:
        args.append(f"--repository_poll_interval={poll}")
    if admin_address:
        args.append(f"--admin_address={admin_address}")
    args += list(extra or [])
    srv = harness.ServerProcess(log_dir=str(tmp_path), model_repository=str(repo),
                                extra_args=args)
    harness.call_or_fail(srv.start, 120.0)
    s = None
    try:
        s = Serving(srv, stubs, repo_stubs, admin_address)
        yield s
    finally:
        if s is not None:
            s.close()
        srv.stop()


# --- waiting, metrics, memory ------------------------------------------------------

def wait_until(fn, timeout: float, what: str, serving_: Optional[Serving] = None,
               interval: float = 0.1):
    """fn()'s first truthy value; fails the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except grpc.RpcError as e:
            last = f"RpcError {e.code().name}: {e.details()}"
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            tail = f"\n--- server log tail ---\n{serving_.log_tail()}" if serving_ else ""
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} "
                        f"(last: {last!r}){tail}", pytrace=False)
        time.sleep(interval)


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric(samples: Dict[str, float], name: str, **labels) -> Optional[float]:
    """Sum of the samples of `name` whose labels include `labels`; None when
    there is none."""
    total, found = 0.0, False
    for key, value in samples.items():
        m = _SAMPLE.match(key)
        if not m or m.group(1) != name:
            continue
        have = dict(_LABEL.findall(m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += value
            found = True
    return total if found else None


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise harness.HarnessError(f"no VmRSS for pid {pid}")


def check_probabilities(resp, g: harness.Golden, tol: float = TOL) -> Optional[str]:
    d = harness.max_abs_diff(list(resp.probabilities), g.probabilities)
    if d > tol:
        return (f"{g.request_id}: probabilities {list(resp.probabilities)} vs golden "
                f"{g.probabilities} (max diff {d:.2e})")
    return None


# --- load: fusion-bench in the background, a Python client loop, a monitor ---

class Bench:
    """One fusion-bench process; start() returns at once, finish() waits for
    its JSON report."""

    def __init__(self, tmp_path, name: str, target: str, args: List[str]):
        if not os.access(BENCH_BIN, os.X_OK):
            pytest.fail(f"{BENCH_BIN} not found or not executable: build it with "
                        "`cmake --build build --target fusion-bench` (or set "
                        "FUSION_BENCH_BIN)", pytrace=False)
        self.name = name
        self.json_path = os.path.join(str(tmp_path), f"bench-{name}.json")
        self.out_path = os.path.join(str(tmp_path), f"bench-{name}.out")
        self.args = [BENCH_BIN, f"--target={target}", f"--json={self.json_path}"] + args
        self.proc = None
        self.started = None
        self.ended = None

    def start(self) -> "Bench":
        self.out = open(self.out_path, "w", encoding="utf-8")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.args, stdout=self.out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=harness.REPO_ROOT)
        return self

    def output(self) -> str:
        with open(self.out_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def finish(self, timeout: float = 120) -> Dict:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"fusion-bench {self.name} still running after {timeout} s:\n"
                        f"{self.output()}", pytrace=False)
        self.ended = time.monotonic()
        self.out.close()
        if not os.path.exists(self.json_path):
            pytest.fail(f"fusion-bench {self.name} exited {rc} without a JSON report:\n"
                        f"{' '.join(self.args)}\n{self.output()}", pytrace=False)
        with open(self.json_path, encoding="utf-8") as f:
            report = json.load(f)
        report["exit_code"] = rc
        return report

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def bench_figures(report: Dict) -> Dict:
    """requests, ok, failed (every non-OK answer plus those never answered),
    errors by code, resp/s."""
    totals = report["totals"]
    unfinished = sum(int(r.get("unfinished", 0)) for r in report["runs"])
    return {"requests": int(totals["requests"]), "ok": int(totals["ok"]),
            "failed": int(totals["requests"]) - int(totals["ok"]) + unfinished,
            "errors": dict(totals["errors"]), "unfinished": unfinished,
            "throughput_rps": report["runs"][0]["throughput_rps"],
            "p99_ms": round(report["runs"][0]["latency_us"]["p99"] / 1e3, 2)}


class ClientLoop(threading.Thread):
    """Scores `request` over and over on its own channel, recording
    (monotonic time, "OK", model_version, problem-or-None) or (time, code
    name, details, None)."""

    def __init__(self, serving_: Serving, request, golden: Optional[harness.Golden] = None,
                 pause_s: float = 0.02):
        super().__init__(daemon=True)
        self.channel = grpc.insecure_channel(serving_.srv.grpc_address)
        self.stub = serving_.stubs.scoring_pb2_grpc.ScoringServiceStub(self.channel)
        self.request = request
        self.golden = golden
        self.pause_s = pause_s
        self.records = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            try:
                r = self.stub.Score(self.request, timeout=RPC_TIMEOUT_S)
                problem = check_probabilities(r, self.golden) if self.golden else None
                rec = (time.monotonic(), "OK", r.model_version, problem)
            except grpc.RpcError as e:
                rec = (time.monotonic(), e.code().name, e.details(), None)
            with self.lock:
                self.records.append(rec)
            time.sleep(self.pause_s)

    def snapshot(self):
        with self.lock:
            return list(self.records)

    def first_time(self, version: str) -> Optional[float]:
        for t, code, v, _ in self.snapshot():
            if code == "OK" and v == version:
                return t
        return None

    def stop(self):
        self.stopping.set()
        self.join(timeout=RPC_TIMEOUT_S + 5)
        self.channel.close()


class Monitor(threading.Thread):
    """Every `interval` s: the model's version states and the server's RSS."""

    def __init__(self, serving_: Serving, model: str = "", interval: float = 0.1):
        super().__init__(daemon=True)
        self.serving = serving_
        self.model = model
        self.interval = interval
        self.samples = []  # (time, {version: state} or error string, rss_kb)
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            try:
                states = self.serving.states(self.model)
            except grpc.RpcError as e:
                states = f"{e.code().name}: {e.details()}"
            try:
                rss = rss_kb(self.serving.pid)
            except (OSError, harness.HarnessError):
                rss = None
            with self.lock:
                self.samples.append((time.monotonic(), states, rss))
            time.sleep(self.interval)

    def snapshot(self):
        with self.lock:
            return list(self.samples)

    def states_seen(self, version: str) -> List[str]:
        """The distinct states `version` went through, in order ("ABSENT"
        when not listed)."""
        seen = []
        for _, states, _ in self.snapshot():
            if isinstance(states, dict):
                s = states.get(version, "ABSENT")
                if not seen or seen[-1] != s:
                    seen.append(s)
        return seen

    def stop(self):
        self.stopping.set()
        self.join(timeout=RPC_TIMEOUT_S + 5)


def requests_answered(serving_: Serving) -> float:
    return metric(serving_.metrics(), "fusion_requests_total") or 0.0
