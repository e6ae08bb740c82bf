"""InappropriateFilter settings."""

from __future__ import annotations

from dataclasses import dataclass

from ..adapted import AssessorConfig


@dataclass
class InappropriateConfig(AssessorConfig):
    """`threshold`: the probability that a sentence is inappropriate from which it is removed.
    `adapter`: a folder from `ragarbiter train inappropriate`."""
