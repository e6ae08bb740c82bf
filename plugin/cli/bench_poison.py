"""`ragarbiter bench poison --data POISONEDRAG.json --corpus LITM.jsonl.gz`: PoisonFilter vs no defence."""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from .common import add_json_arg, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "poison",
        help="corpus-poisoning defence on PoisonedRAG targets injected into a LitM corpus",
        description="Index the corpus passages plus every adversarial text into a temporary store. "
        "For each target question retrieve the candidates, apply the PoisonFilter and keep "
        "the top 5; on the first N corpus questions (no poison aimed at them) measure "
        "gold-passage R@5 with and without the defence.",
    )
    p.add_argument("--data", required=True, metavar="FILE", help="PoisonedRAG targeted results (.json)")
    p.add_argument(
        "--corpus", required=True, metavar="FILE", help="LitM NQ-Open .jsonl.gz (its passages are the corpus)"
    )
    p.add_argument("--candidates", type=int, default=20, help="passages retrieved before the defence (default: 20)")
    p.add_argument(
        "--clean-questions", type=int, default=500, metavar="N", help="corpus questions for clean R@5 (default: 500)"
    )
    p.add_argument(
        "--mode", default="hybrid", choices=("hybrid", "dense", "sparse"), help="retrieval mode (default: hybrid)"
    )
    p.add_argument(
        "--conflict-adapter",
        metavar="DIR",
        help="conflict adapter for the PoisonFilter's judge (default: the filter's shipped one)",
    )
    add_json_arg(p)
    p.set_defaults(func=run)


def attack_metrics(adv_counts: list[int]) -> dict[str, float]:
    counts = np.array(adv_counts)
    return {
        "adv_in_top5": round(float(counts.mean()), 4),
        "asr_any": round(float((counts >= 1).mean()), 4),
        "asr_majority": round(float((counts >= 3).mean()), 4),
    }


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ragarbiter.assessors.poison import PoisonFilter
    from ragarbiter.assessors.poison.data import read_poisonedrag
    from ragarbiter.config import StoreConfig
    from ragarbiter.datasets import read_litm
    from ragarbiter.errors import EmptyCorpusError
    from ragarbiter.retrievers import QdrantStore, index_passages
    from ragarbiter.types import Context, Passage, content_id

    targets = read_poisonedrag(args.data)
    items = read_litm(args.corpus)
    if not targets or not items:
        msg = f"Nothing to measure: {len(targets)} targets in {args.data}, {len(items)} questions in {args.corpus}."
        raise EmptyCorpusError(msg)
    corpus = {content_id(t): Passage(t, source="corpus") for it in items for t in it.passages}
    adv = {content_id(t): Passage(t, source=f"adv/{tg.id}") for tg in targets for t in tg.adv_texts}
    clean = items[: args.clean_questions]
    names = ("undefended", "defended", "defended_strict", "defended_no_store")
    adv_counts: dict[str, list[int]] = {n: [] for n in names}
    clean_hits: dict[str, list[bool]] = {n: [] for n in names}
    seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ragarbiter-poison-") as folder:
        store = QdrantStore(StoreConfig(collection="poison", path=folder))
        index_passages(store, [*corpus.values(), *adv.values()], progress=not args.json)
        defences = {
            "defended": PoisonFilter(encoder=store.encoder, conflict_adapter=args.conflict_adapter, store=store),
            # the same filter, dropping also the planted-looking groups that nothing contradicts
            "defended_strict": PoisonFilter(
                encoder=store.encoder, conflict_adapter=args.conflict_adapter, store=store, uncorroborated="drop"
            ),
            # the same filter without the store: only the copies among the candidates count
            "defended_no_store": PoisonFilter(encoder=store.encoder, conflict_adapter=args.conflict_adapter),
        }

        def top5(question: str, found: list) -> dict[str, list[str]]:
            out = {"undefended": [p.id for p in found[:5]]}
            for name, defence in defences.items():
                start = time.perf_counter()
                ctx = defence(Context.for_query(question, found))
                if name == "defended":
                    seconds.append(time.perf_counter() - start)
                out[name] = [p.id for p in ctx.passages[:5]]
            return out

        questions = [t.question for t in targets] + [it.question for it in clean]
        hits = []
        for i in range(0, len(questions), 64):
            hits += store.search_batch(questions[i : i + 64], k=args.candidates, mode=args.mode)
        for tg, found in tqdm(list(zip(targets, hits)), desc="targets", disable=args.json):
            for name, ids in top5(tg.question, found).items():
                adv_counts[name].append(sum(pid in adv for pid in ids))
        for it, found in tqdm(list(zip(clean, hits[len(targets) :])), desc="clean", disable=args.json):
            gold = {content_id(t) for t in it.gold}
            for name, ids in top5(it.question, found).items():
                clean_hits[name].append(bool(gold & set(ids)))
        store.close()
    result = {
        "data": str(args.data),
        "corpus": str(args.corpus),
        "candidates": args.candidates,
        "mode": args.mode,
        **{n: {**attack_metrics(adv_counts[n]), "clean_R@5": round(float(np.mean(clean_hits[n])), 4)} for n in names},
        "n_targets": len(targets),
        "n_clean_questions": len(clean),
        "ms_per_query": round(1000 * float(np.mean(seconds)), 1),
    }
    if args.json:
        print_json(result)
    else:
        print(f"{len(targets)} targets, {len(clean)} clean questions, {args.candidates} candidates ({args.mode})")
        for name in names:
            m = result[name]
            print(
                f"{name:17} adv in top-5 {m['adv_in_top5']:.2f}  ASR any {m['asr_any']:.2f}  "
                f"ASR majority {m['asr_majority']:.2f}  clean R@5 {m['clean_R@5']:.4f}"
            )
        print(f"defence: {result['ms_per_query']} ms per query")
    return 0
