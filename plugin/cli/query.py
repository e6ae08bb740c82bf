"""`ragarbiter query "QUESTION"`: run the default pipeline and show what it decided."""

from __future__ import annotations

import argparse

from .common import add_json_arg, add_query_args, add_store_args, make_store, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "query",
        help="retrieve and assess context for a question",
        description="Run the default pipeline (retrieve, then assess) for one question.",
    )
    p.add_argument("question", help="the question")
    add_store_args(p)
    add_query_args(p)
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ragarbiter.registry import default_pipeline

    from .render import render_context

    with make_store(args) as store:
        context = default_pipeline(store, k=args.k, mode=args.mode).run(args.question)
    if args.json:
        print_json(context.to_dict())
    else:
        render_context(context)
    return 0
