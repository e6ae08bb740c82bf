"""RW-Steering's data: mixed-context prompts, the stage-1 target format and its parser.

**Mixtures**: appropriate and inappropriate sentences at a controlled proportion. Sources:

- **Poisoned Context Testbed pools** (`Input`, `Question`, `Generated Information[]` (appropriate),
  `Synonym Sentence[]` (inappropriate), `Simple Answer`). Sentences are drawn with replacement
  from the record's own lists, so any count is reachable.
- **The testbed's `mixture` condition** (`ContextSet`s), which keep their own proportion.

Each mixture has `n` numbered sentences, `round(proportion * n)` of them inappropriate (at
least one appropriate sentence always stays). The inappropriate block goes at the front, in the
middle or at the back, or the sentences are shuffled (`random`). Source tags are off by
default: the testbed tags appropriate sentences with encyclopedia-like sources and inappropriate
ones with forum-like sources, which gives the label away, so they are opt-in
(`source_tags=True`, `--source-tags`) for experiments about sources. Everything is a pure
function of the seed.

**Targets**: stage 1 restructures what the model writes: first which numbered sentences are
reliable, then an answer drawn only from them::

    Reliable: 1, 3, 4
    Answer: Danielle Darrieux's mother tongue was French.

`parse_output` reads that back. Output that does not follow the format never raises: it comes
back with `ok=False` and the reason, so the stage can fall back safely and flag it. `rw_prompt`
is the prompt both the training examples and the stage use.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ragarbiter.errors import ConfigError, InvalidInputError
from ragarbiter.lm.prompts import RELIABLE_SOURCES, UNRELIABLE_SOURCES, render_prompt

POSITIONS = ("front", "middle", "back", "random")


@dataclass(frozen=True)
class Mixture:
    """One prompt's context: numbered sentences, which are inappropriate, and the reference answer."""

    question: str
    sentences: tuple[str, ...]
    inappropriate: tuple[bool, ...]
    answer: str
    proportion: float
    position: str
    sources: tuple[str, ...] = ()

    @property
    def reliable(self) -> tuple[int, ...]:
        """1-based numbers of the appropriate sentences."""
        return tuple(i + 1 for i, bad in enumerate(self.inappropriate) if not bad)

    def numbered(self) -> str:
        """The context as the model reads it: ``[1] (source) sentence`` lines."""
        lines = []
        for i, text in enumerate(self.sentences):
            tag = f"({self.sources[i]}) " if self.sources else ""
            lines.append(f"[{i + 1}] {tag}{text}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "sentences": list(self.sentences),
            "inappropriate": list(self.inappropriate),
            "sources": list(self.sources),
            "reliable": list(self.reliable),
        }


def count_inappropriate(n: int, proportion: float) -> int:
    if not 0.0 <= proportion < 1.0:
        raise ConfigError(f"proportion={proportion!r} must lie in [0, 1): at least one appropriate sentence stays.")
    if n < 2:
        raise ConfigError(f"a mixture needs at least 2 sentences, got n={n}.")
    return min(n - 1, round(proportion * n))


def add_source_tag_arguments(p) -> None:
    """`--source-tags` (opt-in: the tags give the label away) and the former `--no-source-tags`, now a no-op."""
    import argparse

    p.add_argument(
        "--source-tags",
        action="store_true",
        help="tag each sentence with a (source); off by default, because the tags give the label away",
    )
    p.add_argument("--no-source-tags", action="store_true", help=argparse.SUPPRESS)


def check_proportions(proportions: Sequence[float], option: str = "--proportions") -> tuple[float, ...]:
    """The proportions, sorted and without repeats; a clear error for a value outside [0, 1)."""
    values = [float(p) for p in proportions]
    if not values:
        raise ConfigError(f"{option} is empty; pass shares of inappropriate sentences in [0, 1), e.g. 0 0.1 0.5.")
    bad = [p for p in values if not 0.0 <= p < 1.0]
    if bad:
        raise ConfigError(
            f"{option} got {bad}; each share of inappropriate sentences must lie in [0, 1) "
            f"(at least one appropriate sentence stays), e.g. 0 0.1 0.5 0.9."
        )
    return tuple(sorted(set(values)))


def arrange(good: Sequence[str], bad: Sequence[str], position: str, rng: random.Random) -> list[tuple[str, bool]]:
    """Place the inappropriate block at the front, middle or back of the appropriate ones, or shuffle all."""
    if position not in POSITIONS:
        raise ConfigError(f"position={position!r} must be one of {POSITIONS}.")
    good_rows = [(t, False) for t in good]
    bad_rows = [(t, True) for t in bad]
    if position == "front":
        return bad_rows + good_rows
    if position == "back":
        return good_rows + bad_rows
    if position == "middle":
        half = len(good_rows) // 2
        return good_rows[:half] + bad_rows + good_rows[half:]
    rows = good_rows + bad_rows
    rng.shuffle(rows)
    return rows


def from_pool_record(
    record: dict,
    proportion: float,
    *,
    n: int = 10,
    position: str = "random",
    source_tags: bool = False,
    rng: random.Random,
) -> Mixture:
    """One mixture from a Poisoned Context Testbed record."""
    try:
        question, answer = record["Question"], record["Simple Answer"]
        good_pool, bad_pool = list(record["Generated Information"]), list(record["Synonym Sentence"])
    except KeyError as exc:
        raise InvalidInputError(f"pool record lacks {exc}; expected the Poisoned Context Testbed format.") from exc
    if not good_pool or not bad_pool:
        raise InvalidInputError(f"pool record for {question!r} has no appropriate or no inappropriate sentences.")
    n_bad = count_inappropriate(n, proportion)
    good = [rng.choice(good_pool) for _ in range(n - n_bad)]
    bad = [rng.choice(bad_pool) for _ in range(n_bad)]
    rows = arrange(good, bad, position, rng)
    tags = [UNRELIABLE_SOURCES if bad_row else RELIABLE_SOURCES for _, bad_row in rows]
    sources = tuple(rng.choice(pool) for pool in tags) if source_tags else ()
    return Mixture(
        question, tuple(t for t, _ in rows), tuple(b for _, b in rows), answer, proportion, position, sources
    )


def from_context_set(context_set, *, source_tags: bool = False) -> Mixture:
    """A testbed `mixture` ContextSet as a Mixture (its proportion and order are kept)."""
    bad = tuple(not label.startswith("appropriate") for label in context_set.labels)
    return Mixture(
        context_set.item.question,
        tuple(context_set.passages),
        bad,
        context_set.item.answer,
        float(context_set.level or 0.0),
        "random",
        tuple(context_set.sources) if source_tags else (),
    )


def reposition(mixture: Mixture, position: str, rng: random.Random) -> Mixture:
    """The same sentences with the inappropriate block moved to `position` (sources move with their sentence)."""
    sources = mixture.sources or ("",) * len(mixture.sentences)
    rows = list(zip(mixture.sentences, sources))
    good = [r for r, bad in zip(rows, mixture.inappropriate) if not bad]
    bad = [r for r, b in zip(rows, mixture.inappropriate) if b]
    arranged = arrange(good, bad, position, rng)
    return Mixture(
        mixture.question,
        tuple(r[0] for r, _ in arranged),
        tuple(b for _, b in arranged),
        mixture.answer,
        mixture.proportion,
        position,
        tuple(r[1] for r, _ in arranged) if mixture.sources else (),
    )


def world_mixtures(
    world,
    proportions: Sequence[float],
    *,
    positions: Sequence[str] = ("random",),
    n: int = 10,
    questions: int | None = None,
    source_tags: bool = False,
    seed: int = 0,
) -> list[Mixture]:
    """Mixtures from a testbed world's `mixture` condition (unknown entities), at every proportion and position."""
    from ragarbiter.synthetic import ContextBuilder

    rng = random.Random(seed)
    builder = ContextBuilder(world, mixture_sentences=n)
    items = world.qa_items(known=False)[:questions] if questions else world.qa_items(known=False)
    return [
        reposition(from_context_set(builder.mixture(item, p, rng), source_tags=source_tags), pos, rng)
        for item in items
        for p in proportions
        for pos in positions
    ]


def build_mixtures(
    records: Sequence[dict],
    proportions: Sequence[float],
    *,
    positions: Sequence[str] = ("random",),
    n: int = 10,
    source_tags: bool = False,
    seed: int = 0,
) -> list[Mixture]:
    """Every record at every proportion and position (deterministic in `seed`)."""
    rng = random.Random(seed)
    return [
        from_pool_record(r, p, n=n, position=pos, source_tags=source_tags, rng=rng)
        for r in records
        for p in proportions
        for pos in positions
    ]


def read_pool(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist; pass a Poisoned Context Testbed pool (.json).")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path} is not valid JSON ({exc.msg}); expected a list of pool records.") from exc
    if not isinstance(data, list):
        raise InvalidInputError(f"{path} holds a {type(data).__name__}; expected a list of pool records.")
    return data


_MIXTURE_FIELDS = ("question", "sentences", "inappropriate", "answer")


def mixture_from_dict(row: dict, where: str = "") -> Mixture:
    """A Mixture from one JSONL row written by `write_jsonl`; a clear error names what is missing."""
    missing = [k for k in _MIXTURE_FIELDS if k not in row]
    if missing:
        raise InvalidInputError(f"{where}mixture row lacks {missing}; write mixtures with `ragarbiter mixtures`.")
    sentences, bad = list(row["sentences"]), list(row["inappropriate"])
    if not all(isinstance(b, bool) for b in bad):
        raise InvalidInputError(f"{where}'inappropriate' must hold true/false values, got {bad!r}.")
    if len(sentences) != len(bad) or len(sentences) < 2:
        raise InvalidInputError(
            f"{where}mixture has {len(sentences)} sentences and {len(bad)} labels; "
            f"they must match, with at least 2 sentences."
        )
    if all(bad):
        raise InvalidInputError(
            f"{where}every sentence is inappropriate; a mixture keeps at least one appropriate sentence."
        )
    sources = tuple(row.get("sources") or ())
    if sources and len(sources) != len(sentences):
        raise InvalidInputError(f"{where}mixture has {len(sources)} sources for {len(sentences)} sentences.")
    proportion = float(row.get("proportion", sum(bad) / len(bad)))
    return Mixture(
        str(row["question"]),
        tuple(map(str, sentences)),
        tuple(bad),
        str(row["answer"]),
        proportion,
        str(row.get("position", "random")),
        sources,
    )


def read_mixtures(path: str | Path) -> list[Mixture]:
    """Mixtures from a JSONL file written by `write_jsonl` (`ragarbiter mixtures`)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist; write mixtures with `ragarbiter mixtures --out {path}`.")
    out = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}:{number} is not valid JSON ({exc.msg}).") from exc
            out.append(mixture_from_dict(row, f"{path}:{number}: "))
    if not out:
        raise InvalidInputError(f"{path} holds no mixtures.")
    return out


def first_questions(mixtures: Sequence[Mixture], k: int | None) -> list[Mixture]:
    """The mixtures of the first `k` distinct questions, in their order (all of them when k is None)."""
    if not k:
        return list(mixtures)
    chosen = set(list(dict.fromkeys(m.question for m in mixtures))[:k])
    return [m for m in mixtures if m.question in chosen]


def untagged(mixtures: Iterable[Mixture]) -> list[Mixture]:
    """The same mixtures without their source tags."""
    return [dataclasses.replace(m, sources=()) for m in mixtures]


def is_mixture_file(path: str | Path) -> bool:
    """True for a mixtures JSONL file, False for a pool (a JSON list)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist; pass a pool (.json) or a mixtures file (.jsonl).")
    with path.open(encoding="utf-8") as fh:
        head = fh.read(4096).lstrip()
    return not head.startswith("[")


def write_jsonl(mixtures: Iterable[Mixture], path: str | Path) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for m in mixtures:
            fh.write(json.dumps(m.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    return n


# -- the stage-1 target format, its parser and the prompt ---------------------------------------------
_RELIABLE = re.compile(r"^\s*reliable\s*:\s*(.*)$", re.IGNORECASE)
_ANSWER = re.compile(r"^\s*answer\s*:\s*(.*)$", re.IGNORECASE)


def stage1_target(mixture: Mixture) -> str:
    numbers = ", ".join(str(i) for i in mixture.reliable) or "none"
    return f"Reliable: {numbers}\nAnswer: {mixture.answer}"


def answer_only_target(mixture: Mixture) -> str:
    """The fine-tuned baseline's target: the answer alone."""
    return f"Answer: {mixture.answer}"


@dataclass(frozen=True)
class ParsedOutput:
    reliable: tuple[int, ...]
    answer: str
    ok: bool
    problem: str = ""


def answer_text(text: str) -> str:
    """The answer-only baseline's output: the first ``Answer:`` line's text, else the first line."""
    for line in text.splitlines():
        if m := _ANSWER.match(line):
            return m.group(1).strip()
    return text.split("\n")[0].strip()


def parse_output(text: str, n_sentences: int) -> ParsedOutput:
    """The reliable-sentence numbers and the answer; `ok=False` with the reason when malformed."""
    if not isinstance(text, str):
        return ParsedOutput((), "", False, f"output is a {type(text).__name__}, not text")
    reliable_line = answer = None
    for line in text.splitlines():
        if reliable_line is None and (m := _RELIABLE.match(line)):
            reliable_line = m.group(1).strip()
        elif answer is None and (m := _ANSWER.match(line)):
            answer = m.group(1).strip()
    if reliable_line is None:
        return ParsedOutput((), (answer or text).strip(), False, "no 'Reliable:' line")
    if reliable_line.casefold() in ("none", ""):
        numbers: list[int] = []
    else:
        parts = [p.strip() for p in re.split(r"[,\s]+", reliable_line) if p.strip()]
        if not all(p.isdigit() for p in parts):
            return ParsedOutput((), (answer or "").strip(), False, f"'Reliable:' holds non-numbers: {reliable_line!r}")
        numbers = [int(p) for p in parts]
    out_of_range = [k for k in numbers if not 1 <= k <= n_sentences]
    if out_of_range:
        return ParsedOutput(
            (), (answer or "").strip(), False, f"sentence numbers {out_of_range} are outside 1..{n_sentences}"
        )
    if answer is None:
        return ParsedOutput(tuple(sorted(set(numbers))), "", False, "no 'Answer:' line")
    return ParsedOutput(tuple(sorted(set(numbers))), answer, True)


def rw_prompt(question: str, sentences, sources=None) -> str:
    """The testbed prompt with its final ``Answer:`` left for the target to write."""
    return render_prompt(question, list(sentences), list(sources) if sources else None).removesuffix("Answer:")
