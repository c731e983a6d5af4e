"""Native (fusion.v1 Score) and Open Inference Protocol (v2 ModelInfer over
gRPC, and over HTTP) traffic at once, at saturation, on one server: every
answer correct, and the batches hold requests of both protocols.

What proves that batches mix. The server runs one executor and receives
only this test's traffic (its warm-up is over before /readyz is 200, and the
reference answers are taken before the measured run). The native clients
are K threads that each wait for their answer before sending again, so at
no instant are more than K native requests in the server. A native
response's timing.batch_size counts the tasks of the batch it was computed
in (a v2 request of B rows is B tasks in the same queues,
inference_core.h). So a native response that reports batch_size > K was
computed in a batch that held at least batch_size - K tasks that were not
native: v2 rows, the only other traffic. That the reported sizes are true
counts is checked independently: the fusion_batch_size histogram's sum over
the run equals exactly the native requests plus the v2 rows sent, and
ModelStatistics' inference_count and execution_count agree with it.
A high mean batch size alone would prove nothing (either protocol alone
batches at this concurrency), nor would requests/batches over the two
protocols together.

All requests use golden texts of one token length, so every task falls in
one length bucket (the batcher groups by length) and mixing is not left to
bucket merging.

Run: FUSION_SERVER_BIN=$PWD/build/server/fusion-server \
     /usr/bin/python3 -m pytest tests/integration/test_v2_mixed_load.py -q
"""
import statistics
import threading
import time

import grpc
import pytest

import harness
import v2_support as vs
from v2_support import v2, v2_observations  # noqa: F401  (fixtures used by name)

KEY = '{model="fusion",version="1"}'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = vs.start_server(str(tmp_path_factory.mktemp("mixed")), ["--instance_count=1"])
    yield srv
    rc = srv.stop()
    assert rc == 0, f"exit code {rc}\n{srv.log_tail()}"


@pytest.fixture(scope="module")
def channel(server):
    ch = vs.open_channel(server)
    yield ch
    ch.close()


@pytest.fixture(scope="module")
def native_stub(stubs, channel):
    return stubs.scoring_pb2_grpc.ScoringServiceStub(channel)


@pytest.fixture(scope="module")
def native(stubs, native_stub):
    return vs.Native(stubs, native_stub)


@pytest.fixture(scope="module")
def v2_stub(v2, channel):
    return v2.pb2_grpc.GRPCInferenceServiceStub(channel)


@pytest.fixture(scope="module")
def one_bucket(golden, native):
    """Golden requests of the most common token length, with their native
    answers (taken now, before any measured run)."""
    by_len = {}
    for g in golden:
        by_len.setdefault(len(g.token_ids), []).append(g)
    gs = max(by_len.values(), key=len)
    assert len(gs) >= 4, {k: len(v) for k, v in by_len.items()}
    for g in gs:
        native.get(g)
    harness.observe("mixed_token_length", f"L={len(gs[0].token_ids)}, {len(gs)} golden texts")
    return gs


def _batch_metrics(server):
    m = harness.scrape_metrics(server)
    return (m.get(f"fusion_batch_size_sum{KEY}", 0.0), m.get(f"fusion_batch_size_count{KEY}", 0.0))


def _stats(v2, v2_stub):
    resp = vs.grpc_stats(v2, v2_stub, harness.MODEL_NAME)
    return vs.stats_figures(resp.model_stats[0])


class Run:
    """Threads started together; each records (kind, latency_s, problems,
    native batch_size or None)."""

    def __init__(self):
        self.records = []
        self.lock = threading.Lock()

    def add(self, *rec):
        with self.lock:
            self.records.append(rec)

    def go(self, workers):
        barrier = threading.Barrier(len(workers))

        def wrap(fn, i):
            barrier.wait()
            try:
                fn(i)
            except Exception as e:  # a crash of a client is a failure, not a hang
                self.add("crash", 0.0, [f"{type(e).__name__}: {e}"], None)

        threads = [threading.Thread(target=wrap, args=(fn, i)) for i, fn in enumerate(workers)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert not any(t.is_alive() for t in threads), "client threads still running after 600 s"
        return time.monotonic() - t0


def _native_worker(run, stubs, native_stub, native, gs, n):
    def work(i):
        for k in range(n):
            g = gs[(i * 3 + k) % len(gs)]
            t0 = time.monotonic()
            try:
                r = native_stub.Score(harness.request_from_golden(stubs, g,
                                                                  request_id=f"n{i}-{k}"),
                                      timeout=120)
            except grpc.RpcError as e:
                run.add("native", time.monotonic() - t0, [f"n{i}-{k}: {e.code().name}"], None)
                continue
            lat = time.monotonic() - t0
            ref = native.get(g)
            errs = []
            if abs(r.score - ref.score) > vs.TOL_NATIVE:
                errs.append(f"n{i}-{k}: score {r.score} vs {ref.score}")
            if abs(r.score - g.score) > vs.TOL_GOLDEN:
                errs.append(f"n{i}-{k}: score {r.score} vs golden {g.score}")
            if r.request_id != f"n{i}-{k}":
                errs.append(f"n{i}-{k}: request_id {r.request_id!r}")
            run.add("native", lat, errs, r.timing.batch_size)
    return work


def _grpc_v2_worker(run, v2, v2_stub, native, gs, n, rows_sent):
    def work(i):
        for k in range(n):
            B = 2 if k % 4 == 3 else 1
            rows = [gs[(i + k + j) % len(gs)] for j in range(B)]
            rid = f"v{i}-{k}"
            req = vs.request_from_golden(rows, id=rid, by_ids=k % 3 == 2, mask=True)
            t0 = time.monotonic()
            try:
                resp = v2_stub.ModelInfer(vs.to_grpc(v2, req, raw=k % 2 == 1), timeout=120)
            except grpc.RpcError as e:
                run.add("v2", time.monotonic() - t0, [f"{rid}: {e.code().name}"], None)
                continue
            lat = time.monotonic() - t0
            with run.lock:
                rows_sent[0] += B
            errs = [] if resp.id == rid else [f"{rid}: id {resp.id!r}"]
            errs += vs.check_outputs(vs.outputs_of_grpc(resp)[0], rows, native, tag=f"[{rid}] ")
            run.add("v2" if B == 1 else "v2_b2", lat, errs, None)
    return work


def _http_v2_worker(run, base, native, gs, n, rows_sent):
    def work(i):
        for k in range(n):
            g = gs[(i + k) % len(gs)]
            rid = f"h{i}-{k}"
            req = vs.request_from_golden([g], id=rid)
            t0 = time.monotonic()
            if k % 2:
                r, _, outs = vs.http_infer_binary(base, req, timeout=120)
            else:
                r, outs = vs.http_infer(base, req, timeout=120)
            lat = time.monotonic() - t0
            if r.status != 200:
                run.add("http", lat, [f"{rid}: HTTP {r.status} {r.body[:200]!r}"], None)
                continue
            with run.lock:
                rows_sent[0] += 1
            run.add("http", lat, vs.check_outputs(outs, [g], native, tag=f"[{rid}] "), None)
    return work


def _summarize(run, native_threads, label):
    errs = [e for rec in run.records for e in rec[2]]
    sizes = [rec[3] for rec in run.records if rec[0] == "native" and rec[3] is not None]
    lat = {}
    for rec in run.records:
        lat.setdefault(rec[0], []).append(rec[1] * 1000)
    harness.observe(f"{label}_latency_ms_p50", {k: round(statistics.median(v), 1)
                                                for k, v in lat.items()})
    harness.observe(f"{label}_native_batch_sizes",
                    {b: sizes.count(b) for b in sorted(set(sizes))})
    over = sum(1 for b in sizes if b > native_threads)
    return errs, sizes, over


def _check_counts(v2, v2_stub, server, before_m, before_s, tasks, requests, label):
    """The histogram's and ModelStatistics' counts agree with what was sent."""
    after_m = vs.poll(lambda: _batch_metrics(server), lambda m: m[0] - before_m[0] >= tasks,
                      timeout=vs.POLL_TIMEOUT_S)
    after_s = vs.poll(lambda: _stats(v2, v2_stub),
                      lambda s: s["inference_count"] - before_s["inference_count"] >= tasks)
    hist_tasks, hist_batches = after_m[0] - before_m[0], after_m[1] - before_m[1]
    d = vs.delta(after_s, before_s)
    harness.observe(f"{label}_batches", f"{hist_tasks:.0f} tasks in {hist_batches:.0f} batches "
                                        f"(mean {hist_tasks / max(hist_batches, 1):.2f})")
    harness.observe(f"{label}_statistics_delta",
                    {k: d[k] for k in ("success.count", "inference_count", "execution_count",
                                       "batch_stats.rows", "fail.count")})
    assert hist_tasks == tasks, \
        f"fusion_batch_size_sum rose by {hist_tasks}, {tasks} tasks were sent"
    assert d["inference_count"] == tasks, d
    assert d["success.count"] == requests, d
    assert d["fail.count"] == 0, d
    assert d["execution_count"] == hist_batches, (d, hist_batches)
    assert d["batch_stats.rows"] == tasks, d
    return hist_tasks / hist_batches


NATIVE_THREADS, NATIVE_N = 2, 450
V2_THREADS, V2_N = 12, 180


def test_native_and_grpc_v2_share_batches_at_saturation(server, stubs, native_stub, native,
                                                        v2, v2_stub, one_bucket):
    gs = one_bucket
    before_m, before_s = _batch_metrics(server), vs.settled(lambda: _stats(v2, v2_stub))
    run, v2_rows = Run(), [0]
    workers = [_native_worker(run, stubs, native_stub, native, gs, NATIVE_N)] * NATIVE_THREADS
    workers += [_grpc_v2_worker(run, v2, v2_stub, native, gs, V2_N, v2_rows)] * V2_THREADS
    wall = run.go(workers)
    errs, sizes, over = _summarize(run, NATIVE_THREADS, "mixed_grpc")
    n_native = NATIVE_THREADS * NATIVE_N
    n_v2 = V2_THREADS * V2_N
    harness.observe("mixed_grpc_run", f"{n_native} native + {n_v2} v2 requests "
                                      f"({v2_rows[0]} rows) in {wall:.1f} s; "
                                      f"{over}/{len(sizes)} native answers in batches "
                                      f"> {NATIVE_THREADS}")
    vs.assert_no_problems(errs, "mixed native + gRPC v2: ")
    assert len(sizes) == n_native, f"{len(sizes)} native answers of {n_native}"
    assert max(sizes) <= 64, max(sizes)
    # Mixing (module docstring): a native batch larger than the native
    # clients' concurrency held v2 rows. Asked of a tenth of the native
    # answers, so it is the rule and not a coincidence.
    assert over >= 1, f"no native answer came from a batch > {NATIVE_THREADS}: " \
                      f"{sorted(set(sizes))}"
    assert over >= len(sizes) // 10, \
        f"only {over} of {len(sizes)} native answers in batches holding v2 rows"
    mean = _check_counts(v2, v2_stub, server, before_m, before_s, n_native + v2_rows[0],
                         n_native + n_v2, "mixed_grpc")
    assert mean > NATIVE_THREADS, mean


HTTP_NATIVE_THREADS, HTTP_NATIVE_N = 1, 450
HTTP_THREADS, HTTP_N = 8, 180  # cpp-httplib serves 8 connections at once by default


def test_native_and_http_v2_share_batches_at_saturation(server, stubs, native_stub, native,
                                                        v2, v2_stub, one_bucket):
    """The same with v2 over HTTP (JSON and binary) and one native client: a
    native answer with batch_size > 1 was computed with HTTP v2 rows."""
    gs = one_bucket
    before_m, before_s = _batch_metrics(server), vs.settled(lambda: _stats(v2, v2_stub))
    run, rows = Run(), [0]
    workers = [_native_worker(run, stubs, native_stub, native, gs, HTTP_NATIVE_N)]
    workers += [_http_v2_worker(run, server.http_address, native, gs, HTTP_N, rows)] \
        * HTTP_THREADS
    wall = run.go(workers)
    errs, sizes, over = _summarize(run, HTTP_NATIVE_THREADS, "mixed_http")
    harness.observe("mixed_http_run", f"{HTTP_NATIVE_N} native + {HTTP_THREADS * HTTP_N} HTTP "
                                      f"in {wall:.1f} s; {over}/{len(sizes)} native answers "
                                      f"in batches > 1")
    vs.assert_no_problems(errs, "mixed native + HTTP v2: ")
    assert len(sizes) == HTTP_NATIVE_N
    assert over >= 1, f"no native answer came from a batch > 1: {sorted(set(sizes))}"
    assert over >= len(sizes) // 10, \
        f"only {over} of {len(sizes)} native answers in batches holding HTTP v2 rows"
    _check_counts(v2, v2_stub, server, before_m, before_s, HTTP_NATIVE_N + rows[0],
                  HTTP_NATIVE_N + HTTP_THREADS * HTTP_N, "mixed_http")


def test_sequential_latency_native_vs_v2(server, stubs, native_stub, native, v2, v2_stub,
                                         one_bucket):
    """One request at a time, B = 1, on the quiet server: every form answers
    correctly; the latencies are figures (observed, not asserted)."""
    gs = one_bucket
    forms = {
        "native": lambda g: native_stub.Score(harness.request_from_golden(stubs, g),
                                              timeout=60).score,
        "grpc_typed": lambda g: vs.outputs_of_grpc(v2_stub.ModelInfer(
            vs.to_grpc(v2, vs.request_from_golden([g])), timeout=60))[0][vs.SCORE].data[0],
        "grpc_raw": lambda g: vs.outputs_of_grpc(v2_stub.ModelInfer(
            vs.to_grpc(v2, vs.request_from_golden([g]), raw=True),
            timeout=60))[0][vs.SCORE].data[0],
        "http_json": lambda g: vs.http_infer(server.http_address,
                                             vs.request_from_golden([g]))[1][vs.SCORE].data[0],
        "http_binary": lambda g: vs.http_infer_binary(
            server.http_address, vs.request_from_golden([g]))[2][vs.SCORE].data[0],
    }
    lat, errs = {k: [] for k in forms}, []
    for rnd in range(30):
        for name, fn in forms.items():  # interleaved, so drift hits every form alike
            g = gs[rnd % len(gs)]
            t0 = time.monotonic()
            score = fn(g)
            lat[name].append((time.monotonic() - t0) * 1000)
            if abs(score - native.get(g).score) > vs.TOL_NATIVE:
                errs.append(f"{name} {g.request_id}: {score} vs {native.get(g).score}")
    harness.observe("sequential_latency_ms_p50",
                    {k: round(statistics.median(v), 2) for k, v in lat.items()})
    vs.assert_no_problems(errs)
