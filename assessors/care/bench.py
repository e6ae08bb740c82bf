"""CARE against plain RAG and closed book, per condition: clean, counterfactual and unhelpful context.

- `clean`: the context is right (it holds the answer);
- `counterfactual`: the context misleads (it states another answer);
- `unhelpful`: the context holds no answer.

With `--data FILE` the base LM is a real generator (`--generator`, default SmolLM2-135M-Instruct)
and the assessor `--care DIR` (default: the one shipped in the package). The file is LitM NQ-Open
(the gold passage, its NQ-Swap twin, other questions' passages), RGB `*_fact` (`positive`,
`positive_wrong`, `negative`) or ConflictQA (the evidence for the gold answer, for the other one,
another question's). Only questions the assessor was not trained on are scored (its manifest
lists them). Closed book, RAG and CARE all answer through the same prompt (the chat template when
the generator has one), RAG with the raw passages where CARE has the soft prompt; an answer counts
when it mentions an answer alias (normalized, whole words; a yes/no answer by its first word).

With `--model TESTBED_DIR` (a testbed model) the sets come from its synthetic world's held-out
questions (`ragarbiter.assessors.qa.held_out`), and two more figures are reported:
- **resilience**: accuracy on counterfactual sets whose question the model answers correctly
  closed-book (it knew, and the context misleads);
- **boost**: accuracy on clean sets whose question it gets wrong closed-book (it did not know,
  and the context is right).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import random
import time
from pathlib import Path

from . import config

logger = logging.getLogger(__name__)

SYSTEMS = ("closed_book", "rag", "care")
CONDITIONS = ("clean", "counterfactual", "unhelpful")
QUESTIONS = 200  # per condition
MAX_NEW_TOKENS = 10  # a testbed answer is a short value
DATA_MAX_NEW_TOKENS = 32  # a chat model answers in a short sentence


def default_care_dir() -> Path:
    """The CARE assessor shipped in the package (`assessors/care/shipped/`), or a clear error."""
    found = config.shipped_care_dir()
    if found is None:
        from ragarbiter.errors import ModelNotFoundError

        raise ModelNotFoundError(config.not_shipped(config.SHIPPED, "--care DIR"))
    return found


def summary(correct: dict[str, dict[str, list[bool]]]) -> dict:
    """`{system: {condition: accuracy, ..., "mean": mean over conditions}}` from per-case correctness."""
    out: dict = {}
    for system in SYSTEMS:
        rates = {c: _rate(correct[c][system]) for c in CONDITIONS if c in correct}
        scored = [v for v in rates.values() if v is not None]
        out[system] = {**rates, "mean": round(sum(scored) / len(scored), 4) if scored else None}
    return out


def evaluate_cases(care, sets: dict[str, list], *, max_new_tokens: int = DATA_MAX_NEW_TOKENS, batch_size: int = 16):
    """Closed book, plain RAG and CARE on every condition's cases, all batched through one `CareModel`."""
    import torch

    from .data import answered

    questions = sorted({c.question for cases in sets.values() for c in cases})
    closed = dict(zip(questions, care.answers(questions, max_new_tokens=max_new_tokens, batch_size=batch_size)))
    correct: dict[str, dict[str, list[bool]]] = {}
    for condition, cases in sets.items():
        qs = [c.question for c in cases]
        rag = care.answers(
            qs, passages=[c.passages for c in cases], max_new_tokens=max_new_tokens, batch_size=batch_size
        )
        softs = []
        with torch.no_grad():
            for i in range(0, len(cases), batch_size):
                softs += care.encode_groups([list(c.passages) for c in cases[i : i + batch_size]])
        with_care = care.answers(qs, softs, max_new_tokens=max_new_tokens, batch_size=batch_size)
        correct[condition] = {
            name: [answered(a, c) for a, c in zip(outputs, cases)]
            for name, outputs in (("closed_book", [closed[q] for q in qs]), ("rag", rag), ("care", with_care))
        }
    return {**summary(correct), "n": {c: len(cases) for c, cases in sets.items()}}


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
    """Testbed: accuracy of closed book, plain RAG (the testbed's own layout) and CARE per condition,
    plus resilience and boost."""
    from ragarbiter.lm import render_prompt

    from ..metrics import exact_match
    from .stage import CareAssessor

    sets = build_sets(lm, questions, seed)
    # The testbed's sets hold the gold passage among distractors: CARE reads all of them, as RAG does.
    answer_with_care = care_answerer(CareAssessor(generator=generator, passages=64))
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
    result.update(summary(correct))
    return result


def _rate(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def plot_care(result: dict, folder: str | Path) -> Path:
    """Grouped bars: closed book, RAG and CARE per condition and their mean (then resilience and boost)."""
    from ragarbiter.errors import require

    matplotlib = require("matplotlib", "all", "CARE plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [*CONDITIONS, "mean", *(g for g in ("resilience", "boost") if g in result)]
    fig, ax = plt.subplots(figsize=(7.2, 4.0), dpi=120)
    width = 0.26
    for j, name in enumerate(SYSTEMS):
        values = [result[name].get(g) if g not in ("resilience", "boost") else result[g].get(name) for g in groups]
        xs = [i + (j - 1) * width for i in range(len(groups))]
        ax.bar(
            [x for x, v in zip(xs, values) if v is not None],
            [v for v in values if v is not None],
            width,
            label=name.replace("_", " "),
        )
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.set_title(f"CARE vs RAG vs closed book ({result.get('format', 'testbed')})")
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
    from ragarbiter.lm import DEFAULT_GENERATOR

    from ..trained import add_unseen_arguments

    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--data", metavar="FILE", help="LitM NQ-Open .jsonl[.gz], RGB *_fact.json or ConflictQA .json (JSONL)"
    )
    source.add_argument("--model", metavar="DIR", help="a testbed model (`ragarbiter testbed train`) instead of --data")
    p.add_argument(
        "--generator",
        metavar="NAME_OR_DIR",
        default=DEFAULT_GENERATOR,
        help=f"with --data: the base LM the assessor was trained on (default: {DEFAULT_GENERATOR})",
    )
    p.add_argument(
        "--care", metavar="DIR", help="the CARE assessor (default: with --data the shipped one; with --model DIR/care)"
    )
    p.add_argument("--limit", type=int, default=None, metavar="N", help="at most N questions per condition")
    p.add_argument(
        "--questions", type=int, default=QUESTIONS, help=f"--model: questions per condition (default: {QUESTIONS})"
    )
    p.add_argument(
        "--passages",
        type=int,
        default=None,
        metavar="N",
        help="--data: passages per context (default: as many as the assessor was trained with)",
    )
    p.add_argument("--batch-size", type=int, default=16, help="questions per generation batch (default: 16)")
    p.add_argument("--device", default=None, help="where to run the generator (default: cuda when available)")
    p.add_argument("--seed", type=int, default=0)
    add_unseen_arguments(p, "the CARE assessor")


def run(args: argparse.Namespace) -> dict:
    from ragarbiter.errors import ConfigError

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}.")
    if args.model:
        return _run_testbed(args)
    if not args.data:
        raise ConfigError("bench care needs --data FILE (LitM NQ-Open, RGB or ConflictQA) or --model TESTBED_DIR.")
    return _run_data(args)


def _run_testbed(args: argparse.Namespace) -> dict:
    from ..generators import load_generator
    from .model import CareModel
    from .stage import CareGenerator

    lm = load_generator(args.model, require_world=True)
    folder = Path(args.care) if args.care else Path(args.model) / "care"
    generator = CareGenerator(CareModel.load(folder, lm.model, lm.tokenizer), max_new_tokens=MAX_NEW_TOKENS)
    started = time.perf_counter()
    result = evaluate_care(lm, generator, args.limit or args.questions, args.seed)
    result.update(model=str(args.model), care=str(folder), seconds=round(time.perf_counter() - started, 1))
    return result


def load_care(care_dir: str | Path | None, generator: str | None, device: str | None = None):
    """The CARE assessor in `care_dir` (default: the shipped one) on the generator it was trained on."""
    import torch

    from ragarbiter.lm import load_causal_lm, resolve_generator

    from .model import CareModel

    folder = Path(care_dir) if care_dir else default_care_dir()
    device = device or ("cuda" if torch.cuda.is_available() else None)
    model, tokenizer = load_causal_lm(str(resolve_generator(generator)), device=device)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return CareModel.load(folder, model, tokenizer).eval(), folder


def _run_data(args: argparse.Namespace) -> dict:
    from ragarbiter.errors import ConfigError

    from ..trained import check_trained, unseen_report
    from .data import bench_cases

    care, folder = load_care(args.care, args.generator, args.device)
    passages = args.passages or care.config.passages
    if passages < 1:
        raise ConfigError(f"--passages must be >= 1, got {passages}.")
    kind, sets = bench_cases(args.data, passages, args.seed)
    check = check_trained(folder) if args.unseen_only else None
    skipped = {}
    for condition, cases in sets.items():
        if check is None:
            sets[condition] = cases[: args.limit] if args.limit else cases
        else:
            sets[condition], skipped[condition] = check.unseen(cases, lambda c: c.question, args.limit)
    started = time.perf_counter()
    result = evaluate_cases(care, sets, batch_size=args.batch_size)
    result.update(
        format=kind,
        data=str(args.data),
        generator=str(args.generator),
        care_dir=str(folder),
        passages=passages,
        trained_passages=care.config.passages,
        skipped_trained=skipped,
        seconds=round(time.perf_counter() - started, 1),
        **unseen_report(check),
    )
    return result


def plot(result: dict, folder: str | Path) -> list[Path]:
    """care.png: grouped bars per condition and the mean (testbed: then resilience and boost)."""
    return [plot_care(result, folder)]


def print_result(result: dict) -> None:
    for system in SYSTEMS:
        print(f"{system:>15}: {result[system]}")
    print(f"{'n':>15}: {dict((c, v) for c, v in result['n'].items() if c in CONDITIONS)}")
    for extra in ("resilience", "boost"):
        if extra in result:
            print(f"{extra:>15}: {result[extra]}")
