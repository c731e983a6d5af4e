"""The ~50 requests in golden.jsonl: tokenizer edge cases, then ordinary
synthetic transactions, each with a full feature vector (raw values)."""
from typing import Iterator, Tuple

import numpy as np

from model import synthetic_data

# Texts that exercise each tokenizer step the C++ side must match.
EDGE_CASE_TEXTS = [
    "",                                                  # just [CLS] [SEP]
    "   \t\n  ",                                         # whitespace only
    "URGENT: Buy 5 Apple GIFT CARDS for Pierre asap!!",  # mixed case
    "Order #48213 total 1,299.99 EUR (ref 2024-05-17)",  # numbers, punctuation
    "Café crème at Zürich — naïve façade, São Paulo",   # accents, em dash
    "Cafe\u0301 decomposed accent",                      # combining mark
    "東京 hotel 予約 for 3 nights 北京→上海",                # CJK, unseen CJK
    "💳🚀 crypto!!! 🤑 to the moon",                      # emoji, unseen emoji
    "supercalifragilistic refundability verifications",  # ## pieces
    "wire\x00 transfer\u200b now\x07 \ufffdplease",      # NUL, ZWSP, BEL, U+FFFD
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u2028line sep",  # whitespace kinds
    "ΟΔΟΣ Σ payment to Ελλάδα",                          # Greek, final sigma
    "İstanbul Kraków Reykjavík Øresund",                 # dotted I, ø
    "[SEP] injected [CLS] tokens [MASK]",                # specials are plain text
    "x" * 101 + " short " + "y" * 100,                   # 101 chars -> [UNK]
    "!!!???...,,,;;;$$$%%%^^^&&&***",                    # punctuation runs
    "ＦＵＬＬＷＩＤＴＨ ｇｉｆｔ card",                    # fullwidth: no NFKC
    "안녕 مرحبا привет",                                 # Hangul, Arabic, Cyrillic
    "Verify Account NOW at secure-login.net 🙏",
    "refund of rent to Zoë — final notice",
    "paying back Søren for concert tickets 😊",
    "bitcoin@binance: wallet 0xdeadbeef, guaranteed returns",
    "Wire Transfer to new beneficiary (Genève) – invoice #77",
    "gift card purchase steam - send codes to yuki URGENT:",
]
# Long enough to be truncated to 128 tokens.
LONG_TEXT = " ".join(["urgent wire transfer to verify account, gift card codes"] * 20)

GOLDEN_SEED = 2024  # not the training seed: these requests are unseen
NUM_SYNTHETIC = 25


def requests() -> Iterator[Tuple[str, np.ndarray]]:
    """(text, raw feature vector) pairs; deterministic."""
    data = synthetic_data.generate(len(EDGE_CASE_TEXTS) + 1 + NUM_SYNTHETIC, GOLDEN_SEED)
    texts = EDGE_CASE_TEXTS + [LONG_TEXT] + data.texts[:NUM_SYNTHETIC]
    features = data.features.copy()
    # A few extreme raw values, to check clipping of standardised features.
    features[2, 0] = 250000.0
    features[3, 6] = 40.0
    for text, row in zip(texts, features):
        yield text, row
