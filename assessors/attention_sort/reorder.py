"""`LostInTheMiddleReorder`: the most relevant passages at both ends of the context, no model needed.

The same placement as LangChain's ``LongContextReorder``: walking from the least relevant
passage to the most relevant, each one goes alternately to the front and to the back, so the
two best sit at the two ends (where long-context models use evidence best) and the weakest in
the middle. With ranks r1 > ... > r5 that gives r1 r3 r5 r4 r2; with r1 > ... > r6,
r2 r4 r6 r5 r3 r1.
"""

from __future__ import annotations

from typing import Any

from ragarbiter.events import ContextReordered
from ragarbiter.registry import register_stage
from ragarbiter.stage import Stage
from ragarbiter.types import Context, Passage


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


@register_stage("lost_in_the_middle")
def _build(**options: Any) -> LostInTheMiddleReorder:
    return LostInTheMiddleReorder(**options)
