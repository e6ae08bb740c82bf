"""`ragarbiter train rw --base-model DIR [--data FILE] --stage 1|2 --out DIR`.

RW-Steering's two-stage LoRA fine-tuning.
"""

from __future__ import annotations

import argparse

from .common import add_json_arg


def register(sub) -> None:
    from ragarbiter.training.args import add_train_args

    p = sub.add_parser(
        "rw",
        help="RW-Steering fine-tuning on mixed contexts (stage 1: name the reliable sentences, then answer; "
        "stage 2: few inappropriate sentences)",
        description="LoRA fine-tuning of a testbed model on mixtures of appropriate and inappropriate sentences. "
        "Stage 1 targets list the reliable sentence numbers, then the answer; stage 2 (with --init from "
        "stage 1) mostly uses mixtures with only one or two inappropriate sentences. --target answer "
        "trains the answer-only baseline.",
    )
    p.add_argument(
        "--base-model",
        required=True,
        metavar="DIR",
        help="a testbed model (`ragarbiter testbed train`), or with --data any local causal LM",
    )
    p.add_argument(
        "--data",
        metavar="FILE",
        help="a Poisoned Context Testbed pool (.json) or a mixtures JSONL "
        "(`ragarbiter mixtures`); default: the testbed model's own world",
    )
    p.add_argument("--no-source-tags", action="store_true", help="leave the (source) tags off the sentences")
    p.add_argument("--stage", type=int, required=True, choices=(1, 2))
    p.add_argument("--init", metavar="DIR", help="start from this adapter (stage 1's, for stage 2)")
    p.add_argument("--target", choices=("rw", "answer"), default="rw", help="rw (default) or the answer-only baseline")
    p.add_argument(
        "--sentences",
        type=int,
        default=20,
        help="longest mixture; each training mixture has 4 to this many sentences (default: 20)",
    )
    p.add_argument("--limit", type=int, default=None, metavar="N", help="training questions")
    add_train_args(p, batch_size=16, lr=2e-3)
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ragarbiter.assessors.rw_steering.train import train_rw
    from ragarbiter.training.args import report, train_config

    manifest = train_rw(
        args.base_model,
        args.stage,
        args.out,
        train_config(args),
        init=args.init,
        target=args.target,
        n=args.sentences,
        limit=args.limit,
        eval_fraction=args.eval_fraction,
        resume=args.resume,
        data=args.data,
        source_tags=not args.no_source_tags,
    )
    return report(args, manifest)
