"""GetModelMetadata against the bundle's config.pbtxt and vocab.txt."""
import math

import grpc
import pytest

import harness


def _close(a, b):
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


@pytest.mark.parametrize("model", ["", harness.MODEL_NAME])
def test_metadata(pb, stub, model_config, model):
    md = stub.GetModelMetadata(pb.GetModelMetadataRequest(model=model), timeout=10)
    assert md.name == harness.MODEL_NAME
    assert list(md.versions) == [harness.MODEL_VERSION]
    assert md.version == harness.MODEL_VERSION
    assert list(md.classes) == list(model_config.classes)
    assert md.positive_class == model_config.positive_class
    assert md.max_tokens == model_config.max_tokens == 128
    assert md.attention_heads == model_config.attention_heads == 4
    vocab_file = model_config.tokenizer.vocab_file or "vocab.txt"
    assert md.vocab_size == harness.vocab_size(vocab_file=vocab_file)
    assert md.device == "cpu"
    assert md.batching.max_batch_size == (model_config.batching.max_batch_size or 64) == 64
    if model_config.platform:
        assert md.platform == model_config.platform

    assert len(md.features) == len(model_config.features) == 16
    for got, want in zip(md.features, model_config.features):
        assert got.name == want.name
        assert got.allow_missing == want.allow_missing, want.name
        assert _close(got.default_value, want.default_value), want.name
        assert _close(got.mean, want.mean), want.name
        assert _close(got.std, want.std), want.name
        if want.description:
            assert got.description == want.description, want.name
    harness.observe("metadata_batching", str(md.batching).replace("\n", "; "))
    harness.observe("metadata_truncation", md.truncation)


def test_metadata_reports_the_batch_sizes_measured_at_load(pb, stub, server):
    """Unset in config.pbtxt, each length bucket's largest batch is measured
    at load (README, Batching): the metadata reports the sizes the log
    names; under --bucket_max_batch_sizes=off (the ASan run) every bucket
    has max_batch_size."""
    batching = stub.GetModelMetadata(pb.GetModelMetadataRequest(), timeout=10).batching
    sizes = list(batching.bucket_max_batch_sizes)
    assert len(sizes) == len(batching.length_bucket_edges) + 1, batching
    with open(server.log_path, encoding="utf-8") as f:
        logged = [line for line in f if "largest batch per length bucket" in line]
    if "--bucket_max_batch_sizes=off" in server.args:
        assert sizes == [batching.max_batch_size] * len(sizes)
        assert logged == []
        return
    assert all(1 <= size <= batching.max_batch_size for size in sizes), sizes
    # A longer bucket's rows cost more each, so its batch is never larger.
    assert sizes == sorted(sizes, reverse=True), sizes
    assert len(logged) == 1, logged
    named = [int(part.split(": ")[1]) for part in
             logged[0].split("largest batch per length bucket (")[1].split(";")[0].split(", ")]
    assert named == sizes, logged[0]


def test_metadata_explicit_version(pb, stub):
    md = stub.GetModelMetadata(pb.GetModelMetadataRequest(
        model=harness.MODEL_NAME, model_version=harness.MODEL_VERSION), timeout=10)
    assert md.version == harness.MODEL_VERSION


def test_metadata_unknown_model(pb, stub):
    with pytest.raises(grpc.RpcError) as ei:
        stub.GetModelMetadata(pb.GetModelMetadataRequest(model="nope"), timeout=10)
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND, ei.value
    assert "nope" in ei.value.details()


def test_metadata_unknown_version(pb, stub):
    with pytest.raises(grpc.RpcError) as ei:
        stub.GetModelMetadata(pb.GetModelMetadataRequest(
            model=harness.MODEL_NAME, model_version="7"), timeout=10)
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND, ei.value
    assert "7" in ei.value.details()
