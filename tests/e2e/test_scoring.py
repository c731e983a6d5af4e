"""Score against the bundle's golden outputs (model/export.py wrote them)."""
from concurrent.futures import ThreadPoolExecutor

import pytest

import harness

TOL = 1e-4
RPC_TIMEOUT_S = 30


def _check(resp, g, *, pb, model_config, feature_names, attention, what=""):
    """Returns a list of problems (empty when the response matches golden)."""
    probs = list(resp.probabilities)
    tag = f"{what}{g.request_id}"
    errs = []
    if resp.HasField("error"):
        errs.append(f"{tag}: unexpected error {resp.error.code}: {resp.error.message}")
    if len(probs) != len(model_config.classes):
        errs.append(f"{tag}: {len(probs)} probabilities, expected {len(model_config.classes)}")
    d = harness.max_abs_diff(probs, g.probabilities)
    if d > TOL:
        errs.append(f"{tag}: probabilities {probs} vs golden {g.probabilities} (max diff {d:.2e})")
    pos = model_config.positive_class
    if len(probs) > pos and abs(resp.score - probs[pos]) > 1e-7:
        errs.append(f"{tag}: score {resp.score} != probabilities[{pos}] {probs[pos]}")
    if abs(resp.score - g.score) > TOL:
        errs.append(f"{tag}: score {resp.score} vs golden {g.score}")

    heads = model_config.attention_heads
    L, F = len(g.tokens), len(feature_names)
    if attention == pb.ATTENTION_NONE:
        if resp.HasField("attention"):
            errs.append(f"{tag}: attention set although ATTENTION_NONE was asked")
        return errs
    if not resp.HasField("attention"):
        return errs + [f"{tag}: attention not set"]
    a = resp.attention
    if list(a.tokens) != g.tokens:
        errs.append(f"{tag}: tokens {list(a.tokens)} vs golden {g.tokens}")
    if list(a.feature_names) != feature_names:
        errs.append(f"{tag}: feature_names {list(a.feature_names)} vs {feature_names}")
    if attention == pb.ATTENTION_PER_HEAD:
        want_tf, want_ft = g.text_to_features, g.features_to_text
        shape_tf, shape_ft = [heads, L, F], [heads, F, L]
    else:
        want_tf, want_ft = harness.head_mean(g.text_to_features), harness.head_mean(g.features_to_text)
        shape_tf, shape_ft = [L, F], [F, L]
    if harness.shape_of(g.text_to_features) != [heads, L, F]:
        errs.append(f"{tag}: golden text_to_features shape {harness.shape_of(g.text_to_features)}"
                    f" is not {[heads, L, F]} (bundle problem)")
    if list(a.text_to_features_shape) != shape_tf:
        errs.append(f"{tag}: text_to_features_shape {list(a.text_to_features_shape)} != {shape_tf}")
    if list(a.features_to_text_shape) != shape_ft:
        errs.append(f"{tag}: features_to_text_shape {list(a.features_to_text_shape)} != {shape_ft}")
    for name, got, want in (("text_to_features", a.text_to_features, want_tf),
                            ("features_to_text", a.features_to_text, want_ft)):
        flat = harness.flatten(want)
        d = harness.max_abs_diff(got, flat)
        if d > TOL:
            errs.append(f"{tag}: {name} differs from golden: {len(got)} vs {len(flat)} values, "
                        f"max diff {d:.2e}")
    return errs


def _assert_all(errs, n):
    assert not errs, f"{len(errs)} problems over {n} requests:\n" + "\n".join(errs[:30])


def _echo_errs(resp, req_id):
    errs = []
    if resp.request_id != req_id:
        errs.append(f"request_id {resp.request_id!r} != {req_id!r}")
    if resp.model != harness.MODEL_NAME:
        errs.append(f"{req_id}: model {resp.model!r} != {harness.MODEL_NAME!r}")
    if resp.model_version != harness.MODEL_VERSION:
        errs.append(f"{req_id}: model_version {resp.model_version!r} != {harness.MODEL_VERSION!r}")
    return errs


def test_golden_per_head(stubs, pb, stub, golden, model_config, feature_names):
    errs = []
    for g in golden:
        req = harness.request_from_golden(stubs, g, attention=pb.ATTENTION_PER_HEAD)
        resp = stub.Score(req, timeout=RPC_TIMEOUT_S)
        errs += _echo_errs(resp, g.request_id)
        errs += _check(resp, g, pb=pb, model_config=model_config, feature_names=feature_names,
                       attention=pb.ATTENTION_PER_HEAD)
        if len(g.tokens) < model_config.max_tokens and resp.truncated:
            errs.append(f"{g.request_id}: truncated although {len(g.tokens)} tokens")
    harness.observe("golden_requests", len(golden))
    _assert_all(errs, len(golden))


@pytest.mark.parametrize("mode", ["ATTENTION_MEAN", "ATTENTION_NONE"])
def test_golden_other_attention_modes(stubs, pb, stub, golden, model_config,
                                      feature_names, mode):
    attention = getattr(pb, mode)
    errs = []
    for g in golden:
        req = harness.request_from_golden(stubs, g, attention=attention)
        resp = stub.Score(req, timeout=RPC_TIMEOUT_S)
        errs += _check(resp, g, pb=pb, model_config=model_config, feature_names=feature_names,
                       attention=attention)
    _assert_all(errs, len(golden))


def test_golden_by_token_ids_and_feature_vector(stubs, pb, stub, golden, model_config,
                                                feature_names):
    errs = []
    for g in golden:
        req = harness.request_from_golden(stubs, g, by_ids=True, attention=pb.ATTENTION_PER_HEAD)
        resp = stub.Score(req, timeout=RPC_TIMEOUT_S)
        errs += _echo_errs(resp, g.request_id)
        errs += _check(resp, g, pb=pb, model_config=model_config, feature_names=feature_names,
                       attention=pb.ATTENTION_PER_HEAD, what="[ids] ")
        if resp.truncated:
            errs.append(f"[ids] {g.request_id}: truncated set for pre-tokenized input")
    _assert_all(errs, len(golden))


def test_golden_feature_vector_matches_features_map(golden, feature_names):
    """Sanity of the bundle itself: feature_vector is features in schema order."""
    for g in golden:
        assert sorted(g.features) == sorted(feature_names), g.request_id
        assert harness.max_abs_diff([g.features[n] for n in feature_names],
                                    g.feature_vector) < 1e-6, g.request_id


def test_explicit_model_and_version(stubs, pb, stub, golden, model_config, feature_names):
    g = golden[0]
    req = harness.request_from_golden(stubs, g, model=harness.MODEL_NAME,
                                      model_version=harness.MODEL_VERSION,
                                      request_id="explicit-1")
    resp = stub.Score(req, timeout=RPC_TIMEOUT_S)
    errs = _echo_errs(resp, "explicit-1")
    errs += _check(resp, g, pb=pb, model_config=model_config, feature_names=feature_names,
                   attention=pb.ATTENTION_NONE)
    _assert_all(errs, 1)


def test_golden_concurrent_batched(stubs, pb, stub, golden, model_config, feature_names):
    """16 client threads at once, so the server forms batches > 1."""
    rounds = max(1, -(-256 // len(golden)))  # at least 256 requests in all
    jobs = []
    for r in range(rounds):
        for i, g in enumerate(golden):
            # Alternate the input forms and attention modes inside the batches.
            attention = (pb.ATTENTION_NONE, pb.ATTENTION_MEAN, pb.ATTENTION_PER_HEAD)[(r + i) % 3]
            jobs.append((f"c-{r}-{i}", g, (r + i) % 2 == 1, attention))

    def call(job):
        rid, g, by_ids, attention = job
        req = harness.request_from_golden(stubs, g, by_ids=by_ids, attention=attention,
                                          request_id=rid)
        return job, stub.Score(req, timeout=60)

    with ThreadPoolExecutor(max_workers=16) as ex:
        results = list(ex.map(call, jobs))

    errs, batch_sizes = [], []
    for (rid, g, by_ids, attention), resp in results:
        errs += _echo_errs(resp, rid)
        errs += _check(resp, g, pb=pb, model_config=model_config, feature_names=feature_names,
                       attention=attention, what=f"[{rid}] ")
        t = resp.timing
        batch_sizes.append(t.batch_size)
        if t.batch_size < 1:
            errs.append(f"{rid}: timing.batch_size {t.batch_size} < 1")
        if t.queue_us < 0:
            errs.append(f"{rid}: timing.queue_us {t.queue_us} < 0")
        if t.compute_us <= 0:
            errs.append(f"{rid}: timing.compute_us {t.compute_us} <= 0")
        if t.total_us < t.queue_us:
            errs.append(f"{rid}: timing.total_us {t.total_us} < queue_us {t.queue_us}")
    harness.observe("concurrent_requests", len(jobs))
    harness.observe("concurrent_max_batch_size", max(batch_sizes))
    harness.observe("concurrent_mean_batch_size", round(sum(batch_sizes) / len(batch_sizes), 2))
    _assert_all(errs, len(jobs))
    max_bs = model_config.batching.max_batch_size or 64
    assert max(batch_sizes) <= max_bs, f"batch of {max(batch_sizes)} > max_batch_size {max_bs}"


def test_single_request_timing(stubs, pb, stub, golden):
    resp = stub.Score(harness.request_from_golden(stubs, golden[0]), timeout=RPC_TIMEOUT_S)
    t = resp.timing
    assert t.batch_size >= 1, t
    assert t.queue_us >= 0, t
    assert t.compute_us > 0, t
    assert t.total_us >= t.compute_us, t
