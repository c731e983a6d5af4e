"""What the other end-to-end tests need; fails (never skips) when it is missing."""
import os

import harness


def test_server_binary_present():
    binary = harness.server_binary()
    assert os.path.exists(binary), (
        f"server binary not found: {binary} (build the fusion-server target, or set "
        "FUSION_SERVER_BIN)")
    assert os.access(binary, os.X_OK), f"not executable: {binary}"


def test_model_bundle_present():
    d = harness.bundle_dir()
    missing = [f for f in ("model.pt", "config.pbtxt", "vocab.txt", "golden.jsonl")
               if not os.path.exists(os.path.join(d, f))]
    assert not missing, f"model bundle {d} lacks {missing}"


def test_stubs_generate(stubs):
    assert stubs.scoring_pb2.ScoreRequest.DESCRIPTOR.fields_by_name["text"].has_presence
