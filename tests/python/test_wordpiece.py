"""The reference tokenizer: each step of the algorithm in model/wordpiece.py."""
import pytest

from model import wordpiece
from model.wordpiece import CLS, SEP, UNK, WordPieceTokenizer, basic_tokenize

VOCAB = wordpiece.SPECIAL_TOKENS + [
    "hello", "world", "cafe", "naive", "zurich", "東", "京", "!", ",", ".", "$",
    "un", "##want", "##ed", "want", "##s", "x", "##x", "gift", "card", "istanbul"]


@pytest.fixture(scope="module")
def tok():
    return WordPieceTokenizer({t: i for i, t in enumerate(VOCAB)})


@pytest.mark.parametrize("text, pieces", [
    ("Hello WORLD", ["hello", "world"]),                       # lowercase
    ("Café naïve ZÜRICH", ["cafe", "naive", "zurich"]),         # strip accents
    ("Cafe\u0301", ["cafe"]),                                  # combining mark
    ("hello,world!", ["hello", ",", "world", "!"]),             # punctuation
    ("東京hello", ["東", "京", "hello"]),                        # CJK spacing
    ("hel\x00lo\u200b wor\x07ld\ufffd", ["hello", "world"]),    # control chars
    ("tab\there\nnew\u00a0line\u2028x", ["[UNK]"] * 4 + ["x"]),  # whitespace kinds
    ("unwanted wants", ["un", "##want", "##ed", "want", "##s"]),  # ## pieces
    ("unknown", [UNK]),                                        # no match at all
    ("helloz", [UNK]),                                         # partial match -> one UNK
    ("İstanbul", ["istanbul"]),                                # dotted capital I
    ("gift card $", ["gift", "card", "$"]),
])
def test_tokenize(tok, text, pieces):
    assert tok.tokenize(text) == pieces


@pytest.mark.parametrize("text, words", [
    ("ΟΔΟΣ", ["οδος"]),                   # Final_Sigma, as Python's str.lower()
    ("ΣΑ", ["σα"]),
    ("$5 €5 a¿b", ["$", "5", "€5", "a", "¿", "b"]),  # ASCII range vs category P
    ("[SEP]", ["[", "sep", "]"]),          # special tokens are not honoured
    ("한", ["\u1112\u1161\u11ab"]),         # NFD splits Hangul into jamo
    ("ＡＢ", ["ａｂ"]),                      # no NFKC: fullwidth stays fullwidth
    ("a\u0301\u0301", ["a"]),
    ("\u0301", []),                         # word of marks only vanishes
])
def test_basic_tokenize(text, words):
    assert basic_tokenize(text) == words


def test_max_chars_per_word(tok):
    assert tok.tokenize("x" * 100) == ["x"] + ["##x"] * 99
    assert tok.tokenize("x" * 101) == [UNK]


def test_encode_truncates_and_wraps(tok):
    tokens = tok.encode_tokens("hello " * 200, max_tokens=10)
    assert tokens == [CLS] + ["hello"] * 8 + [SEP]
    assert tok.encode("hello world", 128) == [2, VOCAB.index("hello"), VOCAB.index("world"), 3]


@pytest.mark.parametrize("text", ["", "   ", " \t\r\n "])
def test_empty_text(tok, text):
    assert tok.encode_tokens(text, 128) == [CLS, SEP]


def test_build_vocab_is_deterministic_and_ordered(tmp_path):
    corpus = ["Gift card for Zoë", "gift cards!", "wire transfer 東京", "transfers"] * 20
    vocab = wordpiece.build_vocab(corpus, min_suffix_count=5)
    assert vocab == wordpiece.build_vocab(corpus, min_suffix_count=5)
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(vocab) == len(set(vocab))
    assert {"gift", "card", "##e", "東", "##東", "!"} <= set(vocab)
    path = tmp_path / "vocab.txt"
    wordpiece.write_vocab(vocab, str(path))
    assert wordpiece.load_vocab(str(path)) == {t: i for i, t in enumerate(vocab)}
