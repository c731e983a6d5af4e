#!/usr/bin/python3
"""The protocols side by side (CPU): the native fusion.v1 API against the Open
Inference Protocol (KServe v2) over gRPC, and v2 over HTTP/JSON, on one
server pinned to one core with the load generator on the other.

  /usr/bin/python3 bench/run_protocol_bench.py [--out bench/results/protocols_cpu.json]
  /usr/bin/python3 bench/run_protocol_bench.py --rounds 1 --window 3 --out /tmp/p.json

Short windows of each protocol alternate (native, v2, v2, native), round
after round, against the same server (this VM's speed drifts within a
minute, so only ratios within a round are compared; the summary holds
medians over rounds):
1. saturation: fusion-bench closed loop at concurrency 64, unary calls,
   --protocol=native and --protocol=v2 (ModelInfer, batch 1 per request,
   the same golden requests); and the same over 4 streams (ScoreStream vs
   ModelStreamInfer);
2. one client: concurrency 1, client p50/p99 for both;
3. HTTP/JSON: POST /v2/models/fusion/infer from Python threads with
   keep-alive connections (http.client), the same requests; the client is
   Python, so this bounds what the HTTP side costs rather than measuring
   its ceiling.
Needs build/server/fusion-server and build/client/fusion-bench.
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import harness  # noqa: E402

SERVER_CORE, CLIENT_CORE = "0", "1"
BENCH = os.path.join(REPO, "build", "client", "fusion-bench")
SATURATION = ["--concurrency=64"]
STREAMS = ["--mode=stream", "--streams=4", "--concurrency=64"]
LONE = ["--concurrency=1"]
HTTP_THREADS = 8


def bench(target, protocol, load, window_s):
    """One fusion-bench window; its JSON report."""
    out = f"/tmp/protocol_bench_{os.getpid()}.json"
    cmd = ["taskset", "-c", CLIENT_CORE, BENCH, f"--target={target}",
           f"--protocol={protocol}", f"--duration={window_s}s", "--warmup=1s",
           f"--json={out}"] + load
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=window_s + 120)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    with open(out) as f:
        report = json.load(f)
    os.unlink(out)
    return report


def summary(report):
    """The figures compared: throughput, latency, failures (one level)."""
    run = report["runs"][0]
    latency = run["latency_us"]
    return {"throughput_rps": run["throughput_rps"],
            "p50_ms": latency["p50"] / 1000, "p99_ms": latency["p99"] / 1000,
            "completed": run["completed"],
            "errors": run["errors"], "mean_batch_size": run["server"]["mean_batch_size"]}


def mean_of(windows):
    """The mean of each figure over windows; the windows themselves kept."""
    merged = {key: statistics.mean(w[key] for w in windows)
              for key in ("throughput_rps", "p50_ms", "p99_ms")}
    merged["windows"] = windows
    return merged


def http_body(golden):
    """v2 JSON bodies for the golden requests (text or ids, features)."""
    bodies = []
    for g in golden:
        inputs = []
        if g.text:
            inputs.append({"name": "TEXT", "datatype": "BYTES", "shape": [1],
                           "data": [g.text]})
        else:
            inputs.append({"name": "INPUT_IDS", "datatype": "INT64",
                           "shape": [1, len(g.token_ids)], "data": list(g.token_ids)})
        values = list(g.feature_vector)
        inputs.append({"name": "FEATURES", "datatype": "FP32",
                       "shape": [1, len(values)], "data": values})
        bodies.append(json.dumps({"inputs": inputs}).encode())
    return bodies


def http_window(address, bodies, window_s):
    """Closed loop over HTTP_THREADS keep-alive connections for window_s."""
    host, port = address.rsplit(":", 1)
    stop = time.monotonic() + window_s
    latencies, failures = [], [0]
    lock = threading.Lock()

    def worker(offset):
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        i = offset
        while time.monotonic() < stop:
            body = bodies[i % len(bodies)]
            i += HTTP_THREADS
            start = time.perf_counter()
            conn.request("POST", "/v2/models/fusion/infer", body,
                         {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                if response.status == 200:
                    latencies.append(elapsed)
                else:
                    failures[0] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(HTTP_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    return {"throughput_rps": len(latencies) / window_s,
            "p50_ms": latencies[len(latencies) // 2] if latencies else None,
            "p99_ms": latencies[int(len(latencies) * 0.99)] if latencies else None,
            "completed": len(latencies) + failures[0], "errors": failures[0],
            "client": f"Python http.client, {HTTP_THREADS} threads"}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "results",
                                                      "protocols_cpu.json"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=5)
    args = parser.parse_args()

    # Without OPENBLAS_CORETYPE the server picks the CPU's widest kernels.
    server = harness.ServerProcess(log_dir="/tmp", env={"OPENBLAS_CORETYPE": None})
    server.args = ["taskset", "-c", SERVER_CORE] + server.args
    server.start()
    try:
        bodies = http_body(harness.load_golden())
        rounds = []
        for r in range(args.rounds):
            row = {}
            # native, v2, v2, native: a drift within the round weighs on both
            # protocols alike; each figure is the mean of its two windows.
            for name, load in (("saturation", SATURATION), ("stream", STREAMS),
                               ("lone", LONE)):
                windows = {"native": [], "v2": []}
                for protocol in ("native", "v2", "v2", "native"):
                    windows[protocol].append(summary(
                        bench(server.grpc_address, protocol, load, args.window)))
                for protocol, pair in windows.items():
                    row[f"{name}_{protocol}"] = mean_of(pair)
            row["http_json"] = http_window(server.http_address, bodies, args.window)
            for name in ("saturation", "stream"):
                row[f"{name}_v2_over_native"] = (
                    row[f"{name}_v2"]["throughput_rps"] /
                    row[f"{name}_native"]["throughput_rps"])
            print(f"round {r + 1}: " + json.dumps(
                {k: v for k, v in row.items() if k.endswith("over_native")}), flush=True)
            rounds.append(row)
    finally:
        server.stop()

    def median(key, field):
        return statistics.median(r[key][field] for r in rounds)

    result = {
        "setup": {"server_core": SERVER_CORE, "client_core": CLIENT_CORE,
                  "window_s": args.window, "rounds": args.rounds,
                  "saturation": SATURATION, "stream": STREAMS, "lone": LONE},
        "summary": {
            "saturation_v2_over_native": statistics.median(
                r["saturation_v2_over_native"] for r in rounds),
            "stream_v2_over_native": statistics.median(
                r["stream_v2_over_native"] for r in rounds),
            "lone_p50_ms_native": median("lone_native", "p50_ms"),
            "lone_p50_ms_v2": median("lone_v2", "p50_ms"),
            "http_json_rps": median("http_json", "throughput_rps"),
            "http_json_p50_ms": median("http_json", "p50_ms"),
        },
        "rounds": rounds,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
