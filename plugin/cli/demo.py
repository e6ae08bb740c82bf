"""`ragarbiter demo`: index the Kestrel Bay corpus and answer three questions with the default pipeline."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ragarbiter.errors import EmptyCorpusError

from .common import add_json_arg, add_store_args, make_store, print_json, repo_root

DEMO_COLLECTION = "ragarbiter-demo"
DEMO_QUESTIONS = [
    "Who designed the Kestrel Bay lighthouse?",
    "When was the Kestrel Bay lighthouse first lit?",
    "What is it like to work at the east docks in Kestrel Bay?",
]


def find_corpus(explicit: str | None) -> Path:
    candidates = [Path(explicit)] if explicit else [Path("examples/corpus"), repo_root() / "examples" / "corpus"]
    for path in candidates:
        if path.exists():
            return path
    shown = ", ".join(str(c) for c in candidates)
    msg = f"Demo corpus not found (looked in {shown}). Run from a ragarbiter checkout or pass --corpus DIR."
    raise EmptyCorpusError(msg)


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="index the demo corpus and answer three questions",
        description="Index examples/corpus into the embedded store and run the default pipeline on three questions.",
    )
    add_store_args(p, collection=DEMO_COLLECTION)
    p.add_argument("--corpus", metavar="DIR", help="corpus folder (default: examples/corpus)")
    p.add_argument("-k", type=int, default=8, help="passages per question (default: 8)")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ragarbiter.registry import default_pipeline
    from ragarbiter.retrievers import index_paths

    from .render import render_context

    start = time.perf_counter()
    corpus = find_corpus(args.corpus)
    with make_store(args) as store:
        report = index_paths(store, [corpus], progress=not args.json)
        pipeline = default_pipeline(store, k=args.k)
        contexts = [pipeline.run(q) for q in DEMO_QUESTIONS]
    seconds = time.perf_counter() - start
    if args.json:
        print_json(
            {
                "indexed": report.to_dict(),
                "seconds": round(seconds, 2),
                "pipeline": [s.name for s in pipeline.stages],
                "results": [c.to_dict() for c in contexts],
            }
        )
        return 0
    print(
        f"Indexed {report.chunks} chunks from {corpus} into '{args.collection}' "
        f"({report.added} new). Pipeline: {' -> '.join(s.name for s in pipeline.stages)}\n"
    )
    for context in contexts:
        render_context(context)
        print()
    print(f"demo finished in {seconds:.1f}s")
    return 0
