"""Dictionary-match features: which dictionary words cover each character.

Example:
    python3 training/lexicon.py --dict /usr/lib/python3/dist-packages/jieba/dict.txt \
        --out runs/lexicon.txt

The lexicon is built from jieba's dictionary (Debian's ``python3-jieba``),
whose lines are ``word frequency tag``. Person names (nr, nrt, nrfg),
places (ns) and organisations (nt) keep their class. Other words count as
plain words when they are frequent enough, so the model also learns word
boundaries. A character gets one bit per (class, role) pair, where
the role is the first, an inner or the last character of a matched word.
Every match counts, not one segmentation: overlapping words all set
their bits. The TypeScript engine computes the same bits
(``src/tokenizer/lexicon.ts``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from text import fold_char

CLASSES = {"nr": 0, "nrt": 0, "nrfg": 0, "ns": 1, "nt": 2}
WORD_CLASS = 3
CLASS_NAMES = ["person", "place", "org", "word"]
# Roles of a character inside a matched word.
FIRST, INNER, LAST = 0, 1, 2
BITS = len(CLASS_NAMES) * 3
MIN_LEN, MAX_LEN = 2, 10


def bit(cls: int, role: int) -> int:
    return 1 << (cls * 3 + role)


# Suffixes of administrative units: when jieba tags "X县" or "X市" as a
# place, X alone names that place too.
ADMIN_SUFFIXES = "县市区镇乡州"


def build(dict_path: Path, min_freq: int, county_places: bool = False) -> dict[str, int]:
    """Read jieba's dictionary into {folded word: class bit set}.

    With county_places, a person name X also gets the place class when
    jieba tags X plus an administrative suffix as a place. jieba tags
    hundreds of county and city names as person names (叶城, 余姚,
    克拉玛依) while it tags their full forms (叶城县) as places.
    """
    entries = []
    places = set()
    for line in dict_path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        entries.append(parts)
        if parts[2] == "ns":
            places.add(parts[0])
    words: dict[str, int] = {}
    for word, freq, tag in entries:
        if not MIN_LEN <= len(word) <= MAX_LEN:
            continue
        if county_places and CLASSES.get(tag) == 0 and any(word + s in places for s in ADMIN_SUFFIXES):
            key = "".join(fold_char(c) for c in word)
            words[key] = words.get(key, 0) | (1 << 0) | (1 << 1)
            continue
        cls = CLASSES.get(tag)
        if cls is None:
            if int(freq) < min_freq:
                continue
            cls = WORD_CLASS
        key = "".join(fold_char(c) for c in word)
        words[key] = words.get(key, 0) | (1 << cls)
    return words


def save(words: dict[str, int], path: Path) -> None:
    # One "word<TAB>classes" line each, classes as comma-separated names.
    lines = []
    for word in sorted(words):
        names = [CLASS_NAMES[c] for c in range(len(CLASS_NAMES)) if words[word] >> c & 1]
        lines.append(f"{word}\t{','.join(names)}\n")
    path.write_text("".join(lines), encoding="utf-8")


def load(path: Path) -> dict[str, int]:
    index = {name: c for c, name in enumerate(CLASS_NAMES)}
    words: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        word, sep, names = line.partition("\t")
        if not sep or not word:
            raise SystemExit(f"{path}:{number}: expected word<TAB>classes, got {line!r}")
        mask = 0
        for name in names.split(","):
            if name not in index:
                raise SystemExit(f"{path}:{number}: unknown class {name!r}; known: {', '.join(CLASS_NAMES)}")
            mask |= 1 << index[name]
        words[word] = mask
    return words


def features(text: str, words: dict[str, int]) -> list[int]:
    """Return each character's bits: one per class and role of every dictionary word covering it."""
    chars = [fold_char(c) for c in text]
    n = len(chars)
    out = [0] * n
    for i in range(n):
        for length in range(MIN_LEN, min(MAX_LEN, n - i) + 1):
            classes = words.get("".join(chars[i : i + length]))
            if not classes:
                continue
            for cls in range(len(CLASS_NAMES)):
                if not classes >> cls & 1:
                    continue
                out[i] |= bit(cls, FIRST)
                out[i + length - 1] |= bit(cls, LAST)
                for k in range(i + 1, i + length - 1):
                    out[k] |= bit(cls, INNER)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dict", type=Path, default=Path("/usr/lib/python3/dist-packages/jieba/dict.txt"),
                    help="jieba dictionary (word frequency tag per line)")
    ap.add_argument("--out", type=Path, required=True, help="lexicon file to write")
    ap.add_argument("--min-freq", type=int, default=100,
                    help="minimum frequency of a plain word (names, places and organisations are all kept)")
    ap.add_argument("--county-places", action="store_true",
                    help="also class a person name as a place when jieba tags its county or city form "
                         "(X县, X市, ...) as a place; the shipped lexicon does not")
    args = ap.parse_args()
    if not args.dict.exists():
        raise SystemExit(f"{args.dict} not found; install it with: apt-get install python3-jieba")
    words = build(args.dict, args.min_freq, args.county_places)
    save(words, args.out)
    counts = [sum(1 for m in words.values() if m >> c & 1) for c in range(len(CLASS_NAMES))]
    print(f"wrote {len(words)} words to {args.out}: "
          + ", ".join(f"{n} {name}" for n, name in zip(counts, CLASS_NAMES)))


if __name__ == "__main__":
    main()
