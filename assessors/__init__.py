"""Judgement stages that work with any LLM, built on all-MiniLM-L6-v2 plus LoRA adapters.

- `ConflictAssessor` ("conflict"): passages that give different answers to the query.
- `PoisonFilter` ("poison"): planted groups of near-duplicates contradicted by other evidence.
- `InappropriateFilter` ("inappropriate"): removes false claims, hateful content, private
  information and injected instructions, sentence by sentence.
- `AttentionSorter` ("attention_sort"): orders passages by the attention a local causal LM pays
  them, most attended last (it needs a model; the stages above do not).
- `LostInTheMiddleReorder` ("lost_in_the_middle"): most relevant passages at both ends.

Importing this package is cheap; each stage's module (and torch) loads on first use.
"""

from __future__ import annotations

if __name__.partition(".")[0] != "ragarbiter":  # imported by its bare folder name: see ragarbiter._layout
    from ragarbiter._layout import hand_over

    hand_over(__name__, "ragarbiter.assessors")
else:
    import importlib
    from typing import Any

    _EXPORTS = {
        "ConflictAssessor": "ragarbiter.assessors.conflict",
        "PoisonFilter": "ragarbiter.assessors.poison",
        "InappropriateFilter": "ragarbiter.assessors.inappropriate",
        "AttentionSorter": "ragarbiter.assessors.attention_sort",
        "LostInTheMiddleReorder": "ragarbiter.assessors.attention_sort",
        "CareAssessor": "ragarbiter.assessors.care",
        "CareGenerator": "ragarbiter.assessors.care",
    }

    __all__ = sorted(_EXPORTS)

    def __getattr__(name: str) -> Any:
        if name in _EXPORTS:
            return getattr(importlib.import_module(_EXPORTS[name]), name)
        msg = f"module 'ragarbiter.assessors' has no attribute {name!r}"
        raise AttributeError(msg)
