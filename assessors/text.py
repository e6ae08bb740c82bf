"""Sentence spans: the unit the inappropriate-content filter judges and removes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before
# whitespace and an opening capital, digit or quote; or at a line break.
_BOUNDARY = re.compile(r"([.!?][\"'\u201d\u2019)\]]*)\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9])|\n+")
# Abbreviations whose full stop does not end a sentence.
_ABBREVIATIONS = ("Mr.", "Mrs.", "Ms.", "Dr.", "St.", "Prof.", "Jr.", "Sr.", "vs.", "e.g.", "i.e.", "No.", "U.S.")
# A word that negates a statement ("is not", "never", "nobody", "isn't"): the InappropriateFilter
# does not take a sentence and its denial for restatements, and conflict training data tells a
# "no" answer statement from a "yes" one by it.
NEGATION = re.compile(r"\b(?:not|no|never|none|nor|neither|nobody|nothing|cannot)\b|n't\b", re.IGNORECASE)


@dataclass(frozen=True)
class Sentence:
    """A sentence of a text, as the half-open character span [start, end)."""

    start: int
    end: int
    text: str


def split_sentences(text: str) -> list[Sentence]:
    """Split `text` into sentences, keeping exact character spans (whitespace between them excluded)."""
    sentences: list[Sentence] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.start() + len(match.group(1) or "")
        if text[:end].endswith(_ABBREVIATIONS):
            continue
        _append(sentences, text, start, end)
        start = match.end()
    _append(sentences, text, start, len(text))
    return sentences


def _append(out: list[Sentence], text: str, start: int, end: int) -> None:
    chunk = text[start:end]
    stripped = chunk.strip()
    if not stripped:
        return
    lead = len(chunk) - len(chunk.lstrip())
    s = start + lead
    out.append(Sentence(s, s + len(stripped), stripped))


def join_sentences(texts: Sequence[str]) -> tuple[str, list[Sentence]]:
    """Sentences joined by one space, each with its exact span in the joined text."""
    spans, pos = [], 0
    for t in texts:
        spans.append(Sentence(pos, pos + len(t), t))
        pos += len(t) + 1
    return " ".join(texts), spans


def join_without(text: str, sentences: list[Sentence], removed: set[int]) -> str:
    """`text` with the sentences at the indices in `removed` cut out; the rest is untouched."""
    pieces, pos = [], 0
    for i in sorted(removed):
        pieces.append(text[pos : sentences[i].start])
        pos = sentences[i].end
    pieces.append(text[pos:])
    joined = "".join(pieces)
    return re.sub(r"[ \t]{2,}", " ", re.sub(r"^[ \t]+|[ \t]+$", "", joined, flags=re.M)).strip()


def describe(rank: int, passage) -> str:
    """How reasons name a passage: its 1-based rank, and its source when it has one."""
    return f"#{rank + 1} ({passage.source})" if passage.source else f"#{rank + 1}"
