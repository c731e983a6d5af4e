#!/usr/bin/python3
"""Throughput under a backlog (CPU): does the server serve as many requests
per second with a deep queue as with a shallow one, and does it catch up
after it fell behind once? With every length bucket allowed batches up to
max_batch_size (64), a backlog fills batches of 64 long rows, which on a CPU
compute about a third of the rows per second of small batches: a server that
fell behind then served less than its arrivals and never caught up (the
60-s soak at 70% of capacity failed in CI that way). The batch caps measured
at load (the default) are meant to prevent it.

  env -u OPENBLAS_CORETYPE /usr/bin/python3 bench/run_backlog_bench.py
  ... --rounds 1 --stall_run_s 20 --out /tmp/backlog.json     (shorter)

The variants alternate within each round (a fresh server each): "measured"
(the default: bucket_max_batch_sizes measured at load) and "off"
(--bucket_max_batch_sizes=off: every bucket up to max_batch_size). The
soak's workload (6-128 token ids, attention on 10%), unpinned, as the soak
runs. For each:
1. closed loops at concurrency 64, 256 and 1024: responses/s, p99, mean
   batch size, mean compute time per batch (server side);
2. the stall: an open loop at 70% of the c=64 figure; after --stall_at_s the
   server is SIGSTOPped for --stall_s (a machine stall, as a busy VM has)
   and then continued. Reported per second: OK/s and errors; and when, if
   ever, the load was answered all OK again with a p99 under 1 s.
The calls' deadline is fusion-bench's default (10 s).
Needs build/server/fusion-server and build/client/fusion-bench.
"""
import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "reliability"))
import overload_support as ov  # noqa: E402
from overload_support import harness  # noqa: E402

WORKLOAD = ["--synthetic_lengths=uniform:6:128", "--attention_fraction=0.1"]
VARIANTS = {"measured": [], "off": ["--bucket_max_batch_sizes=off"]}
CONCURRENCIES = (64, 256, 1024)
LOAD_SHARE = 0.7
RECOVERED_P99_US = 1e6


def closed_loops(target, seconds):
    report = ov.run_bench(target, [
        f"--sweep=concurrency:{','.join(map(str, CONCURRENCIES))}",
        f"--duration={seconds}s", "--warmup=1s", *WORKLOAD],
        timeout_s=len(CONCURRENCIES) * (seconds + 60))
    return {str(run["concurrency"]): {
        "ok_rps": round(run["ok_rps"], 1),
        "p99_ms": round(run["latency_us"]["p99"] / 1000, 1),
        "mean_batch": round(run["server"]["mean_batch_size"], 1),
        "mean_compute_ms": round(run["server"]["mean_compute_us"] / 1000, 1),
    } for run in report["runs"]}


def stall_run(server, rate, seconds, stall_at_s, stall_s):
    """The open loop with a SIGSTOP of stall_s after stall_at_s."""
    report = ov.open_loop_with_stall(server, rate, seconds, stall_at_s, stall_s, WORKLOAD)
    timeline = report["runs"][0]["timeline"]
    return {"rate_rps": round(rate), "errors": report["totals"]["errors"],
            "ok": report["totals"]["ok"], "requests": report["totals"]["requests"],
            "recovered_s_after_stall": ov.seconds_to_catch_up(
                timeline, stall_at_s + stall_s, RECOVERED_P99_US),
            "every_second": [{
                "ok": p["codes"].get("OK", 0),
                "errors": {c: n for c, n in p["codes"].items() if c != "OK"},
                "ok_p99_ms": None if p["ok_p99_us"] is None else round(p["ok_p99_us"] / 1000, 1),
            } for p in timeline]}


def measure_variant(name, args, log_dir):
    server = harness.ServerProcess(log_dir=log_dir, extra_args=args,
                                   env={"OPENBLAS_CORETYPE": None}).start()
    try:
        caps = [line.split("largest batch per length bucket ")[1].strip()
                for line in server.log_tail().splitlines()
                if "largest batch per length bucket" in line]
        loops = closed_loops(server.grpc_address, ARGS.closed_s)
        rate = LOAD_SHARE * loops["64"]["ok_rps"]
        stall = stall_run(server, rate, ARGS.stall_run_s, ARGS.stall_at_s, ARGS.stall_s)
    finally:
        rc = server.stop()
    print(f"{name}: closed loops {json.dumps(loops)}; stall errors {stall['errors']}, "
          f"recovered {stall['recovered_s_after_stall']} s after it", flush=True)
    return {"caps_logged": caps[0] if caps else None, "closed_loops": loops,
            "stall": stall, "exit": rc}


def summary(rounds):
    """Per round, the ratios side by side: each variant's OK/s with DEEP
    calls in flight over its OK/s with 64, and measured over off at each
    concurrency."""
    out = []
    for r in rounds:
        loops = {name: v["closed_loops"] for name, v in r.items()}
        out.append({
            "deep_over_64": {name: {c: round(l[c]["ok_rps"] / l["64"]["ok_rps"], 2)
                                    for c in l if c != "64"} for name, l in loops.items()},
            "measured_over_off": {c: round(loops["measured"][c]["ok_rps"] / loops["off"][c]["ok_rps"], 2)
                                  for c in loops["measured"]},
            "stall_errors": {name: sum(v["stall"]["errors"].values()) for name, v in r.items()},
        })
    return out


def main():
    out = {"what": __doc__.split("\n\n")[0], "workload": WORKLOAD,
           "config": vars(ARGS), "rounds": []}
    log_dir = harness.tempfile.mkdtemp(prefix="fusion-backlog-")
    for r in range(ARGS.rounds):
        order = list(VARIANTS) if r % 2 == 0 else list(reversed(VARIANTS))
        out["rounds"].append({name: measure_variant(name, VARIANTS[name], log_dir)
                              for name in order})
    out["summary"] = summary(out["rounds"])
    with open(ARGS.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {ARGS.out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--closed_s", type=float, default=4)
    parser.add_argument("--stall_run_s", type=float, default=30)
    parser.add_argument("--stall_at_s", type=float, default=8)
    parser.add_argument("--stall_s", type=float, default=2)
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "results",
                                                      "backlog_throughput.json"))
    ARGS = parser.parse_args()
    main()
