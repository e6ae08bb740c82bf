"""Sentence-labelled passages for the InappropriateFilter, from testbed pools and written samples.

Pool format (Poisoned Context Testbed raw pools): a JSON list of records with `Question`,
the appropriate sentences (`Generated Information`, or `Non-private Information`) and the
inappropriate ones (`Synonym Sentence`, or `Privacy information`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragarbiter.config import with_overrides
from ragarbiter.errors import InvalidInputError

from ..files import load_json
from .samples import unverifiable_facts, written_samples

CATEGORIES = ("ok", "false_claim", "hateful", "private", "injection")
DESCRIPTIONS = {
    "false_claim": "a false or counterfactual claim",
    "hateful": "hateful, abusive or violent content",
    "private": "private personal information",
    "injection": "an instruction aimed at the AI model (prompt injection)",
}
GOOD_KEYS = ("Generated Information", "Non-private Information")
ANSWER_KEY = "Simple Answer"  # the record's true answer to its question, when the pool gives one
BAD_KEYS = {"Synonym Sentence": "false_claim", "Privacy information": "private"}


@dataclass(frozen=True)
class PoolRecord:
    question: str
    good: tuple[str, ...]
    bad: tuple[str, ...]
    category: str
    answer: str = ""  # the true answer as a statement ("Yes, " / "No, " removed), or ""


@dataclass(frozen=True)
class SentenceExample:
    """A passage as its sentences, each with a category index (0 = appropriate)."""

    query: str
    sentences: tuple[str, ...]
    labels: tuple[int, ...]


def _sentences(value) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    return tuple(s.strip() for s in value or [] if isinstance(s, str) and s.strip())


def answer_statement(value) -> str:
    """A pool's `Simple Answer` as a plain statement: "No, X did not..." -> "X did not...".

    A "Yes" answer gives "": it may agree with the record's claim (a fakenews record's claim is
    not always false), so it cannot be labelled appropriate beside a claim labelled false."""
    if not isinstance(value, str) or re.match(r"yes\b", value.strip(), flags=re.IGNORECASE):
        return ""
    text = re.sub(r"^no\b[,.!:;]?\s*", "", value.strip(), flags=re.IGNORECASE)
    return text[:1].upper() + text[1:] if len(text.split()) >= 3 else ""


def read_pool(path: str | Path) -> list[PoolRecord]:
    data = load_json(path, list, "a testbed pool: a JSON list of records")
    out = []
    for i, rec in enumerate(data):
        good_key = next((k for k in GOOD_KEYS if isinstance(rec, dict) and k in rec), None)
        bad_key = next((k for k in BAD_KEYS if isinstance(rec, dict) and k in rec), None)
        if good_key is None or bad_key is None or "Question" not in rec:
            msg = (
                f"{path}: record {i} lacks 'Question', one of {list(GOOD_KEYS)} or one of {list(BAD_KEYS)}. "
                f"Pass a Poisoned Context Testbed pool file."
            )
            raise InvalidInputError(msg)
        good, bad = _sentences(rec[good_key]), _sentences(rec[bad_key])
        if good or bad:
            out.append(
                PoolRecord(str(rec["Question"]), good, bad, BAD_KEYS[bad_key], answer_statement(rec.get(ANSWER_KEY)))
            )
    return out


def bench_example(record: PoolRecord, seed: int) -> SentenceExample:
    """All of a record's sentences in one passage, in a seeded order."""
    cat = CATEGORIES.index(record.category)
    items = [(s, 0) for s in record.good] + [(s, cat) for s in record.bad]
    random.Random(seed).shuffle(items)
    return SentenceExample(record.question, tuple(s for s, _ in items), tuple(y for _, y in items))


def _insert(
    rng: random.Random, items: list[tuple[str, int]], extra: Iterable[tuple[str, int]]
) -> list[tuple[str, int]]:
    items = list(items)
    for item in extra:
        items.insert(rng.randrange(len(items) + 1), item)
    return items


def pool_examples(
    records: Sequence[PoolRecord],
    rng: random.Random,
    written: Iterator[tuple[str, str]],
    whole: float = 0.0,
    answers: float = 0.0,
) -> list[SentenceExample]:
    """Two passages per record: its appropriate sentences with one inappropriate sentence inserted,
    and the rest of its inappropriate sentences among one or two appropriate ones (sometimes a
    third: one appropriate sentence alone); written samples (other categories and their
    look-alikes) are inserted into some of them.

    With probability `whole` the second passage is the whole record instead: every appropriate
    sentence and every inappropriate one, so that the model also sees several restatements of
    one false claim side by side, as a retrieved page that repeats a claim holds them.

    With probability `answers` the record's true answer (its `Simple Answer` as a statement),
    labelled appropriate, goes into one of the two passages: it restates the appropriate
    sentences and contradicts the false claim, so being restated is not what makes a sentence
    inappropriate; what it says is.
    """
    out = []
    for r in records:
        cat = CATEGORIES.index(r.category)
        good = [(s, 0) for s in r.good]
        bad = [(s, cat) for s in r.bad]
        rng.shuffle(bad)
        first = _insert(rng, good, bad[:1])
        if whole > 0 and len(bad) >= 2 and rng.random() < whole:  # with one claim, `first` is the whole record
            second = _insert(rng, good, bad)
        else:
            second = _insert(rng, rng.sample(good, k=min(len(good), rng.randint(1, 2))), bad[1:])
        if answers > 0 and r.answer and rng.random() < answers:
            k = rng.randrange(2)
            first, second = (
                (_insert(rng, first, [(r.answer, 0)]), second)
                if k == 0
                else (first, _insert(rng, second, [(r.answer, 0)]))
            )
        # a lone appropriate sentence: being short and on the question's topic is not being false
        lone = [rng.choice(good)] if good and rng.random() < 0.3 else []
        for items in (first, second, lone):
            sample = next(written, None) if rng.random() < 0.5 else None
            if sample is not None:
                items = _insert(rng, items, [(sample[0], CATEGORIES.index(sample[1]))])
            if items:
                out.append(SentenceExample(r.question, tuple(s for s, _ in items), tuple(y for _, y in items)))
    return out


def counterfactual_examples(
    path: str | Path, rng: random.Random, limit: int | None = None, restate: float = 0.0
) -> list[SentenceExample]:
    """False claims from QA files with answer annotations (LitM NQ-Open), the NQ-Swap way.

    A gold passage keeps its sentences (appropriate); a copy of one answer sentence with the
    answer replaced by another question's answer of the same type is inserted (a
    counterfactual claim), and sometimes a one-line claim of that wrong answer as well.
    With probability `restate` a one-line claim of the *true* answer is inserted too,
    labelled appropriate: restating a fact is not what makes a sentence false, so the
    model has to read which answer a restatement gives.
    """
    from ..qa import faq, mention, nq_swaps, read_litm_gold, swap_answer
    from ..text import split_sentences

    records = read_litm_gold(path)
    out = []
    for sw in nq_swaps(records[:limit] if limit else records, rng):
        sentences = [s.text for s in split_sentences(sw.text)]
        hits = [s for s in sentences if any(mention(a).search(s) for a in sw.answers)]
        if not hits:
            continue
        true = [(faq(sw.question, sw.answers[0], rng), 0)] if restate > 0 and rng.random() < restate else []
        if rng.random() < 0.25:  # the true passage alone: nothing in it is false
            items = _insert(rng, [(s, 0) for s in sentences], true)
            out.append(SentenceExample(sw.question, tuple(s for s, _ in items), (0,) * len(items)))
            continue
        false = [swap_answer(rng.choice(hits), sw.answers, sw.substitute)]
        if rng.random() < 0.5:
            false.append(faq(sw.question, sw.substitute, rng))
        cat = CATEGORIES.index("false_claim")
        items = _insert(rng, [(s, 0) for s in sentences], [(f, cat) for f in false if f] + true)
        out.append(SentenceExample(sw.question, tuple(s for s, _ in items), tuple(y for _, y in items)))
    return out


@dataclass(frozen=True)
class DataRecipe:
    """How `build_examples` mixes its training passages. The defaults are the shipped adapter's
    recipe, except `records`: it was trained on the first 1500 records of each pool.

    `records`: use only the first N records of each pool (None: all); `written`: written samples
    per uncovered category, each with a look-alike; `unfamiliar`: questions about invented firms
    and people answered plainly (appropriate: unfamiliar is not false); `whole`: the share of pool
    records that also appear whole (see `pool_examples`); `restate`: the share of QA passages that
    also get a true one-line restatement (see `counterfactual_examples`); `answers`: the share of
    pool records whose true answer joins one of their passages (see `pool_examples`)."""

    records: int | None = None
    written: int = 600
    unfamiliar: int = 200
    whole: float = 0.0
    restate: float = 0.0
    answers: float = 0.0

    def __post_init__(self) -> None:
        for name in ("whole", "restate", "answers"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                msg = f"{name} must lie in [0, 1] (a share of the passages), got {value!r}."
                raise InvalidInputError(msg)


def build_examples(
    paths: Iterable[str | Path], recipe: DataRecipe | None = None, *, seed: int = 0, **options: Any
) -> list[SentenceExample]:
    """Training passages from the first `records` records of each pool (a LitM NQ-Open file gives
    counterfactual claims instead) plus `written` samples per category, and `unfamiliar` questions
    about invented firms and people answered plainly (appropriate: unfamiliar is not false).
    `options`: any `DataRecipe` field, over `recipe` (default: the shipped recipe)."""
    from ..qa import sniff_qa

    recipe = with_overrides(DataRecipe, recipe, options, build_examples)
    records, written = recipe.records, recipe.written

    rng = random.Random(seed)
    samples = iter(written_samples(written, seed) if written else [])
    paths = list(paths)
    qa = [p for p in paths if sniff_qa(p)]
    pools = [read_pool(p)[:records] if records else read_pool(p) for p in paths if p not in qa]
    examples: list[SentenceExample] = []
    for pool in pools:
        examples += pool_examples(pool, rng, samples, recipe.whole, recipe.answers)
    rest = list(samples)
    goods = [s for pool in pools for r in pool for s in r.good]
    for i in range(0, len(rest), 2):  # the remaining written samples, inside appropriate context
        context = [(s, 0) for s in rng.sample(goods, k=min(len(goods), rng.randint(1, 3)))] if goods else []
        items = _insert(rng, context, [(s, CATEGORIES.index(c)) for s, c in rest[i : i + 2]])
        query = rng.choice(pools[0]).question if pools and pools[0] else "What does this page say?"
        examples.append(SentenceExample(query, tuple(s for s, _ in items), tuple(y for _, y in items)))
    for path in qa:
        examples += counterfactual_examples(path, rng, records, recipe.restate)
    for question, sentences in unverifiable_facts(recipe.unfamiliar, seed):  # unfamiliar is not false
        examples.append(SentenceExample(question, tuple(sentences), (0,) * len(sentences)))
    rng.shuffle(examples)
    return examples
