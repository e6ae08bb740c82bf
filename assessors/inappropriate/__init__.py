"""Sentence-level, question-conditioned filtering of inappropriate content.

`samples.py` is part of the data role: the written training sentences (and their look-alikes)
that `data.py` mixes into the pool passages, kept apart because merged they would make `data.py`
much longer than the other role files.
"""

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
        "DataRecipe": "data",
        "SentenceScorer": "model",
        "SentenceVerdict": "model",
        "shared_sentence_scorer": "stage",
    },
)
__getattr__ = METHOD.exports_getattr(__name__)
