"""PoisonFilter settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ragarbiter.config import DEFAULT_ENCODER
from ragarbiter.errors import ConfigError

ACTIONS = ("drop", "demote", "flag")


@dataclass
class PoisonConfig:
    """When a group of retrieved passages looks planted, and what to do about it.

    - `similarity`: cosine (bundled encoder) that every two members of a group must reach
      (complete linkage). Independent sources that agree rarely paraphrase each other
      this closely; passages written to be retrieved for one question do.
    - `min_cluster`: how many such near-duplicates make a group suspicious. Two agreeing
      sources are never enough.
    - `answer_mismatch`: near-copies never share a group when each one's answer (where the judge's
      span scorer puts its weight) is at least this share absent from the other's tokens: "designed
      by Viktor Lang" and "designed by Miriam Okafor" in one template are near-duplicates that name
      different answers. Copies of one planted claim share their answer and stay together. (The
      judge's pair probability was tried first for this and split planted groups: on PoisonedRAG nq
      it reads some paraphrases of one claim as disagreeing.)
    - `conflict_threshold`: mean conflict probability (ConflictAssessor, over the group's
      members) from which a passage outside the group counts as contradicting it. A passage whose
      conflict probability with any member reaches it is never in the group's family. Lower
      than the ConflictAssessor's own flagging threshold (0.7): a group of near-verbatim
      copies is suspicious already, so less evidence convicts it. On PoisonedRAG nq targets
      the planted group's mean conflict with the gold passage has median 0.37.
    - `family_similarity`: mean cosine to a contradicted group from which a passage outside
      it, agreeing with it and contradicted by the same evidence, shares its fate (planted
      texts are paraphrases, and complete linkage at `similarity` misses the looser ones).
      None turns this off.
    - `max_coverage`: when tight groups hold more than this share of the passages, the context
      is redundant (restatements everywhere), not attacked (a few planted texts among many), and
      groups are only flagged. On PoisonedRAG nq targets groups hold at most 70% of the top 20.
    - `store_copies`: with a store (`PoisonFilter(store=...)`), a passage outside the groups
      whose store holds this many near-duplicates of it (itself included, cosine >=
      `similarity` with the store's own encoder) that do not conflict with it for the query
      is judged like a group, even when fewer copies were retrieved. On PoisonedRAG nq targets
      this catches planted texts written for another question and pulled in by shared words.
      The default, 3, is `min_cluster`'s. Such a passage takes the `uncorroborated` action
      even when a candidate contradicts it. A correct
      passage with mirrors in the store is caught too, and so only moved; it is left alone
      when it is uncontradicted evidence that convicts a retrieved group. None turns it off;
      without a store it does nothing.
    - `contradicted`: action for a suspicious group that other evidence contradicts.
    - `uncorroborated`: action for a suspicious group nothing contradicts. "drop" (the default)
      holds it back: with nothing independent to weigh against it, a planted group is otherwise
      the only evidence the LLM reads (chosen on PoisonedRAG nq answers, benchmarks/results/rag.md:
      it left fewer planted answers than "demote" and the same clean accuracy). "demote" keeps
      its best-ranked member in place and moves the copies after the other passages.
    - `conflict_adapter`: the conflict model that judges whether evidence contradicts a group.
      None is the filter's own shipped judge (`assessors/poison/default/`), the conflict
      adapter these thresholds were set on: the ConflictAssessor's 256-token two-block adapter
      was better at yes/no conflicts but left more planted texts here (see
      benchmarks/results/assessors.md). Pass a `train conflict` folder to use another.
    - `encoder`: the sentence encoder (a model name) that groups the passages, loaded when the
      filter is not handed an encoder object (`PoisonFilter(encoder=...)`). The thresholds
      above were set on its cosines.
    - `device`: where the encoder and the conflict judge run (None: the default device).
    """

    similarity: float = 0.75
    min_cluster: int = 3
    answer_mismatch: float = 0.5
    conflict_threshold: float = 0.3
    family_similarity: float | None = 0.6
    max_coverage: float = 0.75
    store_copies: int | None = 3
    contradicted: str = "drop"
    uncorroborated: str = "drop"
    conflict_adapter: str | None = None
    encoder: str = DEFAULT_ENCODER
    device: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.similarity < 1.0:
            msg = (
                f"PoisonConfig.similarity must lie in (0, 1), got {self.similarity!r}. "
                f"{PoisonConfig.similarity} suits MiniLM."
            )
            raise ConfigError(msg)
        if not isinstance(self.min_cluster, int) or self.min_cluster < 3:
            msg = (
                f"PoisonConfig.min_cluster must be an int >= 3, got {self.min_cluster!r}: two sources that "
                f"agree are not evidence of poisoning."
            )
            raise ConfigError(msg)
        if not 0.0 < self.answer_mismatch <= 1.0:
            msg = f"PoisonConfig.answer_mismatch must lie in (0, 1], got {self.answer_mismatch!r}. 0.5 is the default."
            raise ConfigError(msg)
        if not 0.0 < self.conflict_threshold < 1.0:
            msg = f"PoisonConfig.conflict_threshold must lie in (0, 1), got {self.conflict_threshold!r}."
            raise ConfigError(msg)
        if self.family_similarity is not None and not 0.0 < self.family_similarity <= self.similarity:
            msg = (
                f"PoisonConfig.family_similarity must lie in (0, similarity={self.similarity}] or be None, "
                f"got {self.family_similarity!r}. {PoisonConfig.family_similarity} suits MiniLM."
            )
            raise ConfigError(msg)
        if not 0.0 < self.max_coverage <= 1.0:
            msg = (
                f"PoisonConfig.max_coverage must lie in (0, 1], got {self.max_coverage!r}. "
                f"{PoisonConfig.max_coverage} is the default."
            )
            raise ConfigError(msg)
        if self.store_copies is not None and (
            isinstance(self.store_copies, bool) or not isinstance(self.store_copies, int) or self.store_copies < 3
        ):
            msg = (
                f"PoisonConfig.store_copies must be an int >= 3 or None, got {self.store_copies!r}: two copies of "
                f"a passage in a store are common (mirrors, templates) and are not evidence of poisoning."
            )
            raise ConfigError(msg)
        for name in ("contradicted", "uncorroborated"):
            if getattr(self, name) not in ACTIONS:
                msg = f"PoisonConfig.{name} must be one of {', '.join(ACTIONS)}, got {getattr(self, name)!r}."
                raise ConfigError(msg)


def default_judge_dir() -> Path:
    """The conflict adapter shipped for the PoisonFilter (trained with `ragarbiter train conflict`)."""
    return Path(__file__).resolve().parent / "default"
