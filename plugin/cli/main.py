"""`ragarbiter` command line: index, query, demo, serve, train, bench.

Each of the CLI's own commands lives in its own module exposing `register(subparsers)`. The
`train` and `bench` commands are derived: one per method folder with a `train.py` / `bench.py`
(`ragarbiter.assessors.methods`), plus the CLI's own benches (`bench_<name>.py`, about retrieval,
serving, latency and the testbed). All of them run through `runner`. Only the command asked for
is imported, so `--help` and the command list load no model code.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from ragarbiter import __version__
from ragarbiter.errors import RagArbiterError

from . import runner

COMMANDS = ["index", "query", "ask", "demo", "serve", "testbed", "mixtures"]
# The CLI's own benches (not a method's), run by `runner`: name -> one-line help.
BENCHES = {
    "retrieval": "retrieval quality: dense, sparse, hybrid and MaxSim reranking against each other",
    "latency": "ingestion rate and query latency on a synthetic embedded store",
    "serve": "load-test the HTTP server against the same pipeline called in-process",
    "startup": "cold start of `ragarbiter query` in a fresh process, and a warm query, against the old loaders",
    "assessors": "latency of the default assessor stages per query, and a pairwise-conflict baseline",
    "testbed": "every stage on the closed-world testbed model, against plain RAG",
    "rag": "a real generator's answers under corpus poisoning: closed book, plain RAG, each stage, all stages",
}


def _selected(argv: Sequence[str]) -> tuple[str | None, str | None]:
    """The command and its first argument (`bench conflict` -> ("bench", "conflict")), before parsing."""
    words = [w for w in argv if not w.startswith("-")]
    return (words[0] if words else None), (words[1] if len(words) > 1 else None)


def _add_group(sub, kind: str, help: str, chosen: str | None, load_all: bool) -> None:
    from ragarbiter.assessors.methods import FOLDER, methods

    group = sub.add_parser(kind, help=help).add_subparsers(dest=kind, metavar="NAME")
    group.required = True
    entries: dict[str, tuple[str, object, tuple[str, ...]]] = {}
    if kind == "bench":
        for name, text in BENCHES.items():
            entries[name] = (text, functools.partial(importlib.import_module, f"ragarbiter.cli.bench_{name}"), ())
    for method in methods().values():
        if (FOLDER / method.name / f"{kind}.py").is_file():
            entries[method.name] = (method.summary, functools.partial(method.module, kind), method.aliases)
    for name, (text, load, aliases) in sorted(entries.items()):
        asked = load_all or chosen == name or chosen in aliases
        runner.add_command(group, name, text, load if asked else None, kind, aliases)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`, with only the `bench` / `train` command it names imported (all of them without argv)."""
    command, name = _selected(argv or [])
    load_all = argv is None
    parser = argparse.ArgumentParser(prog="ragarbiter", description="Trustworthy context for RAG chains.")
    parser.add_argument("--version", action="version", version=f"ragarbiter {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMANDS:
        importlib.import_module(f"ragarbiter.cli.{module}").register(sub)
    _add_group(
        sub,
        "bench",
        "quality and speed benchmarks with a baseline from the same run",
        name if command == "bench" else None,
        load_all,
    )
    _add_group(sub, "train", "train an adapter (LoRA through peft)", name if command == "train" else None, load_all)
    return parser


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "sentence_transformers", "transformers", "urllib3"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if not args.verbose:
        # Model loads from local folders take a second: no per-load bars from the Hugging Face
        # libraries (read when they are first imported). ragarbiter's own bars are unaffected.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
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
