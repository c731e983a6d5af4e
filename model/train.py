"""Trains the fusion model on synthetic data, on 2 CPU threads, seeded.

  /usr/bin/python3 -m model.train --samples 20000 --epochs 4 [--checkpoint P]

Prints per-epoch training loss and held-out ROC-AUC, and the total time.
"""
import argparse
import math
import time
from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from model import synthetic_data, wordpiece
from model.fusion_model import FusionModel

MAX_TOKENS = 128
TEST_FRACTION = 0.2


@dataclass
class TrainResult:
    model: FusionModel
    vocab: List[str]
    aucs: List[float] = field(default_factory=list)
    seconds: float = 0.0


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney rank statistic; tied scores share their average rank."""
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    start = 0
    while start < len(scores):
        end = start
        while end + 1 < len(scores) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    positives = int(labels.sum())
    negatives = len(labels) - positives
    rank_sum = ranks[labels == 1].sum()
    return float((rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives))


def collate(token_ids: Sequence[List[int]]) -> Tuple[Tensor, Tensor]:
    """Pads to the longest sequence with [PAD]=0; mask 1 = real token."""
    length = max(len(ids) for ids in token_ids)
    input_ids = torch.zeros(len(token_ids), length, dtype=torch.int64)
    mask = torch.zeros(len(token_ids), length, dtype=torch.int64)
    for row, ids in enumerate(token_ids):
        input_ids[row, :len(ids)] = torch.tensor(ids, dtype=torch.int64)
        mask[row, :len(ids)] = 1
    return input_ids, mask


def predict(model: FusionModel, token_ids: List[List[int]], features: np.ndarray,
            batch_size: int = 512) -> np.ndarray:
    """Fraud probability per row."""
    model.eval()
    scores = []
    with torch.no_grad():
        for start in range(0, len(token_ids), batch_size):
            input_ids, mask = collate(token_ids[start:start + batch_size])
            feats = torch.from_numpy(features[start:start + batch_size])
            probs, _, _ = model(input_ids, mask, feats, False)
            scores.append(probs[:, 1].numpy())
    return np.concatenate(scores)


def train(samples: int = 20000, epochs: int = 4, seed: int = 0, batch_size: int = 64,
          lr: float = 2e-3, threads: int = 2, log=print) -> TrainResult:
    """Generates data, builds the vocab from the training split, trains, and
    reports held-out AUC after every epoch."""
    started = time.perf_counter()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    train_set, test_set = synthetic_data.generate(samples, seed).split(TEST_FRACTION)
    vocab = wordpiece.build_vocab(train_set.texts)
    tokenizer = wordpiece.WordPieceTokenizer({t: i for i, t in enumerate(vocab)})
    train_ids = [tokenizer.encode(t, MAX_TOKENS) for t in train_set.texts]
    test_ids = [tokenizer.encode(t, MAX_TOKENS) for t in test_set.texts]
    log(f"data: {len(train_ids)} train / {len(test_ids)} held-out, "
        f"positive rate {train_set.labels.mean():.3f}, vocab {len(vocab)}")

    model = FusionModel(len(vocab), len(synthetic_data.FEATURE_NAMES), MAX_TOKENS)
    stats = train_set.features.astype(np.float64)
    model.tab_encoder.feature_mean.copy_(torch.from_numpy(stats.mean(0)))
    model.tab_encoder.feature_std.copy_(torch.from_numpy(np.maximum(stats.std(0), 1e-6)))

    steps_per_epoch = math.ceil(len(train_ids) / batch_size)
    total_steps, warmup = epochs * steps_per_epoch, max(1, steps_per_epoch // 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    # Linear warm-up, then cosine decay to zero.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(
        (s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * s / total_steps))))
    shuffler = torch.Generator().manual_seed(seed)
    labels = torch.from_numpy(train_set.labels)
    result = TrainResult(model, vocab)
    for epoch in range(1, epochs + 1):
        model.train()
        epoch_start, loss_sum = time.perf_counter(), 0.0
        order = torch.randperm(len(train_ids), generator=shuffler).tolist()
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            input_ids, mask = collate([train_ids[i] for i in idx])
            feats = torch.from_numpy(train_set.features[idx])
            logits, _, _ = model.logits(input_ids, mask, feats, False)
            loss = torch.nn.functional.cross_entropy(logits, labels[idx])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(idx)
        auc = roc_auc(test_set.labels, predict(model, test_ids, test_set.features))
        result.aucs.append(auc)
        log(f"epoch {epoch}/{epochs}: loss {loss_sum / len(order):.4f}  "
            f"held-out AUC {auc:.4f}  ({time.perf_counter() - epoch_start:.1f} s)")
    model.eval()
    result.seconds = time.perf_counter() - started
    log(f"training done: held-out AUC {result.aucs[-1]:.4f} in {result.seconds:.1f} s")
    return result


def save_checkpoint(result: TrainResult, path: str) -> None:
    torch.save({"state_dict": result.model.state_dict(), "vocab": result.vocab,
                "aucs": result.aucs}, path)


def load_checkpoint(path: str) -> TrainResult:
    saved = torch.load(path)
    model = FusionModel(len(saved["vocab"]), len(synthetic_data.FEATURE_NAMES), MAX_TOKENS)
    model.load_state_dict(saved["state_dict"])
    return TrainResult(model.eval(), saved["vocab"], saved["aucs"])


def add_training_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", type=int, default=20000,
                        help="synthetic samples, 20%% held out")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_training_flags(parser)
    parser.add_argument("--checkpoint", help="where to save the trained weights + vocab")
    args = parser.parse_args()
    result = train(args.samples, args.epochs, args.seed, threads=args.threads)
    if args.checkpoint:
        save_checkpoint(result, args.checkpoint)


if __name__ == "__main__":
    main()
