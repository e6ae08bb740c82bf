"""CARE against plain RAG and closed book on a testbed model: accuracy, resilience and boost.

The paper's ablation. Conditions (one context set per question, built by the synthetic world's
`ContextBuilder`):
- `clean`: unknown entities, the gold passage among distractors (the context is right);
- `counterfactual`: known entities, one passage asserting another value (the context misleads);
- `unhelpful`: known entities, distractors only (the context holds no answer).

Only held-out questions are used (`ragarbiter.assessors.qa.held_out`: one in five, never in CARE training).

Two summary figures:
- **resilience**: accuracy on counterfactual sets whose question the model answers correctly
  closed-book (it knew, and the context misleads);
- **boost**: accuracy on clean sets whose question it gets wrong closed-book (it did not know,
  and the context is right).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from pathlib import Path

SYSTEMS = ("closed_book", "rag", "care")
QUESTIONS = 200  # per condition
MAX_NEW_TOKENS = 10  # a testbed answer is a short value


def build_sets(lm, questions: int, seed: int = 0) -> dict[str, list]:
    from ragarbiter.synthetic import ContextBuilder

    from ..qa import held_out

    builder = ContextBuilder(lm.world)
    rng = random.Random(seed)

    # Only the questions CARE training never saw (`held_out`); the entities may appear in training.
    known = [i for i in lm.world.qa_items(known=True) if held_out(i.question)]
    unknown = [i for i in lm.world.qa_items(known=False) if held_out(i.question)]
    pick = random.Random(seed + 1)
    known = pick.sample(known, min(questions, len(known)))
    unknown = pick.sample(unknown, min(questions, len(unknown)))
    clean_known = [builder.clean(i, rng) for i in known]
    unhelpful = [
        dataclasses.replace(
            s,
            condition="unhelpful",
            passages=tuple(p for p, lab in zip(s.passages, s.labels) if lab != "gold"),
            labels=tuple(lab for lab in s.labels if lab != "gold"),
            sources=tuple(src for src, lab in zip(s.sources, s.labels) if lab != "gold"),
        )
        for s in clean_known
    ]
    return {
        "clean": [builder.clean(i, rng) for i in unknown],
        "counterfactual": [builder.counterfactual(i, rng) for i in known],
        "unhelpful": unhelpful,
    }


def evaluate_care(lm, generator, questions: int = QUESTIONS, seed: int = 0) -> dict:
    """Accuracy of closed book, plain RAG and CARE per condition, plus resilience and boost."""
    from ragarbiter.lm import render_prompt

    from ..metrics import exact_match
    from .stage import CareAssessor

    sets = build_sets(lm, questions, seed)
    answer_with_care = care_answerer(CareAssessor(generator=generator))
    result: dict = {"questions": questions, "seed": seed, "accuracy": {}, "n": {}}
    correct: dict[str, dict[str, list[bool]]] = {}
    for condition, group in sets.items():
        closed = lm.generate([render_prompt(s.item.question) for s in group])
        rag = lm.generate([render_prompt(s.item.question, s.passages, s.sources) for s in group])
        care = answer_with_care(group)
        correct[condition] = {
            name: [exact_match(a, s.item.answer) for a, s in zip(answers, group)]
            for name, answers in zip(SYSTEMS, (closed, rag, care))
        }
        result["accuracy"][condition] = {name: _rate(v) for name, v in correct[condition].items()}
        result["n"][condition] = len(group)
    knew = correct["counterfactual"]["closed_book"]
    missed = [not c for c in correct["clean"]["closed_book"]]
    result["resilience"] = {
        name: _rate([c for c, k in zip(correct["counterfactual"][name], knew) if k]) for name in ("rag", "care")
    }
    result["boost"] = {
        name: _rate([c for c, m in zip(correct["clean"][name], missed) if m]) for name in ("rag", "care")
    }
    result["n"]["resilience"] = sum(knew)
    result["n"]["boost"] = sum(missed)
    return result


def _rate(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def plot_care(result: dict, folder: str | Path) -> Path:
    """Grouped bars: closed book, RAG and CARE per condition, then resilience and boost."""
    from ragarbiter.errors import require

    matplotlib = require("matplotlib", "all", "CARE plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [*result["accuracy"], "resilience", "boost"]
    fig, ax = plt.subplots(figsize=(7.2, 4.0), dpi=120)
    width = 0.26
    for j, name in enumerate(SYSTEMS):
        values = [result["accuracy"][g].get(name) if g in result["accuracy"] else result[g].get(name) for g in groups]
        xs = [i + (j - 1) * width for i in range(len(groups))]
        ax.bar(
            [x for x, v in zip(xs, values) if v is not None],
            [v for v in values if v is not None],
            width,
            label=name.replace("_", " "),
        )
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("exact-match accuracy")
    ax.set_title("CARE vs RAG vs closed book (testbed)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(folder) / "care.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def care_answerer(stage):
    """CARE answers every set from its soft prompt: the base LM never reads the passages."""
    from tqdm.auto import tqdm

    from ragarbiter.types import Context, Passage

    def answer(sets: list) -> list[str]:
        out = []
        for s in tqdm(sets, desc="care", unit="set", leave=False, disable=len(sets) < 50):
            context = stage(Context(query=s.item.question, passages=tuple(Passage(t) for t in s.passages)))
            out.append(stage.generator.answer(context).split("\n")[0].strip())
        return out

    return answer


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="DIR", help="a testbed model (`ragarbiter testbed train`)")
    p.add_argument("--care", metavar="DIR", help="its CARE assessor (default: DIR/care)")
    p.add_argument("--questions", type=int, default=QUESTIONS, help=f"questions per condition (default: {QUESTIONS})")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> dict:
    from ..generators import load_generator
    from .model import CareModel
    from .stage import CareGenerator

    lm = load_generator(args.model, require_world=True)
    folder = Path(args.care) if args.care else Path(args.model) / "care"
    generator = CareGenerator(CareModel.load(folder, lm.model, lm.tokenizer), max_new_tokens=MAX_NEW_TOKENS)
    started = time.perf_counter()
    result = evaluate_care(lm, generator, args.questions, args.seed)
    result.update(model=str(args.model), care=str(folder), seconds=round(time.perf_counter() - started, 1))
    return result


def plot(result: dict, folder: str | Path) -> list[Path]:
    """care.png: grouped bars per condition, then resilience and boost."""
    return [plot_care(result, folder)]


def print_result(result: dict) -> None:
    for condition, row in result["accuracy"].items():
        print(f"{condition:>15}: {row}")
    print(f"{'resilience':>15}: {result['resilience']}\n{'boost':>15}: {result['boost']}")
