"""Average the weights of two or more checkpoints of one architecture.

Only checkpoints that share an ancestor (a fine-tune and the model it
started from, say) can be averaged parameter by parameter. The output
folder is a run folder that export.py takes.

Example:
    python3 training/average.py --out runs/average \\
        runs/recovered/best.pt runs/distil/best.pt
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", type=Path, nargs="+", help="best.pt files to average")
    ap.add_argument("--out", type=Path, required=True, help="run folder to write")
    ap.add_argument("--weights", default="",
                    help="comma-separated weight of each checkpoint, e.g. 0.3,0.7 (default: equal)")
    args = ap.parse_args()
    if len(args.checkpoints) < 2:
        raise SystemExit("average.py: give at least two checkpoints")

    states = [torch.load(p) for p in args.checkpoints]
    first = states[0]
    for path, state in zip(args.checkpoints[1:], states[1:]):
        if state["config"] != first["config"]:
            raise SystemExit(f"{path}: its model config differs from {args.checkpoints[0]}; only one architecture can be averaged")
    vocabs = [(p.parent / "vocab.txt").read_bytes() for p in args.checkpoints]
    if any(v != vocabs[0] for v in vocabs[1:]):
        raise SystemExit("average.py: the checkpoints' vocab.txt files differ, so their embedding rows mean different characters")

    if args.weights:
        weights = [float(w) for w in args.weights.split(",")]
        if len(weights) != len(states) or abs(sum(weights) - 1.0) > 1e-6:
            raise SystemExit(f"--weights: expected {len(states)} weights that sum to 1, got {args.weights}")
    else:
        weights = [1.0 / len(states)] * len(states)
    averaged = {k: sum(w * s["model"][k] for w, s in zip(weights, states)) for k in first["model"]}
    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.checkpoints[0].parent / "vocab.txt", args.out / "vocab.txt")
    # A lexicon model needs the lexicon it was trained with beside its weights.
    lexicons = [p.parent / "lexicon.txt" for p in args.checkpoints]
    if first["config"].get("lexicon_bits"):
        if any(not p.exists() or p.read_bytes() != lexicons[0].read_bytes() for p in lexicons):
            raise SystemExit("average.py: lexicon models need the same lexicon.txt beside every checkpoint")
        shutil.copyfile(lexicons[0], args.out / "lexicon.txt")
    torch.save(dict(model=averaged, config=first["config"], labels=first["labels"], scores={},
                    step=0), args.out / "best.pt")
    # export.py copies the training metadata into model.json.
    run = args.checkpoints[-1].parent / "run.json"
    meta = json.loads(run.read_text()) if run.exists() else {}
    meta["averaged"] = {str(p): w for p, w in zip(args.checkpoints, weights)}
    (args.out / "run.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2))
    print(f"averaged {len(states)} checkpoints into {args.out / 'best.pt'}")


if __name__ == "__main__":
    main()
