"""The evaluation harness: closed-book and RAG accuracy by condition, with and without stages.

Accuracy is exact match of the generated answer (up to the end of the line) against the
true value. Clean, conflict, poisoned, mixture and position sets are built for *unknown*
entities (the context is the model's only source); counterfactual sets for *known* ones
(context-memory conflict). A stage is run through its public call, `stage(Context)`, on
each set before the prompt is rendered from the passages it returns.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ragarbiter.assessors.care.bench import care_answerer
from ragarbiter.assessors.metrics import exact_match
from ragarbiter.errors import ConfigError
from ragarbiter.lm.prompts import render_prompt
from ragarbiter.synthetic.conditions import PROPORTIONS, ContextBuilder, ContextSet
from ragarbiter.synthetic.world import QAItem, World

logger = logging.getLogger(__name__)

# Every stage the harness knows, in pipeline order, with the registry name it is built from.
# Judgement labels that describe a passage without flagging it (attention sorting scores every passage).
NOT_FLAGS = ("reliable", "attention")
STAGES = ("lost_in_the_middle", "attention_sort", "conflict", "poison", "inappropriate", "care", "rw_steering")


def closed_book_accuracy(lm, world: World, limit: int | None = 400, seed: int = 0) -> dict[str, float]:
    """Accuracy without context on known and on unknown entities (up to `limit` questions each)."""
    out = {}
    for key, known in (("known", True), ("unknown", False)):
        items = world.qa_items(known=known)
        if limit and len(items) > limit:
            items = random.Random(seed).sample(items, limit)
        answers = lm.generate([render_prompt(i.question) for i in items])
        out[key] = round(sum(exact_match(a, i.answer) for a, i in zip(answers, items)) / max(1, len(items)), 4)
    return out


Transform = Callable[[ContextSet], tuple[list[str], list[str], dict]]
Answerer = Callable[[list[ContextSet]], list[str]]


@dataclass
class HarnessConfig:
    questions: int = 120  # per condition (and per level of mixture / position)
    k: int = 5
    position_k: int = 10
    n_poison: int = 3
    mixture_sentences: int = 20
    proportions: tuple[float, ...] = PROPORTIONS
    seed: int = 0

    def __post_init__(self) -> None:
        if self.questions < 1:
            msg = f"HarnessConfig.questions must be >= 1, got {self.questions!r}."
            raise ConfigError(msg)


class Harness:
    """Builds every condition's context sets once (deterministic in the seed) and scores a model on them."""

    def __init__(self, lm, config: HarnessConfig | None = None) -> None:
        self.lm = lm
        self.config = config or HarnessConfig()
        cfg = self.config
        self.builder = ContextBuilder(
            lm.world, k=cfg.k, position_k=cfg.position_k, n_poison=cfg.n_poison, mixture_sentences=cfg.mixture_sentences
        )
        self.sets = self.build_sets()

    def _items(self, known: bool, salt: int) -> list[QAItem]:
        items = self.lm.world.qa_items(known=known)
        rng = random.Random(self.config.seed * 7_919 + salt)
        return (
            [items[rng.randrange(len(items))] for _ in range(self.config.questions)]
            if len(items) < self.config.questions
            else rng.sample(items, self.config.questions)
        )

    def build_sets(self) -> dict[str, list[ContextSet]]:
        cfg, b = self.config, self.builder
        rng = random.Random(cfg.seed)
        unknown, known = self._items(False, 1), self._items(True, 2)
        sets = {
            "clean": [b.clean(i, rng) for i in unknown],
            "counterfactual": [b.counterfactual(i, rng) for i in known],
            "conflict": [b.conflict(i, rng) for i in unknown],
            "poisoned": [b.poisoned(i, rng) for i in unknown],
        }
        sets["mixture"] = [b.mixture(i, p, rng) for p in cfg.proportions for i in unknown]
        sets["position"] = [b.position(i, pos, rng) for pos in range(cfg.position_k) for i in unknown]
        return sets

    def evaluate(self, transform: Transform | None = None, answerer: Answerer | None = None) -> dict:
        """Accuracy per condition (and per level), plus how often the answer was the planted wrong value.

        `answerer(sets)` replaces the model's reading of the rendered prompt (CARE answers from a
        soft prompt instead of the passages).
        """
        prompts, keys, extras = [], [], []
        for condition, sets in self.sets.items():
            for s in sets:
                texts, sources, extra = transform(s) if transform else (list(s.passages), list(s.sources), {})
                prompts.append(render_prompt(s.item.question, texts, sources))
                keys.append((condition, s))
                extras.append(extra)
        answers = answerer([s for _, s in keys]) if answerer else self.lm.generate(prompts)
        tally: dict = {}
        for (condition, s), answer, extra in zip(keys, answers, extras):
            level = s.level if condition in ("mixture", "position") else None
            row = tally.setdefault((condition, level), {"n": 0, "correct": 0, "wrong": 0, "flagged": 0})
            row["n"] += 1
            row["correct"] += exact_match(answer, s.item.answer)
            row["wrong"] += bool(s.wrong) and exact_match(answer, s.wrong)
            row["flagged"] += bool(extra.get("flagged"))
        return summarize(tally, transform is not None)


def summarize(tally: dict, with_flags: bool) -> dict:
    def rate(row, key):
        return round(row[key] / max(1, row["n"]), 4)

    out: dict = {"mixture": {}, "position": {}}
    detail: dict = {"wrong_answer_rate": {"mixture": {}}, "n": {}}
    if with_flags:
        detail["flag_rate"] = {"mixture": {}, "position": {}}
    for (condition, level), row in sorted(tally.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        if level is None:
            out[condition] = rate(row, "correct")
            detail["n"][condition] = row["n"]
            if condition != "clean":
                detail["wrong_answer_rate"][condition] = rate(row, "wrong")
            if with_flags:
                detail["flag_rate"][condition] = rate(row, "flagged")
        else:
            key = str(level)
            out[condition][key] = rate(row, "correct")
            if condition == "mixture":
                detail["wrong_answer_rate"]["mixture"][key] = rate(row, "wrong")
            if with_flags:
                detail["flag_rate"][condition][key] = rate(row, "flagged")
    return {**out, "detail": detail}


def stage_transform(stage) -> Transform:
    """Run a ragarbiter stage on a set: passages in, the stage's passages (text, source) out."""
    from ragarbiter.types import Context, Passage

    def run(s: ContextSet) -> tuple[list[str], list[str], dict]:
        passages = tuple(
            Passage(text, source=src or None, metadata={"label": label})
            for text, src, label in zip(s.passages, s.sources, s.labels)
        )
        out = stage(Context(query=s.item.question, passages=passages))
        flagged = (
            bool(out.flags.get("conflict"))
            or bool(out.dropped)
            or any(j.label not in NOT_FLAGS for j in out.judgements)
        )
        return [p.text for p in out.passages], [p.source or "" for p in out.passages], {"flagged": flagged}

    return run


def care_folder(lm) -> Path:
    """Where the harness looks for the testbed model's CARE assessor: `<model>/care`."""
    return Path(lm.path) / "care"


def generator_options(lm) -> dict[str, dict]:
    """Stages that run a causal LM get the testbed model, its tokenizer and the exact prompt layout."""
    from ragarbiter.lm.prompts import prompt_template

    return {"attention_sort": {"model": lm.model, "tokenizer": lm.tokenizer, "template": prompt_template()}}


def build_stages(names: Sequence[str], lm=None) -> dict[str, object | str]:
    """Each name -> a built stage, or why it is absent (a stage this version does not have is never faked)."""
    from ragarbiter.registry import build_stage, stage_factory

    options = generator_options(lm) if lm is not None else {}
    out: dict[str, object | str] = {}
    for name in names:
        try:
            stage_factory(name)
        except ConfigError:
            out[name] = "absent (not built in this version)"
            continue
        if name in MODEL_STAGES:
            out[name] = MODEL_STAGES[name][0](lm)
            continue
        out[name] = build_stage(name, **options.get(name, {}))
    return out


def _care_stage(lm):
    """The CARE assessor trained for this model, or why there is none."""
    folder = care_folder(lm) if lm is not None else None
    if folder is None or not (folder / "care.json").is_file():
        return (
            f"absent (no CARE assessor for this model: train one with `ragarbiter train care --base-model "
            f"{getattr(lm, 'path', 'DIR')} --testbed --stage pretrain|finetune --out {folder}`)"
        )
    from ragarbiter.assessors.care import CareAssessor, CareGenerator, CareModel
    from ragarbiter.assessors.care.bench import MAX_NEW_TOKENS

    model = CareModel.load(folder, lm.model, lm.tokenizer)
    return CareAssessor(generator=CareGenerator(model, max_new_tokens=MAX_NEW_TOKENS))


def _rw_stage(lm):
    """RW-Steering with the adapter trained for this model (`<model>/rw`), or why there is none.

    The adapter goes onto a second copy of the model, so the other stages keep the plain one."""
    folder = Path(lm.path) / "rw" if lm is not None else None
    if folder is None or not (folder / "rw.json").is_file():
        return (
            f"absent (no RW-Steering adapter for this model: train one with `ragarbiter train rw --base-model "
            f"{getattr(lm, 'path', 'DIR')} --stage 1|2 --out {folder}`)"
        )
    from ragarbiter.assessors.rw_steering.stage import RWSteering

    return RWSteering(adapter=str(folder), base_model=str(lm.path))


def rw_answerer(stage) -> Answerer:
    """RW-Steering answers every set itself: its parsed answer, or its raw output when malformed."""
    from ragarbiter.types import Context, Passage

    def answer(sets: list[ContextSet]) -> list[str]:
        out = []
        for s in sets:
            passages = tuple(Passage(t, source=src or None) for t, src in zip(s.passages, s.sources))
            context = stage(Context(query=s.item.question, passages=passages))
            out.append(str(context.flags.get("answer", "")).split("\n")[0].strip())
        return out

    return answer


# Stages tied to an artefact trained for the testbed model: how each is built, and how it answers.
MODEL_STAGES: dict[str, tuple[Callable, Callable[[object], Answerer]]] = {
    "care": (_care_stage, care_answerer),
    "rw_steering": (_rw_stage, rw_answerer),
}


def run_testbed(lm, config: HarnessConfig | None = None, stages: Sequence[str] = STAGES, progress: bool = True) -> dict:
    """The full benchmark JSON: closed book, RAG by condition, and each stage's results."""
    started = time.perf_counter()
    harness = Harness(lm, config)
    result = {"closed_book": closed_book_accuracy(lm, lm.world), "rag": harness.evaluate(), "stages": {}}
    for name, stage in build_stages(stages, lm).items():
        if isinstance(stage, str):
            result["stages"][name] = {"status": stage}
            continue
        t0 = time.perf_counter()
        logger.info("testbed: running stage %s", name)
        if name in MODEL_STAGES:  # these answer every set themselves
            scores = harness.evaluate(answerer=MODEL_STAGES[name][1](stage))
        else:
            scores = harness.evaluate(stage_transform(stage))
        result["stages"][name] = {**scores, "status": "measured", "seconds": round(time.perf_counter() - t0, 1)}
    result["seed"] = harness.config.seed
    result["model"] = str(lm.path)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result
