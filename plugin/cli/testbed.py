"""`ragarbiter testbed train --size tiny|small --seed S --out DIR`: the closed-world testbed model."""

from __future__ import annotations

import argparse

from .common import add_json_arg, print_json


def register(sub) -> None:
    p = sub.add_parser("testbed", help="the closed-world conflict testbed (a synthetic world and a small LM)")
    inner = p.add_subparsers(dest="testbed_command", metavar="ACTION")
    inner.required = True
    t = inner.add_parser(
        "train",
        help="generate the world and train its small causal LM",
        description="Generate a fictional world from the seed, build a byte-level BPE tokenizer on its text and "
        "train a LlamaForCausalLM from scratch on fact text (parametric memory) plus RAG-format examples "
        "(reading), with the project's trainer. Saves with save_pretrained plus a manifest holding the "
        "seed, the sizes, the data and the closed-book accuracy.",
    )
    t.add_argument("--size", choices=("tiny", "small"), default="small", help="tiny: tests; small: the benchmark model")
    t.add_argument("--seed", type=int, default=0, help="world and training seed (default: 0)")
    t.add_argument(
        "--out", metavar="DIR", help="output folder (default: the per-user cache, <data dir>/testbed/<size>-seed<S>)"
    )
    t.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the size's own)")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_json_arg(t)
    t.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from ragarbiter.testbed import cached_model_dir, train_testbed

    out = args.out or cached_model_dir(args.size, args.seed)
    manifest = train_testbed(
        args.size, args.seed, out, steps=args.steps, resume=args.resume, progress=not args.no_progress
    )
    if not manifest:
        return 0
    summary = {
        "out": str(out),
        "closed_book": manifest["closed_book"],
        "metrics": manifest["metrics"],
        "wall_seconds": manifest["run"].get("wall_seconds"),
    }
    if args.json:
        print_json(summary)
    else:
        print(
            f"testbed model written to {out}: closed-book accuracy {manifest['closed_book']}, "
            f"{summary['wall_seconds']} s"
        )
    return 0
