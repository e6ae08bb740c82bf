"""`ragarbiter bench rw --model DIR [--data POOL.json|MIXTURES.jsonl] --json`.

Behaviour under mixed contexts and its Rescorla-Wagner fit.
"""

from __future__ import annotations

import argparse

from .common import add_json_arg, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "rw",
        help="answer quality and leakage against contamination, with a Rescorla-Wagner fit",
        description="Mixtures of appropriate and inappropriate sentences at proportions 0-95%, answered by a testbed "
        "model (or, with --data, any local causal LM); held-out questions only; quality "
        "and leakage per proportion; a Rescorla-Wagner model (one salience per signal, "
        "shared prediction error per sentence presentation) fitted to the quality curve, with its RMSE.",
    )
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
    p.add_argument("--questions", type=int, default=60, help="questions (or pool records) per proportion (default: 60)")
    p.add_argument("--sentences", type=int, default=20, help="sentences per mixture (default: 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="DIR", help="write rw_fit.png here")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ragarbiter.assessors.rw_steering.bench import plot_rw, run_rw_bench
    from ragarbiter.assessors.rw_steering.train import load_generator

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
    if args.plot:
        result["plot"] = str(plot_rw(result, args.plot))
    if args.json:
        print_json(result)
    else:
        fit = result["rw_fit"]
        print(f"quality: {result['curve']['quality']}\nleakage: {result['curve']['leakage']}")
        if "skipped" in fit:
            print(f"RW fit skipped: {fit['skipped']}")
        else:
            print(
                f"RW fit: alpha_A {fit['alpha_appropriate']}, alpha_I {fit['alpha_inappropriate']}, "
                f"q0 {fit['q0']}, RMSE {fit['rmse']}"
            )
    return 0
