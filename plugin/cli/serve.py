"""`ragarbiter serve`: the HTTP server (POST /query, POST /query/stream) over the default pipeline."""

from __future__ import annotations

import argparse
import dataclasses
import logging

from ragarbiter.config import ServerLimits

from .common import add_query_args, add_store_args, make_store

logger = logging.getLogger(__name__)


LIMIT_HELP = {
    "max_body_bytes": "largest request body in bytes; larger gets 413",
    "max_query_chars": "longest query in characters; longer gets 400",
    "max_k": "most passages a request may ask for; more gets 400",
    "workers": "pipelines running at once, each in a worker thread (concurrent ones share encoder passes)",
    "queue_depth": "requests waiting for a worker; more get 429 at once",
    "deadline_s": "seconds a request may take; the work stops at the next stage or batch and the client gets 503",
    "retry_after_s": "the Retry-After seconds sent with 429 and 503",
}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "serve",
        help="serve the pipeline over HTTP (JSON and Server-Sent Events)",
        description="Serve the default pipeline over HTTP. POST /query returns the JSON of "
        "`ragarbiter query --json`; POST /query/stream streams each decision as a "
        "Server-Sent Event while it is made, then the result. Past a limit the server answers "
        "413 (body), 400 (query length, k, a bad filter), 429 (every worker busy and the queue "
        "full) or 503 (deadline passed), with Retry-After on 429 and 503, in one JSON error shape. "
        "One process serves one embedded store folder. To run several workers or replicas, point "
        "them all at one Qdrant server with --url (embedded stores allow one process per folder); "
        "see docs/serving.md for a two-replica setup.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default: 8000)")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level (default: info)",
    )
    limits = parser.add_argument_group("limits (defaults suit one small machine)")
    defaults = ServerLimits()
    for field in dataclasses.fields(ServerLimits):
        flag = "--" + {"deadline_s": "deadline", "retry_after_s": "retry-after"}.get(
            field.name, field.name.replace("_", "-")
        )
        default = getattr(defaults, field.name)
        limits.add_argument(
            flag,
            dest=field.name,
            type=type(default),
            default=default,
            help=f"{LIMIT_HELP[field.name]} (default: {default})",
        )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch threads per forward pass (default: 1): the workers already run passes on every core at "
        "once, and more threads per pass oversubscribe a small machine",
    )
    add_store_args(parser)
    add_query_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ragarbiter.errors import ConfigError, require
    from ragarbiter.registry import default_pipeline

    require("fastapi", "serve", "ragarbiter serve")
    uvicorn = require("uvicorn", "serve", "ragarbiter serve")
    from ragarbiter.adapters.server import create_app

    if not 0 <= args.port <= 65535:
        msg = f"--port must lie in 0..65535, got {args.port}."
        raise ConfigError(msg)
    if args.torch_threads < 1:
        msg = f"--torch-threads must be >= 1, got {args.torch_threads}."
        raise ConfigError(msg)
    import torch

    torch.set_num_threads(args.torch_threads)
    store = make_store(args)
    store.require_collection()  # fail now, with the fix, rather than on the first request
    store.encoder.dimension  # load the encoder before the first request  # noqa: B018
    pipeline = default_pipeline(store, k=args.k, mode=args.mode)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("serving on %s: the server has no authentication; expose it only behind a proxy", args.host)
    limits = ServerLimits(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ServerLimits)})
    uvicorn.run(create_app(pipeline, limits=limits), host=args.host, port=args.port, log_level=args.log_level)
    return 0
