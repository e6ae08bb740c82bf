"""Training examples for CARE's two stages, from LitM NQ-Open files or from the testbed.

- Stage 1 (`pretrain`): passages to reconstruct, each with one of the paraphrase instructions.
- Stage 2 (`finetune`): per question, the base LM answers closed-book first.
  - It does not know the answer: **grounded**. The assessor encodes a positive passage (one that
    holds the answer), and the teacher is the base LM reading that raw passage.
  - It knows the answer: **adversarial**. The assessor encodes a hard negative (a passage
    retrieved for the question that lacks the answer), and the teacher is the base LM with no
    context, so the student learns to keep its own knowledge against a misleading passage.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ragarbiter.errors import InvalidInputError

from ..qa import held_out
from .model import RECONSTRUCT_INSTRUCTIONS

STAGES = ("pretrain", "finetune")


@dataclass(frozen=True)
class CareExample:
    kind: str  # "reconstruct", "grounded" or "adversarial"
    passage: str
    question: str = ""
    answer: str = ""
    teacher_passage: str | None = None
    instruction: str = ""


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def contains_answer(passage: str, answers: Sequence[str]) -> bool:
    text = _norm(passage)
    return any(_norm(a) and _norm(a) in text for a in answers)


def reconstruction_examples(passages: Sequence[str], seed: int = 0) -> list[CareExample]:
    rng = random.Random(seed)
    return [
        CareExample("reconstruct", p, instruction=rng.choice(RECONSTRUCT_INSTRUCTIONS)) for p in passages if p.strip()
    ]


def conflict_examples(
    items: Sequence[tuple[str, list[str], list[str], list[str]]],
    knows: Callable[[list[tuple[str, list[str]]]], list[bool]],
    seed: int = 0,
) -> list[CareExample]:
    """`items`: (question, answers, positives, negatives).

    `knows([(question, answers)])` is the closed-book labeller.
    """
    rng = random.Random(seed)
    usable = [it for it in items if it[2] and it[1]]
    known = knows([(q, answers) for q, answers, *_ in usable]) if usable else []
    out = []
    for (question, answers, positives, negatives), knows_it in zip(usable, known):
        if knows_it and negatives:
            out.append(CareExample("adversarial", rng.choice(negatives), question, answers[0], None))
        elif not knows_it:
            positive = rng.choice(positives)
            out.append(CareExample("grounded", positive, question, answers[0], positive))
    return out


def litm_items(path: str, limit: int | None = None) -> list[tuple[str, list[str], list[str], list[str]]]:
    """LitM NQ-Open: positives are the gold passages (that hold an answer), hard negatives the
    other passages retrieved for the question that hold none."""
    from ragarbiter.datasets import read_litm

    out = []
    for item in read_litm(path)[:limit] if limit else read_litm(path):
        positives = [p for p in item.gold if contains_answer(p, item.answers)]
        negatives = [p for p in item.passages if p not in item.gold and not contains_answer(p, item.answers)]
        out.append((item.question, list(item.answers), positives, negatives))
    if not out:
        raise InvalidInputError(f"{path}: no questions read. Expected the LitM NQ-Open format.")
    return out


def testbed_items(world, seed: int = 0, limit: int | None = None) -> list[tuple[str, list[str], list[str], list[str]]]:
    """Testbed QA items outside the held-out fifth: the positive is a passage about the subject
    stating the answer; the hard negative is a passage about another entity of the same type
    stating the same attribute."""
    rng = random.Random(seed)
    items = [i for i in [*world.qa_items(known=True), *world.qa_items(known=False)] if not held_out(i.question)]
    rng.shuffle(items)
    by_name = world.by_name()
    out = []
    for item in items[:limit] if limit else items:
        entity = by_name[item.subject]
        others = [
            e for e in world.of_type(entity.type) if e.name != entity.name and e.value(item.attribute) != item.answer
        ]
        positive = world.passage(entity, rng, include=item.attribute)
        negative = world.passage(rng.choice(others), rng, include=item.attribute) if others else None
        out.append((item.question, [item.answer], [positive], [negative] if negative else []))
    return out
