"""Scale-out: two server containers behind client-side round-robin
(`fusion-bench --lb round_robin --target ipv4:A,B`, as deploy/README.md
documents): both receive traffic, and stopping one mid-run loses no request
(fusion-bench does not retry: what it counts is what the servers answered)."""
import json
import os
import re
import subprocess
import time

import pytest

import docker_support as ds
import harness
from figures import figure

IN_FLIGHT = 100


def fusion_bench():
    path = os.environ.get("FUSION_BENCH_BIN",
                          os.path.join(ds.REPO_ROOT, "build", "client", "fusion-bench"))
    if not os.access(path, os.X_OK):
        pytest.fail(f"fusion-bench not found at {path}: build it (make build) or point "
                    "FUSION_BENCH_BIN at it", pytrace=False)
    return path


def ok_count(container):
    status, body = harness.http_get(f"{container.http_base}/metrics", timeout=5)
    assert status == 200, f"{container.name}: /metrics answered {status}"
    return sum(float(v) for v in re.findall(
        r'^fusion_requests_total\{[^}]*code="OK"[^}]*\} (\S+)$', body, re.M))


def test_round_robin_reaches_both_and_stopping_one_loses_nothing(container_factory, tmp_path):
    bench = fusion_bench()
    a = container_factory(name_prefix="fusionserve-scale")
    b = container_factory(name_prefix="fusionserve-scale")
    a.wait_healthy()
    b.wait_healthy()
    start = {c.name: ok_count(c) for c in (a, b)}
    out = tmp_path / "bench.json"
    log = tmp_path / "bench.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            [bench, f"--target=ipv4:{a.grpc_target},{b.grpc_target}", "--lb=round_robin",
             f"--concurrency={IN_FLIGHT}", "--warmup=1s", "--duration=14s",
             "--drain_timeout=30s", f"--json={out}",
             f"--input={os.path.join(harness.bundle_dir(), 'golden.jsonl')}"],
            stdout=log_file, stderr=subprocess.STDOUT, cwd=ds.REPO_ROOT)
    try:
        time.sleep(5)
        mid = {c.name: ok_count(c) for c in (a, b)}
        stop_s = b.stop()
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    end_a = ok_count(a)
    bench_log = log.read_text(errors="replace")
    assert rc == 0, f"fusion-bench exited {rc}:\n{bench_log[-3000:]}"
    report = json.loads(out.read_text())
    totals = report["totals"]
    served = {c.name: mid[c.name] - start[c.name] for c in (a, b)}
    figure("scale_out", {"before_stop_ok_per_server": list(served.values()),
                         "survivor_ok_after_stop": end_a - mid[a.name],
                         "bench_totals": totals, "docker_stop_s": round(stop_s, 2),
                         "stopped_exit_code": b.exit_code()})
    # Both receive traffic, roughly evenly (round robin per call).
    assert min(served.values()) > 0.25 * sum(served.values()), f"uneven: {served}"
    # The survivor carries on alone.
    assert end_a - mid[a.name] > IN_FLIGHT, (end_a, mid[a.name])
    errors = totals.get("errors", {})
    unfinished = sum(r.get("unfinished", 0) for r in report["runs"])
    assert not {c: n for c, n in errors.items() if c != "UNAVAILABLE"} and unfinished == 0, (
        f"requests lost while one server stopped: errors {errors}, unfinished "
        f"{unfinished}\n{bench_log[-3000:]}")
    assert totals["ok"] + sum(errors.values()) == totals["requests"], totals
    assert b.exit_code() == 0, f"stopped server exit code {b.exit_code()}\n{b.logs()}"
