"""A real Prometheus scrapes a real fusion-server; PromQL sees what we sent."""
import json
import os
import shutil
import subprocess
import time
import urllib.parse

import grpc
import pytest

import harness

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
REQUESTS = 40


def _query(prom_address, promql):
    url = (f"http://{prom_address}/api/v1/query?"
           + urllib.parse.urlencode({"query": promql}))
    status, body = harness.http_get(url, timeout=5)
    if status != 200:
        return None
    data = json.loads(body)
    return data["data"]["result"] if data.get("status") == "success" else None


@pytest.fixture
def server(stubs, tmp_path):
    srv = harness.ServerProcess(log_dir=str(tmp_path))
    harness.call_or_fail(srv.start)
    yield srv
    srv.stop()


@pytest.fixture
def prometheus(server, tmp_path):
    if not os.path.exists(PROMETHEUS):
        pytest.skip("the prometheus package is not installed "
                    "(scripts/install-deps.sh installs it)")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: fusion\n    static_configs:\n"
        f"      - targets: ['{server.http_address}']\n")
    address = f"127.0.0.1:{harness.free_port()}"
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address={address}"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + 30
    while harness.http_get(f"http://{address}/-/ready")[0] != 200:
        assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
        assert time.monotonic() < deadline, "prometheus not ready in 30 s"
        time.sleep(0.2)
    yield address
    proc.terminate()
    proc.wait(timeout=10)


def _wait_for(prom, promql, accept, timeout=30):
    """Polls PromQL until `accept(result)`; returns the last result."""
    deadline = time.monotonic() + timeout
    result = None
    while time.monotonic() < deadline:
        result = _query(prom, promql)
        if result is not None and accept(result):
            return result
        time.sleep(0.5)
    return result


def test_prometheus_counts_every_request_and_sees_latency(server, prometheus,
                                                          stubs, golden):
    # Prometheus has scraped the idle server at least once: the counter
    # starts from a known zero, so `= N` below is exact.
    up = _wait_for(prometheus, 'up{job="fusion"}',
                   lambda r: r and r[0]["value"][1] == "1")
    assert up and up[0]["value"][1] == "1", f"target never up: {up}"

    stub = stubs.scoring_pb2_grpc.ScoringServiceStub(
        grpc.insecure_channel(server.grpc_address))
    for i in range(REQUESTS):
        g = golden[i % len(golden)]
        stub.Score(harness.request_from_golden(stubs, g, request_id=f"p-{i}"),
                   timeout=10)

    total = 'sum(fusion_requests_total{model="fusion",version="1"})'
    result = _wait_for(prometheus, total,
                       lambda r: r and float(r[0]["value"][1]) == REQUESTS)
    assert result and float(result[0]["value"][1]) == REQUESTS, result
    ok = _query(prometheus,
                'fusion_requests_total{model="fusion",version="1",code="OK"}')
    assert float(ok[0]["value"][1]) == REQUESTS

    p99 = ('histogram_quantile(0.99, sum by (le) ('
           'rate(fusion_request_duration_seconds_bucket{model="fusion"}[30s])))')
    result = _wait_for(prometheus, p99,
                       lambda r: r and r[0]["value"][1] not in ("NaN", "0"))
    assert result, "histogram_quantile returned nothing"
    seconds = float(result[0]["value"][1])
    assert 0 < seconds < 10, f"p99 request duration {seconds} s"

    padding = ('sum(fusion_tokens_total{kind="real"}) / '
               'sum(fusion_tokens_total)')
    result = _query(prometheus, padding)
    assert result and 0 < float(result[0]["value"][1]) <= 1, result
