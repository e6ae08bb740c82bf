"""Load-test `ragarbiter serve` on loopback: throughput, latency percentiles, 4xx and 5xx per concurrency.

A synthetic corpus is indexed into a throwaway store folder and served by `ragarbiter serve` in a
child process (127.0.0.1, a free port, the full default pipeline, the server's default limits unless
given), or by the server at `--url`, which must serve the same corpus (`--dump-corpus FILE` writes it
for `ragarbiter index`). For each `--concurrency` level, that many clients (one keep-alive connection
each) send `--rounds` requests each, at least `--min-requests` in all: bounded loops. `--faults` adds
a run at `--fault-concurrency` where a share of the requests are faults, mixed into the load: oversized
bodies, nested filters, a huge k, SSE streams dropped after the first event and clients that send
their body slowly. The baseline is the same pipeline's in-process batch throughput
(`Pipeline.batch` over a copy of the store, `--workers` threads), measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
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


_ASKS = [
    "When was the {thing} of {place} built?",
    "Who built the {thing} of {place}?",
    "How many times was the {thing} of {place} restored?",
    "In which year did {person} build the {thing} of {place}?",
    "What does record {i} say about the {thing} of {place}?",
    "Is the {thing} of {place} older than a century?",
    "Under whom was the {thing} in {place} built?",
    "Tell me about the {thing} of {place} (record {i}).",
]


def synthetic_corpus(n: int, seed: int = 0) -> tuple[list[Any], list[str]]:
    """`n` short factual passages and `8 n` different questions about them, reproducible from `seed`.

    Every question differs, so a load test that sends each one once measures the work, not the caches.
    """
    from ragarbiter.types import Passage

    rng = random.Random(seed)
    passages, facts = [], []
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
        facts.append({"place": place, "thing": thing, "person": person, "i": i})
    questions = [ask.format(**fact) for ask in _ASKS for fact in facts]
    return passages, list(dict.fromkeys(questions))


FAULTS = ("oversized_body", "nested_filter", "huge_k", "sse_disconnect", "slow_client")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[1, 8, 50, 200],
        help="clients at once, one run each (default: 1 8 50 200)",
    )
    parser.add_argument("--rounds", type=int, default=4, help="requests each client sends per run (default: 4)")
    parser.add_argument("--min-requests", type=int, default=40, help="fewest requests in a run (default: 40)")
    parser.add_argument("--passages", type=int, default=200, help="size of the synthetic store (default: 200)")
    parser.add_argument("-k", type=int, default=5, help="passages per query (default: 5)")
    parser.add_argument("--endpoint", choices=["query", "stream"], default="query", help="POST /query or /query/stream")
    parser.add_argument("--faults", action="store_true", help="add a run with faults mixed into the load")
    parser.add_argument("--fault-concurrency", type=int, default=50, help="clients in the fault run (default: 50)")
    parser.add_argument("--fault-share", type=float, default=0.3, help="share of fault requests (default: 0.3)")
    parser.add_argument("--url", help="load-test the server at this URL instead of starting one")
    parser.add_argument("--dump-corpus", metavar="FILE", help="write the synthetic corpus as JSONL and stop")
    parser.add_argument(
        "--server-args", default="", help="extra `ragarbiter serve` options, e.g. '--workers 8 --queue-depth 32'"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="threads of the in-process baseline (default: the server's workers, one torch thread each, as served)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="client timeout per request in s (default: 120)")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the in-process baseline")


def summarize(
    latencies: Sequence[float], wall: float, outcomes: Counter, rejections: Sequence[float]
) -> dict[str, Any]:
    total = sum(outcomes.values())
    codes = {k: v for k, v in outcomes.items() if isinstance(k, int)}
    stats: dict[str, Any] = {
        "requests": total,
        "ok": len(latencies),
        "status": {str(k): v for k, v in sorted(codes.items())},
        "4xx": sum(v for k, v in codes.items() if 400 <= k < 500),
        "5xx": sum(v for k, v in codes.items() if k >= 500),
        "5xx_not_503": sum(v for k, v in codes.items() if k >= 500 and k != 503),
        "transport_errors": sum(v for k, v in outcomes.items() if not isinstance(k, int)),
        "wall_s": round(wall, 2),
        "rps_ok": round(len(latencies) / wall, 1) if wall > 0 else 0.0,
    }
    if latencies:
        stats.update(latency_summary(latencies, quantiles=(50, 95, 99)), max_ms=round(1000 * max(latencies), 1))
        del stats["n"]
    if rejections:
        ordered = sorted(rejections)
        stats["rejected"] = len(ordered)
        stats["rejection_p50_ms"] = round(1000 * ordered[len(ordered) // 2], 1)
        stats["rejection_p95_ms"] = round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1)
        stats["slowest_rejection_ms"] = round(1000 * ordered[-1], 1)
    return stats


class Load:
    """Bounded client loops against one server: `concurrency` clients, `rounds` requests each."""

    def __init__(self, url: str, questions: list[str], args: argparse.Namespace) -> None:
        self.url, self.questions, self.args = url, questions, args
        self.path = "/query/stream" if args.endpoint == "stream" else "/query"
        self.sent = 0  # questions are taken in order across runs, so no run repeats another's

    async def _normal(self, client, i: int) -> int:
        body = {"query": self.questions[i % len(self.questions)], "k": self.args.k}
        if self.path.endswith("stream"):
            response = await client.post(self.path, json=body)
            if response.status_code == 200 and "event: result" not in response.text:
                tail = response.text.strip().splitlines()[-1:]
                return int(json.loads(tail[0][5:]).get("status", 500)) if tail and tail[0].startswith("data:") else 599
            return response.status_code
        return (await client.post(self.path, json=body)).status_code

    async def _fault(self, client, kind: str, i: int) -> int:
        question = self.questions[i % len(self.questions)]
        if kind == "oversized_body":
            return (
                await client.post("/query", json={"query": question, "filter": {"topic": "x" * 200_000}})
            ).status_code
        if kind == "nested_filter":
            return (
                await client.post("/query", json={"query": question, "filter": {"topic": {"$ne": "x"}}})
            ).status_code
        if kind == "huge_k":
            return (await client.post("/query", json={"query": question, "k": 100_000})).status_code
        if kind == "sse_disconnect":
            async with client.stream("POST", "/query/stream", json={"query": question, "k": self.args.k}) as response:
                async for _ in response.aiter_lines():
                    break  # the first line, then hang up
                return response.status_code
        payload = json.dumps({"query": question, "k": self.args.k}).encode()

        async def slowly():
            for start in range(0, len(payload), 16):
                await asyncio.sleep(0.05)
                yield payload[start : start + 16]

        headers = {"content-type": "application/json"}
        return (await client.post("/query", content=slowly(), headers=headers)).status_code

    async def run(self, concurrency: int, fault_share: float = 0.0) -> dict[str, Any]:
        import httpx

        total = max(concurrency * self.args.rounds, self.args.min_requests)
        first, self.sent = self.sent, self.sent + total
        plan = [None] * total
        rng = random.Random(concurrency)
        for i in rng.sample(range(total), int(round(fault_share * total))):
            plan[i] = FAULTS[i % len(FAULTS)]
        todo = iter(range(total))
        latencies, rejections, outcomes, by_fault = [], [], Counter(), {}
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

        async def client_loop() -> None:
            async with httpx.AsyncClient(base_url=self.url, limits=limits, timeout=self.args.timeout) as client:
                for i in todo:
                    start = time.perf_counter()
                    kind = plan[i]
                    try:
                        n = first + i
                        code = await (self._fault(client, kind, n) if kind else self._normal(client, n))
                    except httpx.TimeoutException:
                        code = "client_timeout"
                    except httpx.TransportError as exc:
                        code = type(exc).__name__
                    seconds = time.perf_counter() - start
                    outcomes[code] += 1
                    if kind:
                        by_fault.setdefault(kind, Counter())[str(code)] += 1
                    elif code == 200:
                        latencies.append(seconds)
                    elif code in (429, 503):
                        rejections.append(seconds)

        start = time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        stats = summarize(latencies, time.perf_counter() - start, outcomes, rejections)
        if fault_share:
            stats["faults"] = {kind: dict(counts) for kind, counts in sorted(by_fault.items())}
        return stats


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(folder: str, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    argv = [sys.executable, "-m", "ragarbiter.cli.main", "serve", "--store", folder, "--collection", "bench-serve"]
    argv += ["--port", str(port), "-k", str(args.k), "--log-level", "warning", *args.server_args.split()]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            msg = f"`ragarbiter serve` exited ({server.returncode}): {server.stderr.read()[-1500:]}"
            raise RuntimeError(msg)
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"`ragarbiter serve` did not answer on {url} within 120 s.")


def _check(args: argparse.Namespace) -> None:
    from ragarbiter.config import check_k
    from ragarbiter.errors import ConfigError

    for name in ("rounds", "min_requests", "passages", "fault_concurrency", "workers"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            msg = f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}."
            raise ConfigError(msg)
    if not args.concurrency or min(args.concurrency) < 1:
        msg = f"--concurrency takes positive numbers, got {args.concurrency}."
        raise ConfigError(msg)
    if not 0 < args.fault_share <= 1:
        msg = f"--fault-share must lie in (0, 1], got {args.fault_share}."
        raise ConfigError(msg)
    check_k(args.k)


def _baseline(folder: str, questions: list[str], args: argparse.Namespace, workers: int) -> dict[str, Any]:
    import torch

    from ragarbiter.config import StoreConfig
    from ragarbiter.registry import default_pipeline
    from ragarbiter.retrievers import QdrantStore

    store = QdrantStore(StoreConfig(collection="bench-serve", path=folder))
    pipeline = default_pipeline(store, k=args.k)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as `ragarbiter serve` runs its workers
    pipeline.batch(questions[:10], max_concurrency=workers)  # warm up, as the server is
    n = max(args.min_requests, 4 * workers * args.rounds)
    batch = [questions[i % len(questions)] for i in range(n)]
    start = time.perf_counter()
    pipeline.batch(batch, max_concurrency=workers)
    wall = time.perf_counter() - start
    store.close()
    torch.set_num_threads(threads)
    return {
        "name": f"in-process Pipeline.batch, {workers} threads, 1 torch thread each, no HTTP",
        "requests": n,
        "rps": round(n / wall, 1),
    }


def run(args: argparse.Namespace) -> dict:
    import httpx

    from ragarbiter.config import StoreConfig
    from ragarbiter.retrievers import QdrantStore, index_passages

    _check(args)
    passages, questions = synthetic_corpus(args.passages)
    if args.dump_corpus:
        lines = [json.dumps({"text": p.text, "source": p.source, "metadata": p.metadata}) for p in passages]
        Path(args.dump_corpus).write_text("\n".join(lines) + "\n", encoding="utf-8")
        return {"bench": "serve", "corpus": args.dump_corpus, "passages": len(passages)}
    result: dict[str, Any] = {"bench": "serve", "endpoint": args.endpoint, "passages": len(passages), "k": args.k}
    with tempfile.TemporaryDirectory(prefix="ragarbiter-serve-") as tmp:
        served, copy = os.path.join(tmp, "served"), os.path.join(tmp, "baseline")
        store = QdrantStore(StoreConfig(collection="bench-serve", path=served))
        index_passages(store, passages, progress=False)
        store.close()
        shutil.copytree(served, copy)
        server = None
        if args.url:
            url = args.url.rstrip("/")
        else:
            server, url = _start_server(served, args)
        try:
            health = httpx.get(url + "/health", timeout=10).json()
            result["server"] = {"url": url, "version": health.get("version"), "limits": health.get("limits")}
            load = Load(url, questions, args)
            asyncio.run(load.run(4))  # warm-up, not counted
            result["levels"] = {}
            for c in args.concurrency:
                result["levels"][str(c)] = asyncio.run(load.run(c))
                logger.info("concurrency %d: %s", c, result["levels"][str(c)])
            if args.faults:
                result["fault_run"] = {
                    "concurrency": args.fault_concurrency,
                    "share": args.fault_share,
                    **asyncio.run(load.run(args.fault_concurrency, args.fault_share)),
                }
            after = httpx.get(url + "/health", timeout=10).json()
            if "encoder_passes" in after:
                result["server"]["encoder_passes"] = after["encoder_passes"]
        finally:
            if server is not None:
                server.terminate()
                try:
                    server.wait(15)
                except subprocess.TimeoutExpired:
                    server.kill()
        if args.baseline:
            workers = args.workers or (result["server"].get("limits") or {}).get("workers") or 2
            result["baseline"] = _baseline(copy, questions, args, workers)
    levels = result["levels"]
    goals: dict[str, Any] = {"no_5xx_except_503": all(r["5xx_not_503"] == 0 for r in levels.values())}
    if args.faults:
        goals["no_5xx_except_503"] = goals["no_5xx_except_503"] and result["fault_run"]["5xx_not_503"] == 0
    deadline_s = (result["server"].get("limits") or {}).get("deadline_s")
    if deadline_s:
        runs = [*levels.values(), *([result["fault_run"]] if args.faults else [])]
        goals["answered_within_deadline"] = all(r.get("max_ms", 0) <= 1000 * deadline_s for r in runs)
    if "50" in levels and "baseline" in result:
        goals["c50_rps_vs_baseline"] = round(levels["50"]["rps_ok"] / result["baseline"]["rps"], 2)
    result["goals"] = goals
    return result


def exit_code(result: dict[str, Any]) -> int:
    """1 when the server answered 5xx other than 503 (a bug, not a rejection), so scripts and CI see it."""
    return 0 if result.get("goals", {}).get("no_5xx_except_503", True) else 1


def print_result(result: dict[str, Any]) -> None:
    if "levels" not in result:
        print(f"wrote {result['passages']} passages to {result['corpus']}")
        return
    print(f"bench serve: {result['passages']} passages, k={result['k']}, server {result['server']['url']}")
    print(
        f"{'concurrency':>11} {'requests':>8} {'ok':>6} {'4xx':>5} {'5xx':>5} "
        f"{'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'ok rps':>7} {'rejected':>8} {'rej p95 ms':>10}"
    )
    rows, nan = list(result["levels"].items()), float("nan")
    if "fault_run" in result:
        rows.append((f"{result['fault_run']['concurrency']}+faults", result["fault_run"]))
    for name, r in rows:
        print(
            f"{name:>11} {r['requests']:>8} {r['ok']:>6} {r['4xx']:>5} {r['5xx']:>5} "
            f"{r.get('p50_ms', nan):>9.1f} {r.get('p95_ms', nan):>9.1f} {r.get('p99_ms', nan):>9.1f} "
            f"{r['rps_ok']:>7.1f} {r.get('rejected', 0):>8} {r.get('rejection_p95_ms', nan):>10.1f}"
        )
    if "baseline" in result:
        print(f"baseline: {result['baseline']['name']}: {result['baseline']['rps']} rps")
    print("goals:", result["goals"])
