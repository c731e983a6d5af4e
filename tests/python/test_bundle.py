"""The committed bundle models/fusion/1/ agrees with itself: model.pt
reproduces golden.jsonl, the tokenizer reproduces its token ids, and
config.pbtxt parses and describes the model's features."""
import json
import os

import numpy as np
import pytest
import torch
from google.protobuf import text_format

from model import synthetic_data
from model.config_proto import REPO_ROOT, model_config_pb2
from model.wordpiece import WordPieceTokenizer

BUNDLE = os.path.join(REPO_ROOT, "models", "fusion", "1")


@pytest.fixture(scope="module")
def golden():
    with open(os.path.join(BUNDLE, "golden.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def scripted():
    return torch.jit.load(os.path.join(BUNDLE, "model.pt"))


@pytest.fixture(scope="module")
def config():
    with open(os.path.join(BUNDLE, "config.pbtxt"), encoding="utf-8") as f:
        return text_format.Parse(f.read(), model_config_pb2().ModelConfig())


def test_model_reproduces_golden(golden, scripted):
    assert len(golden) >= 40
    for record in golden:
        with torch.no_grad():
            probs, text_to_tab, tab_to_text = scripted(
                torch.tensor([record["token_ids"]]),
                torch.ones(1, len(record["token_ids"]), dtype=torch.int64),
                torch.tensor([record["feature_vector"]], dtype=torch.float32), True)
        rid = record["request_id"]
        np.testing.assert_allclose(probs[0].numpy(), record["probabilities"], atol=1e-5,
                                   err_msg=rid)
        assert record["score"] == record["probabilities"][1]
        np.testing.assert_allclose(text_to_tab[0].numpy(), record["text_to_features"],
                                   atol=1e-5, err_msg=rid)
        np.testing.assert_allclose(tab_to_text[0].numpy(), record["features_to_text"],
                                   atol=1e-5, err_msg=rid)


def test_tokenizer_reproduces_golden(golden, config):
    tokenizer = WordPieceTokenizer.from_file(os.path.join(BUNDLE, config.tokenizer.vocab_file))
    for record in golden:
        assert tokenizer.encode_tokens(record["text"], config.max_tokens) == record["tokens"]
        assert tokenizer.encode(record["text"], config.max_tokens) == record["token_ids"]


def test_golden_covers_edge_cases(golden):
    lengths = [len(r["token_ids"]) for r in golden]
    assert min(lengths) == 2 and max(lengths) == 128
    assert any("[UNK]" in r["tokens"] for r in golden)
    assert any(t.startswith("##") for r in golden for t in r["tokens"])
    for r in golden:
        assert list(r["features"]) == synthetic_data.FEATURE_NAMES
        assert list(r["features"].values()) == r["feature_vector"]


def test_config_matches_model(config, scripted):
    assert (config.name, config.version, config.model_file) == ("fusion", 1, "model.pt")
    assert list(config.classes) == ["legitimate", "fraud"] and config.positive_class == 1
    assert [f.name for f in config.features] == synthetic_data.FEATURE_NAMES
    mean = scripted.tab_encoder.feature_mean.numpy()
    std = scripted.tab_encoder.feature_std.numpy()
    assert len(config.features) == len(mean)
    np.testing.assert_array_equal([f.mean for f in config.features], mean)
    np.testing.assert_array_equal([f.std for f in config.features], std)
    for f in config.features:
        assert f.allow_missing == (f.name in synthetic_data.OPTIONAL_FEATURES)
        if f.allow_missing:
            assert f.default_value == f.mean
    assert config.tokenizer.max_chars_per_word == 100
    assert config.batching.max_batch_size == 64
    assert list(config.batching.length_bucket_edges) == [6, 8, 10, 12, 16, 24, 32, 64, 128]


def test_bundle_is_small():
    total = sum(os.path.getsize(os.path.join(BUNDLE, f)) for f in os.listdir(BUNDLE))
    assert total < 8 * 1024 * 1024
