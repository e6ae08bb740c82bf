"""Answer quality and leakage against contamination, with a Rescorla-Wagner fit.

Mixtures of appropriate and inappropriate sentences at proportions 0-95%, answered by a testbed
model (or, with --data, any local causal LM); held-out questions only. For each proportion two
curves come out: quality (exact match for the testbed, token F1 otherwise) and leakage (the share
of answers that give the planted value, on the testbed, or 1 - cleanliness otherwise). A
Rescorla-Wagner model (one salience per signal, shared prediction error per sentence
presentation) is fitted to the quality curve, with its RMSE. With --adapter the curve is that of
a `train rw` adapter (RW-Steering or the answer-only baseline) instead of the plain model.
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from ragarbiter.errors import ConfigError, InvalidInputError
from ragarbiter.synthetic.conditions import PROPORTIONS

from ..metrics import cleanliness, token_f1
from .config import SENTENCES
from .data import Mixture, build_mixtures, from_context_set
from .model import fit_rw

QUESTIONS = 60  # questions (or pool records) per proportion


def testbed_mixtures(
    lm,
    questions: int,
    proportions: Sequence[float] = PROPORTIONS,
    n: int = SENTENCES,
    seed: int = 0,
    source_tags: bool = True,
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


def file_eval_mixtures(path: str, questions: int, n: int, seed: int, source_tags: bool) -> list[Mixture]:
    """Held-out mixtures from a file: a pool at every proportion, or a mixtures JSONL as written."""
    from ..qa import held_out
    from .data import first_questions, is_mixture_file, read_mixtures, read_pool, untagged

    if is_mixture_file(path):
        mixtures = [m for m in read_mixtures(path) if held_out(m.question)]
        return first_questions(mixtures if source_tags else untagged(mixtures), questions)
    records = [r for r in read_pool(path) if held_out(str(r.get("Question", "")))][:questions]
    return build_mixtures(records, PROPORTIONS, n=n, source_tags=source_tags, seed=seed)


def behaviour_curve(
    mixtures: Sequence[Mixture],
    answers: Sequence[str],
    planted: Sequence[str] | None = None,
    exact: Callable[[str, str], bool] | None = None,
) -> dict:
    """Per proportion: quality and leakage (means over the mixtures at that proportion)."""
    quality: dict[float, list[float]] = defaultdict(list)
    leakage: dict[float, list[float]] = defaultdict(list)
    for i, (m, answer) in enumerate(zip(mixtures, answers)):
        if exact is not None:
            quality[m.proportion].append(float(exact(answer, m.answer)))
        else:
            quality[m.proportion].append(token_f1(answer, m.answer))
        if planted is not None and exact is not None:
            leakage[m.proportion].append(float(bool(planted[i]) and exact(answer, planted[i])))
        else:
            bad = [s for s, b in zip(m.sentences, m.inappropriate) if b]
            leakage[m.proportion].append(1.0 - cleanliness(answer, bad, question=m.question))
    props = sorted(quality)
    return {
        "proportions": props,
        "quality": [round(sum(quality[p]) / len(quality[p]), 4) for p in props],
        "leakage": [round(sum(leakage[p]) / len(leakage[p]), 4) for p in props],
        "n_per_point": len(quality[props[0]]) if props else 0,
    }


def adapter_answers(lm, adapter: str, mixtures: Sequence[Mixture]) -> tuple[list[str], dict]:
    """Answers of a `train rw` adapter: RW-Steering's parsed answer, or the answer-only baseline's."""
    import json

    from ragarbiter.types import Context, Passage

    from .data import answer_text
    from .model import with_adapter
    from .stage import RWSteering

    meta = json.loads((Path(adapter) / "rw.json").read_text(encoding="utf-8"))
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


def run_rw_bench(
    lm,
    *,
    questions: int = QUESTIONS,
    n: int = SENTENCES,
    seed: int = 0,
    data: str | None = None,
    adapter: str | None = None,
    source_tags: bool = True,
) -> dict:
    """Measure the model's curve on held-out questions (the testbed's mixtures, or with `data` a pool
    or a mixtures JSONL) and fit RW to it. With `adapter`, the curve is that of a `train rw`
    adapter (RW-Steering or the answer-only baseline)."""
    from ragarbiter.lm import render_prompt

    from ..metrics import exact_match

    if data:
        mixtures = file_eval_mixtures(data, questions, n, seed, source_tags)
        planted, exact = None, None
        if not mixtures:
            raise InvalidInputError(f"{data} has no held-out questions to measure (one question in five is held out).")
    elif lm.world is None:
        raise ConfigError(f"{lm.path} is not a testbed model; pass --data POOL.json (or a mixtures JSONL).")
    else:
        mixtures, planted = testbed_mixtures(lm, questions, PROPORTIONS, n, seed, source_tags)
        exact = exact_match
    extra: dict = {}
    if adapter:
        answers, extra = adapter_answers(lm, adapter, mixtures)
    else:
        prompts = [render_prompt(m.question, list(m.sentences), list(m.sources) or None) for m in mixtures]
        answers = lm.generate(prompts)
    curve = behaviour_curve(mixtures, answers, planted, exact)
    if len(curve["proportions"]) >= 3:
        fit = fit_rw(curve["proportions"], curve["quality"], len(mixtures[0].sentences))
    else:  # the curve is still worth reporting
        fit = {
            "skipped": f"the RW fit needs at least 3 proportions; this data has {curve['proportions']}. Build "
            f"mixtures with more, e.g. `ragarbiter mixtures --proportions 0 0.1 0.3 0.5 0.7 0.9`."
        }
    return {
        "curve": curve,
        "rw_fit": fit,
        "sentences": len(mixtures[0].sentences),
        "questions": questions,
        "seed": seed,
        "source_tags": source_tags,
        "source": data or "testbed mixture condition (held-out questions)",
        **extra,
    }


def _figure():
    from ragarbiter.errors import require

    matplotlib = require("matplotlib", "all", "RW plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.4, 4.0), dpi=120)


def _finish(fig, ax, title: str, ylabel: str, folder: str | Path, name: str, legend_size: int) -> Path:
    import matplotlib.pyplot as plt

    ax.set_xlabel("share of inappropriate sentences")
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)
    fig.tight_layout()
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_rw(result: dict, folder: str | Path, name: str = "rw_fit.png") -> Path:
    """The measured quality and leakage of one system, with the fitted RW curve."""
    curve, fit = result["curve"], result["rw_fit"]
    fig, ax = _figure()
    ax.plot(curve["proportions"], curve["quality"], "o", label="measured quality")
    if "fitted" in fit:
        params = (
            f"a_I/a_A={fit['salience_ratio']}"
            if fit.get("regime", "").startswith("small")
            else f"a_A={fit['alpha_appropriate']}, a_I={fit['alpha_inappropriate']}"
        )
        ax.plot(curve["proportions"], fit["fitted"], "-", label=f"RW fit ({params}, RMSE {fit['rmse']})")
    ax.plot(curve["proportions"], curve["leakage"], "s--", color="grey", label="leakage (planted value answered)")
    return _finish(
        fig, ax, "Answer quality under mixed contexts, with the Rescorla-Wagner fit", "rate", folder, name, 8
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        required=True,
        metavar="DIR",
        help="a testbed model (`ragarbiter testbed train`), or with --data any local causal LM",
    )
    p.add_argument(
        "--data",
        metavar="FILE",
        help="a Poisoned Context Testbed pool (.json) or a mixtures JSONL "
        "(`ragarbiter mixtures`) instead of the testbed's own mixtures",
    )
    p.add_argument("--no-source-tags", action="store_true", help="leave the (source) tags off the sentences")
    p.add_argument(
        "--adapter",
        metavar="DIR",
        help="measure a `train rw` adapter (RW-Steering or the answer-only baseline) instead of the plain model",
    )
    p.add_argument(
        "--questions",
        type=int,
        default=QUESTIONS,
        help=f"questions (or pool records) per proportion (default: {QUESTIONS})",
    )
    p.add_argument("--sentences", type=int, default=SENTENCES, help=f"sentences per mixture (default: {SENTENCES})")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> dict:
    from ..generators import load_generator

    result = run_rw_bench(
        load_generator(args.model),
        questions=args.questions,
        n=args.sentences,
        seed=args.seed,
        data=args.data,
        adapter=args.adapter,
        source_tags=not args.no_source_tags,
    )
    result["model"] = str(args.model)
    return result


def plot(result: dict, folder: str | Path) -> list[Path]:
    """rw_fit.png: the measured quality and leakage, with the fitted RW curve."""
    return [plot_rw(result, folder)]


def print_result(result: dict) -> None:
    fit = result["rw_fit"]
    print(f"quality: {result['curve']['quality']}\nleakage: {result['curve']['leakage']}")
    if "skipped" in fit:
        print(f"RW fit skipped: {fit['skipped']}")
    else:
        print(
            f"RW fit: alpha_A {fit['alpha_appropriate']}, alpha_I {fit['alpha_inappropriate']}, "
            f"q0 {fit['q0']}, RMSE {fit['rmse']}"
        )
