"""A small HTTP server around a ragarbiter Pipeline (FastAPI + uvicorn) that holds under load.

- ``POST /query`` with ``{"query": "...", "k": 5, "mode": "hybrid", "filter": {...}}``
  returns the JSON of ``ragarbiter query --json`` (`Context.to_dict()`).
- ``POST /query/stream`` streams every decision as a Server-Sent Event while the pipeline
  runs (``event: passage_flagged``, ``data: {...}``), then ``event: result`` with the same
  JSON as ``/query``, or ``event: error``.
- ``GET /health`` answers ``{"status": "ok", ...}`` with the limits and the work in flight.

Limits (`ServerLimits`, each a `ragarbiter serve` option): the body size (413), the query length
and `k` (400), and the work admitted at once: `workers` pipelines run in a thread pool and at most
`queue_depth` more wait for one; past that a request is answered 429 at once, with Retry-After.
Each request has a deadline: the work itself stops at the next stage or encoder batch once it
passes (`ragarbiter.deadline`), and the client gets 503 with Retry-After. A client that goes away
cancels its request's budget the same way, so its worker is free again within one batch.
Concurrent requests share encoder passes (`ragarbiter.batching`). Every error, schema errors
included, has one JSON shape: ``{"error": message, "type": error class, "status": code}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

from ragarbiter import __version__
from ragarbiter.assessors.backbone import batching_stats
from ragarbiter.config import ServerLimits
from ragarbiter.deadline import Budget
from ragarbiter.errors import (
    ConfigError,
    DeadlineExceededError,
    EmptyQueryError,
    InvalidInputError,
    OverloadedError,
    RagArbiterError,
    RequestTooLargeError,
    StoreLockedError,
    StoreUnreachableError,
    UnknownCollectionError,
    require,
)

require("fastapi", "serve", "ragarbiter serve")
require("uvicorn", "serve", "ragarbiter serve")

import uvicorn  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import Response, StreamingResponse  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402
from starlette.exceptions import HTTPException  # noqa: E402

from ragarbiter.events import Event, QueueSink  # noqa: E402
from ragarbiter.stage import Pipeline  # noqa: E402
from ragarbiter.types import Context  # noqa: E402

from ._common import LazyPipeline, call_options  # noqa: E402

logger = logging.getLogger(__name__)

__all__ = ["BackgroundServer", "QueryRequest", "ServerLimits", "create_app", "sse"]


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


def json_response(obj: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_dumps(obj), status_code=status_code, media_type="application/json", headers=headers)


def sse(event: str, data: Any) -> str:
    """One Server-Sent Event frame."""
    return f"event: {event}\ndata: {_dumps(data)}\n\n"


def error_status(exc: BaseException) -> int:
    if isinstance(exc, RequestTooLargeError):
        return 413
    if isinstance(exc, (InvalidInputError, ConfigError)):
        return 400
    if isinstance(exc, UnknownCollectionError):
        return 404
    if isinstance(exc, OverloadedError):
        return 429
    if isinstance(exc, (StoreUnreachableError, StoreLockedError, DeadlineExceededError)):
        return 503
    return 500


def error_body(exc: BaseException, status: int | None = None) -> dict[str, Any]:
    """The one JSON shape of every error the server sends."""
    return {"error": str(exc), "type": type(exc).__name__, "status": status or error_status(exc)}


def error_response(exc: BaseException, limits: ServerLimits, status: int | None = None) -> Response:
    status = status or error_status(exc)
    headers = {"Retry-After": str(limits.retry_after_s)} if status in (429, 503) else None
    return json_response(error_body(exc, status), status, headers)


def validate(body: QueryRequest, limits: ServerLimits) -> dict[str, Any]:
    """The call options of a request, or the one error that names what to change."""
    if not body.query.strip():
        msg = f"The query is empty ({body.query!r}). Pass a question with at least one word."
        raise EmptyQueryError(msg)
    if len(body.query) > limits.max_query_chars:
        msg = (
            f"The query is {len(body.query)} characters long; this server takes at most "
            f"{limits.max_query_chars} (--max-query-chars). Send a shorter question."
        )
        raise InvalidInputError(msg)
    options = body.options()
    if options.get("k", 0) > limits.max_k:
        msg = f"k={options['k']} is more than this server returns (at most {limits.max_k}, --max-k). Ask for fewer."
        raise InvalidInputError(msg)
    if options.get("filter") is not None:
        from ragarbiter.retrievers.store import build_filter

        build_filter(options["filter"])  # names the bad field now, as a 400, not inside a worker
    return options


class Admission:
    """`workers` pipelines at once in a thread pool, at most `queue_depth` more waiting; the rest get 429.

    A request's slot is held until its work has really stopped (not when its client stops waiting),
    so an abandoned request never makes room for more work than the pool can run.
    """

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self.pool = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="ragarbiter-worker")
        self._lock = threading.Lock()
        self.in_flight = 0
        self.rejected = 0

    def submit(self, work: Callable[[], Any]) -> Future:
        with self._lock:
            if self.in_flight >= self.limits.workers + self.limits.queue_depth:
                self.rejected += 1
                msg = (
                    f"The server is busy: {self.in_flight} requests are running or queued "
                    f"(--workers {self.limits.workers}, --queue-depth {self.limits.queue_depth}). "
                    f"Retry after {self.limits.retry_after_s} s."
                )
                raise OverloadedError(msg)
            self.in_flight += 1
        future = self.pool.submit(work)
        future.add_done_callback(self._release)
        return future

    def _release(self, _: Future) -> None:
        with self._lock:
            self.in_flight -= 1

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _wrapped(future: Future) -> asyncio.Future:
    """`future` as an asyncio future whose error is always retrieved (an abandoned request's error is expected)."""
    waiting = asyncio.wrap_future(future)
    waiting.add_done_callback(lambda f: f.cancelled() or f.exception())
    return waiting


async def _until_disconnected(request: Request, every: float = 0.05) -> None:
    while not await request.is_disconnected():
        await asyncio.sleep(every)


async def _answer(request: Request, future: Future, budget: Budget) -> Any:
    """The result of `future`, or `DeadlineExceededError` at the deadline; a client that leaves cancels the work."""
    waiting = _wrapped(future)
    watcher = asyncio.create_task(_until_disconnected(request))
    try:
        done, _ = await asyncio.wait({waiting, watcher}, timeout=budget.remaining(), return_when="FIRST_COMPLETED")
        if waiting in done:
            return waiting.result()
        if watcher in done:
            budget.cancel("the client went away")
            raise DeadlineExceededError("The client went away; the work was stopped.")
        budget.cancel(f"its {budget.seconds:g} s deadline passed")
        msg = (
            f"The request ran past its {budget.seconds:g} s deadline (--deadline) and was stopped. "
            f"Retry later, or ask for fewer passages (k)."
        )
        raise DeadlineExceededError(msg)
    finally:
        watcher.cancel()


def _run(pipeline: Pipeline, query: str, options: dict[str, Any], budget: Budget, sinks: list) -> Context:
    with budget.active():
        budget.check("the start, after waiting for a worker")
        return pipeline.run(query, sinks=sinks, **options)


async def _stream(future: Future, queue: asyncio.Queue, budget: Budget, query: str) -> AsyncIterator[str]:
    """SSE frames: each event as its stage finishes, then the result (or an error)."""
    waiting = _wrapped(future)
    try:
        while not waiting.done() or not queue.empty():
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, waiting}, timeout=budget.remaining(), return_when="FIRST_COMPLETED")
            if getter in done:
                item = getter.result()
                if isinstance(item, Event):
                    yield sse(item.kind, item.to_dict())
                continue
            getter.cancel()
            if not done:  # the deadline passed with nothing new
                budget.cancel("its deadline passed")
                exc = DeadlineExceededError(
                    f"The request ran past its {budget.seconds:g} s deadline (--deadline) and was stopped."
                )
                yield sse("error", error_body(exc))
                return
        try:
            context = waiting.result()
        except RagArbiterError as exc:
            yield sse("error", error_body(exc))
        except Exception as exc:
            logger.error("query %.80r failed: %s: %s", query, type(exc).__name__, exc)
            yield sse("error", error_body(exc, 500))
        else:
            yield sse("result", context.to_dict())
    finally:
        if not future.done():  # the client went away, or the deadline passed: stop the work
            budget.cancel("the client went away")


class BodyLimit:
    """ASGI middleware: bodies larger than `max_bytes` get 413 (by Content-Length, or while they stream in)."""

    def __init__(self, app: Any, limits: ServerLimits) -> None:
        self.app, self.limits = app, limits

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.max_body_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_large = RequestTooLargeError(
            f"The request body is larger than this server accepts ({limit} bytes, --max-body-bytes). "
            f"Send a shorter query and filter."
        )
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await error_response(too_large, self.limits)(scope, receive, send)
            return
        # Read the body here (it is small by definition), so that an oversized one is refused before
        # the app starts on it, then hand the app the same messages.
        messages, seen = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > limit:
                await error_response(too_large, self.limits)(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def replayed() -> dict:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)


def _schema_error(exc: RequestValidationError) -> InvalidInputError:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(x) for x in error.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return InvalidInputError(
        "The request does not match the schema: " + "; ".join(parts) + ". "
        'Send JSON like {"query": "...", "k": 5, "mode": "hybrid", "filter": {"topic": "..."}}.'
    )


def create_app(pipeline: Pipeline | None = None, *, store: Any = None, limits: ServerLimits | None = None) -> FastAPI:
    """The ASGI app. With no arguments it serves the default pipeline over the default store."""
    limits = limits or ServerLimits()
    lazy = LazyPipeline(pipeline, store, retrieve=True, owner="create_app")
    admission = Admission(limits)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        admission.close()

    app = FastAPI(
        title="ragarbiter",
        version=__version__,
        description="Trustworthy context for RAG chains: every decision, streamed.",
        lifespan=lifespan,
    )
    app.state.admission = admission
    app.add_middleware(BodyLimit, limits=limits)

    @app.exception_handler(RagArbiterError)
    async def _on_error(request: Request, exc: RagArbiterError) -> Response:
        status = error_status(exc)
        if status >= 500 and status != 503:
            logger.error("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(exc, limits, status)

    @app.exception_handler(RequestValidationError)
    async def _on_schema(request: Request, exc: RequestValidationError) -> Response:
        return error_response(_schema_error(exc), limits, 400)

    @app.exception_handler(HTTPException)
    async def _on_http(request: Request, exc: HTTPException) -> Response:
        return json_response(
            {"error": str(exc.detail), "type": "HTTPException", "status": exc.status_code}, exc.status_code
        )

    @app.exception_handler(Exception)
    async def _on_bug(request: Request, exc: Exception) -> Response:
        logger.error("%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return error_response(exc, limits, 500)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "in_flight": admission.in_flight,
            "rejected": admission.rejected,
            "limits": asdict(limits),
            "encoder_passes": batching_stats(),
        }

    @app.post("/query")
    async def query(body: QueryRequest, request: Request) -> Response:
        options = validate(body, limits)
        budget = Budget(limits.deadline_s)
        target = lazy.get()
        future = admission.submit(lambda: _run(target, body.query, options, budget, []))
        context = await _answer(request, future, budget)
        return json_response(context.to_dict())

    @app.post("/query/stream")
    async def query_stream(body: QueryRequest, request: Request) -> StreamingResponse:
        options = validate(body, limits)  # invalid or unadmitted requests fail before the stream starts
        queue: asyncio.Queue = asyncio.Queue()
        sink = QueueSink(queue, asyncio.get_running_loop())
        budget = Budget(limits.deadline_s)
        target = lazy.get()
        future = admission.submit(lambda: _run(target, body.query, options, budget, [sink]))
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        frames = _stream(future, queue, budget, body.query)
        return StreamingResponse(frames, media_type="text/event-stream", headers=headers)

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
