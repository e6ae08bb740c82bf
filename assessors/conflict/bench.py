"""Pair and set conflict detection on ConflictQA, RGB-style and labelled pair files, against a 1 - cosine baseline.

Labelled passage pairs and passage sets are scored with the ConflictAssessor and with 1 - cosine
similarity of the bundled encoder's embeddings, in one run. The baseline's threshold is its
best-F1 threshold on the data itself (an oracle, which favours the baseline); the assessor uses
its fixed threshold. `flagged_by_kind` gives the share of each kind of pair flagged at the threshold:
the recall on swaps, and the false-positive rate on agreeing and unanswering pairs. By default only
questions the adapter was not trained on are scored (its manifest says which; `--include-trained`
scores them all).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ..qa import question_key
from ..trained import add_unseen_arguments
from .config import ConflictConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        required=True,
        metavar="FILE",
        help="ConflictQA .json(l), RGB *_fact.json (JSONL), a labelled pair .jsonl (query, a, b, conflict, kind), "
        "or, read as RGB-style entity swaps, a PoisonedRAG .json or SynthWiki .csv",
    )
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
        "the training files of an adapter whose manifest does not list its questions)",
    )
    add_unseen_arguments(p, "the adapter")


def question_set(paths) -> set[str]:
    """The normalised questions of every record in `paths` (their `question` or `query` field)."""
    from ragarbiter.errors import InvalidInputError

    from ..trained import questions_in

    out = set()
    for path in paths:
        found = {question_key(q) for q in questions_in(path)}
        if not found:
            msg = (
                f"{path}: no 'question' or 'query' string in any record to exclude. Pass the ConflictQA, "
                "RGB, LitM or SynthWiki files the adapter was trained on."
            )
            raise InvalidInputError(msg)
        out |= found
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


def rates_by_kind(items, pair_scores, threshold: float) -> dict[str, dict]:
    """Share of pairs flagged at `threshold`, by what the pair is (its `kind`; "unanswering" for a passage
    that states no answer against one that does): the recall on swaps, the false positives elsewhere."""
    flagged: dict[str, list[bool]] = {}
    for item, m in zip(items, pair_scores):
        kinds = item.kinds or ("unlabelled",) * len(item.pairs)
        for (i, j, _), kind in zip(item.pairs, kinds):
            flagged.setdefault(kind, []).append(bool(m[i, j] >= threshold))
        for i, k in item.unanswering:
            flagged.setdefault("unanswering", []).append(bool(m[i, k] >= threshold))
    return {k: {"pairs": len(v), "flagged": round(float(np.mean(v)), 4)} for k, v in sorted(flagged.items())}


def run(args: argparse.Namespace) -> dict:
    from tqdm.auto import tqdm

    from ragarbiter.errors import EmptyCorpusError
    from ragarbiter.retrievers import DenseEncoder

    from ..metrics import best_f1_threshold
    from ..trained import check_trained, unseen_report
    from .data import bench_items
    from .model import ConflictScorer, default_adapter_dir

    items = bench_items(args.data)
    total = len(items)
    seen = question_set(args.exclude_questions)
    items = [item for item in items if question_key(item.query) not in seen]
    excluded = total - len(items)
    check = check_trained(args.adapter or default_adapter_dir()) if args.unseen_only else None
    if check is not None:
        items, trained = check.unseen(items, lambda item: item.query)
    else:
        trained = 0
    items = items[: args.limit] if args.limit else items
    if not items and trained:
        msg = (
            f"Every one of the {total} items in {args.data} has a question the adapter {str(check.adapter)!r} was "
            f"trained on ({trained}) or listed in --exclude-questions ({excluded}), so nothing is left to score. "
            "Pass --include-trained to score the trained questions too."
        )
        raise EmptyCorpusError(msg)
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
    c_threshold = best_f1_threshold(c_scores, labels)
    result = {
        "data": str(args.data),
        "n_items": len(items),
        "n_pairs": int(len(labels)),
        "n_conflict_pairs": int(labels.sum()),
        **({"n_excluded_items": excluded} if args.exclude_questions else {}),
        **unseen_report(check),
        "n_excluded_trained": trained,
        "assessor": {
            **report(a_scores, labels, a_sets, args.threshold),
            "flagged_by_kind": rates_by_kind(items, assessed, args.threshold),
        },
        "baseline_cosine": {
            **report(c_scores, labels, c_sets, c_threshold),
            "flagged_by_kind": rates_by_kind(items, cosine, c_threshold),
        },
        "ms_per_item": round(1000 * seconds / len(items), 1),
    }
    return result


def print_result(result: dict) -> None:
    print(f"{result['n_items']} items, {result['n_pairs']} pairs ({result['data']})")
    for name in ("assessor", "baseline_cosine"):
        m = result[name]
        print(f"{name:16} AUROC {m['pair_auroc']:.4f}  F1 {m['pair_f1']:.4f}  set accuracy {m['set_accuracy']:.4f}")
        kinds = ", ".join(f"{k} {v['flagged']:.2f} of {v['pairs']}" for k, v in m["flagged_by_kind"].items())
        print(f"{'':16} flagged at {m['threshold']}: {kinds}")
