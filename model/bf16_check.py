"""Whether a bundle's model.pt may serve in bfloat16: scores synthetic data
the model never trained on (its own seed) in fp32 and in bf16 the way the
C++ runtime runs it (Linear and MultiheadAttention weights cast to bf16,
autocast on), and compares probabilities and ROC-AUC.

export.py runs it and pins the bundle to fp32 (runtime.precision) when bf16
is off; the server checks bf16 against golden.jsonl again at load.

  /usr/bin/python3 -m model.bf16_check [--bundle models/fusion/1]
"""
import argparse
import os
import time
from dataclasses import dataclass
from typing import List

import numpy as np
import torch

from model import synthetic_data, wordpiece
from model.config_proto import REPO_ROOT
from model.train import MAX_TOKENS, collate, roc_auc

MAX_PROBABILITY_DELTA = 0.01  # as the server's runtime::kMaxBf16ProbabilityDelta
MAX_AUC_DELTA = 0.002
EVAL_SEED = 1_000_003  # not a training seed: data the model never saw
# Modules whose parameters only feed matmuls (bf16_autocast.cc casts the same).
MATMUL_MODULES = ("Linear", "NonDynamicallyQuantizableLinear", "MultiheadAttention")


@dataclass
class Bf16Check:
    samples: int
    max_probability_delta: float
    auc_fp32: float
    auc_bf16: float

    @property
    def ok(self) -> bool:
        return (self.max_probability_delta <= MAX_PROBABILITY_DELTA
                and abs(self.auc_bf16 - self.auc_fp32) <= MAX_AUC_DELTA)

    def summary(self) -> str:
        return (f"bf16 vs fp32 on {self.samples} unseen samples: max |dprob| "
                f"{self.max_probability_delta:.4f} (limit {MAX_PROBABILITY_DELTA}), "
                f"ROC-AUC {self.auc_bf16:.4f} vs {self.auc_fp32:.4f} (limit "
                f"{MAX_AUC_DELTA}): {'ok' if self.ok else 'OFF'}")


def cast_matmul_weights_to_bf16(module: torch.jit.ScriptModule) -> None:
    """In place; the module then runs only under CPU autocast."""
    for sub in module.modules():
        if sub.original_name in MATMUL_MODULES:
            for param in sub.parameters(recurse=False):
                param.data = param.data.bfloat16()


def _probabilities(model, ids: List[List[int]], features: np.ndarray, bf16: bool,
                   batch_size: int) -> np.ndarray:
    out = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(ids), batch_size):
            input_ids, mask = collate(ids[start:start + batch_size])
            feats = torch.from_numpy(features[start:start + batch_size])
            probs, _, _ = model(input_ids, mask, feats, False)
            out.append(probs.float().numpy())
    return np.concatenate(out)


def check_bf16(model_path: str, vocab_path: str, samples: int = 4000,
               batch_size: int = 64) -> Bf16Check:
    data = synthetic_data.generate(samples, EVAL_SEED)
    tokenizer = wordpiece.WordPieceTokenizer.from_file(vocab_path)
    ids = [tokenizer.encode(text, MAX_TOKENS) for text in data.texts]
    fp32_model = torch.jit.load(model_path).eval()
    bf16_model = torch.jit.load(model_path).eval()
    cast_matmul_weights_to_bf16(bf16_model)
    fp32 = _probabilities(fp32_model, ids, data.features, False, batch_size)
    bf16 = _probabilities(bf16_model, ids, data.features, True, batch_size)
    return Bf16Check(samples, float(np.abs(bf16 - fp32).max()),
                     roc_auc(data.labels, fp32[:, 1]), roc_auc(data.labels, bf16[:, 1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default=os.path.join(REPO_ROOT, "models", "fusion", "1"))
    parser.add_argument("--samples", type=int, default=4000)
    args = parser.parse_args()
    started = time.perf_counter()
    result = check_bf16(os.path.join(args.bundle, "model.pt"),
                        os.path.join(args.bundle, "vocab.txt"), args.samples)
    print(f"{result.summary()} ({time.perf_counter() - started:.1f} s)")
    raise SystemExit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
