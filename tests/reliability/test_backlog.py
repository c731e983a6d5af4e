"""A server behind on its work keeps its pace and catches up (issue 17,
overload), with the bundle's own settings:

1. with 1,024 calls in flight it computes about as many requests per second
   as with 64 (closed loops, alternated: 64, 1024, 64, 1024);
2. at half its capacity, stopped for 2 s (SIGSTOP, as a busy VM stalls a
   process), it answers every request OK and is back under a 1-s p99 within
   a few seconds.

The first failed before the batch caps were measured by default: with every
length bucket allowed batches of 64, a backlog filled batches of 64 long
rows, which compute far fewer rows per second than small ones, and the
server served 0.39-0.42 of its 64-in-flight rate with 1,024 in flight
(bench/results/backlog_throughput.json). A server that fell behind then
served less than its arrivals and never caught up: the 60-s soak at 70% of
capacity failed that way in CI (thousands of DEADLINE_EXCEEDED and
RESOURCE_EXHAUSTED).

The stall is at half the capacity, not the soak's 70%: what drains a backlog
is the capacity to spare, and this machine's speed drifts by a third within
minutes (one run at 70% of a capacity measured just before stayed at exactly
the arrival rate, with a 1.5-s p99, for 14 s).

Run: /usr/bin/python3 -m pytest tests/reliability/test_backlog.py -q
"""
import statistics

import harness
import overload_support as ov

WORKLOAD = ["--synthetic_lengths=uniform:6:128", "--attention_fraction=0.1"]
SHALLOW, DEEP = 64, 1024
# The measured caps gave 1.02-1.03 in the benchmark, every bucket up to 64
# gave 0.39-0.42.
DEEP_SHARE_MIN = 0.75
LOAD_SHARE = 0.5
RUN_S, STALL_AT_S, STALL_S = 20, 6, 2
# A 2-s stall at half the capacity leaves 1 s of the server's work queued,
# which the other half drains in about 2 s. 8 s leaves room for a machine
# that slowed by a third.
CAUGHT_UP_P99_US = 1e6
CATCH_UP_S = 8


def test_a_deep_backlog_computes_as_much_as_a_shallow_one(server):
    report = harness.call_or_fail(lambda: ov.run_bench(server.grpc_address, [
        f"--sweep=concurrency:{SHALLOW},{DEEP},{SHALLOW},{DEEP}", "--duration=3s",
        "--warmup=1s", *WORKLOAD], timeout_s=4 * 60))
    rps = {SHALLOW: [], DEEP: []}
    batches = {SHALLOW: [], DEEP: []}
    for run in report["runs"]:
        rps[run["concurrency"]].append(round(run["ok_rps"]))
        batches[run["concurrency"]].append(run["server"]["mean_batch_size"])
    share = statistics.median(rps[DEEP]) / statistics.median(rps[SHALLOW])
    ov.record("backlog", {"ok_rps": rps, "mean_batch": batches, "deep_share": round(share, 2)})
    assert report["totals"]["errors"] == {}, report["totals"]["errors"]
    assert share >= DEEP_SHARE_MIN, (
        f"{DEEP} in flight computed {share:.2f} of the requests/s of {SHALLOW} "
        f"(ok/s {rps}, mean batch {batches})")


def test_a_stall_at_half_capacity_is_caught_up(server):
    capacity, _, _ = harness.call_or_fail(lambda: ov.saturation_rps(
        server.grpc_address, seconds=3, warmup_s=1, extra=WORKLOAD))
    report = harness.call_or_fail(lambda: ov.open_loop_with_stall(
        server, LOAD_SHARE * capacity, RUN_S, STALL_AT_S, STALL_S, WORKLOAD))
    timeline = report["runs"][0]["timeline"]
    caught_up = ov.seconds_to_catch_up(timeline, STALL_AT_S + STALL_S, CAUGHT_UP_P99_US)
    every_second = [(p["codes"], None if p["ok_p99_us"] is None else round(p["ok_p99_us"] / 1000))
                    for p in timeline]
    ov.record("stall", {"capacity_rps": round(capacity), "errors": report["totals"]["errors"],
                        "caught_up_s_after_stall": caught_up})

    assert report["totals"]["errors"] == {}, (
        f"errors after a {STALL_S}-s stall at {LOAD_SHARE:.0%} of {capacity:.0f} req/s: "
        f"{report['totals']['errors']}; every second (codes, OK p99 ms): {every_second}")
    assert caught_up is not None and caught_up <= CATCH_UP_S, (
        f"not back to all OK under a {CAUGHT_UP_P99_US / 1e6:g}-s p99 within {CATCH_UP_S} s "
        f"of the stall's end ({caught_up}); every second (codes, OK p99 ms): {every_second}")
