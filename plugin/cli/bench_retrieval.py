"""Retrieval quality on LitM NQ-Open (.jsonl.gz) or SynthWiki (.csv).

Every distinct passage of the file is indexed into a temporary embedded store and every question
searched: R@1, R@5 and MRR@10 for dense, sparse, hybrid, hybrid with equal-weight RRF, and
hybrid+maxsim (the hybrid top candidates reranked by `MaxSimReranker`), in one run.

Hybrid is searched once, at the reranking depth; its row scores the top 10 of that list,
which is the same as a top-10 search because the fused prefetch depth does not depend on
the limit. The hybrid+maxsim time adds the reranking to the hybrid search time.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Sequence

from ragarbiter.config import HYBRID_WEIGHTS

from .common import add_engine_arg

logger = logging.getLogger(__name__)
MODES = ("dense", "sparse", "hybrid")
RERANKED = "hybrid+maxsim"
EQUAL = "hybrid_equal_rrf"  # plain RRF, both branches weighted 1: the fusion the default weights improve on
ROWS = (*MODES, EQUAL, RERANKED)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="FILE", help="LitM NQ-Open .jsonl.gz or SynthWiki .csv")
    p.add_argument("--k", type=int, default=10, help="retrieval depth (default: 10)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="evaluate the first N questions only")
    p.add_argument("--batch-size", type=int, default=64, help="queries per search batch (default: 64)")
    p.add_argument(
        "--rerank-depth",
        type=int,
        default=30,
        metavar="N",
        help="hybrid candidates reranked by MaxSim for the hybrid+maxsim row (default: 30; 0 = skip the row)",
    )
    add_engine_arg(p)


def ranked_metrics(ranked_ids: Sequence[Sequence[str]], gold_ids: Sequence[set[str]]) -> dict[str, float]:
    """R@1, R@5 (any gold passage in the top-n) and MRR@10 (first gold rank, 0 beyond 10)."""
    n = max(len(gold_ids), 1)
    r1 = r5 = mrr = 0.0
    for ranked, gold in zip(ranked_ids, gold_ids):
        rank = next((i for i, pid in enumerate(ranked[:10], start=1) if pid in gold), None)
        if rank is not None:
            r1 += rank == 1
            r5 += rank <= 5
            mrr += 1.0 / rank
    return {"R@1": round(r1 / n, 4), "R@5": round(r5 / n, 4), "MRR@10": round(mrr / n, 4)}


def _search(
    store, questions: list[str], mode: str, k: int, args: argparse.Namespace, weights: tuple[float, float] | None = None
) -> tuple[list, float]:
    """Top-k passages per question in batches, and the seconds it took."""
    from tqdm.auto import tqdm

    hits, start = [], time.perf_counter()
    for i in tqdm(range(0, len(questions), args.batch_size), desc=mode, disable=args.json):
        batch = questions[i : i + args.batch_size]
        hits += store.search_batch(batch, k=k, mode=mode, weights=weights or HYBRID_WEIGHTS)
    return hits, time.perf_counter() - start


def _rerank(reranker, questions: list[str], hits: list, args: argparse.Namespace) -> tuple[list[list[str]], float]:
    """Reranked ids of each question's top `--rerank-depth` candidates, and the seconds it took."""
    from tqdm.auto import tqdm

    from ragarbiter.types import Context

    ranked, start = [], time.perf_counter()
    for question, found in tqdm(list(zip(questions, hits)), desc=RERANKED, disable=args.json):
        out = reranker(Context.for_query(question, found[: args.rerank_depth]))
        ranked.append([p.id for p in out.passages])
    return ranked, time.perf_counter() - start


def run(args: argparse.Namespace) -> dict:
    from ragarbiter.config import StoreConfig
    from ragarbiter.datasets import read_retrieval
    from ragarbiter.errors import ConfigError, EmptyCorpusError
    from ragarbiter.retrievers import MaxSimReranker, QdrantStore, index_passages
    from ragarbiter.types import Passage, content_id

    if args.rerank_depth < 0:
        msg = (
            "--rerank-depth must be 0 (no rerank row) or a positive "
            f"integer, got {args.rerank_depth}. The default is 30."
        )
        raise ConfigError(msg)
    items = read_retrieval(args.data)
    if not items:
        msg = f"{args.data} holds no questions. Pass a non-empty LitM or SynthWiki file."
        raise EmptyCorpusError(msg)
    corpus = {content_id(t): t for item in items for t in item.passages}
    items = items[: args.limit] if args.limit else items
    gold = [{content_id(t) for t in item.gold} for item in items]
    result: dict = {"data": str(args.data), "n_questions": len(items), "n_passages": len(corpus), "k": args.k}
    hits: dict[str, list[list[Passage]]] = {}
    n = max(len(items), 1)
    with tempfile.TemporaryDirectory(prefix="ragarbiter-bench-") as folder:
        store = QdrantStore(StoreConfig(collection="bench", path=folder, engine=args.engine))
        start = time.perf_counter()
        index_passages(store, [Passage(t, id=i) for i, t in corpus.items()], progress=not args.json)
        result["index_seconds"] = round(time.perf_counter() - start, 1)
        result["engine"] = store.engine
        questions = [item.question for item in items]
        for mode in MODES:
            k = max(args.k, 10, args.rerank_depth) if mode == "hybrid" else max(args.k, 10)
            hits[mode], seconds = _search(store, questions, mode, k, args)
            result[mode] = {
                **ranked_metrics([[p.id for p in h] for h in hits[mode]], gold),
                "query_ms": round(1000 * seconds / n, 2),
            }
        equal, seconds = _search(store, questions, "hybrid", max(args.k, 10), args, weights=(1.0, 1.0))
        result[EQUAL] = {
            **ranked_metrics([[p.id for p in h] for h in equal], gold),
            "query_ms": round(1000 * seconds / n, 2),
        }
        if args.rerank_depth:
            reranked, seconds = _rerank(MaxSimReranker(store=store, cache_size=4096), questions, hits["hybrid"], args)
            result[RERANKED] = {
                **ranked_metrics(reranked, gold),
                "query_ms": round(result["hybrid"]["query_ms"] + 1000 * seconds / n, 2),
                "rerank_ms": round(1000 * seconds / n, 2),
                "depth": args.rerank_depth,
            }
        store.close()
    return result


def print_result(result: dict) -> None:
    print(f"{result['n_questions']} questions, {result['n_passages']} passages ({result['data']})")
    print(f"{'mode':17} {'R@1':>7} {'R@5':>7} {'MRR@10':>7} {'ms/query':>9}")
    for mode in (r for r in ROWS if r in result):
        m = result[mode]
        print(f"{mode:17} {m['R@1']:7.4f} {m['R@5']:7.4f} {m['MRR@10']:7.4f} {m['query_ms']:9.2f}")
