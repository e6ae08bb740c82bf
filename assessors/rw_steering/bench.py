"""Answer accuracy against contamination for plain RAG, the answer-only fine-tune and RW-Steering,
with a Rescorla-Wagner fit of each curve.

`ragarbiter bench rw --data POOL.json [--generator NAME_OR_DIR] [--adapter DIR] [--answer-only DIR]`
measures the three systems on the same held-out mixtures (questions no `train rw` run trains
on), at every proportion of inappropriate sentences (`--proportions`, default 0 to 0.95):

- **plain**: the generator alone (default SmolLM2-135M-Instruct);
- **answer_only**: the generator with the answer-only fine-tune (`train rw --target answer`;
  default: the shipped one in `shipped_answer_only/`);
- **rw_steering**: the generator with the RW-Steering adapter (default: `shipped/`).

Accuracy on pool data is `correctness.is_correct`: token overlap with the reference *and* the same
polarity, so "X does not support Y" never passes for "X supports Y". The adapters' `rw.json`
say which proportions and pools they trained on; the output marks each measured proportion and
the measured pool as seen or held out. The adapted RW model (`model.fit_rw`) is fitted to each
curve. Sentences carry no source tags unless `--source-tags` asks for them.

`--model DIR` keeps the closed-world check on a testbed model: one curve (the plain model, or
the `--adapter`), exact match against the world's true value and leakage of the planted one.
"""

from __future__ import annotations

import argparse
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from ragarbiter.errors import ConfigError, InvalidInputError, ModelNotFoundError
from ragarbiter.synthetic.conditions import PROPORTIONS

from ..metrics import cleanliness, token_f1
from .config import SENTENCES, SHIPPED, SHIPPED_ANSWER_ONLY
from .correctness import is_correct
from .data import Mixture, add_source_tag_arguments, build_mixtures, check_proportions, from_context_set
from .model import fit_rw

logger = logging.getLogger(__name__)

QUESTIONS = 60  # questions (or pool records) per proportion
SYSTEMS = ("plain", "answer_only", "rw_steering")


def testbed_mixtures(
    lm,
    questions: int,
    proportions: Sequence[float] = PROPORTIONS,
    n: int = SENTENCES,
    seed: int = 0,
    source_tags: bool = False,
) -> tuple[list[Mixture], list[str]]:
    """Mixtures from the testbed's own `mixture` condition (unknown entities), with each one's planted value."""
    from ragarbiter.synthetic import ContextBuilder

    from ..qa import held_out

    builder = ContextBuilder(lm.world, mixture_sentences=n)
    rng = random.Random(seed)
    items = [i for i in lm.world.qa_items(known=False) if held_out(i.question)]  # never in any fine-tuning
    items = random.Random(seed + 1).sample(items, min(questions, len(items)))
    sets = [builder.mixture(i, p, rng) for p in proportions for i in items]
    return [from_context_set(s, source_tags=source_tags) for s in sets], [s.wrong or "" for s in sets]


def file_eval_mixtures(
    path: str,
    questions: int,
    n: int,
    seed: int,
    source_tags: bool = False,
    proportions: Sequence[float] | None = None,
) -> list[Mixture]:
    """Held-out mixtures from a file: a pool at `proportions` (default 0 to 0.95), or a mixtures
    JSONL as written (only those at `proportions`, when given)."""
    from ..qa import held_out
    from .data import first_questions, is_mixture_file, read_mixtures, read_pool, untagged

    if is_mixture_file(path):
        mixtures = [m for m in read_mixtures(path) if held_out(m.question)]
        if proportions is not None:
            mixtures = [m for m in mixtures if any(abs(m.proportion - p) < 1e-9 for p in proportions)]
        return first_questions(mixtures if source_tags else untagged(mixtures), questions)
    records = [r for r in read_pool(path) if held_out(str(r.get("Question", "")))][:questions]
    return build_mixtures(records, proportions or PROPORTIONS, n=n, source_tags=source_tags, seed=seed)


def behaviour_curve(
    mixtures: Sequence[Mixture],
    answers: Sequence[str],
    planted: Sequence[str] | None = None,
    exact: Callable[[str, str], bool] | None = None,
) -> dict:
    """Per proportion: quality (exact match, else polarity-aware correctness), token F1 and leakage."""
    quality: dict[float, list[float]] = defaultdict(list)
    overlap: dict[float, list[float]] = defaultdict(list)
    leakage: dict[float, list[float]] = defaultdict(list)
    for i, (m, answer) in enumerate(zip(mixtures, answers)):
        correct = exact(answer, m.answer) if exact is not None else is_correct(answer, m.answer, question=m.question)
        quality[m.proportion].append(float(correct))
        overlap[m.proportion].append(token_f1(answer, m.answer))
        if planted is not None and exact is not None:
            leakage[m.proportion].append(float(bool(planted[i]) and exact(answer, planted[i])))
        else:
            bad = [s for s, b in zip(m.sentences, m.inappropriate) if b]
            leakage[m.proportion].append(1.0 - cleanliness(answer, bad, question=m.question))
    props = sorted(quality)

    def mean(values: dict[float, list[float]]) -> list[float]:
        return [round(sum(values[p]) / len(values[p]), 4) for p in props]

    return {
        "proportions": props,
        "quality": mean(quality),
        "token_f1": mean(overlap),
        "leakage": mean(leakage),
        "n_per_point": len(quality[props[0]]) if props else 0,
    }


def plain_answers(lm, mixtures: Sequence[Mixture]) -> list[str]:
    """The generator's own answers: the testbed layout for testbed models, else its chat template when it has one."""
    from ragarbiter.lm import render_prompt

    if lm.world is None and lm.chat:
        return lm.answers([(m.question, list(m.sentences)) for m in mixtures], max_new_tokens=48)
    prompts = [render_prompt(m.question, list(m.sentences), list(m.sources) or None) for m in mixtures]
    return lm.generate(prompts, max_new_tokens=10 if lm.world is not None else 48)


def adapter_answers(lm, adapter: str, mixtures: Sequence[Mixture]) -> tuple[list[str], dict]:
    """Answers of a `train rw` adapter: RW-Steering's parsed answer, or the answer-only baseline's."""
    from ragarbiter.types import Context, Passage

    from .data import answer_text
    from .model import with_adapter
    from .stage import RWSteering

    meta = adapter_meta(adapter)
    stage = RWSteering(lm=with_adapter(lm, adapter), max_new_tokens=40 + 6 * max(len(m.sentences) for m in mixtures))
    answers, malformed = [], 0
    for m in mixtures:
        context = Context.for_query(
            m.question,
            [Passage(t, source=src or None) for t, src in zip(m.sentences, m.sources or [""] * len(m.sentences))],
        )
        if meta.get("target") == "rw":
            out = stage(context)
            malformed += "rw_malformed" in out.flags
            answers.append(str(out.flags.get("answer", "")).split("\n")[0].strip())
        else:
            answers.append(answer_text(stage.generate(context)))
    return answers, {
        "adapter": str(adapter),
        "target": meta.get("target"),
        "stage": meta.get("stage"),
        "malformed_rate": round(malformed / max(1, len(mixtures)), 4),
    }


def adapter_meta(adapter: str | Path) -> dict:
    """The adapter's `rw.json`; a clear error when the folder holds no `train rw` adapter."""
    import json

    path = Path(adapter) / "rw.json"
    if not path.is_file():
        raise ModelNotFoundError(
            f"{adapter} holds no rw.json; pass a folder written by `ragarbiter train rw --out DIR`."
        )
    return json.loads(path.read_text(encoding="utf-8"))


def training_coverage(adapter: str | Path, proportions: Sequence[float], data: str | None) -> dict:
    """Which of the measured proportions, and whether the measured pool, the adapter saw in training."""
    meta = adapter_meta(adapter)
    seen = meta.get("seen") or {"proportions": meta.get("proportions"), "pools": meta.get("pools")}
    trained = seen.get("proportions")
    pools = [str(p) for p in seen.get("pools") or []]
    out: dict = {"trained_proportions": trained, "trained_pools": pools}
    if trained is None:  # an adapter from before proportions were recorded: it trained on the default set
        out["note"] = "rw.json records no proportions; the adapter predates --proportions (it saw 0 to 0.95)"
        trained = list(PROPORTIONS)
    out["proportions_seen"] = [p for p in proportions if any(abs(p - t) < 1e-9 for t in trained)]
    out["proportions_held_out"] = [p for p in proportions if p not in out["proportions_seen"]]
    if data:
        same = [p for p in pools if Path(p).name == Path(data).name]
        out["eval_pool"] = str(data)
        out["eval_pool_seen_in_training"] = bool(same)
    return out


def _fit(curve: dict, n: int) -> dict:
    if len(curve["proportions"]) >= 3:
        return fit_rw(curve["proportions"], curve["quality"], n)
    return {  # the curve is still worth reporting
        "skipped": f"the RW fit needs at least 3 proportions; this data has {curve['proportions']}. Build "
        f"mixtures with more, e.g. `ragarbiter mixtures --proportions 0 0.1 0.3 0.5 0.7 0.9`."
    }


def eval_mixtures(
    lm, data, questions, n, seed, source_tags, proportions
) -> tuple[list[Mixture], list | None, Callable | None]:
    """(mixtures, planted values, exact matcher): from `data`, else from the testbed model's world."""
    from ..metrics import exact_match

    if data:
        mixtures = file_eval_mixtures(data, questions, n, seed, source_tags, proportions)
        if not mixtures:
            raise InvalidInputError(f"{data} has no held-out questions to measure (one question in five is held out).")
        return mixtures, None, None
    if lm.world is None:
        raise ConfigError(f"{lm.path} is not a testbed model; pass --data POOL.json (or a mixtures JSONL).")
    mixtures, planted = testbed_mixtures(lm, questions, proportions or PROPORTIONS, n, seed, source_tags)
    return mixtures, planted, exact_match


def run_rw_bench(
    lm,
    *,
    questions: int = QUESTIONS,
    n: int = SENTENCES,
    seed: int = 0,
    data: str | None = None,
    adapter: str | None = None,
    source_tags: bool = False,
    proportions: Sequence[float] | None = None,
) -> dict:
    """One curve (the closed-world check): the model's, or with `adapter` a `train rw` adapter's,
    on held-out questions (the testbed's mixtures, or `data`), with its RW fit."""
    mixtures, planted, exact = eval_mixtures(lm, data, questions, n, seed, source_tags, proportions)
    extra: dict = {}
    if adapter:
        answers, extra = adapter_answers(lm, adapter, mixtures)
        extra["training"] = training_coverage(adapter, sorted({m.proportion for m in mixtures}), data)
    else:
        answers = plain_answers(lm, mixtures)
    curve = behaviour_curve(mixtures, answers, planted, exact)
    return {
        "curve": curve,
        "accuracy": {str(p): q for p, q in zip(curve["proportions"], curve["quality"])},
        "rw_fit": _fit(curve, len(mixtures[0].sentences)),
        "sentences": len(mixtures[0].sentences),
        "questions": questions,
        "seed": seed,
        "source_tags": source_tags,
        "source": data or "testbed mixture condition (held-out questions)",
        **extra,
    }


def resolve_adapter(given: str | None, shipped: Path, target: str) -> Path:
    """`given`, or the shipped adapter; a clear error naming `ragarbiter train rw` when neither exists."""
    folder = Path(given) if given else shipped
    if (folder / "rw.json").is_file():
        return folder
    flag = "--adapter" if target == "rw" else "--answer-only"
    extra = "" if target == "rw" else " --target answer"
    where = f"{folder} holds no `train rw` adapter" if given else f"no shipped adapter at {shipped}"
    msg = (
        f"{where}. Train one with `ragarbiter train rw --base-model smollm2-135m-instruct --data POOL.json "
        f"--stage 1{extra} --out DIR` and pass {flag} DIR."
    )
    raise ModelNotFoundError(msg)


def compare_rw(
    generator: str | None,
    *,
    data: str | None,
    adapter: str | None = None,
    answer_only: str | None = None,
    proportions: Sequence[float] | None = None,
    questions: int = QUESTIONS,
    n: int = SENTENCES,
    seed: int = 0,
    source_tags: bool = False,
) -> dict:
    """Plain RAG, the answer-only fine-tune and RW-Steering on the same held-out mixtures."""
    from ragarbiter.lm.generator import resolve_generator

    from ..generators import load_generator

    adapters = {
        "answer_only": resolve_adapter(answer_only, SHIPPED_ANSWER_ONLY, "answer"),
        "rw_steering": resolve_adapter(adapter, SHIPPED, "rw"),
    }
    folder = resolve_generator(generator)
    for name, path in adapters.items():
        base = str(adapter_meta(path).get("base_model", ""))
        if Path(base).name != Path(folder).name and base != str(generator):
            logger.warning("bench rw: the %s adapter %s was trained on %s, not on %s", name, path, base, folder)
    lm = load_generator(folder)
    mixtures, planted, exact = eval_mixtures(lm, data, questions, n, seed, source_tags, proportions)
    measured = sorted({m.proportion for m in mixtures})
    curves = {"plain": behaviour_curve(mixtures, plain_answers(lm, mixtures), planted, exact)}
    details: dict = {}
    for name, path in adapters.items():
        answers, info = adapter_answers(
            load_generator(folder), str(path), mixtures
        )  # a fresh copy: peft patches in place
        curves[name] = behaviour_curve(mixtures, answers, planted, exact)
        details[name] = {**info, "training": training_coverage(path, measured, data)}
    sentences = len(mixtures[0].sentences)
    result: dict = {
        name: {str(p): q for p, q in zip(curve["proportions"], curve["quality"])} for name, curve in curves.items()
    }
    return {
        **result,
        "rw_fit": {name: _fit(curve, sentences) for name, curve in curves.items()},
        "n": curves["plain"]["n_per_point"],
        "curves": curves,
        "adapters": details,
        "generator": str(folder),
        "metric": "exact match (testbed)" if exact else "polarity-aware correctness (correctness.is_correct)",
        "sentences": sentences,
        "seed": seed,
        "source_tags": source_tags,
        "source": data or "testbed mixture condition (held-out questions)",
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--generator",
        metavar="NAME_OR_DIR",
        help="the generator the adapters were trained for (default: smollm2-135m-instruct)",
    )
    which.add_argument(
        "--model",
        metavar="DIR",
        help="closed-world check: one curve of a testbed model (or of --adapter on it), exact match",
    )
    p.add_argument(
        "--data",
        metavar="FILE",
        help="a Poisoned Context Testbed pool (.json) or a mixtures JSONL (`ragarbiter mixtures`); "
        "with --model, default: the testbed's own mixtures",
    )
    p.add_argument("--adapter", metavar="DIR", help=f"the RW-Steering adapter (default: {SHIPPED})")
    p.add_argument(
        "--answer-only", metavar="DIR", help=f"the answer-only fine-tune adapter (default: {SHIPPED_ANSWER_ONLY})"
    )
    p.add_argument(
        "--proportions",
        type=float,
        nargs="+",
        default=None,
        metavar="P",
        help="shares of inappropriate sentences to measure, each in [0, 1) (default: 0 to 0.95; "
        "a mixtures JSONL: as written)",
    )
    add_source_tag_arguments(p)
    p.add_argument(
        "--questions",
        type=int,
        default=QUESTIONS,
        help=f"questions (or pool records) per proportion (default: {QUESTIONS})",
    )
    p.add_argument("--sentences", type=int, default=SENTENCES, help=f"sentences per mixture (default: {SENTENCES})")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> dict:
    proportions = check_proportions(args.proportions) if args.proportions is not None else None
    common = {
        "questions": args.questions,
        "n": args.sentences,
        "seed": args.seed,
        "data": args.data,
        "source_tags": args.source_tags,
        "proportions": proportions,
    }
    if args.model:
        from ..generators import load_generator

        if args.answer_only:
            raise ConfigError("--answer-only goes with --generator; with --model pass the adapter as --adapter DIR.")
        result = run_rw_bench(load_generator(args.model), adapter=args.adapter, **common)
        result["model"] = str(args.model)
        return result
    if not args.data:
        raise ConfigError(
            "bench rw --generator needs --data POOL.json (or a mixtures JSONL from `ragarbiter mixtures`)."
        )
    return compare_rw(args.generator, adapter=args.adapter, answer_only=args.answer_only, **common)


def plot(result: dict, folder: str | Path) -> list[Path]:
    """rw_fit.png (one curve, --model) or rw_curves.png (the three systems), with the RW fits."""
    from .plots import plot_curves, plot_rw

    return [plot_rw(result, folder)] if "curve" in result else [plot_curves(result, folder)]


def print_result(result: dict) -> None:
    if "curve" in result:
        fits = {"measured": result["rw_fit"]}
        print(f"quality: {result['curve']['quality']}\nleakage: {result['curve']['leakage']}")
    else:
        fits = result["rw_fit"]
        for name in SYSTEMS:
            print(f"{name}: {result[name]}")
    for name, fit in fits.items():
        if "skipped" in fit:
            print(f"RW fit ({name}) skipped: {fit['skipped']}")
        else:
            print(
                f"RW fit ({name}): alpha_A {fit['alpha_appropriate']}, alpha_I {fit['alpha_inappropriate']}, "
                f"q0 {fit['q0']}, rare-signal gain {fit['rare_signal_gain']}, RMSE {fit['rmse']}"
            )
