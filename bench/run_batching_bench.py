#!/usr/bin/python3
"""The batching benchmark (CPU): server pinned to one core, load generator to
the other, everything measured side by side in one run.

  /usr/bin/python3 bench/run_batching_bench.py [--out bench/results/batching_cpu.json]

Every server setting runs at once (all pinned to the same core, idle but for
the one under load), and short windows of each setting alternate, round
after round, with the raw forward measured in between. This VM's speed
drifts by tens of percent within a minute, so figures are only compared
within a round (the ratios), and the summary holds medians over rounds.
1. raw: in-process forward throughput at batch 32, length-sorted batches
   (near-zero padding), one intra-op thread on the server's core;
2. served, batching on (the bundle's config, no thread flags), closed loop
   at concurrency 64, unary calls; and the same over 4 ScoreStream streams;
3. served, batching off (--max_batch_size=1), same load;
4. optionally, more served settings, same load: --variant NAME=--flag,...
   (flags added to the bundle's config), led by binary:PATH (another build
   of fusion-server, e.g. the previous commit's) or env:KEY=VALUE (e.g.
   env:OPENBLAS_CORETYPE=Prescott, the kernels OpenBLAS falls back to).
Then, open loop at half of the median (2): p99 against max_queue_delay + 3 x
the mean forward time of a batch at that load.
Needs build/bench/forward_bench, build/server/fusion-server and
build/client/fusion-bench (`make build`).
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
import harness  # noqa: E402

SERVER_CORE, CLIENT_CORE = "0", "1"
BENCH = os.path.join(REPO, "build", "client", "fusion-bench")
FORWARD = os.path.join(REPO, "build", "bench", "forward_bench")
KEY = 'model="fusion",version="1"'
CLOSED_LOOP = ["--concurrency=64"]
# The same load over 4 ScoreStream streams: what unary calls cost on top.
CLOSED_LOOP_STREAM = ["--mode=stream", "--streams=4", "--concurrency=64"]


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


def batch_counters(server):
    """Cumulative per-batch counters from /metrics."""
    s = harness.scrape_metrics(server)
    return {
        "batches": s.get(f"fusion_batch_size_count{{{KEY}}}", 0),
        "requests": s.get(f"fusion_batch_size_sum{{{KEY}}}", 0),
        "batch_seconds": s.get(f"fusion_batch_duration_seconds_sum{{{KEY}}}", 0),
        "real_tokens": s.get(f'fusion_tokens_total{{kind="real",{KEY}}}', 0),
        "padded_tokens": s.get(f'fusion_tokens_total{{kind="padded",{KEY}}}', 0),
    }


def merge_cost_from_log(server):
    """The fixed forward cost the server measured at load (it logs it)."""
    try:
        with open(server.log_path) as f:
            for line in f:
                if "merge_cost_tokens" in line and "fixed cost is" in line:
                    return float(line.split("fixed cost is ")[1].split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return None


def start_server(tmp, server_args):
    """A pinned server; leading arguments "binary:PATH" run another build and
    "env:KEY=VALUE" set its environment."""
    binary, env = None, {}
    while server_args and server_args[0].startswith(("binary:", "env:")):
        kind, _, value = server_args[0].partition(":")
        if kind == "binary":
            binary = value
        else:
            key, _, env[key] = value.partition("=")
        server_args = server_args[1:]
    server = harness.ServerProcess(extra_args=server_args, log_dir=tmp, env=env)
    if binary:
        server.args[0] = os.path.abspath(binary)
    server.args = ["taskset", "-c", SERVER_CORE] + server.args
    server.start()
    return server


def window(tmp, server, name, load_args, seconds):
    """Drives `server` from the other core for one window; returns the
    fusion-bench figures plus what the server saw per batch meanwhile."""
    before = batch_counters(server)
    path = os.path.join(tmp, f"{name}.json")
    result = run_json(["taskset", "-c", CLIENT_CORE, BENCH,
                       f"--target={server.grpc_address}",
                       f"--duration={seconds}s", "--warmup=1s",
                       f"--json={path}"] + load_args, path)["runs"][0]
    after = batch_counters(server)
    # The counters include the warm-up second: fine for per-batch means.
    d = {k: after[k] - before[k] for k in after}
    tokens = d["real_tokens"] + d["padded_tokens"]
    run = {"name": name, "load_args": load_args,
           "throughput_rps": result["throughput_rps"],
           "latency_ms": {k: v / 1000 for k, v in result["latency_us"].items()
                          if k != "count"},
           "errors": result["errors"],
           "mean_batch_size": d["requests"] / d["batches"] if d["batches"] else None,
           "mean_batch_ms": 1000 * d["batch_seconds"] / d["batches"] if d["batches"] else None,
           "padding_efficiency": d["real_tokens"] / tokens if tokens else None,
           "per_request_means": result["server"],
           "client_cpu_cores": result["client"]["cpu_cores"]}
    print(f"  {name:<24} {run['throughput_rps']:8.1f} resp/s  "
          f"p50 {run['latency_ms']['p50']:7.2f} ms  p99 {run['latency_ms']['p99']:7.2f} ms  "
          f"batch {run['mean_batch_size'] or 0:5.1f} ({run['mean_batch_ms'] or 0:5.2f} ms)  "
          f"padding eff {run['padding_efficiency'] or 0:.3f}  errors {result['errors']}",
          flush=True)
    return run


def throughput(round_result, name):
    """A round's figure for a setting: 'raw' or a served setting's name."""
    if name == "raw":
        return round_result["raw"]["items_per_second"]
    return round_result["served"][name]["throughput_rps"]


def parse_variant(text):
    name, _, flags = text.partition("=")
    if not name or not flags:
        raise argparse.ArgumentTypeError(
            "--variant wants NAME=[binary:PATH,][env:KEY=VALUE,]--flag,...")
    return name, flags.split(",")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "results",
                                                      "batching_cpu.json"))
    parser.add_argument("--seconds", type=int, default=6,
                        help="measured seconds per window")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--half-windows", type=int, default=4)
    parser.add_argument("--variant", type=parse_variant, action="append",
                        default=[], help="NAME=[binary:PATH,][env:KEY=VALUE,]--flag,...: "
                        "another served setting measured in every round")
    args = parser.parse_args()
    if os.cpu_count() < 2:
        sys.exit("needs two CPUs: one for the server, one for the generator")
    tmp = os.path.join(REPO, "build", "bench")
    os.makedirs(tmp, exist_ok=True)

    settings = [("batching", []), ("no_batching", ["--max_batch_size=1"])]
    settings += args.variant
    servers = {}
    try:
        for name, flags in settings:
            servers[name] = start_server(tmp, flags)
        merge_cost = merge_cost_from_log(servers["batching"])
        rounds = []
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}: raw forward (batch 32, 1 thread, "
                  f"core {SERVER_CORE}), then each server (fusion-bench on core "
                  f"{CLIENT_CORE})", flush=True)
            raw = raw_forward(tmp, args.seconds)
            print(f"  {'raw':<24} {raw['items_per_second']:8.1f} items/s "
                  f"{raw['ms_per_batch']:.2f} ms/batch, padding efficiency "
                  f"{raw['padding_efficiency']:.3f}", flush=True)
            runs = {name: window(tmp, servers[name], f"{name}_{r}", CLOSED_LOOP,
                                 args.seconds)
                    for name, _ in settings}
            runs["batching_stream"] = window(tmp, servers["batching"],
                                             f"batching_stream_{r}",
                                             CLOSED_LOOP_STREAM, args.seconds)
            rounds.append({"raw": raw, "served": runs})

        median = statistics.median
        rps = lambda name: [throughput(rd, name) for rd in rounds]
        half_rate = median(rps("batching")) / 2
        halves = [window(tmp, servers["batching"], f"half_saturation_{i}",
                         [f"--rate={half_rate:.1f}"], args.seconds)
                  for i in range(args.half_windows)]
    finally:
        for server in servers.values():
            server.stop()

    config = harness.load_config(harness.generate_stubs())
    delay_ms = config.batching.max_queue_delay_us / 1000
    half_median = lambda key: median([h[key] for h in halves]) if halves else None
    half_p99 = median([h["latency_ms"]["p99"] for h in halves]) if halves else None
    half_batch_ms = half_median("mean_batch_ms")
    bound_ms = delay_ms + 3 * half_batch_ms if halves else None
    per_round = lambda fn: [fn(rd) for rd in rounds]
    summary = {
        "rounds": args.rounds,
        "raw_items_per_s": median([rd["raw"]["items_per_second"] for rd in rounds]),
        "served_batching_rps": median(rps("batching")),
        "served_no_batching_rps": median(rps("no_batching")),
        "batching_over_no_batching": median(per_round(
            lambda rd: throughput(rd, "batching") / throughput(rd, "no_batching"))),
        "served_over_raw": median(per_round(
            lambda rd: throughput(rd, "batching") / throughput(rd, "raw"))),
        "served_stream_rps": median(rps("batching_stream")),
        "served_stream_over_raw": median(per_round(
            lambda rd: throughput(rd, "batching_stream") / throughput(rd, "raw"))),
        "mean_batch_size": median(per_round(
            lambda rd: rd["served"]["batching"]["mean_batch_size"])),
        "padding_efficiency": median(per_round(
            lambda rd: rd["served"]["batching"]["padding_efficiency"])),
        "merge_cost_tokens": merge_cost,
        "half_saturation_rate": half_rate,
        "half_saturation_p99_ms": half_p99,
        "half_saturation_mean_batch_size": half_median("mean_batch_size"),
        "p99_bound_ms": bound_ms,
        "p99_bound": (f"max_queue_delay {delay_ms} ms + 3 x mean batch forward "
                      f"{half_batch_ms:.2f} ms at that load") if halves else None,
    }
    # The spread behind each median ratio: drift shows up here.
    for key, num, den in (("batching_over_no_batching", "batching", "no_batching"),
                          ("served_over_raw", "batching", "raw"),
                          ("served_stream_over_raw", "batching_stream", "raw")):
        ratios = per_round(lambda rd: throughput(rd, num) / throughput(rd, den))
        summary[f"{key}_min_max"] = [min(ratios), max(ratios)]
    summary["half_saturation_p99_ms_windows"] = [h["latency_ms"]["p99"] for h in halves]
    for name, _ in args.variant:
        summary[f"{name}_rps"] = median(rps(name))
        summary[f"{name}_over_batching"] = median(per_round(
            lambda rd: throughput(rd, name) / throughput(rd, "batching")))
    result = {"benchmark": "batching_cpu", "unix_time": int(time.time()),
              "host_cpus": os.cpu_count(), "summary": summary,
              "rounds": rounds, "half_saturation": halves}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(summary, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
