"""`ragarbiter ask "QUESTION"`: retrieve, run the default pipeline, and answer with a local generator.

The answer streams as it is generated; then come the passages the generator read and every
decision. `--plain` answers from the same retrieval with no stages, so the two are comparable.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

from ragarbiter.types import Context

from .common import add_json_arg, add_query_args, add_store_args, make_store, print_json

ASK_K = 5  # passages the generator reads (small models answer worse from long contexts)
# The retriever fetches this many times k; the generator reads the first k that are left after the
# stages, so a dropped or demoted passage makes room for the next one instead of shrinking the context.
CANDIDATES_PER_K = 4
MAX_NEW_TOKENS = 64


def add_generator_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--generator",
        metavar="NAME_OR_DIR",
        default=None,
        help="the LLM that answers: smollm2-135m-instruct (default, offline), a local Hugging Face causal-LM "
        "folder, or a hub id already in the local cache",
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=MAX_NEW_TOKENS, help=f"answer length cap (default: {MAX_NEW_TOKENS})"
    )


def register(sub) -> None:
    p = sub.add_parser(
        "ask",
        help="answer a question with a local LLM, from context the default pipeline assessed",
        description="Retrieve, run the default pipeline, and stream a local generator's answer; then list the "
        "passages it read and every decision. --plain answers from the same retrieval with no stages.",
    )
    p.add_argument("question", help="the question")
    add_store_args(p)
    add_query_args(p, k=ASK_K, what="passages the generator reads")
    add_generator_args(p)
    p.add_argument("--plain", action="store_true", help="answer from the retrieved passages with no stages")
    add_json_arg(p)
    p.set_defaults(func=run)


@dataclass
class Contexts:
    """One retrieval, and what the generator reads from it without and with the stages."""

    plain: Context
    defended: Context


def candidates(k: int) -> int:
    return CANDIDATES_PER_K * k


def top(context: Context, k: int) -> Context:
    """The first `k` passages of `context`, with every decision kept."""
    return context.evolve(passages=list(context.passages[:k]))


def assess(pipeline, question: str, k: int) -> Contexts:
    """Retrieve once with the pipeline's retriever (built for `candidates(k)`), run its remaining
    stages on that retrieval, and keep the first `k` passages of each."""
    retrieved = pipeline.stages[0](Context.for_query(question))
    return Contexts(plain=top(retrieved, k), defended=top(pipeline.without_retrieval()(retrieved), k))


def texts(context: Context) -> list[str]:
    return [p.text for p in context.passages]


def run(args: argparse.Namespace) -> int:
    from ragarbiter.lm import load_generator
    from ragarbiter.registry import default_pipeline

    from .render import render_context

    if args.max_new_tokens < 1:
        from ragarbiter.errors import ConfigError

        raise ConfigError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}.")
    generator = load_generator(args.generator)
    with make_store(args) as store:
        pipeline = default_pipeline(store, k=candidates(args.k), mode=args.mode)
        both = assess(pipeline, args.question, args.k)
    context = both.plain if args.plain else both.defended
    start = time.perf_counter()
    if args.json:
        answer = generator.answer(args.question, texts(context), max_new_tokens=args.max_new_tokens)
    else:
        pieces = []
        sys.stdout.write("Answer: ")
        for piece in generator.stream(args.question, texts(context), max_new_tokens=args.max_new_tokens):
            pieces.append(piece)
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n\n")
        answer = "".join(pieces).strip()
    seconds = time.perf_counter() - start
    if args.json:
        print_json(
            {
                **context.to_dict(),
                "answer": answer,
                "generator": str(generator.path),
                "plain": args.plain,
                "generation_s": round(seconds, 2),
            }
        )
        return 0
    label = "plain retrieval, no stages" if args.plain else " -> ".join(s.name for s in pipeline.stages)
    print(f"The generator read these passages ({label}):")
    render_context(context)
    return 0
