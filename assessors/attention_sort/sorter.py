"""`AttentionSorter`: order passages by the attention a causal LM pays them, most-attended last.

Attention sorting (Peysakhovich & Lerer, 2023): a model attends to the relevant document even
when it fails to use it, so one forward pass tells which documents matter. Each iteration
renders the prompt in the current order, reads the attention that the last prompt token pays
to each document (averaged over heads, then layers), and sorts ascending so the most-attended
document ends next to the question. A few iterations undo most of the position bias.

The attention is captured through transformers' AttentionInterface with the fused
`segment_attention_mass` kernel (`ragarbiter.adapters.hf`): no eager attention, no
``output_attentions``, and the instruction's key/value cache is reused across iterations and
queries.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragarbiter.errors import ConfigError
from ragarbiter.events import ContextReordered
from ragarbiter.registry import register_stage
from ragarbiter.stage import Stage, drop, judge
from ragarbiter.types import Context, Judgement, Passage

logger = logging.getLogger(__name__)

AGGREGATES = ("sum", "mean")
OVERFLOW = ("error", "drop")


@dataclass
class _Work:
    """One context being sorted: its passages in the current order and their last scores."""

    context: Context
    order: list[Passage]
    empty: list[Passage]
    overflow: dict[str, str]
    scores: dict[str, float]
    start: tuple[str, ...]


class AttentionSorter(Stage):
    """Sort passages by the attention the model's last prompt token pays them (most attended last).

    Args:
        model: a Hugging Face causal LM (object) or a local folder; its attention must go through
            transformers' AttentionInterface (Llama, Qwen2/3, Mistral, Gemma, Phi-3, ...).
        tokenizer: its fast tokenizer (loaded from `model` when that is a folder).
        iterations: sort passes (the paper uses a few; default 3).
        template: how the prompt is laid out (`ragarbiter.adapters.hf.PromptTemplate`).
        aggregate: ``"sum"`` of the mass over a document's tokens (the paper), or ``"mean"`` per token.
        layers, heads: indices to average over (None: all).
        truncate_to: keep only the n most-attended passages (the rest are dropped with a reason).
        overflow: a prompt longer than the model's window raises (``"error"``), or ``"drop"``
            removes passages from the end of the arrival order (the lowest-ranked by the
            retriever) until it fits, each with a reason.
        batch_size: prompts per forward pass when several contexts are sorted together.
        min_prefix_tokens: reuse the key/value cache of the prompt prefix that every prompt
            shares (the instruction) when it is at least this long.
    """

    name = "attention_sort"

    def __init__(self, model: Any = None, tokenizer: Any = None, *, iterations: int = 3, template: Any = None,
                 aggregate: str = "sum", layers: Sequence[int] | None = None, heads: Sequence[int] | None = None,
                 truncate_to: int | None = None, overflow: str = "error", batch_size: int = 8,
                 device: str | None = None, backend: str = "auto", min_prefix_tokens: int = 1024) -> None:
        from ragarbiter.adapters.hf import PromptTemplate, SegmentAttention, load_causal_lm

        if model is None:
            msg = ("AttentionSorter needs a causal LM: pass model=<folder or model object> (and tokenizer=), e.g. "
                   "the testbed model from `ragarbiter testbed train --size small --seed 0`.")
            raise ConfigError(msg)
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise ConfigError(f"iterations={iterations!r} must be an integer >= 1.")
        if aggregate not in AGGREGATES:
            raise ConfigError(f"aggregate={aggregate!r} must be one of {AGGREGATES}.")
        if overflow not in OVERFLOW:
            raise ConfigError(f"overflow={overflow!r} must be one of {OVERFLOW}.")
        if truncate_to is not None and (isinstance(truncate_to, bool) or not isinstance(truncate_to, int)
                                        or truncate_to < 1):
            raise ConfigError(f"truncate_to={truncate_to!r} must be an integer >= 1, or None to keep every passage.")
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size!r} must be >= 1.")
        if isinstance(model, str) or hasattr(model, "__fspath__"):
            model, loaded_tokenizer = load_causal_lm(str(model), device=device)
            tokenizer = tokenizer or loaded_tokenizer
        elif tokenizer is None:
            raise ConfigError("AttentionSorter got a model object but no tokenizer; pass tokenizer= as well.")
        self.template = template or PromptTemplate()
        self.iterations, self.aggregate = iterations, aggregate
        self.truncate_to, self.overflow, self.batch_size = truncate_to, overflow, batch_size
        self.attention = SegmentAttention(model, tokenizer, layers=layers, heads=heads, backend=backend,
                                          min_prefix_tokens=min_prefix_tokens)

    # -- Stage ------------------------------------------------------------------------------------
    def _run(self, context: Context) -> Context:
        return self.sort_many([context])[0]

    def sort_many(self, contexts: Sequence[Context]) -> list[Context]:
        """Sort several contexts, batching their prompts into shared forward passes."""
        work = [self._start(c) for c in contexts]
        for it in range(self.iterations):
            active = [w for w in work if len(w.order) >= 1]
            if not active:
                break
            encoded = [self._encode(w) for w in active]
            masses = self.attention.mass(encoded, batch_size=self.batch_size)
            for w, enc, mass in zip(active, encoded, masses):
                if self.aggregate == "mean":
                    mass = [m / (end - start) for m, (start, end) in zip(mass, enc.spans)]
                w.scores = {p.id: float(m) for p, m in zip(w.order, mass)}
                # Stable ascending sort: the most-attended passage goes last, ties keep their order.
                w.order = sorted(w.order, key=lambda p: w.scores[p.id])
            logger.debug("%s: iteration %d/%d done for %d context(s)", self.name, it + 1, self.iterations, len(active))
        return [self._finish(w) for w in work]

    # -- steps --------------------------------------------------------------------------------------
    def _start(self, context: Context) -> _Work:
        self._check(context)
        order = [p for p in context.passages if p.text.strip()]
        empty = [p for p in context.passages if not p.text.strip()]
        work = _Work(context, order, empty, {}, {}, tuple(p.id for p in context.passages))
        self._fit(work)
        return work

    def _encode(self, work: _Work):
        texts = [p.text for p in work.order]
        sources = [p.source for p in work.order]
        prompt, spans = self.template.render(work.context.query, texts, sources)
        return self.attention.encode(prompt, spans)

    def _fit(self, work: _Work) -> None:
        """Apply the overflow policy: the prompt must fit the model's position window."""
        limit = self.attention.max_positions
        if limit is None or not work.order:
            return
        while True:
            n = len(self._encode(work).ids)
            if n <= limit:
                return
            if self.overflow == "error" or len(work.order) == 1:
                msg = (f"{self.name}: the prompt for {work.context.query!r} is {n} tokens with {len(work.order)} "
                       f"passage(s), longer than the model's window of {limit}. Pass fewer or shorter passages, or "
                       f"AttentionSorter(overflow='drop') to drop the lowest-ranked passages until it fits.")
                raise ConfigError(msg)
            last = work.order.pop()
            work.overflow[last.id] = (f"dropped before sorting: the prompt was {n} tokens, over the model's window "
                                      f"of {limit}, and this was the lowest-ranked passage left")

    def _finish(self, work: _Work) -> Context:
        context = work.context
        n = len(work.order)
        judgements, to_drop = [], dict(work.overflow)
        for p in work.empty:
            judgements.append(Judgement(self.name, p.id, "attention", 0.0,
                                        "empty text: not shown to the model and not scored; kept at the front"))
        keep_from = n - self.truncate_to if self.truncate_to is not None and n > self.truncate_to else 0
        unit = "attention mass" if self.aggregate == "sum" else "mean attention per token"
        for rank, p in enumerate(work.order):
            score = min(1.0, max(0.0, work.scores.get(p.id, 0.0)))
            place = f"{n - rank} of {n} by attention"
            reason = f"{unit} {score:.4f} from the last prompt token ({place}, after {self.iterations} iteration(s))"
            judgements.append(Judgement(self.name, p.id, "attention", score, reason))
            if rank < keep_from:
                to_drop[p.id] = f"{unit} {score:.4f}, outside the top {self.truncate_to} (truncate_to)"
        overflowed = [p for p in context.passages if p.id in work.overflow]
        after = [*work.empty, *overflowed, *work.order]  # `drop` below removes the overflowed with their reasons
        events = []
        after_ids = tuple(p.id for p in after if p.id not in to_drop)
        if after_ids != tuple(i for i in work.start if i not in to_drop):
            events.append(ContextReordered(stage=self.name, before=work.start, after=after_ids,
                                           reason=f"sorted by {unit} over {self.iterations} iteration(s), most "
                                                  f"attended last"))
        out = judge(context.evolve(passages=tuple(after)), judgements, events)
        return drop(out, to_drop, self.name) if to_drop else out

    def __repr__(self) -> str:
        return (f"AttentionSorter(model={type(self.attention.model).__name__}, iterations={self.iterations}, "
                f"aggregate={self.aggregate!r})")


@register_stage("attention_sort")
def _build(**options: Any) -> AttentionSorter:
    return AttentionSorter(**options)

