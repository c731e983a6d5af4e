"""Readiness and graceful drain, driven with real signals and real probes."""
import shutil
import signal
import subprocess
import time

import grpc
from google.protobuf import text_format

import harness


def _slow_loading_repository(stubs, root):
    """A copy of the bundle whose warm-up takes seconds, so the test can
    observe the server while it loads."""
    bundle = root / "fusion" / "1"
    shutil.copytree(harness.bundle_dir(), bundle)
    config = harness.load_config(stubs)
    # Each round warms every bucket at every batch size (~0.8 s on 2 CPUs).
    config.runtime.warmup_iterations = 8
    (bundle / "config.pbtxt").write_text(text_format.MessageToString(config))
    return str(root)


def test_readyz_is_503_while_loading_then_200(stubs, tmp_path):
    repo = _slow_loading_repository(stubs, tmp_path / "models")
    srv = harness.ServerProcess(log_dir=str(tmp_path), model_repository=repo)
    srv.check_binary()
    # Started by hand: harness's start() would wait for readiness.
    with open(srv.log_path, "wb") as log:
        srv.proc = subprocess.Popen(srv.args, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=harness.REPO_ROOT)
    try:
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status, body = harness.http_get(f"http://{srv.http_address}/readyz")
            if status is not None and (not seen or seen[-1][0] != status):
                seen.append((status, body.strip()))
            if status == 200:
                break
            time.sleep(0.05)
        statuses = [s for s, _ in seen]
        assert statuses[0] == 503, f"first /readyz answer: {seen}\n{srv.log_tail()}"
        assert "loading" in seen[0][1]
        assert statuses[-1] == 200, f"never ready: {seen}\n{srv.log_tail()}"
        # Liveness holds throughout.
        assert harness.http_get(f"http://{srv.http_address}/healthz")[0] == 200
    finally:
        srv.stop()


def test_readyz_goes_503_at_once_on_sigterm_and_requests_still_served(
        stubs, golden, tmp_path):
    srv = harness.ServerProcess(log_dir=str(tmp_path),
                                extra_args=["--drain_delay=2s"])
    harness.call_or_fail(srv.start)
    try:
        stub = stubs.scoring_pb2_grpc.ScoringServiceStub(
            grpc.insecure_channel(srv.grpc_address))
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        status, body = harness.http_get(f"http://{srv.http_address}/readyz")
        assert status == 503 and "shutting down" in body
        # During the drain delay the server still answers.
        response = stub.Score(harness.request_from_golden(stubs, golden[0]),
                              timeout=10)
        assert abs(response.score - golden[0].score) < 1e-4
        assert srv.wait(timeout=30) == 0
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
