"""Reader for PoisonedRAG targeted-attack files (the poison benchmark's input); it lives in `..qa`,
shared with the conflict benchmark, which reads the same files as entity swaps."""

from __future__ import annotations

from ..qa import POISONEDRAG_KEYS as KEYS
from ..qa import PoisonTarget, read_poisonedrag

__all__ = ["KEYS", "PoisonTarget", "read_poisonedrag"]
