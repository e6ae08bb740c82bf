"""`ragarbiter bench testbed [--model DIR | --train-size small] --seed S --json`: every stage on the closed world."""

from __future__ import annotations

import argparse

from .common import add_json_arg, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "testbed",
        help="closed-book and RAG accuracy by condition on the testbed model, with each stage on",
        description="Closed-book accuracy on known and unknown entities; RAG accuracy (exact match) on clean, "
        "counterfactual, conflict, poisoned, mixture (by proportion) and position (by gold index) "
        "context sets; then the same with each ragarbiter stage switched on. Stages this version "
        "does not have are reported as absent.",
    )
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
    p.add_argument("--plots", metavar="DIR", help="write testbed_position.png and testbed_mixture.png here")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ragarbiter.testbed import (
        STAGES,
        HarnessConfig,
        cached_model_dir,
        load_testbed,
        markdown_table,
        plot_curves,
        run_testbed,
        train_testbed,
    )

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
    if args.plots:
        result["plots"] = [str(p) for p in plot_curves(result, args.plots)]
    if args.json:
        print_json(result)
    else:
        print(f"closed book: {result['closed_book']}")
        print(markdown_table(result))
    return 0
