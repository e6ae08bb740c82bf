"""`ConflictAssessor`: flags passages that give different answers to the query."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ragarbiter.config import with_overrides
from ragarbiter.events import ConflictDetected, PassageFlagged
from ragarbiter.stage import Stage, judge
from ragarbiter.types import Context, Judgement, Passage

from ..text import describe
from .config import ConflictConfig
from .model import ConflictScorer, shared_scorer

logger = logging.getLogger(__name__)


def agreeing_clusters(probs: np.ndarray, threshold: float) -> list[list[int]]:
    """Group indices (in rank order) so that no two members of a group conflict."""
    clusters: list[list[int]] = []
    for i in range(probs.shape[0]):
        home = next((c for c in clusters if probs[i, c].max() < threshold), None)
        if home is None:
            clusters.append([i])
        else:
            home.append(i)
    return clusters


def _said(who: str, answer: str | None) -> str:
    return f'{who} says "{answer}"' if answer else who


class ConflictAssessor(Stage):
    """Detect inter-passage conflict with respect to the query.

    Every passage is encoded once together with the query; a small pair head then scores
    all pairs (n encoder passes, not n^2). Passages are grouped into agreeing clusters;
    each passage in a conflicting pair gets a `conflicting` Judgement whose evidence
    lists the passages it disagrees with, and the Context gets ``flags["conflict"]``.
    Nothing is dropped: deciding which side to trust is left to later stages.
    """

    name = "conflict"

    def __init__(
        self, config: ConflictConfig | None = None, *, scorer: ConflictScorer | None = None, **overrides: Any
    ) -> None:
        """`overrides`: any `ConflictConfig` field (`adapter`, `threshold`, `device`)."""
        self.config = with_overrides(ConflictConfig, config, overrides, type(self))
        self._scorer = scorer

    @property
    def scorer(self) -> ConflictScorer:
        if self._scorer is None:
            self._scorer = shared_scorer(self.config.adapter, self.config.device)
        return self._scorer

    def answers(self, query: str, passages) -> list[str]:
        """The answer each passage gives as the model reads it ("" where it cannot point at one)."""
        finder = getattr(self.scorer, "answer_spans", None)
        return finder(query, [p.text for p in passages]) if finder else [""] * len(passages)

    def pair_probabilities(self, query: str, passages: tuple[Passage, ...]) -> np.ndarray:
        """(n, n) conflict probabilities between the passages, for this query."""
        return self.scorer.pair_probabilities(query, [p.text for p in passages])

    def _run(self, context: Context) -> Context:
        passages = context.passages
        if len(passages) < 2:
            return context.evolve(flags={"conflict": False})
        probs = self.pair_probabilities(context.query, passages)
        thr = self.config.threshold
        if probs.max() < thr:
            return context.evolve(flags={"conflict": False})
        clusters = agreeing_clusters(probs, thr)
        flagged_ranks = [i for i in range(len(passages)) if probs[i].max() >= thr]
        spans = dict(zip(flagged_ranks, self.answers(context.query, [passages[i] for i in flagged_ranks])))
        judgements, events = [], []
        for i, p in enumerate(passages):
            partners = [j for j in np.argsort(-probs[i]) if probs[i, j] >= thr]
            if not partners:
                continue
            score = float(probs[i, partners[0]])
            others = ", ".join(_said(describe(int(j), passages[j]), spans.get(int(j))) for j in partners[:3])
            more = f" and {len(partners) - 3} more" if len(partners) > 3 else ""
            says = f'says "{spans[i]}" where ' if spans.get(i) else "gives a different answer to the query than "
            reason = f"{says}{others}{more} (conflict probability {score:.2f})"
            evidence = tuple(passages[j].id for j in partners)
            judgements.append(Judgement(self.name, p.id, "conflicting", score, reason, evidence))
            events.append(
                PassageFlagged(
                    stage=self.name, passage_id=p.id, label="conflicting", score=score, reason=reason, evidence=evidence
                )
            )
        flagged = tuple(j.passage_id for j in judgements)
        groups = [tuple(passages[i].id for i in c) for c in clusters if any(passages[i].id in flagged for i in c)]
        summary = f"{len(flagged)} passages fall into {len(groups)} groups that answer the query differently"
        events.append(ConflictDetected(stage=self.name, passage_ids=flagged, groups=tuple(groups), reason=summary))
        logger.info("%s: %s", self.name, summary)
        return judge(
            context, judgements, events, flags={"conflict": True, "conflict_groups": [list(g) for g in groups]}
        )
