"""ConflictAssessor settings."""

from __future__ import annotations

from dataclasses import dataclass

from ..configs import AssessorConfig


@dataclass
class ConflictConfig(AssessorConfig):
    """`threshold`: the pair conflict probability from which two passages are said to give
    different answers to the query. 0.7 is the smallest of 0.5-0.9 at which the false-positive rate
    on development same-entity pairs (hand-written pairs about another attribute, SynthWiki sentences
    about another attribute) is at most 10%, chosen by a rule fixed in advance
    (benchmarks/results/conflict.md). `adapter`: a folder from `ragarbiter train conflict`."""

    threshold: float = 0.7
