"""InappropriateFilter settings."""

from __future__ import annotations

from dataclasses import dataclass

from ragarbiter.errors import ConfigError

from ..configs import AssessorConfig

# Cosine similarity (bundled sentence encoder) from which two sentences of one passage are
# restatements of each other. Chosen on the first 600 training records of both testbed pools
# (paraphrase pairs: median 0.83 / 0.92; other pairs of a record: 8% / 6% at 0.8 or more).
RESTATED_AT = 0.8


@dataclass
class InappropriateConfig(AssessorConfig):
    """`threshold`: the probability that a sentence is inappropriate from which it is removed.
    `adapter`: a folder from `ragarbiter train inappropriate`.
    `restated_at`: the similarity from which sentences of one passage restate each other; a
    sentence whose verdict is not already clear is then judged again without its restatements
    (None: every sentence is judged in its whole passage only)."""

    restated_at: float | None = RESTATED_AT

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.restated_at is None:
            return
        msg = (
            f"InappropriateConfig.restated_at must lie in (0, 1] (a cosine similarity) or be None, "
            f"got {self.restated_at!r}. {RESTATED_AT} is the shipped setting."
        )
        try:
            value = float(self.restated_at)
        except (TypeError, ValueError):
            raise ConfigError(msg) from None
        if not 0.0 < value <= 1.0:
            raise ConfigError(msg)
        self.restated_at = value
