"""Training groups and benchmark pairs for the ConflictAssessor.

A `ConflictGroup` is a query with passages labelled by the answer they give: passages in
the same cluster agree, passages in different clusters conflict, and cluster -1 marks a
passage that gives no answer to this query (it conflicts with nothing).

Sources, and the recipe each gets (`RECIPE`, recorded in the adapter manifest):
- Any QA file with passages: LitM NQ-Open (`question`, `answers[]`, `ctxs[]`) or SynthWiki
  (`context`, `question`, `answer`). The NQ-Swap / RGB recipe: the passage's answer mentions are
  replaced by another question's answer of the same type, which gives a minimal-edit conflicting
  pair, in the long passage and as a short snippet (its answer sentences alone). Hard negatives
  teach what is *not* a conflict: the same passage with another slot of the answer's type
  swapped (an edit that leaves the answer alone), the passage's sentences about another
  attribute of the same entity (they answer nothing), a second view of each side, and a passage
  about something else. Questions `qa.held_out` keeps for evaluation are never trained on.
- ConflictQA (`question`, `parametric_memory`, `counter_memory`, `*_aligned_evidence`).
- Benchmarks (`bench_items`) read ConflictQA, RGB `*_fact.json` (`query`, `positive[]`,
  `positive_wrong[]`, `negative[]`), labelled pair files (`query`, `a`, `b`, `conflict`) and,
  in the RGB layout, PoisonedRAG and SynthWiki files (`swap_records`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ragarbiter.datasets import iter_jsonl, open_text, read_synthwiki
from ragarbiter.errors import InvalidInputError

from ..qa import (
    CONFLICTQA_KEYS,
    RGB_KEYS,
    answer_type,
    faq,
    held_out,
    mention,
    nq_swaps,
    read_litm_gold,
    read_poisonedrag,
    require_keys,
    sniff,
    swap_answer,
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
    spans = answer_spans(text, answers)
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


def sentences_without(text: str, answers: Iterable[str]) -> list[str]:
    """The sentences of `text` that mention none of `answers`."""
    answers = [a for a in answers if a.strip()]
    return [s.text for s in split_sentences(text) if not any(mention(a).search(s.text) for a in answers)]


def second_view(text: str, answers: Iterable[str], rng: random.Random) -> str:
    """Another passage giving the same answer: its answer sentences alone (a different text),
    or a near-identical copy with an edit elsewhere (so near-identical never means conflicting)."""
    answers = list(answers)
    short = answer_sentences(text, answers) if rng.random() < 0.5 else None
    return short or neutral_edit(text, answers, rng)


_TYPED = {
    "year": re.compile(r"(?<!\w)(?:1[0-9]{3}|20[0-9]{2})(?!\w)"),
    "date": re.compile(r"(?<!\w)(?:1[0-9]{3}|20[0-9]{2})(?!\w)"),
    "number": re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*(?![\w.,]\d)"),
    "name": re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+){0,2}\b"),
}
_NOT_NAMES = frozenset(
    "the a an in on at it he she they this that these his her its their there when after "
    "before during since from for by with as but and or of to".split()
)


def typed_mentions(text: str, kind: str) -> list[tuple[int, int]]:
    """Character spans in `text` of values of the answer type `kind` (years, numbers, capitalised
    names; a common word that opens a capitalised run, "The Kestrel Bay", is not part of the name)."""
    pattern = _TYPED.get(kind)
    if pattern is None:
        return []
    spans = []
    for m in pattern.finditer(text):
        start, words = m.start(), m.group().split(" ")
        if kind == "name":
            while words and words[0].casefold() in _NOT_NAMES:
                start += len(words.pop(0)) + 1
        if words:
            spans.append((start, m.end()))
    return spans


def answer_spans(text: str, answers: Iterable[str]) -> list[tuple[int, int]]:
    """Character spans of every mention of any of `answers` in `text`."""
    return [m.span() for a in answers if a.strip() for m in mention(a).finditer(text)]


def decoy_swap(text: str, answers: Iterable[str], kind: str, pool: list[str], rng: random.Random) -> str | None:
    """`text` with one mention of the answer's type that is *not* the answer replaced by another
    value of that type: a minimal edit that leaves the answer alone (so the two texts agree)."""
    answers = list(answers)
    spans = answer_spans(text, answers)
    decoys = [(a, b) for a, b in typed_mentions(text, kind) if not any(s < b and a < e for s, e in spans)]
    if not decoys or not pool:
        return None
    a, b = rng.choice(decoys)
    taken = {text[a:b].casefold(), *(x.casefold() for x in answers)}
    for _ in range(10):
        new = rng.choice(pool)
        if new.casefold() not in taken and not any(mention(x).search(new) for x in answers if x.strip()):
            return text[:a] + new + text[b:]
    return None


def attribute_sentence(text: str, answers: Iterable[str], kind: str, rng: random.Random) -> str | None:
    """A sentence of `text` that does not state the answer, preferring one that holds another value
    of the answer's type ("renovated in 1998" for "when did it open?"): the same entity, another
    attribute, which answers nothing."""
    rest = [r for r in sentences_without(text, answers) if len(r.split()) >= 4]
    typed = [r for r in rest if typed_mentions(r, kind)]
    pick = typed or rest
    return rng.choice(pick) if pick else None


@dataclass(frozen=True)
class QaPassage:
    """A question, its answers and a passage that states one of them (LitM gold, SynthWiki context)."""

    question: str
    answers: tuple[str, ...]
    text: str


def question_template(question: str) -> str:
    """The question with its names taken out ("What is the name of X's best friend?"): records that
    share a template ask for the same attribute, so their answers substitute for each other."""
    head, _, rest = question.strip().partition(" ")
    return head + " " + re.sub(r"\b[A-Z][\w'.-]*(?:\s+[A-Z][\w'.-]*)*", "X", rest)


def substitutes(records: list[QaPassage], by: str) -> dict[str, list[str]]:
    """Answer pools to swap from, keyed by `answer_type` ("type", NQ-Swap) or `question_template` ("template")."""
    key = _pool_key(by)
    pools: dict[str, list[str]] = {}
    for r in records:
        pools.setdefault(key(r.question, list(r.answers)), []).append(r.answers[0])
    return pools


def _pool_key(by: str):
    """(question, answers) -> the pool a record's answer belongs to (see `substitutes`)."""
    if by == "template":
        return lambda question, _answers: question_template(question)
    return lambda _question, answers: answer_type(answers[0])


def swap_groups(records: list[QaPassage], rng: random.Random, by: str = "type") -> list[ConflictGroup]:
    """The recipe of the module notes over QA passages (one group per record that has a swap); the
    substitute answer comes from another record of the same answer type or question template (`by`)."""
    by_type = substitutes(records, "type")
    groups = []
    triples = [(r.question, list(r.answers), r.text) for r in records]
    for sw in nq_swaps(triples, rng, _pool_key(by)):
        question, answers, text, substitute, swapped = sw.question, list(sw.answers), sw.text, sw.substitute, sw.swapped
        kind = answer_type(answers[0])
        neutral = records[rng.randrange(len(records))].text
        texts = [text, second_view(text, answers, rng), swapped]
        texts += [faq(question, answers[0], rng), faq(question, substitute, rng)]
        clusters = [0, 0, 1, 0, 1]
        stated: list[tuple[str, ...]] = [tuple(answers)] * 2 + [(substitute,), (answers[0],), (substitute,)]
        short, short_swapped = answer_sentences(text, answers), answer_sentences(swapped, [substitute])
        if short and short_swapped:  # the snippet style: the answer sentences alone, each side
            texts += [short, short_swapped]
            clusters += [0, 1]
            stated += [tuple(answers), (substitute,)]
        else:
            texts.append(second_view(swapped, [substitute], rng))
            clusters.append(1)
            stated.append((substitute,))
        decoy = decoy_swap(text, answers, kind, by_type.get(kind, []), rng)
        if decoy and decoy != text:  # another slot changed, the answer kept: agrees
            texts.append(decoy)
            clusters.append(0)
            stated.append(tuple(answers))
        other = attribute_sentence(text, answers, kind, rng)
        if other:  # the same entity, another attribute: answers nothing
            texts.append(other)
            clusters.append(NEUTRAL)
            stated.append(())
        if neutral != text:
            texts.append(neutral)
            clusters.append(NEUTRAL)
            stated.append(())
        groups.append(ConflictGroup(question, tuple(texts), tuple(clusters), tuple(stated)))
    return groups


def qa_passages(path: str | Path, kind: str, holdout: bool = True) -> list[QaPassage]:
    """The (question, answers, passage) records of a LitM or SynthWiki file; with `holdout`, without the
    questions (LitM) or paragraphs (SynthWiki) that `qa.held_out` keeps for evaluation."""
    if kind == "litm":
        out = [QaPassage(q, tuple(a), t) for q, a, t in read_litm_gold(path)]
        return [r for r in out if not (holdout and held_out(r.question))]
    out = [QaPassage(it.question, tuple(it.answers), it.passages[0]) for it in read_synthwiki(path) if it.answers]
    out = [r for r in out if r.answers[0].strip() and mention(r.answers[0]).search(r.text)]
    return [r for r in out if not (holdout and held_out(r.text))]


def litm_groups(path: str | Path, rng: random.Random, holdout: bool = True) -> list[ConflictGroup]:
    return swap_groups(qa_passages(path, "litm", holdout), rng)


SWAP_POOLS = {"litm": "type", "synthwiki": "template"}


RECIPE = {
    "qa": "answer swap of the same type (LitM) or question template (SynthWiki), in the long passage and "
    "as the answer-sentence snippet, each with a second view "
    "and a one-line FAQ answer) against: the same passage with another slot of the answer's type swapped "
    "(agrees), a sentence about another attribute of the same entity (answers nothing), and another "
    "record's passage (answers nothing); qa.held_out questions (SynthWiki: paragraphs) excluded",
    "conflictqa": "memory and counter-memory with their aligned evidence, the two one-line claims, "
    "another record's passage (answers nothing)",
}


def build_groups(paths: Iterable[str | Path], seed: int = 0, holdout: bool = True) -> list[ConflictGroup]:
    """Training groups from any mix of LitM NQ-Open, SynthWiki and ConflictQA files."""
    rng = random.Random(seed)
    groups: list[ConflictGroup] = []
    for path in paths:
        kind = data_kind(path)
        if kind in ("litm", "synthwiki"):
            groups += swap_groups(qa_passages(path, kind, holdout), rng, SWAP_POOLS[kind])
        elif kind == "conflictqa":
            groups += conflictqa_groups(read_conflictqa(path), rng)
        else:
            msg = (
                f"{path} is a {kind} file; `train conflict` reads LitM NQ-Open, SynthWiki (.csv) "
                "and ConflictQA files. Use it with `bench conflict`."
            )
            raise InvalidInputError(msg)
    return groups


def data_kind(path: str | Path) -> str:
    """'litm', 'conflictqa', 'rgb', 'pairs', 'synthwiki' (.csv) or 'poisonedrag' (one JSON object)."""
    name = str(path).lower()
    if name.endswith((".csv", ".csv.gz")):
        return "synthwiki"
    with open_text(path) as fh:
        head = fh.read(4096)
    if '"adv_texts"' in head and '"incorrect answer"' in head:
        return "poisonedrag"  # one JSON object keyed by target id, often pretty-printed
    first = next(iter_jsonl(path), None)
    if isinstance(first, dict) and PAIR_KEYS <= first.keys():
        return "pairs"
    return sniff(path)


# -- benchmark items ---------------------------------------------------------------------
PAIR_KEYS = frozenset({"query", "a", "b", "conflict"})


@dataclass(frozen=True)
class BenchItem:
    """Passages for one query, labelled pairs (i, j, conflict) and labelled sets (indices, conflict).
    `kinds[k]` names what pair k is (a pairs file's `kind`, "swap", "agree"), for rates by kind;
    `unanswering` lists (i, k) pairs of a passage that answers and one that states no answer
    (never a conflict), scored apart so that the pair AUROC keeps the source format's definition."""

    query: str
    texts: tuple[str, ...]
    pairs: tuple[tuple[int, int, int], ...]
    sets: tuple[tuple[tuple[int, ...], int], ...]
    kinds: tuple[str, ...] = ()
    unanswering: tuple[tuple[int, int], ...] = ()


def read_pairs(path: str | Path) -> list[dict]:
    """A labelled pair file: one JSON object per line with `query`, `a`, `b`, `conflict` (0/1), optional `kind`."""
    out = []
    for i, rec in enumerate(iter_jsonl(path)):
        require_keys(path, i, rec, sorted(PAIR_KEYS), "labelled pair")
        if rec["conflict"] not in (0, 1, True, False):
            msg = f"{path}: record {i} has conflict={rec['conflict']!r}; use 1 (the two give different answers) or 0."
            raise InvalidInputError(msg)
        out.append({**rec, "conflict": int(rec["conflict"]), "kind": str(rec.get("kind") or "unlabelled")})
    return out


def swap_records(path: str | Path, kind: str, *, seed: int = 0) -> list[dict]:
    """RGB-layout records (`query`, `positive`, `positive_wrong`, `negative`) built from a file that is not
    in that layout, by the RGB recipe (the answer swapped for another of its type):

    - PoisonedRAG: each adversarial text states the incorrect answer (`positive_wrong`); the same text with
      the correct answer in its place is `positive` (targets with yes/no answers are skipped);
    - SynthWiki: the paragraph and its answer sentences (`positive`), both with the answer swapped for
      another record's of the same type (`positive_wrong`); `negative`: a sentence of the paragraph about
      another attribute of the same person (answers nothing), and another paragraph. Every paragraph
      is used: a bench leaves out the trained ones by the adapter's manifest."""
    rng = random.Random(seed)
    out = []
    if kind == "poisonedrag":
        for t in read_poisonedrag(path):
            if {t.correct.casefold(), t.incorrect.casefold()} & {"yes", "no"}:
                continue
            wrong = [a for a in t.adv_texts if mention(t.incorrect).search(a)]
            right = [swap_answer(a, [t.incorrect], t.correct) for a in wrong]
            if wrong:
                out.append({"query": t.question, "positive": right, "positive_wrong": wrong, "negative": []})
        return out
    records = qa_passages(path, "synthwiki", holdout=False)
    pools = substitutes(records, "template")
    template = _pool_key("template")
    for r in records:
        kind_ = answer_type(r.answers[0])
        pool = [a for a in pools[template(r.question, r.answers)] if a.casefold() != r.answers[0].casefold()]
        pool = [a for a in pool if not mention(a).search(r.text)]
        if not pool:
            continue
        sub = rng.choice(pool)
        views = [r.text] + ([s] if (s := answer_sentences(r.text, r.answers)) else [])
        wrong = [swap_answer(v, r.answers, sub) for v in views]
        other = attribute_sentence(r.text, r.answers, kind_, rng)
        elsewhere = records[rng.randrange(len(records))].text
        negative = [n for n in (other, elsewhere) if n and n != r.text]
        out.append({"query": r.question, "positive": views, "positive_wrong": wrong, "negative": negative})
    return out


def bench_items(path: str | Path, per_side: int = 3, negatives: int = 2) -> list[BenchItem]:
    """ConflictQA: (memory, counter-memory) conflict; each memory with its own evidence agrees.
    RGB (and PoisonedRAG / SynthWiki through `swap_records`): (positive, positive_wrong) conflict;
    pairs within one side agree; up to `negatives` passages that state no answer join every set, and
    each forms a non-conflicting "unanswering" pair with every passage that answers.
    Labelled pair files: each line is one pair and one set."""
    kind = data_kind(path)
    items = []
    if kind == "pairs":
        for r in read_pairs(path):
            label = r["conflict"]
            items.append(BenchItem(r["query"], (r["a"], r["b"]), ((0, 1, label),), (((0, 1), label),), (r["kind"],)))
        return items
    rgb = None
    if kind == "rgb":
        rgb = read_rgb(path)
    elif kind in ("poisonedrag", "synthwiki"):
        rgb = swap_records(path, kind)
    if kind == "conflictqa":
        for r in read_conflictqa(path):
            texts = tuple(r[k] for k in CONFLICTQA_KEYS[1:])  # pm, cm, pm_ev, cm_ev
            items.append(
                BenchItem(
                    r["question"],
                    texts,
                    ((0, 1, 1), (0, 2, 0), (1, 3, 0)),
                    (((0, 1, 2, 3), 1), ((0, 2), 0), ((1, 3), 0)),
                    ("counter", "evidence", "evidence"),
                )
            )
    elif rgb is not None:
        for r in rgb:
            pos, wrong = r["positive"][:per_side], r["positive_wrong"][:per_side]
            neg = r["negative"][:negatives]
            texts = tuple(pos + wrong + neg)
            ip = list(range(len(pos)))
            iw = list(range(len(pos), len(pos) + len(wrong)))
            ineg = tuple(range(len(pos) + len(wrong), len(texts)))
            pairs = [(i, j, 1) for i in ip for j in iw]
            pairs += [(a, b, 0) for side in (ip, iw) for x, a in enumerate(side) for b in side[x + 1 :]]
            kinds = ["swap"] * (len(ip) * len(iw)) + ["agree"] * (len(pairs) - len(ip) * len(iw))
            unanswering = tuple((i, k) for i in ip + iw for k in ineg)
            sets = ((tuple(ip + iw) + ineg, 1), (tuple(ip) + ineg, 0), (tuple(iw) + ineg, 0))
            items.append(BenchItem(r["query"], texts, tuple(pairs), sets, tuple(kinds), unanswering))
    else:
        msg = (
            f"{path} is a LitM file; `bench conflict` reads ConflictQA, RGB fact, labelled pair, "
            "PoisonedRAG and SynthWiki files."
        )
        raise InvalidInputError(msg)
    return items
