"""Inter-passage conflict: which retrieved passages give different answers to the query."""

from .config import ConflictConfig
from .model import ConflictHead, ConflictNet, ConflictScorer, default_adapter_dir, shared_scorer
from .stage import ConflictAssessor, agreeing_clusters

__all__ = [
    "ConflictAssessor",
    "ConflictConfig",
    "ConflictHead",
    "ConflictNet",
    "ConflictScorer",
    "agreeing_clusters",
    "default_adapter_dir",
    "shared_scorer",
]
