"""`InappropriateFilter`: removes inappropriate sentences from passages and keeps the rest."""

from __future__ import annotations

import functools
import logging
from typing import Any

from ragarbiter.config import with_overrides
from ragarbiter.events import PassageFlagged
from ragarbiter.stage import Stage, drop, judge
from ragarbiter.types import Context, Judgement, Passage

from ..text import join_without
from .config import InappropriateConfig
from .data import DESCRIPTIONS
from .model import SentenceScorer, SentenceVerdict

logger = logging.getLogger(__name__)


def _quote(text: str, limit: int = 80) -> str:
    return f'"{text}"' if len(text) <= limit else f'"{text[: limit - 3]}..."'


class InappropriateFilter(Stage):
    """Judge every sentence of every passage for the question, and cut out the bad ones.

    Categories: false or counterfactual claims, hateful or abusive content, private
    personal information, and instructions injected into the passage (prompt injection).
    A passage keeps its id and its remaining text; what was removed is listed in its
    Judgement and in ``metadata["removed_sentences"]``. A passage with nothing left is
    dropped, with the reason recorded.
    """

    name = "inappropriate"

    def __init__(
        self, config: InappropriateConfig | None = None, *, scorer: SentenceScorer | None = None, **overrides: Any
    ) -> None:
        """`overrides`: any `InappropriateConfig` field (`adapter`, `threshold`, `device`, `restated_at`)."""
        self.config = with_overrides(InappropriateConfig, config, overrides, type(self))
        self._scorer = scorer

    @property
    def scorer(self) -> SentenceScorer:
        if self._scorer is None:
            self._scorer = shared_sentence_scorer(self.config.adapter, self.config.device)
        return self._scorer

    def _run(self, context: Context) -> Context:
        if not context.passages:
            return context
        verdicts = self.scorer.score(
            context.query, [p.text for p in context.passages], restated_at=self.config.restated_at
        )
        kept, judgements, events, to_drop = [], [], [], {}
        for passage, sentence_verdicts in zip(context.passages, verdicts):
            bad = [i for i, v in enumerate(sentence_verdicts) if v.score >= self.config.threshold]
            if not bad:
                kept.append(passage)
                continue
            reason, score = self._reason(sentence_verdicts, bad)
            judgements.append(Judgement(self.name, passage.id, "inappropriate", score, reason))
            events.append(
                PassageFlagged(
                    stage=self.name, passage_id=passage.id, label="inappropriate", score=score, reason=reason
                )
            )
            if len(bad) == len(sentence_verdicts):
                to_drop[passage.id] = f"every sentence is inappropriate: {reason}"
                kept.append(passage)
            else:
                kept.append(self._clean(passage, sentence_verdicts, bad))
        if not judgements:
            return context
        logger.info("%s: cleaned %d passage(s), dropping %d", self.name, len(judgements) - len(to_drop), len(to_drop))
        out = judge(context.evolve(passages=tuple(kept)), judgements, events)
        return drop(out, to_drop, self.name) if to_drop else out

    def _reason(self, verdicts: list[SentenceVerdict], bad: list[int]) -> tuple[str, float]:
        parts = [
            f"{' and '.join(DESCRIPTIONS[c] for c in (verdicts[i].category, *verdicts[i].also))} "
            f"({verdicts[i].score:.2f}{_restated_note(verdicts[i].restatements)}): {_quote(verdicts[i].sentence.text)}"
            for i in bad
        ]
        reason = f"removed {len(bad)} of {len(verdicts)} sentences: " + "; ".join(parts)
        return reason, max(verdicts[i].score for i in bad)

    def _clean(self, passage: Passage, verdicts: list[SentenceVerdict], bad: list[int]) -> Passage:
        sentences = [v.sentence for v in verdicts]
        removed = [
            {
                "text": verdicts[i].sentence.text,
                "category": verdicts[i].category,
                "also": list(verdicts[i].also),
                "score": round(verdicts[i].score, 4),
            }
            for i in bad
        ]
        metadata = {**passage.metadata, "removed_sentences": [*passage.metadata.get("removed_sentences", []), *removed]}
        return passage.evolve(text=join_without(passage.text, sentences, set(bad)), metadata=metadata)


def _restated_note(restatements: int) -> str:
    if not restatements:
        return ""
    return f", judged without its {restatements} restatement{'s' if restatements > 1 else ''} in the passage"


@functools.lru_cache(maxsize=8)
def shared_sentence_scorer(adapter: str | None = None, device: str | None = None) -> SentenceScorer:
    """One scorer per (adapter, device) in a process: the model loads once. Each stage passes
    its own `restated_at` per call."""
    return SentenceScorer(adapter, device=device)
