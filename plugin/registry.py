"""Stages registered by name, and the default pipeline.

The core imports no other sub-package. Each sub-package registers its stages with
`@register_stage("name")` when imported, and `PROVIDERS` tells the registry which module
to import the first time a name is asked for. The default pipeline is data (a list of
stage names and options), so later components add themselves in one place: `DEFAULT_STAGES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from .errors import ConfigError
from .events import EventSink
from .stage import Pipeline, Stage

_REGISTRY: dict[str, Callable[..., Stage]] = {}

# name -> module that registers it on import
PROVIDERS: dict[str, str] = {
    "qdrant": "ragarbiter.retrievers",
    "dedupe": "ragarbiter.retrievers",
    "maxsim": "ragarbiter.retrievers",
    "poison": "ragarbiter.assessors.poison",
    "conflict": "ragarbiter.assessors.conflict",
    "inappropriate": "ragarbiter.assessors.inappropriate",
    "attention_sort": "ragarbiter.assessors.attention_sort",
    "lost_in_the_middle": "ragarbiter.assessors.attention_sort",
    "care": "ragarbiter.assessors.care",
    "rw_steering": "ragarbiter.assessors.rw_steering.stage",
}

# The post-retrieval stages every default chain runs, in order, with their options.
# `ragarbiter query`, `ragarbiter demo` and the framework adapters all read this list.
DEFAULT_STAGES: list[tuple[str, dict[str, Any]]] = [
    ("dedupe", {}),
    ("poison", {}),
    ("conflict", {}),
    ("inappropriate", {}),
]


def register_stage(name: str) -> Callable[[Callable[..., Stage]], Callable[..., Stage]]:
    def wrap(factory: Callable[..., Stage]) -> Callable[..., Stage]:
        _REGISTRY[name] = factory
        return factory

    return wrap


def stage_factory(name: str) -> Callable[..., Stage]:
    if name not in _REGISTRY and name in PROVIDERS:
        importlib.import_module(PROVIDERS[name])
    if name not in _REGISTRY:
        known = sorted(set(_REGISTRY) | set(PROVIDERS))
        msg = f"Unknown stage {name!r}. Registered stages: {', '.join(known)}."
        raise ConfigError(msg)
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
