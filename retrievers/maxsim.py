"""`MaxSimReranker`: late-interaction (ColBERT-style) reranking of retrieved passages.

A single-vector search compresses a passage into one point, so a passage that matches a
query's rare terms word for word can rank below a fluent but generic one. MaxSim keeps one
vector per token: each query token finds its best match in the passage, and the passage
scores the mean of those best matches. Token embeddings come from the same encoder as the
dense search (no extra model), read from the store's `tokens` multivector when the
collection was indexed with it, or computed for the candidates on the fly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ragarbiter.errors import ConfigError, EmptyQueryError
from ragarbiter.events import ContextReordered
from ragarbiter.stage import Stage, drop
from ragarbiter.types import Context, Passage

from .encoders import DenseEncoder, EmbeddingCache

if TYPE_CHECKING:  # pragma: no cover
    from .store import QdrantStore

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "triton", "torch")  # as in ragarbiter.kernels, which imports torch
RETRIEVAL_SCORE_KEY = "retrieval_score"


class MaxSimReranker(Stage):
    """Reorder the Context's passages by MaxSim between query and passage token embeddings.

    The score of a passage is ``(1 / Lq) * sum_i max_t cos(q_i, p_t)`` over the ``Lq``
    query tokens ``q_i`` and the passage tokens ``p_t`` ([CLS], [SEP] and padding left out):
    the kernel's raw MaxSim divided by the query length, so it lies in [-1, 1] and scores of
    different queries are comparable. It replaces `Passage.score`; the score the passage
    came with is kept in ``metadata["retrieval_score"]`` (the first one, if reranked twice).
    A passage without tokens (an empty text) scores None and goes last; ties keep their
    previous order.

    Nothing is dropped unless `top_n` is set; then the passages ranked below it are
    recorded in `Context.dropped` with their rank and score.

    Args:
        encoder: the token encoder; defaults to the store's encoder, else all-MiniLM-L6-v2.
        store: a `QdrantStore` whose collection may hold `tokens` multivectors, read by
            passage id instead of re-encoding the candidates.
        top_n: keep only the best `top_n` passages (None keeps all).
        backend: the `ragarbiter.kernels.maxsim` backend: ``"auto"`` (Triton on CUDA, the
            PyTorch reference on CPU), ``"triton"`` or ``"torch"``.
        batch_size: texts per encoder batch when candidates are encoded on the fly.
        cache_size: how many passages' token embeddings to keep in memory (by text).
    """

    name = "maxsim"

    def __init__(
        self,
        encoder: DenseEncoder | None = None,
        *,
        store: QdrantStore | None = None,
        top_n: int | None = None,
        backend: str = "auto",
        batch_size: int | None = None,
        cache_size: int = 1024,
    ) -> None:
        _check_positive("top_n", top_n, optional=True, hint="None keeps every passage")
        _check_positive("batch_size", batch_size, optional=True, hint="e.g. 32")
        _check_positive("cache_size", cache_size, optional=False, hint="e.g. 1024")
        if backend not in BACKENDS:
            valid = ", ".join(repr(b) for b in BACKENDS)
            msg = f"MaxSimReranker backend={backend!r} is not a known backend; use one of {valid}."
            raise ConfigError(msg)
        if encoder is None:
            encoder = store.encoder if store is not None else DenseEncoder()
        if store is not None and store.encoder.config.model != encoder.config.model:
            msg = (
                f"MaxSimReranker encoder {encoder.config.model!r} differs from the store's "
                f"{store.encoder.config.model!r}, whose token vectors it would compare against. "
                f"Pass the store's encoder (or leave encoder=None)."
            )
            raise ConfigError(msg)
        self.encoder = encoder
        self.store = store
        self.top_n = top_n
        self.backend = backend
        self.batch_size = batch_size
        self.cache = EmbeddingCache(capacity=cache_size)

    def __repr__(self) -> str:
        return f"MaxSimReranker(top_n={self.top_n!r}, backend={self.backend!r}, store={self.store!r})"

    # -- the stage --------------------------------------------------------------------------
    def _run(self, context: Context) -> Context:
        passages = context.passages
        if not passages:
            return context
        scores, sources = self.score(context.query, passages)
        order = sorted(range(len(passages)), key=lambda i: -scores[i])  # stable: ties keep their order
        reranked = tuple(_rescored(passages[i], scores[i]) for i in order)
        moved = sum(i != j for i, j in enumerate(order))
        reason = (
            f"MaxSim reranking over {self.encoder.config.model} token embeddings ({sources}); "
            f"{moved} of {len(passages)} passages changed rank"
        )
        event = ContextReordered(
            stage=self.name, before=tuple(p.id for p in passages), after=tuple(p.id for p in reranked), reason=reason
        )
        out = context.evolve(passages=reranked, events=[event])
        if self.top_n is None or len(reranked) <= self.top_n:
            return out
        n = len(reranked)
        to_drop = {
            p.id: f"ranked #{rank} of {n} by MaxSim (score {_fmt(p.score)}), below top_n={self.top_n}"
            for rank, p in enumerate(reranked[self.top_n :], start=self.top_n + 1)
        }
        return drop(out, to_drop, self.name)

    # -- scoring ----------------------------------------------------------------------------
    def score(self, query: str, passages: Sequence[Passage]) -> tuple[np.ndarray, str]:
        """MaxSim of `query` against each passage, divided by the query's token count.

        Returns the (n,) float64 scores (``-inf`` for a passage without tokens) and a short
        note of where the passage token embeddings came from.
        """
        [query_tokens] = self.encoder.encode_tokens([query])  # (Lq, d)
        if len(query_tokens) == 0:
            msg = f"The query {query!r} has no tokens to match. Pass a question with at least one word."
            raise EmptyQueryError(msg)
        docs, sources = self.passage_tokens(passages)
        raw = self._maxsim(query_tokens, docs)  # (n,)
        return raw / len(query_tokens), sources

    def passage_tokens(self, passages: Sequence[Passage]) -> tuple[list[np.ndarray], str]:
        """Token embeddings of each passage: from the cache, then the store, then the encoder."""
        found: dict[str, np.ndarray] = {}
        for p in passages:
            cached = self.cache.get(p.text)
            if cached is not None:
                found[p.text] = cached
        n_cached = len(found)
        n_stored = 0
        missing = [p for p in passages if p.text not in found]
        if missing and self.store is not None:
            stored = self.store.fetch_token_vectors(p.id for p in missing)
            for p in missing:
                if p.id in stored and p.text not in found:
                    found[p.text] = stored[p.id]
                    self.cache.put(p.text, stored[p.id])
                    n_stored += 1
        to_encode = list(dict.fromkeys(p.text for p in passages if p.text not in found))
        if to_encode:
            for text, tokens in zip(to_encode, self.encoder.encode_tokens(to_encode, batch_size=self.batch_size)):
                found[text] = tokens
                self.cache.put(text, tokens)
        sources = f"{n_cached} cached, {n_stored} from the store, {len(to_encode)} encoded"
        logger.debug("maxsim token embeddings: %s", sources)
        return [found[p.text] for p in passages], sources

    def _maxsim(self, query_tokens: np.ndarray, docs: list[np.ndarray]) -> np.ndarray:
        """Raw MaxSim of one query against packed documents, via `ragarbiter.kernels.maxsim`."""
        import torch

        from ragarbiter.kernels import maxsim

        device = torch.device(self.encoder.device)
        lengths = [len(d) for d in docs]
        dim = query_tokens.shape[1]
        packed = np.concatenate(docs) if sum(lengths) else np.zeros((0, dim), dtype=np.float32)  # (T, d)
        cu_seqlens = torch.tensor(np.concatenate([[0], np.cumsum(lengths)]), dtype=torch.int64, device=device)  # (n+1,)
        queries = torch.from_numpy(np.ascontiguousarray(query_tokens, dtype=np.float32))[None].to(device)  # (1, Lq, d)
        packed_t = torch.from_numpy(np.ascontiguousarray(packed, dtype=np.float32)).to(device)  # (T, d)
        scores = maxsim(queries, packed_t, cu_seqlens, backend=self.backend)  # (1, n)
        return scores[0].double().cpu().numpy()


def _rescored(passage: Passage, score: float) -> Passage:
    metadata = dict(passage.metadata)
    metadata.setdefault(RETRIEVAL_SCORE_KEY, passage.score)
    return passage.evolve(score=float(score) if np.isfinite(score) else None, metadata=metadata)


def _fmt(score: float | None) -> str:
    return "none: no tokens" if score is None else f"{score:.3f}"


def _check_positive(name: str, value: int | None, *, optional: bool, hint: str) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"MaxSimReranker {name} must be a positive integer, got {value!r} ({hint})."
        raise ConfigError(msg)
