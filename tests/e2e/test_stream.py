"""ScoreStream: many requests on one stream, answers in any order."""
import grpc

import harness

TOL = 1e-4
N_STREAM = 500


def _stream(stub, requests, timeout=90):
    call = stub.ScoreStream(iter(requests), timeout=timeout)
    responses = list(call)  # raises grpc.RpcError if the stream ends non-OK
    return call, responses


def test_stream_500(stubs, pb, stub, golden):
    reqs, want = [], {}
    for i in range(N_STREAM):
        g = golden[i % len(golden)]
        rid = f"s-{i}"
        reqs.append(harness.request_from_golden(stubs, g, by_ids=(i % 3 == 2), request_id=rid))
        want[rid] = g
    call, responses = _stream(stub, reqs)
    assert call.code() == grpc.StatusCode.OK, call.details()
    assert len(responses) == N_STREAM, f"{len(responses)} responses for {N_STREAM} requests"
    ids = [r.request_id for r in responses]
    assert set(ids) == set(want), (f"missing {sorted(set(want) - set(ids))[:10]}, "
                                   f"unexpected {sorted(set(ids) - set(want))[:10]}")
    assert len(set(ids)) == N_STREAM, "duplicate request_ids in the responses"
    errs = []
    for r in responses:
        g = want[r.request_id]
        if r.HasField("error"):
            errs.append(f"{r.request_id}: error {r.error.code}: {r.error.message}")
            continue
        d = harness.max_abs_diff(r.probabilities, g.probabilities)
        if d > TOL:
            errs.append(f"{r.request_id} ({g.request_id}): {list(r.probabilities)} vs "
                        f"{g.probabilities} (max diff {d:.2e})")
        if r.model != harness.MODEL_NAME or r.model_version != harness.MODEL_VERSION:
            errs.append(f"{r.request_id}: model/version {r.model!r}/{r.model_version!r}")
        if r.HasField("attention"):
            errs.append(f"{r.request_id}: attention set for ATTENTION_NONE")
    assert not errs, "\n".join(errs[:30])
    in_order = ids == [f"s-{i}" for i in range(N_STREAM)]
    harness.observe("stream_500_in_order", in_order)
    harness.observe("stream_500_max_batch_size", max(r.timing.batch_size for r in responses))


def test_stream_with_attention(stubs, pb, stub, golden):
    reqs = [harness.request_from_golden(stubs, g, attention=pb.ATTENTION_MEAN,
                                        request_id=f"sa-{i}") for i, g in enumerate(golden)]
    call, responses = _stream(stub, reqs)
    by_id = {r.request_id: r for r in responses}
    assert len(responses) == len(reqs) and len(by_id) == len(reqs)
    for i, g in enumerate(golden):
        r = by_id[f"sa-{i}"]
        assert not r.HasField("error"), r.error
        assert list(r.attention.tokens) == g.tokens
        assert harness.max_abs_diff(r.attention.text_to_features,
                                    harness.flatten(harness.head_mean(g.text_to_features))) <= TOL


def test_stream_bad_request_in_the_middle(stubs, pb, stub, golden):
    reqs = []
    for i in range(20):
        reqs.append(harness.request_from_golden(stubs, golden[i % len(golden)],
                                                request_id=f"b-{i}"))
    bad = pb.ScoreRequest(request_id="b-bad", token_ids=[1, 10**6, 2])
    bad.feature_vector.extend(golden[0].feature_vector)
    reqs.insert(10, bad)
    nope = harness.request_from_golden(stubs, golden[0], request_id="b-nope", model="nope")
    reqs.insert(15, nope)
    call, responses = _stream(stub, reqs)
    assert call.code() == grpc.StatusCode.OK, call.details()
    by_id = {r.request_id: r for r in responses}
    assert len(responses) == len(reqs), f"{len(responses)} responses for {len(reqs)} requests"
    assert set(by_id) == {r.request_id for r in reqs}

    r = by_id["b-bad"]
    assert r.HasField("error"), f"bad request answered without error: {r}"
    assert r.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0], r.error
    assert "token_ids" in r.error.message.lower(), r.error.message
    assert len(r.probabilities) == 0, "a failed request should carry no probabilities"

    r = by_id["b-nope"]
    assert r.HasField("error"), f"unknown model answered without error: {r}"
    assert r.error.code == grpc.StatusCode.NOT_FOUND.value[0], r.error
    assert "nope" in r.error.message, r.error.message
    harness.observe("stream_error_messages", {"b-bad": by_id["b-bad"].error.message,
                                              "b-nope": by_id["b-nope"].error.message})

    for i in range(20):
        r = by_id[f"b-{i}"]
        g = golden[i % len(golden)]
        assert not r.HasField("error"), f"b-{i}: {r.error}"
        assert harness.max_abs_diff(r.probabilities, g.probabilities) <= TOL, f"b-{i}"


def test_empty_stream(stub):
    call, responses = _stream(stub, [])
    assert responses == []
    assert call.code() == grpc.StatusCode.OK
