"""One container of the image, run as a platform would (read-only root file
system, no capabilities, ports on 127.0.0.1): it turns healthy, answers the
golden requests through the published gRPC port, counts them in /metrics,
and drains under `docker stop` with 100 requests in flight.

The tests share one container and run in file order; the last one stops it.
"""
import re
import time

import grpc
import pytest

import docker_support as ds
import harness
from figures import figure
from closed_loop_load import ClosedLoopLoad

TOL = 1e-4
IN_FLIGHT = 100


@pytest.fixture(scope="module")
def served(image):
    c = ds.Container(image).start()
    try:
        ready_s = None
        deadline = time.monotonic() + 180
        while ready_s is None and time.monotonic() < deadline:
            if harness.http_get(f"{c.http_base}/readyz", timeout=1)[0] == 200:
                ready_s = time.monotonic() - c.started_at
            else:
                assert c.state()["Running"], f"container exited:\n{c.logs()}"
                time.sleep(0.1)
        assert ready_s is not None, f"/readyz never answered 200:\n{c.logs()}"
        figure("start_to_ready_s", round(ready_s, 2))
        figure("start_to_healthy_s", round(c.wait_healthy(), 2))
        yield c
    finally:
        c.remove()


@pytest.fixture(scope="module")
def scoring_stub(served, stubs):
    with grpc.insecure_channel(served.grpc_target) as channel:
        yield stubs.scoring_pb2_grpc.ScoringServiceStub(channel)


def _fusion_requests_ok(metrics_text):
    return sum(float(v) for v in re.findall(
        r'^fusion_requests_total\{[^}]*code="OK"[^}]*\} (\S+)$', metrics_text, re.M))


def test_healthy_with_read_only_root(served):
    config = served.inspect()["HostConfig"]
    assert config["ReadonlyRootfs"] is True
    assert served.state()["Health"]["Status"] == "healthy"
    assert served.exec("id", "-u").stdout.strip() == "10001"
    # Nothing but the tmpfs is writable, not even for root.
    probe = served.exec("/bin/sh", "-c", "touch /x 2>&1; touch /tmp/x && echo tmp-ok",
                        user="0", check=False).stdout
    assert "Read-only file system" in probe and "tmp-ok" in probe, probe


def test_golden_requests_through_the_published_port(served, scoring_stub, stubs, golden):
    errors = []
    for g in golden:
        resp = scoring_stub.Score(harness.request_from_golden(stubs, g), timeout=30)
        d = harness.max_abs_diff(resp.probabilities, g.probabilities)
        if d > TOL or abs(resp.score - g.score) > TOL:
            errors.append(f"{g.request_id}: {list(resp.probabilities)} vs "
                          f"{g.probabilities} (max diff {d:.2e})")
    assert not errors, f"{len(errors)} of {len(golden)} differ from golden:\n" + \
        "\n".join(errors[:20])


def test_metrics_count_the_golden_requests(served, golden):
    status, body = harness.http_get(f"{served.http_base}/metrics", timeout=5)
    assert status == 200, f"/metrics answered {status}"
    assert _fusion_requests_ok(body) >= len(golden), "fusion_requests_total{code=OK}"


def test_docker_stop_under_load_loses_no_request(served, stubs, golden_requests):
    """`docker stop` (SIGTERM, then the grace period) while 100 requests are
    in flight: every request ends OK or UNAVAILABLE before it started (the
    server refused it while draining, or there was no connection to send it
    on); none CANCELLED or lost; the container exits 0 within the grace."""
    load = ClosedLoopLoad(served.grpc_target, stubs.scoring_pb2_grpc.ScoringServiceStub,
                          golden_requests, in_flight=IN_FLIGHT).start()
    try:
        assert load.wait_for_ok(2 * IN_FLIGHT, timeout=60), (
            f"the load never got going: {load.outcomes.summary()}")
        stop_s = served.stop(ds.STOP_GRACE_S)
        # Keep sending against the closed port for a moment: those end
        # UNAVAILABLE without having started.
        time.sleep(1.0)
    finally:
        outcomes = load.stop()
    summary = outcomes.summary()
    exit_code = served.exit_code()
    figure("docker_stop_drain", dict(summary, docker_stop_s=round(stop_s, 2),
                                     exit_code=exit_code,
                                     server_log=ds.drain_log_lines(served.logs())))
    lost = outcomes.lost()
    assert summary["cancelled"] == 0 and not lost, (
        f"requests lost under docker stop: {lost}\nall: {summary}\n{served.logs()}")
    assert exit_code == 0, f"exit code {exit_code}\n{served.logs()}"
    assert stop_s < ds.STOP_GRACE_S, f"docker stop took {stop_s:.1f} s: the grace ran out"
    assert summary["ok"] > 2 * IN_FLIGHT
