"""--precision through the real server: fp32 answers golden.jsonl exactly,
bf16 (and AUTO, which runs large batches in bf16 on a CPU that computes it
natively) within 0.01; GetModelMetadata, fusion_build_info and the log say
which precision serves; a bad value stops the server with a message."""
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

import harness

FP32_TOL = 1e-4
BF16_TOL = 0.01  # runtime::kMaxBf16ProbabilityDelta


def native_bf16():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return bool({"avx512_bf16", "amx_bf16"} & flags)
    return False


needs_native_bf16 = pytest.mark.skipif(
    not native_bf16(),
    reason="this CPU has neither avx512_bf16 nor amx_bf16: bf16 would be "
           "emulated, and AUTO serves fp32")


def build_info_precision(server):
    for key in harness.scrape_metrics(server):
        if key.startswith("fusion_build_info{"):
            match = re.search(r'precision="([^"]*)"', key)
            assert match, key
            return match.group(1)
    raise AssertionError("no fusion_build_info in /metrics")


def serve(tmp_path, stubs, golden, precision):
    """Starts a server with --precision=`precision`, scores every golden
    request alone and then all at once (so batches form), and returns the
    metadata, the build_info label, the (golden, response) pairs of each
    pass, and the log."""
    server = harness.ServerProcess(log_dir=str(tmp_path),
                                   extra_args=[f"--precision={precision}"])
    harness.call_or_fail(server.start)
    channel = grpc.insecure_channel(server.grpc_address)
    try:
        pb = stubs.scoring_pb2
        stub = stubs.scoring_pb2_grpc.ScoringServiceStub(channel)
        metadata = stub.GetModelMetadata(pb.GetModelMetadataRequest(), timeout=10)
        label = build_info_precision(server)

        def call(g):
            return g, stub.Score(harness.request_from_golden(stubs, g), timeout=60)

        alone = [call(g) for g in golden]
        with ThreadPoolExecutor(max_workers=64) as pool:
            together = list(pool.map(call, golden * 4))
        log = server.log_tail(200)
    finally:
        channel.close()
        server.stop()
    return metadata, label, alone, together, log


def error(results):
    """The largest probability error over (golden, response) pairs."""
    return max((harness.max_abs_diff(r.probabilities, g.probabilities)
                for g, r in results), default=0.0)


def test_fp32_is_exact_and_says_so(tmp_path, stubs, golden):
    metadata, label, alone, together, log = serve(tmp_path, stubs, golden, "fp32")
    assert metadata.precision == "fp32"
    assert metadata.bf16_min_positions == 0
    assert label == "fp32"
    assert "precision: fp32)" in log, log
    assert error(alone) <= FP32_TOL
    assert error(together) <= FP32_TOL


@needs_native_bf16
def test_bf16_is_within_tolerance_and_says_so(tmp_path, stubs, golden):
    metadata, label, alone, together, log = serve(tmp_path, stubs, golden, "bf16")
    assert metadata.precision == "bf16"
    assert metadata.bf16_min_positions == 0
    assert label == "bf16"
    assert "precision: bf16)" in log, log
    assert "bf16 moves a golden probability by up to" in log, log
    worst = max(error(alone), error(together))
    assert worst <= BF16_TOL
    # bf16 really ran: fp32 answers within 1e-5 or so.
    assert worst > FP32_TOL
    harness.observe("bf16_max_probability_error", worst)


@needs_native_bf16
def test_auto_runs_large_batches_in_bf16(tmp_path, stubs, golden):
    metadata, label, alone, together, log = serve(tmp_path, stubs, golden, "auto")
    assert "bf16/fp32 forward time by positions" in log, log
    if metadata.precision == "fp32":
        # Timing may find bf16 no faster on a slow or busy host.
        assert "bf16 is not faster" in log, log
        pytest.skip("bf16 measured no faster than fp32 here")
    assert label == "bf16"
    assert metadata.bf16_min_positions > 0
    said = (f"precision: bf16 from {metadata.bf16_min_positions} positions "
            "per batch (requests x (tokens + features)), fp32 below")
    assert said in log, log
    # A request alone below the crossover runs in fp32: exact.
    short = [(g, r) for g, r in alone if len(g.token_ids) +
             len(g.feature_vector) < metadata.bf16_min_positions]
    assert error(short) <= FP32_TOL
    assert error(alone) <= BF16_TOL
    assert error(together) <= BF16_TOL
    harness.observe("auto_bf16_min_positions", metadata.bf16_min_positions)
    harness.observe("auto_fp32_requests_alone", len(short))


def test_a_bad_precision_stops_the_server_with_a_message(tmp_path):
    server = harness.ServerProcess(log_dir=str(tmp_path),
                                   extra_args=["--precision=fp16"])
    result = subprocess.run(server.args, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--precision must be auto, fp32 or bf16, not 'fp16'" in (
        result.stdout + result.stderr)
