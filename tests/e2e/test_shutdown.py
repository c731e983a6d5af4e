"""Graceful shutdown, on a server of its own: SIGTERM -> exit code 0 within 30 s."""
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

import harness

EXIT_TIMEOUT_S = 30


@pytest.fixture
def own_server(stubs, tmp_path):
    srv = harness.ServerProcess(log_dir=str(tmp_path))
    harness.call_or_fail(srv.start)
    yield srv
    if srv.proc.poll() is None:
        srv.proc.kill()
        srv.proc.wait(timeout=10)


def test_sigterm_exits_zero(stubs, own_server, golden):
    srv = own_server
    with grpc.insecure_channel(srv.grpc_address) as ch:
        stub = stubs.scoring_pb2_grpc.ScoringServiceStub(ch)
        g = golden[0]
        resp = stub.Score(harness.request_from_golden(stubs, g), timeout=30)
        assert harness.max_abs_diff(resp.probabilities, g.probabilities) <= 1e-4

        # Requests in flight when SIGTERM arrives: each must either finish with
        # the right answer or fail cleanly; none may hang past the exit.
        def call(i):
            try:
                r = stub.Score(harness.request_from_golden(stubs, golden[i % len(golden)],
                                                           request_id=f"drain-{i}"), timeout=20)
                ok = harness.max_abs_diff(r.probabilities,
                                          golden[i % len(golden)].probabilities) <= 1e-4
                return "ok" if ok else "WRONG"
            except grpc.RpcError as e:
                return f"{e.code().name}: {e.details()}"

        with ThreadPoolExecutor(max_workers=16) as ex:
            futures = [ex.submit(call, i) for i in range(64)]
            time.sleep(0.01)
            t0 = time.monotonic()
            srv.terminate()
            rc = srv.wait(EXIT_TIMEOUT_S)
            took = time.monotonic() - t0
            outcomes = [f.result(timeout=30) for f in futures]
    counts = {o: outcomes.count(o) for o in set(outcomes)}
    harness.observe("sigterm_exit_s", round(took, 2))
    harness.observe("sigterm_inflight_outcomes", counts)
    assert rc is not None, (f"server still running {EXIT_TIMEOUT_S} s after SIGTERM\n"
                            f"--- log tail ---\n{srv.log_tail()}")
    assert rc == 0, f"exit code {rc} after SIGTERM\n--- log tail ---\n{srv.log_tail()}"
    assert "WRONG" not in counts, counts


def _server_flags():
    import subprocess
    try:
        p = subprocess.run([harness.server_binary(), "--help"], capture_output=True, text=True,
                           timeout=20)
        return p.stdout + p.stderr
    except (OSError, subprocess.TimeoutExpired):
        return ""


def test_sigterm_open_stream_answers_every_request(stubs, own_server, golden):
    """SIGTERM while a stream has requests in flight: every request still gets
    exactly one response (a score, or an error such as UNAVAILABLE once the
    server drains), the stream ends OK and the server exits 0."""
    import threading
    srv = own_server
    n = 300
    half = threading.Event()
    sent = []

    def requests():
        for i in range(n):
            rid = f"t-{i}"
            sent.append(rid)
            yield harness.request_from_golden(stubs, golden[i % len(golden)], request_id=rid)
        half.wait(30)
        srv.terminate()
        time.sleep(0.2)  # the half-close comes after SIGTERM has been handled

    with grpc.insecure_channel(srv.grpc_address) as ch:
        stub = stubs.scoring_pb2_grpc.ScoringServiceStub(ch)
        call = stub.ScoreStream(requests(), timeout=60)
        responses = []
        broke = None
        try:
            for r in call:
                responses.append(r)
                if len(responses) == n // 2:
                    half.set()
        except grpc.RpcError as e:
            broke = f"{e.code().name}: {e.details()}"
        code = call.code()
    rc = srv.wait(EXIT_TIMEOUT_S)
    assert broke is None, (
        f"stream broke with {broke} after {len(responses)} of {n} responses (SIGTERM sent "
        f"after {n // 2}; server exit code {rc}): responses to accepted requests were lost"
        f"\n--- log tail ---\n{srv.log_tail()}")
    ids = [r.request_id for r in responses]
    errors = {}
    for r in responses:
        if r.HasField("error"):
            errors[r.error.code] = errors.get(r.error.code, 0) + 1
        else:
            g = golden[int(r.request_id[2:]) % len(golden)]
            assert harness.max_abs_diff(r.probabilities, g.probabilities) <= 1e-4, r.request_id
    harness.observe("sigterm_stream_outcomes", {"ok": n - sum(errors.values()),
                                                "errors_by_code": errors})
    assert code == grpc.StatusCode.OK, code
    assert sorted(ids) == sorted(sent) and len(ids) == n, \
        f"{len(ids)} responses for {n} requests; missing {sorted(set(sent) - set(ids))[:10]}"
    assert set(errors) <= {grpc.StatusCode.UNAVAILABLE.value[0]}, errors
    assert rc == 0, f"exit code {rc}\n--- log tail ---\n{srv.log_tail()}"


def test_drain_delay_not_ready_but_serving(stubs, golden, tmp_path):
    """With --drain_delay, SIGTERM first makes the server not ready (/readyz 503,
    gRPC health NOT_SERVING) while it still answers; then it exits 0."""
    if "drain_delay" not in _server_flags():
        pytest.skip("this fusion-server has no --drain_delay flag")
    delay_s = 3.0
    srv = harness.ServerProcess(extra_args=[f"--drain_delay={delay_s:g}s"], log_dir=str(tmp_path))
    harness.call_or_fail(srv.start)
    try:
        with grpc.insecure_channel(srv.grpc_address) as ch:
            stub = stubs.scoring_pb2_grpc.ScoringServiceStub(ch)
            health = stubs.health_pb2_grpc.HealthStub(ch)
            h = stubs.health_pb2
            g = golden[1 % len(golden)]
            stub.Score(harness.request_from_golden(stubs, g), timeout=30)
            t0 = time.monotonic()
            srv.terminate()
            status = None
            while time.monotonic() - t0 < 1.0:
                status, _ = harness.http_get(f"http://{srv.http_address}/readyz", timeout=0.5)
                if status == 503:
                    break
                time.sleep(0.05)
            assert status == 503, f"/readyz {status} after SIGTERM (expected 503)"
            assert harness.http_get(f"http://{srv.http_address}/healthz")[0] == 200
            for service in ("", harness.SERVICE_NAME):
                resp = health.Check(h.HealthCheckRequest(service=service), timeout=5)
                assert resp.status == h.HealthCheckResponse.NOT_SERVING, (service, resp)
            r = stub.Score(harness.request_from_golden(stubs, g, request_id="during-drain"),
                           timeout=10)
            assert harness.max_abs_diff(r.probabilities, g.probabilities) <= 1e-4
            assert time.monotonic() - t0 < delay_s, "checks took longer than the drain delay"
        rc = srv.wait(delay_s + EXIT_TIMEOUT_S)
        took = time.monotonic() - t0
        harness.observe("drain_delay_exit_s", round(took, 2))
        assert rc == 0, f"exit code {rc}\n--- log tail ---\n{srv.log_tail()}"
        assert took >= delay_s - 0.1, f"exited {took:.2f} s after SIGTERM, drain_delay {delay_s} s"
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait(timeout=10)
