"""Judgement stages, one folder per method, each declared once in its `__init__.py` (see `methods`).

- `ConflictAssessor` ("conflict"): passages that give different answers to the query.
- `PoisonFilter` ("poison"): planted groups of near-duplicates contradicted by other evidence.
- `InappropriateFilter` ("inappropriate"): removes false claims, hateful content, private
  information and injected instructions, sentence by sentence.
- `AttentionSorter` ("attention_sort"): orders passages by the attention a local causal LM pays
  them, most attended last (it needs a model; the stages above do not).
- `LostInTheMiddleReorder` ("lost_in_the_middle"): most relevant passages at both ends.
- `CareAssessor` ("care") and `RWSteering` ("rw_steering"): adapters of a local generator.

Importing this package is cheap; each stage's module (and torch) loads on first use.
"""

from __future__ import annotations

if __name__.partition(".")[0] != "ragarbiter":  # imported by its bare folder name: see ragarbiter._layout
    from ragarbiter._layout import hand_over

    hand_over(__name__, "ragarbiter.assessors")
else:
    import importlib
    from typing import Any

    from .methods import export_table, stage_table

    def __getattr__(name: str) -> Any:
        table = export_table()
        if name in table:
            return getattr(importlib.import_module(table[name]), name)
        msg = f"module 'ragarbiter.assessors' has no attribute {name!r}"
        raise AttributeError(msg)

    def __dir__() -> list[str]:
        return sorted([*globals(), *export_table()])

    STAGES = stage_table()
    __all__ = sorted(export_table())
