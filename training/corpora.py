"""Readers that turn each labelled corpus into (text, spans) examples.

Every reader returns a list of ``Example`` with spans as code-point offsets,
end exclusive, and label names from the shared Chinese schema.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

# Corpus tag -> schema label. A corpus teaches only the labels listed for it.
MSRA_LABELS = {"PER": "人物", "LOC": "地点", "ORG": "机构"}
WEIBO_LABELS = {
    "PER.NAM": "人物",
    "LOC.NAM": "地点",
    "GPE.NAM": "地点",
    "ORG.NAM": "机构",
}
RESUME_LABELS = {
    "NAME": "人物",
    "LOC": "地点",
    "ORG": "机构",
    "TITLE": "职位",
    "EDU": "学历",
    "PRO": "专业",
    "RACE": "民族",
    "CONT": "国籍",
}
CLUENER_LABELS = {
    "name": "人物",
    "position": "职位",
    "address": "地址",
    "book": "书名",
    "company": "公司",
    "game": "游戏",
    "government": "政府",
    "movie": "电影",
    "organization": "组织",
    "scene": "景点",
}
PKU_LABELS = {"nr": "人物", "ns": "地点", "nt": "机构", "t": "时间"}

CORPUS_LABELS = {
    "msra": sorted(set(MSRA_LABELS.values())),
    "weibo": sorted(set(WEIBO_LABELS.values())),
    "resume": sorted(set(RESUME_LABELS.values())),
    "cluener": sorted(set(CLUENER_LABELS.values())),
    "pku": sorted(set(PKU_LABELS.values())),
}


@dataclass
class Example:
    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)
    corpus: str = ""


def _tagged_sentences(path: Path, sep: str | None):
    """Yield lists of (char, tag) pairs; a blank line ends a sentence."""
    rows: list[tuple[str, str]] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                if rows:
                    yield rows
                rows = []
                continue
            parts = line.split(sep) if sep else line.split()
            if len(parts) < 2:
                # A bare tag means the character was whitespace.
                rows.append((" ", parts[0]))
                continue
            rows.append((parts[0], parts[-1]))
    if rows:
        yield rows


def _spans_from_tags(tags: list[str], mapping: dict[str, str]):
    """Decode BIO or BMES tags; an I- or M- without an opening tag starts a span."""
    spans = []
    start, kind = None, None

    def close(end):
        if start is not None and kind in mapping:
            spans.append((start, end, mapping[kind]))

    for i, tag in enumerate(tags):
        head, _, rest = tag.partition("-")
        if head in ("B", "S") or (head in ("I", "M", "E") and rest != kind):
            close(i)
            start, kind = i, rest
            if head == "S":
                close(i + 1)
                start, kind = None, None
            elif head == "E":
                close(i + 1)
                start, kind = None, None
        elif head in ("I", "M"):
            continue
        elif head == "E":
            close(i + 1)
            start, kind = None, None
        else:
            close(i)
            start, kind = None, None
    close(len(tags))
    return spans


def read_msra(path: Path) -> list[Example]:
    out = []
    for rows in _tagged_sentences(path, "\t"):
        text = "".join(c for c, _ in rows)
        out.append(Example(text, _spans_from_tags([t for _, t in rows], MSRA_LABELS), "msra"))
    return out


def read_weibo(path: Path) -> list[Example]:
    out = []
    for rows in _tagged_sentences(path, "\t"):
        # Each char carries its position inside its word as a trailing digit.
        chars = [c[:-1] if len(c) > 1 and c[-1].isdigit() else c for c, _ in rows]
        chars = [c if len(c) == 1 else (c[0] if c else " ") for c in chars]
        text = "".join(chars)
        out.append(Example(text, _spans_from_tags([t for _, t in rows], WEIBO_LABELS), "weibo"))
    return out


def read_resume(path: Path) -> list[Example]:
    out = []
    for rows in _tagged_sentences(path, " "):
        text = "".join(c if len(c) == 1 else c[0] for c, _ in rows)
        out.append(Example(text, _spans_from_tags([t for _, t in rows], RESUME_LABELS), "resume"))
    return out


def read_cluener(path: Path) -> list[Example]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            spans = []
            for kind, surfaces in row.get("label", {}).items():
                for positions in surfaces.values():
                    for start, end in positions:
                        spans.append((start, end + 1, CLUENER_LABELS[kind]))
            out.append(Example(row["text"], sorted(spans), "cluener"))
    return out


_PKU_TOKEN = re.compile(r"(\[?)([^\s/\[\]]+)/([A-Za-z]+)(\]([A-Za-z]+))?")


def read_pku(path: Path) -> list[Example]:
    """Read People's Daily 1998 with its word/POS tokens.

    A surname nr token joins the given-name nr token after it into one 人物,
    adjacent t tokens join into one 时间, and a bracketed compound takes the
    bracket's tag.
    """
    raw = path.read_bytes().decode("gbk", errors="replace").replace("\r", "")
    seen = set()
    out = []
    for line in raw.split("\n"):
        line = line.strip()
        if not line or line in seen:
            continue
        seen.add(line)
        tokens = line.split()[1:]  # the first token is the paragraph id
        text_parts: list[str] = []
        pieces: list[tuple[int, int, str]] = []  # (start, end, tag) per unit
        pos = 0
        bracket_start = None
        for token in tokens:
            m = _PKU_TOKEN.fullmatch(token)
            if not m:
                word = token.rsplit("/", 1)[0].lstrip("[")
                tag = "x"
                opens, closes = token.startswith("["), None
            else:
                opens, word, tag, closes = m.group(1) == "[", m.group(2), m.group(3), m.group(5)
            if opens:
                bracket_start = (pos, len(pieces))
            text_parts.append(word)
            pieces.append((pos, pos + len(word), tag))
            pos += len(word)
            if closes and bracket_start is not None:
                start, first = bracket_start
                del pieces[first:]
                pieces.append((start, pos, closes))
                bracket_start = None
        text = "".join(text_parts)
        spans = []
        joined: set[int] = set()
        for start, end, tag in pieces:
            label = PKU_LABELS.get(tag)
            if label is None:
                continue
            # Adjacent t tokens are one time. An nr token joins only a lone
            # surname of one or two characters, so 杜/nr 中武/nr 孙/nr 传刚/nr
            # stays two people.
            last = spans[-1] if spans else None
            joins = last is not None and last[2] == label and last[1] == start
            if joins and label == "人物":
                joins = len(spans) - 1 not in joined and last[1] - last[0] <= 2
            elif joins:
                joins = label == "时间"
            if joins:
                spans[-1] = (last[0], end, label)
                joined.add(len(spans) - 1)
            else:
                spans.append((start, end, label))
        if text:
            out.append(Example(text, spans, "pku"))
    return out


def split_dev(examples: list[Example], fraction: float, seed: int):
    """Cut a fixed random dev part from a corpus that ships only train."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    cut = int(len(order) * fraction)
    dev = [examples[i] for i in sorted(order[:cut])]
    train = [examples[i] for i in sorted(order[cut:])]
    return train, dev


def load_corpora(root: Path, names: list[str], seed: int):
    """Return {corpus: (train, dev)} for the requested corpora under root."""
    result = {}
    for name in names:
        if name == "msra":
            result[name] = split_dev(read_msra(root / "msra/msra_train_bio"), 0.05, seed)
        elif name == "pku":
            result[name] = split_dev(read_pku(root / "pku1998_pos/199801.txt"), 0.05, seed)
        elif name == "cluener":
            result[name] = split_dev(read_cluener(root / "cluener/train.json"), 0.1, seed)
        elif name == "resume":
            result[name] = (
                read_resume(root / "resume/train.char.bmes"),
                read_resume(root / "resume/dev.char.bmes"),
            )
        elif name == "weibo":
            result[name] = (
                read_weibo(root / "weibo/weiboNER_2nd_conll.train"),
                read_weibo(root / "weibo/weiboNER_2nd_conll.dev"),
            )
        else:
            raise ValueError(f"unknown corpus {name!r}; known: msra, pku, cluener, resume, weibo")
    return result
