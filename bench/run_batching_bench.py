#!/usr/bin/python3
"""The batching benchmark (CPU): server pinned to one core, load generator to
the other, everything measured side by side in one run.

  /usr/bin/python3 bench/run_batching_bench.py [--out bench/results/batching_cpu.json]

1. raw: in-process forward throughput at batch 32, length-sorted batches
   (near-zero padding), one intra-op thread on the server's core;
2. served, batching on (the bundle's config, no thread flags), closed loop
   at concurrency 64;
3. served, batching off (--max_batch_size=1), same load;
4. metrics off vs on (--metrics=false), alternated to spread drift;
5. open loop at half of (2)'s throughput: p99 against
   max_queue_delay + 3 x the mean forward time of a batch.
Needs build/bench/forward_bench, build/server/fusion-server and
build/client/fusion-bench (`make build`).
"""
import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import harness  # noqa: E402

SERVER_CORE, CLIENT_CORE = "0", "1"
BENCH = os.path.join(REPO, "build", "client", "fusion-bench")
FORWARD = os.path.join(REPO, "build", "bench", "forward_bench")


def run_json(cmd, json_path):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(json_path) as f:
        return json.load(f)


def raw_forward(tmp, seconds):
    path = os.path.join(tmp, "raw.json")
    result = run_json(["taskset", "-c", SERVER_CORE, FORWARD, "--threads=1",
                       "--batch_size=32", f"--seconds={seconds}",
                       f"--json={path}"], path)
    return result[0]


def token_counts(server):
    samples = harness.scrape_metrics(server)
    key = 'model="fusion",version="1"'
    return (samples.get(f'fusion_tokens_total{{kind="real",{key}}}', 0),
            samples.get(f'fusion_tokens_total{{kind="padded",{key}}}', 0))


def served(tmp, name, server_args, load_args, seconds):
    """Starts a pinned server, drives it from the other core, returns the
    fusion-bench run plus the padding efficiency the server measured."""
    server = harness.ServerProcess(extra_args=server_args, log_dir=tmp)
    server.args = ["taskset", "-c", SERVER_CORE] + server.args
    server.start()
    metrics_on = "--metrics=false" not in server_args
    try:
        real0, padded0 = token_counts(server) if metrics_on else (0, 0)
        path = os.path.join(tmp, f"{name}.json")
        result = run_json(["taskset", "-c", CLIENT_CORE, BENCH,
                           f"--target={server.grpc_address}",
                           f"--duration={seconds}s", "--warmup=3s",
                           f"--json={path}"] + load_args, path)["runs"][0]
        if metrics_on:
            real1, padded1 = token_counts(server)
            real, padded = real1 - real0, padded1 - padded0
            result["padding_efficiency"] = real / (real + padded) if real else None
    finally:
        server.stop()
    run = {"name": name, "server_args": server_args, "load_args": load_args,
           "throughput_rps": result["throughput_rps"],
           "latency_ms": {k: v / 1000 for k, v in result["latency_us"].items()
                          if k != "count"},
           "errors": result["errors"], "server": result["server"],
           "padding_efficiency": result.get("padding_efficiency"),
           "client_cpu_cores": result["client"]["cpu_cores"]}
    print(f"  {name:<22} {run['throughput_rps']:8.1f} resp/s  "
          f"p50 {run['latency_ms']['p50']:7.2f} ms  p99 {run['latency_ms']['p99']:7.2f} ms  "
          f"batch {result['server']['mean_batch_size']:5.1f}  errors {result['errors']}",
          flush=True)
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "results",
                                                      "batching_cpu.json"))
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3,
                        help="metrics on/off pairs")
    args = parser.parse_args()
    if os.cpu_count() < 2:
        sys.exit("needs two CPUs: one for the server, one for the generator")
    tmp = os.path.join(REPO, "build", "bench")
    os.makedirs(tmp, exist_ok=True)
    closed = ["--concurrency=64"]

    print("raw forward (batch 32, 1 thread, core 0)...", flush=True)
    raw = raw_forward(tmp, args.seconds)
    print(f"  {raw['items_per_second']:.1f} items/s, {raw['ms_per_batch']:.2f} ms/batch, "
          f"padding efficiency {raw['padding_efficiency']:.3f}", flush=True)
    print("served (server on core 0, fusion-bench on core 1):", flush=True)
    batching = served(tmp, "batching", [], closed, args.seconds)
    no_batching = served(tmp, "no_batching", ["--max_batch_size=1"], closed,
                         args.seconds)
    metrics_on, metrics_off = [], []
    for i in range(args.repeats):
        metrics_off.append(served(tmp, f"metrics_off_{i}", ["--metrics=false"],
                                  closed, args.seconds))
        metrics_on.append(served(tmp, f"metrics_on_{i}", [], closed, args.seconds))
    half_rate = batching["throughput_rps"] / 2
    half = served(tmp, "half_saturation", [], [f"--rate={half_rate:.1f}"],
                  args.seconds)

    config = harness.load_config(harness.generate_stubs())
    delay_ms = config.batching.max_queue_delay_us / 1000
    forward_ms = half["server"]["mean_compute_us"] / 1000
    bound_ms = delay_ms + 3 * forward_ms
    mean = lambda runs: sum(r["throughput_rps"] for r in runs) / len(runs)
    summary = {
        "raw_items_per_s": raw["items_per_second"],
        "served_batching_rps": batching["throughput_rps"],
        "served_no_batching_rps": no_batching["throughput_rps"],
        "batching_over_no_batching": batching["throughput_rps"] / no_batching["throughput_rps"],
        "served_over_raw": batching["throughput_rps"] / raw["items_per_second"],
        "mean_batch_size": batching["server"]["mean_batch_size"],
        "padding_efficiency": batching["padding_efficiency"],
        "metrics_on_rps_mean": mean(metrics_on),
        "metrics_off_rps_mean": mean(metrics_off),
        "metrics_on_over_off": mean(metrics_on) / mean(metrics_off),
        "half_saturation_rate": half_rate,
        "half_saturation_p99_ms": half["latency_ms"]["p99"],
        "p99_bound_ms": bound_ms,
        "p99_bound": f"max_queue_delay {delay_ms} ms + 3 x mean batch forward "
                     f"{forward_ms:.2f} ms at that load",
    }
    result = {"benchmark": "batching_cpu", "unix_time": int(time.time()),
              "host_cpus": os.cpu_count(), "summary": summary, "raw": raw,
              "runs": [batching, no_batching] + metrics_off + metrics_on + [half]}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(summary, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
