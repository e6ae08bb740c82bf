"""The data model every stage shares: Passage, Judgement, DroppedPassage, Context."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import EmptyQueryError, InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    from .events import Event

# The framework-metadata keys that carry Passage fields.
SCORE_KEY = "relevance_score"
SOURCE_KEY = "source"
JUDGEMENTS_KEY = "ragarbiter"

LABELS = ("reliable", "conflicting", "poisoned", "inappropriate", "redundant", "irrelevant", "attention")


def normalize_text(text: str) -> str:
    """The form of a text that its content hash is taken over (NFC, outer whitespace)."""
    return unicodedata.normalize("NFC", text).strip()


def content_id(text: str) -> str:
    """A stable id for a text: a UUID made of the first 16 bytes of its SHA-256.

    It is also a valid Qdrant point id, so the same text always maps to the same point.
    """
    digest = hashlib.sha256(normalize_text(text).encode("utf-8")).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))  # RFC 4122 variant bits set


@dataclass(frozen=True)
class Passage:
    """One retrieved text with its provenance. Immutable; use `evolve` to change it."""

    text: str
    id: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    score: float | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            msg = f"Passage.text must be a str, got {type(self.text).__name__}. Decode bytes first."
            raise InvalidInputError(msg)
        if not self.id:
            object.__setattr__(self, "id", content_id(self.text))
        if self.score is not None:
            score = float(self.score)
            if math.isnan(score):
                msg = f"Passage {self.id} has score NaN. Pass None for an unscored passage."
                raise InvalidInputError(msg)
            object.__setattr__(self, "score", score)
        object.__setattr__(self, "metadata", dict(self.metadata))

    def evolve(self, **changes: Any) -> Passage:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "score": self.score,
            "source": self.source,
            "metadata": dict(self.metadata),
        }

    # Framework conversions. The frameworks are optional extras, imported on use.
    def to_langchain(self, judgements: Sequence[Judgement] = ()) -> Any:
        from .convert import passage_to_document

        return passage_to_document(self, judgements)

    @classmethod
    def from_langchain(cls, document: Any) -> Passage:
        from .convert import document_to_passage

        return document_to_passage(document)

    def to_llama_index(self, judgements: Sequence[Judgement] = ()) -> Any:
        from .convert import passage_to_node

        return passage_to_node(self, judgements)

    @classmethod
    def from_llama_index(cls, node: Any) -> Passage:
        from .convert import node_to_passage

        return node_to_passage(node)


@dataclass(frozen=True)
class Judgement:
    """One stage's verdict on one passage."""

    stage: str
    passage_id: str
    label: str
    score: float
    reason: str
    evidence: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        score = float(self.score)
        if not 0.0 <= score <= 1.0 or math.isnan(score):
            msg = (
                f"Judgement score must lie in [0, 1], got {self.score!r} "
                f"from stage {self.stage!r}. Clip or calibrate it."
            )
            raise InvalidInputError(msg)
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "evidence", tuple(self.evidence))

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "label": self.label,
            "score": self.score,
            "reason": self.reason,
            "evidence": list(self.evidence),
        }


@dataclass(frozen=True)
class DroppedPassage:
    """A passage a stage removed, with who removed it and why."""

    passage: Passage
    stage: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.passage.to_dict(), "stage": self.stage, "reason": self.reason}


@dataclass(frozen=True)
class Context:
    """What the LLM will get: the query, ordered passages, and every decision made so far.

    Stages never mutate a Context; they return a new one (see `evolve`).
    `options` carries per-call settings such as ``k`` or a metadata ``filter``.
    `flags` carries context-level findings such as ``{"conflict": True}``.
    """

    query: str
    passages: tuple[Passage, ...] = ()
    judgements: tuple[Judgement, ...] = ()
    dropped: tuple[DroppedPassage, ...] = ()
    soft_prompt: Any = None
    trace: tuple[Event, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    flags: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.query, str):
            msg = f"query must be a str, got {type(self.query).__name__}."
            raise InvalidInputError(msg)
        for name in ("passages", "judgements", "dropped", "trace"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))
        object.__setattr__(self, "flags", MappingProxyType(dict(self.flags)))

    @classmethod
    def for_query(cls, query: str, passages: Iterable[Passage] = (), **options: Any) -> Context:
        """A new Context for a user query; an empty query is an error."""
        if not isinstance(query, str) or not query.strip():
            msg = f"The query is empty ({query!r}). Pass a question with at least one word."
            raise EmptyQueryError(msg)
        return cls(query=query, passages=tuple(passages), options=options)

    def evolve(self, *, events: Iterable[Event] = (), **changes: Any) -> Context:
        """A copy with `changes` applied and `events` appended to the trace."""
        if "flags" in changes:
            changes["flags"] = {**self.flags, **changes["flags"]}
        new = dataclasses.replace(self, **changes)
        extra = tuple(events)
        if extra:
            object.__setattr__(new, "trace", new.trace + extra)
        return new

    def judgements_for(self, passage_id: str) -> tuple[Judgement, ...]:
        return tuple(j for j in self.judgements if j.passage_id == passage_id)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `ragarbiter query --json`."""
        passages = [
            {**p.to_dict(), "rank": rank, "judgements": [j.to_dict() for j in self.judgements_for(p.id)]}
            for rank, p in enumerate(self.passages, start=1)
        ]
        out: dict[str, Any] = {
            "query": self.query,
            "passages": passages,
            "dropped": [d.to_dict() for d in self.dropped],
            "events": [e.to_dict() for e in self.trace],
            "flags": dict(self.flags),
        }
        if self.soft_prompt is not None:
            out["soft_prompt_shape"] = list(getattr(self.soft_prompt, "shape", ()))
        return out
