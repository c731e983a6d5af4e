"""The Open Inference Protocol over HTTP/JSON (KServe v2 REST, with Triton's
binary tensor data extension) on the server's HTTP port, driven with urllib
only. The contract: server/api/v2/http_routes.h and inference_core.h.

Run: FUSION_SERVER_BIN=$PWD/build/server/fusion-server \
     /usr/bin/python3 -m pytest tests/integration/test_v2_http.py -q
"""
import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

import harness
import v2_support as vs
from v2_support import (  # noqa: F401  (fixtures are used by name)
    channel, feature_names, model_config, native, native_stub, server, v2, v2_observations,
    v2_stub)

M = harness.MODEL_NAME
MIB16 = 16 << 20


@pytest.fixture(scope="module")
def base(server):
    return server.http_address


def _json_ct(r):
    return "json" in r.headers.get("content-type", "")


def _assert_error(r, status, needles=(), row=None, what=""):
    assert r.status == status, f"{what}: HTTP {r.status}, expected {status}: {r.body[:300]!r}"
    assert _json_ct(r), f"{what}: content-type {r.headers.get('content-type')!r}"
    msg = r.error()
    assert msg, f"{what}: body is not {{\"error\": \"...\"}}: {r.body[:300]!r}"
    if needles:
        assert vs.names_any(msg, needles), f"{what}: error {msg!r} names none of {list(needles)}"
    if row is not None:
        assert vs.names_row(msg, row), f"{what}: error {msg!r} does not name row {row}"
    return msg


def _assert_still_serving(srv, native, golden):
    why = vs.server_alive(srv)
    assert why is None, f"{why}\n{srv.log_tail()}"
    g = golden[2]
    r, outs = vs.http_infer(srv.http_address, vs.request_from_golden([g], id="after"))
    assert r.status == 200, f"after an error: HTTP {r.status} {r.body[:300]!r}"
    vs.assert_no_problems(vs.check_outputs(outs, [g], native), "after an error: ")


# --- endpoints ------------------------------------------------------------------------

def test_health(base):
    for path in ("/v2/health/live", "/v2/health/ready"):
        r = vs.http_get(base, path)
        assert r.status == 200, f"{path}: {r.status} {r.body[:200]!r}"


def test_server_metadata_matches_grpc(base, v2, v2_stub):
    r = vs.http_get(base, "/v2")
    assert r.status == 200 and _json_ct(r), (r.status, r.headers)
    md = r.json()
    g = v2_stub.ServerMetadata(v2.pb2.ServerMetadataRequest(), timeout=30)
    assert md["name"] == g.name and md["version"] == g.version, (md, g)
    assert list(md["extensions"]) == list(g.extensions), (md, list(g.extensions))
    # This file checks the binary extension works; the server must say so.
    assert "binary_tensor_data" in md["extensions"], md["extensions"]


@pytest.mark.parametrize("path", [f"/v2/models/{M}", f"/v2/models/{M}/versions/1"])
def test_model_metadata_matches_grpc(base, v2, v2_stub, path):
    r = vs.http_get(base, path)
    assert r.status == 200 and _json_ct(r), (r.status, r.body[:300])
    md = r.json()
    g = v2_stub.ModelMetadata(v2.pb2.ModelMetadataRequest(name=M), timeout=30)
    assert md["name"] == M
    assert [str(v) for v in md["versions"]] == list(g.versions)
    assert md["platform"] == g.platform
    for key, tensors in (("inputs", g.inputs), ("outputs", g.outputs)):
        want = {t.name: (t.datatype, list(t.shape)) for t in tensors}
        got = {t["name"]: (t["datatype"], [int(d) for d in t["shape"]]) for t in md[key]}
        assert got == want, (key, got, want)


@pytest.mark.parametrize("path", [f"/v2/models/{M}/ready", f"/v2/models/{M}/versions/1/ready"])
def test_model_ready(base, path):
    """http_routes.h: 200 {"name", "ready": true} when ready."""
    r = vs.http_get(base, path)
    assert r.status == 200, (path, r.status, r.body[:200])
    body = r.json()
    assert body.get("ready") is True and body.get("name") == M, body


@pytest.mark.parametrize("path,needle", [("/v2/models/nope/ready", "nope"),
                                         (f"/v2/models/{M}/versions/7/ready", "7")])
def test_model_ready_unknown(base, path, needle):
    """http_routes.h: not ready is {"error"}: 404 for an unknown model or
    version (400 for a known one not ready, 503 while loading or draining)."""
    r = vs.http_get(base, path)
    harness.observe(f"v2_http_ready[{path}]", f"{r.status} {r.body[:120]!r}")
    _assert_error(r, 404, (needle,), what=path)


def _get(d, snake):
    parts = snake.split("_")
    camel = parts[0] + "".join(p.title() for p in parts[1:])
    return d[snake] if snake in d else d.get(camel)


def test_model_config(base, v2, v2_stub):
    r = vs.http_get(base, f"/v2/models/{M}/config")
    assert r.status == 200 and _json_ct(r), (r.status, r.body[:300])
    cfg = r.json()
    harness.observe("v2_http_config", json.dumps(cfg)[:500])
    g = v2_stub.ModelConfig(v2.pb2.ModelConfigRequest(name=M), timeout=30).config
    assert cfg["name"] == M
    assert int(_get(cfg, "max_batch_size")) == g.max_batch_size
    assert sorted(i["name"] for i in cfg["input"]) == sorted(i.name for i in g.input)
    assert sorted(o["name"] for o in cfg["output"]) == sorted(o.name for o in g.output)
    feats = next(i for i in cfg["input"] if i["name"] == vs.FEATURES)
    assert [int(d) for d in feats["dims"]] == [16], feats
    assert _get(feats, "data_type") in ("TYPE_FP32", v2.config_pb2.TYPE_FP32), feats
    db = _get(cfg, "dynamic_batching")
    assert isinstance(db, dict), cfg


def test_statistics_endpoints_match_grpc(base, v2, v2_stub, golden):
    vs.http_infer(base, vs.request_from_golden(golden[:2]))  # something to count
    time.sleep(0.5)
    grpc_fig = vs.stats_figures(vs.grpc_stats(v2, v2_stub, M).model_stats[0])
    for path in (f"/v2/models/{M}/stats", f"/v2/models/{M}/versions/1/stats", "/v2/models/stats"):
        r = vs.http_get(base, path)
        assert r.status == 200 and _json_ct(r), (path, r.status, r.body[:300])
        stats = [m for m in _get(r.json(), "model_stats") if m["name"] == M]
        assert len(stats) == 1, (path, r.body[:500])
        assert str(stats[0]["version"]) == harness.MODEL_VERSION
        fig = vs.stats_figures_json(stats[0])
        assert fig == grpc_fig, (path, fig, grpc_fig)
        assert fig["inference_count"] >= 2 and fig["success.count"] >= 1, fig
    for path in ("/v2/models/nope/stats", f"/v2/models/{M}/versions/7/stats"):
        _assert_error(vs.http_get(base, path), 404, what=path)


def test_statistics_count_http_requests(base, v2, v2_stub, native, golden):
    def fig():
        return vs.stats_figures(vs.grpc_stats(v2, v2_stub, M).model_stats[0])
    for g in golden[:7]:
        native.get(g)
    before = vs.settled(fig)
    r1, _ = vs.http_infer(base, vs.request_from_golden(golden[:3]))
    r2, _, _ = vs.http_infer_binary(base, vs.request_from_golden(golden[3:7]))
    r3 = vs.http_post_json(base, vs.infer_path(), {"inputs": []})
    assert (r1.status, r2.status, r3.status) == (200, 200, 400), (r1.status, r2.status, r3.status)
    after = vs.poll(fig, lambda f: f["success.count"] - before["success.count"] >= 2)
    d = vs.delta(after, before)
    harness.observe("v2_http_statistics_delta", d)
    assert d["success.count"] == 2 and d["inference_count"] == 7, d


# --- inference --------------------------------------------------------------------------

@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
@pytest.mark.parametrize("form", ["text", "text_2d", "ids_int64_mask", "ids_int32_mask"])
@pytest.mark.parametrize("batch", [1, 16])
def test_infer_json(base, native, golden, nested, form, batch):
    kw = {"text": {}, "text_2d": {"text_2d": True},
          "ids_int64_mask": {"by_ids": True, "mask": True},
          "ids_int32_mask": {"by_ids": True, "mask": True, "ids_type": "INT32"}}[form]
    goldens = [golden[3]] if batch == 1 else golden[:16]
    req = vs.request_from_golden(goldens, id=f"j-{form}-{batch}", **kw)
    r, outs = vs.http_infer(base, req, nested=nested)
    assert r.status == 200, (r.status, r.body[:300])
    assert _json_ct(r), r.headers
    body = r.json()
    assert body["model_name"] == M and str(body["model_version"]) == harness.MODEL_VERSION
    assert body.get("id") == req.id, body.get("id")
    vs.assert_no_problems(vs.check_outputs(outs, goldens, native), f"[{form} B={batch}] ")


@pytest.mark.parametrize("attention", ["mean", "per_head"])
def test_infer_json_attention(base, native, golden, attention):
    goldens = golden[:16]
    req = vs.request_from_golden(goldens, outputs=vs.ATTENTION_OUTPUTS,
                                 per_head=attention == "per_head")
    r, outs = vs.http_infer(base, req)
    assert r.status == 200, (r.status, r.body[:300])
    vs.assert_no_problems(vs.check_outputs(outs, goldens, native, names=vs.ATTENTION_OUTPUTS,
                                           attention=attention))


def test_infer_json_parameters_and_version(base, native, golden):
    goldens = golden[8:12]
    req = vs.request_from_golden(goldens, version="1",
                                 parameters={"priority": 2, "timeout": 30_000_000,
                                             "unknown": "ignored", "unknown_number": 1.5})
    r, outs = vs.http_infer(base, req)
    assert r.status == 200, (r.status, r.body[:300])
    vs.assert_no_problems(vs.check_outputs(outs, goldens, native))


@pytest.mark.parametrize("mode", ["binary_in_binary_out", "binary_in_json_out",
                                  "json_in_binary_out", "text_json_features_binary"])
@pytest.mark.parametrize("batch", [1, 16])
def test_infer_binary_extension(base, native, golden, mode, batch):
    goldens = [golden[3]] if batch == 1 else golden[:16]
    req = vs.request_from_golden(goldens, id=f"bin-{mode}", by_ids=batch == 16, mask=True)
    kw = {"binary_in_binary_out": {},
          "binary_in_json_out": {"binary_outputs": False},
          "json_in_binary_out": {"binary_inputs": False},
          "text_json_features_binary": {"json_inputs": [vs.INPUT_IDS, vs.ATTENTION_MASK,
                                                        vs.TEXT]}}[mode]
    r, head, outs = vs.http_infer_binary(base, req, **kw)
    assert r.status == 200, (r.status, r.body[:300])
    binary_out = kw.get("binary_outputs", True)
    if binary_out:
        assert "inference-header-content-length" in r.headers, r.headers
        assert r.headers.get("content-type", "").startswith("application/octet-stream"), \
            r.headers
        for o in head["outputs"]:
            assert "binary_data_size" in (o.get("parameters") or {}), o
    else:
        assert all("data" in o for o in head["outputs"]), head
    assert head.get("id") == req.id
    vs.assert_no_problems(vs.check_outputs(outs, goldens, native), f"[{mode} B={batch}] ")


def test_infer_binary_attention_per_head(base, native, golden):
    goldens = golden[:16]
    req = vs.request_from_golden(goldens, outputs=vs.ATTENTION_OUTPUTS, per_head=True)
    r, head, outs = vs.http_infer_binary(base, req)
    assert r.status == 200, (r.status, r.body[:300])
    vs.assert_no_problems(vs.check_outputs(outs, goldens, native, names=vs.ATTENTION_OUTPUTS,
                                           attention="per_head"))


def test_infer_binary_output_by_request_parameter(base, native, golden):
    """Triton: the request parameter binary_data_output=true makes every
    output binary."""
    goldens = golden[4:6]
    req = vs.request_from_golden(goldens, parameters={"binary_data_output": True})
    body = json.dumps(vs.to_json(req)).encode()
    r = vs.http("POST", f"http://{base}{vs.infer_path()}", body,
                {"Content-Type": "application/json"})
    assert r.status == 200, (r.status, r.body[:300])
    head, outs = vs.decode_binary_response(r.headers, r.body)
    assert all("binary_data_size" in (o.get("parameters") or {}) for o in head["outputs"]), head
    vs.assert_no_problems(vs.check_outputs(outs, goldens, native))


def test_binary_bytes_text(base, native, golden):
    """BYTES in the binary extension: 4-byte LE length + bytes per element,
    non-ASCII text and an empty string included."""
    goldens = [golden[0], golden[4], golden[6], golden[7]]
    req = vs.request_from_golden(goldens)
    r, _, outs = vs.http_infer_binary(base, req)
    assert r.status == 200, (r.status, r.body[:300])
    vs.assert_no_problems(vs.check_outputs(outs, goldens, native))


# --- errors -------------------------------------------------------------------------------

def _good(golden, **kw):
    return vs.to_json(vs.request_from_golden([golden[20]], **kw))


def _json_with(golden, name, tensor):
    body = _good(golden)
    body["inputs"] = [t for t in body["inputs"] if t["name"] != name]
    if tensor is not None:
        body["inputs"].append(tensor)
    return body


def _bad_row_ids(golden):
    req = vs.request_from_golden(golden[20:24], by_ids=True, mask=True)
    ids = req.input(vs.INPUT_IDS)
    ids.data[3 * ids.shape[1] + 1] = 10 ** 6
    return vs.to_json(req)


def _bad_row_nan_binary(golden):
    req = vs.request_from_golden(golden[20:28])
    req.inputs[1].data[5 * 16 + 2] = float("nan")
    return vs.to_binary(req)


def _binary_features_short(golden):
    req = vs.request_from_golden([golden[20]])
    body, headers = vs.to_binary(req)
    return body[:-4], headers  # FEATURES' binary_data_size says 64, 60 bytes follow


def _binary_size_lies(golden):
    req = vs.request_from_golden([golden[20]])
    header = vs.to_json(req)
    feats = vs.encode_raw("FP32", req.inputs[1].data)
    header["inputs"][1].pop("data")
    header["inputs"][1]["parameters"] = {"binary_data_size": len(feats) - 4}
    head = json.dumps(header).encode()
    return head + feats[:-4], {"Inference-Header-Content-Length": str(len(head)),
                               "Content-Type": "application/octet-stream"}


def _header_length_past_body(golden):
    body, headers = vs.to_binary(vs.request_from_golden([golden[20]]))
    headers["Inference-Header-Content-Length"] = str(len(body) + 10)
    return body, headers


def _classification(golden):
    body = _good(golden)
    body["outputs"] = [{"name": vs.SCORE, "parameters": {"classification": 2}}]
    return body


def _header_length_zero(golden):
    """Triton's raw binary request without JSON: refused (http_json.h)."""
    req = vs.request_from_golden([golden[20]])
    blobs = b"".join(vs.encode_raw(t.datatype, t.data) for t in req.inputs)
    return blobs, {"Inference-Header-Content-Length": "0",
                   "Content-Type": "application/octet-stream"}


F = 16
HTTP_CASES = [
    # (id, build(golden) -> json-able | (bytes, headers), path, status, needles, row)
    ("malformed_json", lambda g: (b'{"inputs": [', {"Content-Type": "application/json"}),
     None, 400, (), None),
    ("json_not_object", lambda g: [1, 2, 3], None, 400, (), None),
    ("no_inputs_key", lambda g: {"outputs": []}, None, 400, ("inputs",), None),
    ("inputs_not_list", lambda g: {"inputs": {"name": "TEXT"}}, None, 400, ("inputs",), None),
    ("features_fp64", lambda g: _json_with(g, vs.FEATURES, {
        "name": vs.FEATURES, "datatype": "FP64", "shape": [1, F],
        "data": g[20].feature_vector}), None, 400, (vs.FEATURES,), None),
    ("features_strings", lambda g: _json_with(g, vs.FEATURES, {
        "name": vs.FEATURES, "datatype": "FP32", "shape": [1, F],
        "data": [str(x) for x in g[20].feature_vector]}), None, 400, (vs.FEATURES,), None),
    ("features_shape_short", lambda g: _json_with(g, vs.FEATURES, {
        "name": vs.FEATURES, "datatype": "FP32", "shape": [1, F - 1],
        "data": g[20].feature_vector[:-1]}), None, 400, (vs.FEATURES,), None),
    ("data_count_not_shape", lambda g: _json_with(g, vs.FEATURES, {
        "name": vs.FEATURES, "datatype": "FP32", "shape": [1, F],
        "data": g[20].feature_vector[:-1]}), None, 400, (vs.FEATURES,), None),
    ("nested_data_wrong_shape", lambda g: _json_with(g, vs.FEATURES, {
        "name": vs.FEATURES, "datatype": "FP32", "shape": [1, F],
        "data": [g[20].feature_vector[:8], g[20].feature_vector[8:]]}),
     None, 400, (vs.FEATURES,), None),
    ("shape_not_list", lambda g: _json_with(g, vs.FEATURES, {
        "name": vs.FEATURES, "datatype": "FP32", "shape": "1x16",
        "data": g[20].feature_vector}), None, 400, (vs.FEATURES, "shape"), None),
    ("no_datatype", lambda g: _json_with(g, vs.FEATURES, {
        "name": vs.FEATURES, "shape": [1, F], "data": g[20].feature_vector}),
     None, 400, (vs.FEATURES, "datatype"), None),
    ("text_numbers", lambda g: _json_with(g, vs.TEXT, {
        "name": vs.TEXT, "datatype": "BYTES", "shape": [1], "data": [5]}),
     None, 400, (vs.TEXT,), None),
    ("missing_features", lambda g: _json_with(g, vs.FEATURES, None), None, 400,
     (vs.FEATURES,), None),
    ("missing_text_and_ids", lambda g: _json_with(g, vs.TEXT, None), None, 400,
     (vs.TEXT, vs.INPUT_IDS), None),
    ("unknown_input", lambda g: _json_with(g, "BOGUS_INPUT", {
        "name": "BOGUS_INPUT", "datatype": "FP32", "shape": [1], "data": [1.0]}),
     None, 400, ("BOGUS_INPUT",), None),
    ("batch_mismatch", lambda g: vs.to_json(vs.V2Request(inputs=[
        vs.text_tensor([g[20].text] * 2), vs.features_tensor([g[20].feature_vector] * 3)])),
     None, 400, (vs.TEXT, vs.FEATURES), None),
    ("unknown_output", lambda g: _good(g, outputs=["BOGUS_OUTPUT"]), None, 400,
     ("BOGUS_OUTPUT",), None),
    ("priority_string", lambda g: _good(g, parameters={"priority": "high"}), None, 400,
     ("priority",), None),
    ("timeout_string", lambda g: _good(g, parameters={"timeout": "soon"}), None, 400,
     ("timeout",), None),
    ("parameter_array", lambda g: _good(g, parameters={"odd": [1, 2]}), None, 400,
     ("odd", "parameters"), None),
    ("parameter_null", lambda g: _good(g, parameters={"priority": None}), None, 400,
     ("priority",), None),
    ("classification_refused", lambda g: _classification(g), None, 400,
     ("classification",), None),
    ("header_length_zero", _header_length_zero, None, 400, (), None),
    ("bad_row_id", _bad_row_ids, None, 400, (vs.INPUT_IDS,), 3),
    ("bad_row_nan_binary", _bad_row_nan_binary, None, 400, (vs.FEATURES,), 5),
    ("binary_features_short", _binary_features_short, None, 400, (vs.FEATURES,), None),
    ("binary_size_not_shape", _binary_size_lies, None, 400, (vs.FEATURES,), None),
    ("header_length_past_body", _header_length_past_body, None, 400, (), None),
    ("unknown_model", lambda g: _good(g), vs.infer_path("nope"), 404, ("nope",), None),
    ("unknown_version", lambda g: _good(g), vs.infer_path(M, "7"), 404, ("7",), None),
]


@pytest.mark.parametrize("name,build,path,status,needles,row", HTTP_CASES,
                         ids=[c[0] for c in HTTP_CASES])
def test_bad_request(server, native, golden, name, build, path, status, needles, row):
    built = build(golden)
    url = f"http://{server.http_address}{path or vs.infer_path()}"
    if isinstance(built, tuple):
        body, headers = built
    else:
        body, headers = json.dumps(built).encode(), {"Content-Type": "application/json"}
    r = vs.http("POST", url, body, headers)
    msg = _assert_error(r, status, needles, row, what=name)
    harness.observe(f"v2_http_message[{name}]", f"{r.status}: {msg}")
    _assert_still_serving(server, native, golden)


@pytest.mark.parametrize("method,path", [
    ("GET", "/v2/models/nope"), ("GET", f"/v2/models/{M}/versions/7"),
    ("GET", "/v2/models/nope/config"), ("GET", f"/v2/models/{M}/versions/7/config")])
def test_unknown_model_or_version_404(server, method, path):
    r = vs.http(method, f"http://{server.http_address}{path}")
    _assert_error(r, 404, ("nope",) if "nope" in path else ("7",), what=path)


@pytest.mark.parametrize("method,path", [("GET", "/v2/bogus"), ("GET", f"/v2/models/{M}/bogus"),
                                         ("POST", "/v2/models/nope/bogus")])
def test_unknown_v2_path_404(server, method, path):
    """http_routes.h: 404 {"error"} for an unknown /v2 path."""
    body = b"{}" if method == "POST" else None
    r = vs.http(method, f"http://{server.http_address}{path}", body,
                {"Content-Type": "application/json"} if body else None)
    _assert_error(r, 404, what=path)


def test_body_over_16_mib_is_413_and_just_under_is_served(server, native, golden):
    """http_routes.h: max_body_bytes 16 MiB by default. A valid request padded
    with JSON whitespace: 1 KiB under the limit is served, 1 byte over is 413."""
    g = golden[20]
    core = json.dumps(_good(golden)).encode()
    under = core + b" " * (MIB16 - 1024 - len(core))
    over = core + b" " * (MIB16 + 1 - len(core))
    assert len(over) == MIB16 + 1
    url = f"http://{server.http_address}{vs.infer_path()}"
    r = vs.http("POST", url, under, {"Content-Type": "application/json"}, timeout=120)
    assert r.status == 200, (r.status, r.body[:300])
    vs.assert_no_problems(vs.check_outputs(vs.outputs_of_json(r.json()), [g], native))
    try:
        r = vs.http("POST", url, over, {"Content-Type": "application/json"}, timeout=120)
    except OSError as e:  # the server closed the connection instead of answering
        pytest.fail(f"16 MiB + 1 body: no HTTP answer ({e!r}), expected 413\n"
                    f"{server.log_tail(20)}")
    msg = _assert_error(r, 413, what="16 MiB + 1 byte")
    harness.observe("v2_http_413_message", msg)
    _assert_still_serving(server, native, golden)


# --- deadlines and overload ---------------------------------------------------------------

def test_timeout_1us_is_504_on_a_busy_server(server, stubs, native_stub, native, golden):
    stop = threading.Event()
    errors, done = [], [0]

    def load(i):
        n = 0
        while not stop.is_set():
            try:
                native_stub.Score(harness.request_from_golden(stubs, golden[(i + n) % 50],
                                                              attention=2), timeout=60)
                done[0] += 1
            except grpc.RpcError as e:
                errors.append(e.code().name)
            n += 1

    threads = [threading.Thread(target=load, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    try:
        t0 = time.monotonic()
        while done[0] < 10 and time.monotonic() - t0 < 30:
            time.sleep(0.01)
        results = []
        for i in range(6):
            req = vs.request_from_golden(golden[i:i + 2], parameters={"timeout": 1})
            if i % 2:
                r, _, _ = vs.http_infer_binary(server.http_address, req)
            else:
                r, _ = vs.http_infer(server.http_address, req)
            results.append((r.status, r.error()))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
    harness.observe("v2_http_timeout_1us", results[:2])
    assert [s for s, _ in results] == [504] * 6, results
    assert all(m for _, m in results), results
    assert not errors, errors[:5]
    _assert_still_serving(server, native, golden)


@pytest.fixture(scope="module")
def tiny_queue_server(tmp_path_factory):
    srv = vs.start_server(str(tmp_path_factory.mktemp("tinyq")),
                          ["--max_queue_size=1", "--instance_count=1",
                           "--http_max_body_bytes=1048576"])
    yield srv
    rc = srv.stop()
    assert rc == 0, f"exit code {rc}\n{srv.log_tail()}"


def test_queue_full_is_429_and_the_rest_correct(tiny_queue_server, native, golden):
    """--max_queue_size=1 --instance_count=1, 24 clients at once: some get
    429 {"error"}, every other answer is 200 and correct, nothing else."""
    srv = tiny_queue_server
    goldens = golden[20:44]
    for g in goldens:
        native.get(g)  # the module's server: same model, same answers

    def client(i):
        out = []
        for k in range(8):
            g = goldens[(i + k) % len(goldens)]
            req = vs.request_from_golden([g], id=f"q-{i}-{k}")
            try:
                if k % 2:
                    r, _, outs = vs.http_infer_binary(srv.http_address, req)
                else:
                    r, outs = vs.http_infer(srv.http_address, req)
            except OSError as e:  # no HTTP answer at all
                out.append((f"no answer: {e!r}", "", []))
                continue
            errs = vs.check_outputs(outs, [g], native, tag=f"[q-{i}-{k}] ") \
                if r.status == 200 else []
            out.append((r.status, r.error(), errs))
        return out

    with ThreadPoolExecutor(max_workers=24) as ex:
        results = [x for r in ex.map(client, range(24)) for x in r]
    statuses = {}
    for s, _, _ in results:
        statuses[s] = statuses.get(s, 0) + 1
    harness.observe("v2_http_queue_full_statuses", statuses)
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.get(429, 0) >= 1, statuses
    assert statuses.get(200, 0) >= 1, statuses
    assert all(m for s, m, _ in results if s == 429), [m for s, m, _ in results if s == 429][:3]
    harness.observe("v2_http_429_message", next(m for s, m, _ in results if s == 429))
    vs.assert_no_problems([e for _, _, errs in results for e in errs])
    _assert_still_serving(srv, native, golden)


def test_configured_body_limit(tiny_queue_server, native, golden):
    """--http_max_body_bytes=1048576: 1 byte over is 413, 1 KiB under served."""
    srv = tiny_queue_server
    core = json.dumps(_good(golden)).encode()
    url = f"http://{srv.http_address}{vs.infer_path()}"
    under = vs.http("POST", url, core + b" " * ((1 << 20) - 1024 - len(core)),
                    {"Content-Type": "application/json"})
    assert under.status == 200, (under.status, under.body[:300])
    over = vs.http("POST", url, core + b" " * ((1 << 20) + 1 - len(core)),
                   {"Content-Type": "application/json"})
    _assert_error(over, 413, what="1 MiB + 1 byte")
    _assert_still_serving(srv, native, golden)


def test_queue_full_grpc_resource_exhausted(tiny_queue_server, v2, native, golden):
    srv = tiny_queue_server
    ch = vs.open_channel(srv)
    stub = v2.pb2_grpc.GRPCInferenceServiceStub(ch)
    goldens = golden[20:44]

    def call(i):
        g = goldens[i % len(goldens)]
        try:
            resp = stub.ModelInfer(vs.to_grpc(v2, vs.request_from_golden([g]), raw=i % 2 == 1),
                                   timeout=60)
            return "OK", vs.check_outputs(vs.outputs_of_grpc(resp)[0], [g], native)
        except grpc.RpcError as e:
            return e.code().name, []

    try:
        with ThreadPoolExecutor(max_workers=32) as ex:
            results = list(ex.map(call, range(256)))
    finally:
        ch.close()
    counts = {}
    for c, _ in results:
        counts[c] = counts.get(c, 0) + 1
    harness.observe("v2_grpc_queue_full_outcomes", counts)
    assert set(counts) <= {"OK", "RESOURCE_EXHAUSTED"}, counts
    assert counts.get("RESOURCE_EXHAUSTED", 0) >= 1 and counts.get("OK", 0) >= 1, counts
    vs.assert_no_problems([e for _, errs in results for e in errs])
    _assert_still_serving(srv, native, golden)


def test_drain_ready_503_then_requests_503(stubs, native_stub, v2, native, golden, tmp_path):
    """SIGTERM with --drain_delay=2s. During the delay (server/serving/
    serving_state.h: not ready, still serving): /v2/health/ready is 503 at
    once and gRPC ServerReady false, liveness holds, and inference and model
    metadata are served as the native API serves them
    (tests/integration/test_lifecycle.py). After the delay the server drains
    (new requests refused; inference_core.h: ModelMetadata UNAVAILABLE
    while draining) while the HTTP port is still up: model metadata,
    inference and model ready (http_routes.h: 503 while the server drains)
    are 503 {"error"}. The server then exits 0."""
    srv = vs.start_server(str(tmp_path), ["--drain_delay=2s"])
    ch = vs.open_channel(srv)
    stub = v2.pb2_grpc.GRPCInferenceServiceStub(ch)
    nstub = stubs.scoring_pb2_grpc.ScoringServiceStub(ch)
    g = golden[3]
    native.get(g)  # from the module's server: same model, same answers
    req = vs.request_from_golden([g])
    base = srv.http_address
    try:
        assert vs.http_get(base, "/v2/health/ready").status == 200
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        # "At once" on a slow machine: within a second and a half.
        ready = vs.poll(lambda: vs.http_get(base, "/v2/health/ready", timeout=5),
                        lambda r: r.status != 200, timeout=1.5, interval=0.05)
        seen = {"ready": (ready.status, round(time.monotonic() - t0, 2))}
        live = vs.http_get(base, "/v2/health/live", timeout=5)
        seen["live"] = live.status
        seen["grpc_ready"] = stub.ServerReady(v2.pb2.ServerReadyRequest(), timeout=5).ready
        r, outs = vs.http_infer(base, req, timeout=10)
        seen["infer"] = r.status
        md = vs.http_get(base, f"/v2/models/{M}", timeout=5)
        seen["metadata"] = md.status
        try:
            nstub.GetModelMetadata(stubs.scoring_pb2.GetModelMetadataRequest(), timeout=5)
            seen["native_metadata"] = "OK"
        except grpc.RpcError as e:
            seen["native_metadata"] = e.code().name
        seen["model_ready"] = vs.http_get(base, f"/v2/models/{M}/ready", timeout=5).status
        seen["elapsed_s"] = round(time.monotonic() - t0, 2)
        assert seen["elapsed_s"] < 2.0, f"the probes ran past the drain delay: {seen}"

        # After the delay: poll model metadata (not an inference call, so it
        # does not hold the drain back) until it is refused.
        draining, t_drain = None, None
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and srv.proc.poll() is None:
            try:
                m = vs.http_get(base, f"/v2/models/{M}", timeout=5)
            except OSError:
                break
            if m.status != 200:
                draining, t_drain = m, round(time.monotonic() - t0, 2)
                break
            time.sleep(0.02)
        late_infer = late_ready = None
        if draining is not None:
            try:
                late_infer = vs.http_infer(base, req, timeout=5)[0]
                late_ready = vs.http_get(base, f"/v2/models/{M}/ready", timeout=5)
            except OSError as e:
                late_infer = late_infer or e
                late_ready = late_ready or e
        seen["draining_metadata"] = (draining.status, draining.error(), t_drain) \
            if draining is not None else None
        seen["draining_infer"] = late_infer.status if isinstance(late_infer, vs.HttpResult) \
            else repr(late_infer)
        seen["draining_model_ready"] = late_ready.status \
            if isinstance(late_ready, vs.HttpResult) else repr(late_ready)
        seen["exit_code"] = srv.wait(timeout=60)
        harness.observe("v2_drain_probes", seen)

        assert ready.status == 503, seen
        assert live.status == 200, seen
        assert seen["grpc_ready"] is False, seen
        assert r.status == 200, (seen, r.body[:300])
        vs.assert_no_problems(vs.check_outputs(outs, [g], native), "during the drain delay: ")
        assert (md.status == 200) == (seen["native_metadata"] == "OK"), seen
        assert draining is not None, f"never saw a refusal while draining: {seen}\n" \
                                     f"{srv.log_tail(20)}"
        _assert_error(draining, 503, what="model metadata while draining")
        assert isinstance(late_infer, vs.HttpResult), seen
        _assert_error(late_infer, 503, what="infer while draining")
        assert seen["exit_code"] == 0, f"{seen}\n{srv.log_tail()}"
        # http_routes.h: model ready is 503 while the server drains.
        assert isinstance(late_ready, vs.HttpResult), seen
        _assert_error(late_ready, 503, what="model ready while draining")
    finally:
        ch.close()
        srv.stop()
