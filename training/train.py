"""Train a teacher or a student extractor, optionally distilled from a teacher.

Example:
    python3 training/train.py --corpora /path/to/corpora --out runs/student \
        --preset student --epochs 3

The run directory keeps ``checkpoint.pt`` (resumed automatically), ``best.pt``
(best mean dev F1), ``vocab.txt`` and ``train.log``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lexicon as lex  # noqa: E402
from augment import augment  # noqa: E402
from corpora import CORPUS_LABELS, Example, load_corpora  # noqa: E402
from model import Extractor, ModelConfig, grow_from  # noqa: E402
from text import CLS, MASK, SEP, SPECIALS, Vocab  # noqa: E402

PRESETS = {
    # Same width as the student and twice its depth, so a teacher can grow
    # out of a trained student (--init) instead of starting from scratch.
    "teacher": dict(dim=192, conv_layers=8, attention_layers=2, heads=4, fusion_layers=2,
                    bigram_buckets=32768, bigram_dim=64),
    "student": dict(dim=192, conv_layers=4, attention_layers=1, heads=4, fusion_layers=0,
                    bigram_buckets=32768, bigram_dim=64),
}
MAX_TRAIN_LEN = 160


def log(run_dir: Path, message: str):
    line = f"{time.strftime('%H:%M:%S')} {message}"
    print(line, flush=True)
    with open(run_dir / "train.log", "a", encoding="utf-8") as f:
        f.write(line + "\n")


def cut_long(examples: list[Example], limit: int) -> list[Example]:
    """Split texts longer than limit at sentence ends; spans across a cut are dropped."""
    out = []
    for ex in examples:
        if len(ex.text) <= limit:
            out.append(ex)
            continue
        start = 0
        while start < len(ex.text):
            end = min(start + limit, len(ex.text))
            if end < len(ex.text):
                cut = max(ex.text.rfind(p, start + 1, end) for p in "。！？；，")
                if cut > start:
                    end = cut + 1
            spans = [(s - start, e - start, l) for s, e, l in ex.spans if s >= start and e <= end]
            out.append(Example(ex.text[start:end], spans, ex.corpus))
            start = end
    return out


class Batcher:
    """Token-budget batches of one corpus each, lengths sorted within a pool."""

    def __init__(self, data, vocab: Vocab, labels: list[str], tokens_per_batch: int, seed: int,
                 words: dict[str, int] | None = None):
        self.data = data
        self.vocab = vocab
        self.words = words
        self.lexicon_cache: dict[str, list[int]] = {}
        self.label_id = {l: i for i, l in enumerate(labels)}
        self.tokens = tokens_per_batch
        self.rng = random.Random(seed)

    def epoch(self):
        batches = []
        for corpus, examples in self.data.items():
            order = sorted(range(len(examples)), key=lambda i: (len(examples[i].text), self.rng.random()))
            batch, longest = [], 0
            for i in order:
                n = len(examples[i].text) + 1
                if batch and max(longest, n) * (len(batch) + 1) > self.tokens:
                    batches.append((corpus, batch))
                    batch, longest = [], 0
                batch.append(examples[i])
                longest = max(longest, n)
            if batch:
                batches.append((corpus, batch))
        self.rng.shuffle(batches)
        return batches

    def tensors(self, corpus: str, batch: list[Example]):
        labels = CORPUS_LABELS[corpus]
        t = max(len(ex.text) for ex in batch) + 1
        ids = torch.zeros(len(batch), t, dtype=torch.long)
        mask = torch.zeros(len(batch), t, 1)
        start = torch.zeros(len(batch), len(labels), t)
        end = torch.zeros(len(batch), len(labels), t)
        li = {l: j for j, l in enumerate(labels)}
        for b, ex in enumerate(batch):
            row = self.vocab.encode(ex.text) + [self.vocab.sep]
            ids[b, : len(row)] = torch.tensor(row)
            mask[b, : len(row)] = 1.0
            for s, e, l in ex.spans:
                if l in li and e <= len(ex.text):
                    start[b, li[l], s] = 1.0
                    end[b, li[l], e - 1] = 1.0
        index = torch.tensor([[self.label_id[l] for l in labels]] * len(batch))
        return ids, mask, index, start, end, self.lexicon_tensor(batch, t)

    def lexicon_tensor(self, batch: list[Example], t: int):
        """Dictionary-match bits [B, T], or None without a lexicon."""
        if self.words is None:
            return None
        out = torch.zeros(len(batch), t, dtype=torch.long)
        for b, ex in enumerate(batch):
            bits = self.lexicon_cache.get(ex.text)
            if bits is None:
                bits = lex.features(ex.text, self.words)
                self.lexicon_cache[ex.text] = bits
            out[b, : len(bits)] = torch.tensor(bits, dtype=torch.long)
        return out


class MaskedCharHead(torch.nn.Module):
    """Predicts masked characters from text states for --mlm-weight.

    The output weights are the model's character embedding, passed in at each
    call rather than held here. So the head adds only a d x d transform, a
    logit scale and a bias per character. It lives outside the model and
    never reaches best.pt or the exported graphs.
    """

    def __init__(self, dim: int, vocab_size: int):
        super().__init__()
        self.transform = torch.nn.Linear(dim, dim)
        self.norm = torch.nn.LayerNorm(dim)
        # Measured on 0.9.0: embedding rows have a norm of about 13 and the
        # LayerNorm output about sqrt(dim), so without this scale the first
        # steps see a cross-entropy near 25 instead of ln(vocab).
        self.scale = torch.nn.Parameter(torch.tensor(dim ** -0.5))
        self.bias = torch.nn.Parameter(torch.zeros(vocab_size))

    def forward(self, h, embedding):
        return F.linear(self.norm(F.gelu(self.transform(h))), embedding) * self.scale + self.bias


def mask_chars(batch: list[Example], ids, vocab: Vocab, words, share: float):
    """BERT-style corruption of a share of the text characters of a batch.

    Of the chosen characters 80 % become [MASK], 10 % a random character and
    10 % stay. Returns the corrupted ids, their lexicon bits (or None), the
    chosen positions [B, T] and the original ids. The bits are recomputed on
    the corrupted text, with [MASK] as a character no word contains: bits from
    the original text would name the hidden character through the words that
    cover it, on its own position and on its neighbours'.
    """
    n = torch.tensor([len(ex.text) for ex in batch])
    in_text = torch.arange(ids.size(1))[None, :] < n[:, None]
    # [UNK] stands for many characters, so it is not a target.
    chosen = in_text & (ids != vocab.unk) & (torch.rand(ids.shape) < share)
    roll = torch.rand(ids.shape)
    masked = chosen & (roll < 0.8)
    swapped = chosen & (roll >= 0.8) & (roll < 0.9)
    out = ids.clone()
    out[masked] = vocab.index[MASK]
    out[swapped] = torch.randint(len(SPECIALS), len(vocab), (int(swapped.sum()),))
    bits = None
    if words is not None:
        bits = torch.zeros_like(ids)
        for b, ex in enumerate(batch):
            chars = list(ex.text)
            for i in (masked[b] | swapped[b]).nonzero().flatten().tolist():
                chars[i] = "\x00" if masked[b, i] else vocab.tokens[out[b, i]]
            bits[b, : len(chars)] = torch.tensor(lex.features("".join(chars), words), dtype=torch.long)
    return out, bits, chosen, ids


def prompt_tensors(vocab: Vocab, labels: list[str]):
    rows = [[vocab.cls] + vocab.encode(l) + [vocab.sep] for l in labels]
    p = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), p, dtype=torch.long)
    mask = torch.zeros(len(rows), p, 1)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1.0
    return ids, mask


def decode_spans(start_p: list[float], end_p: list[float], n: int, threshold: float):
    """Pair starts and ends as PaddleNLP UIE does, like the TypeScript decoder:
    a start is used by the first end at or after it, and an end takes the
    latest unused start before it."""
    spans = set()
    pending = None
    for i in range(n):
        if start_p[i] > threshold:
            pending = i
        if end_p[i] > threshold and pending is not None:
            spans.add((pending, i + 1))
            pending = None
    return spans


@torch.no_grad()
def evaluate(model, batcher: Batcher, dev, vocab, labels, threshold=0.5):
    model.eval()
    pids, pmask = prompt_tensors(vocab, labels)
    film = model.encode_prompt(pids, pmask)
    scores = {}
    for corpus, examples in dev.items():
        tp = fp = fn = 0
        for i in range(0, len(examples), 64):
            batch = examples[i : i + 64]
            ids, mask, index, _, _, lexicon = batcher.tensors(corpus, batch)
            s, e, _ = model.forward_pairs(ids, mask, index, film, lexicon)
            s, e = torch.sigmoid(s), torch.sigmoid(e)
            for b, ex in enumerate(batch):
                for j, label in enumerate(CORPUS_LABELS[corpus]):
                    pred = decode_spans(s[b, j].tolist(), e[b, j].tolist(), len(ex.text), threshold)
                    gold = {(a, z) for a, z, l in ex.spans if l == label}
                    tp += len(pred & gold)
                    fp += len(pred - gold)
                    fn += len(gold - pred)
        p = tp / max(tp + fp, 1)
        r = tp / max(tp + fn, 1)
        scores[corpus] = 2 * p * r / max(p + r, 1e-9)
    model.train()
    return scores


def check_split_seed(init: Path, split_seed: int):
    """Exit when the run given to --init cut its dev part with another seed."""
    run = init.parent / "run.json"
    if not run.exists():
        return
    meta = json.loads(run.read_text())
    # Runs written before --split-seed existed cut their dev part with --seed.
    earlier = meta.get("split_seed", meta.get("seed"))
    if earlier is not None and earlier != split_seed:
        raise SystemExit(
            f"train.py: {init} was trained with dev cut seed {earlier}, this run would use {split_seed}; "
            f"its dev sentences would be training sentences here. Pass --split-seed {earlier}.")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", type=Path, required=True, help="folder with msra/, pku1998_pos/, ...")
    ap.add_argument("--use", default="msra,pku,cluener,resume,weibo", help="corpora to train on")
    ap.add_argument("--out", type=Path, required=True, help="run directory")
    ap.add_argument("--preset", choices=PRESETS, default="student")
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--tokens-per-batch", type=int, default=4000)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=7, help="seed of batch order, augmentation and initial weights")
    ap.add_argument("--split-seed", type=int, default=7,
                    help="seed of the dev cut; a run that starts from another run's weights must use "
                         "that run's value, or it trains on the sentences the earlier run was scored on")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=1000, help="steps between dev evaluations")
    ap.add_argument("--teacher", type=Path, help="teacher run directory to distil from")
    ap.add_argument("--init", type=Path, help="checkpoint whose weights start this run (fine-tuning)")
    ap.add_argument("--synthetic-names", type=int, default=0,
                    help="made-up person names and places added to the swap inventory")
    ap.add_argument("--place-like-share", type=float, default=0.1,
                    help="share of the made-up names that end like a place (钟南山) and of the "
                         "made-up places with a surname inside (碎叶城)")
    ap.add_argument("--collision-share", type=float, default=0.0,
                    help="share of the made-up names whose surname also starts places and that end "
                         "like a place, and of the made-up places with any first character and a "
                         "surname inside")
    ap.add_argument("--snapshots", action="store_true",
                    help="also keep the weights of every evaluated step as step-N.pt")
    ap.add_argument("--swap-fraction", type=float, default=0.0,
                    help="add entity-swapped copies of this fraction of MSRA and People's Daily sentences")
    ap.add_argument("--cross-swap", type=float, default=0.0,
                    help="share of swapped people and places that get a mention of the other class "
                         "and keep their label, so the context decides the class")
    ap.add_argument("--upsample", default="",
                    help="repeat small corpora in each epoch, e.g. cluener=3,weibo=4")
    ap.add_argument("--kd-weight", type=float, default=1.0, help="weight of the teacher's probabilities")
    ap.add_argument("--hidden-weight", type=float, default=1.0, help="weight of the hidden-state loss")
    ap.add_argument("--mlm-weight", type=float, default=0.0,
                    help="weight of a masked-character loss on the text of the same batches "
                         "(0: off); its head is tied to the character embedding and is not exported")
    ap.add_argument("--mlm-mask", type=float, default=0.15, help="share of text characters masked for --mlm-weight")
    ap.add_argument("--lexicon", type=Path,
                    help="lexicon file from lexicon.py; adds dictionary-match bits to the model's input")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    names = args.use.split(",")
    if args.init is not None:
        check_split_seed(args.init, args.split_seed)
    data = load_corpora(args.corpora, names, args.split_seed)
    train = {c: cut_long(tr, MAX_TRAIN_LEN) for c, (tr, _) in data.items()}
    if args.swap_fraction > 0:
        swap_labels = {"人物", "地点", "机构"}
        for corpus in ("msra", "pku"):
            if corpus in train:
                copies = augment(train[corpus], swap_labels, args.swap_fraction, args.seed,
                                 synthetic=args.synthetic_names,
                                 place_like_share=args.place_like_share,
                                 collision_share=args.collision_share,
                                 cross_rate=args.cross_swap)
                train[corpus] = train[corpus] + copies
    for item in filter(None, args.upsample.split(",")):
        corpus, _, times = item.partition("=")
        if corpus not in train or not times.isdigit() or int(times) < 1:
            raise SystemExit(f"--upsample: expected corpus=N with a corpus from --use and N >= 1, got {item!r}")
        train[corpus] = train[corpus] * int(times)
    dev = {c: [ex for ex in dv if len(ex.text) <= 510] for c, (_, dv) in data.items()}
    labels = sorted({l for c in names for l in CORPUS_LABELS[c]})

    vocab_path = args.out / "vocab.txt"
    if args.teacher:
        vocab = Vocab.load(args.teacher / "vocab.txt")
    elif vocab_path.exists():
        vocab = Vocab.load(vocab_path)
    elif args.init:
        # The weights being fine-tuned index this vocabulary.
        vocab = Vocab.load(args.init.parent / "vocab.txt")
    else:
        vocab = Vocab.build((ex.text for exs in train.values() for ex in exs), 2, "".join(labels))
    vocab.save(vocab_path)

    # A resumed run finds its lexicon in the run folder, and a run that
    # continues a lexicon model takes the lexicon its weights were trained with.
    lexicon_path = args.out / "lexicon.txt"
    source = args.lexicon
    if source is None and not lexicon_path.exists() and args.init and (args.init.parent / "lexicon.txt").exists():
        source = args.init.parent / "lexicon.txt"
    if source and source.resolve() != lexicon_path.resolve():
        shutil.copyfile(source, lexicon_path)
    words = lex.load(lexicon_path) if lexicon_path.exists() else None

    cfg = ModelConfig(vocab_size=len(vocab), **PRESETS[args.preset],
                      lexicon_bits=lex.BITS if words is not None else 0)
    model = Extractor(cfg)
    if args.init:
        init_state = torch.load(args.init)
        # Through ModelConfig, so fields added since the checkpoint take their defaults.
        if ModelConfig(**init_state["config"]).to_dict() == cfg.to_dict():
            model.load_state_dict(init_state["model"])
        else:
            fresh = grow_from(model, init_state["model"])
            log(args.out, f"grown from {args.init}: {len(fresh)} new tensors")
    teacher, project = None, None
    if args.teacher:
        tstate = torch.load(args.teacher / "best.pt")
        teacher = Extractor(ModelConfig(**tstate["config"]))
        teacher.load_state_dict(tstate["model"])
        teacher.eval()
        project = torch.nn.Linear(cfg.dim, teacher.cfg.dim)
    mlm_head = MaskedCharHead(cfg.dim, cfg.vocab_size) if args.mlm_weight > 0 else None
    params = (list(model.parameters()) + (list(project.parameters()) if project else [])
              + (list(mlm_head.parameters()) if mlm_head else []))
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)

    batcher = Batcher(train, vocab, labels, args.tokens_per_batch, args.seed, words)
    steps_per_epoch = len(batcher.epoch())
    total = int(steps_per_epoch * args.epochs)
    warmup = min(500, total // 10)

    def lr_at(step):
        if step < warmup:
            return args.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    step, best = 0, -1.0
    ckpt = args.out / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if project is not None and state.get("project"):
            project.load_state_dict(state["project"])
        if mlm_head is not None and state.get("mlm_head"):
            mlm_head.load_state_dict(state["mlm_head"])
        step, best = state["step"], state["best"]
        random.setstate(state["py_rng"])
        torch.set_rng_state(state["torch_rng"])
        batcher.rng.setstate(state["batch_rng"])
        log(args.out, f"resumed at step {step}")

    meta = dict(config=cfg.to_dict(), labels=labels, preset=args.preset, seed=args.seed,
                split_seed=args.split_seed,
                corpora=names, teacher=str(args.teacher) if args.teacher else None,
                init=str(args.init) if args.init else None, epochs=args.epochs, lr=args.lr,
                swap_fraction=args.swap_fraction, synthetic_names=args.synthetic_names,
                place_like_share=args.place_like_share, collision_share=args.collision_share,
                cross_swap=args.cross_swap,
                upsample=args.upsample, lexicon=words is not None,
                mlm_weight=args.mlm_weight, mlm_mask=args.mlm_mask)
    (args.out / "run.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2))
    nparams = sum(p.numel() for p in model.parameters())
    log(args.out, f"preset={args.preset} params={nparams} vocab={len(vocab)} steps={total} per_epoch={steps_per_epoch}")

    pids, pmask = prompt_tensors(vocab, labels)
    model.train()
    t0, tokens_seen = time.time(), 0
    # The checkpoint stores batcher.rng as it was when the current epoch's
    # order was drawn, so a resumed run redraws that order and skips the
    # steps already taken in it.
    epoch_rng = batcher.rng.getstate()
    while step < total:
        epoch_rng = batcher.rng.getstate()
        batches = batcher.epoch()
        for corpus, batch in batches[step % steps_per_epoch :]:
            if step >= total:
                break
            ids, mask, index, gs, ge, lexicon = batcher.tensors(corpus, batch)
            film = model.encode_prompt(pids, pmask)
            s, e, g = model.forward_pairs(ids, mask, index, film, lexicon)
            valid = mask.squeeze(-1).unsqueeze(1).expand_as(s)
            denom = valid.sum()
            loss = (F.binary_cross_entropy_with_logits(s, gs, weight=valid, reduction="sum")
                    + F.binary_cross_entropy_with_logits(e, ge, weight=valid, reduction="sum")) / denom
            if teacher is not None:
                with torch.no_grad():
                    tfilm = teacher.encode_prompt(pids, pmask)
                    ts, te, tg = teacher.forward_pairs(ids, mask, index, tfilm,
                                                       lexicon if teacher.cfg.lexicon_bits else None)
                kd = (F.binary_cross_entropy_with_logits(s, torch.sigmoid(ts), weight=valid, reduction="sum")
                      + F.binary_cross_entropy_with_logits(e, torch.sigmoid(te), weight=valid, reduction="sum")) / denom
                hid = ((project(g) - tg) ** 2 * valid.unsqueeze(-1)).sum() / (denom * tg.size(-1))
                loss = loss + args.kd_weight * kd + args.hidden_weight * hid
            mlm = None
            if mlm_head is not None:
                # A second pass of the encoder over corrupted copies of the same
                # texts: train sentences only, so no dev text is ever seen.
                mids, mlex, chosen, target = mask_chars(batch, ids, vocab, words, args.mlm_mask)
                if chosen.any():
                    mh = model.encode_text(mids, mask, mlex)
                    mlm = F.cross_entropy(mlm_head(mh[chosen], model.char.weight), target[chosen])
                    loss = loss + args.mlm_weight * mlm
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            tokens_seen += int(mask.sum())
            if step % 100 == 0:
                rate = tokens_seen / (time.time() - t0)
                extra = f" mlm {mlm.item():.4f}" if mlm is not None else ""
                log(args.out, f"step {step}/{total} loss {loss.item():.4f}{extra} lr {lr_at(step):.2e} {rate:.0f} tok/s")
            if step % args.eval_every == 0 or step == total:
                scores = evaluate(model, batcher, dev, vocab, labels)
                mean = sum(scores.values()) / len(scores)
                log(args.out, "dev F1 " + " ".join(f"{c}={v:.4f}" for c, v in scores.items()) + f" mean={mean:.4f}")
                state = dict(model=model.state_dict(), config=cfg.to_dict(), labels=labels,
                             scores=scores, step=step)
                if mean > best:
                    best = mean
                    torch.save(state, args.out / "best.pt")
                if args.snapshots:
                    torch.save(state, args.out / f"step-{step}.pt")
                torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), step=step, best=best,
                                project=project.state_dict() if project else None,
                                mlm_head=mlm_head.state_dict() if mlm_head else None,
                                py_rng=random.getstate(), torch_rng=torch.get_rng_state(),
                                batch_rng=epoch_rng), ckpt)
    log(args.out, f"done at step {step}, best mean dev F1 {best:.4f}")


if __name__ == "__main__":
    main()
