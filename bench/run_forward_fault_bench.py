#!/usr/bin/python3
"""What a model that throws on some inputs costs everyone else.

Servers, all with the bundle's default settings:
  real       models/fusion/1
  throwing   tests/integration/throwing_bundle.py's bundle: the same model,
             raising on any batch that holds a feature equal to -12345
  baseline   (with --baseline_bin) models/fusion/1 on another fusion-server
             binary, e.g. one built before batch retries existed

Each round drives each server for one window, closed loop at concurrency
64 on golden.jsonl (the happy path); the throwing server gets a second
window with a poisoned client beside it: fusion-bench, open loop at
--poison_rate requests/s, every request marked. Every failed batch is then
computed again in halves, so the good requests batched with a poisoned one
must all succeed. Figures are medians over rounds, ratios per round.

  /usr/bin/python3 bench/run_forward_fault_bench.py [--baseline_bin PATH] \
      [--out bench/results/forward_faults_cpu.json]

Needs build/server/fusion-server and build/client/fusion-bench.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import harness  # noqa: E402
import throwing_bundle  # noqa: E402

BENCH = os.path.join(REPO, "build", "client", "fusion-bench")
GOLDEN = os.path.join(REPO, "models", "fusion", "1", "golden.jsonl")
MARKED_FEATURE = 3


def poisoned_input(path):
    """golden.jsonl with every request marked (by name and in the vector)."""
    with open(GOLDEN, encoding="utf-8") as f, open(path, "w", encoding="utf-8") as out:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            r["feature_vector"][MARKED_FEATURE] = throwing_bundle.MARKER_FEATURE_VALUE
            name = list(r["features"])[MARKED_FEATURE]
            r["features"][name] = throwing_bundle.MARKER_FEATURE_VALUE
            out.write(json.dumps(r) + "\n")
    return path


def counters(server):
    s = harness.scrape_metrics(server)
    pick = lambda prefix: sum(v for k, v in s.items() if k.startswith(prefix))
    return {"forward_failures": pick("fusion_forward_failures_total{"),
            "batches": pick("fusion_batch_size_count{")}


def bench(server, tmp, name, args):
    path = os.path.join(tmp, f"forward_fault_{name}.json")
    cmd = [BENCH, f"--target={server.grpc_address}", f"--json={path}"] + args
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, cwd=REPO), path


def finish(proc_path):
    proc, path = proc_path
    proc.wait(timeout=600)
    with open(path) as f:
        report = json.load(f)
    run, totals = report["runs"][0], report["totals"]
    return {"requests": int(totals["requests"]), "ok": int(totals["ok"]),
            "errors": dict(totals["errors"]),
            "throughput_rps": run["throughput_rps"],
            "p50_ms": run["latency_us"]["p50"] / 1000,
            "p99_ms": run["latency_us"]["p99"] / 1000}


def window(server, tmp, seconds, poison_path=None, poison_rate=0):
    before = counters(server)
    good = bench(server, tmp, "good", ["--concurrency=64", f"--duration={seconds}s",
                                       "--warmup=1s", f"--input={GOLDEN}"])
    bad = None
    if poison_path:
        bad = bench(server, tmp, "poison", [f"--rate={poison_rate}", f"--duration={seconds}s",
                                            "--warmup=1s", f"--input={poison_path}"])
    result = {"good": finish(good)}
    if bad:
        result["poison"] = finish(bad)
    after = counters(server)
    result["server"] = {k: after[k] - before[k] for k in after}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "results",
                                                      "forward_faults_cpu.json"))
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--poison_rate", type=float, default=20.0)
    parser.add_argument("--baseline_bin", default="")
    args = parser.parse_args()
    tmp = os.path.join(REPO, "build", "bench", "forward_faults")
    os.makedirs(tmp, exist_ok=True)
    throwing_repo = os.path.join(tmp, "models")
    throwing_bundle.build_throwing_bundle(os.path.join(throwing_repo, "fusion", "1"))
    poison = poisoned_input(os.path.join(tmp, "poisoned.jsonl"))

    servers = {}
    rounds = []
    try:
        servers["real"] = harness.ServerProcess(log_dir=tmp).start(180)
        servers["throwing"] = harness.ServerProcess(
            log_dir=tmp, model_repository=throwing_repo).start(180)
        if args.baseline_bin:
            baseline = harness.ServerProcess(log_dir=tmp)
            baseline.binary = args.baseline_bin
            baseline.args[0] = args.baseline_bin
            servers["baseline"] = baseline.start(180)
        for r in range(args.rounds):
            result = {name: window(server, tmp, args.seconds)
                      for name, server in servers.items()}
            result["throwing_poisoned"] = window(servers["throwing"], tmp, args.seconds,
                                                 poison, args.poison_rate)
            print(f"round {r + 1}: " + ", ".join(
                f"{name} {w['good']['throughput_rps']:.0f} resp/s p99 "
                f"{w['good']['p99_ms']:.1f} ms errors {w['good']['errors']}"
                for name, w in result.items()), flush=True)
            rounds.append(result)
    finally:
        for server in servers.values():
            server.stop()

    median = statistics.median
    rps = lambda rd, name: rd[name]["good"]["throughput_rps"]
    summary = {
        "affinity_cpus": len(os.sched_getaffinity(0)),
        "poison_rate_rps": args.poison_rate,
        "throughput_rps": {name: median(rps(rd, name) for rd in rounds) for name in rounds[0]},
        "good_p99_ms": {name: median(rd[name]["good"]["p99_ms"] for rd in rounds)
                        for name in rounds[0]},
        # The model's own check for the marker, happy path.
        "throwing_over_real": median(rps(rd, "throwing") / rps(rd, "real") for rd in rounds),
        # Isolation at work: good traffic beside the poisoned client.
        "poisoned_over_clean": median(rps(rd, "throwing_poisoned") / rps(rd, "throwing")
                                      for rd in rounds),
        "good_requests_failed_beside_poison": sum(
            rd["throwing_poisoned"]["good"]["requests"] - rd["throwing_poisoned"]["good"]["ok"]
            for rd in rounds),
        "poisoned_requests": sum(rd["throwing_poisoned"]["poison"]["requests"] for rd in rounds),
        "poisoned_answered_internal": sum(
            rd["throwing_poisoned"]["poison"]["errors"].get("INTERNAL", 0) for rd in rounds),
        "forward_failures_counted": sum(rd["throwing_poisoned"]["server"]["forward_failures"]
                                        for rd in rounds),
    }
    if args.baseline_bin:
        summary["real_over_baseline"] = median(rps(rd, "real") / rps(rd, "baseline")
                                               for rd in rounds)
    with open(args.out, "w") as f:
        json.dump({"benchmark": "forward_faults_cpu", "unix_time": int(time.time()),
                   "summary": summary, "rounds": rounds}, f, indent=2)
    print(json.dumps(summary, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
