"""Shapes, masking and batch invariance of the scripted fusion model."""
import pytest
import torch

from model.fusion_model import FusionModel

NUM_FEATURES, HEADS = 16, 4
LENGTHS = [7, 3, 12]  # different lengths -> padding in the batch


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = FusionModel(vocab_size=60, num_features=NUM_FEATURES)
    m.tab_encoder.feature_mean.copy_(torch.rand(NUM_FEATURES) * 100)
    m.tab_encoder.feature_std.copy_(torch.rand(NUM_FEATURES) * 50 + 1)
    return torch.jit.script(m.eval())


@pytest.fixture(scope="module")
def batch():
    gen = torch.Generator().manual_seed(1)
    length = max(LENGTHS) + 2  # every row padded, even the longest
    input_ids = torch.zeros(len(LENGTHS), length, dtype=torch.int64)
    mask = torch.zeros_like(input_ids)
    for row, n in enumerate(LENGTHS):
        input_ids[row, :n] = torch.randint(5, 60, (n,), generator=gen)
        mask[row, :n] = 1
    features = torch.rand(len(LENGTHS), NUM_FEATURES, generator=gen) * 200
    return input_ids, mask, features


def run(model, input_ids, mask, features, need_weights=True):
    with torch.no_grad():
        return model(input_ids, mask, features, need_weights)


def test_shapes(model, batch):
    input_ids, mask, features = batch
    probs, text_to_tab, tab_to_text = run(model, *batch)
    b, length = input_ids.shape
    assert probs.shape == (b, 2)
    assert text_to_tab.shape == (b, HEADS, length, NUM_FEATURES)
    assert tab_to_text.shape == (b, HEADS, NUM_FEATURES, length)
    torch.testing.assert_close(probs.sum(1), torch.ones(b))


def test_padding_gets_zero_attention(model, batch):
    _, mask, _ = batch
    _, text_to_tab, tab_to_text = run(model, *batch)
    pad = mask == 0
    assert (text_to_tab.permute(0, 2, 1, 3)[pad] == 0).all()   # padded query rows
    assert (tab_to_text.permute(0, 3, 1, 2)[pad] == 0).all()   # padded key columns


def test_attention_rows_sum_to_one(model, batch):
    _, mask, _ = batch
    _, text_to_tab, tab_to_text = run(model, *batch)
    real = mask.bool()
    row_sums = text_to_tab.sum(-1).permute(0, 2, 1)[real]      # [real tokens, heads]
    torch.testing.assert_close(row_sums, torch.ones_like(row_sums))
    torch.testing.assert_close(tab_to_text.sum(-1), torch.ones(len(LENGTHS), HEADS,
                                                               NUM_FEATURES))


def test_without_weights_returns_empty_and_same_probs(model, batch):
    probs, _, _ = run(model, *batch)
    probs_fast, text_to_tab, tab_to_text = run(model, *batch, need_weights=False)
    assert text_to_tab.numel() == 0 and tab_to_text.numel() == 0
    torch.testing.assert_close(probs_fast, probs, atol=1e-6, rtol=0)


def test_batch_equals_single(model, batch):
    input_ids, mask, features = batch
    probs, text_to_tab, tab_to_text = run(model, *batch)
    for row, n in enumerate(LENGTHS):
        p, t2f, f2t = run(model, input_ids[row:row + 1, :n], mask[row:row + 1, :n],
                          features[row:row + 1])
        torch.testing.assert_close(p, probs[row:row + 1], atol=1e-5, rtol=0)
        torch.testing.assert_close(t2f, text_to_tab[row:row + 1, :, :n], atol=1e-5, rtol=0)
        torch.testing.assert_close(f2t, tab_to_text[row:row + 1, :, :, :n], atol=1e-5, rtol=0)


def test_extreme_raw_features_stay_finite(model, batch):
    input_ids, mask, features = batch
    wild = features.clone()
    wild[0, 0] = 1e30
    probs, _, _ = run(model, input_ids, mask, wild)
    assert torch.isfinite(probs).all()
