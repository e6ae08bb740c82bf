"""`ragarbiter train inappropriate --data POOL.json... --out DIR`: the InappropriateFilter's LoRA adapter."""

from __future__ import annotations

import argparse

from .common import add_json_arg


def register(sub) -> None:
    from ragarbiter.assessors.backbone import add_encoder_args
    from ragarbiter.training.args import add_train_args

    p = sub.add_parser(
        "inappropriate",
        help="train the InappropriateFilter adapter from testbed pools plus written samples",
        description="Build passages from Poisoned Context Testbed pools (appropriate and inappropriate sentences "
        "mixed, each labelled), add written samples for hateful content, private personal information "
        "and prompt injection (with look-alike appropriate sentences) and plain answers to questions about "
        "invented firms and people (appropriate: an unfamiliar fact is not a false one), then train LoRA "
        "on the top blocks of all-MiniLM-L6-v2 plus a sentence classifier.",
    )
    p.add_argument(
        "--data",
        required=True,
        nargs="+",
        metavar="FILE",
        help="testbed pool .json files, and optionally LitM NQ-Open .jsonl[.gz] files (their gold passages "
        "with NQ-Swap counterfactual claims inserted)",
    )
    p.add_argument(
        "--records",
        type=int,
        default=None,
        metavar="N",
        help="use only the first N records of each pool (the rest stays unseen for `bench inappropriate --start N`)",
    )
    p.add_argument(
        "--written",
        type=int,
        default=600,
        metavar="N",
        help="written samples per uncovered category, each with a look-alike (default: 600; 0 = none)",
    )
    p.add_argument(
        "--unfamiliar",
        type=int,
        default=200,
        metavar="N",
        help="questions about invented firms and people, answered plainly and labelled appropriate "
        "(default: 200; 0 = none)",
    )
    p.add_argument(
        "--whole",
        type=float,
        default=0.0,
        metavar="P",
        help="share (0 to 1) of pool records whose second passage holds all their sentences, so that "
        "restatements of one false claim appear side by side (default: 0 = none; measured, not shipped)",
    )
    p.add_argument(
        "--restate",
        type=float,
        default=0.0,
        metavar="P",
        help="share (0 to 1) of LitM NQ-Open passages that also get a one-line restatement of the true "
        "answer, labelled appropriate, so that restating a fact is not taken for a false claim "
        "(default: 0 = none; measured, not shipped)",
    )
    p.add_argument(
        "--answers",
        type=float,
        default=0.0,
        metavar="P",
        help="share (0 to 1) of pool records whose true answer (the pool's `Simple Answer`, as a statement) "
        "joins one of their passages, labelled appropriate: it restates the appropriate sentences and "
        "contradicts the false claim (default: 0 = none; measured, not shipped)",
    )
    add_encoder_args(p, "inappropriate")
    add_train_args(p, batch_size=16)
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ragarbiter.assessors.backbone import BackboneSpec
    from ragarbiter.assessors.inappropriate.train import train_inappropriate
    from ragarbiter.training.args import lora_settings, report, train_config

    manifest = train_inappropriate(
        args.data,
        train_config(args),
        lora=lora_settings(args),
        spec=BackboneSpec(split=args.split, max_length=args.max_length),
        records=args.records,
        written=args.written,
        unfamiliar=args.unfamiliar,
        whole=args.whole,
        restate=args.restate,
        answers=args.answers,
        eval_fraction=args.eval_fraction,
        resume=args.resume,
    )
    return report(args, manifest)
