#!/usr/bin/python3
"""Single-client latency: N sequential Score calls from one client, p50/p99.

  /usr/bin/python3 tests/e2e/single_client_latency.py [OUT.json]
      [--address HOST:PORT] [--requests 300] [--warmup 20] [--attention none|mean|per_head]
      [--server-arg=--max_queue_delay_us=0 ...]

Without --address it starts build/server/fusion-server (or $FUSION_SERVER_BIN)
on free ports and stops it afterwards. Prints the figures and writes them as
JSON to OUT (default: $FUSION_LATENCY_JSON, else build/bench/single_client_latency.json).
Client-side times include the Python client's own overhead (~0.1-0.3 ms).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def percentile(sorted_values, q):
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", nargs="?", default=os.environ.get(
        "FUSION_LATENCY_JSON",
        os.path.join(harness.REPO_ROOT, "build", "bench", "single_client_latency.json")))
    ap.add_argument("--address", help="a running server's gRPC address; default: start one")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--attention", choices=["none", "mean", "per_head"], default="none")
    ap.add_argument("--server-arg", action="append", default=[], dest="server_args",
                    help="extra flag for the server this script starts, e.g. "
                         "--server-arg=--max_queue_delay_us=0 (repeatable)")
    args = ap.parse_args(argv)

    import grpc
    stubs = harness.generate_stubs()
    pb = stubs.scoring_pb2
    golden = harness.load_golden()
    attention = {"none": pb.ATTENTION_NONE, "mean": pb.ATTENTION_MEAN,
                 "per_head": pb.ATTENTION_PER_HEAD}[args.attention]

    server = None
    address = args.address
    if not address:
        server = harness.ServerProcess(extra_args=args.server_args).start()
        address = server.grpc_address
    try:
        with grpc.insecure_channel(address) as ch:
            grpc.channel_ready_future(ch).result(timeout=15)
            stub = stubs.scoring_pb2_grpc.ScoringServiceStub(ch)
            reqs = [harness.request_from_golden(stubs, g, attention=attention)
                    for g in golden]
            for i in range(args.warmup):
                stub.Score(reqs[i % len(reqs)], timeout=30)
            lat_ms, compute_us, total_us, queue_us = [], [], [], []
            t_start = time.perf_counter()
            for i in range(args.requests):
                t0 = time.perf_counter()
                r = stub.Score(reqs[i % len(reqs)], timeout=30)
                lat_ms.append((time.perf_counter() - t0) * 1e3)
                compute_us.append(r.timing.compute_us)
                total_us.append(r.timing.total_us)
                queue_us.append(r.timing.queue_us)
            wall_s = time.perf_counter() - t_start
    finally:
        if server is not None:
            server.stop()

    s = sorted(lat_ms)
    result = {
        "benchmark": "single_client_latency",
        "address": address,
        "started_server": server is not None,
        "server_args": args.server_args,
        "requests": args.requests,
        "warmup": args.warmup,
        "attention": args.attention,
        "distinct_inputs": len(golden),
        "p50_ms": round(percentile(s, 50), 3),
        "p90_ms": round(percentile(s, 90), 3),
        "p99_ms": round(percentile(s, 99), 3),
        "mean_ms": round(sum(s) / len(s), 3),
        "min_ms": round(s[0], 3),
        "max_ms": round(s[-1], 3),
        "throughput_rps": round(args.requests / wall_s, 1),
        "server_queue_us_p50": percentile(sorted(queue_us), 50),
        "server_compute_us_p50": percentile(sorted(compute_us), 50),
        "server_total_us_p50": percentile(sorted(total_us), 50),
        "host_cpus": len(os.sched_getaffinity(0)),
        "unix_time": int(time.time()),
    }
    print(f"single client, {args.requests} sequential Score calls (attention={args.attention}): "
          f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
          f"mean {result['mean_ms']:.2f} ms, {result['throughput_rps']} req/s; "
          f"server p50 queue {result['server_queue_us_p50']} us, "
          f"compute {result['server_compute_us_p50']} us, total {result['server_total_us_p50']} us")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
