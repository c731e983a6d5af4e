"""What the overload, slow-client and soak checks share: a server's memory and
file descriptors from /proc, sampled while load runs; fusion-bench runs;
the server's Prometheus counters by label; and the figures computed from a
burst (refusal time, recovery time).

Used by tests/reliability, tests/soak and bench/run_overload_bench.py, so
nothing here depends on pytest. It starts no process of its own except
fusion-bench, which it waits for.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402

BENCH_BIN = os.environ.get(
    "FUSION_BENCH_BIN", os.path.join(harness.REPO_ROOT, "build", "client", "fusion-bench"))
MIB = 1024 * 1024
# Figures the tests measured, printed at the end of the pytest session
# (conftest.py's pytest_terminal_summary).
FIGURES = {}


def record(key, value):
    FIGURES[key] = value


# --- /proc -------------------------------------------------------------------

def _status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise harness.HarnessError(f"/proc/{pid}/status has no {field}")


def rss_bytes(pid):
    """Resident memory now."""
    return _status_kib(pid, "VmRSS") * 1024


def peak_rss_bytes(pid):
    """The most resident memory the process ever had (VmHWM)."""
    return _status_kib(pid, "VmHWM") * 1024


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid):
    return _status_kib(pid, "Threads")


class ProcessSampler:
    """Samples a process's RSS and open fds every `interval_s` on a thread,
    on the monotonic clock (fusion-bench reports its window on the same
    clock), until stop()."""

    def __init__(self, pid, interval_s=0.05):
        self.pid = pid
        self.interval_s = interval_s
        self.samples = []  # (monotonic_s, rss_bytes, fds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), rss_bytes(self.pid), fd_count(self.pid)))
            except (OSError, harness.HarnessError):
                return  # the process is gone
            self._stop.wait(self.interval_s)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)

    def between(self, t0, t1):
        return [s for s in self.samples if t0 <= s[0] < t1]

    def peak_rss(self, t0=float("-inf"), t1=float("inf")):
        return max((s[1] for s in self.between(t0, t1)), default=None)

    def max_fds(self, t0=float("-inf"), t1=float("inf")):
        return max((s[2] for s in self.between(t0, t1)), default=None)


# --- fusion-bench --------------------------------------------------------------

def check_bench_binary():
    if not os.access(BENCH_BIN, os.X_OK):
        raise harness.HarnessError(
            f"{BENCH_BIN} not found: build it (cmake --build build --target fusion-bench) "
            "or set FUSION_BENCH_BIN")


def run_bench(target, args, timeout_s, pin_core=None):
    """Runs fusion-bench against `target`; returns its JSON report. Raises
    HarnessError with its stderr when it fails or writes no report."""
    check_bench_binary()
    fd, out = tempfile.mkstemp(prefix="fusion-bench-", suffix=".json")
    os.close(fd)
    cmd = ([] if pin_core is None else ["taskset", "-c", str(pin_core)]) + [
        BENCH_BIN, f"--target={target}", f"--json={out}"] + list(args)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              cwd=harness.REPO_ROOT)
        try:
            with open(out) as f:
                report = json.load(f)
        except (OSError, ValueError):
            raise harness.HarnessError(
                f"{' '.join(cmd)} exited {proc.returncode} without a report:\n"
                f"{proc.stderr[-3000:]}") from None
    finally:
        os.unlink(out)
    return report


def saturation_rps(target, seconds, warmup_s=1, concurrencies=(64,), pin_core=None, extra=()):
    """The server's capacity for this workload: the most OK responses/s of
    closed loops at `concurrencies` (one after the other). Returns
    (responses/s, that level's run, {concurrency: responses/s}).

    At a concurrency of at least max_batch_size (64 in the bundle) the
    batcher fills its batches, as it does under any overload: that is the
    throughput the server sustains once a queue forms. Smaller concurrencies
    can give more for long requests (large batches of them cost more per
    request on a CPU), but not under a load that fills the queue."""
    report = run_bench(target, [f"--sweep=concurrency:{','.join(map(str, concurrencies))}",
                                f"--duration={seconds}s", f"--warmup={warmup_s}s", *extra],
                       timeout_s=len(concurrencies) * (seconds + warmup_s + 60), pin_core=pin_core)
    best = max(report["runs"], key=lambda run: run["ok_rps"])
    return best["ok_rps"], best, {run["concurrency"]: run["ok_rps"] for run in report["runs"]}


def open_loop_with_stall(server, rate, seconds, stall_at_s, stall_s, workload):
    """fusion-bench's open loop at `rate` for `seconds` (1-s timeline, its
    default 10-s call deadline) against `server`, which is SIGSTOPped for
    `stall_s` after `stall_at_s`: a machine stall, as a busy VM has.
    Returns fusion-bench's report."""
    def stall():
        time.sleep(stall_at_s)
        os.kill(server.proc.pid, signal.SIGSTOP)
        time.sleep(stall_s)
        os.kill(server.proc.pid, signal.SIGCONT)
    staller = threading.Thread(target=stall)
    staller.start()
    try:
        report = run_bench(server.grpc_address, [
            f"--rate={rate:.0f}", f"--duration={seconds}s", "--warmup=0s",
            "--timeline=1s", *workload], timeout_s=seconds + 120)
    finally:
        staller.join()
    return report


def seconds_to_catch_up(timeline, since_s, p99_bound_us):
    """The first second (from `since_s`) from which every second of the
    timeline was all OK with an OK p99 under `p99_bound_us`, minus
    `since_s`; None when the load never got there."""
    for i, point in enumerate(timeline):
        if point["t_s"] < since_s:
            continue
        if all(set(p["codes"]) <= {"OK"} and p["ok_p99_us"] is not None
               and p["ok_p99_us"] < p99_bound_us for p in timeline[i:]):
            return round(point["t_s"] - since_s, 1)
    return None


def rate_profile(phases):
    """fusion-bench's --rate_profile from [(rate, seconds), ...]."""
    return ",".join(f"{rate:.0f}:{seconds:g}s" for rate, seconds in phases)


# --- Prometheus ----------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metric(samples, name, **labels):
    """The sum of `name`'s samples whose labels include `labels` (samples
    from harness.scrape_metrics)."""
    total = 0.0
    for key, value in samples.items():
        m = _SAMPLE.match(key)
        if not m or m.group(1) != name:
            continue
        have = dict(_LABEL.findall(m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += value
    return total


def requests_by_code(samples):
    """fusion_requests_total by code (non-zero ones)."""
    out = {}
    for key, value in samples.items():
        m = _SAMPLE.match(key)
        if m and m.group(1) == "fusion_requests_total" and value:
            code = dict(_LABEL.findall(m.group(2) or "")).get("code")
            out[code] = out.get(code, 0) + int(value)
    return out


def compute_counters(samples):
    """What the model computed: rows (the sum of batch sizes), batches, and
    the outcomes counted by code."""
    return {"rows_computed": int(metric(samples, "fusion_batch_size_sum")),
            "batches": int(metric(samples, "fusion_batch_size_count")),
            "requests_by_code": requests_by_code(samples)}


def counters_delta(after, before):
    codes = {c: after["requests_by_code"].get(c, 0) - before["requests_by_code"].get(c, 0)
             for c in set(after["requests_by_code"]) | set(before["requests_by_code"])}
    return {"rows_computed": after["rows_computed"] - before["rows_computed"],
            "batches": after["batches"] - before["batches"],
            "requests_by_code": {c: n for c, n in sorted(codes.items()) if n}}


def duration_histogram(samples, model="fusion"):
    """fusion_request_duration_seconds as [(le, cumulative count)]."""
    out = []
    for key, value in samples.items():
        m = _SAMPLE.match(key)
        if m and m.group(1) == "fusion_request_duration_seconds_bucket":
            labels = dict(_LABEL.findall(m.group(2) or ""))
            if labels.get("model") == model:
                out.append((float(labels["le"]), value))
    return sorted(out)


# --- figures of a burst ----------------------------------------------------------

def percentile(values, q):
    """Nearest-rank percentile of a non-empty list, q in (0, 100]."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * q // 100)))
    return ordered[int(rank) - 1]


def ok_latencies(timeline, t0, t1):
    """The OK latencies (us) of requests intended in [t0, t1) (seconds from
    the window's start), from a --timeline_latencies report."""
    out = []
    for point in timeline:
        if t0 <= point["t_s"] < t1:
            out.extend(point.get("ok_latencies_us", []))
    return out


def recovery_s(timeline, burst_end_s, reference_p99_us, span_s=1.0, until_s=None):
    """Seconds from the burst's end until the latency is back: the first
    slice start s >= burst_end_s such that the p99 of OK latencies intended
    in [s, s + span_s) is at most reference_p99_us (the pre-burst p99, or
    span_p99_envelope_us of the pre-burst phase). None if it never is before
    `until_s` (the window's end by default)."""
    slices = sorted({p["t_s"] for p in timeline if p["t_s"] >= burst_end_s - 1e-9})
    end = until_s if until_s is not None else (
        max(p["t_s"] for p in timeline) + (timeline[1]["t_s"] - timeline[0]["t_s"]))
    for s in slices:
        if s + span_s > end + 1e-9:
            break
        latencies = ok_latencies(timeline, s - 1e-9, s + span_s - 1e-9)
        if latencies and percentile(latencies, 99) <= reference_p99_us:
            return round(s - burst_end_s, 3)
    return None


def span_p99_envelope_us(timeline, t0, t1, span_s=1.0):
    """The highest p99 of OK latencies over any span_s-long span (starting on
    a slice) inside [t0, t1): how high the p99 of a second goes by itself,
    with no burst. The reference for recovery_s, since the p99 of one second
    after the burst is compared with it."""
    starts = sorted({p["t_s"] for p in timeline if t0 - 1e-9 <= p["t_s"] <= t1 - span_s + 1e-9})
    values = [percentile(lat, 99) for s in starts
              if (lat := ok_latencies(timeline, s - 1e-9, s + span_s - 1e-9))]
    return max(values, default=None)


def p99_series(timeline):
    """[(t_s, ok p99 us or None, requests, codes)] from a timeline, without
    the raw latencies."""
    return [{"t_s": p["t_s"], "ok_p99_us": p["ok_p99_us"], "requests": p["requests"],
             "codes": p["codes"]} for p in timeline]


def code_latency(phase_or_run, code, kind="service_us"):
    """by_code[code][kind] of a phase or run, or None when no such code."""
    entry = phase_or_run["by_code"].get(code)
    return entry[kind] if entry else None
