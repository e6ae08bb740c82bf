"""Command-line options every `ragarbiter train <what>` command shares, and what they build."""

from __future__ import annotations

import argparse

from .config import LoraSettings, TrainConfig


def add_train_args(
    parser: argparse.ArgumentParser, *, epochs: float = 1.0, batch_size: int = 8, lr: float = 5e-4
) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the adapter, manifest and checkpoints")
    parser.add_argument(
        "--epochs", type=float, default=epochs, help=f"passes over the training data (default: {epochs})"
    )
    parser.add_argument(
        "--max-steps", type=int, default=None, metavar="N", help="stop after N optimizer steps (wins over --epochs)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=batch_size, help=f"examples per process and step (default: {batch_size})"
    )
    parser.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step (default: 1)")
    parser.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default: {lr})")
    parser.add_argument("--lora-r", type=int, default=8, help="LoRA rank (default: 8)")
    parser.add_argument("--lora-alpha", type=int, default=16, help="LoRA alpha (default: 16)")
    parser.add_argument(
        "--eval-fraction", type=float, default=0.05, help="share of examples held out for evaluation (default: 0.05)"
    )
    parser.add_argument(
        "--eval-every", type=int, default=0, metavar="N", help="evaluate every N steps (default: only at the end)"
    )
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        default=200,
        metavar="N",
        help="checkpoint every N steps (default: 200; 0 = never)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for data building, shuffling and initialisation (default: 0)"
    )
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is present")
    parser.add_argument(
        "--mixed-precision",
        choices=("no", "fp16", "bf16"),
        default="no",
        help="autocast precision (bf16 is fast on CPUs with AMX / AVX512-BF16) (default: no)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def report(args: argparse.Namespace, manifest: dict | None) -> int:
    """Print the outcome of a training run (nothing on the non-main processes of a multi-process run)."""
    if manifest is None:
        return 0
    if getattr(args, "json", False):
        import json
        import sys

        sys.stdout.write(json.dumps({"out": args.out, "metrics": manifest["metrics"], "run": manifest["run"]}) + "\n")
    else:
        print(f"adapter written to {args.out}; held-out metrics: {manifest['metrics']}")
    return 0


def train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        out_dir=args.out,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        lr=args.lr,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        cpu=args.cpu,
        mixed_precision=args.mixed_precision,
        progress=not args.no_progress,
    )


def lora_settings(args: argparse.Namespace) -> LoraSettings:
    return LoraSettings(r=args.lora_r, alpha=args.lora_alpha)
