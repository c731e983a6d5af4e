"""BERT WordPiece: the reference tokenizer and the vocab builder.

The C++ tokenizer (server/text/, utf8proc) must give the same ids as this
module. The algorithm is HuggingFace BertTokenizer's with do_lower_case=True,
tokenize_chinese_chars=True and no never_split list: text that spells a
special token, such as "[SEP]", is ordinary text here (it splits into "[",
"sep", "]"), so a client cannot inject special tokens. All lengths and
positions count Unicode code points, never bytes.

1. Clean, per code point: drop U+0000, U+FFFD and every code point whose
   general category starts with "C" (Cc, Cf, Co, Cs, Cn), except TAB, LF and
   CR; map TAB, LF, CR and categories Zs, Zl, Zp to a space. (HF maps only
   TAB/LF/CR/Zs here but later splits with Python's str.split(), which also
   splits on Zl/Zp; mapping them now gives the same tokens.)
2. CJK: put a space before and after every code point in
   U+4E00-9FFF, 3400-4DBF, 20000-2A6DF, 2A700-2B73F, 2B740-2B81F,
   2B820-2CEAF, F900-FAFF, 2F800-2FA1F.
3. Split on spaces; empty words vanish.
4. Per word: lowercase with the full Unicode mapping of Python's
   str.lower(). It differs from utf8proc_tolower in two places only:
   U+0130 (I with dot above) becomes "i" + U+0307, which step 5 turns into
   "i", the same as the simple mapping; and Final_Sigma: U+03A3 becomes
   U+03C2 (final sigma) when a cased letter precedes it in the word and
   none follows it (case-ignorable code points skipped on both sides),
   else U+03C3.
5. Per word: NFD, then drop every code point of category Mn.
6. Per word: split around punctuation; each punctuation code point becomes
   its own word. Punctuation: ASCII 33-47, 58-64, 91-96, 123-126, and every
   code point whose category starts with "P". ("$", "+", "^" count, being in
   those ASCII ranges; non-ASCII symbols such as "€" or emoji do not.)
7. WordPiece per word: longer than max_chars_per_word (100) code points ->
   "[UNK]". Otherwise greedy longest match first: from start=0, find the
   longest prefix of the rest that is in the vocab (spelled "##" + rest when
   start > 0), emit it, continue after it. If some position has no match,
   the whole word becomes a single "[UNK]" (pieces already found dropped).
8. encode(): "[CLS]", the first max_tokens-2 pieces, "[SEP]".

Unicode tables differ slightly by version (Python 3.11: Unicode 14, utf8proc
2.8: Unicode 15); only code points assigned in between can tokenize
differently.

vocab.txt: one token per line, id = line number (from 0), split on "\\n" only.
"""
import unicodedata
from collections import Counter
from typing import Dict, Iterable, List

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = [PAD, UNK, CLS, SEP, MASK]  # ids 0..4
MAX_CHARS_PER_WORD = 100

_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
               (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF),
               (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _clean(text: str) -> str:
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "\t\n\r" or cat in ("Zs", "Zl", "Zp"):
            out.append(" ")
        elif ch == "\x00" or ch == "\ufffd" or cat.startswith("C"):
            continue
        elif _is_cjk(ord(ch)):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    return "".join(out)


def _normalize_word(word: str) -> str:
    decomposed = unicodedata.normalize("NFD", word.lower())
    return "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")


def _split_punctuation(word: str) -> List[str]:
    pieces, current = [], []
    for ch in word:
        if _is_punctuation(ch):
            if current:
                pieces.append("".join(current))
                current = []
            pieces.append(ch)
        else:
            current.append(ch)
    if current:
        pieces.append("".join(current))
    return pieces


def basic_tokenize(text: str) -> List[str]:
    """Steps 1-6: the words WordPiece then splits into pieces."""
    words = []
    for word in _clean(text).split(" "):
        if word:
            words.extend(_split_punctuation(_normalize_word(word)))
    return words


def load_vocab(path: str) -> Dict[str, int]:
    with open(path, encoding="utf-8") as f:
        tokens = f.read().split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    return {token: i for i, token in enumerate(tokens)}


def write_vocab(tokens: List[str], path: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(t + "\n" for t in tokens))


class WordPieceTokenizer:
    def __init__(self, vocab: Dict[str, int]):
        self.vocab = vocab

    @classmethod
    def from_file(cls, path: str) -> "WordPieceTokenizer":
        return cls(load_vocab(path))

    def _wordpiece(self, word: str) -> List[str]:
        if len(word) > MAX_CHARS_PER_WORD:
            return [UNK]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            if end == start:
                return [UNK]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> List[str]:
        return [p for word in basic_tokenize(text) for p in self._wordpiece(word)]

    def encode_tokens(self, text: str, max_tokens: int) -> List[str]:
        return [CLS] + self.tokenize(text)[:max_tokens - 2] + [SEP]

    def encode(self, text: str, max_tokens: int) -> List[int]:
        return [self.vocab[t] for t in self.encode_tokens(text, max_tokens)]


def build_vocab(texts: Iterable[str], min_word_count: int = 2,
                max_words: int = 2000, min_suffix_count: int = 10,
                max_suffixes: int = 1000) -> List[str]:
    """Deterministic vocab from a corpus, ids in this order: the special
    tokens; every character seen, by code point; "##" + each of them;
    frequent whole words; frequent word endings as "##" pieces (so an unseen
    word like "refundable" still splits into meaningful pieces). Frequency
    ties break alphabetically."""
    words = Counter(w for text in texts for w in basic_tokenize(text))
    chars = sorted({ch for w in words for ch in w})
    suffixes: Counter = Counter()
    for w, count in words.items():
        for k in range(2, min(8, len(w) - 1) + 1):  # keep >= 1 char in front
            suffixes["##" + w[-k:]] += count

    def by_count(counter: Counter, min_count: int, limit: int) -> List[str]:
        ranked = sorted((t for t, c in counter.items() if c >= min_count),
                        key=lambda t: (-counter[t], t))
        return ranked[:limit]

    vocab = list(SPECIAL_TOKENS) + chars + ["##" + ch for ch in chars]
    seen = set(vocab)
    for token in (by_count(words, min_word_count, max_words)
                  + by_count(suffixes, min_suffix_count, max_suffixes)):
        if token not in seen:
            seen.add(token)
            vocab.append(token)
    return vocab
