"""Helpers for fusionserve's end-to-end tests: stubs, server process, golden data.

Used by conftest.py and by single_client_latency.py (which runs standalone),
so nothing here depends on pytest.

Run everything with Debian's interpreter (/usr/bin/python3): it carries
python3-grpcio and python3-protobuf. Stubs are generated with the system
protoc (3.21), never grpc_tools (it bundles protoc 3.5, which cannot compile
proto3 `optional`).
"""
import importlib
import json
import math
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PROTO_DIR = os.path.join(REPO_ROOT, "proto")
MODEL_REPOSITORY = os.environ.get(
    "FUSION_MODEL_REPOSITORY", os.path.join(REPO_ROOT, "models"))
MODEL_NAME = "fusion"
MODEL_VERSION = "1"
SERVICE_NAME = "fusion.v1.ScoringService"
DEFAULT_SERVER_BIN = os.path.join(REPO_ROOT, "build", "server", "fusion-server")
GRPC_PYTHON_PLUGIN = os.environ.get("GRPC_PYTHON_PLUGIN",
                                    "/usr/bin/grpc_python_plugin")
PROTOC = os.environ.get("PROTOC", "/usr/bin/protoc")
READY_TIMEOUT_S = 60.0
# Flags for every server the tests start, before a test's own (the later
# one wins): sanitizers/run_asan_tests.sh sets them.
SERVER_ARGS_FROM_ENV = shlex.split(os.environ.get("FUSION_SERVER_ARGS", ""))


class HarnessError(RuntimeError):
    """Something the tests need is missing or broken (not a test assertion)."""


def server_binary() -> str:
    return os.environ.get("FUSION_SERVER_BIN", DEFAULT_SERVER_BIN)


def bundle_dir(model: str = MODEL_NAME, version: str = MODEL_VERSION) -> str:
    return os.path.join(MODEL_REPOSITORY, model, version)


# --- stubs ------------------------------------------------------------------

class Stubs:
    """The generated modules, imported from a temporary directory."""

    def __init__(self, scoring_pb2, scoring_pb2_grpc, model_config_pb2,
                 health_pb2, health_pb2_grpc, out_dir):
        self.scoring_pb2 = scoring_pb2
        self.scoring_pb2_grpc = scoring_pb2_grpc
        self.model_config_pb2 = model_config_pb2
        self.health_pb2 = health_pb2
        self.health_pb2_grpc = health_pb2_grpc
        self.out_dir = out_dir


_STUBS: Optional[Stubs] = None


def _protoc(args: List[str]) -> None:
    if not os.path.exists(PROTOC):
        raise HarnessError(f"protoc not found at {PROTOC} (apt-get install protobuf-compiler)")
    if not os.path.exists(GRPC_PYTHON_PLUGIN):
        raise HarnessError(f"grpc_python_plugin not found at {GRPC_PYTHON_PLUGIN} "
                           "(apt-get install protobuf-compiler-grpc)")
    cmd = [PROTOC] + args
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise HarnessError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")


def generate_stubs(out_dir: Optional[str] = None) -> Stubs:
    """Generates (once per process) and imports the Python stubs."""
    global _STUBS
    if _STUBS is not None:
        return _STUBS
    out_dir = out_dir or tempfile.mkdtemp(prefix="fusion-e2e-stubs-")
    for p in ("fusion/v1/scoring.proto", "fusion/v1/model_config.proto"):
        if not os.path.exists(os.path.join(PROTO_DIR, p)):
            raise HarnessError(f"missing proto/{p}")
    plugin = f"--plugin=protoc-gen-grpc={GRPC_PYTHON_PLUGIN}"
    _protoc(["-I", PROTO_DIR, f"--python_out={out_dir}", f"--grpc_out={out_dir}",
             plugin, os.path.join(PROTO_DIR, "fusion/v1/scoring.proto"),
             os.path.join(PROTO_DIR, "fusion/v1/model_config.proto")])
    if out_dir not in sys.path:
        sys.path.insert(0, out_dir)
    scoring_pb2 = importlib.import_module("fusion.v1.scoring_pb2")
    scoring_pb2_grpc = importlib.import_module("fusion.v1.scoring_pb2_grpc")
    model_config_pb2 = importlib.import_module("fusion.v1.model_config_pb2")
    try:  # Debian's python3-grpcio has no grpc_health; use it when present.
        from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore
    except ImportError:
        health_dir = os.path.join(PROTO_DIR, "grpc_health")
        _protoc(["-I", health_dir, f"--python_out={out_dir}", f"--grpc_out={out_dir}",
                 plugin, os.path.join(health_dir, "health.proto")])
        health_pb2 = importlib.import_module("health_pb2")
        health_pb2_grpc = importlib.import_module("health_pb2_grpc")
    _STUBS = Stubs(scoring_pb2, scoring_pb2_grpc, model_config_pb2,
                   health_pb2, health_pb2_grpc, out_dir)
    return _STUBS


# --- model bundle -----------------------------------------------------------

def load_config(stubs: Stubs, model: str = MODEL_NAME, version: str = MODEL_VERSION):
    from google.protobuf import text_format
    path = os.path.join(bundle_dir(model, version), "config.pbtxt")
    if not os.path.exists(path):
        raise HarnessError(f"model config not found: {path} (is the bundle exported?)")
    cfg = stubs.model_config_pb2.ModelConfig()
    with open(path, encoding="utf-8") as f:
        text_format.Parse(f.read(), cfg)
    return cfg


def vocab_size(model: str = MODEL_NAME, version: str = MODEL_VERSION,
               vocab_file: str = "vocab.txt") -> int:
    path = os.path.join(bundle_dir(model, version), vocab_file or "vocab.txt")
    with open(path, encoding="utf-8") as f:
        return len(f.read().splitlines())


@dataclass
class Golden:
    request_id: str
    text: str
    features: Dict[str, float]
    feature_vector: List[float]
    tokens: List[str]
    token_ids: List[int]
    probabilities: List[float]
    score: float
    text_to_features: list  # [heads][L][F]
    features_to_text: list  # [heads][F][L]
    raw: dict = field(repr=False, default_factory=dict)


def load_golden(model: str = MODEL_NAME, version: str = MODEL_VERSION) -> List[Golden]:
    path = os.path.join(bundle_dir(model, version), "golden.jsonl")
    if not os.path.exists(path):
        raise HarnessError(f"golden file not found: {path} (is the bundle exported?)")
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            d = json.loads(line)
            try:
                out.append(Golden(
                    request_id=str(d["request_id"]), text=d["text"],
                    features={k: float(v) for k, v in d["features"].items()},
                    feature_vector=[float(v) for v in d["feature_vector"]],
                    tokens=list(d["tokens"]), token_ids=[int(t) for t in d["token_ids"]],
                    probabilities=[float(p) for p in d["probabilities"]],
                    score=float(d["score"]),
                    text_to_features=d["text_to_features"],
                    features_to_text=d["features_to_text"], raw=d))
            except KeyError as e:
                raise HarnessError(f"{path}:{n}: golden line lacks key {e}") from None
    if not out:
        raise HarnessError(f"{path} holds no golden requests")
    return out


def flatten(nested) -> List[float]:
    if isinstance(nested, (list, tuple)):
        out = []
        for x in nested:
            out.extend(flatten(x))
        return out
    return [float(nested)]


def shape_of(nested) -> List[int]:
    shape = []
    while isinstance(nested, (list, tuple)):
        shape.append(len(nested))
        nested = nested[0] if nested else None
    return shape


def head_mean(per_head) -> list:
    """[heads][A][B] -> [A][B], the average over heads."""
    heads = len(per_head)
    rows, cols = len(per_head[0]), len(per_head[0][0])
    return [[sum(per_head[h][i][j] for h in range(heads)) / heads for j in range(cols)]
            for i in range(rows)]


def max_abs_diff(a, b) -> float:
    a, b = list(a), list(b)
    if len(a) != len(b):
        return math.inf
    return max((abs(x - y) for x, y in zip(a, b)), default=0.0)


# --- requests ---------------------------------------------------------------

def request_from_golden(stubs: Stubs, g: Golden, *, by_ids: bool = False,
                        attention: int = 0, request_id: Optional[str] = None, **kw):
    """The golden request as a ScoreRequest; keyword arguments (scalar fields,
    `text` included) override what golden holds."""
    pb = stubs.scoring_pb2
    req = pb.ScoreRequest(request_id=request_id if request_id is not None else g.request_id,
                          attention=attention)
    if by_ids:
        req.token_ids.extend(g.token_ids)
        req.feature_vector.extend(g.feature_vector)
    else:
        req.text = g.text
        for k, v in g.features.items():
            req.features[k] = v
    for k, v in kw.items():
        setattr(req, k, v)
    return req


# --- server process ---------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 2.0):
    """Returns (status, body); status None when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, ConnectionError, socket.timeout, OSError):
        return None, ""


class ServerProcess:
    """One fusion-server process on free ports, its log in a file."""

    def __init__(self, extra_args: Optional[List[str]] = None, log_dir: Optional[str] = None,
                 model_repository: str = MODEL_REPOSITORY,
                 env: Optional[Dict[str, Optional[str]]] = None):
        self.binary = server_binary()
        self.grpc_port = free_port()
        self.http_port = free_port()
        while self.http_port == self.grpc_port:
            self.http_port = free_port()
        self.grpc_address = f"127.0.0.1:{self.grpc_port}"
        self.http_address = f"127.0.0.1:{self.http_port}"
        # fp32: the tests hold answers to golden.jsonl within 1e-4, which
        # bf16 (AUTO's choice for large batches on some CPUs) does not keep;
        # tests/integration/test_precision.py covers it. A later
        # --precision in extra_args wins.
        self.args = [self.binary, f"--model_repository={model_repository}",
                     f"--model={MODEL_NAME}", f"--grpc_address={self.grpc_address}",
                     f"--http_address={self.http_address}", "--device=cpu",
                     "--precision=fp32", "--log_level=info"] + SERVER_ARGS_FROM_ENV + list(
                         extra_args or [])
        self.log_dir = log_dir or tempfile.mkdtemp(prefix="fusion-e2e-server-")
        self.log_path = os.path.join(self.log_dir, f"server-{self.grpc_port}.log")
        # Changes to this process's environment; None removes a variable.
        self.env_changes = dict(env or {})
        self.proc: Optional[subprocess.Popen] = None
        self.ready_after_s: Optional[float] = None

    def check_binary(self) -> None:
        if not os.path.exists(self.binary):
            raise HarnessError(
                f"server binary not found: {self.binary}\n"
                "Build it first (cmake --build build --target fusion-server) or point "
                "FUSION_SERVER_BIN at it.")
        if not os.access(self.binary, os.X_OK):
            raise HarnessError(f"server binary is not executable: {self.binary}")

    def log_tail(self, n: int = 60) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def start(self, ready_timeout_s: float = READY_TIMEOUT_S) -> "ServerProcess":
        self.check_binary()
        if not os.path.isdir(bundle_dir()):
            raise HarnessError(f"model bundle not found: {bundle_dir()}")
        env = dict(os.environ)
        for key, value in self.env_changes.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        log = open(self.log_path, "wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=REPO_ROOT, env=env)
        log.close()
        deadline = t0 + ready_timeout_s
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise HarnessError(
                    f"server exited with code {rc} before it was ready\n"
                    f"command: {' '.join(self.args)}\n--- log tail ---\n{self.log_tail()}")
            status, _ = http_get(f"http://{self.http_address}/readyz", timeout=1.0)
            last = status
            if status == 200:
                self.ready_after_s = time.monotonic() - t0
                return self
            time.sleep(0.2)
        self.stop()
        raise HarnessError(
            f"server not ready after {ready_timeout_s:.0f} s (last /readyz status: {last})\n"
            f"command: {' '.join(self.args)}\n--- log tail ---\n{self.log_tail()}")

    def terminate(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> Optional[int]:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 30.0) -> Optional[int]:
        """SIGTERM, then SIGKILL if it does not exit in `timeout`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode


# --- observations, printed at the end of the pytest session ------------------

OBSERVATIONS: Dict[str, object] = {}


def scrape_metrics(server: "ServerProcess") -> Dict[str, float]:
    """The server's /metrics as {'name{labels}': value}."""
    status, body = http_get(f"http://{server.http_address}/metrics")
    if status != 200:
        raise HarnessError(f"/metrics answered {status}")
    samples = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples


def observe(key: str, value) -> None:
    OBSERVATIONS[key] = value


def call_or_fail(fn, *args):
    """fn(*args); a HarnessError becomes a pytest failure with just its message."""
    import pytest
    try:
        return fn(*args)
    except HarnessError as e:
        msg = f"{type(e).__name__}: {e}"
    # Outside the `except` block, so pytest prints no exception chain.
    pytest.fail(msg, pytrace=False)
