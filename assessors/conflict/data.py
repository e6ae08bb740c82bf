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
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ragarbiter.datasets import iter_jsonl, passage_text
from ragarbiter.errors import InvalidInputError

NEUTRAL = -1
CONFLICTQA_KEYS = ("question", "parametric_memory", "counter_memory",
                   "parametric_memory_aligned_evidence", "counter_memory_aligned_evidence")
RGB_KEYS = ("query", "positive", "positive_wrong")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")


@dataclass(frozen=True)
class ConflictGroup:
    query: str
    texts: tuple[str, ...]
    clusters: tuple[int, ...]

    def pairs(self) -> list[tuple[int, int, int]]:
        """Every (i, j, label) with i < j; label 1 = the two passages give different answers."""
        out = []
        for i in range(len(self.texts)):
            for j in range(i + 1, len(self.texts)):
                a, b = self.clusters[i], self.clusters[j]
                out.append((i, j, int(a != NEUTRAL and b != NEUTRAL and a != b)))
        return out


# -- file format detection ------------------------------------------------------------
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
    msg = (f"{path}: cannot tell the format from the keys {sorted(first)[:8]}. Expected LitM NQ-Open "
           f"(question, answers, ctxs), ConflictQA ({', '.join(CONFLICTQA_KEYS)}) or RGB ({', '.join(RGB_KEYS)}).")
    raise InvalidInputError(msg)


def _require_keys(path, i: int, rec: dict, keys: Iterable[str], fmt: str) -> None:
    missing = [k for k in keys if k not in rec]
    if missing:
        msg = f"{path}: record {i} lacks {missing}. Every {fmt} record needs {', '.join(keys)}."
        raise InvalidInputError(msg)


# -- ConflictQA -------------------------------------------------------------------------
def read_conflictqa(path: str | Path) -> list[dict]:
    out = []
    for i, rec in enumerate(iter_jsonl(path)):
        _require_keys(path, i, rec, CONFLICTQA_KEYS, "ConflictQA")
        if all(isinstance(rec[k], str) and rec[k].strip() for k in CONFLICTQA_KEYS):
            out.append({k: rec[k].strip() for k in CONFLICTQA_KEYS})
    return out


def conflictqa_groups(records: list[dict], rng: random.Random) -> list[ConflictGroup]:
    """Memory + its aligned evidence agree; the two sides conflict; another question's evidence is neutral."""
    groups = []
    for i, r in enumerate(records):
        other = records[rng.randrange(len(records))] if len(records) > 1 else None
        texts = [r["parametric_memory"], r["parametric_memory_aligned_evidence"],
                 r["counter_memory"], r["counter_memory_aligned_evidence"]]
        clusters = [0, 0, 1, 1]
        if other is not None and other is not r:
            texts.append(other[rng.choice(CONFLICTQA_KEYS[1:])])
            clusters.append(NEUTRAL)
        groups.append(ConflictGroup(r["question"], tuple(texts), tuple(clusters)))
    return groups


# -- RGB ----------------------------------------------------------------------------------
def read_rgb(path: str | Path) -> list[dict]:
    out = []
    for i, rec in enumerate(iter_jsonl(path)):
        _require_keys(path, i, rec, RGB_KEYS, "RGB fact")
        pos = [t for t in rec["positive"] if isinstance(t, str) and t.strip()]
        wrong = [t for t in rec["positive_wrong"] if isinstance(t, str) and t.strip()]
        neg = [t for t in rec.get("negative") or [] if isinstance(t, str) and t.strip()]
        if pos and wrong:
            out.append({"query": rec["query"], "positive": pos, "positive_wrong": wrong, "negative": neg})
    return out


# -- LitM NQ-Open: the NQ-Swap recipe -------------------------------------------------------
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


def _mention(answer: str) -> re.Pattern:
    return re.compile(r"(?<!\w)" + re.escape(answer) + r"(?!\w)", re.IGNORECASE)


def swap_answer(text: str, answers: Iterable[str], substitute: str) -> str | None:
    """Replace every mention of any answer alias by `substitute`; None if no mention."""
    out, hit = text, False
    for a in sorted({a for a in answers if a.strip()}, key=len, reverse=True):
        out, n = _mention(a).subn(substitute, out)
        hit = hit or n > 0
    return out if hit else None


def neutral_edit(text: str, answers: Iterable[str], rng: random.Random) -> str:
    """An edit that leaves the answer alone: drop a sentence, crop the edges, or change another number."""
    spans = [m.span() for a in answers if a.strip() for m in _mention(a).finditer(text)]
    lo = min((s for s, _ in spans), default=0)
    hi = max((e for _, e in spans), default=len(text))
    choice = rng.random()
    if choice < 0.4:  # crop words before/after the answer region
        head = text[:lo].split(" ")
        tail = text[hi:].split(" ")
        head = head[rng.randrange(len(head) // 2 + 1):] if len(head) > 4 else head
        tail = tail[: len(tail) - rng.randrange(len(tail) // 2 + 1)] if len(tail) > 4 else tail
        return " ".join(head) + text[lo:hi] + " ".join(tail)
    if choice < 0.7:  # change a number outside the answer
        numbers = [m for m in re.finditer(r"\b\d{1,4}\b", text) if m.end() <= lo or m.start() >= hi]
        if numbers:
            m = rng.choice(numbers)
            new = str(int(m.group()) + rng.choice([-3, -2, -1, 1, 2, 5, 10]))
            return text[:m.start()] + new.lstrip("-") + text[m.end():]
    sentences = re.split(r"(?<=[.!?])\s+", text)
    outside = [i for i, s in enumerate(sentences) if not any(_mention(a).search(s) for a in answers if a.strip())]
    if len(sentences) > 1 and outside:
        del sentences[rng.choice(outside)]
        return " ".join(sentences)
    return text


def litm_groups(path: str | Path, rng: random.Random) -> list[ConflictGroup]:
    records = []
    for i, rec in enumerate(iter_jsonl(path)):
        _require_keys(path, i, rec, ("question", "answers", "ctxs"), "LitM NQ-Open")
        gold = [c for c in rec["ctxs"] if c.get("isgold") or c.get("hasanswer")]
        answers = [a for a in rec["answers"] if isinstance(a, str) and a.strip()]
        if gold and answers:
            records.append((rec["question"], answers, passage_text(gold[0])))
    by_type: dict[str, list[str]] = defaultdict(list)
    for _, answers, _ in records:
        by_type[answer_type(answers[0])].append(answers[0])
    groups = []
    for question, answers, text in records:
        pool = by_type[answer_type(answers[0])]
        substitute = _pick_substitute(pool, answers, text, rng)
        swapped = swap_answer(text, answers, substitute) if substitute else None
        if swapped is None:
            continue
        neutral = records[rng.randrange(len(records))][2]
        texts = (text, neutral_edit(text, answers, rng), swapped, neutral_edit(swapped, [substitute], rng), neutral)
        clusters = (0, 0, 1, 1, NEUTRAL if neutral != text else 0)
        groups.append(ConflictGroup(question, texts, clusters))
    return groups


def _pick_substitute(pool: list[str], answers: list[str], text: str, rng: random.Random) -> str | None:
    taken = {a.casefold() for a in answers}
    for _ in range(10):
        candidate = rng.choice(pool)
        if candidate.casefold() not in taken and not _mention(candidate).search(text):
            return candidate
    return None


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
            msg = f"{path} is an RGB file; `train conflict` reads LitM NQ-Open and ConflictQA files. Use it with `bench conflict`."
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
            items.append(BenchItem(r["question"], texts, ((0, 1, 1), (0, 2, 0), (1, 3, 0)),
                                   (((0, 1, 2, 3), 1), ((0, 2), 0), ((1, 3), 0))))
    elif kind == "rgb":
        for r in read_rgb(path):
            pos, wrong = r["positive"][:per_side], r["positive_wrong"][:per_side]
            neg = r["negative"][:negatives]
            texts = tuple(pos + wrong + neg)
            ip = list(range(len(pos)))
            iw = list(range(len(pos), len(pos) + len(wrong)))
            ineg = tuple(range(len(pos) + len(wrong), len(texts)))
            pairs = [(i, j, 1) for i in ip for j in iw]
            pairs += [(a, b, 0) for side in (ip, iw) for x, a in enumerate(side) for b in side[x + 1:]]
            sets = ((tuple(ip + iw) + ineg, 1), (tuple(ip) + ineg, 0), (tuple(iw) + ineg, 0))
            items.append(BenchItem(r["query"], texts, tuple(pairs), sets))
    else:
        msg = f"{path} is a LitM file; `bench conflict` reads ConflictQA or RGB fact files."
        raise InvalidInputError(msg)
    return items
