"""A closed synthetic world for measuring RAG behaviour where the truth is known.

- `world`: typed fictional entities from a seed, their fact passages and QA items; some are
  *known* (in a model's training text), the rest *unknown* (only ever in a context).
- `conditions`: context sets per question under controlled conditions (clean, counterfactual,
  conflict, poisoned, mixture, position).
- `corpus`: the training text of a testbed model (facts, closed-book and RAG examples).

It is data, not a model: `ragarbiter.testbed` trains a small LM on it and runs every stage
against it, and methods build their closed-world training and evaluation sets from it.
"""

from .conditions import CONDITIONS, PROPORTIONS, ContextBuilder, ContextSet
from .corpus import CorpusMaker, CorpusMix
from .world import ATTRIBUTES, Entity, QAItem, World, WorldConfig, build_world, load_world

__all__ = [
    "ATTRIBUTES",
    "CONDITIONS",
    "PROPORTIONS",
    "ContextBuilder",
    "ContextSet",
    "CorpusMaker",
    "CorpusMix",
    "Entity",
    "QAItem",
    "World",
    "WorldConfig",
    "build_world",
    "load_world",
]
