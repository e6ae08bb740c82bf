"""`ragarbiter demo`: index the Kestrel Bay corpus and answer three questions, with and without ragarbiter.

For each question one retrieval feeds two answers from the local generator: plain RAG (the
retrieved passages as they came) and ragarbiter (the same passages after the default stages).
The decisions that explain any difference follow.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ragarbiter.errors import EmptyCorpusError

from .ask import add_generator_args, assess, candidates, texts
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
        help="index the demo corpus and answer three questions with and without ragarbiter",
        description="Index examples/corpus into the embedded store; for three questions, answer with the local "
        "generator from plain retrieval and from the same retrieval after the default pipeline, side by side.",
    )
    add_store_args(p, collection=DEMO_COLLECTION)
    p.add_argument("--corpus", metavar="DIR", help="corpus folder (default: examples/corpus)")
    p.add_argument("-k", type=int, default=5, help="passages retrieved per question (default: 5)")
    add_generator_args(p)
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ragarbiter.lm import load_generator
    from ragarbiter.registry import default_pipeline
    from ragarbiter.retrievers import index_paths

    from .render import render_answers, render_context

    start = time.perf_counter()
    corpus = find_corpus(args.corpus)
    generator = load_generator(args.generator)
    with make_store(args) as store:
        report = index_paths(store, [corpus], progress=not args.json)
        pipeline = default_pipeline(store, k=candidates(args.k))
        assessed = [assess(pipeline, q, args.k) for q in DEMO_QUESTIONS]
    items = [(q, texts(c)) for q, both in zip(DEMO_QUESTIONS, assessed) for c in (both.plain, both.defended)]
    answers = generator.answers(items, max_new_tokens=args.max_new_tokens, progress=False)
    pairs = [(answers[2 * i], answers[2 * i + 1]) for i in range(len(DEMO_QUESTIONS))]
    contexts = [both.defended for both in assessed]
    seconds = time.perf_counter() - start
    if args.json:
        print_json(
            {
                "indexed": report.to_dict(),
                "seconds": round(seconds, 2),
                "pipeline": [s.name for s in pipeline.stages],
                "generator": str(generator.path),
                "results": [
                    {**c.to_dict(), "answers": {"plain": plain, "ragarbiter": ours}}
                    for c, (plain, ours) in zip(contexts, pairs)
                ],
            }
        )
        return 0
    print(
        f"Indexed {report.chunks} chunks from {corpus} into '{args.collection}' "
        f"({report.added} new). Pipeline: {' -> '.join(s.name for s in pipeline.stages)}. "
        f"Generator: {generator.path.name}\n"
    )
    for context, (plain, ours) in zip(contexts, pairs):
        render_answers(context.query, plain, ours)
        print("What ragarbiter decided (the passages the ragarbiter answer read):")
        render_context(context)
        print()
    print(f"demo finished in {seconds:.1f}s")
    return 0
