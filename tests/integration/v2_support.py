"""Helpers and fixtures for the Open Inference Protocol (KServe v2 / Triton)
tests: test_v2_grpc.py, test_v2_http.py, test_v2_mixed_load.py.

- Stubs for proto/inference (compiled with the system protoc, `-I proto`,
  as harness.generate_stubs does for proto/fusion).
- One logical request (`V2Request`: inputs with flat Python data, requested
  outputs, parameters), built from golden.jsonl requests, and its three wire
  forms: a gRPC ModelInferRequest (typed contents or raw_input_contents), a
  KServe v2 JSON body (flat or nested `data`), and Triton's binary tensor
  data extension (JSON header + little-endian tensors). Each response form
  decodes back to {name: Output(datatype, shape, flat data)}.
- An HTTP client on urllib, and an encoder/decoder for the binary
  extension written from the published extension's description, not from
  the server's code.
- Checks of v2 outputs against the native API's answers (fusion.v1 Score)
  for the same inputs.

The tensor contract is server/api/v2/inference_core.h:
  inputs   TEXT BYTES [B] or [B,1] | INPUT_IDS INT64|INT32 [B,L] (+ optional
           ATTENTION_MASK, same type and shape); FEATURES FP32 [B,F]
  outputs  PROBABILITIES FP32 [B,C], SCORE FP32 [B] by default;
           TEXT_TO_FEATURES_ATTENTION [B,L,F] / FEATURES_TO_TEXT_ATTENTION
           [B,F,L] (attention="per_head": [B,H,L,F] / [B,H,F,L]), padded to
           the longest row, with TOKEN_COUNT INT32 [B] -- only when named.

Imported by name from the test modules (tests/integration is on sys.path
when pytest collects it; conftest.py puts tests/e2e there for harness).
"""
import contextlib
import importlib
import json
import os
import re
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import grpc
import pytest

import harness

# Scores and attention of the v2 API against the native API for the same
# inputs (same model, same arithmetic; only the batch around them differs).
TOL_NATIVE = 1e-5
# Against golden.jsonl, as tests/e2e/test_scoring.py.
TOL_GOLDEN = 1e-4
RPC_TIMEOUT_S = 60
HTTP_TIMEOUT_S = 60
# Polls for conditions (statistics settling, a server draining): generous,
# this machine has 2 cores shared with other work.
POLL_TIMEOUT_S = 20

TEXT, INPUT_IDS, ATTENTION_MASK, FEATURES = "TEXT", "INPUT_IDS", "ATTENTION_MASK", "FEATURES"
PROBABILITIES, SCORE = "PROBABILITIES", "SCORE"
T2F, F2T, TOKEN_COUNT = ("TEXT_TO_FEATURES_ATTENTION", "FEATURES_TO_TEXT_ATTENTION",
                         "TOKEN_COUNT")
ATTENTION_OUTPUTS = (PROBABILITIES, SCORE, T2F, F2T, TOKEN_COUNT)
PAD_ID = 0  # [PAD], the first line of vocab.txt


# --- stubs ------------------------------------------------------------------

class V2Stubs:
    def __init__(self, pb2, pb2_grpc, config_pb2, out_dir):
        self.pb2 = pb2            # inference.grpc_service_pb2
        self.pb2_grpc = pb2_grpc  # inference.grpc_service_pb2_grpc
        self.config_pb2 = config_pb2  # inference.model_config_pb2
        self.out_dir = out_dir


_V2_STUBS: Optional[V2Stubs] = None


def generate_v2_stubs(out_dir: str) -> V2Stubs:
    """Compiles proto/inference/*.proto with the system protoc (once per
    process) and imports inference.grpc_service_pb2 / _pb2_grpc."""
    global _V2_STUBS
    if _V2_STUBS is not None:
        return _V2_STUBS
    protos = [os.path.join(harness.PROTO_DIR, "inference", p)
              for p in ("grpc_service.proto", "model_config.proto")]
    for p in protos:
        if not os.path.exists(p):
            raise harness.HarnessError(f"missing {os.path.relpath(p, harness.REPO_ROOT)}")
    os.makedirs(out_dir, exist_ok=True)
    harness._protoc(["-I", harness.PROTO_DIR, f"--python_out={out_dir}",
                     f"--grpc_out={out_dir}",
                     f"--plugin=protoc-gen-grpc={harness.GRPC_PYTHON_PLUGIN}"] + protos)
    if out_dir not in sys.path:
        sys.path.insert(0, out_dir)
    pb2 = importlib.import_module("inference.grpc_service_pb2")
    pb2_grpc = importlib.import_module("inference.grpc_service_pb2_grpc")
    config_pb2 = importlib.import_module("inference.model_config_pb2")
    _V2_STUBS = V2Stubs(pb2, pb2_grpc, config_pb2, out_dir)
    return _V2_STUBS


# --- the logical request ------------------------------------------------------

@dataclass
class Tensor:
    name: str
    datatype: str
    shape: List[int]
    data: list  # flat, row-major; BYTES elements as bytes


@dataclass
class V2Request:
    inputs: List[Tensor]
    outputs: List[str] = field(default_factory=list)  # empty: the server's default
    output_params: Dict[str, dict] = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    id: str = ""
    model: str = harness.MODEL_NAME
    version: str = ""

    def input(self, name: str) -> Tensor:
        return next(t for t in self.inputs if t.name == name)


def text_tensor(texts: Sequence[str], two_d: bool = False) -> Tensor:
    data = [t.encode("utf-8") if isinstance(t, str) else t for t in texts]
    return Tensor(TEXT, "BYTES", [len(data), 1] if two_d else [len(data)], data)


def features_tensor(vectors: Sequence[Sequence[float]]) -> Tensor:
    F = len(vectors[0]) if vectors else 0
    return Tensor(FEATURES, "FP32", [len(vectors), F], [float(x) for v in vectors for x in v])


def ids_tensors(rows: Sequence[Sequence[int]], datatype: str = "INT64",
                mask: bool = False, pad_to: Optional[int] = None,
                pad_id: int = PAD_ID) -> List[Tensor]:
    """INPUT_IDS [B,L] (rows padded with pad_id to the longest, or pad_to),
    and with `mask` an ATTENTION_MASK of the same type and shape (1 on real
    ids, 0 on padding)."""
    L = max([len(r) for r in rows] + [pad_to or 0])
    ids, m = [], []
    for r in rows:
        if len(r) < L and not mask:
            raise ValueError("rows of different lengths need a mask")
        ids += list(r) + [pad_id] * (L - len(r))
        m += [1] * len(r) + [0] * (L - len(r))
    out = [Tensor(INPUT_IDS, datatype, [len(rows), L], ids)]
    if mask:
        out.append(Tensor(ATTENTION_MASK, datatype, [len(rows), L], m))
    return out


def request_from_golden(goldens: Sequence[harness.Golden], *, by_ids: bool = False,
                        ids_type: str = "INT64", mask: bool = False,
                        text_2d: bool = False, outputs: Sequence[str] = (),
                        per_head: bool = False, id: str = "", **kw) -> V2Request:
    """The golden requests as one v2 request of B = len(goldens) rows."""
    if by_ids:
        inputs = ids_tensors([g.token_ids for g in goldens], ids_type, mask=mask)
    else:
        inputs = [text_tensor([g.text for g in goldens], two_d=text_2d)]
    inputs.append(features_tensor([g.feature_vector for g in goldens]))
    req = V2Request(inputs=inputs, outputs=list(outputs), id=id, **kw)
    if per_head:
        for name in (T2F, F2T):
            req.output_params[name] = {"attention": "per_head"}
    return req


# --- gRPC form ----------------------------------------------------------------

_TYPED_FIELD = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
    "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
    "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}
_STRUCT = {"BOOL": "?", "INT8": "b", "INT16": "h", "INT32": "i", "INT64": "q",
           "UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q",
           "FP32": "f", "FP64": "d"}


def encode_raw(datatype: str, data: list) -> bytes:
    """Little-endian; a BYTES element is a 4-byte LE length and its bytes."""
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(e)) + e for e in data)
    return struct.pack("<%d%s" % (len(data), _STRUCT[datatype]), *data)


def decode_raw(datatype: str, raw: bytes) -> list:
    if datatype == "BYTES":
        out, i = [], 0
        while i < len(raw):
            if i + 4 > len(raw):
                raise ValueError(f"BYTES raw data cut inside a length at {i}")
            (n,) = struct.unpack_from("<I", raw, i)
            i += 4
            if i + n > len(raw):
                raise ValueError(f"BYTES element of {n} bytes runs past the data")
            out.append(raw[i:i + n])
            i += n
        return out
    size = struct.calcsize("<" + _STRUCT[datatype])
    if len(raw) % size:
        raise ValueError(f"{datatype} raw data of {len(raw)} bytes is no multiple of {size}")
    return list(struct.unpack("<%d%s" % (len(raw) // size, _STRUCT[datatype]), raw))


def set_param(param, value) -> None:
    if isinstance(value, bool):
        param.bool_param = value
    elif isinstance(value, int):
        param.int64_param = value
    elif isinstance(value, float):
        param.double_param = value
    elif isinstance(value, str):
        param.string_param = value
    else:
        raise TypeError(f"parameter value {value!r}")


def to_grpc(v2: V2Stubs, req: V2Request, raw: bool = False):
    """A ModelInferRequest: typed contents, or every input's data in
    raw_input_contents (in input order) and no contents."""
    m = v2.pb2.ModelInferRequest(model_name=req.model, model_version=req.version, id=req.id)
    for k, v in req.parameters.items():
        set_param(m.parameters[k], v)
    for t in req.inputs:
        inp = m.inputs.add(name=t.name, datatype=t.datatype, shape=t.shape)
        if raw:
            m.raw_input_contents.append(encode_raw(t.datatype, t.data))
        else:
            getattr(inp.contents, _TYPED_FIELD[t.datatype]).extend(t.data)
    for name in req.outputs:
        out = m.outputs.add(name=name)
        for k, v in req.output_params.get(name, {}).items():
            set_param(out.parameters[k], v)
    return m


@dataclass
class Output:
    datatype: str
    shape: List[int]
    data: list


def param_value(p):
    which = p.WhichOneof("parameter_choice")
    return getattr(p, which) if which else None


def outputs_of_grpc(resp) -> Tuple[Dict[str, Output], bool]:
    """({name: Output}, whether the data came in raw_output_contents)."""
    raw = len(resp.raw_output_contents) > 0
    if raw and len(resp.raw_output_contents) != len(resp.outputs):
        raise AssertionError(f"{len(resp.raw_output_contents)} raw_output_contents for "
                             f"{len(resp.outputs)} outputs")
    out = {}
    for i, o in enumerate(resp.outputs):
        if raw:
            if o.HasField("contents") and o.contents.ByteSize():
                raise AssertionError(f"{o.name}: both contents and raw_output_contents")
            data = decode_raw(o.datatype, resp.raw_output_contents[i])
        else:
            data = list(getattr(o.contents, _TYPED_FIELD[o.datatype]))
        out[o.name] = Output(o.datatype, list(o.shape), data)
    return out, raw


# --- JSON form (KServe v2 REST) ----------------------------------------------

def nest(flat: list, shape: List[int]):
    if len(shape) <= 1:
        return list(flat)
    step = len(flat) // shape[0] if shape[0] else 0
    return [nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def _json_data(t: Tensor) -> list:
    if t.datatype == "BYTES":
        return [e.decode("utf-8") for e in t.data]
    return list(t.data)


def to_json(req: V2Request, nested: bool = False) -> dict:
    body = {"inputs": []}
    if req.id:
        body["id"] = req.id
    if req.parameters:
        body["parameters"] = dict(req.parameters)
    for t in req.inputs:
        data = _json_data(t)
        body["inputs"].append({"name": t.name, "shape": list(t.shape), "datatype": t.datatype,
                               "data": nest(data, t.shape) if nested else data})
    if req.outputs:
        body["outputs"] = []
        for name in req.outputs:
            o = {"name": name}
            if req.output_params.get(name):
                o["parameters"] = dict(req.output_params[name])
            body["outputs"].append(o)
    return body


def flatten_json(x) -> list:
    if isinstance(x, list):
        out = []
        for e in x:
            out.extend(flatten_json(e))
        return out
    return [x]


def outputs_of_json(body: dict) -> Dict[str, Output]:
    out = {}
    for o in body["outputs"]:
        out[o["name"]] = Output(o["datatype"], list(o["shape"]), flatten_json(o["data"]))
    return out


# --- Triton's binary tensor data extension -----------------------------------
# Request: the JSON header first, its length in the Inference-Header-Content-
# Length header; each input whose "parameters" hold "binary_data_size": n has
# its data (little-endian, BYTES as 4-byte LE length + bytes) in the next n
# bytes after the header, in input order. Outputs asked with
# "parameters": {"binary_data": true} come back the same way: the response's
# JSON header (length in Inference-Header-Content-Length) lists them with
# "binary_data_size", their bytes follow in output order.

def to_binary(req: V2Request, binary_inputs: bool = True, binary_outputs: bool = True,
              json_inputs: Sequence[str] = ()) -> Tuple[bytes, dict]:
    """(body, headers). Inputs named in json_inputs stay JSON `data`."""
    header = to_json(req)
    blobs = []
    for t, j in zip(req.inputs, header["inputs"]):
        if binary_inputs and t.name not in json_inputs:
            blob = encode_raw(t.datatype, t.data)
            del j["data"]
            j.setdefault("parameters", {})["binary_data_size"] = len(blob)
            blobs.append(blob)
    if binary_outputs:
        names = req.outputs or [PROBABILITIES, SCORE]
        header["outputs"] = []
        for name in names:
            params = dict(req.output_params.get(name, {}))
            params["binary_data"] = True
            header["outputs"].append({"name": name, "parameters": params})
    head = json.dumps(header).encode("utf-8")
    return head + b"".join(blobs), {
        "Inference-Header-Content-Length": str(len(head)),
        "Content-Type": "application/octet-stream"}


def decode_binary_response(headers: Dict[str, str], body: bytes) -> Tuple[dict, Dict[str, Output]]:
    """(the JSON header, {name: Output}) of a response that may carry binary
    outputs; outputs without binary_data_size keep their JSON data."""
    n = headers.get("inference-header-content-length")
    if n is None:
        head, rest = json.loads(body), b""
    else:
        n = int(n)
        if n > len(body):
            raise AssertionError(f"Inference-Header-Content-Length {n} > body {len(body)}")
        head, rest = json.loads(body[:n]), body[n:]
    out, offset = {}, 0
    for o in head["outputs"]:
        size = (o.get("parameters") or {}).get("binary_data_size")
        if size is None:
            out[o["name"]] = Output(o["datatype"], list(o["shape"]), flatten_json(o["data"]))
            continue
        if "data" in o:
            raise AssertionError(f"{o['name']}: both data and binary_data_size")
        blob = rest[offset:offset + size]
        if len(blob) != size:
            raise AssertionError(f"{o['name']}: binary_data_size {size}, "
                                 f"{len(blob)} bytes left in the body")
        out[o["name"]] = Output(o["datatype"], list(o["shape"]), decode_raw(o["datatype"], blob))
        offset += size
    if offset != len(rest):
        raise AssertionError(f"{len(rest) - offset} bytes after the last binary output")
    return head, out


# --- HTTP (urllib only) -------------------------------------------------------

@dataclass
class HttpResult:
    status: int
    headers: Dict[str, str]  # lower-case names
    body: bytes

    def json(self):
        return json.loads(self.body)

    def error(self) -> str:
        """The "error" of an {"error": "..."} body ('' when absent)."""
        try:
            d = json.loads(self.body)
        except ValueError:
            return ""
        return d.get("error", "") if isinstance(d, dict) else ""


def http(method: str, url: str, body: Optional[bytes] = None,
         headers: Optional[Dict[str, str]] = None,
         timeout: float = HTTP_TIMEOUT_S) -> HttpResult:
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return HttpResult(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as e:
        return HttpResult(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


def http_get(base: str, path: str, **kw) -> HttpResult:
    return http("GET", f"http://{base}{path}", **kw)


def http_post_json(base: str, path: str, obj, **kw) -> HttpResult:
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode("utf-8")
    return http("POST", f"http://{base}{path}", body,
                {"Content-Type": "application/json"}, **kw)


def infer_path(model: str = harness.MODEL_NAME, version: str = "") -> str:
    return f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"


def http_infer(base: str, req: V2Request, *, nested: bool = False,
               timeout: float = HTTP_TIMEOUT_S) -> Tuple[HttpResult, Optional[Dict[str, Output]]]:
    r = http_post_json(base, infer_path(req.model, req.version), to_json(req, nested),
                       timeout=timeout)
    return r, (outputs_of_json(r.json()) if r.status == 200 else None)


def http_infer_binary(base: str, req: V2Request, *, binary_inputs: bool = True,
                      binary_outputs: bool = True, json_inputs: Sequence[str] = (),
                      timeout: float = HTTP_TIMEOUT_S):
    body, headers = to_binary(req, binary_inputs, binary_outputs, json_inputs)
    r = http("POST", f"http://{base}{infer_path(req.model, req.version)}", body, headers,
             timeout=timeout)
    if r.status != 200:
        return r, None, None
    head, outs = decode_binary_response(r.headers, r.body)
    return r, head, outs


# --- checks against the native API ---------------------------------------------

class Native:
    """The native API's answers (fusion.v1 Score, text + features by name) for
    golden requests, per attention mode, cached."""

    def __init__(self, stubs, stub):
        self.stubs, self.stub = stubs, stub
        self._cache = {}
        self._lock = threading.Lock()

    def get(self, g: harness.Golden, attention: int = 0):
        key = (g.request_id, attention)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        resp = self.stub.Score(harness.request_from_golden(self.stubs, g, attention=attention),
                               timeout=RPC_TIMEOUT_S)
        with self._lock:
            self._cache[key] = resp
        return resp


def check_outputs(outs: Dict[str, Output], goldens: Sequence[harness.Golden], native: Native,
                  *, names: Sequence[str] = (PROBABILITIES, SCORE),
                  attention: Optional[str] = None, n_classes: int = 2, n_features: int = 16,
                  heads: int = 4, tag: str = "") -> List[str]:
    """Problems of a v2 answer for `goldens` (row i = goldens[i]): exactly the
    outputs `names`, their datatypes and shapes, scores within TOL_NATIVE of
    the native API's and TOL_GOLDEN of golden.jsonl, and with
    attention="mean"|"per_head" the attention tensors against the native
    API's ATTENTION_MEAN / ATTENTION_PER_HEAD (zero padding past TOKEN_COUNT)."""
    pb = native.stubs.scoring_pb2
    B, C, F, H = len(goldens), n_classes, n_features, heads
    errs = []
    if sorted(outs) != sorted(names):
        errs.append(f"{tag}outputs {sorted(outs)}, expected {sorted(names)}")
    mode = {None: pb.ATTENTION_NONE, "mean": pb.ATTENTION_MEAN,
            "per_head": pb.ATTENTION_PER_HEAD}[attention]
    natives = [native.get(g, mode) for g in goldens]

    def expect(name, datatype, shape):
        o = outs.get(name)
        if o is None:
            return None
        if o.datatype != datatype:
            errs.append(f"{tag}{name}: datatype {o.datatype}, expected {datatype}")
        if o.shape != shape:
            errs.append(f"{tag}{name}: shape {o.shape}, expected {shape}")
            return None
        n = 1
        for d in shape:
            n *= d
        if len(o.data) != n:
            errs.append(f"{tag}{name}: {len(o.data)} elements for shape {shape}")
            return None
        return o.data

    probs = expect(PROBABILITIES, "FP32", [B, C])
    score = expect(SCORE, "FP32", [B])
    for i, (g, n) in enumerate(zip(goldens, natives)):
        rt = f"{tag}row {i} ({g.request_id}): "
        if probs is not None:
            row = probs[i * C:(i + 1) * C]
            d = harness.max_abs_diff(row, n.probabilities)
            if d > TOL_NATIVE:
                errs.append(f"{rt}probabilities {row} vs native {list(n.probabilities)} "
                            f"(max diff {d:.2e})")
            d = harness.max_abs_diff(row, g.probabilities)
            if d > TOL_GOLDEN:
                errs.append(f"{rt}probabilities {row} vs golden {g.probabilities}")
        if score is not None:
            if abs(score[i] - n.score) > TOL_NATIVE:
                errs.append(f"{rt}score {score[i]} vs native {n.score} "
                            f"(diff {abs(score[i] - n.score):.2e})")
            if abs(score[i] - g.score) > TOL_GOLDEN:
                errs.append(f"{rt}score {score[i]} vs golden {g.score}")
    if attention is None:
        return errs

    lens = [len(n.attention.tokens) for n in natives]
    Lmax = max(lens)
    counts = expect(TOKEN_COUNT, "INT32", [B])
    if counts is not None and list(counts) != lens:
        errs.append(f"{tag}TOKEN_COUNT {list(counts)}, native token counts {lens}")
    ph = attention == "per_head"
    tf = expect(T2F, "FP32", [B, H, Lmax, F] if ph else [B, Lmax, F])
    ft = expect(F2T, "FP32", [B, H, F, Lmax] if ph else [B, F, Lmax])
    for i, n in enumerate(natives):
        L = lens[i]
        rt = f"{tag}row {i} ({goldens[i].request_id}, L={L}): "
        nat_tf, nat_ft = list(n.attention.text_to_features), list(n.attention.features_to_text)
        hs = H if ph else 1
        if tf is not None:
            got, pad = [], []
            base = i * hs * Lmax * F
            for h in range(hs):
                for l in range(Lmax):
                    seg = tf[base + (h * Lmax + l) * F: base + (h * Lmax + l + 1) * F]
                    (got if l < L else pad).extend(seg)
            d = harness.max_abs_diff(got, nat_tf)
            if d > TOL_NATIVE:
                errs.append(f"{rt}{T2F} vs native: {len(got)} vs {len(nat_tf)} values, "
                            f"max diff {d:.2e}")
            if any(x != 0.0 for x in pad):
                errs.append(f"{rt}{T2F}: padding past TOKEN_COUNT not zero")
        if ft is not None:
            got, pad = [], []
            base = i * hs * F * Lmax
            for h in range(hs):
                for f in range(F):
                    seg = ft[base + (h * F + f) * Lmax: base + (h * F + f + 1) * Lmax]
                    got.extend(seg[:L])
                    pad.extend(seg[L:])
            d = harness.max_abs_diff(got, nat_ft)
            if d > TOL_NATIVE:
                errs.append(f"{rt}{F2T} vs native: {len(got)} vs {len(nat_ft)} values, "
                            f"max diff {d:.2e}")
            if any(x != 0.0 for x in pad):
                errs.append(f"{rt}{F2T}: padding past TOKEN_COUNT not zero")
    return errs


def assert_no_problems(errs: List[str], what: str = "") -> None:
    assert not errs, f"{what}{len(errs)} problems:\n" + "\n".join(errs[:30])


def names_any(message: str, needles: Sequence[str]) -> bool:
    m = (message or "").lower()
    return any(n.lower() in m for n in needles)


def names_row(message: str, row: int) -> bool:
    """The message names row `row` (the number stands alone)."""
    return re.search(r"(?<![0-9.])%d(?![0-9.])" % row, message or "") is not None


# --- statistics ---------------------------------------------------------------

def grpc_stats(v2: V2Stubs, v2_stub, name: str = harness.MODEL_NAME, version: str = ""):
    resp = v2_stub.ModelStatistics(v2.pb2.ModelStatisticsRequest(name=name, version=version),
                                   timeout=RPC_TIMEOUT_S)
    return resp


def stats_figures(ms) -> Dict[str, int]:
    """The figures of one ModelStatistics (gRPC message) as a flat dict."""
    s = ms.inference_stats
    d = {"inference_count": ms.inference_count, "execution_count": ms.execution_count,
         "last_inference": ms.last_inference}
    for k in ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output"):
        d[f"{k}.count"] = getattr(s, k).count
        d[f"{k}.ns"] = getattr(s, k).ns
    rows = batches = 0
    for b in ms.batch_stats:
        rows += b.batch_size * b.compute_infer.count
        batches += b.compute_infer.count
    d["batch_stats.rows"] = rows
    d["batch_stats.batches"] = batches
    return d


def stats_figures_json(ms: dict) -> Dict[str, int]:
    """The same from the HTTP stats JSON (numbers, or strings as proto3's
    JSON mapping writes 64-bit integers)."""
    def num(x):
        return int(x) if x is not None else 0

    def get(d, *names):
        for n in names:
            if n in d:
                return d[n]
        return None

    s = get(ms, "inference_stats", "inferenceStats") or {}
    d = {"inference_count": num(get(ms, "inference_count", "inferenceCount")),
         "execution_count": num(get(ms, "execution_count", "executionCount")),
         "last_inference": num(get(ms, "last_inference", "lastInference"))}
    for k, camel in (("success", "success"), ("fail", "fail"), ("queue", "queue"),
                     ("compute_input", "computeInput"), ("compute_infer", "computeInfer"),
                     ("compute_output", "computeOutput")):
        v = get(s, k, camel) or {}
        d[f"{k}.count"] = num(v.get("count"))
        d[f"{k}.ns"] = num(v.get("ns"))
    rows = batches = 0
    for b in get(ms, "batch_stats", "batchStats") or []:
        n = num((get(b, "compute_infer", "computeInfer") or {}).get("count"))
        rows += num(get(b, "batch_size", "batchSize")) * n
        batches += n
    d["batch_stats.rows"] = rows
    d["batch_stats.batches"] = batches
    return d


def delta(after: Dict[str, int], before: Dict[str, int]) -> Dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


def poll(fn, ok, timeout: float = POLL_TIMEOUT_S, interval: float = 0.1):
    """Calls fn() until ok(value) or timeout; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if ok(v) or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def settled(fn, timeout: float = POLL_TIMEOUT_S):
    """fn() once two reads 0.3 s apart agree (nothing still being counted)."""
    prev = fn()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        cur = fn()
        if cur == prev:
            return cur
        prev = cur
    return prev


# --- servers and fixtures -------------------------------------------------------

def start_server(tmp_dir: str, extra_args: Optional[List[str]] = None) -> harness.ServerProcess:
    srv = harness.ServerProcess(log_dir=tmp_dir, extra_args=extra_args)
    harness.call_or_fail(srv.start)
    return srv


def open_channel(srv: harness.ServerProcess):
    ch = grpc.insecure_channel(srv.grpc_address, options=[
        ("grpc.max_receive_message_length", 64 << 20),
        ("grpc.max_send_message_length", 64 << 20)])
    try:
        grpc.channel_ready_future(ch).result(timeout=20)
    except grpc.FutureTimeoutError:
        pytest.fail(f"gRPC channel to {srv.grpc_address} not ready in 20 s\n"
                    f"--- log tail ---\n{srv.log_tail()}", pytrace=False)
    return ch


_REPORTED = set()


@pytest.fixture(scope="module", autouse=True)
def v2_observations(request):
    """Prints this module's harness.observe figures at its end (the
    integration conftest has no summary hook), straight to the terminal,
    and appends them as JSON lines to $FUSION_V2_OBSERVATIONS when set."""
    yield
    new = {k: v for k, v in harness.OBSERVATIONS.items() if k not in _REPORTED}
    _REPORTED.update(new)
    if not new:
        return
    path = os.environ.get("FUSION_V2_OBSERVATIONS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            for k, v in new.items():
                f.write(json.dumps({"module": request.module.__name__, "key": k,
                                    "value": v}, default=str) + "\n")
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if tr is None:
        return
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        tr.write_line("")
        tr.write_sep("-", f"observations: {request.module.__name__}")
        for k, v in new.items():
            tr.write_line(f"{k}: {v}")


@pytest.fixture(scope="session")
def v2(tmp_path_factory):
    return harness.call_or_fail(generate_v2_stubs, str(tmp_path_factory.mktemp("v2stubs")))


@pytest.fixture(scope="session")
def model_config(stubs):
    return harness.call_or_fail(harness.load_config, stubs)


@pytest.fixture(scope="session")
def feature_names(model_config):
    return [f.name for f in model_config.features]


@pytest.fixture(scope="module")
def server(stubs, v2, tmp_path_factory):
    """One server per test module (default settings)."""
    srv = start_server(str(tmp_path_factory.mktemp("v2server")))
    yield srv
    rc = srv.stop()
    assert rc == 0, f"server exit code {rc}\n{srv.log_tail()}"


@pytest.fixture(scope="module")
def channel(server):
    ch = open_channel(server)
    yield ch
    ch.close()


@pytest.fixture(scope="module")
def v2_stub(v2, channel):
    return v2.pb2_grpc.GRPCInferenceServiceStub(channel)


@pytest.fixture(scope="module")
def native_stub(stubs, channel):
    return stubs.scoring_pb2_grpc.ScoringServiceStub(channel)


@pytest.fixture(scope="module")
def native(stubs, native_stub):
    return Native(stubs, native_stub)


def text_goldens(golden, model_config, n: int = 1) -> List[harness.Golden]:
    """Golden requests with real text that the tokenizer does not cut."""
    out = [g for g in golden if 4 <= len(g.tokens) < model_config.max_tokens]
    return out[:n]


def server_alive(srv: harness.ServerProcess) -> Optional[str]:
    """None when the process lives and /v2/health/live answers 200, else why not."""
    if srv.proc is None or srv.proc.poll() is not None:
        return f"server exited with {srv.proc.returncode if srv.proc else None}"
    try:
        r = http_get(srv.http_address, "/v2/health/live", timeout=10)
    except OSError as e:
        return f"/v2/health/live: {e}"
    return None if r.status == 200 else f"/v2/health/live answered {r.status}"
