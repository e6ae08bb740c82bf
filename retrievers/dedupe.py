"""`Deduplicator`: flags (and optionally drops) near-duplicate passages."""

from __future__ import annotations

import numpy as np

from ragarbiter.errors import ConfigError
from ragarbiter.events import PassageFlagged
from ragarbiter.stage import Stage, drop, judge
from ragarbiter.types import Context, Judgement

from .encoders import DenseEncoder


class Deduplicator(Stage):
    """Mark passages whose embedding is within `threshold` cosine of a higher-ranked one.

    Near-duplicates waste context and, when planted, amplify one claim. Each copy gets a
    `redundant` Judgement whose evidence is the passage it repeats. With `drop=True` the
    copies are removed (and recorded in `Context.dropped`); by default they are kept so
    later stages can weigh them.
    """

    name = "dedupe"

    def __init__(self, encoder: DenseEncoder | None = None, *, threshold: float = 0.92, drop: bool = False) -> None:
        if not 0.0 < threshold <= 1.0:
            msg = f"Deduplicator threshold must lie in (0, 1], got {threshold!r}. 0.92 suits MiniLM embeddings."
            raise ConfigError(msg)
        self.encoder = encoder or DenseEncoder()
        self.threshold = threshold
        self.drop = drop

    def _run(self, context: Context) -> Context:
        passages = context.passages
        if len(passages) < 2:
            return context
        vectors = self.encoder.encode_cached([p.text for p in passages])  # (n, d), unit rows
        sims = vectors @ vectors.T  # (n, n)
        judgements, events, to_drop = [], [], {}
        for j in range(1, len(passages)):
            i = int(np.argmax(sims[j, :j]))
            sim = float(sims[j, i])
            if sim < self.threshold:
                continue
            orig = passages[i]
            reason = f"near-duplicate (cosine {sim:.3f}) of passage ranked #{i + 1} ({orig.source or orig.id})"
            score = min(max(sim, 0.0), 1.0)
            judgements.append(Judgement(self.name, passages[j].id, "redundant", score, reason, (orig.id,)))
            events.append(
                PassageFlagged(
                    stage=self.name,
                    passage_id=passages[j].id,
                    label="redundant",
                    score=score,
                    reason=reason,
                    evidence=(orig.id,),
                )
            )
            to_drop[passages[j].id] = reason
        out = judge(context, judgements, events)
        return drop(out, to_drop, self.name) if self.drop and to_drop else out
