"""Ingestion rate and query latency on a synthetic embedded store.

--passages synthetic passages are indexed into a temporary store, then --queries queries are
timed in each search mode. Hybrid search is the measured path; dense-only search is its
baseline, measured in the same run, and sparse-only is reported beside it.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

from ragarbiter.stats import latency_summary

from .common import add_engine_arg

# A fixed vocabulary of ordinary English words, so passages tokenize like real text.
WORDS = (
    "harbour lighthouse river valley mountain village market festival school library station railway bridge "
    "engineer teacher farmer merchant painter keeper captain doctor writer baker weaver miller council "
    "storm winter summer spring autumn morning evening island coast cliff forest meadow field garden "
    "built opened closed founded designed repaired moved sold bought painted wrote carried lit crossed "
    "old new small large northern southern eastern western quiet busy famous local early late first last "
    "stone iron timber glass copper salt grain wool herring cod boat ship train road tower wall gate hall "
    "century decade year season week record register charter report plan map letter story history museum"
).split()


def synthetic_passages(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        sentences = []
        for _ in range(rng.randint(3, 5)):
            words = rng.choices(WORDS, k=rng.randint(8, 14))
            sentences.append(" ".join(words).capitalize() + ".")
        out.append(f"Record {i}. " + " ".join(sentences))
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--passages", type=int, default=10_000, help="store size (default: 10000)")
    p.add_argument("--queries", type=int, default=200, help="timed queries per mode (default: 200)")
    p.add_argument("-k", type=int, default=20, help="passages per query (default: 20)")
    p.add_argument("--seed", type=int, default=0)
    add_engine_arg(p)


def _timed_queries(store, queries: list[str], k: int, mode: str) -> dict[str, float]:
    times = []
    for q in queries:
        start = time.perf_counter()
        store.search(q, k=k, mode=mode)
        times.append(time.perf_counter() - start)
    return latency_summary(times)


def run(args: argparse.Namespace) -> dict:
    from ragarbiter.config import StoreConfig
    from ragarbiter.retrievers import QdrantStore, index_passages
    from ragarbiter.types import Passage

    texts = synthetic_passages(args.passages, args.seed)
    rng = random.Random(args.seed + 1)
    queries = [" ".join(rng.choices(WORDS, k=rng.randint(4, 9))) + "?" for _ in range(args.queries)]
    with tempfile.TemporaryDirectory(prefix="ragarbiter-latency-") as folder:
        store = QdrantStore(StoreConfig(collection="latency", path=folder, engine=args.engine))
        store.encoder.encode(["warm up"])  # model load is not ingestion
        start = time.perf_counter()
        index_passages(store, [Passage(t) for t in texts], progress=not args.json)
        ingest_s = time.perf_counter() - start
        store.search(queries[0], k=args.k)  # warm the search path
        timings = {mode: _timed_queries(store, queries, args.k, mode) for mode in ("hybrid", "dense", "sparse")}
        count, engine = store.count(), store.engine
        store.close()
    result = {
        "passages": count,
        "engine": engine,
        "k": args.k,
        "queries": len(queries),
        "ingest_passages_per_s": round(count / ingest_s, 1),
        "ingest_seconds": round(ingest_s, 1),
        "hybrid": timings["hybrid"],
        "baseline_dense": timings["dense"],
        "sparse": timings["sparse"],
    }
    return result
