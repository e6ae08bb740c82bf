"""Corpus-poisoning defence on PoisonedRAG targets injected into a LitM corpus, against no defence.

The corpus passages and every adversarial text are indexed into a temporary store. For each
target question the candidates are retrieved, the PoisonFilter is applied and the top 5 are
kept; on the first N corpus questions (no poison aimed at them) gold-passage R@5 is measured
with and without the defence, in one run. Three defences: the filter with the store
("defended"), the same only demoting the planted-looking groups nothing contradicts
("defended_demote", the filter's former default), and the filter without the store
("defended_no_store"). By default only questions the filter's conflict judge was not trained on
are measured, targets and clean questions alike (its manifest says which; `--include-trained`
measures them all).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from ragarbiter.config import SEARCH_MODES, RetrieverConfig

from ..trained import add_unseen_arguments

TOP = 5  # passages the LLM would read: the attack figures count planted texts among them, R@5 the gold
MAJORITY = TOP // 2 + 1  # planted texts that outnumber the rest of the top 5 (`asr_majority`)
CANDIDATES = 20  # passages retrieved before the defence
CLEAN_QUESTIONS = 500  # corpus questions (no poison aimed at them) for clean R@5
SEARCH_BATCH = 64  # questions per store request
NAMES = ("undefended", "defended", "defended_demote", "defended_no_store")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="FILE", help="PoisonedRAG targeted results (.json)")
    p.add_argument(
        "--corpus", required=True, metavar="FILE", help="LitM NQ-Open .jsonl.gz (its passages are the corpus)"
    )
    p.add_argument(
        "--candidates",
        type=int,
        default=CANDIDATES,
        help=f"passages retrieved before the defence (default: {CANDIDATES})",
    )
    p.add_argument(
        "--clean-questions",
        type=int,
        default=CLEAN_QUESTIONS,
        metavar="N",
        help=f"corpus questions for clean R@{TOP} (default: {CLEAN_QUESTIONS})",
    )
    mode = RetrieverConfig.mode
    p.add_argument("--mode", default=mode, choices=SEARCH_MODES, help=f"retrieval mode (default: {mode})")
    p.add_argument(
        "--conflict-adapter",
        metavar="DIR",
        help="conflict adapter for the PoisonFilter's judge (default: the filter's shipped one)",
    )
    add_unseen_arguments(p, "the filter's conflict judge")
    p.add_argument(
        "--unseen-by",
        metavar="DIR",
        help="decide which questions are unseen from this adapter's manifest instead of the judge's, to compare "
        "two judges on the same questions (the output names it; the judge itself may have seen them)",
    )


def attack_metrics(adv_counts: list[int]) -> dict[str, float]:
    """Mean planted texts in the top 5, and the share of targets with at least one / a majority of them."""
    counts = np.array(adv_counts)
    return {
        "adv_in_top5": round(float(counts.mean()), 4),
        "asr_any": round(float((counts >= 1).mean()), 4),
        "asr_majority": round(float((counts >= MAJORITY).mean()), 4),
    }


def run(args: argparse.Namespace) -> dict:
    from tqdm.auto import tqdm

    from ragarbiter.config import StoreConfig
    from ragarbiter.datasets import read_litm
    from ragarbiter.errors import EmptyCorpusError
    from ragarbiter.retrievers import QdrantStore, index_passages
    from ragarbiter.types import Context, Passage, content_id

    from ..trained import check_trained, unseen_report
    from .config import default_judge_dir
    from .data import read_poisonedrag
    from .stage import PoisonFilter

    targets = read_poisonedrag(args.data)
    items = read_litm(args.corpus)
    if not targets or not items:
        msg = f"Nothing to measure: {len(targets)} targets in {args.data}, {len(items)} questions in {args.corpus}."
        raise EmptyCorpusError(msg)
    unseen_by = args.unseen_by or args.conflict_adapter or default_judge_dir()
    check = check_trained(unseen_by) if args.unseen_only else None
    adv = {content_id(t): Passage(t, source=f"adv/{tg.id}") for tg in targets for t in tg.adv_texts}  # all planted
    if check is not None:  # the planted texts of the targets left out stay in the corpus
        targets, trained = check.unseen(targets, lambda tg: tg.question)
        clean, trained_clean = check.unseen(items, lambda it: it.question, limit=args.clean_questions)
    else:
        clean, trained, trained_clean = items[: args.clean_questions], 0, 0
    for what, kept, left_out in (
        (f"targets in {args.data}", targets, trained),
        (f"questions in {args.corpus}", clean, trained_clean),
    ):
        if not kept and left_out:
            msg = (
                f"Every one of the {left_out} {what} was asked in the training of {str(check.adapter)!r}, so "
                f"nothing is left to measure. Pass --unseen-by DIR to take the unseen questions from another "
                f"adapter's manifest (the shipped conflict adapter, assessors/conflict/default, kept a fifth of "
                f"the LitM questions out of training), or --include-trained to measure the trained ones too."
            )
            raise EmptyCorpusError(msg)
    corpus = {content_id(t): Passage(t, source="corpus") for it in items for t in it.passages}
    adv_counts: dict[str, list[int]] = {n: [] for n in NAMES}
    clean_hits: dict[str, list[bool]] = {n: [] for n in NAMES}
    seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ragarbiter-poison-") as folder:
        store = QdrantStore(StoreConfig(collection="poison", path=folder))
        index_passages(store, [*corpus.values(), *adv.values()], progress=not args.json)
        defences = {
            "defended": PoisonFilter(encoder=store.encoder, conflict_adapter=args.conflict_adapter, store=store),
            # the same filter, only demoting the planted-looking groups that nothing contradicts
            "defended_demote": PoisonFilter(
                encoder=store.encoder, conflict_adapter=args.conflict_adapter, store=store, uncorroborated="demote"
            ),
            # the same filter without the store: only the copies among the candidates count
            "defended_no_store": PoisonFilter(encoder=store.encoder, conflict_adapter=args.conflict_adapter),
        }

        def top(question: str, found: list) -> dict[str, list[str]]:
            out = {"undefended": [p.id for p in found[:TOP]]}
            for name, defence in defences.items():
                start = time.perf_counter()
                ctx = defence(Context.for_query(question, found))
                if name == "defended":
                    seconds.append(time.perf_counter() - start)
                out[name] = [p.id for p in ctx.passages[:TOP]]
            return out

        questions = [t.question for t in targets] + [it.question for it in clean]
        hits = []
        for i in range(0, len(questions), SEARCH_BATCH):
            hits += store.search_batch(questions[i : i + SEARCH_BATCH], k=args.candidates, mode=args.mode)
        for tg, found in tqdm(list(zip(targets, hits)), desc="targets", disable=args.json):
            for name, ids in top(tg.question, found).items():
                adv_counts[name].append(sum(pid in adv for pid in ids))
        for it, found in tqdm(list(zip(clean, hits[len(targets) :])), desc="clean", disable=args.json):
            gold = {content_id(t) for t in it.gold}
            for name, ids in top(it.question, found).items():
                clean_hits[name].append(bool(gold & set(ids)))
        store.close()
    return {
        "data": str(args.data),
        "corpus": str(args.corpus),
        "candidates": args.candidates,
        "mode": args.mode,
        **{n: {**attack_metrics(adv_counts[n]), "clean_R@5": round(float(np.mean(clean_hits[n])), 4)} for n in NAMES},
        "n_targets": len(targets),
        "n_clean_questions": len(clean),
        **unseen_report(check),
        "n_excluded_trained": trained,
        "n_excluded_trained_clean": trained_clean,
        "ms_per_query": round(1000 * float(np.mean(seconds)), 1),
    }


def print_result(result: dict) -> None:
    print(
        f"{result['n_targets']} targets, {result['n_clean_questions']} clean questions, "
        f"{result['candidates']} candidates ({result['mode']})"
    )
    for name in NAMES:
        m = result[name]
        print(
            f"{name:17} adv in top-5 {m['adv_in_top5']:.2f}  ASR any {m['asr_any']:.2f}  "
            f"ASR majority {m['asr_majority']:.2f}  clean R@5 {m['clean_R@5']:.4f}"
        )
    print(f"defence: {result['ms_per_query']} ms per query")
