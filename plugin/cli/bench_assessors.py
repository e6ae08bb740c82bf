"""Latency of the poison, conflict and inappropriate stages on retrieved passages.

A corpus is indexed into a temporary store; for each question --passages passages are retrieved
(which primes the encoder's vector cache, as in a real chain) and the three stages are timed on
them, one query at a time. The baseline is the O(n^2) design the conflict stage avoids: one
encoder pass per passage pair, timed on --pairwise-queries queries.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from ragarbiter.stats import latency_summary

from .demo import find_corpus

STAGES = ("poison", "conflict", "inappropriate")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        metavar="FILE",
        help="LitM NQ-Open .jsonl.gz: its passages and questions (default: the demo corpus and its questions)",
    )
    p.add_argument("--passages", type=int, default=20, help="passages per query (default: 20)")
    p.add_argument("--queries", type=int, default=30, help="timed queries (default: 30)")
    p.add_argument(
        "--corpus-limit", type=int, default=1000, metavar="N", help="index at most N passages (default: 1000)"
    )
    p.add_argument("--warmup", type=int, default=2, help="untimed queries first (model loading) (default: 2)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument(
        "--pairwise-queries",
        type=int,
        default=5,
        metavar="N",
        help="queries on which to also time the O(n^2) alternative: one encoder pass per passage pair "
        "(default: 5; 0 = skip)",
    )
    p.add_argument(
        "--conflict-adapter",
        metavar="DIR",
        help="conflict adapter for both the PoisonFilter's judge and the ConflictAssessor "
        "(default: each stage's shipped one)",
    )
    p.add_argument("--inappropriate-adapter", metavar="DIR", help="InappropriateFilter adapter (default: shipped)")


def _workload(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(passage texts, questions)."""
    if args.data:
        from ragarbiter.datasets import read_litm

        items = read_litm(args.data)
        texts = list(dict.fromkeys(t for it in items for t in it.passages))[: args.corpus_limit]
        return texts, [it.question for it in items][: args.queries + args.warmup]
    import json

    from .demo import DEMO_QUESTIONS

    corpus = find_corpus(None)
    texts = [
        json.loads(line)["text"]
        for f in sorted(corpus.glob("*.jsonl"))
        for line in f.open(encoding="utf-8")
        if line.strip()
    ]
    questions = DEMO_QUESTIONS * (1 + (args.queries + args.warmup) // len(DEMO_QUESTIONS))
    return texts, questions[: args.queries + args.warmup]


def _pairwise_pass(conflict, question: str, texts: list[str]) -> float:
    """Seconds for one encoder pass per passage pair (both texts in one input, truncated to the
    same window), i.e. what a cross-encoder over pairs would cost; a lower bound, since the
    real thing would need twice the window."""
    pairs = [f"{a} {b}" for k, a in enumerate(texts) for b in texts[k + 1 :]]
    scorer = conflict.scorer
    start = time.perf_counter()
    scorer.embed(question, pairs)  # the pair texts are new strings: nothing comes from a cache
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> dict:
    import torch

    from ragarbiter.assessors import ConflictAssessor, InappropriateFilter, PoisonFilter
    from ragarbiter.config import StoreConfig
    from ragarbiter.retrievers import QdrantStore, index_passages
    from ragarbiter.types import Context, Passage

    if args.threads:
        torch.set_num_threads(args.threads)
    texts, questions = _workload(args)
    timings: dict[str, list[float]] = {name: [] for name in (*STAGES, "total")}
    pairwise: list[float] = []
    n_passages = []
    with tempfile.TemporaryDirectory(prefix="ragarbiter-latency-") as folder:
        store = QdrantStore(StoreConfig(collection="latency", path=folder))
        index_passages(store, [Passage(t) for t in texts], progress=not args.json)
        stages = [
            PoisonFilter(encoder=store.encoder, conflict_adapter=args.conflict_adapter, store=store),
            ConflictAssessor(adapter=args.conflict_adapter),
            InappropriateFilter(adapter=args.inappropriate_adapter),
        ]
        for i, question in enumerate(questions):
            found = store.search(question, k=args.passages, mode="hybrid")
            context = Context.for_query(question, found)
            spent = {}
            start = time.perf_counter()
            for stage in stages:
                t0 = time.perf_counter()
                context = stage(context)
                spent[stage.name] = time.perf_counter() - t0
            total = time.perf_counter() - start
            if i >= args.warmup and len(pairwise) < args.pairwise_queries:
                pairwise.append(_pairwise_pass(stages[1], question, [p.text for p in found]))
            if i >= args.warmup:
                timings["total"].append(total)
                for name, seconds in spent.items():
                    timings[name].append(seconds)
                n_passages.append(len(found))
        store.close()
    result = {
        "data": args.data or "examples/corpus",
        "queries": len(timings["total"]),
        "passages_per_query": round(float(np.mean(n_passages)), 1) if n_passages else 0,
        "torch_threads": torch.get_num_threads(),
        **{name: latency_summary(v) for name, v in timings.items()},
        "baseline_pairwise_conflict": latency_summary(pairwise),
    }
    return result


def print_result(result: dict) -> None:
    print(f"{result['queries']} queries x {result['passages_per_query']} passages ({result['data']})")
    for name in (*STAGES, "total"):
        m = result[name]
        print(f"{name:14} p50 {m.get('p50_ms', 0.0):8.1f} ms   p90 {m.get('p90_ms', 0.0):8.1f} ms")
    print(
        f"{'pairwise':14} p50 {result['baseline_pairwise_conflict'].get('p50_ms', 0.0):8.1f} ms   "
        f"(one encoder pass per pair, the O(n^2) design the conflict stage avoids)"
    )
