"""SynthWiki sort cases: each question's gold paragraph at a random position among other paragraphs."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ragarbiter.errors import ConfigError, EmptyCorpusError
from ragarbiter.types import Context, Passage

DOCS = 10  # paragraphs per question, gold included
QUESTIONS = 100  # questions sampled from the file


@dataclass(frozen=True)
class SortCase:
    question: str
    passages: tuple[Passage, ...]
    gold_id: str

    def context(self) -> Context:
        return Context.for_query(self.question, self.passages)


def synthwiki_paragraphs(path: str) -> list[str]:
    """The file's distinct paragraphs (each row's context), sorted."""
    from ragarbiter.datasets import read_synthwiki

    return sorted({i.passages[0] for i in read_synthwiki(path)})


def synthwiki_cases(path: str, *, docs: int = DOCS, questions: int | None = QUESTIONS, seed: int = 0) -> list[SortCase]:
    """Each question's gold paragraph at a random position among `docs - 1` other paragraphs of the file."""
    from ragarbiter.datasets import read_synthwiki

    if docs < 2:
        raise ConfigError(f"docs={docs} must be >= 2 (the gold paragraph and at least one other).")
    items = read_synthwiki(path)
    paragraphs = sorted({i.passages[0] for i in items})
    if len(paragraphs) < docs:
        msg = f"{path} has {len(paragraphs)} distinct paragraphs, fewer than docs={docs}; pass a smaller --docs."
        raise EmptyCorpusError(msg)
    rng = random.Random(seed)
    if questions is not None and questions < len(items):
        items = rng.sample(items, questions)
    cases = []
    for item in items:
        gold = item.passages[0]
        others = rng.sample([p for p in paragraphs if p != gold], docs - 1)
        others.insert(rng.randrange(docs), gold)
        passages = tuple(Passage(text, id=f"p{k}") for k, text in enumerate(others))
        cases.append(SortCase(item.question, passages, passages[others.index(gold)].id))
    return cases
