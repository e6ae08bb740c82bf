"""The sort stages: `AttentionSorter` and the model-free `LostInTheMiddleReorder`.

`AttentionSorter` orders passages by the attention a causal LM pays them, most-attended last.

Attention sorting (Peysakhovich & Lerer, 2023): a model attends to the relevant document even
when it fails to use it, so one forward pass tells which documents matter. Each iteration
renders the prompt in the current order, reads the attention that the last prompt token pays
to each document (averaged over heads, then layers), and sorts ascending so the most-attended
document ends next to the question. A few iterations undo most of the position bias.

The attention is captured through transformers' AttentionInterface with the fused
`segment_attention_mass` kernel (`ragarbiter.lm.capture`): no eager attention, no
``output_attentions``. The key/value cache of a long shared instruction (`min_prefix_tokens`)
is reused across iterations and queries. The documents' texts do not change between
iterations, only their order and the headers around them: each context's prompts are put
together from its pieces' cached tokens (`ragarbiter.lm.PiecewiseEncoder`) when the first
prompt shows that this gives exactly the ids and spans of tokenizing the whole prompt, and
tokenized whole otherwise.

`LostInTheMiddleReorder` makes the placement of LangChain's ``LongContextReorder``: walking
from the least relevant passage to the most relevant, each one goes alternately to the front
and to the back, so the two best sit at the two ends (where long-context models use evidence
best) and the weakest in the middle. With ranks r1 > ... > r5 that gives r1 r3 r5 r4 r2.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragarbiter.config import with_overrides
from ragarbiter.errors import ConfigError
from ragarbiter.events import ContextReordered, PassageDropped
from ragarbiter.lm.capture import PiecewiseEncoder
from ragarbiter.stage import Stage, judge
from ragarbiter.types import Context, DroppedPassage, Judgement, Passage

from .config import AttentionSortConfig
from .model import causal_lm

logger = logging.getLogger(__name__)


@dataclass
class _Work:
    """One context being sorted. Passages are tracked by index, so two passages with the same
    text (and so the same id) keep their own scores and fates."""

    context: Context
    order: list[int]  # indices into context.passages, current order
    empty: list[int]
    dropped: dict[int, str]  # index -> reason
    scores: dict[int, float]
    encoded: Any = None  # the prompt of the current order, when already tokenized (by the overflow check)
    encoder: Any = None  # this context's `PiecewiseEncoder`: its documents' tokens, reused across iterations


class AttentionSorter(Stage):
    """Sort passages by the attention the model's last prompt token pays them (most attended last).

    Runtime objects:
        model: a Hugging Face causal LM (object) or a local folder; its attention must go through
            transformers' AttentionInterface (Llama, Qwen2/3, Mistral, Gemma, Phi-3, ...).
        tokenizer: its fast tokenizer (loaded from `model` when that is a folder).

    Settings: an `AttentionSortConfig` and/or its fields as keywords (`iterations`, `template`,
    `aggregate`, `layers`, `heads`, `truncate_to`, `overflow`, `batch_size`, `device`, `backend`,
    `min_prefix_tokens`).
    """

    name = "attention_sort"

    def __init__(
        self, config: AttentionSortConfig | None = None, *, model: Any = None, tokenizer: Any = None, **overrides: Any
    ) -> None:
        """`overrides`: any `AttentionSortConfig` field."""
        from ragarbiter.lm import SegmentAttention

        self.config = cfg = with_overrides(AttentionSortConfig, config, overrides, type(self))
        model, tokenizer = causal_lm(model, tokenizer, cfg.device)
        self.attention = SegmentAttention(
            model,
            tokenizer,
            layers=cfg.layers,
            heads=cfg.heads,
            backend=cfg.backend,
            min_prefix_tokens=cfg.min_prefix_tokens,
        )

    # -- Stage ------------------------------------------------------------------------------------
    def _run(self, context: Context) -> Context:
        return self.sort_many([context])[0]

    def sort_many(self, contexts: Sequence[Context]) -> list[Context]:
        """Sort several contexts, batching their prompts into shared forward passes."""
        cfg = self.config
        work = [self._start(c) for c in contexts]
        for it in range(cfg.iterations):
            active = [w for w in work if w.order]
            if not active:
                break
            encoded = [w.encoded or self._encode(w) for w in active]
            masses = self.attention.mass(encoded, batch_size=cfg.batch_size)
            for w, enc, mass in zip(active, encoded, masses):
                if cfg.aggregate == "mean":
                    mass = [m / (end - start) for m, (start, end) in zip(mass, enc.spans)]
                w.scores = {i: float(m) for i, m in zip(w.order, mass)}
                # Stable ascending sort: the most-attended passage goes last, ties keep their order.
                w.order = sorted(w.order, key=w.scores.__getitem__)
                w.encoded = None
            logger.debug("%s: iteration %d/%d done for %d context(s)", self.name, it + 1, cfg.iterations, len(active))
        return [self._finish(w) for w in work]

    # -- steps --------------------------------------------------------------------------------------
    def _start(self, context: Context) -> _Work:
        self._check(context)
        passages = context.passages
        work = _Work(
            context,
            [i for i, p in enumerate(passages) if p.text.strip()],
            [i for i, p in enumerate(passages) if not p.text.strip()],
            {},
            {},
            encoder=PiecewiseEncoder(self.attention),
        )
        self._fit(work)
        return work

    def _encode(self, work: _Work):
        passages = [work.context.passages[i] for i in work.order]
        prompt, spans = self.config.template.render(
            work.context.query, [p.text for p in passages], [p.source for p in passages]
        )
        return work.encoder.encode(prompt, spans)

    def _fit(self, work: _Work) -> None:
        """Apply the overflow policy: the prompt must fit the model's position window.

        With ``overflow="drop"`` passages go from the end of the arrival order until the prompt
        fits; if even the first passage alone does not fit, that is an error too.
        """
        limit = self.attention.max_positions
        if limit is None or not work.order:
            return
        while True:
            work.encoded = self._encode(work)
            n = len(work.encoded.ids)
            if n <= limit:
                return
            if self.config.overflow == "error" or len(work.order) == 1:
                msg = (
                    f"{self.name}: the prompt for {work.context.query!r} is {n} tokens with {len(work.order)} "
                    f"passage(s), longer than the model's window of {limit}. Pass fewer or shorter passages, or "
                    f"AttentionSorter(overflow='drop') to drop the lowest-ranked passages until it fits."
                )
                raise ConfigError(msg)
            work.dropped[work.order.pop()] = (
                f"dropped before sorting: the prompt was {n} tokens, over the model's "
                f"window of {limit}, and this was the lowest-ranked passage left"
            )

    def _finish(self, work: _Work) -> Context:
        cfg = self.config
        context, passages = work.context, work.context.passages
        n = len(work.order)
        unit = "attention mass" if cfg.aggregate == "sum" else "mean attention per token"
        judgements = []
        keep_from = max(0, n - cfg.truncate_to) if cfg.truncate_to is not None else 0
        for i in work.empty:
            judgements.append(
                Judgement(
                    self.name,
                    passages[i].id,
                    "attention",
                    0.0,
                    "empty text: not shown to the model and not scored; kept at the front",
                )
            )
            if cfg.truncate_to is not None:
                work.dropped[i] = f"empty text, outside the top {cfg.truncate_to} (truncate_to)"
        for rank, i in enumerate(work.order):
            score = min(1.0, max(0.0, work.scores.get(i, 0.0)))
            reason = (
                f"{unit} {score:.4f} from the last prompt token ({n - rank} of {n} by attention, after "
                f"{cfg.iterations} iteration(s))"
            )
            judgements.append(Judgement(self.name, passages[i].id, "attention", score, reason))
            if rank < keep_from:
                work.dropped[i] = f"{unit} {score:.4f}, outside the top {cfg.truncate_to} (truncate_to)"
        kept = [i for i in [*work.empty, *work.order] if i not in work.dropped]
        events: list = [
            PassageDropped(stage=self.name, passage_id=passages[i].id, reason=r)
            for i, r in sorted(work.dropped.items())
        ]
        before = tuple(p.id for p in passages)
        after = tuple(passages[i].id for i in kept)
        if [i for i in range(len(passages)) if i not in work.dropped] != kept:
            events.append(
                ContextReordered(
                    stage=self.name,
                    before=before,
                    after=after,
                    reason=f"sorted by {unit} over {cfg.iterations} iteration(s), most attended last",
                )
            )
        dropped = tuple(DroppedPassage(passages[i], self.name, r) for i, r in sorted(work.dropped.items()))
        out = context.evolve(passages=tuple(passages[i] for i in kept), dropped=context.dropped + dropped)
        return judge(out, judgements, events)

    def __repr__(self) -> str:
        return (
            f"AttentionSorter(model={type(self.attention.model).__name__}, iterations={self.config.iterations}, "
            f"aggregate={self.config.aggregate!r})"
        )


def ends_first(ranked: list[Passage]) -> list[Passage]:
    """Ranked best first -> best at the two ends, worst in the middle (LongContextReorder's placement)."""
    front: list[Passage] = []
    back: list[Passage] = []
    for i, passage in enumerate(reversed(ranked)):
        (back if i % 2 else front).append(passage)
    return front[::-1] + back


class LostInTheMiddleReorder(Stage):
    """Reorder by relevance so the best passages sit at the two ends.

    Relevance is each passage's `score` (higher is better) when every passage has one,
    otherwise the order the passages arrive in (retrievers return best first).
    """

    name = "lost_in_the_middle"

    def _run(self, context: Context) -> Context:
        passages = list(context.passages)
        if len(passages) < 3:
            return context
        scored = all(p.score is not None for p in passages)
        ranked = sorted(passages, key=lambda p: -p.score) if scored else passages  # sorted() is stable
        after = ends_first(ranked)
        before_ids, after_ids = tuple(p.id for p in passages), tuple(p.id for p in after)
        if before_ids == after_ids:
            return context
        basis = "retrieval score" if scored else "arrival order"
        event = ContextReordered(
            stage=self.name,
            before=before_ids,
            after=after_ids,
            reason=f"most relevant passages (by {basis}) moved to both ends, weakest to the middle",
        )
        return context.evolve(passages=tuple(after), events=[event])
