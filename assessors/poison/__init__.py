"""Corpus-poisoning defence: planted near-duplicate groups, checked against the other evidence."""

from .config import PoisonConfig
from .model import SuspiciousGroup, judge_groups, tight_clusters
from .stage import PoisonFilter

__all__ = ["PoisonConfig", "PoisonFilter", "SuspiciousGroup", "judge_groups", "tight_clusters"]
