"""Stages registered by name, and the default pipeline.

The core imports no other sub-package. The sub-packages in `PROVIDERS` each publish a table
``STAGES = {name: "module:Class"}`` (the assessors derive theirs from each method folder's one
declaration); the registry reads them the first time an unknown name is asked for and builds the
stage as ``Class(**options)``. `register_stage` adds a stage of your own. The default pipeline is
data (a list of stage names and options), so components add themselves in one place: `DEFAULT_STAGES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from .errors import ConfigError
from .events import EventSink
from .stage import Pipeline, Stage

_REGISTRY: dict[str, Callable[..., Stage]] = {}

# Sub-packages that publish a `STAGES` table (imported by name: the core depends on none of them).
PROVIDERS = ("ragarbiter.retrievers", "ragarbiter.assessors")

# The post-retrieval stages every default chain runs, in order, with their options.
# `ragarbiter query`, `ragarbiter demo` and the framework adapters all read this list.
DEFAULT_STAGES: list[tuple[str, dict[str, Any]]] = [
    ("dedupe", {}),
    ("poison", {}),
    ("conflict", {}),
    ("inappropriate", {}),
]


def register_stage(name: str) -> Callable[[Callable[..., Stage]], Callable[..., Stage]]:
    """Register a stage factory (a Stage class, or a function returning a Stage) under `name`."""

    def wrap(factory: Callable[..., Stage]) -> Callable[..., Stage]:
        _REGISTRY[name] = factory
        return factory

    return wrap


def provided_stages() -> dict[str, str]:
    """Name -> ``"module:Class"`` from every provider's `STAGES` table."""
    table: dict[str, str] = {}
    for package in PROVIDERS:
        table.update(importlib.import_module(package).STAGES)
    return table


def stage_factory(name: str) -> Callable[..., Stage]:
    if name not in _REGISTRY:
        provided = provided_stages()
        if name not in provided:
            known = sorted(set(_REGISTRY) | set(provided))
            msg = f"Unknown stage {name!r}. Registered stages: {', '.join(known)}."
            raise ConfigError(msg)
        module, attr = provided[name].split(":")
        _REGISTRY[name] = getattr(importlib.import_module(module), attr)
    return _REGISTRY[name]


def build_stage(name: str, **options: Any) -> Stage:
    return stage_factory(name)(**options)


def default_post_stages(overrides: dict[str, dict[str, Any]] | None = None) -> list[Stage]:
    """The default assess/sort stages, built fresh (`overrides` maps a name to extra options)."""
    overrides = overrides or {}
    return [build_stage(name, **{**opts, **overrides.get(name, {})}) for name, opts in DEFAULT_STAGES]


def default_pipeline(
    store: Any = None,
    *,
    k: int | None = None,
    mode: str | None = None,
    sinks: Sequence[EventSink] = (),
    retrieve: bool = True,
) -> Pipeline:
    """The pipeline `ragarbiter query`, the demo and the adapters use when given nothing.

    `store` is a `QdrantStore` (default: the embedded store in the per-user data folder).
    With `retrieve=False` the pipeline holds only the post-retrieval stages. The poison stage
    is given the store (either way) to look for planted copies that were not all retrieved, so
    the store's collection must exist; pass `store=None` with `retrieve=False` to judge the
    passages alone.
    """
    stages: list[Stage] = []
    overrides: dict[str, dict[str, Any]] = {}
    if retrieve:
        opts = {k_: v for k_, v in (("store", store), ("k", k), ("mode", mode)) if v is not None}
        stages.append(build_stage("qdrant", **opts))
        retriever = stages[0]  # the poison stage looks for planted copies in the same store, behind the same filter
        overrides["poison"] = {"store": retriever.store, "store_filter": retriever.filter}
    elif store is not None:
        overrides["poison"] = {"store": store}
    stages += default_post_stages(overrides)
    return Pipeline(stages, sinks=sinks, name="ragarbiter")
