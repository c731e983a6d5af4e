"""fusion-client against a running fusion-server: health, metadata, single
requests, file scoring through ScoreStream, and the error cases."""
import json
import re

import pytest

import harness
from client_tools import run

ATOL = 1e-4


def feature_flags(features):
    return [f"--feature={name}={value!r}" for name, value in features.items()]


def golden_with_text(golden):
    for g in golden:
        if g.text.strip():
            return g
    pytest.fail("golden.jsonl holds no request with text", pytrace=False)


def test_health(client_bin, server):
    p = run([client_bin, "health", f"--target={server.grpc_address}"])
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"service": "", "status": "SERVING"}


def test_metadata_lists_the_models_features(client_bin, server, golden):
    p = run([client_bin, "metadata", f"--target={server.grpc_address}"])
    assert p.returncode == 0, p.stderr
    meta = json.loads(p.stdout)
    assert meta["name"] == harness.MODEL_NAME
    assert [f["name"] for f in meta["features"]] == list(golden[0].features)


def test_single_score_matches_golden(client_bin, server, golden):
    g = golden_with_text(golden)
    p = run([client_bin, "score", f"--target={server.grpc_address}",
             f"--text={g.text}", "--request_id=one"] + feature_flags(g.features))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["request_id"] == "one"
    assert abs(out["score"] - g.score) <= ATOL, (out["score"], g.score)
    assert harness.max_abs_diff(out["probabilities"], g.probabilities) <= ATOL
    assert out["timing"]["batch_size"] >= 1
    assert "attention" not in out


def test_single_score_per_head_attention_has_golden_shape(client_bin, server, golden):
    g = golden_with_text(golden)
    p = run([client_bin, "score", f"--target={server.grpc_address}", f"--text={g.text}",
             "--attention=per-head"] + feature_flags(g.features))
    assert p.returncode == 0, p.stderr
    att = json.loads(p.stdout)["attention"]
    assert att["tokens"] == g.tokens
    assert harness.shape_of(att["text_to_features"]) == harness.shape_of(g.text_to_features)
    assert harness.max_abs_diff(harness.flatten(att["text_to_features"]),
                                harness.flatten(g.text_to_features)) <= 1e-3


def test_show_renders_attention_table(client_bin, server, golden):
    g = golden_with_text(golden)
    p = run([client_bin, "score", f"--target={server.grpc_address}", f"--text={g.text}",
             "--show"] + feature_flags(g.features))
    assert p.returncode == 0, p.stderr
    shown = re.search(r"score (\d+\.\d{4})", p.stdout)
    assert shown, p.stdout
    assert abs(float(shown.group(1)) - g.score) <= 5e-5 + ATOL
    assert "top 3 features" in p.stdout and "heatmap" in p.stdout
    for token in g.tokens:
        assert token[:15] in p.stdout
    assert any(name in p.stdout for name in g.features)


def write_requests(path, golden, n):
    """n lines cycling through golden, unique ids, some asking for attention."""
    expected = []
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            g = golden[i % len(golden)]
            line = {"request_id": f"req-{i:04d}", "text": g.text, "features": g.features}
            if i % 10 == 3:
                line["attention"] = "mean"
            f.write(json.dumps(line) + "\n")
            expected.append((f"req-{i:04d}", g))
    return expected


def test_file_scoring_keeps_order_and_count(client_bin, server, golden, tmp_path):
    requests, results = tmp_path / "requests.jsonl", tmp_path / "results.jsonl"
    expected = write_requests(requests, golden, 200)
    p = run([client_bin, "score", f"--target={server.grpc_address}",
             f"--input={requests}", f"--output={results}"])
    assert p.returncode == 0, p.stderr
    lines = results.read_text().splitlines()
    assert len(lines) == len(expected)
    for line, (request_id, g) in zip(lines, expected):
        out = json.loads(line)
        assert out["request_id"] == request_id
        assert "error" not in out, out
        assert abs(out["score"] - g.score) <= ATOL, (request_id, out["score"], g.score)
    with_attention = [json.loads(l) for l in lines if "attention" in json.loads(l)]
    assert len(with_attention) == 20
    # The summary goes to stderr; no progress bar when stderr is not a TTY.
    assert "scored 200 requests" in p.stderr and "200 OK, 0 failed" in p.stderr
    assert "\r" not in p.stderr


def test_stdin_scoring_reports_bad_lines_in_place(client_bin, server, golden):
    g = golden_with_text(golden)
    good = json.dumps({"request_id": "good", "text": g.text, "features": g.features})
    unknown = json.dumps({"request_id": "unknown", "text": "x",
                          "features": {"no_such_feature": 1.0}})
    lines = [good, "{not json", unknown, "", good.replace('"good"', '"good2"')]
    p = run([client_bin, "score", f"--target={server.grpc_address}", "--input=-"],
            input_text="\n".join(lines) + "\n")
    assert p.returncode == 1, p.stderr  # some requests failed
    outs = [json.loads(l) for l in p.stdout.splitlines()]
    assert [o["request_id"] for o in outs] == ["good", "", "unknown", "good2"]
    assert "error" not in outs[0] and "error" not in outs[3]
    assert outs[1]["error"]["code"] == "INVALID_ARGUMENT"
    assert "line 2" in outs[1]["error"]["message"]
    assert outs[2]["error"]["code"] == "INVALID_ARGUMENT"
    assert "no_such_feature" in outs[2]["error"]["message"]
    assert "INVALID_ARGUMENT=2" in p.stderr


def test_server_down_is_a_clear_error(client_bin):
    target = f"127.0.0.1:{harness.free_port()}"  # nothing listens there
    p = run([client_bin, "score", f"--target={target}", "--text=hi",
             "--feature=amount=1"], timeout=30)
    assert p.returncode == 3
    assert f"cannot reach fusion-server at {target}" in p.stderr
    assert "gave up after 4 attempts" in p.stderr  # --retries=3 by default
    assert p.stdout == ""
    p = run([client_bin, "score", f"--target={target}", "--input=-", "--timeout=2s"],
            input_text="{}\n", timeout=30)
    assert p.returncode == 3
    assert f"cannot reach fusion-server at {target}" in p.stderr
    p = run([client_bin, "health", f"--target={target}"], timeout=30)
    assert p.returncode == 3 and "cannot reach" in p.stderr


@pytest.mark.parametrize("flag,message", [
    ("--feature=amount", "expected NAME=VALUE"),
    ("--feature=amount=12abc", "'12abc' is not a number"),
    ("--feature==5", "name before '=' is empty"),
])
def test_bad_feature_syntax_is_rejected_before_sending(client_bin, flag, message):
    target = f"127.0.0.1:{harness.free_port()}"  # never contacted
    p = run([client_bin, "score", f"--target={target}", "--text=hi", flag])
    assert p.returncode == 2
    assert message in p.stderr, p.stderr


def test_repeated_feature_is_rejected(client_bin):
    p = run([client_bin, "score", "--text=hi", "--feature=amount=1", "--feature=amount=2"])
    assert p.returncode == 2 and "given twice" in p.stderr


def test_unknown_feature_shows_the_servers_message(client_bin, server, golden):
    g = golden_with_text(golden)
    p = run([client_bin, "score", f"--target={server.grpc_address}", f"--text={g.text}",
             "--feature=no_such_feature=1"] + feature_flags(g.features))
    assert p.returncode == 1
    assert "INVALID_ARGUMENT" in p.stderr
    assert "features['no_such_feature']: unknown feature" in p.stderr


def test_usage_errors(client_bin):
    assert run([client_bin]).returncode == 2
    p = run([client_bin, "frobnicate"])
    assert p.returncode == 2 and "unknown command" in p.stderr
    p = run([client_bin, "score", "--lb=random", "--text=x", "--feature=a=1"])
    assert p.returncode == 2 and "round_robin" in p.stderr
