"""QA records from the public formats, shared by the methods' data builders.

Format sniffing (LitM NQ-Open, ConflictQA, RGB), LitM gold passages, the NQ-Swap answer
substitution, FAQ-style one-line answers, and the held-out split every method evaluates on.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ragarbiter.datasets import iter_jsonl, passage_text
from ragarbiter.errors import InvalidInputError

from .files import load_json

CONFLICTQA_KEYS = (
    "question",
    "parametric_memory",
    "counter_memory",
    "parametric_memory_aligned_evidence",
    "counter_memory_aligned_evidence",
)


RGB_KEYS = ("query", "positive", "positive_wrong")


_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)


def sniff(path: str | Path) -> str:
    """'litm', 'conflictqa' or 'rgb', from the first record's keys."""
    first = next(iter_jsonl(path), None)
    if first is None:
        msg = f"{path} holds no records. Pass a non-empty LitM, ConflictQA or RGB file."
        raise InvalidInputError(msg)
    if all(k in first for k in CONFLICTQA_KEYS):
        return "conflictqa"
    if all(k in first for k in RGB_KEYS):
        return "rgb"
    if "question" in first and isinstance(first.get("ctxs"), list):
        return "litm"
    msg = (
        f"{path}: cannot tell the format from the keys {sorted(first)[:8]}. Expected LitM NQ-Open "
        f"(question, answers, ctxs), ConflictQA ({', '.join(CONFLICTQA_KEYS)}) or RGB ({', '.join(RGB_KEYS)})."
    )
    raise InvalidInputError(msg)


def sniff_qa(path: str | Path) -> bool:
    """Whether `path` is a LitM NQ-Open JSONL file (QA with answer annotations)."""
    name = str(path).lower()
    return name.endswith((".jsonl", ".jsonl.gz")) and sniff(path) == "litm"


def require_keys(path, i: int, rec: dict, keys: Iterable[str], fmt: str) -> None:
    missing = [k for k in keys if k not in rec]
    if missing:
        msg = f"{path}: record {i} lacks {missing}. Every {fmt} record needs {', '.join(keys)}."
        raise InvalidInputError(msg)


def answer_type(answer: str) -> str:
    """A coarse entity type from the surface form (year, date, number, name, other)."""
    a = answer.strip()
    low = a.lower()
    if re.fullmatch(r"1[0-9]{3}|20[0-9]{2}", a):
        return "year"
    if any(m in low.split() for m in _MONTHS) and re.search(r"\d", a):
        return "date"
    if re.search(r"\d", a):
        return "number"
    words = a.split()
    if words and len(words) <= 5 and all(w[:1].isupper() or not w[:1].isalpha() for w in words):
        return "name"
    return "other"


def mention(answer: str) -> re.Pattern:
    """Whole-word, case-insensitive mentions of `answer`."""
    return re.compile(r"(?<!\w)" + re.escape(answer) + r"(?!\w)", re.IGNORECASE)


def swap_answer(text: str, answers: Iterable[str], substitute: str) -> str | None:
    """Replace every mention of any answer alias by `substitute`; None if no mention."""
    out, hit = text, False
    for a in sorted({a for a in answers if a.strip()}, key=len, reverse=True):
        out, n = mention(a).subn(substitute, out)
        hit = hit or n > 0
    return out if hit else None


_FAQ = ("Q: {q}?\nA: {a}.", "{Q}? {a}.", "FAQ - {q}: {a}.", '{a}, according to the answer to "{q}".')


def faq(question: str, answer: str, rng: random.Random) -> str:
    """A short question-and-answer text stating `answer`: a different text that gives the same
    (or, with another answer, a different) answer as a full passage."""
    q = question.strip().rstrip("?")
    return rng.choice(_FAQ).format(q=q, Q=q[:1].upper() + q[1:], a=answer)


@dataclass(frozen=True)
class NqSwap:
    """A gold passage and its NQ-Swap twin: every answer mention replaced by `substitute`."""

    question: str
    answers: tuple[str, ...]
    text: str
    substitute: str
    swapped: str


def read_litm_gold(path: str | Path) -> list[tuple[str, list[str], str]]:
    """(question, answers, gold passage text) for every LitM NQ-Open record that has both."""
    records = []
    for i, rec in enumerate(iter_jsonl(path)):
        require_keys(path, i, rec, ("question", "answers", "ctxs"), "LitM NQ-Open")
        gold = [c for c in rec["ctxs"] if c.get("isgold") or c.get("hasanswer")]
        answers = [a for a in rec["answers"] if isinstance(a, str) and a.strip()]
        if gold and answers:
            records.append((rec["question"], answers, passage_text(gold[0])))
    return records


def nq_swaps(
    records: list[tuple[str, list[str], str]],
    rng: random.Random,
    pool_key: Callable[[str, list[str]], str] | None = None,
) -> Iterator[NqSwap]:
    """The NQ-Swap recipe: substitute another question's answer of the same type (lazily, so a
    caller's own draws from `rng` interleave with these the same way on every run). `pool_key`
    (question, answers) -> key says which records' answers substitute for each other (default:
    the first answer's `answer_type`)."""
    key = pool_key or (lambda _question, answers: answer_type(answers[0]))
    pools: dict[str, list[str]] = defaultdict(list)
    for question, answers, _ in records:
        pools[key(question, answers)].append(answers[0])
    for question, answers, text in records:
        substitute = _pick_substitute(pools[key(question, answers)], answers, text, rng)
        swapped = swap_answer(text, answers, substitute) if substitute else None
        if swapped is not None:
            yield NqSwap(question, tuple(answers), text, substitute, swapped)


def _pick_substitute(pool: list[str], answers: list[str], text: str, rng: random.Random) -> str | None:
    taken = {a.casefold() for a in answers}
    for _ in range(10):
        candidate = rng.choice(pool)
        if candidate.casefold() not in taken and not mention(candidate).search(text):
            return candidate
    return None


def question_key(question: str) -> str:
    """Case, spacing and punctuation do not matter ("who wrote it?" matches "Who wrote it")."""
    return " ".join(re.findall(r"\w+", question.casefold()))


def question_digest(question: str) -> str:
    """A short stable digest of `question_key(question)`: how adapter manifests list the questions
    an adapter was trained on, without copying the dataset into the manifest."""
    import hashlib

    return hashlib.sha1(question_key(question).encode("utf-8")).hexdigest()[:12]


def held_out(question: str) -> bool:
    """One question in five (by a hash of its text) is kept out of every method's training, for evaluation."""
    import hashlib

    return hashlib.sha256(question.encode("utf-8")).digest()[0] % 5 == 0


# -- PoisonedRAG ----------------------------------------------------------------------------
POISONEDRAG_KEYS = ("question", "correct answer", "incorrect answer", "adv_texts")


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
        missing = [k for k in POISONEDRAG_KEYS if not isinstance(rec, dict) or k not in rec]
        if missing:
            needs = ", ".join(POISONEDRAG_KEYS)
            msg = f"{path}: target {key!r} lacks {missing}. Every PoisonedRAG target needs {needs}."
            raise InvalidInputError(msg)
        advs = tuple(t for t in rec["adv_texts"] if isinstance(t, str) and t.strip())
        targets.append(
            PoisonTarget(
                str(rec.get("id", key)), rec["question"], str(rec["correct answer"]), str(rec["incorrect answer"]), advs
            )
        )
    return targets
