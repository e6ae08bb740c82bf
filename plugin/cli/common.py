"""Options and output helpers shared by the CLI commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ragarbiter.config import DEFAULT_COLLECTION, ENGINES, SEARCH_MODES, StoreConfig


def add_store_args(parser: argparse.ArgumentParser, collection: str = DEFAULT_COLLECTION) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--store",
        metavar="DIR",
        help="embedded Qdrant folder (default: per-user data folder; ':memory:' for a throwaway store)",
    )
    where.add_argument("--url", metavar="URL", help="Qdrant server or cluster, e.g. http://localhost:6333")
    parser.add_argument("--collection", default=collection, help=f"collection name (default: {collection})")
    add_engine_arg(parser)


def add_engine_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="embedded engine: edge (Qdrant Edge, compiled), python (qdrant-client local mode) or auto "
        "(edge when installed) (default: auto)",
    )


def add_query_args(parser: argparse.ArgumentParser, k: int = 10, what: str = "passages to return") -> None:
    parser.add_argument("-k", type=int, default=k, help=f"{what} (default: {k})")
    parser.add_argument("--mode", choices=SEARCH_MODES, default="hybrid", help="search mode (default: hybrid)")


def add_json_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")


def store_config(args: argparse.Namespace) -> StoreConfig:
    return StoreConfig(
        collection=args.collection,
        path=args.store,
        url=args.url,
        api_key=os.environ.get("QDRANT_API_KEY"),
        engine=getattr(args, "engine", "auto"),
    )


def make_store(args: argparse.Namespace):
    from ragarbiter.retrievers import QdrantStore

    return QdrantStore(store_config(args))


def print_json(obj: Any) -> None:
    """One JSON object on one line (the contract for --json)."""
    sys.stdout.write(json.dumps(obj, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def repo_root() -> Path:
    """The source checkout this package runs from (editable installs), for examples/."""
    return Path(__file__).resolve().parents[2]
