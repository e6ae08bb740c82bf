"""Dataclass configs, validated at construction. The CLI and Python share these defaults."""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError

C = TypeVar("C")

SEARCH_MODES = ("hybrid", "dense", "sparse")
# Weighted RRF (dense, sparse). Dense leads and BM25 refines: on the held-out half of the
# LitM NQ-Open questions this kept dense R@1 and raised R@5 above it, where equal weights
# cost 2.5 points of R@1 (benchmarks/results/retrieval.md, "Hybrid fusion").
HYBRID_WEIGHTS = (1.0, 0.3)
DEFAULT_ENCODER = "all-MiniLM-L6-v2"
DEFAULT_COLLECTION = "ragarbiter"


def default_data_dir() -> Path:
    """Per-user data folder: $RAGARBITER_HOME, else $XDG_DATA_HOME/ragarbiter, else ~/.local/share/ragarbiter."""
    if os.environ.get("RAGARBITER_HOME"):
        return Path(os.environ["RAGARBITER_HOME"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "ragarbiter"


def default_store_dir() -> Path:
    return default_data_dir() / "qdrant"


def _positive(owner: str, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            msg = f"{owner}.{name} must be > 0, got {value!r}."
            raise ConfigError(msg)


ENGINES = ("auto", "edge", "python")


@dataclass
class StoreConfig:
    """Where vectors live: embedded folder (`path`), `:memory:`, or a server (`url`).

    `engine` picks the embedded engine: "edge" (Qdrant Edge, Qdrant's compiled engine
    in-process), "python" (qdrant-client's pure-Python local mode, linear in the store
    size), or "auto" (edge when `qdrant-edge-py` is installed). A server ignores it.
    The two embedded engines keep different files: a folder made by one is not read by
    the other.
    """

    collection: str = DEFAULT_COLLECTION
    path: str | None = None
    url: str | None = None
    api_key: str | None = None
    timeout: float = 10.0
    engine: str = "auto"

    def __post_init__(self) -> None:
        if self.path and self.url:
            msg = f"StoreConfig got both path={self.path!r} and url={self.url!r}. Pass one: --store DIR or --url URL."
            raise ConfigError(msg)
        if not self.collection or not isinstance(self.collection, str):
            msg = f"StoreConfig.collection must be a non-empty string, got {self.collection!r}."
            raise ConfigError(msg)
        _positive("StoreConfig", timeout=self.timeout)
        if self.engine not in ENGINES:
            msg = f"StoreConfig.engine must be one of {', '.join(ENGINES)}, got {self.engine!r}."
            raise ConfigError(msg)

    @property
    def location(self) -> str:
        if self.url:
            return self.url
        return self.path or str(default_store_dir())


@dataclass
class EncoderConfig:
    """The dense/token encoder and the BM25 parameters of the sparse encoder."""

    model: str = DEFAULT_ENCODER
    device: str | None = None
    batch_size: int = 64
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    bm25_avg_len: float = 96.0
    bm25_stopwords: bool = True

    def __post_init__(self) -> None:
        _positive("EncoderConfig", batch_size=self.batch_size, bm25_k1=self.bm25_k1, bm25_avg_len=self.bm25_avg_len)
        if not 0.0 <= self.bm25_b <= 1.0:
            msg = f"EncoderConfig.bm25_b must lie in [0, 1], got {self.bm25_b!r}."
            raise ConfigError(msg)


@dataclass
class ChunkConfig:
    """Chunking, counted in the encoder's tokens."""

    chunk_tokens: int = 200
    overlap_tokens: int = 40

    def __post_init__(self) -> None:
        _positive("ChunkConfig", chunk_tokens=self.chunk_tokens)
        if not 0 <= self.overlap_tokens < self.chunk_tokens:
            msg = (
                f"ChunkConfig.overlap_tokens must be >= 0 and < chunk_tokens ({self.chunk_tokens}), "
                f"got {self.overlap_tokens}."
            )
            raise ConfigError(msg)


@dataclass
class RetrieverConfig:
    """How many passages to fetch and how."""

    k: int = 10
    mode: str = "hybrid"
    prefetch_k: int = 50
    hybrid_weights: tuple[float, float] = HYBRID_WEIGHTS

    def __post_init__(self) -> None:
        check_mode(self.mode)
        check_k(self.k)
        self.hybrid_weights = check_weights(self.hybrid_weights)
        _positive("RetrieverConfig", prefetch_k=self.prefetch_k)


def check_mode(mode: str) -> str:
    if mode not in SEARCH_MODES:
        msg = f"Unknown search mode {mode!r}. Use one of: {', '.join(SEARCH_MODES)}."
        raise ConfigError(msg)
    return mode


def check_weights(weights: object) -> tuple[float, float]:
    """(dense, sparse) RRF weights: two non-negative numbers, not both zero."""
    try:
        dense, sparse = (float(w) for w in weights)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        dense = sparse = -1.0
    if dense < 0 or sparse < 0 or dense + sparse == 0:
        msg = (
            "hybrid weights must be two non-negative numbers (dense, sparse), "
            f"not both 0; got {weights!r}. The default is {HYBRID_WEIGHTS}."
        )
        raise ConfigError(msg)
    return dense, sparse


def check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        msg = f"k must be a positive integer, got {k!r}. Ask for at least one passage (e.g. k=5)."
        raise ConfigError(msg)
    return k


def with_overrides(cls: type[C], config: C | None, overrides: dict[str, Any], owner: Callable[..., Any]) -> C:
    """`config` (default: ``cls()``) with `overrides` applied, validated again by the dataclass.

    Stages take ``(config=None, *, runtime objects, **overrides)``, so the dataclass is the one
    source of every default. `owner` is the stage class (or function) that takes them: its
    keyword-only parameters are the runtime objects named when a positional argument is not a
    config, and an unknown override raises one `ConfigError` that lists the valid ones.
    """
    name = getattr(owner, "__qualname__", str(owner))
    settings = [f.name for f in dataclasses.fields(cls) if f.init]
    if config is not None and not isinstance(config, cls):
        params = inspect.signature(owner).parameters.values()
        runtime = ", ".join(f"{p.name}=" for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)
        msg = (
            f"{name}'s only positional argument is its {cls.__name__}, got {type(config).__name__}"
            + (f" {config!r:.60}. " if isinstance(config, (str, int, float, os.PathLike)) else ". ")
            + (
                f"Pass runtime objects as keywords ({runtime}) and settings as keywords too: "
                if runtime
                else "Pass settings as keywords: "
            )
            + f"{', '.join(settings)}."
        )
        raise ConfigError(msg)
    unknown = sorted(set(overrides) - set(settings))
    if unknown:
        msg = f"{name} got unknown option(s) {unknown}. Valid options: {', '.join(sorted(settings))}."
        raise ConfigError(msg)
    return dataclasses.replace(config, **overrides) if config is not None else cls(**overrides)


@dataclass(frozen=True)
class ServerLimits:
    """What one `ragarbiter serve` process accepts (`ragarbiter.adapters.server`). The defaults suit one
    small machine; raise them with the hardware. `queue_depth` may be 0 (no waiting: busy means 429)."""

    max_body_bytes: int = 65_536
    max_query_chars: int = 2_000
    max_k: int = 100
    workers: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 2)
    queue_depth: int = 64
    deadline_s: float = 30.0
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        for name, value in dataclasses.asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                if name == "queue_depth" and value == 0:
                    continue
                msg = f"ServerLimits.{name} must be a positive number, got {value!r}."
                raise ConfigError(msg)
