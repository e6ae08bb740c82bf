"""One pretrained BERT-style encoder per process, loaded from its folder in a fraction of a second.

The retriever's dense and token vectors and every assessor read the same base model
(all-MiniLM-L6-v2 by default). `base_encoder` loads it once per process and device: the weights
come straight from `model.safetensors` into a small PyTorch module whose parameter names and
block interface match transformers' `BertModel` (``embeddings``, ``encoder.layer[i]`` with
``attention.self.query`` ...), so the assessors' LoRA adapters merge into its blocks by name.

Loading this way imports neither transformers' modelling code nor sentence-transformers (several
seconds of imports on a small CPU, paid by every fresh process). A model this module does not
read (another architecture, relative positions, a checkpoint with other names) is loaded with
transformers' `AutoModel` instead: `load_base` says which it did, and both give the same numbers
(tests check this against transformers and sentence-transformers on the bundled model).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ragarbiter.errors import ConfigError, ModelNotFoundError
from ragarbiter.models import default_device, quiet_loading, resolve_model_path

logger = logging.getLogger(__name__)
_LOAD_LOCK = threading.RLock()

_ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "gelu_new": lambda x: F.gelu(x, approximate="tanh")}


class _Config:
    """The `config.json` fields the module reads (also `hidden_size` etc. as attributes, like transformers)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: _Config) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(
            cfg.vocab_size, cfg.hidden_size, padding_idx=getattr(cfg, "pad_token_id", 0)
        )
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        return self.LayerNorm(x + self.position_embeddings(positions)[None])


class BertSelfAttention(nn.Module):
    position_embedding_type = "absolute"

    def __init__(self, cfg: _Config) -> None:
        super().__init__()
        self.num_attention_heads = cfg.num_attention_heads
        self.attention_head_size = cfg.hidden_size // cfg.num_attention_heads
        self.scaling = self.attention_head_size**-0.5
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, t, _ = hidden.shape
        q, k, v = (
            proj(hidden).view(b, t, self.num_attention_heads, self.attention_head_size).transpose(1, 2)
            for proj in (self.query, self.key, self.value)
        )
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scaling)
        return out.transpose(1, 2).reshape(b, t, -1)


class BertSelfOutput(nn.Module):
    def __init__(self, cfg: _Config, size_in: int) -> None:
        super().__init__()
        self.dense = nn.Linear(size_in, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(hidden) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg: _Config) -> None:
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertSelfOutput(cfg, cfg.hidden_size)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: _Config) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = _ACTIVATIONS[cfg.hidden_act]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(hidden))


class BertLayer(nn.Module):
    is_decoder = False

    def __init__(self, cfg: _Config) -> None:
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertSelfOutput(cfg, cfg.intermediate_size)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """`mask`: additive (B, 1, 1, T) or boolean keys-to-read, broadcastable to the attention scores."""
        attended = self.attention.output(self.attention.self(hidden, mask), hidden)
        return self.output(self.intermediate(attended), attended)


class BertEncoderStack(nn.Module):
    def __init__(self, cfg: _Config) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.num_hidden_layers))


class BertEncoder(nn.Module):
    """Embeddings plus the encoder blocks of a BERT checkpoint (no pooler: nothing here reads it)."""

    def __init__(self, cfg: _Config) -> None:
        super().__init__()
        self.config = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoderStack(cfg)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids=None) -> torch.Tensor:
        """(B, T) ids and 0/1 mask -> (B, T, H) last hidden states."""
        hidden = self.embeddings(input_ids, token_type_ids)
        keys = attention_mask[:, None, None, :].bool()
        for layer in self.encoder.layer:
            hidden = layer(hidden, keys)
        return hidden


def _readable(cfg: dict[str, Any]) -> str | None:
    """Why this module cannot read the checkpoint, or None when it can."""
    if cfg.get("model_type") != "bert":
        return f"model_type {cfg.get('model_type')!r}"
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        return f"position_embedding_type {cfg['position_embedding_type']!r}"
    if cfg.get("hidden_act") not in _ACTIVATIONS:
        return f"hidden_act {cfg.get('hidden_act')!r}"
    if cfg.get("is_decoder") or cfg.get("add_cross_attention"):
        return "a decoder configuration"
    return None


@functools.lru_cache(maxsize=4)
def _checkpoint(path: str) -> tuple[_Config, dict[str, torch.Tensor]] | None:
    """(config, float32 weights) of a BERT checkpoint this module reads, else None."""
    folder = Path(path)
    weights = folder / "model.safetensors"
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    why = _readable(cfg)
    if why is not None or not weights.is_file():
        logger.debug("%s: read by transformers (%s)", path, why or "no model.safetensors")
        return None
    from safetensors.torch import load_file

    state = load_file(str(weights))
    prefix = "bert." if any(k.startswith("bert.") for k in state) else ""
    state = {k[len(prefix) :]: v.float() for k, v in state.items() if k.startswith(prefix)}
    return _Config(cfg), state


def _build(path: str) -> nn.Module | None:
    found = _checkpoint(path)
    if found is None:
        return None
    cfg, state = found
    net = BertEncoder(cfg)
    wanted = net.state_dict()
    missing = sorted(set(wanted) - set(state))
    if missing:
        logger.debug("%s: read by transformers (missing %s)", path, missing[:3])
        return None
    net.load_state_dict({k: state[k] for k in wanted})
    return net


def load_with_transformers(path: str, model: str) -> nn.Module:
    from transformers import AutoModel

    try:
        with quiet_loading():
            net = AutoModel.from_pretrained(path)
    except OSError as exc:
        msg = f"Could not load the encoder {model!r} from {path}: {exc}. Pass a folder holding a BERT-style model."
        raise ModelNotFoundError(msg) from exc
    if not hasattr(net, "encoder") or not hasattr(net.encoder, "layer"):
        msg = (
            f"Encoder {model!r} is a {type(net).__name__}; ragarbiter needs a BERT-style encoder "
            "(embeddings + encoder.layer)."
        )
        raise ModelNotFoundError(msg)
    return net


def direct_loading() -> bool:
    """False when RAGARBITER_LOADER=transformers: every encoder then loads through transformers,
    sentence-transformers and peft, as before this module existed (for comparison and as an escape hatch)."""
    choice = os.environ.get("RAGARBITER_LOADER", "auto").strip().lower()
    if choice not in ("auto", "transformers"):
        msg = f"RAGARBITER_LOADER must be 'auto' or 'transformers', got {choice!r}."
        raise ConfigError(msg)
    return choice == "auto"


def load_base(model: str) -> tuple[nn.Module, str]:
    """A fresh float32 copy of the pretrained encoder on CPU, eval mode, and which loader read it
    ("safetensors" or "transformers")."""
    path = str(resolve_model_path(model))
    net = _build(path) if direct_loading() else None
    loader = "safetensors"
    if net is None:
        net, loader = load_with_transformers(path, model), "transformers"
    return net.eval(), loader


@functools.lru_cache(maxsize=8)
def _shared(model: str, device: str, dtype: torch.dtype) -> nn.Module:
    if dtype != torch.float32:
        net = copy.deepcopy(_shared(model, device, torch.float32))  # one read from disk per process
    else:
        net, loader = load_base(model)
        logger.info("loaded encoder %s on %s (%s)", model, device, loader)
    net = net.to(device, dtype)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def base_encoder(model: str, device: str | None = None, dtype: torch.dtype | None = None) -> nn.Module:
    """The process-wide frozen encoder for (`model`, `device`, `dtype`): read from disk once, shared by the
    retriever's encoders and every assessor. Treat it as read-only; copy blocks before changing them."""
    with _LOAD_LOCK:
        return _shared(str(model), device or default_device(), dtype or torch.float32)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H) states and (B, T) mask -> (B, H) mean over the unmasked tokens."""
    weights = mask.to(hidden.dtype)[..., None]
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
