"""Sentence-level inappropriate-content filtering on a testbed pool, against the majority baseline.

Each pool record becomes one passage holding its appropriate sentences (Generated Information /
Non-private Information) and its inappropriate ones (Synonym Sentence / Privacy information) in a
seeded order; every sentence is scored for the record's question. The same filter judging every
sentence in its whole passage only (no restatements read apart) is reported beside it, and the
baseline predicts the majority class.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from .config import InappropriateConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="FILE", help="testbed pool .json")
    p.add_argument(
        "--adapter", metavar="DIR", help="adapter folder from `ragarbiter train inappropriate` (default: shipped)"
    )
    threshold, restated_at = InappropriateConfig.threshold, InappropriateConfig.restated_at
    p.add_argument("--threshold", type=float, default=threshold, help=f"removal threshold (default: {threshold})")
    p.add_argument(
        "--restated-at",
        type=float,
        default=restated_at,
        metavar="COS",
        help="similarity from which two sentences of a passage count as restatements, each judged without "
        f"the other (default: {restated_at}); the same filter judging every sentence in its whole passage "
        "is reported beside it",
    )
    p.add_argument("--start", type=int, default=0, metavar="N", help="skip the first N records (e.g. those trained on)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use at most N records")


def _verdicts(scorer, examples, restated_at, desc: str, quiet: bool) -> list:
    """Each example's passage (the pool already gives its sentences) scored for its question."""
    from tqdm.auto import tqdm

    from ..text import join_sentences

    out = []
    for ex in tqdm(examples, desc=desc, disable=quiet):  # one question per record
        text, spans = join_sentences(ex.sentences)
        out += scorer.score(ex.query, [text], sentences=[spans], restated_at=restated_at)[0]
    return out


def run(args: argparse.Namespace) -> dict:
    from ragarbiter.errors import EmptyCorpusError

    from ..metrics import binary_report
    from .data import bench_example, read_pool
    from .model import SentenceScorer

    records = read_pool(args.data)[args.start :]
    records = records[: args.limit] if args.limit else records
    if not records:
        msg = f"{args.data} has no records from index {args.start}. Lower --start or pass a larger pool."
        raise EmptyCorpusError(msg)
    scorer = SentenceScorer(args.adapter, restated_at=args.restated_at)
    within = scorer.load().restated_at  # checked by the scorer
    examples = [bench_example(r, seed=args.start + i) for i, r in enumerate(records)]
    labels = [int(y > 0) for ex in examples for y in ex.labels]
    start = time.perf_counter()
    verdicts = _verdicts(scorer, examples, within, "passages", args.json)
    seconds = time.perf_counter() - start
    plain = [v.score for v in _verdicts(scorer, examples, None, "passages, whole only", args.json)]
    scores = [v.score for v in verdicts]
    restated = sum(v.restatements > 0 for v in verdicts)
    scores, plain, labels = np.array(scores), np.array(plain), np.array(labels)
    majority = int(labels.mean() >= 0.5)
    metrics = ("precision", "recall", "f1", "auroc")
    filt = binary_report(scores, labels, args.threshold)
    whole = binary_report(plain, labels, args.threshold)
    base = binary_report(np.full(len(labels), float(majority)), labels, 0.5)
    return {
        "data": str(args.data),
        "n_records": len(records),
        "n_sentences": int(len(labels)),
        "n_inappropriate": int(labels.sum()),
        "start": args.start,
        "restated_at": within,
        "n_read_apart": int(restated),
        "filter": {k: filt[k] for k in metrics},
        "filter_whole_passage_only": {k: whole[k] for k in metrics},
        "baseline_majority": {k: base[k] for k in metrics},
        "ms_per_passage": round(1000 * seconds / len(examples), 1),
    }


def print_result(result: dict) -> None:
    print(
        f"{result['n_sentences']} sentences ({result['n_inappropriate']} inappropriate) from {result['data']}; "
        f"{result['n_read_apart']} judged apart from their restatements (similarity >= {result['restated_at']})"
    )
    for name in ("filter", "filter_whole_passage_only", "baseline_majority"):
        m = result[name]
        print(f"{name:26} P {m['precision']:.4f}  R {m['recall']:.4f}  F1 {m['f1']:.4f}  AUROC {m['auroc']:.4f}")
