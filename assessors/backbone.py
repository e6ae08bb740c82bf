"""Query-conditioned encoding of passages, shared by every assessor.

Each passage is read together with the query, as the pair ``[CLS] query [SEP] passage [SEP]``
through all-MiniLM-L6-v2. The bottom `split` transformer blocks are the frozen pretrained
model: they run once per (query, passage) and their output is cached, and shared by the
assessors whose adapters freeze the same blocks and read the same number of tokens. Each
assessor's LoRA adapter lives only in the blocks above its split.
"""

from __future__ import annotations

import argparse
import functools
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from ragarbiter.deadline import check_budget
from ragarbiter.errors import ConfigError, InvalidInputError
from ragarbiter.models import default_device, native_bf16, resolve_model_path

logger = logging.getLogger(__name__)
_LOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class BackboneSpec:
    """Which encoder, where its frozen bottom ends, and how many tokens a pair may hold."""

    model: str = "all-MiniLM-L6-v2"
    split: int = 4
    max_length: int = 160

    def __post_init__(self) -> None:
        if not isinstance(self.split, int) or self.split < 0:
            msg = f"BackboneSpec.split must be an int >= 0 (frozen bottom blocks), got {self.split!r}."
            raise ConfigError(msg)
        if not isinstance(self.max_length, int) or not 16 <= self.max_length <= 512:
            msg = f"BackboneSpec.max_length must be an int in [16, 512], got {self.max_length!r}."
            raise ConfigError(msg)


# The encoder settings each shipped adapter was trained with: the defaults of `ragarbiter train
# <task>` and of the training functions, so that retraining reproduces the shipped recipe. The
# conflict stage reads 256 tokens (generated arguments conclude last); both trained stages adapt
# the top four blocks; the poison judge is a conflict adapter of the first recipe.
TRAINED_SPECS = {
    "conflict": BackboneSpec(split=2, max_length=256),
    "inappropriate": BackboneSpec(split=2, max_length=160),
}


@dataclass(frozen=True)
class PairEncoding:
    """One tokenized (query, passage) pair; `offsets` are character spans into the passage."""

    input_ids: tuple[int, ...]
    token_type_ids: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]
    in_passage: tuple[bool, ...]

    def __len__(self) -> int:
        return len(self.input_ids)


@functools.lru_cache(maxsize=8)
def _tokenizer(path: str, max_length: int):
    """The model's Rust tokenizer, truncating (query, passage) pairs longest-first to `max_length` tokens."""
    from ragarbiter.retrievers.encoders import tokenizer_file

    tok = tokenizer_file(path)
    tok.enable_truncation(max_length, strategy="longest_first")
    tok.no_padding()
    return tok


def inference_dtype(device: str):
    """bfloat16 where the hardware runs it natively (CUDA, or CPUs with AVX512-BF16 / AMX), else float32.

    Set RAGARBITER_ASSESSOR_DTYPE=float32 (or bfloat16) to choose explicitly.
    """
    import os

    import torch

    forced = os.environ.get("RAGARBITER_ASSESSOR_DTYPE", "").strip().lower()
    if forced:
        if forced not in ("float32", "bfloat16"):
            msg = f"RAGARBITER_ASSESSOR_DTYPE must be float32 or bfloat16, got {forced!r}."
            raise ConfigError(msg)
        return getattr(torch, forced)
    return torch.bfloat16 if native_bf16(device) else torch.float32


def load_encoder_model(model: str):
    """A fresh, trainable copy of the pretrained encoder (transformers `AutoModel`, what peft adapts), on
    CPU, eval mode. Inference reads the process-wide `ragarbiter.retrievers.bert.base_encoder` instead."""
    from ragarbiter.retrievers.bert import load_with_transformers

    return load_with_transformers(str(resolve_model_path(model)), model).eval()


def extended_mask(mask, dtype):
    """(B, T) 0/1 attention mask -> (B, 1, 1, T) additive mask for the attention layers."""
    import torch

    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def run_layers(layers, hidden, mask):
    """Run transformer blocks over `hidden` (B, T, H) with a (B, T) attention mask."""
    ext = extended_mask(mask, hidden.dtype)
    for layer in layers:
        out = layer(hidden, ext)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def run_bottom(net, split: int, input_ids, token_type_ids, mask):
    """Embeddings plus the first `split` blocks of `net` -> (B, T, H)."""
    hidden = net.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
    return run_layers(net.encoder.layer[:split], hidden, mask)


# Cost of one block, in microseconds, as measured for MiniLM (H=384) in bfloat16 on a 2-core
# CPU: per token (the linear layers), per token pair of a sequence (attention), per group
# (one more attention call). `length_groups` minimises their sum.
BLOCK_COST_TOKEN, BLOCK_COST_PAIR, BLOCK_COST_GROUP = 1.8, 0.008, 60.0


def length_groups(lengths: Sequence[int]) -> list[list[int]]:
    """Split sequence indices into groups of similar length, each padded to its own longest.

    One batch padded to the longest sequence pays for the padding in every linear layer
    and quadratically in attention: with one 256-token passage among 130-token ones, most
    of the work is padding. Sorting by length and cutting where it pays (an exact dynamic
    programme over the sorted lengths) keeps the linear layers one call over all groups.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    sorted_lengths = [lengths[i] for i in order]
    n = len(order)
    best, cut = [0.0] + [float("inf")] * n, [0] * (n + 1)
    for end in range(1, n + 1):
        width = sorted_lengths[end - 1]
        each = BLOCK_COST_TOKEN * width + BLOCK_COST_PAIR * width * width
        for start in range(end):
            cost = best[start] + (end - start) * each + BLOCK_COST_GROUP
            if cost < best[end]:
                best[end], cut[end] = cost, start
    groups, end = [], n
    while end > 0:
        groups.append(order[cut[end] : end])
        end = cut[end]
    return groups[::-1]


def run_blocks(layers, states: Sequence) -> list:
    """Run BERT blocks over sequences of different lengths -> one (T_i, H) tensor per sequence.

    The inference counterpart of `run_layers`: the sequences are laid out in `length_groups`,
    each group padded to its own longest member, in one (rows, H) buffer. The linear layers,
    layer norms and activations run once over the whole buffer; attention runs per group on
    views of it, so no sequence attends over another group's padding. Same result as one
    padded batch, up to rounding.
    """
    import torch
    import torch.nn.functional as F

    if not states:
        return []
    lengths = [int(s.shape[0]) for s in states]
    groups = length_groups(lengths)
    spans, rows = [], 0  # (first row, sequences, width) per group
    for g in groups:
        width = max(lengths[i] for i in g)
        spans.append((rows, len(g), width))
        rows += len(g) * width
    x = states[0].new_zeros(rows, states[0].shape[-1])
    masks = []
    for (first, _, width), g in zip(spans, groups):
        for k, i in enumerate(g):
            x[first + k * width : first + k * width + lengths[i]] = states[i]
        if all(lengths[i] == width for i in g):
            masks.append(None)
            continue
        own = torch.tensor([lengths[i] for i in g], device=x.device)
        masks.append((torch.arange(width, device=x.device)[None, :] < own[:, None])[:, None, None, :])  # keys to read
    for layer in layers:
        attention = layer.attention.self
        heads, size = attention.num_attention_heads, attention.attention_head_size
        if getattr(attention, "position_embedding_type", "absolute") != "absolute" or getattr(
            layer, "is_decoder", False
        ):
            msg = "run_blocks reads BERT encoder blocks with absolute positions; this model's blocks are not."
            raise ConfigError(msg)
        scaling = getattr(attention, "scaling", size**-0.5)
        q, k, v = attention.query(x), attention.key(x), attention.value(x)
        context = torch.empty_like(q)
        for (first, count, width), mask in zip(spans, masks):
            part = slice(first, first + count * width)
            qg, kg, vg = (t[part].view(count, width, heads, size).transpose(1, 2) for t in (q, k, v))
            out = F.scaled_dot_product_attention(qg, kg, vg, attn_mask=mask, scale=scaling)
            context[part] = out.transpose(1, 2).reshape(count * width, heads * size)
        x = layer.attention.output(context, x)
        x = layer.output(layer.intermediate(x), x)
    out = [None] * len(states)
    for (first, _, width), g in zip(spans, groups):
        for k, i in enumerate(g):
            out[i] = x[first + k * width : first + k * width + lengths[i]]
    return out


_BATCHERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_BATCHERS_LOCK = threading.Lock()


def run_blocks_shared(layers, states: Sequence) -> list:
    """`run_blocks` for inference, micro-batched: threads that run the same blocks at the same time
    (a server answering several queries) share one pass (`ragarbiter.batching.MicroBatcher`)."""
    from ragarbiter.batching import MicroBatcher

    with _BATCHERS_LOCK:
        batcher = _BATCHERS.get(layers)
        if batcher is None:

            def one_pass(batch: list, layers=layers) -> list:
                import torch

                with torch.inference_mode():
                    return run_blocks(layers, batch)

            batcher = _BATCHERS[layers] = MicroBatcher(one_pass)
    return batcher(list(states))


def batching_stats() -> dict[str, int]:
    """Calls into the assessors' shared encoder blocks, and the passes that ran them (fewer under load)."""
    with _BATCHERS_LOCK:
        batchers = list(_BATCHERS.values())
    return {"calls": sum(b.calls for b in batchers), "passes": sum(b.passes for b in batchers)}


def pad_batch(encodings: Sequence[PairEncoding], device="cpu") -> dict:
    """Right-padded tensors: input_ids, token_type_ids, attention_mask, passage_mask (B, T)."""
    import torch

    width = max(len(e) for e in encodings)

    def tensor(rows, fill=0, dtype=torch.long):
        return torch.tensor([list(r) + [fill] * (width - len(r)) for r in rows], dtype=dtype, device=device)

    return {
        "input_ids": tensor([e.input_ids for e in encodings]),
        "token_type_ids": tensor([e.token_type_ids for e in encodings]),
        "attention_mask": tensor([[1] * len(e) for e in encodings]),
        "passage_mask": tensor([e.in_passage for e in encodings], False, torch.bool),
    }


# Sentence vectors are cached per sentence text, beside the per-passage states: room for this
# many sentences per cached passage (retrieved passages are chunks of about 200 tokens).
SENTENCES_PER_PASSAGE = 16


class Backbone:
    """Tokenizer + frozen bottom blocks, with a bounded (query, passage) -> states cache."""

    def __init__(self, spec: BackboneSpec | None = None, *, device: str | None = None, cache_size: int = 256) -> None:
        self.spec = spec or BackboneSpec()
        self._device = device
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], tuple[PairEncoding, object]] = OrderedDict()
        from ragarbiter.retrievers.encoders import EmbeddingCache

        self._vectors = EmbeddingCache(capacity=SENTENCES_PER_PASSAGE * cache_size)  # text -> sentence vector
        self._lock = threading.Lock()

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = default_device()
        return self._device

    @property
    def tokenizer(self):
        """The model's `tokenizers.Tokenizer`, truncating to `spec.max_length` tokens (pairs longest-first)."""
        return _tokenizer(str(resolve_model_path(self.spec.model)), self.spec.max_length)

    def count_tokens(self, texts: Sequence[str], *, special: bool = True) -> list[int]:
        """Untruncated token counts (with or without the [CLS]/[SEP] the encoder adds)."""
        from ragarbiter.retrievers.encoders import TextTokenizer

        backend = TextTokenizer(self.spec.model).backend
        return [len(e.ids) for e in backend.encode_batch(list(texts), add_special_tokens=special)]

    @functools.cached_property
    def dtype(self):
        return inference_dtype(self.device)

    @functools.cached_property
    def net(self):
        """The process-wide base encoder (shared with the retriever), in this backbone's device and dtype."""
        from ragarbiter.retrievers.bert import base_encoder

        with _LOAD_LOCK:
            net = base_encoder(self.spec.model, self.device, self.dtype)
            if self.spec.split > len(net.encoder.layer):
                msg = f"BackboneSpec.split={self.spec.split} but {self.spec.model} has {len(net.encoder.layer)} blocks."
                raise ConfigError(msg)
            return net

    def encode_pairs(self, query: str, texts: Sequence[str]) -> list[PairEncoding]:
        """Tokenize (query, text) pairs, truncating the longer side to `max_length` tokens."""
        if not isinstance(query, str) or not query.strip():
            msg = f"The assessors need a non-empty query string, got {query!r}."
            raise InvalidInputError(msg)
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                msg = f"Passage text #{i} is a {type(t).__name__}, not a str. Decode it first."
                raise InvalidInputError(msg)
        if not texts:
            return []
        out = []
        for enc in self.tokenizer.encode_batch([(query, t) for t in texts]):
            seq = enc.sequence_ids
            offsets = tuple((a, b) if s == 1 else (0, 0) for (a, b), s in zip(enc.offsets, seq))
            out.append(PairEncoding(tuple(enc.ids), tuple(enc.type_ids), offsets, tuple(s == 1 for s in seq)))
        return out

    def bottom(self, query: str, texts: Sequence[str]) -> tuple[list[PairEncoding], list]:
        """Encodings and bottom-block states (one (T_i, H) tensor per text), cached per pair."""
        texts = list(texts)
        with self._lock:
            found = {t: self._cache.get((query, t)) for t in texts}
        missing = list(dict.fromkeys(t for t, v in found.items() if v is None))
        if missing:
            encodings = self.encode_pairs(query, missing)
            states = self._blocks(
                [e.input_ids for e in encodings],
                [e.token_type_ids for e in encodings],
                self.net.encoder.layer[: self.spec.split],
            )
            with self._lock:
                for t, e, s in zip(missing, encodings, states):
                    found[t] = (e, s.clone())
                    self._cache[(query, t)] = found[t]
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return [found[t][0] for t in texts], [found[t][1] for t in texts]

    def sentence_vectors(self, texts: Sequence[str]):
        """(n, H) float32 unit rows: each text alone through the whole base encoder, mean-pooled over its
        tokens (the all-MiniLM-L6-v2 sentence embedding), in the inference dtype; cached per text."""
        import numpy as np
        import torch

        texts = list(texts)
        found = {t: self._vectors.get(t) for t in texts}
        missing = list(dict.fromkeys(t for t, v in found.items() if v is None))
        if missing:
            ids = [e.ids for e in self.tokenizer.encode_batch(missing)]
            states = self._blocks(ids, None, self.net.encoder.layer)
            with torch.inference_mode():
                pooled = torch.stack([h.float().mean(0) for h in states])
                vectors = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
            for t, v in zip(missing, vectors):
                found[t] = v
                self._vectors.put(t, v)
        if not texts:
            return np.zeros((0, self.net.config.hidden_size), dtype=np.float32)
        return np.stack([found[t] for t in texts])

    def _blocks(
        self, input_ids: Sequence[Sequence[int]], token_type_ids: Sequence[Sequence[int]] | None, layers
    ) -> list:
        """Token-id rows embedded and run through `layers` in length groups -> one (T_i, H) tensor per row."""
        import torch

        width = max(len(x) for x in input_ids)
        ids = torch.tensor([list(x) + [0] * (width - len(x)) for x in input_ids], device=self.device)
        types = (
            torch.tensor([list(x) + [0] * (width - len(x)) for x in token_type_ids], device=self.device)
            if token_type_ids is not None
            else torch.zeros_like(ids)
        )
        check_budget("assessor encoder")
        with torch.inference_mode():
            embedded = self.net.embeddings(input_ids=ids, token_type_ids=types)
        return run_blocks_shared(layers, [h[: len(x)] for h, x in zip(embedded, input_ids)])


@functools.lru_cache(maxsize=8)
def shared_backbone(spec: BackboneSpec = BackboneSpec(), device: str | None = None) -> Backbone:
    """One Backbone per (spec, device) in a process, so assessors share its cache."""
    return Backbone(spec, device=device)


def padded_states(states: Sequence, device="cpu"):
    """Stack (T_i, H) tensors into (B, T, H) plus a (B, T) mask."""
    import torch

    width = max(s.shape[0] for s in states)
    hidden = torch.zeros(len(states), width, states[0].shape[1], dtype=states[0].dtype, device=device)
    mask = torch.zeros(len(states), width, dtype=torch.long, device=device)
    for i, s in enumerate(states):
        hidden[i, : s.shape[0]] = s
        mask[i, : s.shape[0]] = 1
    return hidden, mask


def top_layers(model: str, split: int, adapter_dir=None, device: str = "cpu"):
    """The blocks from `split` up, copied from the shared base encoder with the LoRA adapter in
    `adapter_dir` merged in (eval mode, float32 on `device`)."""
    import copy

    import torch

    from ragarbiter.retrievers.bert import base_encoder, direct_loading
    from ragarbiter.training import lora_deltas

    base = base_encoder(model, device, torch.float32)
    layers = copy.deepcopy(base.encoder.layer[split:])
    deltas = {} if adapter_dir is None else lora_deltas(adapter_dir) if direct_loading() else None
    if deltas is None:  # an adapter kind only peft reads: merge it into a whole fresh copy
        from ragarbiter.training import load_adapter_into

        merged = load_adapter_into(load_encoder_model(model), adapter_dir, merge=True)
        layers, deltas = merged.encoder.layer[split:].to(device), {}
    for name, delta in deltas.items():
        head, _, rest = name.partition("encoder.layer.")
        index, _, inner = rest.partition(".")
        if head or not index.isdigit() or int(index) < split or int(index) >= split + len(layers):
            msg = (
                f"The adapter in {adapter_dir} changes {name!r}, outside the blocks {split}+ it may adapt. Re-train it."
            )
            raise ConfigError(msg)
        with torch.no_grad():
            layers[int(index) - split].get_submodule(inner).weight += delta.to(device)
    for p in layers.parameters():
        p.requires_grad_(False)
    return layers.eval()


def describe_model(model: str, split: int) -> dict:
    """Name, weights hash and frozen-block count of the base encoder, for manifests."""
    from ragarbiter.training import sha256_file

    weights = resolve_model_path(model) / "model.safetensors"
    return {
        "name": model,
        "frozen_blocks": split,
        "weights_sha256": sha256_file(weights) if weights.is_file() else None,
    }


@functools.lru_cache(maxsize=4)
def shared_dense_encoder(model: str = "all-MiniLM-L6-v2", device: str | None = None):
    """One sentence encoder (and text->vector cache) per model in a process, for the assessors.

    Pass the store's own encoder to a stage instead when you have it: retrieval primes
    that encoder's cache with the vectors it fetched, so nothing is encoded twice.
    """
    from ragarbiter.config import EncoderConfig
    from ragarbiter.retrievers import DenseEncoder

    return DenseEncoder(EncoderConfig(model=model, device=device))


def add_encoder_args(parser: argparse.ArgumentParser, task: str) -> None:
    """Options of the assessor encoder (frozen bottom, adapted top), defaulting to the shipped `task` adapter's."""
    split, max_length = TRAINED_SPECS[task].split, TRAINED_SPECS[task].max_length
    parser.add_argument(
        "--max-length", type=int, default=max_length, help=f"tokens per (query, passage) pair (default: {max_length})"
    )
    parser.add_argument(
        "--split",
        type=int,
        default=split,
        help=f"frozen bottom blocks; LoRA adapts the blocks above them. Stages whose adapters freeze "
        f"the same blocks and read the same length share the bottom's cached states (default: {split})",
    )
