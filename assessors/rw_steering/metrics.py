"""Judge-free metrics for mixed contexts.

- **consistency**: the answer against the reference, as token F1 (SQuAD-style normalisation)
  and as cosine similarity of the bundled encoder's embeddings.
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
