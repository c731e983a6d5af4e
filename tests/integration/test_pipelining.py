"""The pipelined executor and the merge setting, through the real server and
the real LibTorch runtime: answers stay exact, the log says what was chosen,
and a bad flag stops the server with a clear message."""
import subprocess
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

import harness

TOL = 1e-4


def score_all_concurrently(server, stubs, golden):
    channel = grpc.insecure_channel(server.grpc_address)
    stub = stubs.scoring_pb2_grpc.ScoringServiceStub(channel)
    # Attention on every third request: batches mix weights and no weights.
    jobs = [(i, g) for i in range(3) for g in golden]

    def call(job):
        i, g = job
        attention = (stubs.scoring_pb2.ATTENTION_NONE,
                     stubs.scoring_pb2.ATTENTION_NONE,
                     stubs.scoring_pb2.ATTENTION_PER_HEAD)[i]
        return g, attention, stub.Score(harness.request_from_golden(
            stubs, g, attention=attention, request_id=f"{i}-{g.request_id}"),
            timeout=60)

    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            return list(pool.map(call, jobs))
    finally:
        channel.close()


@pytest.mark.parametrize("pipelining", ["on", "off"])
def test_scores_match_golden_with_and_without_pipelining(
        stubs, golden, tmp_path, pipelining):
    server = harness.ServerProcess(log_dir=str(tmp_path),
                                   extra_args=[f"--pipelining={pipelining}"])
    harness.call_or_fail(server.start)
    try:
        results = score_all_concurrently(server, stubs, golden)
        before_stop = server.log_tail(200)
    finally:
        server.stop()
    wrong = [f"{g.request_id}: {r.score} != {g.score}" for g, _, r in results
             if abs(r.score - g.score) > TOL]
    assert not wrong, wrong[:5]
    per_head = stubs.scoring_pb2.ATTENTION_PER_HEAD
    for g, attention, r in results:
        if attention == per_head:
            got = list(r.attention.text_to_features)
            assert harness.max_abs_diff(got, harness.flatten(g.text_to_features)) < TOL
        else:
            assert not r.attention.text_to_features
    said = ("during the previous one's forward" if pipelining == "on"
            else "after the previous one's forward")
    assert said in before_stop, before_stop
    assert max(r.timing.batch_size for _, _, r in results) > 1


def test_merge_cost_is_measured_at_load_unless_given(stubs, tmp_path):
    for extra, expected in (([], None), (["--merge_cost_tokens=0"], "0")):
        server = harness.ServerProcess(log_dir=str(tmp_path), extra_args=extra)
        harness.call_or_fail(server.start)
        log = server.log_tail(200)
        server.stop()
        measured = [line for line in log.splitlines() if "fixed cost is" in line]
        if expected is None:
            assert measured, log
            value = float(measured[0].split("fixed cost is ")[1].split()[0])
            assert value > 0, measured[0]
        else:
            assert not measured, "a set merge_cost_tokens must not be measured"


@pytest.mark.parametrize("flag,message", [
    ("--pipelining=sometimes", "--pipelining must be auto, on or off"),
    ("--merge_cost_tokens=-5", "--merge_cost_tokens must be finite and >= 0"),
    ("--merge_cost_tokens=inf", "--merge_cost_tokens must be finite and >= 0"),
])
def test_a_bad_flag_stops_the_server_with_a_message(tmp_path, flag, message):
    server = harness.ServerProcess(log_dir=str(tmp_path), extra_args=[flag])
    result = subprocess.run(server.args, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
