"""The Open Inference Protocol (KServe v2 / Triton) over gRPC:
inference.GRPCInferenceService on the native API's port, against a real
server, with answers compared to the native API's (fusion.v1 Score) for the
same inputs. The contract: server/api/v2/inference_core.h and
proto/inference/grpc_service.proto.

Run: FUSION_SERVER_BIN=$PWD/build/server/fusion-server \
     /usr/bin/python3 -m pytest tests/integration/test_v2_grpc.py -q
"""
import math
import queue
import threading
import time

import grpc
import pytest

import harness
import v2_support as vs
from v2_support import (  # noqa: F401  (fixtures are used by name)
    channel, feature_names, model_config, native, native_stub, server, v2, v2_observations,
    v2_stub)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND


def _infer(v2, v2_stub, req, raw=False, timeout=vs.RPC_TIMEOUT_S):
    return v2_stub.ModelInfer(vs.to_grpc(v2, req, raw), timeout=timeout)


def _native_metadata(stubs, native_stub):
    return native_stub.GetModelMetadata(stubs.scoring_pb2.GetModelMetadataRequest(),
                                        timeout=vs.RPC_TIMEOUT_S)


def _assert_still_serving(v2, v2_stub, native, golden):
    g = golden[2]
    outs, _ = vs.outputs_of_grpc(_infer(v2, v2_stub, vs.request_from_golden([g], id="after")))
    vs.assert_no_problems(vs.check_outputs(outs, [g], native), "after an error: ")


# --- health and metadata --------------------------------------------------------

def test_server_live_and_ready(v2, v2_stub):
    assert v2_stub.ServerLive(v2.pb2.ServerLiveRequest(), timeout=30).live is True
    assert v2_stub.ServerReady(v2.pb2.ServerReadyRequest(), timeout=30).ready is True


@pytest.mark.parametrize("name,version,ready", [
    (harness.MODEL_NAME, "", True),
    (harness.MODEL_NAME, harness.MODEL_VERSION, True),
    (harness.MODEL_NAME, "7", False),
    ("nope", "", False),
    ("nope", "1", False),
])
def test_model_ready(v2, v2_stub, name, version, ready):
    """inference_core.h: ModelReady is false (not an error) for an unknown
    model or version."""
    resp = v2_stub.ModelReady(v2.pb2.ModelReadyRequest(name=name, version=version), timeout=30)
    assert resp.ready is ready, f"ModelReady({name!r}, {version!r}) = {resp.ready}"


# Triton's extensions that need RPCs or features this server does not have
# (grpc_service.proto declares no RepositoryIndex, shared memory, trace or
# logging RPCs; there are no sequence models or classification outputs).
UNSUPPORTED_EXTENSIONS = {"model_repository", "model_repository(unload_dependents)",
                          "system_shared_memory", "cuda_shared_memory", "trace", "logging",
                          "sequence", "classification"}


def test_server_metadata_extensions_are_truthful(v2, v2_stub):
    md = v2_stub.ServerMetadata(v2.pb2.ServerMetadataRequest(), timeout=30)
    exts = list(md.extensions)
    harness.observe("v2_server_metadata", f"{md.name} {md.version} {exts}")
    assert md.name and md.version, md
    assert exts, "ServerMetadata lists no extensions"
    assert len(set(exts)) == len(exts), f"duplicates in {exts}"
    claimed = set(exts) & UNSUPPORTED_EXTENSIONS
    assert not claimed, f"claims extensions it has no RPC or feature for: {sorted(claimed)}"
    # Those it claims and this API can check here work.
    if "model_configuration" in exts:
        v2_stub.ModelConfig(v2.pb2.ModelConfigRequest(name=harness.MODEL_NAME), timeout=30)
    if "statistics" in exts:
        v2_stub.ModelStatistics(v2.pb2.ModelStatisticsRequest(name=harness.MODEL_NAME),
                                timeout=30)
    # And what it implements (ModelConfig, ModelStatistics answer) is listed.
    assert "model_configuration" in exts, exts
    assert "statistics" in exts, exts


def _tensors(md_list):
    return {t.name: (t.datatype, list(t.shape)) for t in md_list}


def test_model_metadata(v2, v2_stub, stubs, native_stub, model_config):
    F, C = len(model_config.features), len(model_config.classes)
    nmd = _native_metadata(stubs, native_stub)
    for version in ("", harness.MODEL_VERSION):
        md = v2_stub.ModelMetadata(v2.pb2.ModelMetadataRequest(name=harness.MODEL_NAME,
                                                               version=version), timeout=30)
        assert md.name == harness.MODEL_NAME
        assert list(md.versions) == list(nmd.versions), (list(md.versions), list(nmd.versions))
        assert md.platform in (nmd.platform, "pytorch_libtorch"), md.platform
        ins, outs = _tensors(md.inputs), _tensors(md.outputs)
        harness.observe("v2_model_metadata", f"platform={md.platform} inputs={ins} "
                                             f"outputs={outs}")
        assert set(ins) == {vs.TEXT, vs.INPUT_IDS, vs.ATTENTION_MASK, vs.FEATURES}, ins
        assert ins[vs.TEXT][0] == "BYTES" and ins[vs.TEXT][1][0] == -1
        assert ins[vs.TEXT][1] in ([-1], [-1, 1]), ins[vs.TEXT]
        assert ins[vs.INPUT_IDS][0] in ("INT64", "INT32")
        assert ins[vs.INPUT_IDS][1] == [-1, -1], ins[vs.INPUT_IDS]
        assert ins[vs.ATTENTION_MASK] == ins[vs.INPUT_IDS], ins
        assert ins[vs.FEATURES] == ("FP32", [-1, F]), ins[vs.FEATURES]
        assert set(outs) == set(vs.ATTENTION_OUTPUTS), outs
        assert outs[vs.PROBABILITIES] == ("FP32", [-1, C])
        assert outs[vs.SCORE] == ("FP32", [-1])
        assert outs[vs.TOKEN_COUNT] == ("INT32", [-1])
        for name, want_f_last in ((vs.T2F, True), (vs.F2T, False)):
            dt, shape = outs[name]
            assert dt == "FP32" and shape[0] == -1 and -1 in shape[1:], (name, outs[name])
            assert (shape[-1] == F) if want_f_last else (shape[-2] == F), (name, shape)


@pytest.mark.parametrize("rpc", ["ModelMetadata", "ModelConfig"])
@pytest.mark.parametrize("name,version", [("nope", ""), (harness.MODEL_NAME, "7")])
def test_metadata_unknown_model_or_version_not_found(v2, v2_stub, rpc, name, version):
    req = getattr(v2.pb2, rpc + "Request")(name=name, version=version)
    with pytest.raises(grpc.RpcError) as ei:
        getattr(v2_stub, rpc)(req, timeout=30)
    assert ei.value.code() == NOT_FOUND, f"{ei.value.code()}: {ei.value.details()}"
    assert (version or name) in ei.value.details(), ei.value.details()


def test_model_config(v2, v2_stub, stubs, native_stub, model_config):
    nmd = _native_metadata(stubs, native_stub)
    cfg = v2_stub.ModelConfig(v2.pb2.ModelConfigRequest(name=harness.MODEL_NAME),
                              timeout=30).config
    mc = v2.config_pb2
    F, C = len(model_config.features), len(model_config.classes)
    harness.observe("v2_model_config", str(cfg).replace("\n", " ")[:600])
    assert cfg.name == harness.MODEL_NAME
    assert cfg.max_batch_size == nmd.batching.max_batch_size, \
        (cfg.max_batch_size, nmd.batching.max_batch_size)
    ins = {i.name: i for i in cfg.input}
    outs = {o.name: o for o in cfg.output}
    assert set(ins) == {vs.TEXT, vs.INPUT_IDS, vs.ATTENTION_MASK, vs.FEATURES}, list(ins)
    # max_batch_size > 0: dims leave the batch dimension out (Triton).
    assert ins[vs.FEATURES].data_type == mc.TYPE_FP32
    assert list(ins[vs.FEATURES].dims) == [F]
    assert ins[vs.FEATURES].optional is False
    assert ins[vs.TEXT].data_type == mc.TYPE_STRING
    assert ins[vs.INPUT_IDS].data_type in (mc.TYPE_INT64, mc.TYPE_INT32)
    assert list(ins[vs.INPUT_IDS].dims) == [-1]
    # TEXT or INPUT_IDS: each is optional on its own; the mask always.
    assert ins[vs.TEXT].optional and ins[vs.INPUT_IDS].optional and \
        ins[vs.ATTENTION_MASK].optional
    assert set(outs) == set(vs.ATTENTION_OUTPUTS), list(outs)
    assert outs[vs.PROBABILITIES].data_type == mc.TYPE_FP32
    assert list(outs[vs.PROBABILITIES].dims) == [C]
    assert outs[vs.TOKEN_COUNT].data_type == mc.TYPE_INT32
    assert cfg.WhichOneof("scheduling_choice") == "dynamic_batching", cfg
    db = cfg.dynamic_batching
    assert db.max_queue_delay_microseconds == nmd.batching.max_queue_delay_us
    assert list(db.preferred_batch_size) == list(nmd.batching.preferred_batch_sizes)
    assert db.priority_levels == nmd.batching.priority_levels
    assert sum(g.count for g in cfg.instance_group) == nmd.batching.instance_count, \
        (list(cfg.instance_group), nmd.batching.instance_count)


# --- inference ---------------------------------------------------------------------

INPUT_FORMS = {
    # name: request_from_golden keyword arguments
    "text": {},
    "text_2d": {"text_2d": True},
    "ids_int64": {"by_ids": True},
    "ids_int32": {"by_ids": True, "ids_type": "INT32"},
    "ids_int64_mask": {"by_ids": True, "mask": True},
    "ids_int32_mask": {"by_ids": True, "ids_type": "INT32", "mask": True},
}


@pytest.mark.parametrize("raw", [False, True], ids=["typed", "raw"])
@pytest.mark.parametrize("form", list(INPUT_FORMS))
@pytest.mark.parametrize("batch", [1, 16])
def test_infer_matches_native(v2, v2_stub, native, golden, raw, form, batch):
    """Scores of every input form, typed and raw, equal the native API's for
    the same inputs within 1e-5 (and golden within 1e-4). Rows of one id
    tensor must share L, so without a mask B=16 takes requests of one length."""
    kw = INPUT_FORMS[form]
    if batch == 1:
        goldens = [golden[3]]
    elif kw.get("by_ids") and not kw.get("mask"):
        by_len = {}
        for g in golden:
            by_len.setdefault(len(g.token_ids), []).append(g)
        same = max(by_len.values(), key=len)
        goldens = (same * 16)[:16]
    else:
        goldens = golden[:16]  # lengths 2..128: padding inside the batch
    req = vs.request_from_golden(goldens, id=f"{form}-{batch}", **kw)
    resp = _infer(v2, v2_stub, req, raw)
    outs, got_raw = vs.outputs_of_grpc(resp)
    assert got_raw is raw, f"raw inputs {raw} but raw outputs {got_raw}"
    assert resp.id == f"{form}-{batch}"
    assert resp.model_name == harness.MODEL_NAME
    assert resp.model_version == harness.MODEL_VERSION
    vs.assert_no_problems(vs.check_outputs(outs, goldens, native), f"[{form} B={batch}] ")


@pytest.mark.parametrize("raw", [False, True], ids=["typed", "raw"])
@pytest.mark.parametrize("attention", ["mean", "per_head"])
@pytest.mark.parametrize("batch", [1, 16])
def test_infer_attention_matches_native(v2, v2_stub, native, golden, raw, attention, batch):
    """Attention outputs, mean and per head, padded to the longest row, equal
    the native API's ATTENTION_MEAN / ATTENTION_PER_HEAD for each row."""
    goldens = [golden[3]] if batch == 1 else golden[:16]
    req = vs.request_from_golden(goldens, outputs=vs.ATTENTION_OUTPUTS,
                                 per_head=attention == "per_head", id="att")
    outs, _ = vs.outputs_of_grpc(_infer(v2, v2_stub, req, raw))
    vs.assert_no_problems(vs.check_outputs(outs, goldens, native, names=vs.ATTENTION_OUTPUTS,
                                           attention=attention),
                          f"[{attention} B={batch}] ")


def test_attention_by_ids_with_mask(v2, v2_stub, native, golden):
    goldens = golden[:16]
    req = vs.request_from_golden(goldens, by_ids=True, mask=True,
                                 outputs=vs.ATTENTION_OUTPUTS, per_head=True)
    outs, _ = vs.outputs_of_grpc(_infer(v2, v2_stub, req, raw=True))
    vs.assert_no_problems(vs.check_outputs(outs, goldens, native, names=vs.ATTENTION_OUTPUTS,
                                           attention="per_head"))


@pytest.mark.parametrize("ids_type", ["INT64", "INT32"])
def test_mask_zeroing_trailing_padding_gives_the_unpadded_score(v2, v2_stub, golden,
                                                                model_config, ids_type):
    g = vs.text_goldens(golden, model_config)[0]
    L = len(g.token_ids)
    plain = vs.V2Request(inputs=vs.ids_tensors([g.token_ids], ids_type) +
                         [vs.features_tensor([g.feature_vector])],
                         outputs=[vs.SCORE, vs.PROBABILITIES, vs.TOKEN_COUNT, vs.T2F])
    padded = vs.V2Request(inputs=vs.ids_tensors([g.token_ids], ids_type, mask=True,
                                                pad_to=L + 7) +
                          [vs.features_tensor([g.feature_vector])],
                          outputs=list(plain.outputs))
    assert padded.input(vs.INPUT_IDS).shape == [1, L + 7]
    a, _ = vs.outputs_of_grpc(_infer(v2, v2_stub, plain))
    b, _ = vs.outputs_of_grpc(_infer(v2, v2_stub, padded))
    assert abs(a[vs.SCORE].data[0] - b[vs.SCORE].data[0]) <= vs.TOL_NATIVE, \
        (a[vs.SCORE].data, b[vs.SCORE].data)
    assert harness.max_abs_diff(a[vs.PROBABILITIES].data, b[vs.PROBABILITIES].data) \
        <= vs.TOL_NATIVE
    assert a[vs.TOKEN_COUNT].data == [L] and b[vs.TOKEN_COUNT].data == [L], \
        (a[vs.TOKEN_COUNT].data, b[vs.TOKEN_COUNT].data)
    assert b[vs.T2F].shape == [1, L, len(model_config.features)], b[vs.T2F].shape
    assert harness.max_abs_diff(a[vs.T2F].data, b[vs.T2F].data) <= vs.TOL_NATIVE
    # Without the mask the padding ids are tokens: the mask is what drops them.
    unmasked = vs.V2Request(inputs=[padded.input(vs.INPUT_IDS),
                                    vs.features_tensor([g.feature_vector])],
                            outputs=[vs.TOKEN_COUNT, vs.T2F])
    c, _ = vs.outputs_of_grpc(_infer(v2, v2_stub, unmasked))
    assert c[vs.TOKEN_COUNT].data == [L + 7], c[vs.TOKEN_COUNT].data


def test_mask_selects_ids_where_nonzero_anywhere(v2, v2_stub, native, golden, model_config):
    """inference_core.h: a row's ids are those where the mask is non-zero --
    a masked id in the middle is dropped too."""
    g = vs.text_goldens(golden, model_config)[0]
    ids = list(g.token_ids)
    ids_with_junk = ids[:2] + [17, 18] + ids[2:]
    mask = [1, 1, 0, 0] + [1] * (len(ids) - 2)
    req = vs.V2Request(inputs=[vs.Tensor(vs.INPUT_IDS, "INT64", [1, len(ids) + 2], ids_with_junk),
                               vs.Tensor(vs.ATTENTION_MASK, "INT64", [1, len(ids) + 2], mask),
                               vs.features_tensor([g.feature_vector])])
    outs, _ = vs.outputs_of_grpc(_infer(v2, v2_stub, req))
    vs.assert_no_problems(vs.check_outputs(outs, [g], native))


def test_outputs_named_are_the_ones_returned(v2, v2_stub, native, golden):
    g = golden[5]
    # inference_core.h: attention outputs come "with TOKEN_COUNT" (the
    # server adds it to an attention output and refuses it alone).
    for names in ([vs.SCORE], [vs.PROBABILITIES], [vs.F2T, vs.TOKEN_COUNT, vs.SCORE],
                  [vs.T2F]):
        req = vs.request_from_golden([g], outputs=names)
        resp = _infer(v2, v2_stub, req)
        want = set(names) | ({vs.TOKEN_COUNT} if {vs.T2F, vs.F2T} & set(names) else set())
        assert sorted(o.name for o in resp.outputs) == sorted(want), \
            f"asked {names}, got {[o.name for o in resp.outputs]}"
    # Nothing named: the default pair, no attention.
    outs, _ = vs.outputs_of_grpc(_infer(v2, v2_stub, vs.request_from_golden([g])))
    assert sorted(outs) == sorted([vs.PROBABILITIES, vs.SCORE]), sorted(outs)


def test_explicit_version_and_empty_id(v2, v2_stub, native, golden):
    g = golden[4]
    req = vs.request_from_golden([g], version=harness.MODEL_VERSION)
    resp = _infer(v2, v2_stub, req)
    assert resp.model_version == harness.MODEL_VERSION and resp.id == ""
    vs.assert_no_problems(vs.check_outputs(vs.outputs_of_grpc(resp)[0], [g], native))


@pytest.mark.parametrize("params", [
    {"priority": 1}, {"priority": 2}, {"priority": 0},
    {"timeout": 30_000_000}, {"priority": 2, "timeout": 60_000_000},
    {"some_unknown_parameter": "ignored"}, {"sequence_id": 0}])
def test_parameters_accepted(v2, v2_stub, native, golden, params):
    """priority (Triton 1..N = levels 0..N-1, 0 = default), timeout in µs,
    unknown parameters ignored (inference_core.h)."""
    goldens = golden[6:10]
    req = vs.request_from_golden(goldens, parameters=params)
    outs, _ = vs.outputs_of_grpc(_infer(v2, v2_stub, req))
    vs.assert_no_problems(vs.check_outputs(outs, goldens, native), f"{params}: ")


def test_priority_past_the_levels_observed(v2, v2_stub, golden, model_config):
    """Not asserted: inference_core.h does not say what priority > N does
    (Triton gives such a request the default level; the native API refuses a
    level >= priority_levels)."""
    req = vs.request_from_golden([golden[6]], parameters={"priority": 99})
    try:
        _infer(v2, v2_stub, req)
        harness.observe("v2_priority_99", "OK")
    except grpc.RpcError as e:
        harness.observe("v2_priority_99", f"{e.code().name}: {e.details()}")
        assert e.code() == INVALID, e


def test_concurrent_infers_all_correct(v2, v2_stub, native, golden):
    from concurrent.futures import ThreadPoolExecutor
    jobs = [(i, golden[(i * 7) % len(golden):][:1 + i % 4], i % 2 == 1) for i in range(48)]
    for _, gs, _ in jobs:
        for g in gs:
            native.get(g)

    def call(job):
        i, gs, raw = job
        resp = _infer(v2, v2_stub, vs.request_from_golden(gs, id=f"cc-{i}",
                                                          by_ids=i % 3 == 0, mask=True), raw)
        errs = [] if resp.id == f"cc-{i}" else [f"id {resp.id!r} != cc-{i}"]
        return errs + vs.check_outputs(vs.outputs_of_grpc(resp)[0], gs, native, tag=f"[cc-{i}] ")

    with ThreadPoolExecutor(max_workers=12) as ex:
        errs = [e for r in ex.map(call, jobs) for e in r]
    vs.assert_no_problems(errs)


# --- ModelStreamInfer ----------------------------------------------------------------

def _bad_shape(g):
    req = vs.request_from_golden([g])
    req.inputs[1] = vs.Tensor(vs.FEATURES, "FP32", [1, 15], g.feature_vector[:15])
    return req


def _bad_model(g):
    return vs.request_from_golden([g], model="nope")


def _bad_row(g):
    req = vs.request_from_golden([g, g, g])
    req.inputs[1].data[2 * 16] = math.nan
    return req


STREAM_BAD = [(_bad_shape, [vs.FEATURES]), (_bad_model, ["nope"]), (_bad_row, [vs.FEATURES])]


def test_stream_lockstep_good_bad_interleaved(v2, v2_stub, native, golden):
    """One request at a time on one stream, each answered before the next is
    sent: a bad request answers with error_message and the stream goes on."""
    q = queue.Queue()

    def gen():
        while True:
            item = q.get()
            if item is None:
                return
            yield item

    responses = v2_stub.ModelStreamInfer(gen(), timeout=180)
    errs = []
    try:
        for i in range(9):
            g = golden[10 + i]
            if i % 2 == 0:
                req = vs.request_from_golden([g], id=f"ls-good-{i}")
                q.put(vs.to_grpc(v2, req, raw=i % 4 == 0))
                r = next(responses)
                if r.error_message:
                    errs.append(f"ls-good-{i}: error {r.error_message}")
                    continue
                if r.infer_response.id != f"ls-good-{i}":
                    errs.append(f"ls-good-{i}: id {r.infer_response.id!r}")
                errs += vs.check_outputs(vs.outputs_of_grpc(r.infer_response)[0], [g], native,
                                         tag=f"[ls-good-{i}] ")
            else:
                build, needles = STREAM_BAD[(i // 2) % len(STREAM_BAD)]
                req = build(g)
                req.id = f"ls-bad-{i}"
                q.put(vs.to_grpc(v2, req))
                r = next(responses)
                if not r.error_message:
                    errs.append(f"ls-bad-{i}: no error_message")
                elif not vs.names_any(r.error_message, needles):
                    errs.append(f"ls-bad-{i}: error_message {r.error_message!r} names none "
                                f"of {needles}")
                if r.infer_response.id not in ("", f"ls-bad-{i}"):
                    errs.append(f"ls-bad-{i}: error response carries id "
                                f"{r.infer_response.id!r}")
                harness.observe(f"v2_stream_error[{build.__name__}]",
                                f"{r.error_message!r} id={r.infer_response.id!r}")
    finally:
        q.put(None)
    rest = list(responses)
    assert not rest, f"{len(rest)} responses after the last request"
    vs.assert_no_problems(errs)


def test_stream_burst_good_and_bad(v2, v2_stub, native, golden):
    """All requests sent at once, good and bad interleaved: one response
    each, errors for exactly the bad ones, the good ones correct."""
    reqs, goods, n_bad = [], {}, 0
    for i in range(24):
        g = golden[i % len(golden)]
        if i % 3 == 1:
            build, _ = STREAM_BAD[i % len(STREAM_BAD)]
            req = build(g)
            req.id = f"b-bad-{i}"
            n_bad += 1
        else:
            gs = [g, golden[(i + 1) % len(golden)]] if i % 2 else [g]
            req = vs.request_from_golden(gs, id=f"b-good-{i}", by_ids=i % 4 == 0,
                                         mask=True)
            goods[req.id] = gs
            for x in gs:
                native.get(x)
        reqs.append(vs.to_grpc(v2, req, raw=i % 5 == 0))
    responses = list(v2_stub.ModelStreamInfer(iter(reqs), timeout=180))
    errors = [r for r in responses if r.error_message]
    ok = {r.infer_response.id: r.infer_response for r in responses if not r.error_message}
    assert len(responses) == len(reqs), f"{len(responses)} responses to {len(reqs)} requests"
    assert len(errors) == n_bad, [r.error_message for r in errors]
    assert sorted(ok) == sorted(goods), sorted(ok)
    errs = []
    for rid, gs in goods.items():
        errs += vs.check_outputs(vs.outputs_of_grpc(ok[rid])[0], gs, native, tag=f"[{rid}] ")
    for r in errors:
        if r.infer_response.id and not r.infer_response.id.startswith("b-bad-"):
            errs.append(f"error {r.error_message!r} carries a good request's id "
                        f"{r.infer_response.id!r}")
    vs.assert_no_problems(errs)


# --- errors -------------------------------------------------------------------------

def _req(g, **kw):
    return vs.request_from_golden([g], **kw)


def _with(g, name, tensor=None, **kw):
    """The request with input `name` replaced by `tensor` (None: removed)."""
    req = _req(g, **kw)
    i = next(i for i, t in enumerate(req.inputs) if t.name == name)
    if tensor is None:
        del req.inputs[i]
    else:
        req.inputs[i] = tensor
    return req


def _raw_mutated(v2, req, index, fn):
    m = vs.to_grpc(v2, req, raw=True)
    m.raw_input_contents[index] = fn(m.raw_input_contents[index])
    return m


F16 = 16


def _cases():
    """(id, build(ctx) -> V2Request | ModelInferRequest, code, needles,
    row): the message must name one of `needles` (and the row if given)."""
    return [
        ("features_fp64", lambda c: _with(c.g, vs.FEATURES, vs.Tensor(
            vs.FEATURES, "FP64", [1, F16], c.g.feature_vector)), INVALID, [vs.FEATURES], None),
        ("text_int64", lambda c: _with(c.g, vs.TEXT, vs.Tensor(
            vs.TEXT, "INT64", [1], [5])), INVALID, [vs.TEXT], None),
        ("ids_fp32", lambda c: _with(c.g, vs.TEXT, vs.Tensor(
            vs.INPUT_IDS, "FP32", [1, len(c.g.token_ids)], [float(x) for x in c.g.token_ids])),
         INVALID, [vs.INPUT_IDS], None),
        ("mask_type_differs", lambda c: vs.V2Request(inputs=[
            vs.Tensor(vs.INPUT_IDS, "INT64", [1, len(c.g.token_ids)], c.g.token_ids),
            vs.Tensor(vs.ATTENTION_MASK, "INT32", [1, len(c.g.token_ids)],
                      [1] * len(c.g.token_ids)),
            vs.features_tensor([c.g.feature_vector])]), INVALID, [vs.ATTENTION_MASK], None),
        ("features_short_shape", lambda c: _with(c.g, vs.FEATURES, vs.Tensor(
            vs.FEATURES, "FP32", [1, F16 - 1], c.g.feature_vector[:-1])),
         INVALID, [vs.FEATURES], None),
        ("features_3d", lambda c: _with(c.g, vs.FEATURES, vs.Tensor(
            vs.FEATURES, "FP32", [1, 1, F16], c.g.feature_vector)), INVALID, [vs.FEATURES], None),
        ("text_two_columns", lambda c: _with(c.g, vs.TEXT, vs.Tensor(
            vs.TEXT, "BYTES", [1, 2], [b"a", b"b"])), INVALID, [vs.TEXT], None),
        ("data_count_not_shape", lambda c: _with(c.g, vs.FEATURES, vs.Tensor(
            vs.FEATURES, "FP32", [1, F16], c.g.feature_vector[:-1])),
         INVALID, [vs.FEATURES], None),
        ("ids_1d", lambda c: _with(c.g, vs.TEXT, vs.Tensor(
            vs.INPUT_IDS, "INT64", [len(c.g.token_ids)], c.g.token_ids)),
         INVALID, [vs.INPUT_IDS], None),
        ("mask_shape_differs", lambda c: vs.V2Request(inputs=[
            vs.Tensor(vs.INPUT_IDS, "INT64", [1, len(c.g.token_ids)], c.g.token_ids),
            vs.Tensor(vs.ATTENTION_MASK, "INT64", [1, len(c.g.token_ids) + 1],
                      [1] * (len(c.g.token_ids) + 1)),
            vs.features_tensor([c.g.feature_vector])]), INVALID, [vs.ATTENTION_MASK], None),
        ("mask_with_text", lambda c: vs.V2Request(inputs=[
            vs.text_tensor([c.g.text]),
            vs.Tensor(vs.ATTENTION_MASK, "INT64", [1, 3], [1, 1, 1]),
            vs.features_tensor([c.g.feature_vector])]), INVALID, [vs.ATTENTION_MASK], None),
        ("missing_features", lambda c: _with(c.g, vs.FEATURES), INVALID, [vs.FEATURES], None),
        ("missing_text_and_ids", lambda c: _with(c.g, vs.TEXT), INVALID,
         [vs.TEXT, vs.INPUT_IDS], None),
        ("text_and_ids", lambda c: vs.V2Request(inputs=[
            vs.text_tensor([c.g.text]),
            vs.Tensor(vs.INPUT_IDS, "INT64", [1, len(c.g.token_ids)], c.g.token_ids),
            vs.features_tensor([c.g.feature_vector])]), INVALID, [vs.TEXT, vs.INPUT_IDS], None),
        ("unknown_input", lambda c: vs.V2Request(inputs=_req(c.g).inputs + [
            vs.Tensor("BOGUS_INPUT", "FP32", [1], [1.0])]), INVALID, ["BOGUS_INPUT"], None),
        ("duplicate_input", lambda c: vs.V2Request(inputs=_req(c.g).inputs + [
            vs.features_tensor([c.g.feature_vector])]), INVALID, [vs.FEATURES], None),
        ("batch_mismatch", lambda c: vs.V2Request(inputs=[
            vs.text_tensor([c.g.text] * 2), vs.features_tensor([c.g.feature_vector] * 3)]),
         INVALID, [vs.TEXT, vs.FEATURES], None),
        ("unknown_output", lambda c: _req(c.g, outputs=["BOGUS_OUTPUT"]), INVALID,
         ["BOGUS_OUTPUT"], None),
        ("unknown_model", lambda c: _req(c.g, model="nope"), NOT_FOUND, ["nope"], None),
        ("unknown_version", lambda c: _req(c.g, version="7"), NOT_FOUND, ["7"], None),
        ("priority_string", lambda c: _req(c.g, parameters={"priority": "high"}), INVALID,
         ["priority"], None),
        ("priority_double", lambda c: _req(c.g, parameters={"priority": 1.5}), INVALID,
         ["priority"], None),
        ("timeout_string", lambda c: _req(c.g, parameters={"timeout": "soon"}), INVALID,
         ["timeout"], None),
        ("timeout_bool", lambda c: _req(c.g, parameters={"timeout": True}), INVALID,
         ["timeout"], None),
        ("raw_features_4_bytes_short", lambda c: _raw_mutated(
            c.v2, _req(c.g), 1, lambda b: b[:-4]), INVALID, [vs.FEATURES], None),
        ("raw_features_3_bytes_long", lambda c: _raw_mutated(
            c.v2, _req(c.g), 1, lambda b: b + b"\0\0\0"), INVALID, [vs.FEATURES], None),
        ("raw_text_length_past_end", lambda c: _raw_mutated(
            c.v2, _req(c.g), 0, lambda b: b[:4] + b[4:-1]), INVALID, [vs.TEXT], None),
        ("raw_text_extra_bytes", lambda c: _raw_mutated(
            c.v2, _req(c.g), 0, lambda b: b + b"\x01\x00"), INVALID, [vs.TEXT], None),
        ("raw_ids_short", lambda c: _raw_mutated(
            c.v2, _req(c.g, by_ids=True), 0, lambda b: b[:-8]), INVALID, [vs.INPUT_IDS], None),
        ("raw_entry_missing", lambda c: _raw_mutated_count(c.v2, _req(c.g)), INVALID,
         [vs.FEATURES, "raw_input_contents"], None),
        ("raw_and_contents", lambda c: _raw_and_typed(c.v2, _req(c.g)), INVALID,
         [vs.TEXT, vs.FEATURES, "raw_input_contents"], None),
        ("bad_row_nan_feature", lambda c: _row_nan(c.golden), INVALID, [vs.FEATURES], 5),
        ("bad_row_inf_feature_raw", lambda c: vs.to_grpc(c.v2, _row_nan(c.golden, math.inf),
                                                         raw=True),
         INVALID, [vs.FEATURES], 5),
        ("bad_row_id_out_of_vocab", lambda c: _row_bad_id(c.golden), INVALID, [vs.INPUT_IDS], 3),
        ("bad_row_negative_id", lambda c: _row_bad_id(c.golden, -1), INVALID,
         [vs.INPUT_IDS], 3),
        ("bad_row_invalid_utf8", lambda c: _row_bad_utf8(c.golden), INVALID, [vs.TEXT], 2),
        ("ids_too_long", lambda c: _with(c.g, vs.TEXT, vs.Tensor(
            vs.INPUT_IDS, "INT64", [1, c.cfg.max_tokens + 1],
            [c.g.token_ids[0]] + [c.g.token_ids[1]] * (c.cfg.max_tokens - 1) +
            [c.g.token_ids[-1]])), INVALID, [vs.INPUT_IDS], None),
    ]


def _raw_mutated_count(v2, req):
    m = vs.to_grpc(v2, req, raw=True)
    del m.raw_input_contents[-1]
    return m


def _raw_and_typed(v2, req):
    m = vs.to_grpc(v2, req, raw=True)
    typed = vs.to_grpc(v2, req, raw=False)
    m.inputs[0].contents.CopyFrom(typed.inputs[0].contents)
    return m


def _row_nan(golden, value=math.nan):
    gs = golden[20:28]
    req = vs.request_from_golden(gs)
    req.inputs[1].data[5 * F16 + 3] = value
    return req


def _row_bad_id(golden, bad=10 ** 6):
    gs = golden[20:24]
    req = vs.request_from_golden(gs, by_ids=True, mask=True)
    ids = req.input(vs.INPUT_IDS)
    L = ids.shape[1]
    ids.data[3 * L + 1] = bad
    return req


def _row_bad_utf8(golden):
    gs = golden[20:24]
    req = vs.request_from_golden(gs)
    req.inputs[0].data[2] = b"\xff\xfe\xc3\x28 bad"
    return req


class _Ctx:
    def __init__(self, v2, golden, cfg):
        self.v2, self.golden, self.cfg = v2, golden, cfg
        self.g = vs.text_goldens(golden, cfg)[0]


CASES = _cases()


@pytest.mark.parametrize("name,build,code,needles,row", CASES, ids=[c[0] for c in CASES])
def test_bad_request(v2, v2_stub, native, golden, model_config, name, build, code, needles,
                     row):
    ctx = _Ctx(v2, golden, model_config)
    req = build(ctx)
    if isinstance(req, vs.V2Request):
        req = vs.to_grpc(v2, req)
    with pytest.raises(grpc.RpcError) as ei:
        resp = v2_stub.ModelInfer(req, timeout=vs.RPC_TIMEOUT_S)
        pytest.fail(f"{name}: expected {code.name}, got OK: {str(resp)[:300]}")
    err = ei.value
    harness.observe(f"v2_grpc_message[{name}]", f"{err.code().name}: {err.details()}")
    assert err.code() == code, f"{name}: expected {code.name}, got {err.code().name}: " \
                               f"{err.details()}"
    assert vs.names_any(err.details(), needles), \
        f"{name}: message {err.details()!r} names none of {needles}"
    if row is not None:
        assert vs.names_row(err.details(), row), \
            f"{name}: message {err.details()!r} does not name row {row}"
    _assert_still_serving(v2, v2_stub, native, golden)


# --- deadlines ----------------------------------------------------------------------

class _Load:
    """Native Score traffic from background threads, to keep the server busy."""

    def __init__(self, stubs, stub, golden, threads=6):
        self.stop = threading.Event()
        self.count = 0
        self.errors = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(stubs, stub, golden, i))
                        for i in range(threads)]

    def _run(self, stubs, stub, golden, i):
        n = 0
        while not self.stop.is_set():
            g = golden[(i + n) % len(golden)]
            n += 1
            try:
                stub.Score(harness.request_from_golden(stubs, g, attention=2), timeout=60)
                with self.lock:
                    self.count += 1
            except grpc.RpcError as e:
                with self.lock:
                    self.errors.append(e.code().name)

    def __enter__(self):
        for t in self.threads:
            t.start()
        deadline = time.monotonic() + 30
        while self.count < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=120)


def test_timeout_parameter_of_1us_deadline_exceeded(v2, v2_stub, stubs, native_stub, native,
                                                    golden):
    """A "timeout" of 1 µs on a busy server: DEADLINE_EXCEEDED, not computed;
    the background traffic is unaffected."""
    with _Load(stubs, native_stub, golden) as load:
        outcomes = []
        for i in range(6):
            req = vs.request_from_golden(golden[i:i + 1 + i % 3], parameters={"timeout": 1},
                                         id=f"t1-{i}")
            try:
                _infer(v2, v2_stub, req, raw=i % 2 == 1)
                outcomes.append("OK")
            except grpc.RpcError as e:
                outcomes.append(e.code().name)
                if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    harness.observe("v2_timeout_1us_message", e.details())
    harness.observe("v2_timeout_1us_outcomes", outcomes)
    assert outcomes == ["DEADLINE_EXCEEDED"] * 6, outcomes
    assert not load.errors, load.errors[:5]
    _assert_still_serving(v2, v2_stub, native, golden)


# --- statistics ----------------------------------------------------------------------

def _figures(v2, v2_stub, name=harness.MODEL_NAME, version=""):
    resp = vs.grpc_stats(v2, v2_stub, name, version)
    ms = [m for m in resp.model_stats if m.name == harness.MODEL_NAME]
    assert len(ms) == 1, f"ModelStatistics({name!r}, {version!r}): {resp}"
    assert ms[0].version == harness.MODEL_VERSION, ms[0].version
    return vs.stats_figures(ms[0])


def _settled(v2, v2_stub):
    """Figures once two reads 0.3 s apart agree (nothing still in flight)."""
    return vs.settled(lambda: _figures(v2, v2_stub))


def test_statistics_rise_by_exactly_what_was_sent(v2, v2_stub, stubs, native_stub, native,
                                                  golden):
    """Triton's semantics (grpc_service.proto, serving/inference_stats.h):
    success.count, queue.count and compute_infer.count count requests of both
    APIs (a v2 request of B rows is one), inference_count counts rows,
    execution_count batches, batch_stats rows per batch size; fail.count
    counts requests that failed after reaching the model."""
    rows_sets = [golden[0:1], golden[1:5], golden[5:21], golden[21:24]]
    for gs in rows_sets:
        for g in gs:
            native.get(g)
    before = _settled(v2, v2_stub)
    t0_ms = time.time() * 1000

    # 3 ModelInfer (B = 1, 4 raw, 16), 1 ModelStreamInfer (B = 3), 2 native.
    _infer(v2, v2_stub, vs.request_from_golden(rows_sets[0]))
    _infer(v2, v2_stub, vs.request_from_golden(rows_sets[1], by_ids=True, mask=True), raw=True)
    _infer(v2, v2_stub, vs.request_from_golden(rows_sets[2]))
    stream = list(v2_stub.ModelStreamInfer(
        iter([vs.to_grpc(v2, vs.request_from_golden(rows_sets[3], id="st"))]), timeout=60))
    assert len(stream) == 1 and not stream[0].error_message, stream
    for g in golden[30:32]:
        native_stub.Score(harness.request_from_golden(stubs, g), timeout=60)
    # 2 failures on the model: a bad row, a timeout of 1 µs.
    for req in (_row_nan(golden), vs.request_from_golden(golden[:2], parameters={"timeout": 1})):
        with pytest.raises(grpc.RpcError):
            _infer(v2, v2_stub, req)
    requests, rows, fails = 4 + 2, 1 + 4 + 16 + 3 + 2, 2

    after = vs.poll(lambda: _figures(v2, v2_stub),
                    lambda f: (f["success.count"] - before["success.count"] >= requests and
                               f["fail.count"] - before["fail.count"] >= fails))
    d = vs.delta(after, before)
    harness.observe("v2_statistics_delta", d)
    assert d["success.count"] == requests, d
    assert d["inference_count"] == rows, d
    assert d["fail.count"] == fails, d
    assert d["queue.count"] == requests, d
    assert d["compute_infer.count"] == requests, d
    assert d["compute_input.count"] == requests, d
    assert 1 <= d["execution_count"] <= rows, d
    assert d["batch_stats.batches"] == d["execution_count"], d
    assert d["batch_stats.rows"] == rows, d
    assert d["success.ns"] > 0 and d["queue.ns"] > 0 and d["compute_infer.ns"] > 0, d
    assert d["fail.ns"] > 0, d
    # A request's time from arrival to answer covers any of its rows' queue
    # or forward time (whichever row the server reports).
    assert d["success.ns"] >= d["queue.ns"] and d["success.ns"] >= d["compute_infer.ns"], d
    assert t0_ms - 5_000 <= after["last_inference"] <= time.time() * 1000 + 5_000, \
        (after["last_inference"], t0_ms)
    assert after["last_inference"] >= before["last_inference"]


def test_statistics_scopes(v2, v2_stub):
    every = vs.grpc_stats(v2, v2_stub, "", "")
    names = [(m.name, m.version) for m in every.model_stats]
    assert (harness.MODEL_NAME, harness.MODEL_VERSION) in names, names
    one = vs.grpc_stats(v2, v2_stub, harness.MODEL_NAME, harness.MODEL_VERSION)
    assert [(m.name, m.version) for m in one.model_stats] == \
        [(harness.MODEL_NAME, harness.MODEL_VERSION)]
    for name, version in (("nope", ""), (harness.MODEL_NAME, "7")):
        with pytest.raises(grpc.RpcError) as ei:
            vs.grpc_stats(v2, v2_stub, name, version)
        assert ei.value.code() == NOT_FOUND, (name, version, ei.value)


def test_unknown_rpc_is_unimplemented(v2, channel):
    """grpc_service.proto: RPCs fusionserve does not declare answer UNIMPLEMENTED."""
    call = channel.unary_unary("/inference.GRPCInferenceService/RepositoryIndex",
                               request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as ei:
        call(b"", timeout=30)
    assert ei.value.code() == grpc.StatusCode.UNIMPLEMENTED, ei.value


def test_native_and_v2_on_one_port(v2, v2_stub, native, native_stub, stubs, server, golden):
    """Same address for both services; the server still lives at the end."""
    g = golden[7]
    r = native_stub.Score(harness.request_from_golden(stubs, g), timeout=30)
    outs, _ = vs.outputs_of_grpc(_infer(v2, v2_stub, vs.request_from_golden([g])))
    assert abs(outs[vs.SCORE].data[0] - r.score) <= vs.TOL_NATIVE
    assert vs.server_alive(server) is None
