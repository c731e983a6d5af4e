"""Fixtures for the deployment tests (deploy/, docker-compose.yml,
.dockerignore): rendered Kubernetes overlays, the real server's flags and
/metrics, a real Prometheus scraping it.

No Docker engine or cluster is needed: images and manifests are checked
against the real server binary and the real tools that run offline
(kubectl kustomize, docker-compose config, Prometheus); tests/containers
builds and runs the images on an engine. A missing kubectl or
docker-compose skips the tests that need it, saying so; a missing server
binary fails, as in tests/e2e.

Run: /usr/bin/python3 -m pytest tests/deploy -q
"""
import os
import shutil
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import deploy_checks as dc  # noqa: E402
import harness  # noqa: E402

from deploy_support import K8S, OVERLAYS, POD_LABELS, Rendered, kustomize  # noqa: E402


@pytest.fixture(scope="session")
def overlays():
    """Both overlays, rendered once."""
    return {name: Rendered(name, kustomize(os.path.join(K8S, "overlays", name)))
            for name in OVERLAYS}


@pytest.fixture(scope="session", params=OVERLAYS)
def overlay(request, overlays):
    return overlays[request.param]


@pytest.fixture(scope="session")
def adapter_objects():
    return Rendered("prometheus-adapter", kustomize(os.path.join(K8S, "prometheus-adapter")))


# --- the real server ---------------------------------------------------------

@pytest.fixture(scope="session")
def server_binary():
    path = harness.server_binary()
    if not os.access(path, os.X_OK):
        pytest.fail(f"server binary not found: {path}\nBuild it first (make build) "
                    "or point FUSION_SERVER_BIN at it.", pytrace=False)
    return path


@pytest.fixture(scope="session")
def server_help(server_binary):
    """Every flag the binary knows and its default (from --helpfull)."""
    return dc.server_help(server_binary)


@pytest.fixture(scope="session")
def live_server(server_binary, tmp_path_factory):
    """One fusion-server on free ports (tests/e2e/harness.py)."""
    srv = harness.ServerProcess(log_dir=str(tmp_path_factory.mktemp("server")))
    harness.call_or_fail(srv.start)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def metrics_text(live_server):
    status, body = harness.http_get(f"http://{live_server.http_address}/metrics")
    assert status == 200, f"/metrics answered {status}"
    return body


@pytest.fixture(scope="session")
def exported_names(metrics_text):
    """Metric names the real server exports (samples and families)."""
    names = dc.exposition_names(metrics_text)
    assert "fusion_requests_total" in names, "the server exports no fusion_requests_total?"
    return names


# --- a real Prometheus scraping the live server ----------------------------------

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

class Prometheus:
    def __init__(self, address):
        self.address = address

    def get(self, path, **params):
        import json
        import urllib.parse
        url = f"http://{self.address}{path}?" + urllib.parse.urlencode(params, doseq=True)
        status, body = harness.http_get(url, timeout=5)
        data = json.loads(body) if body else {}
        return status, data

    def query(self, promql):
        """(status, result or error) of an instant query."""
        status, data = self.get("/api/v1/query", query=promql)
        if status == 200 and data.get("status") == "success":
            return "success", data["data"]["result"]
        return "error", data.get("error", f"HTTP {status}")

    def wait(self, promql, accept, timeout=20.0):
        deadline = time.monotonic() + timeout
        state, result = self.query(promql)
        while not (state == "success" and accept(result)) and time.monotonic() < deadline:
            time.sleep(0.25)
            state, result = self.query(promql)
        return state, result


@pytest.fixture(scope="session")
def prometheus(live_server, tmp_path_factory):
    if not os.path.exists(PROMETHEUS):
        pytest.fail("the prometheus package is not installed (scripts/install-deps.sh "
                    "installs it)", pytrace=False)
    tmp = tmp_path_factory.mktemp("prometheus")
    labels = "".join(f"          {k}: {v}\n" for k, v in POD_LABELS.items())
    (tmp / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: fusion-server\n    static_configs:\n"
        f"      - targets: ['{live_server.http_address}']\n        labels:\n{labels}")
    address = f"127.0.0.1:{harness.free_port()}"
    log_path = tmp / "prometheus.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address={address}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        prom = Prometheus(address)
        deadline = time.monotonic() + 30
        while harness.http_get(f"http://{address}/-/ready")[0] != 200:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "prometheus not ready in 30 s"
            time.sleep(0.2)
        state, up = prom.wait('up{job="fusion-server"} == 1', lambda r: len(r) == 1)
        assert state == "success" and up, f"the server never came up in Prometheus: {up}"
        yield prom
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def prometheus_with_traffic(prometheus, live_server, tmp_path_factory):
    """Prometheus after the server has answered a few concurrent batches, so
    histograms, rates and the token counters have data."""
    import grpc
    from concurrent.futures import ThreadPoolExecutor
    stubs = harness.call_or_fail(harness.generate_stubs,
                                 str(tmp_path_factory.mktemp("stubs")))
    golden = harness.call_or_fail(harness.load_golden)
    requests = 96
    channel = grpc.insecure_channel(live_server.grpc_address)
    stub = stubs.scoring_pb2_grpc.ScoringServiceStub(channel)

    def score(i):
        g = golden[i % len(golden)]
        return stub.Score(harness.request_from_golden(stubs, g, request_id=f"deploy-{i}"),
                          timeout=20)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(score, range(requests)))
    channel.close()
    state, result = prometheus.wait(
        'sum(fusion_requests_total{code="OK"})',
        lambda r: bool(r) and float(r[0]["value"][1]) >= requests)
    assert state == "success" and result, f"Prometheus never saw the requests: {result}"
    return prometheus
