"""fusion-bench against running fusion-servers: closed and open loop produce
valid JSON with ordered percentiles; round_robin over two servers spreads the
load, and the servers' counters add up to what the bench reports."""
import json
import re

import pytest

import harness
from client_tools import run

PERCENTILES = ["p50", "p90", "p99", "p999", "max"]


def bench(bench_bin, tmp_path, *args, timeout=60):
    out = tmp_path / "bench.json"
    p = run([bench_bin, f"--json={out}", *args], timeout=timeout)
    assert p.returncode == 0, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p, json.loads(out.read_text())


def check_run(run_json):
    assert run_json["throughput_rps"] > 0
    assert run_json["completed"] > 0
    latency = run_json["latency_us"]
    values = [latency[k] for k in PERCENTILES]
    assert all(v > 0 for v in values), latency
    assert values == sorted(values), latency
    assert run_json["server"]["mean_batch_size"] >= 1
    assert run_json["client"]["cpu_seconds"] >= 0


def test_closed_loop(bench_bin, server, tmp_path):
    p, report = bench(bench_bin, tmp_path, f"--target={server.grpc_address}",
                      "--concurrency=8", "--duration=3s", "--warmup=500ms",
                      "--attention_fraction=0.1")
    assert report["config"]["loop"] == "closed"
    assert len(report["runs"]) == 1 and report["runs"][0]["concurrency"] == 8
    check_run(report["runs"][0])
    assert report["runs"][0]["errors"] == {}
    assert "p99.9 ms" in p.stdout  # the human table


def test_open_loop_stream(bench_bin, server, tmp_path):
    _, report = bench(bench_bin, tmp_path, f"--target={server.grpc_address}",
                      "--rate=60", "--duration=3s", "--warmup=500ms", "--mode=stream",
                      "--synthetic_lengths=uniform:8:48")
    assert report["config"]["loop"] == "open" and report["config"]["mode"] == "stream"
    r = report["runs"][0]
    assert r["rate"] == 60
    check_run(r)
    assert r["errors"] == {}
    # Poisson arrivals at 60/s for 3 s: ~180 requests.
    assert 90 <= r["latency_us"]["count"] <= 300, r["latency_us"]


def test_unreachable_server_fails_clearly(bench_bin, tmp_path):
    target = f"127.0.0.1:{harness.free_port()}"
    p = run([bench_bin, f"--target={target}", "--duration=1s", "--timeout=2s"],
            timeout=30)
    assert p.returncode == 3
    assert "cannot reach fusion-server" in p.stderr


def ok_requests(http_address):
    status, body = harness.http_get(f"http://{http_address}/metrics")
    assert status == 200, f"/metrics on {http_address}: {status}"
    total = 0.0
    for line in body.splitlines():
        m = re.match(r'^fusion_requests_total\{([^}]*)\}\s+(\S+)$', line)
        if m and 'code="OK"' in m.group(1):
            total += float(m.group(2))
    return int(total)


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory):
    servers = [harness.ServerProcess(log_dir=str(tmp_path_factory.mktemp(f"rr{i}")))
               for i in range(2)]
    try:
        for s in servers:
            harness.call_or_fail(s.start)
        yield servers
    finally:
        for s in servers:
            s.stop()


def test_round_robin_over_two_servers(bench_bin, client_bin, two_servers, tmp_path):
    a, b = two_servers
    target = f"ipv4:127.0.0.1:{a.grpc_port},127.0.0.1:{b.grpc_port}"
    before = [ok_requests(s.http_address) for s in two_servers]
    _, report = bench(bench_bin, tmp_path, f"--target={target}", "--lb=round_robin",
                      "--concurrency=4", "--duration=2s", "--warmup=500ms")
    check_run(report["runs"][0])
    after = [ok_requests(s.http_address) for s in two_servers]
    grown = [y - x for x, y in zip(before, after)]
    assert all(g > 0 for g in grown), f"per-server OK growth {grown}"
    assert sum(grown) == report["totals"]["ok"], (grown, report["totals"])
    assert report["totals"]["errors"] == {}
    # Round robin alternates: neither server took almost everything.
    assert min(grown) >= 0.25 * sum(grown), grown

    # The CLI takes the same target forms (here a bare comma-separated list).
    p = run([client_bin, "health", f"--target=127.0.0.1:{a.grpc_port},127.0.0.1:{b.grpc_port}",
             "--lb=round_robin"])
    assert p.returncode == 0, p.stderr
