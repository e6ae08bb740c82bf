"""ConflictAssessor settings."""

from __future__ import annotations

from dataclasses import dataclass

from ..configs import AssessorConfig


@dataclass
class ConflictConfig(AssessorConfig):
    """`threshold`: the pair conflict probability from which two passages are said to give
    different answers to the query. `adapter`: a folder from `ragarbiter train conflict`."""
