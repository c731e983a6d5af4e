"""Builds a second, small model bundle for the model-repository tests.

"moderation": a message-moderation scorer with inputs and outputs unlike the
bundled payment-risk model's (models/fusion/1), so a server serving both
cannot mix them up unnoticed:

  * 5 features (fusion has 16), none of the same names, one optional;
  * 3 classes ("ok", "spam", "abuse"; fusion has 2), positive class 2;
  * 2 attention heads (fusion 4), 32 max tokens (fusion 128);
  * its own WordPiece vocab and its own batching settings.

The network is model/fusion_model.py's FusionModel, made small and left
randomly initialised from a seed (nothing is trained); its output layer is
scaled up so the probabilities move with the input. The bundle is written
the way model/export.py writes fusion's: model.pt is torch.jit.script of the
eval model, config.pbtxt a fusion.v1.ModelConfig in text format, vocab.txt
one token per line, and golden.jsonl requests scored one at a time by the
saved model.pt, in the format harness.load_golden and the server's golden
check (server/runtime/golden_file.cc) read. A few seconds on 2 CPUs.

  /usr/bin/python3 tests/integration/small_bundle.py OUT_DIR   # writes and checks a bundle
"""
import json
import os
import sys
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

NAME = "moderation"
# (name, description, mean, std, allow_missing)
FEATURES = [
    ("user_reports_30d", "Reports filed against the author in 30 days", 0.8, 1.9, False),
    ("author_account_age_hours", "Hours since the author's account was made", 4200.0, 6100.0, False),
    ("links_in_message", "Links in the message", 0.4, 0.9, False),
    ("caps_ratio", "Share of letters in upper case, 0-1", 0.12, 0.15, False),
    ("followers", "The author's followers", 310.0, 1500.0, True),
]
FEATURE_NAMES = [f[0] for f in FEATURES]
CLASSES = ["ok", "spam", "abuse"]
POSITIVE_CLASS = 2
MAX_TOKENS = 32
HEADS = 2
HIDDEN = 32
SEED = 20240521

CORPUS = [
    "click this link to win a free prize now",
    "you are an idiot and everyone hates you",
    "thanks for sharing, great photo of the lake",
    "buy cheap followers today limited offer",
    "meeting moved to three pm, see you there",
    "nobody wants you here, go away loser",
    "free crypto giveaway send one coin get two back",
    "happy birthday, hope you have a lovely day",
    "limited time offer click here for cheap watches",
    "the match last night was amazing",
    "report this account it is a scam bot",
    "check out my new song on the link below",
]
GOLDEN_TEXTS = [
    "",                                                   # [CLS] [SEP] only
    "Click this LINK to win a FREE prize NOW!!!",
    "you are an idiot",
    "Thanks for sharing, great photo of the lake :)",
    "buy cheap followers today — limited offer",
    "Meeting moved to 3pm, see you there",
    "free crypto giveaway: send 1 coin, get 2 back",
    "Happy birthday! Hope you have a lovely day",
    "unseen words like zxqv and Ünïcödé get split or become unk",
    "東京 and emoji 🙏 are not in this vocab",
    # Longer than MAX_TOKENS: truncated to [CLS] + 30 pieces + [SEP].
    " ".join(["limited time offer click here for cheap watches"] * 6),
    "report this account it is a scam bot",
]


def _config(pb2, name: str, version: int, vocab_file: str = "vocab.txt"):
    config = pb2.ModelConfig(
        name=name, version=version, platform="torchscript", model_file="model.pt",
        classes=CLASSES, positive_class=POSITIVE_CLASS, max_tokens=MAX_TOKENS,
        attention_heads=HEADS, max_message_bytes=1024 * 1024,
        description="Message moderation (test bundle): a message and 5 author/"
                    "message features; random weights, not trained.")
    from model import wordpiece
    config.tokenizer.CopyFrom(pb2.TokenizerConfig(
        vocab_file=vocab_file, lowercase=True, tokenize_cjk_chars=True,
        unk_token=wordpiece.UNK, cls_token=wordpiece.CLS, sep_token=wordpiece.SEP,
        pad_token=wordpiece.PAD, max_chars_per_word=wordpiece.MAX_CHARS_PER_WORD,
        truncation=pb2.TRUNCATION_TRUNCATE))
    for fname, description, mean, std, optional in FEATURES:
        config.features.add(name=fname, description=description, mean=mean, std=std,
                            allow_missing=optional,
                            default_value=mean if optional else 0.0)
    # Deliberately unlike fusion's (64 / 0 / none / 1024 / 2).
    config.batching.CopyFrom(pb2.BatchingConfig(
        max_batch_size=8, max_queue_delay_us=200, preferred_batch_sizes=[4],
        length_bucket_edges=[8, 16, 32], max_queue_size=256, priority_levels=1))
    config.runtime.warmup_iterations = 1
    config.runtime.precision = pb2.RuntimeConfig.PRECISION_FP32
    return config


def _round(value, digits: int = 7):
    if isinstance(value, list):
        return [_round(v, digits) for v in value]
    return float(f"{value:.{digits}g}")


def build_bundle(out_dir: str, name: str = NAME, version: int = 1,
                 seed: int = SEED) -> Dict:
    """Writes model.pt, config.pbtxt, vocab.txt and golden.jsonl into out_dir
    (created); returns {"dir", "config" (the ModelConfig), "golden" (dicts)}.
    The same seed gives the same weights."""
    import numpy as np
    import torch
    from google.protobuf import text_format

    from model import wordpiece
    from model.config_proto import model_config_pb2
    from model.fusion_model import FusionModel

    pb2 = model_config_pb2()
    os.makedirs(out_dir, exist_ok=True)
    paths = {n: os.path.join(out_dir, n)
             for n in ("model.pt", "config.pbtxt", "vocab.txt", "golden.jsonl")}

    vocab = wordpiece.build_vocab(CORPUS, min_word_count=1, min_suffix_count=2)
    wordpiece.write_vocab(vocab, paths["vocab.txt"])

    torch.manual_seed(seed)
    model = FusionModel(len(vocab), len(FEATURES), max_tokens=MAX_TOKENS, hidden=HIDDEN,
                        heads=HEADS, ffn=64, layers=1, dropout=0.0,
                        num_classes=len(CLASSES))
    with torch.no_grad():
        model.tab_encoder.feature_mean.copy_(torch.tensor([f[2] for f in FEATURES]))
        model.tab_encoder.feature_std.copy_(torch.tensor([f[3] for f in FEATURES]))
        # Random init gives near-uniform probabilities; spread them out.
        model.head[-1].weight.mul_(6.0)
    torch.jit.script(model.eval()).save(paths["model.pt"])

    config = _config(pb2, name, version)
    with open(paths["config.pbtxt"], "w", encoding="utf-8") as f:
        f.write("# Written by tests/integration/small_bundle.py.\n")
        f.write(text_format.MessageToString(config, as_utf8=True))

    # Golden answers from the saved file, exactly what the server loads.
    saved = torch.jit.load(paths["model.pt"])
    tokenizer = wordpiece.WordPieceTokenizer.from_file(paths["vocab.txt"])
    rng = np.random.default_rng(seed)
    records = []
    for i, text in enumerate(GOLDEN_TEXTS):
        raw = [max(0.0, rng.normal(mean, std)) for _, _, mean, std, _ in FEATURES]
        raw[3] = min(raw[3], 1.0)  # caps_ratio
        if i == 2:
            raw[0] = 500.0  # far outside the training range: clipped in the model
        feature_vector = [float(repr(np.float32(v))) for v in raw]
        tokens = tokenizer.encode_tokens(text, MAX_TOKENS)
        token_ids = [tokenizer.vocab[t] for t in tokens]
        with torch.no_grad():
            probs, t2f, f2t = saved(
                torch.tensor([token_ids]),
                torch.ones(1, len(token_ids), dtype=torch.int64),
                torch.tensor([feature_vector], dtype=torch.float32), True)
        p = _round(probs[0].tolist())
        records.append({
            "request_id": f"{name}-golden-{i:03d}",
            "text": text,
            "features": dict(zip(FEATURE_NAMES, feature_vector)),
            "feature_vector": feature_vector,
            "tokens": tokens,
            "token_ids": token_ids,
            "probabilities": p,
            "score": p[POSITIVE_CLASS],
            "text_to_features": _round(t2f[0].tolist()),
            "features_to_text": _round(f2t[0].tolist()),
        })
    with open(paths["golden.jsonl"], "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return {"dir": out_dir, "config": config, "golden": records}


def check_bundle(out_dir: str) -> List[str]:
    """Problems with a written bundle (empty: none): golden.jsonl is read back
    and rescored as one padded batch (as the server batches), the config
    parses and matches the model's shapes."""
    import torch
    from google.protobuf import text_format

    from model.config_proto import model_config_pb2

    problems = []
    cfg = model_config_pb2().ModelConfig()
    with open(os.path.join(out_dir, "config.pbtxt"), encoding="utf-8") as f:
        text_format.Parse(f.read(), cfg)
    with open(os.path.join(out_dir, "golden.jsonl"), encoding="utf-8") as f:
        golden = [json.loads(line) for line in f if line.strip()]
    with open(os.path.join(out_dir, "vocab.txt"), encoding="utf-8") as f:
        vocab_size = len(f.read().split("\n")) - 1
    model = torch.jit.load(os.path.join(out_dir, cfg.model_file))
    length = max(len(g["token_ids"]) for g in golden)
    ids = torch.zeros(len(golden), length, dtype=torch.int64)
    mask = torch.zeros(len(golden), length, dtype=torch.int64)
    for b, g in enumerate(golden):
        ids[b, :len(g["token_ids"])] = torch.tensor(g["token_ids"])
        mask[b, :len(g["token_ids"])] = 1
        if len(g["token_ids"]) > cfg.max_tokens:
            problems.append(f"{g['request_id']}: {len(g['token_ids'])} tokens")
        if max(g["token_ids"]) >= vocab_size:
            problems.append(f"{g['request_id']}: token id outside the vocab")
        if list(g["features"]) != [f.name for f in cfg.features]:
            problems.append(f"{g['request_id']}: features not in model order")
        if len(g["probabilities"]) != len(cfg.classes):
            problems.append(f"{g['request_id']}: {len(g['probabilities'])} probabilities")
        heads = len(g["text_to_features"])
        if heads != cfg.attention_heads:
            problems.append(f"{g['request_id']}: {heads} attention heads in golden")
    features = torch.tensor([g["feature_vector"] for g in golden], dtype=torch.float32)
    with torch.no_grad():
        probs, _, _ = model(ids, mask, features, False)
    for b, g in enumerate(golden):
        delta = max(abs(x - y) for x, y in zip(probs[b].tolist(), g["probabilities"]))
        if delta > 1e-5:
            problems.append(f"{g['request_id']}: batched {probs[b].tolist()} vs golden "
                            f"{g['probabilities']} ({delta:.2e})")
    spread = max(max(g["probabilities"]) for g in golden) - min(
        max(g["probabilities"]) for g in golden)
    if spread < 0.05:
        problems.append(f"probabilities barely move with the input (spread {spread:.3f})")
    return problems


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__)
        return 2
    info = build_bundle(argv[0])
    for n in sorted(os.listdir(argv[0])):
        print(f"wrote {os.path.join(argv[0], n)} "
              f"({os.path.getsize(os.path.join(argv[0], n))} bytes)")
    for g in info["golden"]:
        print(g["request_id"], len(g["tokens"]), "tokens", g["probabilities"])
    problems = check_bundle(argv[0])
    print("\n".join(problems) if problems else "check: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
