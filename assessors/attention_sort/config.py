"""AttentionSorter settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ragarbiter.errors import ConfigError
from ragarbiter.lm.prompts import PromptTemplate

AGGREGATES = ("sum", "mean")
OVERFLOW = ("error", "drop")


def _count(value: object) -> bool:
    """An int >= 1 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass
class AttentionSortConfig:
    """How the AttentionSorter reads a causal LM's attention and reorders the passages.

    - `iterations`: sort passes; each renders the prompt in the current order and re-sorts by
      the attention the last prompt token pays each passage (the paper uses a few).
    - `template`: how the prompt is laid out (`ragarbiter.lm.PromptTemplate`); None is the default layout.
    - `aggregate`: ``"sum"`` of the mass over a passage's tokens (the paper), or ``"mean"`` per token.
    - `layers`, `heads`: indices to average over (None: all).
    - `truncate_to`: keep only the n most-attended passages (the rest, empty ones included, are
      dropped with a reason); None keeps every passage.
    - `overflow`: a prompt longer than the model's window raises (``"error"``), or ``"drop"``
      removes passages from the end of the arrival order (the lowest-ranked by the retriever)
      until it fits, each with a reason (a first passage too long on its own is still an error).
    - `batch_size`: prompts per forward pass when several contexts are sorted together.
    - `device`: where a model given as a folder is loaded (None: cuda when available).
    - `backend`: the `segment_attention_mass` kernel backend (``"auto"`` picks by device).
    - `min_prefix_tokens`: reuse the key/value cache of the prompt prefix that every prompt
      shares (the instruction) when it is at least this long; below that recomputing it is
      cheaper (see `ragarbiter.lm.SegmentAttention`).
    """

    iterations: int = 3
    template: PromptTemplate = field(default_factory=PromptTemplate)
    aggregate: str = "sum"
    layers: Sequence[int] | None = None
    heads: Sequence[int] | None = None
    truncate_to: int | None = None
    overflow: str = "error"
    batch_size: int = 8
    device: str | None = None
    backend: str = "auto"
    min_prefix_tokens: int = 1024

    def __post_init__(self) -> None:
        if self.template is None:
            self.template = PromptTemplate()
        if not callable(getattr(self.template, "render", None)):
            msg = (
                f"AttentionSortConfig.template must be a PromptTemplate (or have its render method), "
                f"got {type(self.template).__name__}. Pass ragarbiter.lm.PromptTemplate(...) or None."
            )
            raise ConfigError(msg)
        if not _count(self.iterations):
            msg = f"AttentionSortConfig.iterations must be an integer >= 1, got iterations={self.iterations!r}."
            raise ConfigError(msg)
        if self.aggregate not in AGGREGATES:
            msg = f"AttentionSortConfig.aggregate must be one of {AGGREGATES}, got aggregate={self.aggregate!r}."
            raise ConfigError(msg)
        if self.overflow not in OVERFLOW:
            msg = f"AttentionSortConfig.overflow must be one of {OVERFLOW}, got overflow={self.overflow!r}."
            raise ConfigError(msg)
        if self.truncate_to is not None and not _count(self.truncate_to):
            msg = (
                f"AttentionSortConfig.truncate_to must be an integer >= 1, or None to keep every passage; "
                f"got truncate_to={self.truncate_to!r}."
            )
            raise ConfigError(msg)
        if self.batch_size < 1:
            msg = f"AttentionSortConfig.batch_size must be >= 1, got batch_size={self.batch_size!r}."
            raise ConfigError(msg)
