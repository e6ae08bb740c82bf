"""A small HTTP server around a ragarbiter Pipeline (FastAPI + uvicorn).

- ``POST /query`` with ``{"query": "...", "k": 5, "mode": "hybrid", "filter": {...}}``
  returns the JSON of ``ragarbiter query --json`` (`Context.to_dict()`).
- ``POST /query/stream`` streams every decision as a Server-Sent Event while the pipeline
  runs (``event: passage_flagged``, ``data: {...}``), then ``event: result`` with the same
  JSON as ``/query``, or ``event: error``.
- ``GET /health`` answers ``{"status": "ok"}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from ragarbiter import __version__
from ragarbiter.errors import (
    ConfigError,
    InvalidInputError,
    RagArbiterError,
    StoreLockedError,
    StoreUnreachableError,
    UnknownCollectionError,
    require,
)

require("fastapi", "serve", "ragarbiter serve")
require("uvicorn", "serve", "ragarbiter serve")

import uvicorn  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import Response, StreamingResponse  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from ragarbiter.events import Event, QueueSink  # noqa: E402
from ragarbiter.stage import Pipeline  # noqa: E402

from ._common import LazyPipeline, call_options  # noqa: E402

logger = logging.getLogger(__name__)

__all__ = ["BackgroundServer", "QueryRequest", "create_app", "sse"]


class QueryRequest(BaseModel):
    """The body of ``POST /query`` and ``POST /query/stream``."""

    query: str = Field(description="The user question.")
    k: int | None = Field(default=None, description="Passages to return (default: the server's -k).")
    mode: str | None = Field(default=None, description="Search mode: hybrid, dense or sparse.")
    filter: dict[str, Any] | None = Field(default=None, description='Metadata filter, e.g. {"topic": "lighthouse"}.')

    def options(self) -> dict[str, Any]:
        given = {"k": self.k, "mode": self.mode, "filter": self.filter}
        return call_options({}, {key: value for key, value in given.items() if value is not None}, "/query")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, ensure_ascii=False)


def json_response(obj: Any, status_code: int = 200) -> Response:
    return Response(_dumps(obj), status_code=status_code, media_type="application/json")


def sse(event: str, data: Any) -> str:
    """One Server-Sent Event frame."""
    return f"event: {event}\ndata: {_dumps(data)}\n\n"


def error_status(exc: RagArbiterError) -> int:
    if isinstance(exc, (InvalidInputError, ConfigError)):
        return 400
    if isinstance(exc, UnknownCollectionError):
        return 404
    if isinstance(exc, (StoreUnreachableError, StoreLockedError)):
        return 503
    return 500


def error_body(exc: BaseException) -> dict[str, str]:
    return {"error": str(exc), "type": type(exc).__name__}


async def _stream(pipeline: Pipeline, query: str, options: dict[str, Any]) -> AsyncIterator[str]:
    """SSE frames: each event as its stage finishes, then the result (or an error)."""
    queue: asyncio.Queue = asyncio.Queue()
    sink = QueueSink(queue, asyncio.get_running_loop())
    done = object()

    async def run() -> Any:
        try:
            return await pipeline.arun(query, sinks=[sink], **options)
        finally:
            await queue.put(done)

    task = asyncio.create_task(run())
    try:
        while (item := await queue.get()) is not done:
            if isinstance(item, Event):
                yield sse(item.kind, item.to_dict())
        try:
            context = await task
        except RagArbiterError as exc:
            yield sse("error", {**error_body(exc), "status": error_status(exc)})
        except Exception as exc:
            logger.exception("query %r failed", query)
            yield sse("error", {**error_body(exc), "status": 500})
        else:
            yield sse("result", context.to_dict())
    finally:
        if not task.done():  # the client went away: stop the work
            task.cancel()


def create_app(pipeline: Pipeline | None = None, *, store: Any = None) -> FastAPI:
    """The ASGI app. With no arguments it serves the default pipeline over the default store."""
    lazy = LazyPipeline(pipeline, store, retrieve=True, owner="create_app")
    app = FastAPI(
        title="ragarbiter",
        version=__version__,
        description="Trustworthy context for RAG chains: every decision, streamed.",
    )

    @app.exception_handler(RagArbiterError)
    async def _on_error(request: Request, exc: RagArbiterError) -> Response:
        status = error_status(exc)
        if status >= 500:
            logger.error("%s %s failed: %s", request.method, request.url.path, exc)
        return json_response(error_body(exc), status)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.post("/query")
    async def query(body: QueryRequest) -> Response:
        context = await lazy.get().arun(body.query, **body.options())
        return json_response(context.to_dict())

    @app.post("/query/stream")
    async def query_stream(body: QueryRequest) -> StreamingResponse:
        options = body.options()  # invalid options fail with 400 before the stream starts
        if not body.query.strip():
            msg = f"The query is empty ({body.query!r}). Pass a question with at least one word."
            raise InvalidInputError(msg)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            _stream(lazy.get(), body.query, options), media_type="text/event-stream", headers=headers
        )

    return app


def free_port_socket(host: str = "127.0.0.1") -> socket.socket:
    """A listening-ready socket bound to a free port on `host`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


class BackgroundServer:
    """Runs an app with uvicorn in a daemon thread on `host` and a free port (tests, benchmarks).

    >>> with BackgroundServer(create_app(pipeline)) as server:   # doctest: +SKIP
    ...     httpx.post(server.url + "/query", json={"query": "..."})
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", *, backlog: int = 4096) -> None:
        self._socket = free_port_socket(host)
        self.host, self.port = host, self._socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, backlog=backlog, timeout_keep_alive=30)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, name="ragarbiter-server", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                msg = f"The server on {self.url} did not start within {timeout:.0f}s; see the log above."
                raise RuntimeError(msg)
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
