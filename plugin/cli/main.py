"""`ragarbiter` command line: index, query, demo, serve, train, bench.

Each command lives in its own module exposing `register(subparsers)`; bench and train
targets live in `bench_<name>.py` / `train_<name>.py` and register under `bench` / `train`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ragarbiter import __version__
from ragarbiter.errors import RagArbiterError

COMMANDS = ["index", "query", "demo", "serve", "testbed", "mixtures"]
BENCHES = [
    "retrieval",
    "latency",
    "serve",
    "conflict",
    "poison",
    "inappropriate",
    "assessors",
    "testbed",
    "attention_sort",
    "care",
    "rw",
]
TRAINERS: list[str] = ["conflict", "inappropriate", "care", "rw"]


def _register_all(sub, names: Sequence[str], prefix: str) -> None:
    for name in names:
        try:
            module = importlib.import_module(f"ragarbiter.cli.{prefix}{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("ragarbiter.cli."):
                continue  # not built in this version
            raise
        module.register(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ragarbiter", description="Trustworthy context for RAG chains.")
    parser.add_argument("--version", action="version", version=f"ragarbiter {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _register_all(sub, COMMANDS, "")
    bench = sub.add_parser("bench", help="quality and speed benchmarks with a baseline from the same run")
    bench_sub = bench.add_subparsers(dest="bench", metavar="NAME")
    bench_sub.required = True
    _register_all(bench_sub, BENCHES, "bench_")
    train = sub.add_parser("train", help="train an adapter (LoRA through peft)")
    train_sub = train.add_subparsers(dest="target", metavar="WHAT")
    train_sub.required = True
    _register_all(train_sub, TRAINERS, "train_")
    return parser


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "sentence_transformers", "transformers", "urllib3"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except RagArbiterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
