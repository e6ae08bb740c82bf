"""Per-document attention capture for Hugging Face causal LMs, without eager attention.

`capture_attention(model)` switches the model, for the duration of a ``with`` block, to an
attention function registered through transformers' ``AttentionInterface``. That function
calls the model's own implementation (SDPA, flash, flex, ...) unchanged, and for the rows a
`CaptureRequest` names it also calls `ragarbiter.kernels.segment_attention_mass` on the
query rows and the key cache the layer already has in hand. ``output_attentions`` and the
eager (L x L) attention matrix are never needed.

`SegmentAttention` builds on it: prompts with exact token spans per document (from the
tokenizer's offsets), the key/value cache of a long shared prefix reused across calls, several
prompts in one forward pass, and per-document attention mass averaged over heads, then layers.
`PiecewiseEncoder` encodes prompts that re-arrange the same documents from cached pieces.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import sys
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from operator import le
from typing import Any

from ragarbiter.errors import ConfigError, InvalidInputError, ShapeError

logger = logging.getLogger(__name__)

CAPTURE_IMPL = "ragarbiter_capture"
SUPPORTED_FAMILIES = (
    "Llama",
    "Qwen2",
    "Qwen3",
    "Mistral",
    "Gemma (not Gemma 2: softcapping)",
    "Phi-3",
    "Olmo",
    "Granite",
)
_ACTIVE: ContextVar[CaptureRequest | None] = ContextVar("ragarbiter_attention_capture", default=None)
_REGISTER_LOCK = threading.Lock()
_SWITCH_LOCK = threading.RLock()
_registered = False


@dataclass
class CaptureRequest:
    """What to capture in one forward pass, and where the captured mass goes.

    For batch row ``b``: ``query_index[b]`` is the row of the layer's query tensor to read
    (the last real token), ``key_end[b]`` the absolute number of keys that row sees, and
    ``segments[b]`` an (S_b, 2) tensor of absolute ``[start, end)`` key ranges.
    ``total_keys`` is the absolute length of the padded sequence (cache plus new tokens).
    """

    query_index: Sequence[int]
    key_end: Sequence[int]
    segments: Sequence[Any]
    total_keys: int
    layers: frozenset[int] | None = None
    backend: str = "auto"
    base: str = "sdpa"
    mass: dict[int, list[Any]] = field(default_factory=dict)  # layer -> per row (Hq, S_b) fp32

    def wants(self, layer: int) -> bool:
        return self.layers is None or layer in self.layers


class _BaseView:
    """The attention module as its own implementation sees it: the config names the wrapped
    implementation (flash attention, for one, looks its kernel up by that name)."""

    def __init__(self, module, base: str) -> None:
        config = copy.copy(module.config)
        config._attn_implementation_internal = base
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "config", config)

    def __getattr__(self, name: str):
        return getattr(self._module, name)


def _base_view(module, base: str) -> _BaseView:
    views = module.__dict__.setdefault("_ragarbiter_views", {})  # plain attribute: not a submodule
    view = views.get(base)
    if view is None:
        view = views[base] = _BaseView(module, base)
    return view


def _capture_attention(module, query, key, value, attention_mask, **kwargs):
    """The registered attention function: the model's own attention, plus segment mass on request."""
    request = _ACTIVE.get()
    base = _current_base()
    out = _base_function(module, base)(_base_view(module, base), query, key, value, attention_mask, **kwargs)
    layer = getattr(module, "layer_idx", None)
    if request is not None and layer is not None and request.wants(layer):
        request.mass[layer] = _segment_mass(module, request, query, key, kwargs)
    return out


def _current_base() -> str:
    request = _ACTIVE.get()
    return request.base if request is not None else "sdpa"


def _capture_mask(*args, **kwargs):
    """The mask function of the wrapped implementation (what `sdpa`, `eager` or flash would get)."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    base = _current_base()
    if base not in ALL_MASK_ATTENTION_FUNCTIONS:
        return None  # the wrapped implementation builds no mask either (custom kernels)
    return ALL_MASK_ATTENTION_FUNCTIONS[base](*args, **kwargs)


def _base_function(module, base: str):
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if base == "eager":
        fn = getattr(sys.modules[type(module).__module__], "eager_attention_forward", None)
        if fn is None:
            raise ConfigError(
                f"{type(module).__name__} has no eager attention function to wrap; load it with "
                f"attn_implementation='sdpa'."
            )
        return fn
    return ALL_ATTENTION_FUNCTIONS[base]


def _segment_mass(module, request: CaptureRequest, query, key, kwargs) -> list:
    import torch

    from ragarbiter.kernels import segment_attention_mass

    for name in ("softcap", "s_aux"):
        if kwargs.get(name) is not None:
            msg = (
                f"{type(module).__name__} uses attention {name!r}, which changes the softmax; per-document "
                f"attention mass cannot be read exactly from it. Supported families: {', '.join(SUPPORTED_FAMILIES)}."
            )
            raise ConfigError(msg)
    window = kwargs.get("sliding_window") or None
    # With a sliding-window cache the layer sees only the last keys: local index j is absolute base + j.
    base = request.total_keys - key.shape[2]
    out = []
    for b, (qi, end, segs) in enumerate(zip(request.query_index, request.key_end, request.segments)):
        lo = max(base, end - window) if window else base
        q = query[b : b + 1, :, qi : qi + 1]  # (1, Hq, 1, d)
        k = key[b : b + 1, :, lo - base : end - base]  # (1, Hkv, n, d)
        local = (segs - lo).clamp(0, end - lo)  # (S, 2)
        mass = segment_attention_mass(q, k, local, scale=kwargs.get("scaling"), backend=request.backend)
        out.append(mass[0, :, 0].detach().to(torch.float32))  # (Hq, S)
    return out


def register_capture() -> None:
    """Register the capture function with transformers' AttentionInterface (once per process)."""
    global _registered  # noqa: PLW0603
    with _REGISTER_LOCK:
        if _registered:
            return
        try:
            from transformers import AttentionInterface
        except ImportError as exc:  # transformers older than the attention interface
            msg = (
                "Attention capture needs transformers with AttentionInterface (4.48 or later); "
                "upgrade with `pip install -U transformers`."
            )
            raise ConfigError(msg) from exc
        from transformers.masking_utils import AttentionMaskInterface

        AttentionInterface.register(CAPTURE_IMPL, _capture_attention)
        # The mask must be the one the wrapped implementation expects (causal offset, sliding window).
        AttentionMaskInterface.register(CAPTURE_IMPL, _capture_mask)
        _registered = True


def check_hookable(model) -> None:
    """Raise a clear error unless `model` routes its attention through the AttentionInterface."""
    config = getattr(model, "config", None)
    supports = getattr(model, "_supports_attention_backend", False)
    can_set = getattr(model, "_can_set_attn_implementation", None)
    if config is None or not supports or (callable(can_set) and not can_set()):
        msg = (
            f"{type(model).__name__} does not route its attention through transformers' AttentionInterface, "
            f"so its per-document attention cannot be captured. Supported families: "
            f"{', '.join(SUPPORTED_FAMILIES)} (any model whose attention layers call "
            f"ALL_ATTENTION_FUNCTIONS)."
        )
        raise ConfigError(msg)


@contextlib.contextmanager
def capture_attention(model, request: CaptureRequest | None = None) -> Iterator[CaptureRequest]:
    """Run the model's forward passes inside this block with the capture function switched in.

    Blocks nest (an inner block captures for its own request and hands the model back to the
    outer one), and the model's own implementation is restored on exit, error or not.
    """
    register_capture()
    check_hookable(model)
    with _SWITCH_LOCK:
        previous = model.config._attn_implementation
        outer = _ACTIVE.get()
        base = previous if previous != CAPTURE_IMPL else (outer.base if outer is not None else "sdpa")
        if request is not None:
            request.base = base
        else:
            request = CaptureRequest((), (), (), 0, layers=frozenset(), base=base)  # capture nothing
        token = _ACTIVE.set(request)
        try:
            if previous != CAPTURE_IMPL:
                model.set_attn_implementation(CAPTURE_IMPL)
            try:
                yield request
            finally:
                if previous != CAPTURE_IMPL:
                    model.set_attn_implementation(previous)
        finally:
            _ACTIVE.reset(token)


@dataclass
class EncodedPrompt:
    ids: list[int]
    spans: list[tuple[int, int]]  # token [start, end) per document


class SegmentAttention:
    """Per-document attention mass of the last prompt token, for any AttentionInterface causal LM.

    One instance holds the model, its tokenizer and a small cache of prefix key/value states
    (the instruction), reused by every later call whose prompts start with the same tokens.

    The prefix cache is used when the shared prefix has at least `min_prefix_tokens` tokens.
    Below that, recomputing the prefix is cheaper: with a cache the new tokens need an
    explicit causal mask with an offset, which takes SDPA off its mask-free causal path
    (measured on CPU: a 580-token instruction in a 2,260-token prompt still ran 1.29x a plain
    prefill with the cache and 1.08x without). Long system prompts and few-shot blocks on
    large models are where it pays.
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        layers: Sequence[int] | None = None,
        heads: Sequence[int] | None = None,
        backend: str = "auto",
        prefix_cache: bool = True,
        min_prefix_tokens: int = 1024,
        max_cached_prefixes: int = 4,
    ) -> None:
        check_hookable(model)
        if not getattr(tokenizer, "is_fast", False):
            msg = (
                f"{type(tokenizer).__name__} is not a fast tokenizer, so it gives no character offsets and the "
                f"document spans could only be guessed. Load it with AutoTokenizer.from_pretrained(..., use_fast=True)."
            )
            raise ConfigError(msg)
        self.model, self.tokenizer = model, tokenizer
        config = model.config
        n_layers, n_heads = config.num_hidden_layers, config.num_attention_heads
        self.layers = _check_indices(layers, n_layers, "layers")
        self.heads = _check_indices(heads, n_heads, "heads")
        self.backend = backend
        self.prefix_cache = prefix_cache
        self.min_prefix_tokens = max(1, int(min_prefix_tokens))
        self.max_positions = getattr(config, "max_position_embeddings", None)
        self._prefixes: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._max_prefixes = max_cached_prefixes
        self._cache_arg = (
            "cache" if "cache" in inspect.signature(model.base_model.forward).parameters else "past_key_values"
        )
        self._prefix_lock = threading.Lock()
        self.expected_layers = frozenset(self.layers if self.layers is not None else range(n_layers))
        # Dynamic and LongRoPE scaling pick their frequencies from the longest position in the
        # forward pass: a prompt's mass would depend on its batch-mates and on a cached prefix.
        self.position_dependent_rope = _rope_type(config) in ("dynamic", "longrope")

    # -- tokenization -------------------------------------------------------------------------
    def encode(self, prompt: str, char_spans: Sequence[tuple[int, int]]) -> EncodedPrompt:
        """Token ids of `prompt` (with BOS when the model has one) and each span's exact token range."""
        tok = self.tokenizer
        enc = tok(prompt, return_offsets_mapping=True, add_special_tokens=True)
        ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
        return self._encoded(ids, offsets, char_spans)

    def _encoded(self, ids: list[int], offsets: list, char_spans: Sequence[tuple[int, int]]) -> EncodedPrompt:
        """BOS in front when the model has one and the ids do not start with it, then the token spans."""
        bos = getattr(self.tokenizer, "bos_token_id", None)
        if bos is not None and (not ids or ids[0] != bos):
            ids, offsets = [bos, *ids], [(0, 0), *offsets]
        return EncodedPrompt(ids, token_spans(offsets, char_spans))

    # -- forward ------------------------------------------------------------------------------
    def mass(self, prompts: Sequence[EncodedPrompt], batch_size: int = 8) -> list[list[float]]:
        """Per prompt, each span's mass averaged over the selected heads, then layers: sum over its tokens."""
        out: list[list[float]] = []
        if self.position_dependent_rope:
            batch_size = 1
        for i in range(0, len(prompts), batch_size):
            out += self._batch_mass(prompts[i : i + batch_size])
        return out

    def _batch_mass(self, prompts: Sequence[EncodedPrompt]) -> list[list[float]]:
        import torch

        device = self.model.device
        prefix_len, cache = self._prefix_for(prompts)
        suffixes = [p.ids[prefix_len:] for p in prompts]
        width = max(len(s) for s in suffixes)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in suffixes], device=device)  # (B, L), right padded
        # Right padding needs no mask: causality already hides the pads from every real token.
        request = CaptureRequest(
            query_index=[len(s) - 1 for s in suffixes],
            key_end=[len(p.ids) for p in prompts],
            segments=[torch.tensor(p.spans, dtype=torch.int64, device=device).reshape(-1, 2) for p in prompts],
            total_keys=prefix_len + width,
            layers=frozenset(self.layers) if self.layers is not None else None,
            backend=self.backend,
        )
        kwargs: dict[str, Any] = {"input_ids": ids, "use_cache": cache is not None}
        if cache is not None:
            cache = copy.deepcopy(cache)
            if len(prompts) > 1:
                cache.batch_repeat_interleave(len(prompts))
            kwargs[self._cache_arg] = cache
            kwargs["position_ids"] = (torch.arange(width, device=device) + prefix_len)[None].expand(len(prompts), -1)
        with torch.inference_mode(), capture_attention(self.model, request):
            self.model.base_model(**kwargs)
        layers = sorted(request.mass)
        if set(layers) != self.expected_layers:
            missing = sorted(self.expected_layers - set(layers))
            msg = (
                f"{type(self.model).__name__}: attention layers {missing} never reached the capture function (was "
                f"the attention implementation switched during the forward pass?). Supported families: "
                f"{', '.join(SUPPORTED_FAMILIES)}."
            )
            raise ConfigError(msg)
        result = []
        for b in range(len(prompts)):
            per_layer = torch.stack([request.mass[layer][b] for layer in layers])  # (layers, Hq, S)
            if self.heads is not None:
                per_layer = per_layer[:, self.heads]
            result.append(per_layer.mean(dim=1).mean(dim=0).tolist())  # heads, then layers
        return result

    def _prefix_for(self, prompts: Sequence[EncodedPrompt]) -> tuple[int, Any]:
        """The longest cached (or newly cached) token prefix all prompts share, leaving >= 1 new token each."""
        if not self.prefix_cache or self.position_dependent_rope:
            return 0, None
        limit = min(
            min(len(p.ids) for p in prompts) - 1, min(p.spans[0][0] if p.spans else len(p.ids) for p in prompts)
        )
        first = prompts[0].ids
        shared = 0
        while shared < limit and all(p.ids[shared] == first[shared] for p in prompts):
            shared += 1
        with self._prefix_lock:  # Pipeline.batch runs stages from several threads
            return self._cached_prefix(first, shared)

    def _cached_prefix(self, first: Sequence[int], shared: int) -> tuple[int, Any]:
        for key in sorted(self._prefixes, key=len, reverse=True):
            if len(key) <= shared and tuple(first[: len(key)]) == key:
                self._prefixes.move_to_end(key)
                return len(key), self._prefixes[key]
        if shared < self.min_prefix_tokens:
            return 0, None
        cache = self._prefill(first[:shared])
        self._prefixes[tuple(first[:shared])] = cache
        while len(self._prefixes) > self._max_prefixes:
            self._prefixes.popitem(last=False)
        return shared, cache

    def _prefill(self, ids: Sequence[int]):
        import torch

        with torch.inference_mode():
            out = self.model.base_model(input_ids=torch.tensor([list(ids)], device=self.model.device), use_cache=True)
        cache = getattr(out, "cache", None)
        return cache if cache is not None else out.past_key_values

    def clear_cache(self) -> None:
        self._prefixes.clear()


def token_spans(offsets: Sequence[tuple[int, int]], char_spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each character span ``[start, end)`` as the token range from the first to the last token whose
    (non-empty) character offsets overlap it; a span that no token overlaps is an `InvalidInputError`.

    A fast tokenizer's offsets run in order, so the tokens overlapping a span are a run found by
    bisection: from the first token ending after `start` to the last one starting before `end`,
    less any empty tokens (BOS) at its ends. Offsets that are not in order (starts or ends ever
    decreasing) are scanned token by token instead.
    """
    starts, ends = (list(column) for column in zip(*offsets)) if offsets else ([], [])
    ordered = all(map(le, starts, starts[1:])) and all(map(le, ends, ends[1:]))
    spans = []
    for start, end in char_spans:
        if ordered:
            lo, hi = bisect_right(ends, start), bisect_left(starts, end)  # ends[lo:] > start, starts[:hi] < end
            while lo < hi and ends[lo] <= starts[lo]:
                lo += 1
            while hi > lo and ends[hi - 1] <= starts[hi - 1]:
                hi -= 1
            inside = (lo, hi - 1) if lo < hi else None
        else:
            run = [i for i, (a, b) in enumerate(offsets) if b > a and a < end and b > start]
            inside = (run[0], run[-1]) if run else None
        if inside is None:
            raise InvalidInputError(f"document characters [{start}, {end}) map to no token; pass non-empty text.")
        spans.append((inside[0], inside[1] + 1))
    return spans


def piece_cuts(prompt: str, char_spans: Sequence[tuple[int, int]]) -> list[int] | None:
    """Where `prompt` is cut into pieces around its documents: ``[0, a1, b1, ..., an, bn, len(prompt)]``.

    Piece ``[a_k, b_k)`` is document k's text without its trailing whitespace and with the
    whitespace in front of it (byte-level tokenizers join a space to the word after it); the
    pieces between are the text between documents (with the previous document's trailing
    whitespace). None unless the spans are in order and every cut falls between a non-space and
    a space character (or at an end of the prompt): cuts where most tokenizers' pre-tokenizers
    split, so that a document's pieces tokenize alike wherever it is placed.
    """
    cuts, floor, previous_end = [0], 0, 0
    for start, end in char_spans:
        if not previous_end <= start <= end <= len(prompt):
            return None
        a = start
        while a > floor and prompt[a - 1].isspace():
            a -= 1
        b = end
        while b > start and prompt[b - 1].isspace():
            b -= 1
        if (0 < a < len(prompt) and not prompt[a].isspace()) or (b < len(prompt) and not prompt[b].isspace()):
            return None
        cuts += [a, b]
        floor, previous_end = b, end
    cuts.append(len(prompt))
    return cuts


class PiecewiseEncoder:
    """`SegmentAttention.encode` for a family of prompts that re-arrange the same documents (one
    context being sorted), assembled from cached token ids of its pieces.

    Between two prompts of the family only the documents' order and the text between them
    (headers with their index and source tag) change. Each prompt is cut around its documents'
    texts (`piece_cuts`); every distinct piece is tokenized once, and a prompt's ids, offsets and
    document spans are put together from its pieces, with BOS as `SegmentAttention.encode` adds it.

    Tokenizers can merge across a cut, so the first prompt is encoded whole too: only when the
    assembled ids and spans equal the whole prompt's are later prompts assembled (`exact`);
    otherwise every prompt is tokenized whole, as `SegmentAttention.encode` does. The cache holds
    only this family's pieces: make one encoder per context.
    """

    def __init__(self, attention: SegmentAttention) -> None:
        self.attention = attention
        self.exact: bool | None = None  # None until the first prompt is checked
        self._pieces: dict[str, tuple[list[int], list[tuple[int, int]]]] = {}

    def encode(self, prompt: str, char_spans: Sequence[tuple[int, int]]) -> EncodedPrompt:
        """The same `EncodedPrompt` as ``attention.encode(prompt, char_spans)``."""
        if self.exact:
            assembled = self._assemble(prompt, char_spans)
            if assembled is not None:
                return assembled
        whole = self.attention.encode(prompt, char_spans)
        if self.exact is None:
            try:
                assembled = self._assemble(prompt, char_spans)
            except InvalidInputError:
                assembled = None
            self.exact = assembled == whole
            if not self.exact:
                self._pieces.clear()
                why = "cannot be cut at whitespace" if assembled is None else "tokenizes differently in pieces"
                logger.debug("piecewise tokenization off for this prompt family: the prompt %s", why)
        return whole

    def _assemble(self, prompt: str, char_spans: Sequence[tuple[int, int]]) -> EncodedPrompt | None:
        cuts = piece_cuts(prompt, char_spans)
        if cuts is None:
            return None
        texts = [prompt[a:b] for a, b in zip(cuts, cuts[1:])]
        new = [t for t in dict.fromkeys(texts) if t not in self._pieces]
        if new:
            enc = self.attention.tokenizer(new, add_special_tokens=False, return_offsets_mapping=True)
            for text, ids, offsets in zip(new, enc["input_ids"], enc["offset_mapping"]):
                self._pieces[text] = (list(ids), [(a, b) for a, b in offsets])
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        for at, text in zip(cuts, texts):
            piece_ids, piece_offsets = self._pieces[text]
            ids += piece_ids
            offsets += [(a + at, b + at) for a, b in piece_offsets]
        return self.attention._encoded(ids, offsets, char_spans)


def _rope_type(config) -> str | None:
    for name in ("rope_parameters", "rope_scaling"):
        params = getattr(config, name, None)
        if isinstance(params, dict):
            kind = params.get("rope_type") or params.get("type")
            if kind:
                return str(kind)
    return None


def _check_indices(values: Sequence[int] | None, limit: int, what: str) -> list[int] | None:
    if values is None:
        return None
    picked = [int(v) for v in values]
    if not picked or any(not 0 <= v < limit for v in picked):
        msg = f"{what}={list(values)!r} must be a non-empty list of indices in [0, {limit}) (or None for all)."
        raise ShapeError(msg)
    return picked
