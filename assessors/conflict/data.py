"""Training groups and benchmark pairs for the ConflictAssessor.

A `ConflictGroup` is a query with passages labelled by the answer they give: passages in
the same cluster agree, passages in different clusters conflict, and cluster -1 marks a
passage that gives no answer to this query (it conflicts with nothing).

Sources:
- LitM NQ-Open (`question`, `answers[]`, `ctxs[]`): the NQ-Swap recipe. The gold passage's
  answer mentions are replaced by another question's answer of the same type, which gives
  a minimal-edit conflicting pair. Each side also gets a second view with an edit that does
  not touch the answer, so "nearly identical" never means "conflicting" by itself.
- ConflictQA (`question`, `parametric_memory`, `counter_memory`, `*_aligned_evidence`).
- RGB `*_fact.json` (`query`, `positive[]`, `positive_wrong[]`, `negative[]`), for benchmarks.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ragarbiter.datasets import iter_jsonl
from ragarbiter.errors import InvalidInputError

from ..qa import (
    CONFLICTQA_KEYS,
    RGB_KEYS,
    faq,
    mention,
    nq_swaps,
    read_litm_gold,
    require_keys,
    sniff,
)
from ..text import NEGATION, split_sentences

NEUTRAL = -1
UNKNOWN_STANCE = -1  # `ConflictGroup.stances`: 1 = the passage answers a yes/no query "yes", 0 = "no"


@dataclass(frozen=True)
class ConflictGroup:
    """`answers[i]`: the answer strings passage i states (empty when unknown), for span supervision.
    `stances[i]`: for a yes/no query, 1 when passage i answers "yes", 0 "no", -1 unknown."""

    query: str
    texts: tuple[str, ...]
    clusters: tuple[int, ...]
    answers: tuple[tuple[str, ...], ...] = ()
    stances: tuple[int, ...] = ()

    def pairs(self) -> list[tuple[int, int, int]]:
        """Every (i, j, label) with i < j; label 1 = the two passages give different answers."""
        out = []
        for i in range(len(self.texts)):
            for j in range(i + 1, len(self.texts)):
                a, b = self.clusters[i], self.clusters[j]
                out.append((i, j, int(a != NEUTRAL and b != NEUTRAL and a != b)))
        return out


# -- file format detection ------------------------------------------------------------


# -- yes/no questions --------------------------------------------------------------------
_YES_NO = re.compile(
    r"^\W*(is|are|was|were|am|do|does|did|can|could|would|will|should|shall|has|have|had|may|might|must)\b",
    re.IGNORECASE,
)


def yes_no_question(query: str) -> bool:
    """Whether `query` asks a yes/no question (it opens with an auxiliary verb: "Is ...", "Did ...")."""
    return bool(_YES_NO.match(query))


def claim_polarity(claim: str, opposite: str) -> int:
    """1 ("yes") or 0 ("no") for a one-line answer statement against its opposite, by which of the two
    negates more; UNKNOWN_STANCE when they negate equally."""
    diff = len(NEGATION.findall(opposite)) - len(NEGATION.findall(claim))
    return UNKNOWN_STANCE if diff == 0 else int(diff > 0)


# -- ConflictQA -------------------------------------------------------------------------
def read_conflictqa(path: str | Path) -> list[dict]:
    out = []
    for i, rec in enumerate(iter_jsonl(path)):
        require_keys(path, i, rec, CONFLICTQA_KEYS, "ConflictQA")
        if all(isinstance(rec[k], str) and rec[k].strip() for k in CONFLICTQA_KEYS):
            claims = {k: rec[k].strip() for k in ("memory_answer", "counter_answer") if isinstance(rec.get(k), str)}
            gold = gold_stance(rec.get("ground_truth"))
            out.append(
                {
                    **{k: rec[k].strip() for k in CONFLICTQA_KEYS},
                    **claims,
                    **({"gold_stance": gold} if gold != UNKNOWN_STANCE else {}),
                }
            )
    return out


def gold_stance(ground_truth) -> int:
    """1 / 0 for a yes/no `ground_truth` ("True", ["yes"], ...), UNKNOWN_STANCE for anything else."""
    value = ground_truth[0] if isinstance(ground_truth, list) and len(ground_truth) == 1 else ground_truth
    word = value.strip().casefold() if isinstance(value, str) else None
    return {"true": 1, "yes": 1, "false": 0, "no": 0}.get(word, UNKNOWN_STANCE)


def conflictqa_groups(records: list[dict], rng: random.Random) -> list[ConflictGroup]:
    """Memory + its aligned evidence agree; the two sides conflict; another question's evidence is neutral.
    For yes/no questions the stance of each side comes from its one-line answer statement.

    In a yes/no record with a gold answer, the evidence on the gold side is the source dataset's
    own fact list (StrategyQA): the answer follows from it only by reasoning over several facts,
    and it never states the answer. It is trained as a passage that gives no answer (NEUTRAL),
    like a LitM gold passage with its answer sentences removed, so the model learns that an
    answer-less passage conflicts with nothing. The other side's evidence was generated to
    argue its answer and states it, and stays in its side's cluster."""
    groups = []
    for r in records:
        other = records[rng.randrange(len(records))] if len(records) > 1 else None
        texts = [
            r["parametric_memory"],
            r["parametric_memory_aligned_evidence"],
            r["counter_memory"],
            r["counter_memory_aligned_evidence"],
        ]
        clusters = [0, 0, 1, 1]
        memory = UNKNOWN_STANCE
        if r.get("memory_answer") and r.get("counter_answer"):  # the two one-line claims: a minimal-edit pair
            texts += [r["memory_answer"], r["counter_answer"]]
            clusters += [0, 1]
            if yes_no_question(r["question"]):
                memory = claim_polarity(r["memory_answer"], r["counter_answer"])
        side = {0: memory, 1: UNKNOWN_STANCE if memory == UNKNOWN_STANCE else 1 - memory}
        if memory != UNKNOWN_STANCE and r.get("gold_stance", UNKNOWN_STANCE) != UNKNOWN_STANCE:
            clusters[1 if memory == r["gold_stance"] else 3] = NEUTRAL  # the fact list states no answer
        if other is not None and other is not r:
            texts.append(other[rng.choice(CONFLICTQA_KEYS[1:])])
            clusters.append(NEUTRAL)
        stances = tuple(side.get(c, UNKNOWN_STANCE) for c in clusters)
        groups.append(ConflictGroup(r["question"], tuple(texts), tuple(clusters), stances=stances))
    return groups


# -- RGB ----------------------------------------------------------------------------------
def read_rgb(path: str | Path) -> list[dict]:
    out = []
    for i, rec in enumerate(iter_jsonl(path)):
        require_keys(path, i, rec, RGB_KEYS, "RGB fact")
        pos = [t for t in rec["positive"] if isinstance(t, str) and t.strip()]
        wrong = [t for t in rec["positive_wrong"] if isinstance(t, str) and t.strip()]
        neg = [t for t in rec.get("negative") or [] if isinstance(t, str) and t.strip()]
        if pos and wrong:
            out.append({"query": rec["query"], "positive": pos, "positive_wrong": wrong, "negative": neg})
    return out


# -- LitM NQ-Open: the NQ-Swap recipe -------------------------------------------------------


def neutral_edit(text: str, answers: Iterable[str], rng: random.Random) -> str:
    """An edit that leaves the answer alone: drop a sentence, crop the edges, or change another number."""
    spans = [m.span() for a in answers if a.strip() for m in mention(a).finditer(text)]
    lo = min((s for s, _ in spans), default=0)
    hi = max((e for _, e in spans), default=len(text))
    choice = rng.random()
    if choice < 0.4:  # crop words before/after the answer region
        head = text[:lo].split(" ")
        tail = text[hi:].split(" ")
        head = head[rng.randrange(len(head) // 2 + 1) :] if len(head) > 4 else head
        tail = tail[: len(tail) - rng.randrange(len(tail) // 2 + 1)] if len(tail) > 4 else tail
        return " ".join(head) + text[lo:hi] + " ".join(tail)
    if choice < 0.7:  # change a number outside the answer
        numbers = [m for m in re.finditer(r"\b\d{1,4}\b", text) if m.end() <= lo or m.start() >= hi]
        if numbers:
            m = rng.choice(numbers)
            new = str(int(m.group()) + rng.choice([-3, -2, -1, 1, 2, 5, 10]))
            return text[: m.start()] + new.lstrip("-") + text[m.end() :]
    sentences = re.split(r"(?<=[.!?])\s+", text)
    outside = [i for i, s in enumerate(sentences) if not any(mention(a).search(s) for a in answers if a.strip())]
    if len(sentences) > 1 and outside:
        del sentences[rng.choice(outside)]
        return " ".join(sentences)
    return text


def answer_sentences(text: str, answers: Iterable[str]) -> str | None:
    """Only the sentences that mention an answer (None when that is all of the text or none of it)."""
    sentences = split_sentences(text)
    hits = [s.text for s in sentences if any(mention(a).search(s.text) for a in answers if a.strip())]
    return " ".join(hits) if hits and len(hits) < len(sentences) else None


def without_answer(text: str, answers: Iterable[str]) -> str | None:
    """The sentences that do not mention an answer (None when nothing, or everything, is left)."""
    sentences = split_sentences(text)
    rest = [s.text for s in sentences if not any(mention(a).search(s.text) for a in answers if a.strip())]
    return " ".join(rest) if rest and len(rest) < len(sentences) else None


def second_view(text: str, answers: Iterable[str], rng: random.Random) -> str:
    """Another passage giving the same answer: its answer sentences alone (a different text),
    or a near-identical copy with an edit elsewhere (so near-identical never means conflicting)."""
    answers = list(answers)
    short = answer_sentences(text, answers) if rng.random() < 0.5 else None
    return short or neutral_edit(text, answers, rng)


def litm_groups(path: str | Path, rng: random.Random) -> list[ConflictGroup]:
    records = read_litm_gold(path)
    groups = []
    for sw in nq_swaps(records, rng):
        question, answers, text, substitute, swapped = sw.question, list(sw.answers), sw.text, sw.substitute, sw.swapped
        neutral = records[rng.randrange(len(records))][2]
        texts = [
            text,
            second_view(text, answers, rng),
            swapped,
            second_view(swapped, [substitute], rng),
            faq(question, answers[0], rng),
            faq(question, substitute, rng),
            neutral,
        ]
        clusters = [0, 0, 1, 1, 0, 1, NEUTRAL if neutral != text else 0]
        stated = [tuple(answers)] * 2 + [(substitute,)] * 2 + [(answers[0],), (substitute,), ()]
        rest = without_answer(text, answers)
        if rest:  # same topic, no answer: conflicts with nothing
            texts.append(rest)
            clusters.append(NEUTRAL)
            stated.append(())
        groups.append(ConflictGroup(question, tuple(texts), tuple(clusters), tuple(stated)))
    return groups


def build_groups(paths: Iterable[str | Path], seed: int = 0) -> list[ConflictGroup]:
    """Training groups from any mix of LitM NQ-Open and ConflictQA files."""
    rng = random.Random(seed)
    groups: list[ConflictGroup] = []
    for path in paths:
        kind = sniff(path)
        if kind == "litm":
            groups += litm_groups(path, rng)
        elif kind == "conflictqa":
            groups += conflictqa_groups(read_conflictqa(path), rng)
        else:
            msg = (
                f"{path} is an RGB file; `train conflict` reads LitM NQ-Open "
                "and ConflictQA files. Use it with `bench conflict`."
            )
            raise InvalidInputError(msg)
    return groups


# -- benchmark items ---------------------------------------------------------------------
@dataclass(frozen=True)
class BenchItem:
    """Passages for one query, labelled pairs (i, j, conflict) and labelled sets (indices, conflict)."""

    query: str
    texts: tuple[str, ...]
    pairs: tuple[tuple[int, int, int], ...]
    sets: tuple[tuple[tuple[int, ...], int], ...]


def bench_items(path: str | Path, per_side: int = 3, negatives: int = 2) -> list[BenchItem]:
    """ConflictQA: (memory, counter-memory) conflict; each memory with its own evidence agrees.
    RGB: (positive, positive_wrong) conflict; pairs within one side agree; up to `negatives`
    irrelevant passages join every set."""
    kind = sniff(path)
    items = []
    if kind == "conflictqa":
        for r in read_conflictqa(path):
            texts = tuple(r[k] for k in CONFLICTQA_KEYS[1:])  # pm, cm, pm_ev, cm_ev
            items.append(
                BenchItem(
                    r["question"],
                    texts,
                    ((0, 1, 1), (0, 2, 0), (1, 3, 0)),
                    (((0, 1, 2, 3), 1), ((0, 2), 0), ((1, 3), 0)),
                )
            )
    elif kind == "rgb":
        for r in read_rgb(path):
            pos, wrong = r["positive"][:per_side], r["positive_wrong"][:per_side]
            neg = r["negative"][:negatives]
            texts = tuple(pos + wrong + neg)
            ip = list(range(len(pos)))
            iw = list(range(len(pos), len(pos) + len(wrong)))
            ineg = tuple(range(len(pos) + len(wrong), len(texts)))
            pairs = [(i, j, 1) for i in ip for j in iw]
            pairs += [(a, b, 0) for side in (ip, iw) for x, a in enumerate(side) for b in side[x + 1 :]]
            sets = ((tuple(ip + iw) + ineg, 1), (tuple(ip) + ineg, 0), (tuple(iw) + ineg, 0))
            items.append(BenchItem(r["query"], texts, tuple(pairs), sets))
    else:
        msg = f"{path} is a LitM file; `bench conflict` reads ConflictQA or RGB fact files."
        raise InvalidInputError(msg)
    return items
