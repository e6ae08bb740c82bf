"""`ragarbiter serve`: the HTTP server (POST /query, POST /query/stream) over the default pipeline."""

from __future__ import annotations

import argparse
import logging

from .common import add_query_args, add_store_args, make_store

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "serve",
        help="serve the pipeline over HTTP (JSON and Server-Sent Events)",
        description="Serve the default pipeline over HTTP. POST /query returns the JSON of "
        "`ragarbiter query --json`; POST /query/stream streams each decision as a "
        "Server-Sent Event while it is made, then the result.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default: 8000)")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level (default: info)",
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
    store = make_store(args)
    store.require_collection()  # fail now, with the fix, rather than on the first request
    store.encoder.dimension  # load the encoder before the first request  # noqa: B018
    pipeline = default_pipeline(store, k=args.k, mode=args.mode)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("serving on %s: the server has no authentication; expose it only behind a proxy", args.host)
    uvicorn.run(create_app(pipeline), host=args.host, port=args.port, log_level=args.log_level)
    return 0
