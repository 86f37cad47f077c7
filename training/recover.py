"""Rebuild a training run folder from an exported model folder.

A run folder contains the PyTorch weights, and the model folder that ships
contains only ONNX. When the run folder is gone (a new machine, say), this turns the
shipped model back into a checkpoint that ``train.py --init`` can start
from. INT8 weights are dequantised (weight × scale), so the recovered model
is the INT8 model's arithmetic in FP32, not the original FP32 weights.

Example:
    python3 training/recover.py --model models/tiny --out runs/recovered
    python3 training/train.py --corpora ../shared/corpora --out runs/next \\
        --preset student --init runs/recovered/best.pt
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lexicon as lex  # noqa: E402
from model import Extractor, ModelConfig  # noqa: E402
from train import PRESETS  # noqa: E402

# "/convs.0/mix/MatMul" → "convs.0.mix": the node name torch.onnx gives a
# Linear's MatMul, which quantize.py reuses as the prefix of its tensors.
MATMUL_NODE = re.compile(r"^/(.+)/MatMul$")


def weights_from_onnx(path: Path) -> dict[str, np.ndarray]:
    """Return the model's weights under their PyTorch names."""
    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    out: dict[str, np.ndarray] = {}
    for name, value in inits.items():
        if name.startswith("model.") and not name.endswith(("_int8", "_scale")):
            out[name[len("model."):]] = value
        elif name.endswith(".weight_int8"):
            table = name[: -len("_int8")]
            out[table[len("model."):]] = value.astype(np.float32) * inits[f"{table}_scale"]
    for node in graph.node:
        if node.op_type == "MatMulInteger":
            base = node.input[1][: -len("_w_int8")]
            match = MATMUL_NODE.match(base)
            if not match:
                raise ValueError(f"{path}: cannot name the weight of quantised node {base}")
            w = inits[f"{base}_w_int8"].astype(np.float32) * inits[f"{base}_w_scale"]
            out[match.group(1).replace("/", ".") + ".weight"] = w.T
        elif node.op_type == "MatMul" and node.input[1] in inits:
            match = MATMUL_NODE.match(node.name)
            if not match:
                raise ValueError(f"{path}: cannot name the weight of node {node.name}")
            out[match.group(1).replace("/", ".") + ".weight"] = inits[node.input[1]].T
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="model folder with model.json")
    ap.add_argument("--out", type=Path, required=True, help="run folder to write")
    ap.add_argument("--preset", choices=PRESETS, default="student")
    args = ap.parse_args()

    manifest = json.loads((args.model / "model.json").read_text())
    vocab_size = sum(1 for _ in (args.model / manifest["vocab"]).open(encoding="utf-8"))
    lexicon = manifest.get("lexicon")
    cfg = ModelConfig(vocab_size=vocab_size, **PRESETS[args.preset],
                      lexicon_bits=lex.BITS if lexicon else 0)
    model = Extractor(cfg)
    found = weights_from_onnx(args.model / manifest["onnx"])
    expected = model.state_dict()
    missing = sorted(set(expected) - set(found))
    if missing:
        raise SystemExit(f"{args.model}: no weights for {', '.join(missing)}; is --preset {args.preset} right?")
    state = {k: torch.from_numpy(np.array(found[k], dtype=np.float32)).reshape(expected[k].shape) for k in expected}
    model.load_state_dict(state)

    args.out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.model / manifest["vocab"], args.out / "vocab.txt")
    if lexicon:
        # train.py and export.py find a run's lexicon under this name.
        shutil.copyfile(args.model / lexicon, args.out / "lexicon.txt")
    torch.save(dict(model=model.state_dict(), config=cfg.to_dict(), labels=manifest["labels"],
                    scores=manifest.get("training", {}).get("dev_f1", {}), step=0),
               args.out / "best.pt")
    # train.py --init reads the dev cut seed from here, so a continuation
    # cannot train on the sentences this model was scored on.
    training = manifest.get("training", {})
    seed = training.get("seed")
    if seed is not None:
        meta = dict(config=cfg.to_dict(), labels=manifest["labels"], preset=args.preset, seed=seed,
                    split_seed=training.get("split_seed", seed), corpora=training.get("corpora", []),
                    recovered_from=str(args.model))
        (args.out / "run.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2))
    print(f"recovered {len(state)} tensors from {args.model} into {args.out / 'best.pt'}")


if __name__ == "__main__":
    main()
