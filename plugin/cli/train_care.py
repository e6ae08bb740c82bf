"""`ragarbiter train care --base-model PATH --stage pretrain|finetune --data FILE --out DIR`: CARE's assessor."""

from __future__ import annotations

import argparse

from .common import add_json_arg


def register(sub) -> None:
    from ragarbiter.training.args import add_train_args

    p = sub.add_parser(
        "care",
        help="train CARE's context assessor (stage 1: reconstruction, stage 2: conflict-aware fine-tuning)",
        description="Stage 1 (pretrain) trains LoRA, memory tokens and projector so the base LM can regenerate a "
        "passage from its soft prompt. Stage 2 (finetune, with --init from stage 1) labels each question "
        "closed-book with the base LM: unknown answers get a positive passage and the raw-passage teacher "
        "(grounded), known ones a hard negative and the no-context teacher (adversarial); the loss is "
        "LM + lambda * KL(student || teacher).",
    )
    p.add_argument("--base-model", required=True, metavar="PATH", help="a local causal LM folder (save_pretrained)")
    p.add_argument("--stage", required=True, choices=("pretrain", "finetune"))
    p.add_argument("--data", nargs="*", default=[], metavar="FILE", help="LitM NQ-Open .jsonl[.gz] files")
    p.add_argument(
        "--testbed",
        action="store_true",
        help="also build examples from the testbed world of --base-model (a model from `ragarbiter testbed train`)",
    )
    p.add_argument("--init", metavar="DIR", help="start from this CARE folder (stage 1 output for stage 2)")
    p.add_argument("--lambda", dest="lam", type=float, default=2.0, help="weight of the KL term (default: 2.0)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="questions per data source")
    add_train_args(p, batch_size=4, lr=1e-3)
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ragarbiter.assessors.care.train import train_care
    from ragarbiter.training.args import report, train_config

    manifest = train_care(
        args.base_model,
        args.stage,
        args.data,
        train_config(args),
        init=args.init,
        testbed=args.testbed,
        lam=args.lam,
        limit=args.limit,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        eval_fraction=args.eval_fraction,
        resume=args.resume,
    )
    return report(args, manifest)
