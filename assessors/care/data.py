"""Training examples for CARE's two stages, from any QA file with gold passages or from the testbed.

- Stage 1 (`pretrain`): passages to reconstruct, each with one of the paraphrase instructions. They
  come from any corpus the indexer reads (.txt, .md, .jsonl with a `text` field, folders of them)
  or from the passages of LitM NQ-Open files, cut to the assessor's chunk size.
- Stage 2 (`finetune`): per question, the base LM answers closed-book first (batched).
  - It does not know the answer: **grounded**. The assessor encodes the gold passage, and the
    teacher is the base LM reading that raw passage.
  - It knows the answer: **misleading** and **unhelpful**. The assessor encodes the gold passage
    with its answer swapped for another question's answer of the same kind (the NQ-Swap recipe,
    `qa.nq_swaps`), or another question's passage that lacks the answer; the teacher is the base LM
    with no context, so the student learns to keep its own knowledge against the context.
  Both halves must be non-empty (`check_halves`), or stage 2 would teach only one behaviour.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ragarbiter.errors import InvalidInputError

from ..qa import held_out, mention, nq_swaps, read_litm_gold
from .model import RECONSTRUCT_INSTRUCTIONS

logger = logging.getLogger(__name__)

STAGES = ("pretrain", "finetune")
KINDS = ("grounded", "misleading", "unhelpful")
Record = tuple[str, list[str], str]  # (question, answer aliases, gold passage)


@dataclass(frozen=True)
class CareExample:
    kind: str  # "reconstruct", "grounded", "misleading" or "unhelpful"
    passages: tuple[str, ...]
    question: str = ""
    answer: str = ""
    teacher_passages: tuple[str, ...] | None = None  # None: the closed-book teacher
    instruction: str = ""


def contains_answer(passage: str, answers: Sequence[str]) -> bool:
    """Whether `passage` mentions any answer alias as whole words, case aside."""
    return any(a.strip() and mention(a.strip()).search(passage) for a in answers)


def reconstruction_examples(passages: Sequence[str], seed: int = 0) -> list[CareExample]:
    rng = random.Random(seed)
    return [
        CareExample("reconstruct", (p,), instruction=rng.choice(RECONSTRUCT_INSTRUCTIONS))
        for p in passages
        if p.strip()
    ]


def conflict_examples(
    records: Sequence[Record],
    knows: Callable[[list[tuple[str, list[str]]]], list[bool]],
    seed: int = 0,
    passages: int = 1,
) -> list[CareExample]:
    """Grounded examples for the questions the base LM gets wrong closed-book, misleading and unhelpful
    ones for those it gets right. `knows([(question, answers)]) -> [bool]` is the closed-book labeller;
    `passages`: passages per example (the first is the one of its kind, the rest unhelpful fillers)."""
    rng = random.Random(seed)
    usable = [(q, list(a), gold) for q, a, gold in records if a and gold.strip()]
    known = knows([(q, a) for q, a, _ in usable]) if usable else []
    swapped = {s.question: s.swapped for s in nq_swaps(usable, random.Random(seed))}
    pool = [gold for _, _, gold in usable]
    out = []
    for (question, answers, gold), knows_it in zip(usable, known):
        if not knows_it:
            group = _with_fillers(gold, answers, pool, passages, rng)
            out.append(CareExample("grounded", group, question, answers[0], group))
            continue
        if question in swapped:
            group = _with_fillers(swapped[question], answers, pool, passages, rng)
            out.append(CareExample("misleading", group, question, answers[0], None))
        fillers = _fillers(answers, pool, passages, rng)
        if len(fillers) == passages:
            out.append(CareExample("unhelpful", tuple(fillers), question, answers[0], None))
    return out


def _fillers(answers: Sequence[str], pool: Sequence[str], n: int, rng: random.Random) -> list[str]:
    """Up to `n` passages of other questions that do not mention the answer."""
    out: list[str] = []
    for _ in range(20 * n):
        if len(out) == n or not pool:
            break
        text = rng.choice(pool)
        if text not in out and not contains_answer(text, answers):
            out.append(text)
    return out


def _with_fillers(first: str, answers, pool, n: int, rng: random.Random) -> tuple[str, ...]:
    group = [first, *_fillers(answers, pool, n - 1, rng)] if n > 1 else [first]
    rng.shuffle(group)
    return tuple(group)


def example_counts(examples: Sequence[CareExample]) -> dict[str, int]:
    return {k: sum(e.kind == k for e in examples) for k in ("reconstruct", *KINDS)}


def check_halves(counts: dict[str, int], questions: int, source: str) -> None:
    """Stage 2 needs both halves: examples for questions the base LM knows (misleading + unhelpful) and
    for questions it does not (grounded); with one missing it would learn only to trust, or only to ignore."""
    known = counts.get("misleading", 0) + counts.get("unhelpful", 0)
    if known and counts.get("grounded", 0):
        return
    half = "known-question (misleading + unhelpful)" if not known else "unknown-question (grounded)"
    fix = (
        "the base LM answered none of them correctly closed-book: use a stronger base model, "
        "or more or easier questions"
        if not known
        else "the base LM answered all of them correctly closed-book: add more or harder questions"
    )
    msg = (
        f"train care --stage finetune: the {half} half is empty for {source} "
        f"({questions} questions: grounded={counts.get('grounded', 0)}, misleading={counts.get('misleading', 0)}, "
        f"unhelpful={counts.get('unhelpful', 0)}); {fix}."
    )
    raise InvalidInputError(msg)


# -- sources --------------------------------------------------------------------------------------
def is_litm(path: str | Path) -> bool:
    """Whether `path` is a LitM NQ-Open JSONL file (its first record has `question` and `ctxs`)."""
    from ragarbiter.datasets import iter_jsonl

    if not Path(path).is_file() or not str(path).lower().endswith((".jsonl", ".jsonl.gz")):
        return False
    first = next(iter_jsonl(path), None)
    return isinstance(first, dict) and "question" in first and isinstance(first.get("ctxs"), list)


def litm_records(path: str | Path, limit: int | None = None) -> list[Record]:
    """(question, answers, gold passage) of a LitM NQ-Open file, held-out questions (`qa.held_out`) left out."""
    records = [r for r in read_litm_gold(path) if not held_out(r[0])]
    if not records:
        msg = f"{path}: no question with answers and a gold passage read. Expected the LitM NQ-Open format."
        raise InvalidInputError(msg)
    return records[:limit] if limit else records


def corpus_passages(paths: Sequence[str | Path]) -> list[str]:
    """Passage texts for stage 1: LitM NQ-Open files give the passages of their questions that are not
    held out (`qa.held_out`); anything else is read as the indexer reads it (`.txt`, `.md`, `.jsonl`
    with `text`, folders of them)."""
    from ragarbiter.datasets import read_litm
    from ragarbiter.retrievers.ingest import iter_files, load_file

    texts: list[str] = []
    for path in paths:
        if is_litm(path):
            # Held-out questions' passages stay out too: benchmarks read them as unseen context.
            texts += [p for item in read_litm(path) if not held_out(item.question) for p in item.passages]
            continue
        for file in iter_files([path]):
            texts += [doc.text for doc in load_file(file) or []]
    return list(dict.fromkeys(t.strip() for t in texts if t.strip()))


def testbed_records(world, seed: int = 0, limit: int | None = None) -> list[Record]:
    """Testbed QA items outside the held-out fifth, each with a passage about its subject stating the answer."""
    rng = random.Random(seed)
    items = [i for i in [*world.qa_items(known=True), *world.qa_items(known=False)] if not held_out(i.question)]
    rng.shuffle(items)
    by_name = world.by_name()
    out = []
    for item in items[:limit] if limit else items:
        out.append((item.question, [item.answer], world.passage(by_name[item.subject], rng, include=item.attribute)))
    return out


# -- benchmark cases --------------------------------------------------------------------------------
CONDITIONS = ("clean", "counterfactual", "unhelpful")


@dataclass(frozen=True)
class BenchCase:
    """One question under one condition: the passages the systems read, and the answers that count."""

    question: str
    answers: tuple[str, ...]
    passages: tuple[str, ...]
    yes_no: bool = False


def answered(output: str, case: BenchCase) -> bool:
    """Answer-string match on normalized text: an alias mentioned as whole words (for a yes/no
    question, the output's first word)."""
    from ..metrics import normalize_tokens

    if case.yes_no:
        words = normalize_tokens(output)
        return bool(words) and words[0] in case.answers
    return contains_answer(output, case.answers)


def bench_cases(path: str | Path, passages: int = 1, seed: int = 0) -> tuple[str, dict[str, list[BenchCase]]]:
    """(format, {condition: cases}) from a LitM NQ-Open (its held-out questions, `qa.held_out`), RGB
    `*_fact` or ConflictQA file (`qa.sniff`)."""
    from ..qa import sniff

    kind = sniff(path)
    rng = random.Random(seed)
    if kind == "litm":
        # The held-out fifth only: stage 1 reconstructs the other questions' passages, stage 2 answers them.
        records = [(q, a, gold) for q, a, gold in read_litm_gold(path) if held_out(q)]
        return kind, _litm_cases(records, passages, rng)
    if kind == "rgb":
        return kind, _rgb_cases(path, passages, rng)
    return kind, _conflictqa_cases(path, passages, rng)


def _litm_cases(records: list[Record], n: int, rng: random.Random) -> dict[str, list[BenchCase]]:
    """Clean: the gold passage; counterfactual: its NQ-Swap twin; unhelpful: other questions' passages."""
    swapped = {s.question: s.swapped for s in nq_swaps(records, random.Random(rng.random()))}
    pool = [gold for _, _, gold in records]
    sets: dict[str, list[BenchCase]] = {c: [] for c in CONDITIONS}
    for question, answers, gold in records:
        aliases = tuple(answers)
        sets["clean"].append(BenchCase(question, aliases, _with_fillers(gold, answers, pool, n, rng)))
        if question in swapped:
            group = _with_fillers(swapped[question], answers, pool, n, rng)
            sets["counterfactual"].append(BenchCase(question, aliases, group))
        fillers = _fillers(answers, pool, n, rng)
        if len(fillers) == n:
            sets["unhelpful"].append(BenchCase(question, aliases, tuple(fillers)))
    return sets


def _rgb_answers(value) -> tuple[str, ...]:
    """RGB's `answer`: a string, a list of aliases, or a list of lists (any alias of the first item counts)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and isinstance(value[0], list):
        value = value[0]
    return tuple(a for a in value or [] if isinstance(a, str) and a.strip())


def _rgb_cases(path, n: int, rng: random.Random) -> dict[str, list[BenchCase]]:
    """Clean: `positive` passages; counterfactual: `positive_wrong`; unhelpful: `negative` (else other
    queries' positives)."""
    from ragarbiter.datasets import iter_jsonl

    from ..qa import RGB_KEYS, require_keys

    records = []
    for i, rec in enumerate(iter_jsonl(path)):
        require_keys(path, i, rec, (*RGB_KEYS, "answer"), "RGB fact")
        answers = _rgb_answers(rec["answer"])
        texts = {
            k: [t for t in rec.get(k) or [] if isinstance(t, str) and t.strip()] for k in (*RGB_KEYS[1:], "negative")
        }
        if answers and texts["positive"] and texts["positive_wrong"]:
            records.append((rec["query"], answers, texts))
    pool = [t for _, _, texts in records for t in texts["positive"]]
    sets: dict[str, list[BenchCase]] = {c: [] for c in CONDITIONS}
    for query, answers, texts in records:
        sets["clean"].append(BenchCase(query, answers, tuple(texts["positive"][:n])))
        sets["counterfactual"].append(BenchCase(query, answers, tuple(texts["positive_wrong"][:n])))
        negative = [t for t in texts["negative"] if not contains_answer(t, answers)][:n] or _fillers(
            answers, pool, n, rng
        )
        if negative:
            sets["unhelpful"].append(BenchCase(query, answers, tuple(negative)))
    if not records:
        msg = f"{path}: no RGB record with an answer, positive and positive_wrong passages. Expected RGB *_fact.json."
        raise InvalidInputError(msg)
    return sets


_YES, _NO = ("yes", "true"), ("no", "false")


def _conflictqa_cases(path, n: int, rng: random.Random) -> dict[str, list[BenchCase]]:
    """Yes/no questions with a gold answer. Clean: the evidence on the gold side; counterfactual: the
    evidence on the other side; unhelpful: another question's evidence. The side a piece of evidence
    takes comes from its one-line answer statement (the one that negates more says "no")."""
    from ragarbiter.datasets import iter_jsonl

    from ..qa import CONFLICTQA_KEYS, require_keys
    from ..text import NEGATION

    records = []
    for i, rec in enumerate(iter_jsonl(path)):
        require_keys(path, i, rec, (*CONFLICTQA_KEYS, "ground_truth", "memory_answer", "counter_answer"), "ConflictQA")
        truth = rec["ground_truth"][0] if isinstance(rec["ground_truth"], list) else rec["ground_truth"]
        gold = {"true": 1, "yes": 1, "false": 0, "no": 0}.get(str(truth).strip().casefold())
        diff = len(NEGATION.findall(rec["counter_answer"])) - len(NEGATION.findall(rec["memory_answer"]))
        if gold is None or diff == 0:
            continue
        memory_says_yes = diff > 0
        memory = rec["parametric_memory_aligned_evidence"]
        counter = rec["counter_memory_aligned_evidence"]
        right, wrong = (memory, counter) if memory_says_yes == bool(gold) else (counter, memory)
        records.append((rec["question"], _YES if gold else _NO, right, wrong))
    pool = [t for *_, right, wrong in records for t in (right, wrong)]
    sets: dict[str, list[BenchCase]] = {c: [] for c in CONDITIONS}
    for question, answers, right, wrong in records:
        others = [t for t in pool if t not in (right, wrong)]
        sets["clean"].append(BenchCase(question, answers, (right,), yes_no=True))
        sets["counterfactual"].append(BenchCase(question, answers, (wrong,), yes_no=True))
        if others:
            sets["unhelpful"].append(BenchCase(question, answers, tuple(rng.sample(others, min(n, len(others)))), True))
    if not records:
        msg = f"{path}: no ConflictQA record with a yes/no ground_truth and two answer statements of opposite stance."
        raise InvalidInputError(msg)
    return sets
