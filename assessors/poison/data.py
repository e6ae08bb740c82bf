"""Reader for PoisonedRAG targeted-attack files (the poison benchmark's input)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ragarbiter.errors import InvalidInputError

from ..files import load_json

KEYS = ("question", "correct answer", "incorrect answer", "adv_texts")


@dataclass(frozen=True)
class PoisonTarget:
    id: str
    question: str
    correct: str
    incorrect: str
    adv_texts: tuple[str, ...]


def read_poisonedrag(path: str | Path) -> list[PoisonTarget]:
    """A JSON object keyed by target id: question, correct answer, incorrect answer, adv_texts[]."""
    data = load_json(path, dict, "a PoisonedRAG JSON object keyed by target id")
    targets = []
    for key, rec in data.items():
        missing = [k for k in KEYS if not isinstance(rec, dict) or k not in rec]
        if missing:
            msg = f"{path}: target {key!r} lacks {missing}. Every PoisonedRAG target needs {', '.join(KEYS)}."
            raise InvalidInputError(msg)
        advs = tuple(t for t in rec["adv_texts"] if isinstance(t, str) and t.strip())
        targets.append(
            PoisonTarget(
                str(rec.get("id", key)), rec["question"], str(rec["correct answer"]), str(rec["incorrect answer"]), advs
            )
        )
    return targets
