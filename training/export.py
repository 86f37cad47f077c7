"""Export a trained run to a model folder with the UIE ONNX contract.

Example:
    python3 training/export.py --run runs/student --out models/tiny --int8

Writes ``model.onnx`` (INT8 weights with --int8), ``vocab.txt`` and
``model.json`` with the SHA-256 of each file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import Extractor, ModelConfig, PackedExtractor  # noqa: E402
from quantize import quantize_model  # noqa: E402


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_onnx(run: Path, path: Path, checkpoint: str = "best.pt") -> dict:
    state = torch.load(run / checkpoint)
    model = Extractor(ModelConfig(**state["config"]))
    model.load_state_dict(state["model"])
    model.eval()
    packed = PackedExtractor(model)
    ids = torch.tensor([[2, 10, 11, 3, 12, 13, 14, 3]])
    types = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1]])
    mask = torch.ones_like(ids)
    axes = {0: "batch", 1: "seq"}
    torch.onnx.export(
        packed,
        (ids, types, mask),
        str(path),
        input_names=["input_ids", "token_type_ids", "attention_mask"],
        output_names=["start_prob", "end_prob"],
        dynamic_axes={n: axes for n in ["input_ids", "token_type_ids", "attention_mask", "start_prob", "end_prob"]},
        opset_version=14,
        do_constant_folding=True,
    )
    return state


def flops_per_token(cfg: dict, labels: int, seq: int = 64) -> dict:
    """Estimate FLOPs (two per multiply-add) per text token for one label.

    Counts the dense layers, which dominate the cost, and the attention
    scores and weighted sum (2 * seq * dim multiply-adds per token) at the
    given sequence length.
    """
    d, b = cfg["dim"], cfg["bigram_dim"]
    encoder = (d + b) * d + cfg["conv_layers"] * (3 * d * 2 * d + d * d)
    encoder += cfg["attention_layers"] * (3 * d * d + d * d + 2 * (2 * d * d) + 2 * seq * d)
    per_label = cfg["fusion_layers"] * (3 * d * 2 * d + d * d) + 2 * d
    # The packed graph encodes the text again for every label.
    return {"one_label": 2 * (encoder + per_label), "labels": labels, "seq": seq}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="training run directory")
    ap.add_argument("--out", type=Path, required=True, help="model folder to write")
    ap.add_argument("--checkpoint", default="best.pt")
    ap.add_argument("--name", default="uie-batch-tiny")
    ap.add_argument("--version", default="0.1.0")
    ap.add_argument("--max-seq-len", type=int, default=256)
    ap.add_argument("--int8", action="store_true", help="quantise weights to 8 bits")
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "model.onnx"
    fp32_path = args.out / "model.fp32.onnx" if args.int8 else onnx_path
    state = export_onnx(args.run, fp32_path, args.checkpoint)
    if args.int8:
        quantize_model(fp32_path, onnx_path)
        fp32_path.unlink()
    shutil.copyfile(args.run / "vocab.txt", args.out / "vocab.txt")
    run_meta = json.loads((args.run / "run.json").read_text())
    manifest = {
        "name": args.name,
        "version": args.version,
        "onnx": "model.onnx",
        "vocab": "vocab.txt",
        "labels": state["labels"],
        "max_seq_len": args.max_seq_len,
        "weights": "int8" if args.int8 else "fp32",
        "parameters": sum(v.numel() for v in state["model"].values()),
        "flops_per_token": flops_per_token(state["config"], len(state["labels"]))["one_label"],
        "training": {
            "preset": run_meta["preset"],
            "seed": run_meta["seed"],
            "corpora": run_meta["corpora"],
            "teacher": run_meta.get("teacher"),
            "step": state["step"],
            "dev_f1": {k: round(v, 4) for k, v in state["scores"].items()},
        },
        "sha256": {
            "model.onnx": sha256(onnx_path),
            "vocab.txt": sha256(args.out / "vocab.txt"),
        },
    }
    (args.out / "model.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(manifest, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
