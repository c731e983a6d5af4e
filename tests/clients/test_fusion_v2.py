"""The Open Inference Protocol (KServe v2) in the clients: `fusion-client
v2-request` (prints the v2 request an input becomes) and `fusion-bench
--protocol=v2` (drives the workload through ModelInfer / ModelStreamInfer).

Which tests need what:
* no server at all: the offline `v2-request --feature_order ...` tests and
  the flag checks of fusion-bench;
* a server that speaks the native API only: `v2-request` reading the feature
  order from the server's metadata;
* a server that answers the v2 API (ModelInfer, ModelStreamInfer and
  POST /v2/models/NAME/infer): the tests marked `needs_v2_server`. Deselect
  them with `-m "not needs_v2_server"` against an older server.
"""
import json
import os
import struct
import urllib.request

import pytest

import harness
from client_tools import run

ATOL = 1e-4
NO_SERVER = "127.0.0.1:1"  # nothing listens: the offline commands never call


def f32(x):
    """x rounded to float32, as the FEATURES tensor holds it."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def f32s(values):
    return [f32(v) for v in values]


def feature_flags(features):
    return [f"--feature={name}={value!r}" for name, value in features.items()]


def golden_with_text(golden):
    for g in golden:
        if g.text.strip():
            return g
    pytest.fail("golden.jsonl holds no request with text", pytrace=False)


def v2_request(client_bin, *args, expect=0):
    p = run([client_bin, "v2-request", *args])
    assert p.returncode == expect, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def offline_args(golden):
    order = ",".join(golden[0].features)
    return [f"--target={NO_SERVER}", "--timeout=1s", f"--feature_order={order}",
            f"--model={harness.MODEL_NAME}"]


# --- no server ---------------------------------------------------------------

def test_v2_request_offline_json(client_bin, golden):
    g = golden_with_text(golden)
    # Give the features in reverse order: FEATURES is in model order anyway.
    reversed_features = dict(reversed(list(g.features.items())))
    p = v2_request(client_bin, *offline_args(golden), f"--text={g.text}",
                   "--request_id=r7", "--priority=1", "--attention=mean",
                   *feature_flags(reversed_features))
    body = json.loads(p.stdout)
    assert list(body) == ["id", "parameters", "inputs", "outputs"]
    assert body["id"] == "r7"
    assert body["parameters"] == {"priority": 2}  # native 1 -> Triton 2
    text, features = body["inputs"]
    assert text == {"name": "TEXT", "datatype": "BYTES", "shape": [1], "data": [g.text]}
    assert list(features) == ["name", "datatype", "shape", "data"]
    assert features["name"] == "FEATURES" and features["datatype"] == "FP32"
    assert features["shape"] == [1, len(g.features)]
    assert f32s(features["data"]) == f32s(g.features.values())
    assert [o["name"] for o in body["outputs"]] == [
        "PROBABILITIES", "SCORE", "TEXT_TO_FEATURES_ATTENTION",
        "FEATURES_TO_TEXT_ATTENTION", "TOKEN_COUNT"]
    assert "/v2/models/fusion/infer" in p.stderr and "not sent" in p.stderr


def test_v2_request_offline_defaults_and_per_head(client_bin, golden):
    g = golden_with_text(golden)
    p = v2_request(client_bin, *offline_args(golden), f"--text={g.text}",
                   "--attention=per-head", *feature_flags(g.features))
    body = json.loads(p.stdout)
    assert "parameters" not in body  # priority 0: the default level
    per_head = {o["name"]: o.get("parameters") for o in body["outputs"]}
    assert per_head["TEXT_TO_FEATURES_ATTENTION"] == {"attention": "per_head"}
    assert per_head["FEATURES_TO_TEXT_ATTENTION"] == {"attention": "per_head"}
    assert per_head["SCORE"] is None
    p = v2_request(client_bin, *offline_args(golden), f"--text={g.text}",
                   *feature_flags(g.features))
    assert "outputs" not in json.loads(p.stdout)  # the server's default pair


def test_v2_request_raw_and_text_format(client_bin, golden):
    g = golden_with_text(golden)
    args = [*offline_args(golden), f"--text={g.text}", *feature_flags(g.features)]
    typed = json.loads(v2_request(client_bin, *args).stdout)
    raw = json.loads(v2_request(client_bin, *args, "--v2_raw").stdout)
    assert raw == typed  # the JSON shows raw contents decoded

    text = v2_request(client_bin, *args, "--format=text").stdout
    assert 'model_name: "fusion"' in text
    assert 'name: "FEATURES"' in text and "fp32_contents:" in text
    assert "raw_input_contents" not in text
    raw_text = v2_request(client_bin, *args, "--format=text", "--v2_raw").stdout
    assert raw_text.count("raw_input_contents:") == 2
    assert "contents {" not in raw_text and "fp32_contents" not in raw_text


def test_v2_request_refusals(client_bin, golden):
    g = golden_with_text(golden)
    features = dict(g.features)
    missing = next(iter(features))
    del features[missing]
    p = v2_request(client_bin, *offline_args(golden), f"--text={g.text}",
                   *feature_flags(features), expect=2)
    assert f"'{missing}' is missing" in p.stderr
    p = v2_request(client_bin, *offline_args(golden), "--text=x", "--feature=bogus=1",
                   expect=2)
    assert "unknown feature 'bogus'" in p.stderr
    p = v2_request(client_bin, *offline_args(golden), "--text=x", "--format=yaml",
                   expect=2)
    assert "--format" in p.stderr
    p = v2_request(client_bin, *offline_args(golden), "--text=x", "--fill_missing",
                   expect=2)
    assert "--fill_missing" in p.stderr
    p = v2_request(client_bin, *offline_args(golden), expect=2)
    assert "needs --text" in p.stderr
    # Without --feature_order the order comes from the server: unreachable.
    p = v2_request(client_bin, f"--target={NO_SERVER}", "--timeout=1s",
                   "--retries=1", "--text=x", "--feature=a=1", expect=3)
    assert "cannot reach" in p.stderr and "--feature_order" in p.stderr


def test_v2_request_input_file(client_bin, golden, tmp_path):
    path = os.path.join(harness.bundle_dir(), "golden.jsonl")
    out = tmp_path / "v2.jsonl"
    v2_request(client_bin, *offline_args(golden), f"--input={path}",
               f"--output={out}", "--attention=mean")
    # split("\n"), not splitlines(): a text may hold U+2028 or U+0085.
    lines = out.read_text(encoding="utf-8").split("\n")
    assert lines.pop() == ""
    assert len(lines) == len(golden)
    for g, line in zip(golden, lines):
        body = json.loads(line)
        assert body["id"] == g.request_id
        inputs = {t["name"]: t for t in body["inputs"]}
        # golden lines carry text and token_ids: text wins, as in the native API.
        assert inputs["TEXT"]["data"] == [g.text]
        assert "INPUT_IDS" not in inputs
        assert f32s(inputs["FEATURES"]["data"]) == f32s(g.features.values())
        assert len(body["outputs"]) == 5
    # Token ids when a line has no text.
    g = golden[0]
    line = json.dumps({"request_id": "ids", "token_ids": g.token_ids,
                       "feature_vector": g.feature_vector, "priority": 3})
    p = run([client_bin, "v2-request", *offline_args(golden), "--input=-",
             "--format=text"], input_text=line + "\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("\n") == 1
    assert 'name: "INPUT_IDS" datatype: "INT64"' in p.stdout
    assert f"shape: 1 shape: {len(g.token_ids)}" in p.stdout
    assert "int64_param: 4" in p.stdout
    # A bad line stops the conversion and names the line.
    p = run([client_bin, "v2-request", *offline_args(golden), "--input=-"],
            input_text=line + "\n{\"text\": \"x\"}\n")
    assert p.returncode == 2 and "stdin:2:" in p.stderr, p.stderr


def test_bench_protocol_flags(bench_bin):
    p = run([bench_bin, f"--target={NO_SERVER}", "--protocol=grpc"])
    assert p.returncode == 2 and "--protocol" in p.stderr
    p = run([bench_bin, f"--target={NO_SERVER}", "--protocol=v2,v2"])
    assert p.returncode == 2 and "twice" in p.stderr
    p = run([bench_bin, f"--target={NO_SERVER}", "--v2_raw"])
    assert p.returncode == 2 and "--v2_raw" in p.stderr


# --- a native server ---------------------------------------------------------

def test_v2_request_takes_the_feature_order_from_the_server(client_bin, server, golden):
    g = golden_with_text(golden)
    reversed_features = dict(reversed(list(g.features.items())))
    p = v2_request(client_bin, f"--target={server.grpc_address}", f"--text={g.text}",
                   *feature_flags(reversed_features))
    body = json.loads(p.stdout)
    assert f32s(body["inputs"][1]["data"]) == f32s(g.features.values())
    assert "/v2/models/fusion/infer" in p.stderr
    # --fill_missing sends the training mean for the features left out.
    p = v2_request(client_bin, f"--target={server.grpc_address}", "--text=x",
                   "--fill_missing", "--format=text")
    assert "using the training mean" in p.stderr
    assert p.stdout.count("fp32_contents:") == len(g.features)


# --- a server that answers v2 ------------------------------------------------

def bench(bench_bin, tmp_path, *args, expect=0, timeout=90):
    out = tmp_path / "bench.json"
    p = run([bench_bin, f"--json={out}", *args], timeout=timeout)
    assert p.returncode == expect, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p, json.loads(out.read_text())


def check_v2_run(r):
    assert r["protocol"] == "v2"
    assert r["throughput_rps"] > 0 and r["completed"] > 0
    values = [r["latency_us"][k] for k in ["p50", "p90", "p99", "p999", "max"]]
    assert all(v > 0 for v in values) and values == sorted(values), r["latency_us"]
    assert r["server"] == {"mean_batch_size": None, "mean_queue_us": None,
                           "mean_compute_us": None, "mean_total_us": None}
    assert r["errors"] == {}


@pytest.mark.needs_v2_server
def test_bench_native_and_v2_side_by_side(bench_bin, server, tmp_path):
    p, report = bench(bench_bin, tmp_path, f"--target={server.grpc_address}",
                      "--protocol=native,v2", "--concurrency=4", "--duration=2s",
                      "--warmup=500ms", "--attention_fraction=0.2")
    config = report["config"]
    assert config["protocol"] == "native,v2" and config["v2_contents"] == "typed"
    assert "v2" in config["server_timing"]
    native, v2 = report["runs"]
    assert native["protocol"] == "native" and native["errors"] == {}
    assert native["server"]["mean_batch_size"] >= 1
    check_v2_run(v2)
    assert set(native) == set(v2)  # the same schema
    assert report["totals"]["errors"] == {}
    assert report["totals"]["ok"] == report["totals"]["requests"] > 0
    assert "      v2 " in p.stdout  # the v2 row of the table


@pytest.mark.needs_v2_server
def test_bench_v2_stream_open_loop_raw(bench_bin, server, tmp_path):
    _, report = bench(bench_bin, tmp_path, f"--target={server.grpc_address}",
                      "--protocol=v2", "--v2_raw", "--mode=stream", "--streams=2",
                      "--rate=60", "--duration=3s", "--warmup=500ms",
                      "--synthetic_lengths=uniform:8:48", "--attention_fraction=0.1")
    assert report["config"]["protocol"] == "v2"
    assert report["config"]["v2_contents"] == "raw"
    assert report["config"]["mode"] == "stream"
    r = report["runs"][0]
    check_v2_run(r)
    assert 90 <= r["latency_us"]["count"] <= 300, r["latency_us"]


@pytest.mark.needs_v2_server
@pytest.mark.parametrize("mode", ["unary", "stream"])
def test_bench_v2_counts_failures(bench_bin, server, tmp_path, mode):
    # An unknown model: every request fails (stream: error_message set).
    p, report = bench(bench_bin, tmp_path, f"--target={server.grpc_address}",
                      "--protocol=v2", f"--mode={mode}", "--model=nope",
                      "--concurrency=2", "--duration=1s", "--warmup=200ms",
                      expect=1)
    totals = report["totals"]
    assert totals["ok"] == 0 and totals["requests"] > 0
    assert sum(totals["errors"].values()) == totals["requests"]
    if mode == "unary":
        assert list(totals["errors"]) == ["NOT_FOUND"]
    assert "default model" in p.stderr  # the feature order's source


@pytest.mark.needs_v2_server
def test_v2_request_output_scores_like_golden_over_rest(client_bin, server, golden):
    g = golden_with_text(golden)
    p = v2_request(client_bin, f"--target={server.grpc_address}", f"--text={g.text}",
                   *feature_flags(g.features))
    request = urllib.request.Request(
        f"http://{server.http_address}/v2/models/{harness.MODEL_NAME}/infer",
        data=p.stdout.encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert abs(outputs["SCORE"]["data"][0] - g.score) <= ATOL
    assert harness.max_abs_diff(outputs["PROBABILITIES"]["data"], g.probabilities) <= ATOL
