"""Sentence-level, question-conditioned filtering of inappropriate content."""

from .config import InappropriateConfig
from .data import CATEGORIES, DESCRIPTIONS, read_pool
from .model import InappropriateNet, SentenceHead, SentenceScorer, SentenceVerdict
from .stage import InappropriateFilter, shared_sentence_scorer

__all__ = [
    "CATEGORIES",
    "DESCRIPTIONS",
    "InappropriateConfig",
    "InappropriateFilter",
    "InappropriateNet",
    "SentenceHead",
    "SentenceScorer",
    "SentenceVerdict",
    "read_pool",
    "shared_sentence_scorer",
]
