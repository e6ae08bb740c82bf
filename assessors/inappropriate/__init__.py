"""Sentence-level, question-conditioned filtering of inappropriate content."""

from ..methods import Method

METHOD = Method(
    "inappropriate",
    "false claims, hateful content, private information and injected instructions, sentence by sentence",
    stages={"inappropriate": "InappropriateFilter"},
    config="InappropriateConfig",
    exports={
        "CATEGORIES": "data",
        "DESCRIPTIONS": "data",
        "read_pool": "data",
        "SentenceScorer": "model",
        "SentenceVerdict": "model",
        "shared_sentence_scorer": "stage",
    },
)
__getattr__ = METHOD.exports_getattr(__name__)
