"""`ragarbiter train conflict --data FILE... --out DIR`: the ConflictAssessor's LoRA adapter."""

from __future__ import annotations

import argparse

from .common import add_json_arg


def register(sub) -> None:
    from ragarbiter.assessors.backbone import add_encoder_args
    from ragarbiter.training.args import add_train_args

    p = sub.add_parser(
        "conflict",
        help="train the ConflictAssessor adapter from QA files (NQ-Swap recipe) and ConflictQA",
        description="Build minimal-edit conflicting pairs from LitM NQ-Open files (each gold passage's answer is "
        "replaced by another question's answer of the same type) and add ConflictQA pairs, then train "
        "LoRA on the top blocks of all-MiniLM-L6-v2 plus a pair head. Multi-process: "
        "`accelerate launch -m ragarbiter.cli.main train conflict ...`.",
    )
    p.add_argument(
        "--data",
        required=True,
        nargs="+",
        metavar="FILE",
        help="LitM NQ-Open .jsonl[.gz] and/or ConflictQA .json(l) files",
    )
    p.add_argument(
        "--stance-head",
        action="store_true",
        help="add a yes/no stance head, trained where a ConflictQA record's answer statements give the "
        "stance and blended into the pair probability for yes/no questions. Measured with the previous "
        "(two-block) recipe it adds nothing on ConflictQA (gpt4 0.862 vs 0.867 on 400 items), so the shipped "
        "adapter does not use it",
    )
    add_encoder_args(p, "conflict")
    add_train_args(p, batch_size=4)
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ragarbiter.assessors.backbone import BackboneSpec
    from ragarbiter.assessors.conflict.train import train_conflict
    from ragarbiter.training.args import lora_settings, report, train_config

    manifest = train_conflict(
        args.data,
        train_config(args),
        lora=lora_settings(args),
        spec=BackboneSpec(split=args.split, max_length=args.max_length),
        eval_fraction=args.eval_fraction,
        resume=args.resume,
        stance=args.stance_head,
    )
    return report(args, manifest)
