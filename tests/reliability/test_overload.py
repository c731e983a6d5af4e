"""Overload, end to end: a burst at ten times the server's capacity, and
client deadlines under overload (issue 17, "Overload"), CI-sized.

The load is fusion-bench (open loop, Poisson arrivals) against a real
fusion-server with the bundle's own settings; capacity is measured first in
the same module (closed loop). As in the benchmark, the server is pinned to
one CPU and the generator to another (when the machine has two). The
requests are long (64-128 token ids): at ten times the capacity the
generator and the refusals then need a small share of the CPU, which short
requests would not leave them (receiving and refusing a call costs the
server about 30 us of CPU: ten times the capacity of short requests is
close to all one core can receive, and more than one core of fusion-bench
can send).

Two settings make the targets reachable: the largest batch of each length
bucket measured at load (the default; under overload the batcher fills
every batch, and on a CPU a batch of 64 long requests computes a third of
the rows per second that a batch of 4 does), and the queue full once its work would
take longer than max_queue_wait_us (1 s here, opt-in) to compute, so an accepted request
waits at most about that long, and after the burst the queue drains in
about MAX_QUEUE_WAIT_S / (1 - BASE). The bounds are loose enough for a busy
machine.

Run: /usr/bin/python3 -m pytest tests/reliability/test_overload.py -q
"""
import os
import time

import pytest

import harness
import overload_support as ov

OK, REFUSED, EXPIRED = "OK", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"
WORKLOAD = ["--synthetic_lengths=uniform:64:128"]
MAX_QUEUE_WAIT_S = 1.0


@pytest.fixture(scope="module")
def server_args():
    return [f"--max_queue_wait_us={int(MAX_QUEUE_WAIT_S * 1e6)}"]
# 6 s before the burst: the recovery reference is the highest p99 of any
# second of it, and over 3 s that envelope missed the 11-16 ms seconds this
# machine has now and then (3 of 9 runs, old and new cap measurement alike,
# then read as "not recovered"; 0 of 4 with 6 s).
PRE_S, BURST_S, POST_S = 6, 6, 4
# Refusals must be fast: the target is a 5 ms p99 on a quiet
# machine (the benchmark measures it). On a busy 2-core one, the moments the
# machine's other work takes the CPU away add up to 100s of ms to the tail,
# so the median is held to 5 ms and the p99 only to no stall.
REFUSE_P50_MS = 5
REFUSE_P99_MS = 250
# The traffic before and after the burst, as a share of the capacity: after
# the burst the queue drains at (1 - BASE) x capacity.
BASE = 0.25
RECOVERY_S = 2.0
DEADLINE_MS = 100


CPUS = sorted(os.sched_getaffinity(0))
SERVER_CORE, CLIENT_CORE = (CPUS[0], CPUS[1]) if len(CPUS) >= 2 else (None, None)


@pytest.fixture(scope="module")
def server_core():
    return SERVER_CORE


@pytest.fixture(scope="module")
def saturation(server):
    rps, run, _ = harness.call_or_fail(lambda: ov.saturation_rps(
        server.grpc_address, seconds=2, warmup_s=1, concurrencies=(8, 16, 32),
        extra=WORKLOAD, pin_core=CLIENT_CORE))
    assert run["errors"] == {}, run["errors"]
    assert rps > 50, f"the server gives only {rps} req/s closed loop"
    return rps


@pytest.fixture(scope="module")
def burst(server, saturation):
    """One open loop: BASE x S for PRE_S, 10 x S for BURST_S, BASE x S for
    POST_S, the server's RSS and fds sampled meanwhile."""
    pid = server.proc.pid
    phases = [(saturation * BASE, PRE_S), (saturation * 10, BURST_S),
              (saturation * BASE, POST_S)]
    rss_before, fds_before = ov.rss_bytes(pid), ov.fd_count(pid)
    with ov.ProcessSampler(pid) as sampler:
        report = harness.call_or_fail(lambda: ov.run_bench(server.grpc_address, [
            f"--rate_profile={ov.rate_profile(phases)}", "--warmup=1s", "--timeline=100ms",
            "--timeline_latencies", "--channels=4", *WORKLOAD], timeout_s=180,
            pin_core=CLIENT_CORE))
    time.sleep(0.5)
    run = report["runs"][0]
    start = run["window_start_monotonic_s"]
    during = run["phases"][1]
    ov.record("overload capacity (closed loop), req/s", saturation)
    ov.record("overload burst codes", during["codes"])
    ov.record("overload refuse us (p50, p99)", tuple(
        ov.code_latency(during, REFUSED)[k] for k in ("p50", "p99")))
    ov.record("overload accepted us (p50, p99)", tuple(
        ov.code_latency(during, OK, "latency_us")[k] for k in ("p50", "p99")))
    ov.record("overload recovery s", ov.recovery_s(
        run["timeline"], PRE_S + BURST_S, ov.span_p99_envelope_us(run["timeline"], 0, PRE_S)))
    ov.record("overload server RSS MiB (before, peak, after)", tuple(
        round(v / ov.MIB) for v in (rss_before, sampler.peak_rss(), ov.rss_bytes(pid))))
    return {"run": run, "phases": run["phases"], "sampler": sampler, "start": start,
            "rss_before": rss_before, "fds_before": fds_before,
            "rss_after": ov.rss_bytes(pid), "fds_after": ov.fd_count(pid)}


def test_burst_answers_only_ok_or_resource_exhausted(burst, saturation):
    pre, during, post = burst["phases"]
    for name, phase in (("pre-burst", pre), ("burst", during), ("post-burst", post)):
        assert set(phase["codes"]) <= {OK, REFUSED}, (name, phase["codes"])
    assert set(pre["codes"]) == {OK}, f"refusals at {BASE:.0%} of the capacity: {pre['codes']}"
    # At ten times the capacity most requests must be turned away, and the
    # server keeps computing the ones it took.
    refused = during["codes"].get(REFUSED, 0)
    assert refused >= 0.5 * during["requests"], during["codes"]
    assert during["ok_rps"] >= 0.2 * saturation, (during["ok_rps"], saturation)
    assert burst["run"]["unfinished"] == 0


def test_refusals_are_fast(burst):
    during = burst["phases"][1]
    refuse = ov.code_latency(during, REFUSED)
    accepted = ov.code_latency(during, OK, "latency_us")
    assert refuse["p50"] <= REFUSE_P50_MS * 1000, (
        f"time-to-refuse p50 {refuse['p50'] / 1000:.1f} ms; refusals {refuse}")
    assert refuse["p99"] <= REFUSE_P99_MS * 1000, (
        f"time-to-refuse p99 {refuse['p99'] / 1000:.1f} ms; refusals {refuse}")
    # Refusing must cost far less than serving: the slowest refusals are
    # still quicker than the typical accepted request.
    assert refuse["p99"] < accepted["p50"], (refuse, accepted)


def test_accepted_requests_keep_a_bounded_latency(burst, saturation):
    during = burst["phases"][1]
    accepted = ov.code_latency(during, OK, "latency_us")
    # An accepted request waits behind at most MAX_QUEUE_WAIT_S of work, by
    # the server's estimate, then its own batch: bounded by the queue's
    # work, not by the burst.
    bound_s = 2 * MAX_QUEUE_WAIT_S + 0.5
    assert accepted["p99"] / 1e6 <= bound_s, (accepted, f"bound {bound_s:.2f} s")
    # ...and it does not grow while the burst goes on.
    timeline = burst["run"]["timeline"]
    first = ov.ok_latencies(timeline, PRE_S, PRE_S + BURST_S / 2)
    second = ov.ok_latencies(timeline, PRE_S + BURST_S / 2, PRE_S + BURST_S)
    assert first and second
    assert ov.percentile(second, 99) <= 2 * ov.percentile(first, 99) + 100_000, (
        ov.percentile(first, 99), ov.percentile(second, 99))


def test_memory_and_fds_stay_bounded(burst):
    sampler = burst["sampler"]
    peak = sampler.peak_rss()
    growth_mib = (peak - burst["rss_before"]) / ov.MIB
    after_mib = (burst["rss_after"] - burst["rss_before"]) / ov.MIB
    assert growth_mib <= 200, f"RSS grew {growth_mib:.0f} MiB during the burst"
    assert after_mib <= 100, f"RSS {after_mib:.0f} MiB above its start after the burst"
    assert burst["fds_after"] <= burst["fds_before"] + 4, (burst["fds_before"],
                                                            burst["fds_after"])


def test_latency_recovers_within_two_seconds(burst):
    # Back to the pre-burst p99: to the highest p99 of any second before the
    # burst (a second's p99 after it is compared, and it varies by itself).
    timeline = burst["run"]["timeline"]
    reference = ov.span_p99_envelope_us(timeline, 0, PRE_S)
    recovery = ov.recovery_s(timeline, PRE_S + BURST_S, reference)
    series = [(p["t_s"], p["ok_p99_us"]) for p in timeline if p["t_s"] >= PRE_S + BURST_S - 0.5]
    assert recovery is not None and recovery <= RECOVERY_S, (
        f"recovery {recovery} s; pre-burst p99 {reference} us; OK p99 per 100 ms after "
        f"the burst: {series}")


def test_expired_requests_are_never_computed_and_fail_at_their_deadline(server, saturation):
    before = ov.compute_counters(harness.scrape_metrics(server))
    report = harness.call_or_fail(lambda: ov.run_bench(server.grpc_address, [
        f"--rate_profile={ov.rate_profile([(saturation * 10, 5)])}", "--warmup=0s",
        f"--timeout={DEADLINE_MS}ms", "--drain_timeout=5s", "--channels=4", *WORKLOAD],
        timeout_s=120, pin_core=CLIENT_CORE))
    # fusion-bench has returned: every call's deadline has passed. Nothing
    # may be left waiting in the queue (the server failed each expired
    # request at its deadline, not later); only batches already running may
    # still be computing.
    samples = harness.scrape_metrics(server)
    assert ov.metric(samples, "fusion_queue_depth") == 0, "expired requests still queued"
    time.sleep(0.5)
    samples = harness.scrape_metrics(server)
    delta = ov.counters_delta(ov.compute_counters(samples), before)
    run = report["runs"][0]
    assert set(run["errors"]) <= {REFUSED, EXPIRED}, run["errors"]
    assert run["errors"].get(EXPIRED, 0) > 0, f"nothing expired: {run['errors']}"
    server_codes = delta["requests_by_code"]
    # INVALID_ARGUMENT: calls that ended before their request arrived, which
    # the server miscounts (test_calls_gone_before_their_request_...).
    assert set(server_codes) <= {OK, REFUSED, EXPIRED, "CANCELLED", "INVALID_ARGUMENT"}, \
        server_codes
    # Every row the model computed was answered OK: no request failed for
    # its deadline (or its cancellation) was computed.
    assert delta["rows_computed"] == server_codes.get(OK, 0), delta
    assert server_codes.get(EXPIRED, 0) + server_codes.get("CANCELLED", 0) > 0, delta
    # The client hears DEADLINE_EXCEEDED at the deadline, not later: the
    # median within a few ms of it, the slowest 1% within 50 ms past it.
    # (Under CPU starvation gRPC may end a few calls some ms early, see
    # bench/results/overload_cpu.json; that is no lateness.)
    expired = ov.code_latency(run, EXPIRED)
    ov.record("deadline client codes", run["errors"])
    ov.record("deadline server counters", delta)
    ov.record("deadline DEADLINE_EXCEEDED after us (min, p50, p99, max)", tuple(
        expired[k] for k in ("min", "p50", "p99", "max")))
    assert (DEADLINE_MS - 5) * 1000 <= expired["p50"] <= (DEADLINE_MS + 20) * 1000, expired
    assert expired["p99"] <= (DEADLINE_MS + 50) * 1000, expired
    assert ov.metric(samples, "fusion_inflight_requests") == 0, "requests still in flight"


def test_calls_gone_before_their_request_arrives_are_not_counted_invalid(server, stubs):
    """Calls whose deadline passes before their message reaches the server
    (1 us deadlines) are DEADLINE_EXCEEDED or CANCELLED for the server too,
    never INVALID_ARGUMENT: an SRE alerting on bad input would be paged by
    an overload."""
    import grpc
    golden = harness.load_golden()
    request = harness.request_from_golden(stubs, golden[0])
    before = ov.requests_by_code(harness.scrape_metrics(server))
    with grpc.insecure_channel(server.grpc_address) as channel:
        score = stubs.scoring_pb2_grpc.ScoringServiceStub(channel).Score
        score(request, timeout=10)  # connected
        calls = [score.future(request, timeout=1e-6) for _ in range(1000)]
        codes = {call.code().name for call in calls}
    time.sleep(1)
    after = ov.requests_by_code(harness.scrape_metrics(server))
    invalid = after.get("INVALID_ARGUMENT", 0) - before.get("INVALID_ARGUMENT", 0)
    assert codes <= {EXPIRED, OK}, codes
    assert invalid == 0, f"{invalid} of 1000 valid requests counted INVALID_ARGUMENT"
