"""Bad input: the right status, a message naming the field, and the server goes on."""
import math

import grpc
import pytest

import harness

TOL = 1e-4
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


class Ctx:
    def __init__(self, pb, stubs, golden, cfg):
        # A golden request with real text (some golden texts are empty or long).
        self.g = next((g for g in golden if 4 <= len(g.tokens) < cfg.max_tokens), golden[0])
        self.pb, self.stubs, self.cfg = pb, stubs, cfg
        self.names = [f.name for f in cfg.features]
        self.required = [f.name for f in cfg.features if not f.allow_missing]
        self.optional = [f for f in cfg.features if f.allow_missing]

    def good(self, **kw):
        return harness.request_from_golden(self.stubs, self.g, **kw)

    def ids(self, **kw):
        return harness.request_from_golden(self.stubs, self.g, by_ids=True, **kw)


@pytest.fixture(scope="module")
def ctx(pb, stubs, golden, model_config):
    return Ctx(pb, stubs, golden, model_config)


def _assert_still_serving(stub, c):
    resp = stub.Score(c.good(request_id="after-error"), timeout=30)
    assert resp.request_id == "after-error"
    assert harness.max_abs_diff(resp.probabilities, c.g.probabilities) <= TOL


def _no_text(c):
    r = c.good()
    r.ClearField("text")
    return r


def _text_and_ids(c):
    r = c.good()
    r.token_ids.extend(c.g.token_ids)
    return r


def _ids(c, ids):
    r = c.ids()
    del r.token_ids[:]
    r.token_ids.extend(ids)
    return r


def _no_features(c):
    r = c.good()
    r.ClearField("features")
    return r


def _features_and_vector(c):
    r = c.good()
    r.feature_vector.extend(c.g.feature_vector)
    return r


def _vector_len(c, n):
    r = c.ids()
    del r.feature_vector[:]
    r.feature_vector.extend((list(c.g.feature_vector) * 2)[:n])
    return r


def _bogus_feature(c):
    r = c.good()
    r.features["bogus"] = 1.0
    return r


def _missing_required(c):
    r = c.good()
    del r.features[c.required[0]]
    return r


def _feature_value(c, value):
    r = c.good()
    r.features[c.names[0]] = value
    return r


def _vector_value(c, value):
    r = c.ids()
    r.feature_vector[0] = value
    return r


# (id, builder, status, substrings: the message must contain one of them)
CASES = [
    ("unknown_model", lambda c: c.good(model="nope"), NOT_FOUND, lambda c: ["nope"]),
    ("unknown_version", lambda c: c.good(model_version="7"), NOT_FOUND, lambda c: ["7"]),
    ("unknown_version_explicit_model",
     lambda c: c.good(model=harness.MODEL_NAME, model_version="7"), NOT_FOUND, lambda c: ["7"]),
    ("no_text_no_token_ids", _no_text, INVALID, lambda c: ["text"]),
    ("text_and_token_ids", _text_and_ids, INVALID, lambda c: ["token_ids"]),
    ("token_id_too_large", lambda c: _ids(c, [c.g.token_ids[0], 10**6, c.g.token_ids[-1]]),
     INVALID, lambda c: ["token_ids"]),
    ("token_id_negative", lambda c: _ids(c, [c.g.token_ids[0], -1, c.g.token_ids[-1]]),
     INVALID, lambda c: ["token_ids"]),
    ("token_ids_too_long",
     lambda c: _ids(c, [c.g.token_ids[0]] + [c.g.token_ids[1]] * (c.cfg.max_tokens - 1)
                    + [c.g.token_ids[-1]]),
     INVALID, lambda c: ["token_ids"]),
    ("no_features", _no_features, INVALID, lambda c: ["feature"]),
    ("features_and_feature_vector", _features_and_vector, INVALID, lambda c: ["feature"]),
    ("feature_vector_short", lambda c: _vector_len(c, len(c.names) - 1), INVALID,
     lambda c: ["feature_vector"]),
    ("feature_vector_long", lambda c: _vector_len(c, len(c.names) + 1), INVALID,
     lambda c: ["feature_vector"]),
    ("unknown_feature", _bogus_feature, INVALID, lambda c: ["bogus"]),
    ("missing_required_feature", _missing_required, INVALID, lambda c: [c.required[0]]),
    ("nan_feature", lambda c: _feature_value(c, math.nan), INVALID, lambda c: [c.names[0]]),
    ("inf_feature", lambda c: _feature_value(c, math.inf), INVALID, lambda c: [c.names[0]]),
    ("neg_inf_feature", lambda c: _feature_value(c, -math.inf), INVALID, lambda c: [c.names[0]]),
    ("nan_feature_vector", lambda c: _vector_value(c, math.nan), INVALID,
     lambda c: ["feature_vector", c.names[0]]),
    ("inf_feature_vector", lambda c: _vector_value(c, math.inf), INVALID,
     lambda c: ["feature_vector", c.names[0]]),
]


@pytest.mark.parametrize("name,build,code,needles", CASES, ids=[c[0] for c in CASES])
def test_bad_request(stub, ctx, name, build, code, needles):
    req = build(ctx)
    with pytest.raises(grpc.RpcError) as ei:
        resp = stub.Score(req, timeout=30)
        pytest.fail(f"{name}: expected {code.name}, got OK: {resp}")  # pragma: no cover
    err = ei.value
    want = needles(ctx)
    assert err.code() == code, f"{name}: expected {code.name}, got {err.code().name}: {err.details()}"
    assert any(w.lower() in (err.details() or "").lower() for w in want), \
        f"{name}: message {err.details()!r} names none of {want}"
    harness.observe(f"message[{name}]", err.details())
    _assert_still_serving(stub, ctx)


def test_missing_optional_feature_uses_default(stub, ctx):
    assert ctx.optional, "config.pbtxt has no allow_missing feature"
    for f in ctx.optional:
        omitted = ctx.good(request_id="omit")
        del omitted.features[f.name]
        explicit = ctx.good(request_id="explicit")
        explicit.features[f.name] = f.default_value
        a = stub.Score(omitted, timeout=30)
        b = stub.Score(explicit, timeout=30)
        assert harness.max_abs_diff(a.probabilities, b.probabilities) <= 1e-6, \
            f"omitting {f.name} != sending default {f.default_value}: " \
            f"{list(a.probabilities)} vs {list(b.probabilities)}"
    # All optional features omitted at once.
    r = ctx.good(request_id="omit-all")
    for f in ctx.optional:
        del r.features[f.name]
    e = ctx.good(request_id="explicit-all")
    for f in ctx.optional:
        e.features[f.name] = f.default_value
    assert harness.max_abs_diff(stub.Score(r, timeout=30).probabilities,
                                stub.Score(e, timeout=30).probabilities) <= 1e-6


def test_empty_text(pb, stub, ctx):
    resp = stub.Score(ctx.good(text="", attention=pb.ATTENTION_MEAN), timeout=30)
    assert list(resp.attention.tokens) == ["[CLS]", "[SEP]"]
    F = len(ctx.names)
    assert list(resp.attention.text_to_features_shape) == [2, F]
    assert list(resp.attention.features_to_text_shape) == [F, 2]
    assert len(resp.probabilities) == len(ctx.cfg.classes)
    assert abs(sum(resp.probabilities) - 1.0) < 1e-4
    assert not resp.truncated


def test_long_text_truncated(pb, stub, ctx):
    text = " ".join(["payment"] * 400)
    req = ctx.good(text=text, attention=pb.ATTENTION_MEAN, request_id="long")
    if ctx.cfg.tokenizer.truncation == 1:  # TRUNCATION_REJECT
        with pytest.raises(grpc.RpcError) as ei:
            stub.Score(req, timeout=30)
        assert ei.value.code() == INVALID
        return
    resp = stub.Score(req, timeout=30)
    M = ctx.cfg.max_tokens
    assert resp.truncated is True
    tokens = list(resp.attention.tokens)
    assert len(tokens) == M, len(tokens)
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]", (tokens[:3], tokens[-3:])
    assert list(resp.attention.text_to_features_shape) == [M, len(ctx.names)]
    # Whatever follows the cut does not matter.
    longer = stub.Score(ctx.good(text=text + " refund urgent" * 300, request_id="long2"),
                        timeout=30)
    assert longer.truncated is True
    assert harness.max_abs_diff(resp.probabilities, longer.probabilities) <= 1e-6


def test_priority_one(stub, ctx):
    resp = stub.Score(ctx.good(priority=1, request_id="prio"), timeout=30)
    assert resp.request_id == "prio"
    assert harness.max_abs_diff(resp.probabilities, ctx.g.probabilities) <= TOL


def test_invalid_utf8_text(stub, channel, ctx):
    placeholder = "PLACEHOLDER-TEXT"
    req = ctx.good(text=placeholder, request_id="utf8")
    raw = req.SerializeToString()
    assert raw.count(placeholder.encode()) == 1
    bad = b"\xff\xfe\xc3\x28" + b"X" * (len(placeholder) - 4)  # same length, not UTF-8
    raw = raw.replace(placeholder.encode(), bad)
    call = channel.unary_unary("/fusion.v1.ScoringService/Score",
                               request_serializer=lambda b: b,
                               response_deserializer=ctx.pb.ScoreResponse.FromString)
    try:
        resp = call(raw, timeout=30)
        code, details = grpc.StatusCode.OK, f"OK, tokens={list(resp.attention.tokens)}"
    except grpc.RpcError as e:
        code, details = e.code(), e.details()
    harness.observe("invalid_utf8_status", f"{code.name}: {details}")
    assert code == grpc.StatusCode.INVALID_ARGUMENT, f"{code.name}: {details}"
    assert "UTF-8" in details and "text" in details
    _assert_still_serving(stub, ctx)


def test_invalid_utf8_text_inside_a_stream(stub, channel, ctx):
    """The bad request gets an error response with its id; the others and
    the stream go on."""
    placeholder = "PLACEHOLDER-TEXT"
    bad = ctx.good(text=placeholder, request_id="s-bad").SerializeToString()
    bad = bad.replace(placeholder.encode(),
                      b"\xff\xfe\xc3\x28" + b"X" * (len(placeholder) - 4))
    good = [ctx.good(request_id=f"s-good-{i}").SerializeToString() for i in range(3)]
    call = channel.stream_stream("/fusion.v1.ScoringService/ScoreStream",
                                 request_serializer=lambda b: b,
                                 response_deserializer=ctx.pb.ScoreResponse.FromString)
    responses = {r.request_id: r for r in call(iter([good[0], bad] + good[1:]),
                                               timeout=30)}
    assert sorted(responses) == ["s-bad", "s-good-0", "s-good-1", "s-good-2"]
    assert responses["s-bad"].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "UTF-8" in responses["s-bad"].error.message
    for i in range(3):
        assert not responses[f"s-good-{i}"].HasField("error")


def test_deadline_exceeded(stub, ctx):
    # gRPC keeps deadlines in whole milliseconds on both sides, so a request
    # answered within 1 ms could still arrive. Tokenizing 64,000 bytes of
    # combining marks (under the 64 KiB --max_text_bytes) takes far longer.
    request = ctx.good(request_id="deadline")
    request.text = "a" + "\u0301\u0316" * 16_000
    with pytest.raises(grpc.RpcError) as ei:
        stub.Score(request, timeout=1e-6)
    assert ei.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, ei.value
    _assert_still_serving(stub, ctx)


def test_short_deadlines_under_load(stub, ctx):
    """Requests with deadlines around the compute time: each either succeeds
    with the right answer or fails DEADLINE_EXCEEDED; nothing else."""
    from concurrent.futures import ThreadPoolExecutor

    def call(i):
        try:
            r = stub.Score(ctx.good(request_id=f"dl-{i}"), timeout=0.002 * (1 + i % 10))
            return "ok" if harness.max_abs_diff(r.probabilities, ctx.g.probabilities) <= TOL \
                else f"wrong {list(r.probabilities)}"
        except grpc.RpcError as e:
            return e.code().name

    with ThreadPoolExecutor(max_workers=16) as ex:
        outcomes = list(ex.map(call, range(200)))
    counts = {o: outcomes.count(o) for o in set(outcomes)}
    harness.observe("short_deadline_outcomes", counts)
    assert set(counts) <= {"ok", "DEADLINE_EXCEEDED"}, counts
    _assert_still_serving(stub, ctx)
