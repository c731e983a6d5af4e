"""A test-only model bundle whose forward raises on a marker input.

The bundle is models/fusion/1 (its config.pbtxt, vocab.txt and golden.jsonl)
with model.pt replaced by a TorchScript wrapper around the real model.pt:

  if any feature of the batch equals MARKER_FEATURE_VALUE:
      raise RuntimeError(RAISED_MESSAGE)
  else: the real model's forward, unchanged

So every request without the marker scores exactly what golden.jsonl says
(the server's load-time golden check passes), and any batch holding a
marked request makes the forward throw, as a model with a bug on one
input would. The marker is a valid input as far as the server knows: a
finite feature value.

The wrapper is torch.jit.script of a module holding the loaded real model
(no weights of its own), saved with torch 1.13: deterministic, ~2 s.
`config_edits` lets a test change config.pbtxt (e.g. batching) in the copy.

  /usr/bin/python3 tests/integration/throwing_bundle.py OUT_DIR
"""
import os
import shutil
import sys
from typing import Callable, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

SOURCE_BUNDLE = os.path.join(REPO_ROOT, "models", "fusion", "1")
MARKER_FEATURE_VALUE = -12345.0
RAISED_MESSAGE = "poisoned input: a feature is -12345"
# What a client is told: the runtime keeps the error's last line.
CLIENT_MESSAGE = f"model forward failed: RuntimeError: {RAISED_MESSAGE}"


def _wrapper_class():
    import torch
    from torch import Tensor
    from typing import Tuple

    class RaisesOnMarker(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Tensor, attention_mask: Tensor, features: Tensor,
                    need_weights: bool) -> Tuple[Tensor, Tensor, Tensor]:
            if bool((features == -12345.0).any()):
                raise RuntimeError("poisoned input: a feature is -12345")
            return self.inner(input_ids, attention_mask, features, need_weights)

    return RaisesOnMarker


def build_throwing_bundle(out_dir: str,
                          config_edits: Optional[Callable[[object], None]] = None) -> str:
    """Writes the bundle into out_dir (created); returns out_dir.
    `config_edits(cfg)` may change the fusion.v1.ModelConfig before it is
    written."""
    import torch
    from google.protobuf import text_format

    from model.config_proto import model_config_pb2

    os.makedirs(out_dir, exist_ok=True)
    for name in ("config.pbtxt", "vocab.txt", "golden.jsonl"):
        shutil.copyfile(os.path.join(SOURCE_BUNDLE, name), os.path.join(out_dir, name))
    inner = torch.jit.load(os.path.join(SOURCE_BUNDLE, "model.pt"))
    torch.jit.script(_wrapper_class()(inner).eval()).save(os.path.join(out_dir, "model.pt"))
    if config_edits is not None:
        cfg = model_config_pb2().ModelConfig()
        path = os.path.join(out_dir, "config.pbtxt")
        with open(path, encoding="utf-8") as f:
            text_format.Parse(f.read(), cfg)
        config_edits(cfg)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text_format.MessageToString(cfg, as_utf8=True))
    return out_dir


def check_throwing_bundle(out_dir: str) -> Optional[str]:
    """None when the saved model raises on the marker and scores the first
    golden request as the real model does; else what is wrong."""
    import json

    import torch
    model = torch.jit.load(os.path.join(out_dir, "model.pt"))
    with open(os.path.join(out_dir, "golden.jsonl"), encoding="utf-8") as f:
        g = json.loads(f.readline())
    ids = torch.tensor([g["token_ids"]])
    mask = torch.ones_like(ids)
    features = torch.tensor([g["feature_vector"]], dtype=torch.float32)
    with torch.no_grad():
        probs = model(ids, mask, features, False)[0][0].tolist()
    if max(abs(a - b) for a, b in zip(probs, g["probabilities"])) > 1e-5:
        return f"scores {probs}, golden {g['probabilities']}"
    features[0, 3] = MARKER_FEATURE_VALUE
    try:
        model(ids, mask, features, False)
    except Exception as e:  # torch.jit.Error
        return None if RAISED_MESSAGE in str(e) else f"raised something else: {e}"
    return "did not raise on the marker"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    build_throwing_bundle(sys.argv[1])
    problem = check_throwing_bundle(sys.argv[1])
    print(problem or "check: ok")
    sys.exit(1 if problem else 0)
