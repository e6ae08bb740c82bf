"""Pair and set conflict detection on ConflictQA or RGB fact files, against a 1 - cosine baseline.

Labelled passage pairs and passage sets are scored with the ConflictAssessor and with 1 - cosine
similarity of the bundled encoder's embeddings, in one run. The baseline's threshold is its
best-F1 threshold on the data itself (an oracle, which favours the baseline); the assessor uses
its fixed threshold.
"""

from __future__ import annotations

import argparse
import re
import time

import numpy as np

from .config import ConflictConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="FILE", help="ConflictQA .json(l) or RGB *_fact.json (JSONL)")
    p.add_argument(
        "--adapter", metavar="DIR", help="adapter folder from `ragarbiter train conflict` (default: shipped)"
    )
    threshold = ConflictConfig.threshold
    p.add_argument("--threshold", type=float, default=threshold, help=f"assessor pair threshold (default: {threshold})")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use the first N items only")
    p.add_argument(
        "--exclude-questions",
        nargs="+",
        default=(),
        metavar="FILE",
        help="skip items whose question appears in these ConflictQA, RGB or LitM files (for example "
        "the training files, to score questions the adapter never saw)",
    )


def _key(question: str) -> str:
    """Case, spacing and punctuation do not matter ("who wrote it?" matches "Who wrote it")."""
    return " ".join(re.findall(r"\w+", question.casefold()))


def question_set(paths) -> set[str]:
    """The normalised questions of every record in `paths` (their `question` or `query` field)."""
    from ragarbiter.datasets import iter_jsonl
    from ragarbiter.errors import InvalidInputError

    out = set()
    for path in paths:
        for i, rec in enumerate(iter_jsonl(path)):
            question = rec.get("question", rec.get("query")) if isinstance(rec, dict) else None
            if not isinstance(question, str):
                msg = (
                    f"{path}, record {i}: no 'question' or 'query' string to exclude. Pass the ConflictQA, "
                    "RGB or LitM files the adapter was trained on."
                )
                raise InvalidInputError(msg)
            out.add(_key(question))
    return out


def score_items(items, pair_scores) -> tuple[np.ndarray, np.ndarray, list[tuple[float, int]]]:
    """Flatten per-item score matrices into pair scores/labels and set (max score, label) entries."""
    scores, labels, sets = [], [], []
    for item, m in zip(items, pair_scores):
        for i, j, label in item.pairs:
            scores.append(m[i, j])
            labels.append(label)
        for members, label in item.sets:
            idx = np.array(members)
            sub = m[np.ix_(idx, idx)]
            sets.append((float(sub.max()) if len(idx) > 1 else 0.0, label))
    return np.array(scores), np.array(labels), sets


def report(scores, labels, sets, threshold: float) -> dict:
    from ..metrics import binary_report

    out = binary_report(scores, labels, threshold)
    set_acc = float(np.mean([(s >= threshold) == bool(y) for s, y in sets])) if sets else 0.0
    return {
        "pair_auroc": out["auroc"],
        "pair_f1": out["f1"],
        "pair_precision": out["precision"],
        "pair_recall": out["recall"],
        "set_accuracy": round(set_acc, 4),
        "threshold": out["threshold"],
    }


def run(args: argparse.Namespace) -> dict:
    from tqdm.auto import tqdm

    from ragarbiter.errors import EmptyCorpusError
    from ragarbiter.retrievers import DenseEncoder

    from ..metrics import best_f1_threshold
    from .data import bench_items
    from .model import ConflictScorer

    items = bench_items(args.data)
    seen = question_set(args.exclude_questions)
    excluded = sum(_key(item.query) in seen for item in items)
    items = [item for item in items if _key(item.query) not in seen]
    items = items[: args.limit] if args.limit else items
    if not items and excluded:
        msg = (
            f"Every one of the {excluded} items in {args.data} has its question in --exclude-questions, so "
            "nothing is left to score. Pass other exclusion files or none."
        )
        raise EmptyCorpusError(msg)
    if not items:
        msg = f"{args.data} holds no usable items. Pass a ConflictQA or RGB fact file with both sides filled in."
        raise EmptyCorpusError(msg)
    scorer = ConflictScorer(args.adapter).load()
    encoder = DenseEncoder()
    assessed, cosine = [], []
    start = time.perf_counter()
    for item in tqdm(items, desc="conflict", disable=args.json):
        assessed.append(scorer.pair_probabilities(item.query, item.texts))
    seconds = time.perf_counter() - start
    for item in tqdm(items, desc="baseline", disable=args.json):
        v = encoder.encode(item.texts)
        cosine.append(1.0 - v @ v.T)
    a_scores, labels, a_sets = score_items(items, assessed)
    c_scores, _, c_sets = score_items(items, cosine)
    result = {
        "data": str(args.data),
        "n_items": len(items),
        "n_pairs": int(len(labels)),
        "n_conflict_pairs": int(labels.sum()),
        **({"n_excluded_items": excluded} if args.exclude_questions else {}),
        "assessor": report(a_scores, labels, a_sets, args.threshold),
        "baseline_cosine": report(c_scores, labels, c_sets, best_f1_threshold(c_scores, labels)),
        "ms_per_item": round(1000 * seconds / len(items), 1),
    }
    return result


def print_result(result: dict) -> None:
    print(f"{result['n_items']} items, {result['n_pairs']} pairs ({result['data']})")
    for name in ("assessor", "baseline_cosine"):
        m = result[name]
        print(f"{name:16} AUROC {m['pair_auroc']:.4f}  F1 {m['pair_f1']:.4f}  set accuracy {m['set_accuracy']:.4f}")
