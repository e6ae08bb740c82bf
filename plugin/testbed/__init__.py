"""The closed-world conflict testbed: a small causal LM that knows part of a synthetic world
(`ragarbiter.synthetic`), and a harness that measures every ragarbiter stage on it.

    world = build_world(WorldConfig(seed=0))            # entities, facts, QA items
    train_testbed("small", 0, out)                       # tokenizer + LlamaForCausalLM + manifest
    run_testbed(load_testbed(out))                       # the benchmark JSON
"""

from pathlib import Path

from ragarbiter.assessors.metrics import exact_match
from ragarbiter.config import default_data_dir
from ragarbiter.lm import CausalLM, Example, render_prompt
from ragarbiter.synthetic import (
    ATTRIBUTES,
    CONDITIONS,
    PROPORTIONS,
    ContextBuilder,
    ContextSet,
    CorpusMaker,
    CorpusMix,
    Entity,
    QAItem,
    World,
    WorldConfig,
    build_world,
    load_world,
)

from .harness import STAGES, Harness, HarnessConfig, closed_book_accuracy, run_testbed
from .lm import build_tokenizer, load_testbed, size, sizes, train_testbed
from .plots import markdown_table, plot_curves


def cached_model_dir(size_name: str, seed: int) -> Path:
    """Where `--train-size` models live: <data dir>/testbed/<size>-seed<seed> (never in the repository)."""
    return default_data_dir() / "testbed" / f"{size_name}-seed{seed}"


__all__ = [
    "ATTRIBUTES",
    "CONDITIONS",
    "PROPORTIONS",
    "STAGES",
    "ContextBuilder",
    "ContextSet",
    "CorpusMaker",
    "CorpusMix",
    "Entity",
    "Example",
    "CausalLM",
    "Harness",
    "HarnessConfig",
    "QAItem",
    "World",
    "WorldConfig",
    "build_tokenizer",
    "build_world",
    "cached_model_dir",
    "closed_book_accuracy",
    "exact_match",
    "load_testbed",
    "load_world",
    "markdown_table",
    "plot_curves",
    "render_prompt",
    "run_testbed",
    "size",
    "sizes",
    "train_testbed",
]
