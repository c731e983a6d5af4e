#!/usr/bin/python3
"""How a model's forwards are spread over the CPUs, measured side by side:
the default plan (one executor per usable CPU, one intra-op thread each)
against one executor using every CPU for intra-op threads
(--instance_count=1, the plan before), and optionally more settings.

  /usr/bin/python3 bench/run_thread_plan_bench.py [--out bench/results/thread_plan_cpu.json]

Servers and fusion-bench share all CPUs (nothing pinned; fusion-bench uses
about 0.05 cores per 1000 req/s, which in a real deployment runs elsewhere,
and costs a two-thread forward more than two one-thread ones). Each round drives every server for one window, closed loop at
concurrency 64, then the same with one client at a time (latency); figures
are medians over rounds, ratios per round.
Needs build/server/fusion-server and build/client/fusion-bench.
"""
import argparse
import json
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import harness  # noqa: E402
from run_batching_bench import BENCH, run_json  # noqa: E402

LOADS = {"saturation": ["--concurrency=64"], "one_client": ["--concurrency=1"]}


def window(tmp, server, load, seconds):
    path = os.path.join(tmp, "thread_plan_window.json")
    run = run_json([BENCH, f"--target={server.grpc_address}", f"--duration={seconds}s",
                    "--warmup=1s", f"--json={path}"] + LOADS[load], path)["runs"][0]
    return {"throughput_rps": run["throughput_rps"],
            "p50_ms": run["latency_us"]["p50"] / 1000,
            "p99_ms": run["latency_us"]["p99"] / 1000,
            "mean_batch_size": run["server"]["mean_batch_size"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "results",
                                                      "thread_plan_cpu.json"))
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = os.path.join(REPO, "build", "bench")
    os.makedirs(tmp, exist_ok=True)
    settings = {"default_plan": [], "one_executor": ["--instance_count=1"]}
    servers = {}
    rounds = []
    try:
        for name, flags in settings.items():
            servers[name] = harness.ServerProcess(extra_args=flags, log_dir=tmp).start()
        for r in range(args.rounds):
            result = {load: {name: window(tmp, server, load, args.seconds)
                             for name, server in servers.items()} for load in LOADS}
            for load, runs in result.items():
                print(f"round {r + 1} {load}: " + ", ".join(
                    f"{name} {run['throughput_rps']:.0f} resp/s p50 {run['p50_ms']:.2f} ms "
                    f"batch {run['mean_batch_size']:.1f}" for name, run in runs.items()),
                    flush=True)
            rounds.append(result)
    finally:
        for server in servers.values():
            server.stop()
    median = statistics.median
    ratio = lambda load, key: [rd[load]["default_plan"][key] / rd[load]["one_executor"][key]
                               for rd in rounds]
    summary = {
        "affinity_cpus": len(os.sched_getaffinity(0)),
        "saturation_rps": {name: median(rd["saturation"][name]["throughput_rps"]
                                        for rd in rounds) for name in settings},
        "saturation_default_over_one_executor": median(ratio("saturation", "throughput_rps")),
        "saturation_ratio_min_max": [min(ratio("saturation", "throughput_rps")),
                                     max(ratio("saturation", "throughput_rps"))],
        "one_client_p50_ms": {name: median(rd["one_client"][name]["p50_ms"]
                                           for rd in rounds) for name in settings},
        "one_client_p50_default_over_one_executor": median(ratio("one_client", "p50_ms")),
    }
    with open(args.out, "w") as f:
        json.dump({"benchmark": "thread_plan_cpu", "unix_time": int(time.time()),
                   "settings": settings, "summary": summary, "rounds": rounds}, f, indent=2)
    print(json.dumps(summary, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
