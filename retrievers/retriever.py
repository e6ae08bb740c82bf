"""`QdrantRetriever`: the retrieval Stage over a `QdrantStore`."""

from __future__ import annotations

from typing import Any

from ragarbiter.config import RetrieverConfig, check_k, check_mode
from ragarbiter.events import PassagesRetrieved
from ragarbiter.stage import Stage
from ragarbiter.types import Context, Passage

from .store import QdrantStore


class QdrantRetriever(Stage):
    """Fetch the top-k passages for the Context's query (hybrid dense + sparse by default).

    Per-call options on the Context override the constructor: `k`, `mode`, `filter`.
    Passages already on the Context are kept first; retrieved ones follow, without repeats.
    """

    name = "retrieve"
    retrieves = True

    def __init__(
        self,
        store: QdrantStore | None = None,
        *,
        k: int = RetrieverConfig.k,
        mode: str = RetrieverConfig.mode,
        filter: Any = None,
        prefetch_k: int = RetrieverConfig.prefetch_k,
        hybrid_weights: tuple[float, float] = RetrieverConfig.hybrid_weights,
    ) -> None:
        self.config = RetrieverConfig(k=k, mode=mode, prefetch_k=prefetch_k, hybrid_weights=hybrid_weights)
        self.store = store if store is not None else QdrantStore()
        self.filter = filter

    def _params(self, context: Context) -> dict[str, Any]:
        opts = context.options
        return {
            "k": check_k(opts.get("k", self.config.k)),
            "mode": check_mode(opts.get("mode", self.config.mode)),
            "filter": opts.get("filter", self.filter),
            "prefetch_k": self.config.prefetch_k,
            "weights": self.config.hybrid_weights,
        }

    def _merge(self, context: Context, found: list[Passage], params: dict[str, Any]) -> Context:
        seen = {p.id for p in context.passages}
        new = [p for p in found if p.id not in seen]
        event = PassagesRetrieved(
            stage=self.name,
            query=context.query,
            passage_ids=tuple(p.id for p in new),
            scores=tuple(p.score for p in new),
            mode=params["mode"],
        )
        return context.evolve(passages=context.passages + tuple(new), events=[event])

    def _run(self, context: Context) -> Context:
        params = self._params(context)
        return self._merge(context, self.store.search(context.query, **params), params)

    async def _arun(self, context: Context) -> Context:
        params = self._params(context)
        return self._merge(context, await self.store.asearch(context.query, **params), params)
