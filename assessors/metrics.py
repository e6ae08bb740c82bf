"""Metrics used by the trainers and the benchmarks: binary classification (numpy only) and answer matching."""

from __future__ import annotations

import re

import numpy as np


def auroc(scores, labels) -> float:
    """Area under the ROC curve (ties count half); 0.5 when one class is missing."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def prf(predicted, labels) -> dict[str, float]:
    """Precision, recall and F1 of the positive class."""
    p = np.asarray(predicted).astype(bool)
    y = np.asarray(labels).astype(bool)
    tp = float((p & y).sum())
    precision = tp / p.sum() if p.sum() else 0.0
    recall = tp / y.sum() if y.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def best_f1_threshold(scores, labels) -> float:
    """The score threshold with the highest F1 (what an oracle would pick; used for baselines)."""
    s = np.asarray(scores, dtype=np.float64)
    candidates = np.unique(s)
    if len(candidates) > 200:
        candidates = np.quantile(s, np.linspace(0, 1, 201))
    best, best_t = -1.0, 0.5
    for t in candidates:
        f1 = prf(s >= t, labels)["f1"]
        if f1 > best:
            best, best_t = f1, float(t)
    return best_t


def binary_report(scores, labels, threshold: float) -> dict[str, float]:
    """precision / recall / f1 at `threshold` plus AUROC."""
    s = np.asarray(scores, dtype=np.float64)
    return {**prf(s >= threshold, labels), "auroc": round(auroc(s, labels), 4), "threshold": round(float(threshold), 4)}


def normalize(text: str) -> str:
    """An answer for exact matching: outer dots and spaces stripped, runs of spaces collapsed, case folded."""
    return re.sub(r"\s+", " ", text.strip().strip(".").strip()).casefold()


def exact_match(prediction: str, answer: str) -> bool:
    return normalize(prediction) == normalize(answer)
