"""Metrics used by the trainers and the benchmarks: binary classification (numpy only) and answer matching.

Answer metrics, judge-free:

- **exact match** of a short answer (`exact_match`);
- **consistency**: the answer against the reference, as token F1 (SQuAD-style normalisation)
  and, with an encoder, as cosine similarity of its embeddings;
- **cleanliness**: 1 - leakage, where leakage is the largest share of an inappropriate
  sentence's word bigrams that reappear in the answer (n-gram overlap), or, with an encoder, the
  largest cosine similarity between the answer and an inappropriate sentence, whichever is higher.
  Bigrams that the question itself contains are left out of the overlap.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

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


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_tokens(text: str) -> list[str]:
    text = text.casefold()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    return _ARTICLES.sub(" ", text).split()


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize_tokens(prediction), normalize_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def bigrams(tokens: Sequence[str]) -> set[tuple[str, str]]:
    return set(zip(tokens, tokens[1:]))


def ngram_leakage(answer: str, inappropriate: Sequence[str], question: str = "") -> float:
    """Largest share of one inappropriate sentence's bigrams found in the answer (0 when none).
    Bigrams of the question do not count: restating the question is not leakage."""
    asked = bigrams(normalize_tokens(question))
    found = bigrams(normalize_tokens(answer)) - asked
    best = 0.0
    for sentence in inappropriate:
        grams = bigrams(normalize_tokens(sentence)) - asked
        if grams:
            best = max(best, len(grams & found) / len(grams))
    return best


def cleanliness(answer: str, inappropriate: Sequence[str], encoder=None, question: str = "") -> float:
    leak = ngram_leakage(answer, inappropriate, question)
    if encoder is not None and inappropriate and answer.strip():
        vectors = encoder.encode([answer, *inappropriate])
        leak = max(leak, float((vectors[1:] @ vectors[0]).max()))
    return round(1.0 - max(0.0, min(1.0, leak)), 4)


def consistency(answer: str, reference: str, encoder=None) -> dict[str, float]:
    out = {"token_f1": round(token_f1(answer, reference), 4)}
    if encoder is not None:
        vectors = encoder.encode([answer or " ", reference or " "])
        out["cosine"] = round(float(vectors[0] @ vectors[1]), 4)
    return out
