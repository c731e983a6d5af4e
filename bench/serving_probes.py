"""Helpers for run_batching_bench.py: the peer server's process, CPU time read
from /proc per process and per thread, the bundle's requests as token ids,
and a one-at-a-time probe that reads the server's own Timing.

Nothing here starts a process it does not also stop (PeerProcess.stop).
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import time

import grpc

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import harness  # noqa: E402

PEER = os.path.join(REPO, "bench", "peer_server.py")
PYTHON = "/usr/bin/python3"  # Debian's: torch, grpcio, protobuf
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


# --- CPU time from /proc ------------------------------------------------------

def _stat_cpu_seconds(stat_text):
    """utime + stime of a /proc stat line. comm may hold spaces and ')', so
    fields are counted from the last ')'."""
    fields = stat_text[stat_text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


def process_cpu_seconds(pid):
    """All threads, the exited ones included."""
    with open(f"/proc/{pid}/stat") as f:
        return _stat_cpu_seconds(f.read())


def thread_cpu_seconds(pid):
    """{tid: (name, seconds)} of the live threads."""
    out = {}
    task_dir = f"/proc/{pid}/task"
    for tid in os.listdir(task_dir):
        try:
            with open(f"{task_dir}/{tid}/stat") as f:
                stat = f.read()
            with open(f"{task_dir}/{tid}/comm") as f:
                name = f.read().strip()
        except OSError:  # the thread exited meanwhile
            continue
        out[int(tid)] = (name, _stat_cpu_seconds(stat))
    return out


class CpuMeter:
    """A process's CPU time over a window, in all and per thread."""

    def __init__(self, pid):
        self.pid = pid
        self.total = process_cpu_seconds(pid)
        self.threads = thread_cpu_seconds(pid)
        self.wall = time.monotonic()

    def stop(self):
        total = process_cpu_seconds(self.pid) - self.total
        wall = time.monotonic() - self.wall
        threads = []
        for tid, (name, seconds) in thread_cpu_seconds(self.pid).items():
            spent = seconds - self.threads.get(tid, (name, 0.0))[1]
            if spent > 0:
                threads.append({"tid": tid, "name": name, "cpu_s": round(spent, 3)})
        threads.sort(key=lambda t: -t["cpu_s"])
        by_name = {}
        for t in threads:
            by_name[t["name"]] = by_name.get(t["name"], 0.0) + t["cpu_s"]
        share = lambda s: round(s / total, 4) if total > 0 else None
        return {"cpu_s": round(total, 3), "wall_s": round(wall, 3),
                "cores": round(total / wall, 3) if wall > 0 else None,
                "share_by_thread_name": {n: share(s) for n, s in
                                         sorted(by_name.items(), key=lambda i: -i[1])},
                "busiest_threads": [dict(t, share=share(t["cpu_s"])) for t in threads[:6]]}


# --- the peer server ---------------------------------------------------------

class PeerProcess:
    """bench/peer_server.py pinned to `core`, on a free port."""

    def __init__(self, core, workers, log_dir):
        self.port = harness.free_port()
        self.grpc_address = f"127.0.0.1:{self.port}"
        self.workers = workers
        self.args = ["taskset", "-c", core, PYTHON, PEER,
                     f"--address={self.grpc_address}", f"--workers={workers}"]
        self.log_path = os.path.join(log_dir, f"peer-{self.port}.log")
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid  # taskset and a re-exec keep the pid

    def start(self, timeout_s=60.0):
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=REPO)
        deadline = time.monotonic() + timeout_s
        # It binds its port only once the model is loaded and warm.
        with grpc.insecure_channel(self.grpc_address) as channel:
            while True:
                if self.proc.poll() is not None:
                    raise harness.HarnessError(f"peer exited: see {self.log_path}")
                try:
                    grpc.channel_ready_future(channel).result(timeout=0.5)
                    return self
                except grpc.FutureTimeoutError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise harness.HarnessError(f"peer not ready: see {self.log_path}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# --- requests ----------------------------------------------------------------

def write_ids_input(path):
    """golden.jsonl as token_ids + feature_vector only (fusion-bench sends
    `text` and `features` when a line holds both): the peer then needs no
    Python tokenizer, and the server gets the same requests."""
    with open(path, "w", encoding="utf-8") as f:
        for g in harness.load_golden():
            f.write(json.dumps({"request_id": g.request_id, "token_ids": g.token_ids,
                                "feature_vector": g.feature_vector}) + "\n")
    return path


def percentile(values, q):
    """Nearest-rank percentile, q in [0, 100]."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def lone_timing_probe(address, by_ids, seconds):
    """One request at a time for `seconds` (after a short warm-up): the
    server's own Timing.total_us per response, which fusion-bench reports
    only as a mean and /metrics only in coarse buckets."""
    stubs = harness.generate_stubs()
    requests = [harness.request_from_golden(stubs, g, by_ids=by_ids)
                for g in harness.load_golden()]
    totals, queues, computes, clients = [], [], [], []
    with grpc.insecure_channel(address) as channel:
        score = stubs.scoring_pb2_grpc.ScoringServiceStub(channel).Score
        warm_end = time.monotonic() + 0.5
        end = warm_end + seconds
        i = 0
        while (now := time.monotonic()) < end:
            response = score(requests[i % len(requests)], timeout=10)
            i += 1
            if now >= warm_end:
                clients.append((time.monotonic() - now) * 1e6)
                totals.append(response.timing.total_us)
                queues.append(response.timing.queue_us)
                computes.append(response.timing.compute_us)
    # compute_us is the forward as this request met it (after an idle gap,
    # which slows it on this VM), unlike a back-to-back in-process forward.
    return {"requests": len(totals),
            "server_total_us_p50": statistics.median(totals),
            "server_total_us_p99": percentile(totals, 99),
            "server_queue_us_p50": statistics.median(queues),
            "server_compute_us_p50": statistics.median(computes),
            "python_client_us_p50": round(statistics.median(clients), 1)}


def served_batching(address):
    """The batching settings a server resolved (GetModelMetadata)."""
    stubs = harness.generate_stubs()
    with grpc.insecure_channel(address) as channel:
        stub = stubs.scoring_pb2_grpc.ScoringServiceStub(channel)
        return stub.GetModelMetadata(stubs.scoring_pb2.GetModelMetadataRequest(),
                                     timeout=10).batching
