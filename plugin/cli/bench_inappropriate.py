"""`ragarbiter bench inappropriate --data POOL.json`: sentence-level filtering vs the majority baseline."""

from __future__ import annotations

import argparse
import time

import numpy as np

from .common import add_json_arg, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "inappropriate",
        help="sentence-level inappropriate-content filtering on a testbed pool",
        description="Each pool record becomes one passage holding its appropriate sentences "
        "(Generated Information / Non-private Information) and its inappropriate ones "
        "(Synonym Sentence / Privacy information) in a seeded order; every sentence is "
        "scored for the record's question. The baseline predicts the majority class.",
    )
    p.add_argument("--data", required=True, metavar="FILE", help="testbed pool .json")
    p.add_argument(
        "--adapter", metavar="DIR", help="adapter folder from `ragarbiter train inappropriate` (default: shipped)"
    )
    p.add_argument("--threshold", type=float, default=0.5, help="removal threshold (default: 0.5)")
    p.add_argument(
        "--restated-at",
        type=float,
        default=None,
        metavar="COS",
        help="similarity from which two sentences of a passage count as restatements, each judged without "
        "the other (default: the scorer's own, 0.8); the same filter judging every sentence in its "
        "whole passage is reported beside it",
    )
    p.add_argument("--start", type=int, default=0, metavar="N", help="skip the first N records (e.g. those trained on)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use at most N records")
    add_json_arg(p)
    p.set_defaults(func=run)


def _verdicts(scorer, examples, restated_at, desc: str, quiet: bool) -> list:
    """Each example's passage (the pool already gives its sentences) scored for its question."""
    from tqdm.auto import tqdm

    from ragarbiter.assessors.text import join_sentences

    out = []
    for ex in tqdm(examples, desc=desc, disable=quiet):  # one question per record
        text, spans = join_sentences(ex.sentences)
        out += scorer.score(ex.query, [text], sentences=[spans], restated_at=restated_at)[0]
    return out


def run(args: argparse.Namespace) -> int:
    from ragarbiter.assessors.inappropriate import SentenceScorer, read_pool
    from ragarbiter.assessors.inappropriate.config import RESTATED_AT
    from ragarbiter.assessors.inappropriate.data import bench_example
    from ragarbiter.assessors.metrics import binary_report
    from ragarbiter.errors import EmptyCorpusError

    records = read_pool(args.data)[args.start :]
    records = records[: args.limit] if args.limit else records
    if not records:
        msg = f"{args.data} has no records from index {args.start}. Lower --start or pass a larger pool."
        raise EmptyCorpusError(msg)
    scorer = SentenceScorer(args.adapter, restated_at=RESTATED_AT if args.restated_at is None else args.restated_at)
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
    result = {
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
    if args.json:
        print_json(result)
    else:
        print(
            f"{result['n_sentences']} sentences ({result['n_inappropriate']} inappropriate) from {args.data}; "
            f"{restated} judged apart from their restatements (similarity >= {within})"
        )
        for name in ("filter", "filter_whole_passage_only", "baseline_majority"):
            m = result[name]
            print(f"{name:26} P {m['precision']:.4f}  R {m['recall']:.4f}  F1 {m['f1']:.4f}  AUROC {m['auroc']:.4f}")
    return 0
