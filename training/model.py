"""Span-pointer extractor with the input and output contract of UIE exports.

The text is encoded without looking at the prompt: prompt positions are zeroed
after every layer and the encoder has no absolute positions, so a text's
encoding does not depend on where it sits in the packed
``[CLS] prompt [SEP] text [SEP]`` row. Training exploits this by encoding each
text once and applying every label's prompt on top (SiameseUIE's split), while
the exported graph still takes one packed row per (label, text) pair.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

# Multiplier for the hashed (previous, current) character bigram.
BIGRAM_PRIME = 1000003


@dataclass
class ModelConfig:
    vocab_size: int
    dim: int = 256
    conv_layers: int = 4
    attention_layers: int = 1
    heads: int = 4
    fusion_layers: int = 1
    bigram_buckets: int = 32768
    bigram_dim: int = 64
    dropout: float = 0.1
    # Dictionary-match bits per character (lexicon.py). With 0 the model takes
    # no lexicon input, and the exported graphs have the plain UIE inputs.
    lexicon_bits: int = 0

    def to_dict(self):
        return asdict(self)


class ConvBlock(nn.Module):
    """Gated convolution over [left, centre, right] neighbours at a dilation."""

    def __init__(self, dim: int, dilation: int, dropout: float):
        super().__init__()
        self.dilation = dilation
        self.mix = nn.Linear(3 * dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, h, mask):
        d = self.dilation
        padded = F.pad(h, (0, 0, d, d))
        left = padded[:, : h.size(1), :]
        right = padded[:, 2 * d :, :]
        a, b = self.mix(torch.cat([left, h, right], dim=-1)).chunk(2, dim=-1)
        y = self.out(self.drop(a * torch.sigmoid(b)))
        return self.norm(h + self.drop(y)) * mask


class AttentionBlock(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.ff1 = nn.Linear(dim, 2 * dim)
        self.ff2 = nn.Linear(2 * dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, h, mask):
        b, t, d = h.shape
        hd = d // self.heads
        q, k, v = self.qkv(h).view(b, t, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
        key_mask = mask.squeeze(-1)[:, None, None, :]
        scores = scores + (1.0 - key_mask) * -10000.0
        att = torch.softmax(scores, dim=-1)
        y = torch.matmul(self.drop(att), v).transpose(1, 2).reshape(b, t, d)
        h = self.norm1(h + self.drop(self.proj(y)))
        y = self.ff2(self.drop(F.gelu(self.ff1(h))))
        return self.norm2(h + self.drop(y)) * mask


class Extractor(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.char = nn.Embedding(cfg.vocab_size, d)
        self.bigram = nn.Embedding(cfg.bigram_buckets, cfg.bigram_dim)
        self.inp = nn.Linear(d + cfg.bigram_dim, d)
        self.inp_norm = nn.LayerNorm(d)
        if cfg.lexicon_bits:
            self.lexicon = nn.Linear(cfg.lexicon_bits, d, bias=False)
            self.register_buffer("bit_values", 2 ** torch.arange(cfg.lexicon_bits), persistent=False)
        dilations = [1, 2, 1, 4, 1, 2, 1, 4][: cfg.conv_layers]
        self.convs = nn.ModuleList(ConvBlock(d, r, cfg.dropout) for r in dilations)
        self.attn = nn.ModuleList(
            AttentionBlock(d, cfg.heads, cfg.dropout) for _ in range(cfg.attention_layers)
        )
        self.prompt = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 2 * d))
        self.fusion = nn.ModuleList(
            ConvBlock(d, 1, cfg.dropout) for _ in range(cfg.fusion_layers)
        )
        self.head = nn.Linear(d, 2)
        self.drop = nn.Dropout(cfg.dropout)

    def encode_text(self, ids, mask, lexicon=None):
        """Encode text ids [B, T] (mask float [B, T, 1]) into [B, T, D].

        lexicon [B, T] contains each character's dictionary-match bits as one
        integer. Models built without lexicon_bits ignore it.
        """
        prev = F.pad(ids, (1, 0))[:, :-1] * F.pad(mask.squeeze(-1).long(), (1, 0))[:, :-1]
        bigram = (prev * BIGRAM_PRIME + ids) % self.cfg.bigram_buckets
        x = torch.cat([self.char(ids), self.bigram(bigram)], dim=-1)
        x = self.inp(self.drop(x))
        if self.cfg.lexicon_bits:
            if lexicon is None:
                lexicon = torch.zeros_like(ids)
            bits = torch.div(lexicon.unsqueeze(-1), self.bit_values, rounding_mode="floor") % 2
            x = x + self.lexicon(bits.float())
        h = self.inp_norm(x) * mask
        for block in self.convs:
            h = block(h, mask)
        for block in self.attn:
            h = block(h, mask)
        return h

    def encode_prompt(self, ids, mask):
        """Pool prompt ids [L, P] (mask [L, P, 1]) into FiLM scale and shift [L, 2D]."""
        e = (self.char(ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.prompt(e)

    def decode(self, h, film, mask):
        """Apply one FiLM row per text row and return start, end logits [B, T]."""
        scale, shift = film.unsqueeze(1).chunk(2, dim=-1)
        g = (h * (1.0 + scale) + shift) * mask
        for block in self.fusion:
            g = block(g, mask)
        logits = self.head(g)
        return logits[..., 0], logits[..., 1], g

    def forward_pairs(self, text_ids, text_mask, label_index, prompt_film, lexicon=None):
        """Training path: encode each text once, then decode every listed label.

        label_index [B, L] picks rows of prompt_film for each text. Returns
        start, end logits [B, L, T] and the fused states [B, L, T, D].
        """
        b, t = text_ids.shape
        lcount = label_index.size(1)
        h = self.encode_text(text_ids, text_mask, lexicon)
        h_rep = h.unsqueeze(1).expand(b, lcount, t, h.size(-1)).reshape(b * lcount, t, -1)
        m_rep = text_mask.unsqueeze(1).expand(b, lcount, t, 1).reshape(b * lcount, t, 1)
        film = prompt_film[label_index.reshape(-1)]
        s, e, g = self.decode(h_rep, film, m_rep)
        return s.view(b, lcount, t), e.view(b, lcount, t), g.view(b, lcount, t, -1)


class PackedExtractor(nn.Module):
    """The exported form: UIE inputs in, start and end probabilities out."""

    def __init__(self, model: Extractor):
        super().__init__()
        self.model = model

    def forward(self, input_ids, token_type_ids, attention_mask, lexicon_bits=None):
        valid = attention_mask.float()
        text = (token_type_ids.float() * valid).unsqueeze(-1)
        prompt = ((1 - token_type_ids).float() * valid).unsqueeze(-1)
        in_text = text.squeeze(-1).long()
        lexicon = lexicon_bits * in_text if lexicon_bits is not None else None
        h = self.model.encode_text(input_ids * in_text, text, lexicon)
        film = self.model.encode_prompt(input_ids, prompt)
        s, e, _ = self.model.decode(h, film, text)
        keep = text.squeeze(-1)
        return torch.sigmoid(s) * keep, torch.sigmoid(e) * keep


def grow_from(model: Extractor, smaller: dict[str, torch.Tensor]) -> list[str]:
    """Start a deeper model of the same width from a smaller one's weights.

    Blocks the smaller model has are copied. Each extra block's residual
    branch starts at zero, so the block passes its input through its
    LayerNorm only. A lexicon projection the smaller model lacks starts at
    zero too. The grown model therefore starts near the smaller
    model's accuracy instead of from scratch. Returns the new tensors' names.
    """
    own = model.state_dict()
    dropped = sorted(set(smaller) - set(own))
    if dropped:
        raise ValueError(f"cannot grow: the larger model has no {', '.join(dropped)}")
    fresh = []
    for name, value in own.items():
        if name in smaller and smaller[name].shape == value.shape:
            own[name] = smaller[name].clone()
            continue
        if name.split(".")[0] not in ("convs", "attn", "fusion", "lexicon"):
            raise ValueError(f"cannot grow into {name}: the smaller model has no {tuple(value.shape)} tensor")
        fresh.append(name)
        if re.search(r"\.(out|proj|ff2)\.(weight|bias)$", name) or name.startswith("lexicon."):
            own[name] = torch.zeros_like(value)
    model.load_state_dict(own)
    return fresh
