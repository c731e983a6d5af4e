#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets, tests/fuzz/corpus/<target>/.

Seeds come from the golden requests of the committed bundle
(models/fusion/1/golden.jsonl: texts, feature maps and vectors, token ids)
and from hand-made edge cases, each file named for what it exercises.
Deterministic; rerun after changing the protos or golden.jsonl:

    /usr/bin/python3 tests/fuzz/make_corpus.py

It rewrites only the seed files it names (seed-*); crash regressions
(crash-*, named for the bug they reproduce) are kept as they are.
"""
import importlib
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
BUNDLE = os.path.join(ROOT, "models", "fusion", "1")
# Golden rows whose text differs most (empty, whitespace, accents, CJK, emoji,
# long); every row has the 16 features.
GOLDEN_ROWS = (0, 1, 2, 3, 4, 5, 6, 7, 10, 20, 30, 40, 48, 49)


def protos():
    out = tempfile.mkdtemp(prefix="fusion-fuzz-corpus-")
    proto_dir = os.path.join(ROOT, "proto")
    subprocess.run(["protoc", "-I", proto_dir, f"--python_out={out}",
                    os.path.join(proto_dir, "fusion/v1/scoring.proto"),
                    os.path.join(proto_dir, "inference/grpc_service.proto"),
                    os.path.join(proto_dir, "inference/model_config.proto")],
                   check=True)
    sys.path.insert(0, out)
    return (importlib.import_module("fusion.v1.scoring_pb2"),
            importlib.import_module("inference.grpc_service_pb2"))


def golden():
    with open(os.path.join(BUNDLE, "golden.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [rows[i] for i in GOLDEN_ROWS]


class Writer:
    def __init__(self, target):
        self.dir = os.path.join(CORPUS, target)
        os.makedirs(self.dir, exist_ok=True)
        for name in os.listdir(self.dir):
            if name.startswith("seed-"):
                os.remove(os.path.join(self.dir, name))
        self.count = 0

    def __call__(self, name, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        with open(os.path.join(self.dir, f"seed-{name}"), "wb") as f:
            f.write(data)
        self.count += 1


def key(i):
    return f"golden{GOLDEN_ROWS[i]:02d}"


# ---- tokenizer: raw text bytes ----------------------------------------------

def tokenizer_seeds(rows):
    w = Writer("tokenizer")
    for i, row in enumerate(rows):
        w(key(i), row["text"])
    w("empty", b"")
    w("nul-bytes", b"a\x00b\x00\x00c")
    w("control-chars", b"a\x01\x07\x1b[0mb\x7f\xc2\x85c")
    w("invalid-continuation", b"ok \x80\x80 ok")
    w("invalid-truncated-3byte", b"caf\xe2\x82")
    w("invalid-overlong-slash", b"\xc0\xaf etc")
    w("invalid-surrogate", b"x \xed\xa0\x80 y")
    w("invalid-above-10ffff", b"\xf4\x90\x80\x80")
    w("invalid-f5", b"\xf5\x80\x80\x80 z")
    w("special-token-text", "[CLS] [SEP] [PAD] [UNK] ##ing")
    w("combining-only", "\u0301\u0301\u0308 e\u0301")
    w("zero-width", "pay\u200bment \u200d\ufeff card")
    w("rtl-and-bidi", "\u202eevil\u202c \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627")
    w("line-separators", "a\u2028b\u2029c\u0085d\u00a0e\u3000f")
    w("long-word", "a" * 150 + " b")
    w("many-words", " ".join(["card"] * 300))
    w("many-punctuation", "!?" * 200)
    w("turkish-and-sharp-s", "\u0130stanbul STRASSE stra\u00dfe \u212a")
    return w.count


# ---- score_request: serialized fusion.v1.ScoreRequest ------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def length_delimited(field, payload):
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def score_request_seeds(pb, rows):
    w = Writer("score_request")
    names = list(rows[0]["features"].keys())

    def by_name(row, **kw):
        r = pb.ScoreRequest(request_id=row["request_id"], text=row["text"], **kw)
        for k, v in row["features"].items():
            r.features[k] = v
        return r

    def by_ids(row, **kw):
        return pb.ScoreRequest(request_id=row["request_id"],
                               token_ids=row["token_ids"],
                               feature_vector=row["feature_vector"], **kw)

    for i, row in enumerate(rows):
        w(f"{key(i)}-text-features", by_name(row).SerializeToString())
        w(f"{key(i)}-ids-vector", by_ids(row).SerializeToString())
    row = rows[2]
    w("attention-mean", by_name(row, attention=pb.ATTENTION_MEAN).SerializeToString())
    w("attention-per-head-ids",
      by_ids(row, attention=pb.ATTENTION_PER_HEAD).SerializeToString())
    w("model-named", by_name(row, model="fusion", model_version="1").SerializeToString())
    w("priority-1", by_name(row, priority=1).SerializeToString())
    # Refused requests, one reason each.
    w("empty", b"")
    w("unknown-model", by_name(row, model="other").SerializeToString())
    w("unknown-version", by_name(row, model_version="7").SerializeToString())
    w("priority-too-high", by_name(row, priority=9).SerializeToString())
    w("attention-unknown-enum", by_name(row, attention=7).SerializeToString())
    both = by_name(row)
    both.token_ids.extend(row["token_ids"])
    w("text-and-ids", both.SerializeToString())
    neither = pb.ScoreRequest(feature_vector=row["feature_vector"])
    w("neither-text-nor-ids", neither.SerializeToString())
    w("ids-out-of-vocab",
      pb.ScoreRequest(token_ids=[2, 99999, -1, 3],
                      feature_vector=row["feature_vector"]).SerializeToString())
    w("ids-over-max-tokens",
      pb.ScoreRequest(token_ids=[2] + [5] * 200 + [3],
                      feature_vector=row["feature_vector"]).SerializeToString())
    nan_map = by_name(row)
    nan_map.features[names[0]] = math.nan
    w("feature-nan", nan_map.SerializeToString())
    inf_vector = by_ids(row)
    inf_vector.feature_vector[3] = math.inf
    w("feature-vector-inf", inf_vector.SerializeToString())
    w("feature-vector-short",
      pb.ScoreRequest(text="hi", feature_vector=[1.0, 2.0]).SerializeToString())
    unknown = by_name(row)
    unknown.features["no_such_feature"] = 1.0
    w("feature-unknown", unknown.SerializeToString())
    missing = pb.ScoreRequest(text="hi")
    missing.features[names[1]] = 1.0
    w("feature-missing-required", missing.SerializeToString())
    map_and_vector = by_name(row)
    map_and_vector.feature_vector.extend(row["feature_vector"])
    w("features-and-vector", map_and_vector.SerializeToString())
    # Wire-level damage: text not UTF-8 (proto3 forbids it), cut short,
    # a length that runs past the end, an unknown field.
    base = pb.ScoreRequest(feature_vector=row["feature_vector"]).SerializeToString()
    w("text-invalid-utf8", base + length_delimited(4, b"caf\xc3"))
    full = by_name(row).SerializeToString()
    w("truncated", full[: len(full) // 2])
    w("length-past-end", varint(4 << 3 | 2) + varint(1000) + b"abc")
    w("unknown-field", full + length_delimited(99, b"extra"))
    return w.count


# ---- model_infer: serialized inference.ModelInferRequest ----------------------

def features_tensor(v2, rows, raw):
    t = v2.ModelInferRequest.InferInputTensor(
        name="FEATURES", datatype="FP32", shape=[len(rows), len(rows[0]["feature_vector"])])
    values = [x for r in rows for x in r["feature_vector"]]
    if raw:
        return t, struct.pack(f"<{len(values)}f", *values)
    t.contents.fp32_contents.extend(values)
    return t, None


def text_tensor(v2, rows, raw, shape=None):
    texts = [r["text"].encode("utf-8") for r in rows]
    t = v2.ModelInferRequest.InferInputTensor(
        name="TEXT", datatype="BYTES", shape=shape or [len(rows)])
    if raw:
        return t, b"".join(struct.pack("<I", len(s)) + s for s in texts)
    t.contents.bytes_contents.extend(texts)
    return t, None


def ids_tensors(v2, rows, datatype, raw, mask):
    length = max(len(r["token_ids"]) for r in rows)
    ids = [r["token_ids"] + [0] * (length - len(r["token_ids"])) for r in rows]
    masks = [[1] * len(r["token_ids"]) + [0] * (length - len(r["token_ids"])) for r in rows]
    out = []
    for name, values in (("INPUT_IDS", ids), ("ATTENTION_MASK", masks))[: 2 if mask else 1]:
        t = v2.ModelInferRequest.InferInputTensor(
            name=name, datatype=datatype, shape=[len(rows), length])
        flat = [x for row in values for x in row]
        if raw:
            out.append((t, struct.pack(f"<{len(flat)}{'q' if datatype == 'INT64' else 'i'}", *flat)))
        else:
            (t.contents.int64_contents if datatype == "INT64" else t.contents.int_contents).extend(flat)
            out.append((t, None))
    return out


def infer_request(v2, tensors, outputs=(), **kw):
    r = v2.ModelInferRequest(model_name="fusion", **kw)
    for t, raw in tensors:
        r.inputs.append(t)
        if raw is not None:
            r.raw_input_contents.append(raw)
    for name, params in outputs:
        o = r.outputs.add(name=name)
        for k, v in params.items():
            o.parameters[k].string_param = v
    return r


def model_infer_seeds(v2, rows):
    w = Writer("model_infer")
    two, one = rows[2:4], rows[4:5]

    def put(name, request):
        w(name, request.SerializeToString())

    put("text-typed", infer_request(v2, [text_tensor(v2, two, False), features_tensor(v2, two, False)], id="r1"))
    put("text-raw", infer_request(v2, [text_tensor(v2, two, True), features_tensor(v2, two, True)]))
    put("text-b1", infer_request(v2, [text_tensor(v2, one, False, [1, 1]), features_tensor(v2, one, False)]))
    put("golden-batch", infer_request(v2, [text_tensor(v2, rows, False), features_tensor(v2, rows, False)]))
    put("ids-int64-mask", infer_request(v2, ids_tensors(v2, two, "INT64", False, True) + [features_tensor(v2, two, False)]))
    put("ids-int32-raw", infer_request(v2, ids_tensors(v2, two, "INT32", True, False) + [features_tensor(v2, two, True)]))
    attention = [("TEXT_TO_FEATURES_ATTENTION", {"attention": "per_head"}),
                 ("FEATURES_TO_TEXT_ATTENTION", {}), ("TOKEN_COUNT", {}),
                 ("PROBABILITIES", {}), ("SCORE", {})]
    put("attention-outputs", infer_request(v2, [text_tensor(v2, two, False), features_tensor(v2, two, False)], attention))
    put("attention-outputs-raw", infer_request(v2, ids_tensors(v2, two, "INT64", True, True) + [features_tensor(v2, two, True)], attention[:3]))
    params = infer_request(v2, [text_tensor(v2, one, False), features_tensor(v2, one, False)])
    params.parameters["priority"].int64_param = 2
    params.parameters["timeout"].uint64_param = 5000000
    params.parameters["ignored"].string_param = "x"
    put("parameters", params)
    # Refused requests, one reason each.
    put("empty", v2.ModelInferRequest())
    timeout0 = infer_request(v2, [text_tensor(v2, one, False), features_tensor(v2, one, False)])
    timeout0.parameters["timeout"].int64_param = 0
    put("timeout-zero", timeout0)
    bad_priority = infer_request(v2, [text_tensor(v2, one, False), features_tensor(v2, one, False)])
    bad_priority.parameters["priority"].string_param = "high"
    put("priority-string", bad_priority)
    put("unknown-model", infer_request(v2, [text_tensor(v2, one, False), features_tensor(v2, one, False)], model_version="9"))
    put("unknown-output", infer_request(v2, [text_tensor(v2, one, False), features_tensor(v2, one, False)], [("LOGITS", {})]))
    put("token-count-alone", infer_request(v2, [text_tensor(v2, one, False), features_tensor(v2, one, False)], [("TOKEN_COUNT", {})]))
    put("text-and-ids", infer_request(v2, [text_tensor(v2, one, False)] + ids_tensors(v2, one, "INT64", False, False) + [features_tensor(v2, one, False)]))
    put("no-features", infer_request(v2, [text_tensor(v2, one, False)]))
    t, _ = features_tensor(v2, two, False)
    t.shape[:] = [2, 15]
    put("features-wrong-width", infer_request(v2, [text_tensor(v2, two, False), (t, None)]))
    t, _ = text_tensor(v2, one, False)
    t.shape[:] = [-1]
    put("negative-dim", infer_request(v2, [(t, None), features_tensor(v2, one, False)]))
    t, _ = text_tensor(v2, one, False)
    t.shape[:] = [1 << 40, 1 << 40]
    put("huge-shape", infer_request(v2, [(t, None), features_tensor(v2, one, False)]))
    t, _ = text_tensor(v2, one, False)
    t.datatype = "FP16"
    put("datatype-fp16", infer_request(v2, [(t, None), features_tensor(v2, one, False)]))
    put("raw-count-mismatch", infer_request(v2, [text_tensor(v2, one, True), features_tensor(v2, one, False)]))
    t, raw = text_tensor(v2, one, True)
    put("raw-bytes-cut", infer_request(v2, [(t, raw[:-3]), features_tensor(v2, one, True)]))
    many = [rows[0]] * 65
    put("too-many-rows", infer_request(v2, [text_tensor(v2, many, False), features_tensor(v2, many, False)]))
    t, _ = features_tensor(v2, one, False)
    t.contents.fp32_contents[0] = math.nan
    put("feature-nan", infer_request(v2, [text_tensor(v2, one, False), (t, None)]))
    return w.count


# ---- http_infer: HTTP/JSON bodies ("#<header>\n" first for binary data) -----

def http_infer_seeds(rows):
    w = Writer("http_infer")
    two = rows[2:4]
    features = [r["feature_vector"] for r in two]
    text = {"name": "TEXT", "datatype": "BYTES", "shape": [2], "data": [r["text"] for r in two]}
    feats = {"name": "FEATURES", "datatype": "FP32", "shape": [2, 16], "data": features}

    def put(name, body, binary=b""):
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if not isinstance(body, (bytes, str)) else (
            body.encode("utf-8") if isinstance(body, str) else body)
        if binary:
            data = f"#{len(data)}\n".encode() + data + binary
        w(name, data)

    put("text-nested", {"id": "r1", "inputs": [text, feats]})
    put("text-flat", {"inputs": [text, dict(feats, data=[x for f in features for x in f])]})
    length = max(len(r["token_ids"]) for r in two)
    ids = [r["token_ids"] + [0] * (length - len(r["token_ids"])) for r in two]
    mask = [[1] * len(r["token_ids"]) + [0] * (length - len(r["token_ids"])) for r in two]
    put("ids-mask", {"inputs": [
        {"name": "INPUT_IDS", "datatype": "INT64", "shape": [2, length], "data": ids},
        {"name": "ATTENTION_MASK", "datatype": "INT64", "shape": [2, length], "data": mask}, feats],
        "outputs": [{"name": "TEXT_TO_FEATURES_ATTENTION", "parameters": {"attention": "per_head"}},
                    {"name": "TOKEN_COUNT"}, {"name": "SCORE", "parameters": {"binary_data": True}}]})
    put("parameters", {"parameters": {"priority": 1, "timeout": 5000000, "binary_data_output": True},
                       "inputs": [text, feats]})
    feature_bytes = struct.pack("<32f", *[x for f in features for x in f])
    put("binary-features", {"inputs": [text, {"name": "FEATURES", "datatype": "FP32", "shape": [2, 16],
                                              "parameters": {"binary_data_size": len(feature_bytes)}}]},
        feature_bytes)
    texts = b"".join(struct.pack("<I", len(r["text"].encode())) + r["text"].encode() for r in two)
    put("binary-text-and-features", {"inputs": [
        {"name": "TEXT", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": len(texts)}},
        {"name": "FEATURES", "datatype": "FP32", "shape": [2, 16],
         "parameters": {"binary_data_size": len(feature_bytes)}}]}, texts + feature_bytes)
    # Refused bodies, one reason each.
    put("empty", b"")
    put("not-json", "{\"inputs\": [")
    put("json-array", [1, 2])
    put("number-too-big", '{"inputs": [{"name": "FEATURES", "datatype": "FP32", '
        '"shape": [1], "data": [1e400]}]}')
    put("deep-nesting", "[" * 5000 + "]" * 5000)
    put("data-too-deep", {"inputs": [dict(text, shape=[1, 1, 1, 1, 1, 1, 1, 1, 1, 1], data=[[[[[[[[[["a"]]]]]]]]]])]})
    put("shape-mismatch", {"inputs": [text, dict(feats, shape=[2, 3])]})
    put("wrong-element-type", {"inputs": [text, dict(feats, data=[["x"] * 16] * 2)]})
    put("bool-tensor", {"inputs": [{"name": "TEXT", "datatype": "BOOL", "shape": [1], "data": [True]}, feats]})
    put("fp16-as-json", {"inputs": [text, dict(feats, datatype="FP16")]})
    put("parameter-null", {"parameters": {"x": None}, "inputs": [text, feats]})
    put("shared-memory", {"inputs": [dict(text, parameters={"shared_memory_region": "r"}), feats]})
    put("classification", {"inputs": [text, feats], "outputs": [{"name": "SCORE", "parameters": {"classification": 2}}]})
    w("header-not-a-number", b"#12x\n{}")
    w("header-zero", b"#0\n{}")
    w("header-past-body", b"#99\n{}")
    no_data = {k: v for k, v in feats.items() if k != "data"}
    put("binary-size-past-end", {"inputs": [text, dict(no_data, parameters={"binary_data_size": 9999})]},
        b"\0" * 8)
    w("bytes-after-binary", b"#2\n{}trailing")
    return w.count


# ---- model_config: config.pbtxt ---------------------------------------------

def model_config_seeds():
    w = Writer("model_config")
    with open(os.path.join(BUNDLE, "config.pbtxt"), encoding="utf-8") as f:
        real = f.read()
    w("fusion-bundle", real)
    minimal = ('name: "m" version: 1 classes: "a" classes: "b" positive_class: 1 '
               'max_tokens: 16 attention_heads: 2 features { name: "x" }\n')
    w("minimal", minimal)
    w("batching-full", minimal + 'batching { max_batch_size: 32 max_queue_delay_us: 500 '
      'preferred_batch_sizes: 8 preferred_batch_sizes: 32 length_bucket_edges: 8 '
      'length_bucket_edges: 16 max_queue_size: 10 priority_levels: 3 instance_count: 2 '
      'default_timeout_us: 100000 merge_cost_tokens: 12.5 pipelining: PIPELINING_ON }\n'
      'runtime { intra_op_threads: 2 interop_threads: 1 warmup_iterations: 0 }\n'
      'version_policy { latest { num_versions: 2 } }\n'
      'tokenizer { truncation: TRUNCATION_REJECT max_chars_per_word: 5 }\n')
    w("empty", "")
    w("not-pbtxt", "{ \"name\": \"m\" }")
    w("unknown-field", minimal + "no_such_field: 3\n")
    w("duplicate-feature", minimal + 'features { name: "x" }\n')
    w("one-class", minimal.replace('classes: "b" ', ""))
    w("negative-delay", minimal + "batching { max_queue_delay_us: -1 }\n")
    w("edges-not-increasing", minimal + "batching { length_bucket_edges: 8 length_bucket_edges: 4 }\n")
    w("preferred-over-max", minimal + "batching { max_batch_size: 4 preferred_batch_sizes: 8 }\n")
    w("merge-cost-nan", minimal + "batching { merge_cost_tokens: nan }\n")
    w("platform-other", minimal + 'platform: "onnx"\n')
    w("cut-in-string", minimal + 'description: "unterminated')
    return w.count


def main():
    scoring_pb2, v2 = protos()
    rows = golden()
    counts = {
        "tokenizer": tokenizer_seeds(rows),
        "score_request": score_request_seeds(scoring_pb2, rows),
        "model_infer": model_infer_seeds(v2, rows),
        "http_infer": http_infer_seeds(rows),
        "model_config": model_config_seeds(),
    }
    for target, n in counts.items():
        print(f"{target}: {n} seeds")


if __name__ == "__main__":
    main()
