"""Load-test `ragarbiter serve` on loopback: errors, latency percentiles and requests per second.

The server runs in-process (uvicorn in a thread, 127.0.0.1, a free port) over a small
synthetic `:memory:` store; an async HTTP client keeps `--concurrency` requests in flight
until `--requests` are done (each worker has its own keep-alive connection). The baseline is
the same pipeline called in-process (`Pipeline.arun`, same concurrency, no HTTP), measured in
the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ragarbiter.stats import latency_summary

logger = logging.getLogger(__name__)

_PLACES = ["Kestrel Bay", "Tarnby", "Vessel Head", "Gannet Point", "Skarv", "Holmvik", "Lenne", "Sorrel"]
_THINGS = [
    "lighthouse",
    "harbour wall",
    "grain mill",
    "stone bridge",
    "school",
    "fish market",
    "railway station",
    "museum",
    "chapel",
    "library",
    "observatory",
    "ferry pier",
]
_PEOPLE = ["Margit Holm", "Anders Lunde", "Ingrid Halvorsen", "Per Aas", "Solveig Berg", "Tor Nygaard"]


def synthetic_corpus(n: int, seed: int = 0) -> tuple[list[Any], list[str]]:
    """`n` short factual passages and one question per passage, reproducible from `seed`."""
    from ragarbiter.types import Passage

    rng = random.Random(seed)
    passages, questions = [], []
    for i in range(n):
        place, thing, person = rng.choice(_PLACES), rng.choice(_THINGS), rng.choice(_PEOPLE)
        year = rng.randint(1820, 1990)
        text = (
            f"The {thing} of {place} (record {i}) was built in {year} under {person}, "
            f"and it was restored {rng.randint(2, 9)} times since."
        )
        passages.append(
            Passage(text, source=f"synthetic/{place.lower().replace(' ', '-')}.md", metadata={"topic": thing})
        )
        questions.append(f"When was the {thing} of {place} built?")
    return passages, questions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=200, help="requests in flight (default: 200)")
    parser.add_argument("--requests", type=int, default=1000, help="requests in total (default: 1000)")
    parser.add_argument("--passages", type=int, default=200, help="size of the synthetic store (default: 200)")
    parser.add_argument("-k", type=int, default=5, help="passages per query (default: 5)")
    parser.add_argument(
        "--endpoint",
        choices=["query", "stream"],
        default="query",
        help="POST /query or POST /query/stream (default: query)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="per-request timeout in seconds (default: 120)")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the in-process baseline")


def summarize(latencies: Sequence[float], errors: int, wall: float) -> dict[str, Any]:
    stats: dict[str, Any] = {
        "errors": errors,
        "ok": len(latencies),
        "wall_s": round(wall, 3),
        "rps": round((len(latencies) + errors) / wall, 1) if wall > 0 else 0.0,
    }
    if latencies:
        stats.update(latency_summary(latencies, quantiles=(50, 95, 99)), max_ms=round(1000 * max(latencies), 1))
        del stats["n"]  # the same as "ok"
    return stats


async def drive(
    call: Callable[[int, int], Awaitable[bool]], n: int, concurrency: int
) -> tuple[list[float], int, float, list[str]]:
    """`concurrency` workers share `n` calls; worker w runs `call(i, w)`. Times each success."""
    todo = iter(range(n))  # shared: each worker takes the next call number
    latencies: list[float] = []
    failures: list[str] = []

    async def worker(w: int) -> None:
        for i in todo:
            start = time.perf_counter()
            try:
                ok = await call(i, w)
            except Exception as exc:  # count, keep going, report a few
                ok = False
                failures.append(f"{type(exc).__name__}: {exc}")
            if ok:
                latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    wall = time.perf_counter() - start
    return latencies, n - len(latencies), wall, failures


async def _load(url: str, path: str, questions: list[str], args: argparse.Namespace):
    """One client (one keep-alive connection) per worker, like `concurrency` independent users.

    A single shared httpx client with hundreds of pooled connections spends more CPU in
    its pool than the server spends answering, which would measure the client, not the server.
    """
    import httpx

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [httpx.AsyncClient(base_url=url, limits=limits, timeout=args.timeout) for _ in range(args.concurrency)]

    async def call(i: int, w: int) -> bool:
        response = await clients[w].post(path, json={"query": questions[i % len(questions)], "k": args.k})
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        if path.endswith("/stream") and "event: result" not in response.text:
            raise RuntimeError(f"stream ended without a result: {response.text[-200:]}")
        return True

    try:
        for i in range(min(10, len(questions))):  # warm up the server's caches
            await call(i, i % len(clients))
        return await drive(call, args.requests, args.concurrency)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def _baseline(pipeline: Any, questions: list[str], args: argparse.Namespace):
    async def call(i: int, w: int) -> bool:
        await pipeline.arun(questions[i % len(questions)], k=args.k)
        return True

    return await drive(call, args.requests, args.concurrency)


def _check(args: argparse.Namespace) -> None:
    from ragarbiter.config import check_k
    from ragarbiter.errors import ConfigError

    for name in ("concurrency", "requests", "passages"):
        if getattr(args, name) < 1:
            msg = f"--{name} must be >= 1, got {getattr(args, name)}."
            raise ConfigError(msg)
    check_k(args.k)


def run(args: argparse.Namespace) -> dict:
    from ragarbiter.adapters.server import BackgroundServer, create_app
    from ragarbiter.config import StoreConfig
    from ragarbiter.registry import default_pipeline
    from ragarbiter.retrievers import QdrantStore

    _check(args)
    passages, questions = synthetic_corpus(args.passages)
    store = QdrantStore(StoreConfig(collection="bench-serve", path=":memory:"))
    store.upsert(passages)
    pipeline = default_pipeline(store, k=args.k)
    path = "/query/stream" if args.endpoint == "stream" else "/query"
    with BackgroundServer(create_app(pipeline)) as server:
        latencies, errors, wall, failures = asyncio.run(_load(server.url, path, questions, args))
    result: dict[str, Any] = {
        "bench": "serve",
        "endpoint": path,
        "host": "127.0.0.1",
        "concurrency": args.concurrency,
        "requests": args.requests,
        "passages": args.passages,
        "k": args.k,
        **summarize(latencies, errors, wall),
    }
    if failures:
        result["error_examples"] = sorted(set(failures))[:5]
    if args.baseline:
        b_lat, b_err, b_wall, _ = asyncio.run(_baseline(pipeline, questions, args))
        result["baseline"] = {"name": "in-process Pipeline.arun (no HTTP)", **summarize(b_lat, b_err, b_wall)}
    store.close()
    return result


def exit_code(result: dict[str, Any]) -> int:
    """1 when any request failed, so scripts and CI see a failed load test."""
    return 0 if result["errors"] == 0 else 1


def print_result(result: dict[str, Any]) -> None:
    rows = [("server " + result["endpoint"], result)]
    if "baseline" in result:
        rows.append(("baseline (in-process)", result["baseline"]))
    print(
        f"bench serve: {result['requests']} requests, concurrency {result['concurrency']}, "
        f"{result['passages']} passages, k={result['k']}"
    )
    print(f"{'':24} {'errors':>6} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'rps':>8}")
    for name, r in rows:
        print(
            f"{name:24} {r['errors']:>6} {r.get('p50_ms', float('nan')):>9.1f} {r.get('p95_ms', float('nan')):>9.1f} "
            f"{r.get('p99_ms', float('nan')):>9.1f} {r['rps']:>8.1f}"
        )
