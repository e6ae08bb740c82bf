"""`ragarbiter mixtures (--data POOL.json | --testbed DIR) --out FILE.jsonl`: RW-Steering's mixed-context builder."""

from __future__ import annotations

import argparse
import logging

from .common import add_json_arg, print_json

logger = logging.getLogger(__name__)


def register(sub) -> None:
    from ragarbiter.assessors.rw_steering.config import SENTENCES
    from ragarbiter.assessors.rw_steering.data import add_source_tag_arguments
    from ragarbiter.synthetic.conditions import PROPORTIONS

    p = sub.add_parser(
        "mixtures",
        help="write mixed-context prompts (appropriate + inappropriate sentences) as JSONL",
        description="Numbered sentences mixing appropriate and inappropriate ones at controlled proportions and "
        "positions, from a Poisoned Context Testbed pool or a testbed model's world, deterministic in "
        "--seed. Each line holds the question, the sentences, which are inappropriate, the reliable "
        "sentence numbers, the answer, the proportion, the position and (with --source-tags) the "
        "sources. The file feeds `train rw --data` and `bench rw --data`.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="POOL.json", help="a Poisoned Context Testbed pool")
    source.add_argument("--testbed", metavar="DIR", help="a testbed model: its world's `mixture` condition")
    p.add_argument("--out", required=True, metavar="FILE.jsonl")
    p.add_argument(
        "--proportions",
        type=float,
        nargs="+",
        default=list(PROPORTIONS),
        help="shares of inappropriate sentences, each in [0, 1) (default: 0 to 0.95)",
    )
    p.add_argument(
        "--positions",
        nargs="+",
        default=["random"],
        choices=("front", "middle", "back", "random"),
        help="where the inappropriate block goes (default: random)",
    )
    p.add_argument(
        "--sentences", type=int, default=SENTENCES, help=f"sentences per mixture (default: {SENTENCES}, as `bench rw`)"
    )
    p.add_argument("--questions", type=int, default=None, metavar="N", help="first N records / questions")
    add_source_tag_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ragarbiter.assessors.rw_steering.data import (
        build_mixtures,
        check_proportions,
        count_inappropriate,
        read_pool,
        world_mixtures,
        write_jsonl,
    )

    check_proportions(args.proportions)
    realised = [count_inappropriate(args.sentences, p) / args.sentences for p in args.proportions]
    for wanted, got in zip(args.proportions, realised):
        if abs(wanted - got) > 1e-9:
            logger.warning(
                "--proportions %s with %d sentences gives %d inappropriate (%.3f); rows keep %s",
                wanted,
                args.sentences,
                round(got * args.sentences),
                got,
                wanted,
            )
    options = {
        "positions": args.positions,
        "n": args.sentences,
        "source_tags": args.source_tags,
        "seed": args.seed,
    }
    if args.data:
        records = read_pool(args.data)
        mixtures = build_mixtures(records[: args.questions] if args.questions else records, args.proportions, **options)
    else:
        from ragarbiter.synthetic import load_world

        mixtures = world_mixtures(load_world(args.testbed), args.proportions, questions=args.questions, **options)
    written = write_jsonl(mixtures, args.out)
    summary = {
        "out": args.out,
        "mixtures": written,
        "proportions": args.proportions,
        "inappropriate_per_mixture": [round(r * args.sentences) for r in realised],
        "positions": args.positions,
        "sentences": args.sentences,
        "source_tags": args.source_tags,
        "source": args.data or args.testbed,
    }
    if args.json:
        print_json(summary)
    else:
        print(f"{written} mixtures written to {args.out}")
    return 0
