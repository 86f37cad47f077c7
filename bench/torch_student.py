"""Time batched PackedExtractor forward passes of a training run in PyTorch eager mode.

Reads the packed batches the bench wrote: rows of ``[CLS] prompt [SEP] text
[SEP]`` ids, the same batches the ONNX model ran. Runs them under
torch.no_grad on one thread after one warm-up batch. Prints one JSON object
with the seconds of each pass over all batches.

Usage:
    python3 bench/torch_student.py --run RUN_DIR --batches BATCHES.json [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from model import Extractor, ModelConfig, PackedExtractor  # noqa: E402
from text import Vocab  # noqa: E402

INPUTS = ("input_ids", "token_type_ids", "attention_mask")


def load_model(run: Path) -> tuple[PackedExtractor, dict]:
    state = torch.load(run / "best.pt", map_location="cpu")
    model = Extractor(ModelConfig(**state["config"]))
    model.load_state_dict(state["model"])
    model.eval()
    return PackedExtractor(model), state["config"]


def load_batches(path: Path, vocab_size: int) -> list[tuple[torch.Tensor, ...]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    batches = []
    for b in data["batches"]:
        shape = (b["rows"], b["seq_len"])
        # A lexicon model's batches also carry each position's dictionary bits.
        names = INPUTS + (("lexicon_bits",) if "lexicon_bits" in b else ())
        tensors = tuple(torch.tensor(b[name], dtype=torch.int64).view(shape) for name in names)
        top = int(tensors[0].max())
        if top >= vocab_size:
            sys.exit(f"input id {top} is outside the run's vocabulary of {vocab_size}; "
                     "the batches were packed with a different vocab.txt")
        batches.append(tensors)
    if not batches:
        sys.exit(f"{path} contains no batches")
    return batches


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--run", type=Path, required=True,
                    help="training run folder with best.pt and vocab.txt")
    ap.add_argument("--batches", type=Path, required=True,
                    help="JSON file of packed batches written by the bench")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed passes over all batches (default 3)")
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error(f"--repeats: expected an integer >= 1, got {args.repeats}")

    # One thread, like one pool thread of uie-batch with intraOpNumThreads 1.
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    packed, config = load_model(args.run)
    vocab = Vocab.load(args.run / "vocab.txt")
    if len(vocab) != config["vocab_size"]:
        sys.exit(f"{args.run}/vocab.txt has {len(vocab)} tokens, "
                 f"best.pt expects {config['vocab_size']}")
    batches = load_batches(args.batches, config["vocab_size"])

    seconds = []
    with torch.no_grad():
        packed(*batches[0])
        for _ in range(args.repeats):
            started = time.perf_counter()
            for batch in batches:
                packed(*batch)
            seconds.append(time.perf_counter() - started)

    print(json.dumps({
        "seconds": seconds,
        "median": statistics.median(seconds),
        "batches": len(batches),
        "rows": sum(b[0].shape[0] for b in batches),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
