"""Write the dev split of each corpus as CLUENER-style JSON lines for `uie-batch eval`.

Example:
    python3 training/write_dev.py --corpora ../shared/corpora --out runs/dev
    npx uie-batch eval --gold runs/dev/msra.jsonl --format cluener \
        --map 人物=人物,地点=地点,机构=机构 --schema 人物,地点,机构

The dev parts are cut with the same seed as train.py's --split-seed, so
these are exactly the sentences the training run never learned from. Labels are written as the
schema's Chinese names, so an identity --map scores them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpora import CORPUS_LABELS, load_corpora  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--use", default="msra,pku,cluener,resume,weibo")
    ap.add_argument("--split-seed", type=int, default=7, help="train.py's --split-seed")
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    data = load_corpora(args.corpora, args.use.split(","), args.split_seed)
    for corpus, (_, dev) in data.items():
        path = args.out / f"{corpus}.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for ex in dev:
                labels: dict[str, dict[str, list[list[int]]]] = {}
                for start, end, label in ex.spans:
                    labels.setdefault(label, {}).setdefault(ex.text[start:end], []).append([start, end - 1])
                f.write(json.dumps({"text": ex.text, "label": labels}, ensure_ascii=False) + "\n")
        print(f"{path}: {len(dev)} sentences, labels {','.join(CORPUS_LABELS[corpus])}")


if __name__ == "__main__":
    main()
