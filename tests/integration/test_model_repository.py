"""The model repository, end to end: several models and versions, version
policies, the repository poller (hot reload), and the admin service, against
the real server under real load (fusion-bench and Python clients).

Every test builds its own repository in a tmp dir: copies of models/fusion/1
renumbered (config.pbtxt must say its directory's version), and a second
small model built by small_bundle.py. Servers are started with the harness
and stopped by pid at the end of each test.

Run: /usr/bin/python3 -m pytest tests/integration/test_model_repository.py -q
"""
import json
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import grpc
import pytest

import harness
import small_bundle
from repository_fixtures import (  # noqa: F401  (fixtures are used by name)
    RPC_TIMEOUT_S, STATE_TIMEOUT_S, TOL, Bench, ClientLoop, Monitor, add_fusion_version,
    bench_figures, check_probabilities, load_golden_file, make_version, metric,
    moderation_bundle, read_config, repo_stubs, report_observations, requests_answered,
    rss_kb, serving, wait_until)

OK = grpc.StatusCode.OK
NOT_FOUND = grpc.StatusCode.NOT_FOUND
LIVE = ("VERSION_LOADING", "VERSION_READY", "VERSION_UNLOADING")


def _mb(kb):
    return round(kb / 1024.0, 1) if kb is not None else None


def _loop_checks(loop):
    """(errors, wrong answers, the model_version of each OK response)."""
    records = loop.snapshot()
    errors = [(round(t, 2), code, details) for t, code, details, _ in records if code != "OK"]
    wrong = [problem for _, code, _, problem in records if code == "OK" and problem]
    versions = [v for _, code, v, _ in records if code == "OK"]
    return errors, wrong, versions


def _assert_no_bench_failures(reports, benches):
    for bench in benches:
        figures = bench_figures(reports[bench.name])
        assert figures["requests"] > 0, f"{bench.name}: no requests\n{bench.output()}"
        assert figures["failed"] == 0, (
            f"fusion-bench {bench.name}: {figures['failed']} of {figures['requests']} "
            f"requests failed: {figures['errors']}, unfinished {figures['unfinished']}\n"
            f"{bench.output()}")


# --- 1. hot reload under continuous load ---------------------------------------

def test_new_version_copied_in_takes_over_under_load_without_a_failed_request(
        stubs, repo_stubs, golden, tmp_path):
    repo = tmp_path / "models"
    add_fusion_version(stubs, repo, 1)
    # Version 2 is prepared outside the repository, then copied in with a
    # plain copytree while the poller runs: the server must wait until the
    # copy has settled (same files, sizes and mtimes on two polls).
    staged = add_fusion_version(stubs, tmp_path / "staging", 2)
    g = golden[4]
    # Long enough for the switch to land well inside it: v2's load and
    # warm-up took 7-15 s here with the load on (2 cores).
    window_s, warmup_s = 35, 1

    with serving(stubs, repo_stubs, tmp_path, repo, poll="500ms") as s:
        assert list(s.metadata().versions) == ["1"], s.log_tail()
        assert s.states() == {"1": "VERSION_READY"}
        rss_idle = rss_kb(s.pid)

        loop = ClientLoop(s, harness.request_from_golden(stubs, g, request_id="loop"), g)
        monitor = Monitor(s)
        input_file = str(repo / "fusion" / "1" / "golden.jsonl")
        unary = Bench(tmp_path, "unary", s.srv.grpc_address,
                      ["--mode=unary", "--concurrency=4", f"--warmup={warmup_s}s",
                       f"--duration={window_s}s", f"--input={input_file}"])
        stream = Bench(tmp_path, "stream", s.srv.grpc_address,
                       ["--mode=stream", "--streams=2", "--rate=100", f"--warmup={warmup_s}s",
                        f"--duration={window_s}s", f"--input={input_file}"])
        benches = [unary, stream]
        try:
            loop.start()
            monitor.start()
            for b in benches:
                b.start()
            wait_until(lambda: requests_answered(s) >= 300, 60,
                       "fusion-bench's requests to reach the server", s)
            rss_before = rss_kb(s.pid)
            answered_before = requests_answered(s)

            t_copy = time.monotonic()
            shutil.copytree(staged, repo / "fusion" / "2")
            copy_s = time.monotonic() - t_copy

            t_v2 = wait_until(lambda: loop.first_time("2"), STATE_TIMEOUT_S,
                              "a response from version 2", s)
            wait_until(lambda: "1" not in s.states(), STATE_TIMEOUT_S,
                       "version 1 to be unloaded and gone from version_status", s)
            t_v1_gone = time.monotonic()
            reports = {b.name: b.finish() for b in benches}
        finally:
            for b in benches:
                b.kill()
            loop.stop()
            monitor.stop()
        window_end = min(b.started for b in benches) + warmup_s + window_s
        time.sleep(1.0)  # let the freed memory settle before reading RSS
        rss_after = rss_kb(s.pid)

        samples = monitor.snapshot()
        both = [rss for _, st, rss in samples
                if isinstance(st, dict) and "1" in st and "2" in st and rss]
        rss_during = max(both) if both else None
        final_md = s.metadata()
        v2 = s.status_of("", "2")
        errors, wrong, versions = _loop_checks(loop)
        figures = {b.name: bench_figures(reports[b.name]) for b in benches}
        samples_m = s.metrics()
        harness.observe("repo_reload_requests_sent", {
            n: f["requests"] for n, f in figures.items()} | {"python_loop": len(versions)})
        harness.observe("repo_reload_requests_failed", {
            n: f["failed"] for n, f in figures.items()} | {"python_loop": len(errors)})
        harness.observe("repo_reload_bench", figures)
        harness.observe("repo_reload_copy_s", round(copy_s, 4))
        harness.observe("repo_reload_switch_s (copy -> first v2 response)",
                        round(t_v2 - t_copy, 2))
        harness.observe("repo_reload_v1_gone_s (copy -> v1 absent)", round(t_v1_gone - t_copy, 2))
        harness.observe("repo_reload_rss_mb idle/before/during/after", (
            _mb(rss_idle), _mb(rss_before), _mb(rss_during), _mb(rss_after)))
        harness.observe("repo_reload_v2_load_s/warmup_s",
                        (round(v2.load_seconds, 3), round(v2.warmup_seconds, 3)) if v2 else None)
        harness.observe("repo_reload_v1_states", monitor.states_seen("1"))
        harness.observe("repo_reload_v2_states", monitor.states_seen("2"))
        harness.observe("repo_reload_requests_during_reload",
                        requests_answered(s) - answered_before)

        # Not one request failed, in either bench or the Python loop.
        _assert_no_bench_failures(reports, benches)
        assert not errors, f"Python client errors: {errors[:10]}\n{s.log_tail()}"
        assert not wrong, f"wrong answers: {wrong[:5]}"
        # Traffic switched from 1 to 2 once and never went back.
        assert versions and versions[0] == "1", versions[:5]
        first_v2 = versions.index("2")
        assert "1" not in versions[first_v2:], (
            f"version 1 answered after version 2 had: "
            f"{versions[first_v2:].count('1')} times")
        # ... while the load was on (otherwise this tested nothing).
        assert t_v2 < window_end and t_v1_gone < window_end, (
            f"switch at {t_v2 - t_copy:.1f} s, v1 gone at {t_v1_gone - t_copy:.1f} s after "
            f"the copy: after the benches' window ended")
        # The half-copied directory never failed to load.
        assert "VERSION_FAILED" not in monitor.states_seen("2"), monitor.states_seen("2")
        assert not metric(samples_m, "fusion_model_load_failures_total", model="fusion"), (
            "a load failed during the copy\n" + s.log_tail())
        # The end state: only version 2, ready, with its load figures.
        assert list(final_md.versions) == ["2"]
        assert s.states() == {"2": "VERSION_READY"}
        assert v2 is not None and v2.load_seconds > 0, v2
        assert 0 < v2.warmup_seconds <= v2.load_seconds, v2
        assert metric(samples_m, "fusion_model_ready", model="fusion", version="2") == 1
        assert not metric(samples_m, "fusion_model_ready", model="fusion", version="1")
        # Version 1 is unloaded: asking for it is NOT_FOUND.
        code, details = s.score_code(harness.request_from_golden(
            stubs, g, model_version="1"))
        assert code == NOT_FOUND, (code, details)
        code, resp = s.score_code(harness.request_from_golden(stubs, g, model_version="2"))
        assert code == OK and resp.model_version == "2", (code, resp)


# --- 2. a broken version leaves the old one serving ------------------------------

def test_broken_version_fails_to_load_and_the_serving_one_goes_on(
        stubs, repo_stubs, golden, tmp_path):
    repo = tmp_path / "models"
    add_fusion_version(stubs, repo, 2)
    broken = add_fusion_version(stubs, tmp_path / "staging", 3)
    with open(os.path.join(broken, "model.pt"), "wb") as f:
        f.write(b"this is not a TorchScript archive\n" * 4096)
    g = golden[7]
    window_s, warmup_s = 15, 1

    with serving(stubs, repo_stubs, tmp_path, repo, poll="500ms") as s:
        assert s.states() == {"2": "VERSION_READY"}, s.log_tail()
        loop = ClientLoop(s, harness.request_from_golden(stubs, g, request_id="loop"), g)
        unary = Bench(tmp_path, "unary", s.srv.grpc_address,
                      ["--mode=unary", "--concurrency=4", f"--warmup={warmup_s}s",
                       f"--duration={window_s}s",
                       f"--input={repo / 'fusion' / '2' / 'golden.jsonl'}"])
        try:
            loop.start()
            unary.start()
            wait_until(lambda: requests_answered(s) >= 100, 60,
                       "fusion-bench's requests to reach the server", s)
            t_copy = time.monotonic()
            shutil.copytree(broken, repo / "fusion" / "3")
            wait_until(lambda: s.states().get("3") == "VERSION_FAILED", STATE_TIMEOUT_S,
                       "version 3 to be VERSION_FAILED", s)
            t_failed = time.monotonic()
            failures_at_first = metric(s.metrics(), "fusion_model_load_failures_total",
                                       model="fusion", version="3")
            # Four polls later: not retried (its files did not change).
            time.sleep(2.0)
            failures_later = metric(s.metrics(), "fusion_model_load_failures_total",
                                    model="fusion", version="3")
            states_later = s.states()
            v3 = s.status_of("", "3")
            code_v3, details_v3 = s.score_code(harness.request_from_golden(
                stubs, g, model_version="3"))
            report = unary.finish()
        finally:
            unary.kill()
            loop.stop()
        window_end = unary.started + warmup_s + window_s
        errors, wrong, versions = _loop_checks(loop)
        harness.observe("repo_broken_time_to_failed_s", round(t_failed - t_copy, 2))
        harness.observe("repo_broken_reason", v3.reason if v3 else None)
        harness.observe("repo_broken_bench", bench_figures(report))
        harness.observe("repo_broken_failures_metric", (failures_at_first, failures_later))

        assert v3 is not None and v3.state == s.pb.VERSION_FAILED, v3
        assert "model.pt" in v3.reason, f"the reason does not name the broken file: {v3.reason!r}"
        assert failures_at_first == 1, failures_at_first
        assert failures_later == 1, "the failed version was retried although unchanged"
        assert states_later == {"2": "VERSION_READY", "3": "VERSION_FAILED"}, states_later
        assert t_failed < window_end, "version 3 failed only after the load had stopped"
        # Asking for the failed version says why.
        assert code_v3 == grpc.StatusCode.FAILED_PRECONDITION, (code_v3, details_v3)
        assert "model.pt" in details_v3, details_v3
        # Version 2 served throughout, without a failure.
        _assert_no_bench_failures({"unary": report}, [unary])
        assert not errors, f"Python client errors: {errors[:10]}\n{s.log_tail()}"
        assert not wrong, wrong[:5]
        assert set(versions) == {"2"}, sorted(set(versions))
        assert list(s.metadata().versions) == ["2"]
        # The log says so.
        failed_lines = [line for line in s.log_text().splitlines()
                        if re.search(r"fail", line, re.I)
                        and re.search(r"fusion(?: v|/| version )3\b", line)]
        assert failed_lines, f"no log line says fusion v3 failed:\n{s.log_tail()}"

        # Fixing its files (a good model.pt) makes the poller try it again.
        shutil.copyfile(os.path.join(harness.bundle_dir(), "model.pt"),
                        repo / "fusion" / "3" / "model.pt")
        wait_until(lambda: s.states() == {"3": "VERSION_READY"}, STATE_TIMEOUT_S,
                   "the repaired version 3 to serve alone", s)
        code, resp = s.score_code(harness.request_from_golden(stubs, g))
        assert code == OK and resp.model_version == "3", (code, resp)
        assert check_probabilities(resp, g) is None
        assert metric(s.metrics(), "fusion_model_load_failures_total",
                      model="fusion", version="3") == 1


# --- 3. the admin service --------------------------------------------------------

def test_admin_unload_with_requests_in_flight_then_load(
        stubs, repo_stubs, golden, moderation_bundle, tmp_path):
    repo = tmp_path / "models"
    add_fusion_version(stubs, repo, 1)
    shutil.copytree(moderation_bundle, repo / "moderation" / "1")
    mod_golden = load_golden_file(os.path.join(moderation_bundle, "golden.jsonl"))
    pb = stubs.scoring_pb2
    apb = repo_stubs.pb2

    # moderation is the default; fusion (the larger, slower model) is the one
    # unloaded with requests in flight.
    with serving(stubs, repo_stubs, tmp_path, repo, poll="500ms",
                 extra=["--model=moderation"]) as s:
        def mod_request(i=0, **kw):
            return harness.request_from_golden(stubs, mod_golden[i], **kw)

        def fusion_request(i=0, **kw):
            return harness.request_from_golden(stubs, golden[i], model="fusion", **kw)

        def admin_code(fn, request):
            try:
                return OK, fn(request, timeout=120)
            except grpc.RpcError as e:
                return e.code(), e.details()

        def listed():
            return {m.name: m for m in s.admin.ListModels(apb.ListModelsRequest(),
                                                          timeout=RPC_TIMEOUT_S).models}

        def states_of(model_status):
            return [(v.version, pb.VersionState.Name(v.state)) for v in model_status.versions]

        # Not offered on the scoring port.
        on_main = repo_stubs.pb2_grpc.ModelRepositoryServiceStub(s.channel)
        for name, fn, request in (
                ("ListModels", on_main.ListModels, apb.ListModelsRequest()),
                ("LoadModel", on_main.LoadModel, apb.LoadModelRequest(name="fusion")),
                ("UnloadModel", on_main.UnloadModel, apb.UnloadModelRequest(name="fusion"))):
            code, _ = admin_code(fn, request)
            assert code == grpc.StatusCode.UNIMPLEMENTED, f"{name} on the gRPC port: {code}"

        models = listed()
        assert set(models) == {"fusion", "moderation"}, set(models)
        assert models["moderation"].is_default and not models["fusion"].is_default
        assert states_of(models["fusion"]) == [("1", "VERSION_READY")]
        assert states_of(models["moderation"]) == [("1", "VERSION_READY")]
        assert s.score(mod_request()).model == "moderation"  # the default

        # Many slow requests (longest texts, attention) in flight, then unload.
        longest = sorted(golden, key=lambda x: len(x.tokens))[-5:]
        total = 600
        outcomes, lock = [], threading.Lock()
        answered = threading.Event()

        def record(future):
            try:
                future.result()
                outcome = "OK"
            except grpc.RpcError as e:
                outcome = f"{e.code().name}: {e.details()}"
            with lock:
                outcomes.append((time.monotonic(), outcome))
                if len(outcomes) >= 10:
                    answered.set()

        base = metric(s.metrics(), "fusion_requests_total", model="fusion") or 0.0
        for i in range(total):
            req = harness.request_from_golden(stubs, longest[i % len(longest)],
                                              request_id=f"inflight-{i}", model="fusion",
                                              attention=pb.ATTENTION_MEAN)
            s.stub.Score.future(req, timeout=120).add_done_callback(record)
        assert answered.wait(60), "the first answers never came"

        def all_accepted():
            m = s.metrics()
            inflight = metric(m, "fusion_inflight_requests", model="fusion") or 0.0
            done = (metric(m, "fusion_requests_total", model="fusion") or 0.0) - base
            return (inflight, done) if inflight + done >= total else None

        inflight, done = wait_until(all_accepted, 30,
                                    "every request to be accepted by the server", s)
        t_unload = time.monotonic()
        code, unload_resp = admin_code(s.admin.UnloadModel, apb.UnloadModelRequest(name="fusion"))
        unload_s = time.monotonic() - t_unload
        assert code == OK, (code, unload_resp)
        # From now on requests naming it are NOT_FOUND.
        code_new, details_new = s.score_code(fusion_request(1))
        code_v1, details_v1 = s.score_code(fusion_request(1, model_version="1"))
        deadline = time.monotonic() + 120
        while len(outcomes) < total and time.monotonic() < deadline:
            time.sleep(0.05)
        harness.observe("repo_admin_inflight_at_unload (inflight, done)", (inflight, done))
        harness.observe("repo_admin_unload_rpc_s", round(unload_s, 3))
        after = [t for t, _ in outcomes if t > t_unload]
        harness.observe("repo_admin_answers_after_unload", len(after))
        assert len(outcomes) == total, f"{total - len(outcomes)} requests never answered"
        bad = [o for _, o in outcomes if o != "OK"]
        assert not bad, f"{len(bad)} in-flight requests failed: {bad[:5]}\n{s.log_tail()}"
        assert after, "every request was answered before the unload: nothing was in flight"
        assert code_new == NOT_FOUND, (code_new, details_new)
        assert code_v1 == NOT_FOUND, (code_v1, details_v1)
        assert s.score(mod_request(1)).model == "moderation"

        # ListModels: fusion has no live version once it has drained.
        wait_until(lambda: not [v for v, st in states_of(listed().get(
            "fusion", apb.ModelStatus())) if st in LIVE], STATE_TIMEOUT_S,
                   "fusion to have no loaded version in ListModels", s)
        assert states_of(listed()["moderation"]) == [("1", "VERSION_READY")]
        code, _ = admin_code(s.admin.UnloadModel, apb.UnloadModelRequest(name="fusion"))
        assert code == NOT_FOUND, f"unloading it twice: {code}"
        # The poller leaves it unloaded (three polls).
        time.sleep(1.6)
        assert s.score_code(fusion_request(2))[0] == NOT_FOUND, "the poller reloaded fusion"
        assert not [v for v, st in states_of(listed().get("fusion", apb.ModelStatus()))
                    if st in LIVE]

        # LoadModel brings it back, ready when it returns.
        t_load = time.monotonic()
        code, load_resp = admin_code(s.admin.LoadModel, apb.LoadModelRequest(name="fusion"))
        harness.observe("repo_admin_load_rpc_s", round(time.monotonic() - t_load, 2))
        assert code == OK, (code, load_resp, s.log_tail())
        assert states_of(load_resp.model) == [("1", "VERSION_READY")], load_resp
        code, resp = s.score_code(fusion_request(3))
        assert code == OK and resp.model == "fusion" and resp.model_version == "1", (code, resp)
        assert check_probabilities(resp, golden[3]) is None
        assert states_of(listed()["fusion"]) == [("1", "VERSION_READY")]

        # The default model cannot be unloaded; unknown names are NOT_FOUND.
        code, details = admin_code(s.admin.UnloadModel, apb.UnloadModelRequest(name="moderation"))
        assert code == grpc.StatusCode.FAILED_PRECONDITION, (code, details)
        assert s.score(mod_request(2)).model == "moderation"
        for fn, request in (
                (s.admin.UnloadModel, apb.UnloadModelRequest(name="nope")),
                (s.admin.LoadModel, apb.LoadModelRequest(name="nope")),
                (s.admin.UnloadModel, apb.UnloadModelRequest(name="fusion", version="9"))):
            code, details = admin_code(fn, request)
            assert code == NOT_FOUND, (request, code, details)
        assert {m: states_of(st) for m, st in listed().items()} == {
            "fusion": [("1", "VERSION_READY")], "moderation": [("1", "VERSION_READY")]}


# --- 4. two different models side by side ----------------------------------------

def test_two_different_models_each_answer_their_golden_requests(
        stubs, repo_stubs, golden, moderation_bundle, tmp_path):
    repo = tmp_path / "models"
    add_fusion_version(stubs, repo, 1)
    shutil.copytree(moderation_bundle, repo / "moderation" / "1")
    # A third model --models leaves out.
    make_version(stubs, moderation_bundle, str(repo / "spare" / "1"), 1, name="spare")
    mod_golden = load_golden_file(os.path.join(moderation_bundle, "golden.jsonl"))
    mod_config = read_config(stubs, moderation_bundle)
    fusion_config = harness.load_config(stubs)
    pb = stubs.scoring_pb2
    assert len(mod_config.features) != len(fusion_config.features)
    assert len(mod_config.classes) != len(fusion_config.classes)

    with serving(stubs, None, tmp_path, repo, poll=None, admin=False,
                 extra=["--models=fusion,moderation"]) as s:
        # Metadata: each model its own classes, features and batching.
        for name, cfg in (("fusion", fusion_config), ("moderation", mod_config)):
            md = s.metadata(name)
            assert md.name == name and md.version == "1" and list(md.versions) == ["1"]
            assert list(md.classes) == list(cfg.classes)
            assert [f.name for f in md.features] == [f.name for f in cfg.features]
            assert md.attention_heads == cfg.attention_heads
            assert md.max_tokens == cfg.max_tokens
            b = md.batching
            assert (b.max_batch_size, b.max_queue_delay_us, list(b.preferred_batch_sizes),
                    b.max_queue_size, b.priority_levels) == (
                cfg.batching.max_batch_size, cfg.batching.max_queue_delay_us,
                list(cfg.batching.preferred_batch_sizes), cfg.batching.max_queue_size,
                cfg.batching.priority_levels), (name, b)
        assert s.metadata().name == "fusion"  # the default

        # Both golden sets, interleaved and concurrent, so batches could mix.
        jobs = [("fusion", g, pb.ATTENTION_NONE) for g in golden]
        jobs += [("moderation", g, a) for g in mod_golden
                 for a in (pb.ATTENTION_NONE, pb.ATTENTION_PER_HEAD)]
        jobs = [jobs[i] for i in sorted(range(len(jobs)), key=lambda i: (i * 7919) % len(jobs))]

        def run(job):
            model, g, attention = job
            req = harness.request_from_golden(stubs, g, model=model, attention=attention,
                                              request_id=f"{model}-{g.request_id}")
            return job, s.score_code(req)

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(run, jobs * 3))
        problems = []
        for (model, g, attention), (code, resp) in results:
            tag = f"{model} {g.request_id} attention={attention}"
            if code != OK:
                problems.append(f"{tag}: {code} {resp}")
                continue
            cfg = mod_config if model == "moderation" else fusion_config
            if resp.model != model or resp.model_version != "1":
                problems.append(f"{tag}: answered by {resp.model} v{resp.model_version}")
            p = check_probabilities(resp, g)
            if p:
                problems.append(f"{tag}: {p}")
            if abs(resp.score - g.score) > TOL:
                problems.append(f"{tag}: score {resp.score} vs {g.score}")
            if attention == pb.ATTENTION_PER_HEAD:
                a = resp.attention
                shape = [cfg.attention_heads, len(g.tokens), len(cfg.features)]
                if list(a.text_to_features_shape) != shape:
                    problems.append(f"{tag}: text_to_features_shape "
                                    f"{list(a.text_to_features_shape)} != {shape}")
                if list(a.tokens) != g.tokens:
                    problems.append(f"{tag}: tokens {list(a.tokens)} vs {g.tokens}")
                for field, want in (("text_to_features", g.text_to_features),
                                    ("features_to_text", g.features_to_text)):
                    d = harness.max_abs_diff(getattr(a, field), harness.flatten(want))
                    if d > TOL:
                        problems.append(f"{tag}: {field} off golden by {d:.2e}")
        assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:20])
        harness.observe("repo_two_models_requests_checked", len(results))

        # One model's features are INVALID_ARGUMENT for the other, naming them.
        fusion_names = {f.name for f in fusion_config.features}
        mod_names = set(small_bundle.FEATURE_NAMES)
        for model, g, foreign in (("moderation", golden[5], fusion_names),
                                  ("fusion", mod_golden[1], mod_names)):
            code, details = s.score_code(harness.request_from_golden(stubs, g, model=model))
            assert code == grpc.StatusCode.INVALID_ARGUMENT, (model, code, details)
            named = re.findall(r"features\['([^']+)'\]", details)
            assert named and set(named) <= foreign, (model, details)
        code, details = s.score_code(harness.request_from_golden(
            stubs, golden[5], model="moderation", by_ids=True))
        # fusion's token ids may lie outside moderation's vocab: either field
        # may be named, but it must be INVALID_ARGUMENT.
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
        vector_req = pb.ScoreRequest(model="moderation", text=mod_golden[3].text)
        vector_req.feature_vector.extend(golden[3].feature_vector)  # 16 values, not 5
        code, details = s.score_code(vector_req)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "feature_vector" in details, details
        # moderation's own optional/required features apply.
        req = harness.request_from_golden(stubs, mod_golden[3], model="moderation")
        del req.features["caps_ratio"]  # required
        code, details = s.score_code(req)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "caps_ratio" in details, details
        req = harness.request_from_golden(stubs, mod_golden[3], model="moderation")
        del req.features["followers"]  # optional: its default is used
        code, resp = s.score_code(req)
        assert code == OK and len(resp.probabilities) == 3, (code, resp)

        # --models=fusion,moderation: "spare" is in the repository, not served.
        assert s.score_code(harness.request_from_golden(
            stubs, mod_golden[0], model="spare"))[0] == NOT_FOUND
        with pytest.raises(grpc.RpcError) as e:
            s.metadata("spare")
        assert e.value.code() == NOT_FOUND
        m = s.metrics()
        assert metric(m, "fusion_model_ready", model="fusion", version="1") == 1
        assert metric(m, "fusion_model_ready", model="moderation", version="1") == 1
        assert not metric(m, "fusion_model_ready", model="spare")


# --- 5. version policies --------------------------------------------------------

def _slow_copy(src, dst, chunk=256 * 1024, pause_s=0.1):
    """Copies a bundle the way a slow upload would: the small files, then
    model.pt a chunk at a time, `pause_s` apart (shorter than a poll
    interval, so every poll sees it change). Returns the seconds it took."""
    t0 = time.monotonic()
    os.makedirs(dst)
    for name in sorted(os.listdir(src)):
        if name != "model.pt":
            shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
    with open(os.path.join(src, "model.pt"), "rb") as fin, \
            open(os.path.join(dst, "model.pt"), "wb") as fout:
        while True:
            data = fin.read(chunk)
            if not data:
                break
            fout.write(data)
            fout.flush()
            time.sleep(pause_s)
    return time.monotonic() - t0


def test_version_policy_latest_two(stubs, repo_stubs, golden, tmp_path):
    repo = tmp_path / "models"
    add_fusion_version(stubs, repo, 1)
    add_fusion_version(stubs, repo, 2, policy="latest { num_versions: 2 }")
    staged = add_fusion_version(stubs, tmp_path / "staging", 3,
                                policy="latest { num_versions: 2 }")
    g = golden[6]

    def version_of(model_version):
        code, resp = s.score_code(harness.request_from_golden(
            stubs, g, model_version=model_version))
        if code != OK:
            return code
        assert check_probabilities(resp, g) is None
        return resp.model_version

    with serving(stubs, repo_stubs, tmp_path, repo, poll="1s") as s:
        md = s.metadata()
        assert list(md.versions) == ["2", "1"], (list(md.versions), s.log_tail())
        assert s.states() == {"2": "VERSION_READY", "1": "VERSION_READY"}
        assert version_of("") == "2"
        assert version_of("1") == "1"
        assert version_of("2") == "2"
        assert version_of("3") == NOT_FOUND
        assert s.metadata("", "1").version == "1"

        # A third version arrives by a slow copy: once it has settled it
        # loads, and the policy drops version 1.
        monitor = Monitor(s)
        monitor.start()
        try:
            copy_s = _slow_copy(staged, str(repo / "fusion" / "3"))
            wait_until(lambda: s.states() == {"3": "VERSION_READY", "2": "VERSION_READY"},
                       STATE_TIMEOUT_S, "versions 3 and 2 ready, 1 gone", s)
        finally:
            monitor.stop()
        harness.observe("repo_latest2_slow_copy_s", round(copy_s, 2))
        harness.observe("repo_latest2_v3_states", monitor.states_seen("3"))
        assert "VERSION_FAILED" not in monitor.states_seen("3"), (
            f"the half-written version was loaded: {monitor.states_seen('3')}\n{s.log_tail()}")
        assert not metric(s.metrics(), "fusion_model_load_failures_total", model="fusion")
        assert list(s.metadata().versions) == ["3", "2"]
        assert version_of("") == "3"
        assert version_of("2") == "2"
        assert version_of("1") == NOT_FOUND  # unloaded by the policy


def test_version_policy_specific_versions(stubs, repo_stubs, golden, tmp_path):
    repo = tmp_path / "models"
    add_fusion_version(stubs, repo, 1)
    add_fusion_version(stubs, repo, 2)
    add_fusion_version(stubs, repo, 3, policy="specific { versions: [1, 3] }")
    g = golden[8]
    with serving(stubs, repo_stubs, tmp_path, repo, poll=None, admin=False) as s:
        md = s.metadata()
        assert list(md.versions) == ["3", "1"], (list(md.versions), s.log_tail())
        states = s.states()
        assert states.get("3") == "VERSION_READY" and states.get("1") == "VERSION_READY"
        assert states.get("2") != "VERSION_READY", states
        for asked, answered in (("", "3"), ("3", "3"), ("1", "1")):
            code, resp = s.score_code(harness.request_from_golden(stubs, g,
                                                                   model_version=asked))
            assert code == OK and resp.model_version == answered, (asked, code, resp)
            assert check_probabilities(resp, g) is None
        code, details = s.score_code(harness.request_from_golden(stubs, g, model_version="2"))
        assert code == NOT_FOUND, (code, details)
        m = s.metrics()
        assert not metric(m, "fusion_model_ready", model="fusion", version="2")
        assert metric(m, "fusion_model_ready", model="fusion", version="3") == 1


def _post(address: str, path: str, body: Optional[dict] = None):
    """(status, parsed JSON) of a POST to the admin HTTP address."""
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(f"http://{address}{path}", data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_v2_repository_extension_over_http_on_its_own_address(
        stubs, repo_stubs, golden, moderation_bundle, tmp_path):
    repo = tmp_path / "models"
    add_fusion_version(stubs, repo, 1)
    shutil.copytree(moderation_bundle, repo / "moderation" / "1")
    admin_http = f"127.0.0.1:{harness.free_port()}"
    with serving(stubs, repo_stubs, tmp_path, repo, poll=None, admin=False,
                 extra=[f"--admin_http_address={admin_http}"]) as s:
        # Not on the public HTTP port.
        status, _ = _post(s.srv.http_address, "/v2/repository/index")
        assert status == 404, status

        status, index = _post(admin_http, "/v2/repository/index")
        assert status == 200, index
        assert {(m["name"], m["version"], m["state"]) for m in index} == {
            ("fusion", "1", "READY"), ("moderation", "1", "READY")}, index

        status, body = _post(admin_http, "/v2/repository/models/moderation/unload")
        assert (status, body) == (200, {}), (status, body)
        code, details = s.score_code(harness.request_from_golden(
            stubs, load_golden_file(os.path.join(moderation_bundle, "golden.jsonl"))[0],
            model="moderation"))
        assert code == grpc.StatusCode.NOT_FOUND, (code, details)
        status, index = _post(admin_http, "/v2/repository/index", {"ready": True})
        assert [m["name"] for m in index] == ["fusion"], index

        # The default model stays; unknown names and bad bodies are errors.
        status, body = _post(admin_http, "/v2/repository/models/fusion/unload")
        assert status == 400 and "default model" in body["error"], (status, body)
        status, body = _post(admin_http, "/v2/repository/models/nope/unload")
        assert status == 404, (status, body)
        status, body = _post(admin_http, "/v2/repository/models/nope/load")
        assert status == 404, (status, body)
        status, body = _post(admin_http, "/v2/repository/index", {"ready": "yes"})
        assert status == 400 and "ready" in body["error"], (status, body)

        status, body = _post(admin_http, "/v2/repository/models/moderation/load")
        assert (status, body) == (200, {}), (status, body)
        assert s.states("moderation") == {"1": "VERSION_READY"}
        resp = s.score(harness.request_from_golden(stubs, golden[0]))
        assert check_probabilities(resp, golden[0]) is None
