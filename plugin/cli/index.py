"""`ragarbiter index PATH...`: load, chunk and upsert files (idempotent, resumable)."""

from __future__ import annotations

import argparse

from .common import add_json_arg, add_store_args, make_store, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "index",
        help="index .txt, .md and .jsonl files into a Qdrant collection",
        description="Index files into a collection. Re-running adds nothing twice; an interrupted run resumes.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    add_store_args(p)
    p.add_argument("--chunk-tokens", type=int, default=200, help="chunk size in encoder tokens (default: 200)")
    p.add_argument("--overlap", type=int, default=40, help="overlap between chunks in tokens (default: 40)")
    p.add_argument("--batch-size", type=int, default=64, help="chunks per upsert batch (default: 64)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ragarbiter.config import ChunkConfig
    from ragarbiter.retrievers import index_paths

    chunking = ChunkConfig(chunk_tokens=args.chunk_tokens, overlap_tokens=args.overlap)
    with make_store(args) as store:
        report = index_paths(
            store, args.paths, chunk_config=chunking, batch_size=args.batch_size, progress=not args.no_progress
        )
        total = store.count()
    result = {**report.to_dict(), "collection": args.collection, "points": total}
    if args.json:
        print_json(result)
    else:
        print(
            f"indexed {report.files} files -> {report.chunks} chunks into '{args.collection}': "
            f"{report.added} new, {report.skipped} already present; {total} points in the collection"
        )
        for skipped in report.skipped_files:
            print(f"  skipped {skipped}")
    return 0
