"""Closed-book and RAG accuracy by condition on the testbed model, with each stage on.

Closed-book accuracy on known and unknown entities; RAG accuracy (exact match) on clean,
counterfactual, conflict, poisoned, mixture (by proportion) and position (by gold index) context
sets; then the same with each ragarbiter stage switched on. Plain RAG is the baseline of every
row. Stages this version does not have are reported as absent.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", metavar="DIR", help="a model from `ragarbiter testbed train`")
    which.add_argument(
        "--train-size",
        choices=("tiny", "small"),
        default=None,
        help="use the cached model of this size for --seed, training it first if missing "
        "(default when --model is not given: small)",
    )
    p.add_argument("--seed", type=int, default=0, help="world seed (with --train-size) and context-set seed")
    p.add_argument("--questions", type=int, default=120, help="questions per condition and per level (default: 120)")
    p.add_argument(
        "--stages",
        nargs="*",
        default=None,
        metavar="NAME",
        help="stages to measure (default: all the harness knows; absent ones are reported as absent)",
    )


def run(args: argparse.Namespace) -> dict:
    from ragarbiter.testbed import STAGES, HarnessConfig, cached_model_dir, load_testbed, run_testbed, train_testbed

    if args.model:
        path = args.model
    else:
        size = args.train_size or "small"
        path = cached_model_dir(size, args.seed)
        if not (path / "testbed.json").is_file():
            train_testbed(size, args.seed, path)
    lm = load_testbed(path)
    result = run_testbed(
        lm,
        HarnessConfig(questions=args.questions, seed=args.seed),
        stages=STAGES if args.stages is None else args.stages,
    )
    return result


def plot(result: dict, folder: str) -> list[Path]:
    """testbed_position.png and testbed_mixture.png."""
    from ragarbiter.testbed import plot_curves

    return plot_curves(result, folder)


def print_result(result: dict) -> None:
    from ragarbiter.testbed import markdown_table

    print(f"closed book: {result['closed_book']}")
    print(markdown_table(result))
