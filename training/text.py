"""Character normalisation and vocabulary, mirrored by the TypeScript tokenizer.

Every rule maps one code point to one code point, so offsets never move.
"""

from __future__ import annotations

from pathlib import Path

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIALS = [PAD, UNK, CLS, SEP, MASK]
WHITESPACE = {"\t", "\n", "\r", "\u3000", "\u00a0", "\u2028", "\u2029", "\x0b", "\x0c"}


def fold_char(c: str) -> str:
    """Fold width and case of one character; the result is one character."""
    code = ord(c)
    if 0xFF01 <= code <= 0xFF5E:
        c = chr(code - 0xFEE0)
    elif c in WHITESPACE:
        c = " "
    lower = c.lower()
    return lower if len(lower) == 1 else c


class Vocab:
    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}
        self.unk = self.index[UNK]
        self.cls = self.index[CLS]
        self.sep = self.index[SEP]
        self.pad = self.index[PAD]
        assert self.pad == 0, "the model's bigram hashing needs [PAD] at id 0"

    def __len__(self):
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        return [self.index.get(fold_char(c), self.unk) for c in text]

    @classmethod
    def build(cls, texts, min_count: int, extra: str = ""):
        counts: dict[str, int] = {}
        for text in texts:
            for c in text:
                f = fold_char(c)
                counts[f] = counts.get(f, 0) + 1
        keep = {c for c, n in counts.items() if n >= min_count}
        keep.update(fold_char(c) for c in extra)
        keep.update(chr(c) for c in range(0x21, 0x7F) if not chr(c).isupper())
        keep.discard("\n")
        return cls(SPECIALS + sorted(keep))

    def save(self, path: Path):
        # One token per line, so a newline token cannot be stored; whitespace
        # folds to a space, which is stored as the literal line " ".
        path.write_text("".join(t + "\n" for t in self.tokens), encoding="utf-8")

    @classmethod
    def load(cls, path: Path):
        lines = path.read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return cls(lines)
