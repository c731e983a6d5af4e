#!/usr/bin/python3
"""Overload figures (CPU): a burst at ten times the server's capacity, and
client deadlines under overload, on a server pinned to one core with the
load generator (fusion-bench) on the other, with the bundle's own settings
(max_queue_size 1024).

  env -u OPENBLAS_CORETYPE /usr/bin/python3 bench/run_overload_bench.py
  ... --burst_s 8 --workloads long --out /tmp/overload.json     (shorter)

Two workloads, each against a fresh server: "golden" (the bundle's golden
requests: short text, tokenized by the server) and "long" (64-128 token ids:
about ten times the compute per request, the same cost to receive and
refuse). For each, in one run:
1. saturation: fusion-bench closed loop at concurrency 64, the bundle's
   max_batch_size: the responses/s the server keeps once a queue forms, as
   under any overload (S); closed loops at 8, 16 and 32 are reported too
   (long requests: smaller batches give more, see saturation_rps);
2. burst: one open loop (Poisson arrivals, 4 channels, 5-s call deadlines)
   at S/2 for --pre_s, F x S for --burst_s, S/2 again for --post_s; F is
   3, then 10 (--factors: one burst after the other, to see where refusals
   stop being fast). Reported: the refusals
   (RESOURCE_EXHAUSTED) and their time, client side from the hand-over to
   gRPC to the answer (refuse p99); the accepted requests' latency from their
   intended send time (accepted p99); any other code; the server's RSS
   (/proc, every 50 ms: before, peak during, after) and open fds; the OK p99
   of every 100 ms; the recovery time: from the burst's end to the first
   100-ms slice from which the OK p99 over the next second is back at or
   under the pre-burst p99 (the p99 of the first phase's OK requests); and
   how long the server stayed busy once the generator was done;
3. deadlines: an open loop at 10 x S for --deadline_s where every call has a
   --deadline_ms deadline. Reported: the codes the client saw; how late each
   DEADLINE_EXCEEDED came (its time minus the deadline); and the server's
   counters over the run: rows computed (the sum of fusion_batch_size) against
   requests answered OK (fusion_requests_total{code="OK"}): equal means no
   request failed for its deadline (or cancelled) was ever computed; and the
   server's own request durations (fusion_request_duration_seconds), which
   show whether it held any request past its deadline.
Needs build/server/fusion-server and build/client/fusion-bench.
"""
import argparse
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "reliability"))
import overload_support as ov  # noqa: E402
from overload_support import harness  # noqa: E402

SERVER_CORE, CLIENT_CORE = "0", "1"
WORKLOADS = {
    "golden": {"args": [], "what": "models/fusion/1/golden.jsonl (text + features)"},
    "long": {"args": ["--synthetic_lengths=uniform:64:128"],
             "what": "generated: 64-128 token ids + a feature_vector"},
}
BURST_CHANNELS = 4
# Each burst call's deadline, and the most calls the generator keeps open: a
# server that falls behind shows as DEADLINE_EXCEEDED after BURST_TIMEOUT
# instead of a generator that stops (and a run that never ends).
BURST_TIMEOUT = "5s"
BURST_MAX_OUTSTANDING = 200000


def start_server(log_dir, extra_args):
    server = harness.ServerProcess(log_dir=log_dir, extra_args=extra_args,
                                   env={"OPENBLAS_CORETYPE": None})
    server.args = ["taskset", "-c", SERVER_CORE] + server.args
    return server.start()


def snapshot(server):
    pid = server.proc.pid
    return {"rss_mib": round(ov.rss_bytes(pid) / ov.MIB, 1), "fds": ov.fd_count(pid),
            "threads": ov.thread_count(pid)}


def wait_until_idle(server, timeout_s=180):
    """Seconds until nothing is in flight in the server (None: not in time)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if ov.metric(harness.scrape_metrics(server), "fusion_inflight_requests") == 0:
            return round(time.monotonic() - start, 2)
        time.sleep(0.1)
    return None


def burst(server, saturation, factor, workload, args):
    base, peak = saturation * args.base_fraction, saturation * factor
    phases = [(base, args.pre_s), (peak, args.burst_s), (base, args.post_s)]
    before = snapshot(server)
    counters_before = ov.compute_counters(harness.scrape_metrics(server))
    with ov.ProcessSampler(server.proc.pid) as sampler:
        report = ov.run_bench(server.grpc_address, [
            f"--rate_profile={ov.rate_profile(phases)}", "--warmup=2s", "--timeline=100ms",
            "--timeline_latencies", f"--channels={BURST_CHANNELS}",
            f"--timeout={BURST_TIMEOUT}", f"--max_outstanding={BURST_MAX_OUTSTANDING}",
            "--drain_timeout=10s", *workload],
            timeout_s=sum(p[1] for p in phases) + 300,
            pin_core=CLIENT_CORE)
        idle_after_s = wait_until_idle(server)
        time.sleep(1.0)
    after = snapshot(server)
    counters = ov.counters_delta(ov.compute_counters(harness.scrape_metrics(server)),
                                 counters_before)
    run = report["runs"][0]
    pre, during, post = run["phases"]
    start = run["window_start_monotonic_s"]
    burst_start, burst_end = start + args.pre_s, start + args.pre_s + args.burst_s
    reference = ov.code_latency(pre, "OK", "latency_us")["p99"]
    timeline = run["timeline"]
    envelope = ov.span_p99_envelope_us(timeline, 0, args.pre_s)
    return {
        "rates": {"base_rps": round(base, 1), "burst_rps": round(peak, 1),
                  "pre_s": args.pre_s, "burst_s": args.burst_s, "post_s": args.post_s},
        "pre_burst": phase_figures(pre),
        "burst": phase_figures(during),
        "post_burst": phase_figures(post),
        "refuse_p99_ms": ms((ov.code_latency(during, "RESOURCE_EXHAUSTED") or {}).get("p99")),
        "accepted_p99_ms": ms((ov.code_latency(during, "OK", "latency_us") or {}).get("p99")),
        "server_busy_after_the_run_s": idle_after_s,
        "pre_burst_p99_ms": ms(reference),
        "recovery_s": ov.recovery_s(timeline, args.pre_s + args.burst_s, reference),
        "recovery_to_pre_burst_second_s": ov.recovery_s(
            timeline, args.pre_s + args.burst_s, envelope),
        "pre_burst_worst_second_p99_ms": ms(envelope),
        "recovery_definition": (
            "seconds from the burst's end to the first 100-ms slice from which the p99 of "
            "the OK requests intended in the next 1 s is <= the pre-burst OK p99 "
            "(recovery_s), or <= the highest p99 of any 1 s before the burst "
            "(recovery_to_pre_burst_second_s: a second's p99 varies by itself)"),
        "server_rss_mib": {
            "before": before["rss_mib"],
            "peak_during": round(sampler.peak_rss(burst_start, burst_end) / ov.MIB, 1),
            "peak_whole_run": round(sampler.peak_rss() / ov.MIB, 1),
            "after": after["rss_mib"]},
        "call_deadline": BURST_TIMEOUT,
        "server_fds": {"before": before["fds"], "max_during": sampler.max_fds(),
                       "after": after["fds"]},
        "server_threads": {"before": before["threads"], "after": after["threads"]},
        "server_counters": counters,
        "generator": {"mean_send_lag_us": run["client"]["mean_send_lag_us"],
                      "max_send_lag_us": run["client"]["max_send_lag_us"],
                      "cpu_cores": run["client"]["cpu_cores"]},
        "ok_p99_every_100ms": [
            {"t_s": p["t_s"], "ok_p99_ms": ms(p["ok_p99_us"]), "requests": p["requests"],
             "refused": p["codes"].get("RESOURCE_EXHAUSTED", 0)} for p in timeline],
    }


def deadlines(server, saturation, workload, args):
    rate = saturation * args.deadline_factor
    counters_before = ov.compute_counters(harness.scrape_metrics(server))
    histogram_before = ov.duration_histogram(harness.scrape_metrics(server))
    report = ov.run_bench(server.grpc_address, [
        f"--rate_profile={ov.rate_profile([(rate, args.deadline_s)])}", "--warmup=0s",
        f"--timeout={args.deadline_ms}ms", "--drain_timeout=5s",
        f"--max_outstanding={BURST_MAX_OUTSTANDING}",
        f"--channels={BURST_CHANNELS}", *workload],
        timeout_s=args.deadline_s + 120, pin_core=CLIENT_CORE)
    queued_at_end = ov.metric(harness.scrape_metrics(server), "fusion_queue_depth")
    idle_after_s = wait_until_idle(server)
    samples = harness.scrape_metrics(server)
    counters = ov.counters_delta(ov.compute_counters(samples), counters_before)
    histogram = [(le, n - dict(histogram_before).get(le, 0))
                 for le, n in ov.duration_histogram(samples)]
    run = report["runs"][0]
    client_codes = dict(run["errors"], OK=run["latency_us"]["count"] - sum(run["errors"].values()))
    expired = ov.code_latency(run, "DEADLINE_EXCEEDED")
    deadline_us = args.deadline_ms * 1000
    server_ok = counters["requests_by_code"].get("OK", 0)
    total = histogram[-1][1] if histogram else 0
    return {
        "rate_rps": round(rate, 1), "seconds": args.deadline_s, "deadline_ms": args.deadline_ms,
        "client_codes": client_codes,
        "lateness_ms": None if expired is None else {
            k: ms(expired[k] - deadline_us) for k in ("min", "p50", "p90", "p99", "p999", "max")},
        "lateness_definition": "client side: answer time minus the deadline, from the "
                               "hand-over to gRPC, over the DEADLINE_EXCEEDED calls",
        "server_counters": counters,
        "rows_computed_equal_server_ok": counters["rows_computed"] == server_ok,
        "queued_when_every_deadline_had_passed": queued_at_end,
        "server_busy_after_the_run_s": idle_after_s,
        "computed_but_answered_late": server_ok - client_codes.get("OK", 0),
        "server_duration_share_within": {
            f"{le:g}s": round(n / total, 4) if total else None for le, n in histogram
            if le in (0.1, 0.25, 0.5, 1.0)},
    }


def phase_figures(phase):
    def summary(code, kind):
        entry = ov.code_latency(phase, code, kind)
        return None if entry is None else {
            k: ms(entry[k]) for k in ("p50", "p90", "p99", "p999", "max")}
    return {"rate": round(phase["rate"], 1), "requests": phase["requests"],
            "ok_rps": phase["ok_rps"], "codes": phase["codes"],
            "ok_latency_ms": summary("OK", "latency_us"),
            "refuse_service_ms": summary("RESOURCE_EXHAUSTED", "service_us")}


def ms(us):
    return None if us is None else round(us / 1000, 3)


def measure(name, args, log_dir, server_args, known_saturation=None):
    """Saturation, burst and deadlines of one workload, on a fresh server.
    With known_saturation (req/s, from an earlier variant), the bursts are
    sized from it, so that variants see the same offered rates."""
    workload = WORKLOADS[name]["args"]
    extra = [] if args.max_queue_size is None else [f"--max_queue_size={args.max_queue_size}"]
    server = start_server(log_dir, extra + server_args)
    try:
        idle = snapshot(server)
        _, _, by_concurrency = ov.saturation_rps(
            server.grpc_address, args.saturation_s, warmup_s=2, concurrencies=(8, 16, 32, 64),
            pin_core=CLIENT_CORE, extra=workload)
        measured, sat_run, _ = ov.saturation_rps(
            server.grpc_address, args.saturation_s, warmup_s=2, pin_core=CLIENT_CORE,
            extra=workload)
        saturation = known_saturation or measured
        print(f"{name}: saturation {measured:.0f} req/s; bursts sized from "
              f"{saturation:.0f}", flush=True)
        result = {
            "workload": WORKLOADS[name]["what"], "server_at_start": idle,
            "saturation": {"ok_rps": measured, "bursts_sized_from_rps": saturation,
                           "concurrency": sat_run["concurrency"],
                           "ok_rps_by_concurrency": by_concurrency,
                           "p99_ms": ms(sat_run["latency_us"]["p99"]),
                           "mean_batch_size": sat_run["server"]["mean_batch_size"]},
            "bursts": {},
        }
        for factor in args.factors:
            b = burst(server, saturation, factor, workload, args)
            result["bursts"][f"{factor:g}x"] = b
            print(f"{name}: burst at {factor:g}x = {b['rates']['burst_rps']:.0f} req/s: refuse "
                  f"p99 {b['refuse_p99_ms']} ms, accepted p99 {b['accepted_p99_ms']} ms, "
                  f"pre-burst p99 {b['pre_burst_p99_ms']} ms, recovery {b['recovery_s']} s, "
                  f"RSS {b['server_rss_mib']}, busy {b['server_busy_after_the_run_s']} s "
                  "after the run", flush=True)
        try:
            result["deadlines"] = d = deadlines(server, saturation, workload, args)
            print(f"{name}: deadlines: codes {d['client_codes']}, lateness {d['lateness_ms']}, "
                  f"rows computed {d['server_counters']['rows_computed']} vs server OK "
                  f"{d['server_counters']['requests_by_code'].get('OK', 0)}", flush=True)
        except harness.HarnessError as e:
            # After a burst it could not absorb, the server may not even take
            # a connection: that is a figure too.
            result["deadlines"] = {"error": str(e)[-1500:]}
            print(f"{name}: deadlines: {e}", flush=True)
    finally:
        result_rc = server.stop()
    result["server_exit_code"] = result_rc
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "results",
                                                      "overload_cpu.json"))
    parser.add_argument("--workloads", default="golden,long")
    parser.add_argument("--saturation_s", type=float, default=5,
                        help="window of each closed-loop level")
    parser.add_argument("--factors", type=lambda v: [float(x) for x in v.split(",")],
                        default=[3.0, 10.0], help="burst rates, in multiples of the capacity")
    parser.add_argument("--deadline_factor", type=float, default=10)
    parser.add_argument("--base_fraction", type=float, default=0.5)
    parser.add_argument("--pre_s", type=float, default=5)
    parser.add_argument("--burst_s", type=float, default=30)
    parser.add_argument("--post_s", type=float, default=10)
    parser.add_argument("--deadline_s", type=float, default=10)
    parser.add_argument("--deadline_ms", type=int, default=100)
    parser.add_argument("--max_queue_size", type=int, default=None,
                        help="override the bundle's (1024)")
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME=SERVER ARGS (space-separated), repeatable: each "
                        "workload is measured on a server of each variant, one after "
                        "the other, so that variants are compared within one run")
    parser.add_argument("--size_bursts_from", choices=("own", "first"), default="own",
                        help="size each variant's bursts from its own saturation (a "
                        "target relative to capacity), or from the first variant's "
                        "(the same offered rates for all)")
    args = parser.parse_args()
    log_dir = os.path.join("/tmp", f"overload-bench-{os.getpid()}")
    os.makedirs(log_dir, exist_ok=True)
    result = {"setup": {"server_core": SERVER_CORE, "client_core": CLIENT_CORE,
                        "host_cpus": os.cpu_count(), "burst_channels": BURST_CHANNELS,
                        "burst_call_deadline": BURST_TIMEOUT,
                        "args": vars(args), "unix_time": int(time.time())},
              "workloads": {}}
    variants = [v.split("=", 1) for v in args.variant] or [["default", ""]]
    for name in args.workloads.split(","):
        saturation = None  # the first variant's, for all of them
        for variant, server_args in variants:
            print(f"== {name}, server {variant}: {server_args or '(no extra args)'}",
                  flush=True)
            measured = measure(name, args, log_dir, server_args.split(),
                               saturation if args.size_bursts_from == "first" else None)
            saturation = measured["saturation"]["bursts_sized_from_rps"]
            if len(variants) == 1:
                result["workloads"][name] = measured
            else:
                measured["server_args"] = server_args
                result["workloads"].setdefault(name, {})[variant] = measured
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
