"""client/python/score_example.py against a real server: the score and one
attention row per token."""
import os
import re
import subprocess

import harness

SCRIPT = os.path.join(harness.REPO_ROOT, "client", "python", "score_example.py")


def test_python_example_scores_and_prints_attention(server, golden, tmp_path):
    g = next(g for g in golden if g.text.strip() and len(g.tokens) < 20)
    args = ["/usr/bin/python3", SCRIPT, "--target", server.grpc_address,
            "--text", g.text]
    for name, value in g.features.items():
        args += ["--feature", f"{name}={value!r}"]
    # Stubs go to a fresh folder so the test sees the script generate them.
    env = dict(os.environ, TMPDIR=str(tmp_path))
    result = subprocess.run(args, capture_output=True, text=True, timeout=60,
                            env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    match = re.match(r"score (\d\.\d{4}) \(model fusion v1, batch of \d+", lines[0])
    assert match, result.stdout
    assert abs(float(match.group(1)) - g.score) <= 1e-4
    rows = lines[1:]
    assert [row.split()[0] for row in rows] == g.tokens
    # Each row names three features with their weights.
    assert all(len(re.findall(r"\w+=\d\.\d\d", row)) == 3 for row in rows), rows


def test_python_example_reports_server_errors(server, tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path))
    result = subprocess.run(
        ["/usr/bin/python3", SCRIPT, "--target", server.grpc_address,
         "--text", "hello", "--feature", "bogus=1"],
        capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr and "bogus" in result.stderr
