"""Export a trained run to a model folder with the UIE ONNX contract.

Example:
    python3 training/export.py --run runs/student --out models/tiny --int8

Writes ``model.onnx`` (INT8 weights with --int8), ``vocab.txt`` and
``model.json`` with the SHA-256 of each file. Unless --no-shared-text is
given, it also writes ``model.shared.onnx``, which encodes each text once
for all labels (see ``SharedTextExtractor``), after checking in PyTorch that
it gives the packed graph's probabilities.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model import Extractor, ModelConfig, PackedExtractor  # noqa: E402
from quantize import quantize_model  # noqa: E402

PACKED_FILE = "model.onnx"
SHARED_FILE = "model.shared.onnx"
# Largest difference between packed and shared probabilities that the check
# accepts. Both compute the same function of the text, but attention and the
# prompt pooling sum over rows of different lengths, which can change the
# last bits of float32 sums.
SHARED_TOLERANCE = 1e-5
# Optional input of models trained with --lexicon: each text character's
# dictionary-match bits as one integer (lexicon.py).
LEXICON_INPUT = "lexicon_bits"
LEXICON_FILE = "lexicon.txt"


class SharedTextExtractor(nn.Module):
    """Encodes each text row once and decodes every prompt row from it.

    Inputs: ``text_ids``, ``text_mask`` [batch, seq] holding the text part
    of the packed row (the text's ids and the [SEP] after it), and
    ``prompt_ids``, ``prompt_mask`` [labels, plen] holding the prompt part
    (``[CLS] prompt [SEP]``). Outputs ``start_prob``, ``end_prob``
    [batch, labels, seq], equal to the packed graph's probabilities over the
    text part of each (label, text) row.
    """

    def __init__(self, model: Extractor):
        super().__init__()
        # Same attribute name as PackedExtractor, so the initializers are
        # named alike and recover.py and quantize.py treat both graphs alike.
        self.model = model

    def forward(self, text_ids, text_mask, prompt_ids, prompt_mask, lexicon_bits=None):
        text = text_mask.float().unsqueeze(-1)
        prompt = prompt_mask.float().unsqueeze(-1)
        # PackedExtractor zeroes every id outside the text part before
        # encoding, so here too the first text token's bigram pairs it with 0.
        ids = text_ids * text_mask
        film = self.model.encode_prompt(prompt_ids, prompt)
        labels = torch.arange(prompt_ids.size(0), device=text_ids.device)
        label_index = labels.unsqueeze(0).expand(text_ids.size(0), -1)
        lexicon = lexicon_bits * text_mask if lexicon_bits is not None else None
        s, e, _ = self.model.forward_pairs(ids, text, label_index, film, lexicon)
        keep = text_mask.float().unsqueeze(1)
        return torch.sigmoid(s) * keep, torch.sigmoid(e) * keep


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_run(run: Path, checkpoint: str = "best.pt") -> tuple[Extractor, dict]:
    state = torch.load(run / checkpoint)
    if "config" not in state:
        # A resumable checkpoint.pt contains the latest weights but not the
        # architecture and labels, which best.pt of the same run has. Its
        # dev scores are in train.log.
        best = torch.load(run / "best.pt")
        state = {"model": state["model"], "config": best["config"], "labels": best["labels"],
                 "step": state["step"], "scores": {}}
    model = Extractor(ModelConfig(**state["config"]))
    model.load_state_dict(state["model"])
    model.eval()
    return model, state


def export_onnx(model: Extractor, path: Path) -> None:
    """Trace the packed UIE graph: one ``[CLS] prompt [SEP] text [SEP]`` row per pair."""
    ids = torch.tensor([[2, 10, 11, 3, 12, 13, 14, 3]])
    types = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1]])
    mask = torch.ones_like(ids)
    args, names = (ids, types, mask), ["input_ids", "token_type_ids", "attention_mask"]
    if model.cfg.lexicon_bits:
        args, names = args + (torch.tensor([[0, 0, 0, 0, 1, 4, 0, 0]]),), names + [LEXICON_INPUT]
    axes = {0: "batch", 1: "seq"}
    torch.onnx.export(
        PackedExtractor(model),
        args,
        str(path),
        input_names=names,
        output_names=["start_prob", "end_prob"],
        dynamic_axes={n: axes for n in names + ["start_prob", "end_prob"]},
        opset_version=14,
        do_constant_folding=True,
    )


def export_shared_onnx(model: Extractor, path: Path) -> None:
    """Trace ``SharedTextExtractor`` with batch, labels and lengths all dynamic."""
    # Distinct sizes (2 texts, 3 labels, 5 and 4 positions), so that no
    # size is traced as a constant taken from another axis.
    text_ids = torch.tensor([[12, 13, 14, 3, 0], [15, 16, 17, 18, 3]])
    text_mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    prompt_ids = torch.tensor([[2, 10, 11, 3], [2, 19, 20, 3], [2, 21, 3, 0]])
    prompt_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0]])
    inputs = {
        "text_ids": {0: "batch", 1: "seq"},
        "text_mask": {0: "batch", 1: "seq"},
        "prompt_ids": {0: "labels", 1: "plen"},
        "prompt_mask": {0: "labels", 1: "plen"},
    }
    args = (text_ids, text_mask, prompt_ids, prompt_mask)
    if model.cfg.lexicon_bits:
        inputs[LEXICON_INPUT] = {0: "batch", 1: "seq"}
        args = args + (torch.tensor([[1, 2, 4, 0, 0], [0, 9, 0, 36, 0]]),)
    outputs = {n: {0: "batch", 1: "labels", 2: "seq"} for n in ["start_prob", "end_prob"]}
    torch.onnx.export(
        SharedTextExtractor(model),
        args,
        str(path),
        input_names=list(inputs),
        output_names=list(outputs),
        dynamic_axes={**inputs, **outputs},
        opset_version=14,
        do_constant_folding=True,
    )


def read_vocab(path: Path) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").split("\n")):
        index.setdefault(line.rstrip("\r"), i)
    return index


def check_shared(model: Extractor, vocab: dict[str, int], labels: list[str]) -> float:
    """Compare shared and packed probabilities over the same (label, text) pairs.

    Packs every pair as the TypeScript extractor does, runs both modules on
    the same weights and returns the largest absolute difference over the
    text part of each row (text tokens and the [SEP] after them). Raises
    SystemExit when it exceeds SHARED_TOLERANCE or when the shared graph
    gives a non-zero probability at a padding position.
    """
    cls, sep, pad = vocab["[CLS]"], vocab["[SEP]"], vocab["[PAD]"]
    unk = vocab["[UNK]"]
    generator = torch.Generator().manual_seed(7)
    # Random characters at several lengths, so the batch has padding and the
    # text starts at different offsets in the packed rows.
    lengths = [1, 2, 9, 31, 64, 150]
    texts = [torch.randint(5, len(vocab), (n,), generator=generator).tolist() for n in lengths]
    prompts = [[cls] + [vocab.get(ch, unk) for ch in label] + [sep] for label in labels]
    texts = [t + [sep] for t in texts]
    # Random bits over each text's characters (none on its [SEP]).
    bit_limit = 1 << max(model.cfg.lexicon_bits, 1)
    lexicons = [torch.randint(0, bit_limit, (len(t) - 1,), generator=generator).tolist() + [0] for t in texts]

    rows = [(p, t) for t in texts for p in prompts]
    width = max(len(p) + len(t) for p, t in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    types = torch.zeros_like(input_ids)
    mask = torch.zeros_like(input_ids)
    packed_lexicon = torch.zeros_like(input_ids)
    for r, (p, t) in enumerate(rows):
        input_ids[r, : len(p) + len(t)] = torch.tensor(p + t)
        types[r, len(p) : len(p) + len(t)] = 1
        mask[r, : len(p) + len(t)] = 1
        packed_lexicon[r, len(p) : len(p) + len(t)] = torch.tensor(lexicons[r // len(prompts)])

    seq = max(len(t) for t in texts)
    plen = max(len(p) for p in prompts)
    text_ids = torch.full((len(texts), seq), pad, dtype=torch.long)
    text_mask = torch.zeros_like(text_ids)
    text_lexicon = torch.zeros_like(text_ids)
    for b, t in enumerate(texts):
        text_ids[b, : len(t)] = torch.tensor(t)
        text_mask[b, : len(t)] = 1
        text_lexicon[b, : len(t)] = torch.tensor(lexicons[b])
    prompt_ids = torch.full((len(prompts), plen), pad, dtype=torch.long)
    prompt_mask = torch.zeros_like(prompt_ids)
    for j, p in enumerate(prompts):
        prompt_ids[j, : len(p)] = torch.tensor(p)
        prompt_mask[j, : len(p)] = 1

    with torch.no_grad():
        with_lexicon = bool(model.cfg.lexicon_bits)
        packed = PackedExtractor(model)(input_ids, types, mask, packed_lexicon if with_lexicon else None)
        shared = SharedTextExtractor(model)(text_ids, text_mask, prompt_ids, prompt_mask,
                                            text_lexicon if with_lexicon else None)
    worst = 0.0
    for r, (p, t) in enumerate(rows):
        b, j = divmod(r, len(prompts))
        for packed_out, shared_out in zip(packed, shared):
            expected = packed_out[r, len(p) : len(p) + len(t)]
            got = shared_out[b, j, : len(t)]
            worst = max(worst, (expected - got).abs().max().item())
            if shared_out[b, j, len(t) :].abs().sum().item() != 0.0:
                raise SystemExit(f"shared graph: non-zero probability at padding of text {b}, label {labels[j]}")
    if worst > SHARED_TOLERANCE:
        raise SystemExit(
            f"shared graph differs from the packed graph by up to {worst:.3g} "
            f"(tolerance {SHARED_TOLERANCE}); not writing {SHARED_FILE}"
        )
    return worst


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


def write_graph(export, model: Extractor, path: Path, int8: bool) -> None:
    """Export one graph to path, through an FP32 file that quantize.py rewrites when int8."""
    fp32_path = path.with_suffix(".fp32.onnx") if int8 else path
    export(model, fp32_path)
    if int8:
        quantize_model(fp32_path, path)
        fp32_path.unlink()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="training run directory")
    ap.add_argument("--out", type=Path, required=True, help="model folder to write")
    ap.add_argument("--checkpoint", default="best.pt",
                    help="best.pt (best mean dev F1) or checkpoint.pt (the latest weights)")
    ap.add_argument("--name", default="uie-batch-tiny")
    ap.add_argument("--version", default="0.1.0")
    ap.add_argument("--max-seq-len", type=int, default=256)
    ap.add_argument("--int8", action="store_true", help="quantise weights to 8 bits")
    ap.add_argument(
        "--shared-text",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"also write {SHARED_FILE}, which encodes each text once for all labels (default: on)",
    )
    args = ap.parse_args()

    model, state = load_run(args.run, args.checkpoint)
    run_meta = json.loads((args.run / "run.json").read_text())
    if args.shared_text:
        vocab = read_vocab(args.run / "vocab.txt")
        worst = check_shared(model, vocab, state["labels"])
        print(f"shared graph matches the packed graph in PyTorch: max abs difference {worst:.3g}", file=sys.stderr)

    args.out.mkdir(parents=True, exist_ok=True)
    files = [PACKED_FILE]
    write_graph(export_onnx, model, args.out / PACKED_FILE, args.int8)
    if args.shared_text:
        write_graph(export_shared_onnx, model, args.out / SHARED_FILE, args.int8)
        files.append(SHARED_FILE)
    shutil.copyfile(args.run / "vocab.txt", args.out / "vocab.txt")
    files.append("vocab.txt")
    if model.cfg.lexicon_bits:
        shutil.copyfile(args.run / LEXICON_FILE, args.out / LEXICON_FILE)
        files.append(LEXICON_FILE)
    manifest = {
        "name": args.name,
        "version": args.version,
        "onnx": PACKED_FILE,
        **({"shared_text": SHARED_FILE} if args.shared_text else {}),
        "vocab": "vocab.txt",
        **({"lexicon": LEXICON_FILE} if model.cfg.lexicon_bits else {}),
        "labels": state["labels"],
        "max_seq_len": args.max_seq_len,
        "weights": "int8" if args.int8 else "fp32",
        "parameters": sum(v.numel() for v in state["model"].values()),
        "flops_per_token": flops_per_token(state["config"], len(state["labels"]))["one_label"],
        "training": {
            "preset": run_meta["preset"],
            "seed": run_meta["seed"],
            "split_seed": run_meta.get("split_seed", run_meta["seed"]),
            "corpora": run_meta["corpora"],
            "teacher": run_meta.get("teacher"),
            **({"averaged": run_meta["averaged"]} if "averaged" in run_meta else {}),
            "step": state["step"],
            "dev_f1": {k: round(v, 4) for k, v in state["scores"].items()},
        },
        "sha256": {name: sha256(args.out / name) for name in files},
    }
    (args.out / "model.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(manifest, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
