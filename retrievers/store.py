"""`QdrantStore`: ragarbiter's only vector store, a thin layer over qdrant-client.

One collection holds named vectors `dense` (cosine) and `sparse` (BM25 term weights,
Qdrant `Modifier.IDF`), and optionally `tokens`: the encoder's per-token embeddings as a
MaxSim multivector, for late-interaction reranking (`MaxSimReranker`). Point ids are content
hashes, so writing the same text twice updates one point. Embedded local mode by default;
`url=` targets a server or cluster.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ragarbiter.config import HYBRID_WEIGHTS, EncoderConfig, StoreConfig, check_k, check_mode, check_weights
from ragarbiter.errors import (
    ConfigError,
    DimensionMismatchError,
    EmptyQueryError,
    InvalidInputError,
    ShapeError,
    StoreLockedError,
    StoreUnreachableError,
    UnknownCollectionError,
)
from ragarbiter.types import Passage

from .encoders import DenseEncoder, SparseEncoder, SparseVector

logger = logging.getLogger(__name__)

DENSE, SPARSE, TOKENS = "dense", "sparse", "tokens"


@dataclass
class UpsertReport:
    added: int = 0
    skipped: int = 0


def _models():
    from qdrant_client import models

    return models


def _filter_value(key: str, value: Any) -> Any:
    """A metadata value a filter may match: a string, an integer or a boolean (or a list of them)."""
    items = list(value) if isinstance(value, (list, tuple, set)) else [value]
    bad = [v for v in items if not isinstance(v, (str, int))]
    if bad or not items:
        got = "an empty list" if not items else f"{type(bad[0]).__name__} {bad[0]!r:.60}"
        msg = (
            f"filter field {key!r} must be a string, an integer or a boolean, or a non-empty list of them; "
            f'got {got}. Example: {{{key!r}: "lighthouse"}} or {{{key!r}: ["a", "b"]}}.'
        )
        raise InvalidInputError(msg)
    return items if isinstance(value, (list, tuple, set)) else value


def build_filter(spec: Any):
    """A Qdrant `Filter` from `{"key": value}` (equality) or `{"key": [v1, v2]}` (any of).

    Keys match the passage metadata; `source` matches the passage source. Values are strings,
    integers or booleans; anything else (a nested object, a float, null) raises
    `InvalidInputError` naming the field. A `qdrant_client.models.Filter` passes through unchanged.
    """
    models = _models()
    if spec is None or isinstance(spec, models.Filter):
        return spec
    if not isinstance(spec, Mapping):
        msg = f"filter must be a dict of metadata values or a qdrant Filter, got {type(spec).__name__} {spec!r:.60}."
        raise InvalidInputError(msg)
    must = []
    for key, value in spec.items():
        if not isinstance(key, str) or not key:
            msg = f"filter keys must be non-empty metadata field names, got {key!r}."
            raise InvalidInputError(msg)
        field = key if key == "source" else f"metadata.{key}"
        value = _filter_value(key, value)
        if isinstance(value, list):
            must.append(models.FieldCondition(key=field, match=models.MatchAny(any=value)))
        else:
            must.append(models.FieldCondition(key=field, match=models.MatchValue(value=value)))
    return models.Filter(must=must)


class QdrantStore:
    """Qdrant-backed hybrid store. Heavy parts (client, encoders) are created on first use.

    With `token_vectors=True` a new collection also gets the `tokens` multivector (cosine,
    `MultiVectorComparator.MAX_SIM`) and every upsert writes each passage's token embeddings
    there; an existing collection must already have it. A collection made with `tokens` keeps
    getting them on upsert whatever the flag, so its points stay uniform.
    """

    def __init__(
        self,
        config: StoreConfig | None = None,
        *,
        encoder: DenseEncoder | None = None,
        sparse_encoder: SparseEncoder | None = None,
        token_vectors: bool = False,
        **overrides: Any,
    ) -> None:
        self.config = config or StoreConfig(**overrides)
        if config is not None and overrides:
            msg = f"Pass either a StoreConfig or keyword options, not both (got {sorted(overrides)})."
            raise TypeError(msg)
        self.encoder = encoder or DenseEncoder(EncoderConfig())
        self.sparse_encoder = sparse_encoder or SparseEncoder(self.encoder.config)
        self.token_vectors = bool(token_vectors)
        self._has_tokens: bool | None = None  # whether the collection has `tokens`, once read
        self._client = None
        self._aclient = None
        self._lock = threading.Lock()
        self._checked = False

    @property
    def collection(self) -> str:
        return self.config.collection

    def __repr__(self) -> str:
        return f"QdrantStore(collection={self.collection!r}, location={self.config.location!r})"

    # -- connection -----------------------------------------------------------------------
    @property
    def client(self):
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self):
        from qdrant_client import QdrantClient

        cfg = self.config
        if cfg.url:
            client = QdrantClient(url=cfg.url, api_key=cfg.api_key, timeout=int(cfg.timeout))
            try:
                client.get_collections()
            except Exception as exc:
                msg = (
                    f"Qdrant server at {cfg.url!r} is unreachable ({type(exc).__name__}: {exc}). "
                    f"Start it (e.g. `docker run -p 6333:6333 qdrant/qdrant`) or drop --url to use the embedded store."
                )
                raise StoreUnreachableError(msg) from exc
            return client
        engine = self.engine
        if engine == "edge":
            from .edge import EdgeClient

            return EdgeClient(None if cfg.path == ":memory:" else Path(cfg.location).expanduser())
        if cfg.path == ":memory:":
            return QdrantClient(location=":memory:")
        folder = Path(cfg.location).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        try:
            return QdrantClient(path=str(folder))
        except RuntimeError as exc:
            if "already accessed" not in str(exc):
                raise
            msg = (
                f"The store folder {str(folder)!r} is locked by another process. The embedded store allows one "
                f"process at a time: stop the other process, pass a different --store DIR, or run a Qdrant "
                f"server and point every process at it with --url http://HOST:6333."
            )
            raise StoreLockedError(msg) from exc

    @property
    def engine(self) -> str:
        """ "server", or the embedded engine in use: "edge" or "python"."""
        if self.config.url:
            return "server"
        if self.config.engine == "auto":
            from .edge import available

            return "edge" if available() else "python"
        return self.config.engine

    @property
    def aclient(self):
        """Native async client for server mode; None in embedded mode (which runs in-process)."""
        if not self.config.url:
            return None
        if self._aclient is None:
            from qdrant_client import AsyncQdrantClient

            self._aclient = AsyncQdrantClient(
                url=self.config.url, api_key=self.config.api_key, timeout=int(self.config.timeout)
            )
        return self._aclient

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            self._checked = False
            self._has_tokens = None

    def __enter__(self) -> QdrantStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- collections ----------------------------------------------------------------------
    def collections(self) -> list[str]:
        return sorted(c.name for c in self.client.get_collections().collections)

    def exists(self) -> bool:
        return bool(self.client.collection_exists(self.collection))

    def ensure_collection(self) -> None:
        """Create the collection if missing; check the encoder dimension if present."""
        if self._checked:
            return
        models = _models()
        if not self.exists():
            logger.info("creating collection %s (dense dim %d)", self.collection, self.encoder.dimension)
            vectors = {DENSE: models.VectorParams(size=self.encoder.dimension, distance=models.Distance.COSINE)}
            if self.token_vectors:
                vectors[TOKENS] = models.VectorParams(
                    size=self.encoder.dimension,
                    distance=models.Distance.COSINE,
                    multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
                )
            self.client.create_collection(
                self.collection,
                vectors_config=vectors,
                sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            )
            self._has_tokens = self.token_vectors
        else:
            self._check_dimension()
        self._checked = True

    def require_collection(self) -> None:
        """Raise `UnknownCollectionError` (listing what exists) unless the collection is there."""
        if self._checked:
            return
        if not self.exists():
            have = ", ".join(self.collections()) or "none"
            msg = (
                f"Unknown collection {self.collection!r} in {self.config.location!r} (collections: {have}). "
                f"Index documents first with `ragarbiter index PATH --collection {self.collection}`, "
                f"or pass --collection NAME."
            )
            raise UnknownCollectionError(msg)
        self._check_dimension()
        self._checked = True

    def _check_dimension(self) -> None:
        vectors = self.client.get_collection(self.collection).config.params.vectors
        params = vectors.get(DENSE) if isinstance(vectors, dict) else None
        if params is None:
            msg = (
                f"Collection {self.collection!r} has no '{DENSE}' vector; it was not made by ragarbiter. "
                f"Use another --collection name."
            )
            raise DimensionMismatchError(msg)
        if params.size != self.encoder.dimension:
            msg = (
                f"Collection {self.collection!r} stores {params.size}-d vectors but the encoder "
                f"{self.encoder.config.model!r} makes {self.encoder.dimension}-d ones. Use the encoder the "
                f"collection was built with, or index into a new --collection."
            )
            raise DimensionMismatchError(msg)
        tokens = vectors.get(TOKENS)
        self._has_tokens = tokens is not None
        if tokens is None and self.token_vectors:
            msg = (
                f"Collection {self.collection!r} was created without the '{TOKENS}' multivector, and Qdrant "
                f"cannot add it later. Index into a new collection with token_vectors=True, or pass "
                f"token_vectors=False to compute token embeddings at rerank time."
            )
            raise DimensionMismatchError(msg)
        if tokens is not None and tokens.size != self.encoder.dimension:
            msg = (
                f"Collection {self.collection!r} stores {tokens.size}-d token vectors but the encoder "
                f"{self.encoder.config.model!r} makes {self.encoder.dimension}-d ones. Use the encoder the "
                f"collection was built with, or index into a new collection."
            )
            raise DimensionMismatchError(msg)

    @property
    def has_token_vectors(self) -> bool:
        """Whether the collection exists and holds the `tokens` multivector."""
        if self._has_tokens is None:
            if not self.exists():
                return False
            vectors = self.client.get_collection(self.collection).config.params.vectors
            self._has_tokens = isinstance(vectors, dict) and TOKENS in vectors
        return self._has_tokens

    def count(self) -> int:
        self.require_collection()
        return int(self.client.count(self.collection, exact=True).count)

    def ids(self) -> set[str]:
        """Every point id in the collection (scrolls; meant for tests and audits)."""
        self.require_collection()
        out, offset = set(), None
        while True:
            points, offset = self.client.scroll(
                self.collection, limit=1024, offset=offset, with_payload=False, with_vectors=False
            )
            out.update(str(p.id) for p in points)
            if offset is None:
                return out

    # -- writing --------------------------------------------------------------------------
    def existing(self, ids: Sequence[str]) -> set[str]:
        found = self.client.retrieve(self.collection, ids=list(ids), with_payload=False, with_vectors=False)
        return {str(p.id) for p in found}

    def upsert(self, passages: Sequence[Passage], *, skip_existing: bool = True) -> UpsertReport:
        """Write one batch. Points whose content id is already stored are skipped (resume)."""
        self.ensure_collection()
        passages = list({p.id: p for p in passages}.values())
        have = self.existing([p.id for p in passages]) if skip_existing else set()
        todo = [p for p in passages if p.id not in have]
        if todo:
            dense = self.encoder.encode([p.text for p in todo])
            sparse = self.sparse_encoder.encode_documents([p.text for p in todo])
            tokens = (
                self.encoder.encode_tokens([p.text for p in todo]) if self.has_token_vectors else [None] * len(todo)
            )
            self.client.upsert(
                self.collection,
                points=[self._point(p, d, s, t) for p, d, s, t in zip(todo, dense, sparse, tokens)],
                wait=True,
            )
        return UpsertReport(added=len(todo), skipped=len(passages) - len(todo))

    def _point(self, passage: Passage, dense, sparse: SparseVector, tokens: np.ndarray | None = None):
        models = _models()
        payload = {"text": passage.text, "source": passage.source, "metadata": dict(passage.metadata)}
        vector = {DENSE: dense.tolist(), SPARSE: models.SparseVector(indices=sparse.indices, values=sparse.values)}
        if tokens is not None and len(tokens):  # Qdrant rejects an empty multivector: a wordless text has none
            vector[TOKENS] = tokens.tolist()
        return models.PointStruct(id=passage.id, vector=vector, payload=payload)

    # -- searching ------------------------------------------------------------------------
    def _requests(
        self,
        queries: Sequence[str],
        k: int,
        mode: str,
        filter: Any,
        prefetch_k: int,
        weights: Sequence[float] = HYBRID_WEIGHTS,
    ) -> list[Any]:
        """One Qdrant `QueryRequest` per query; the queries are encoded in one batch."""
        for q in queries:
            if not isinstance(q, str) or not q.strip():
                msg = f"The query is empty ({q!r}). Pass a question with at least one word."
                raise EmptyQueryError(msg)
        check_k(k)
        check_mode(mode)
        models = _models()
        flt = build_filter(filter)
        n = len(queries)
        dense = self.encoder.encode(queries).tolist() if mode in ("dense", "hybrid") else [None] * n
        sparse = (
            [
                models.SparseVector(indices=v.indices, values=v.values)
                for v in self.sparse_encoder.encode_queries(queries)
            ]
            if mode in ("sparse", "hybrid")
            else [None] * n
        )
        common = {"limit": k, "with_payload": True, "with_vector": [DENSE]}
        requests = []
        for d, sv in zip(dense, sparse):
            if mode == "dense":
                requests.append(models.QueryRequest(query=d, using=DENSE, filter=flt, **common))
            elif mode == "sparse":
                requests.append(models.QueryRequest(query=sv, using=SPARSE, filter=flt, **common))
            else:
                depth = max(prefetch_k, k)
                prefetch = [models.Prefetch(query=d, using=DENSE, limit=depth, filter=flt)]
                if sv.indices:  # a query with no indexable term has no sparse branch
                    prefetch.append(models.Prefetch(query=sv, using=SPARSE, limit=depth, filter=flt))
                fusion = models.RrfQuery(rrf=models.Rrf(weights=list(weights[: len(prefetch)])))
                requests.append(models.QueryRequest(prefetch=prefetch, query=fusion, **common))
        return requests

    def _answer(self, requests: list[Any], responses: list[Any]) -> list[list[Passage]]:
        out = []
        for req, resp in zip(requests, responses):
            if isinstance(req.query, _models().SparseVector) and not req.query.indices:
                out.append([])  # nothing indexable in the query: nothing can match
                continue
            out.append([self._passage(p.id, p.payload, p.score, p.vector) for p in resp.points])
        return out

    def search_batch(
        self,
        queries: Sequence[str],
        *,
        k: int = 10,
        mode: str = "hybrid",
        filter: Any = None,
        prefetch_k: int = 50,
        weights: Sequence[float] = HYBRID_WEIGHTS,
    ) -> list[list[Passage]]:
        """Top-k passages for each query (encoded together, sent as one batch request)."""
        self.require_collection()
        queries = list(queries)
        if not queries:
            return []
        requests = self._requests(queries, k, mode, filter, prefetch_k, check_weights(weights))
        responses = self.client.query_batch_points(self.collection, requests=requests)
        return self._answer(requests, responses)

    def near_duplicates(
        self, vectors: np.ndarray, *, threshold: float, limit: int = 8, filter: Any = None
    ) -> list[list[Passage]]:
        """For each unit vector (rows of `vectors`), the stored passages whose dense cosine with it
        reaches `threshold`, best first, at most `limit` (one batch request). `filter` as in `search`."""
        if not -1.0 <= float(threshold) <= 1.0:
            msg = f"near_duplicates threshold is a cosine in [-1, 1], got {threshold!r}. 0.75 suits MiniLM."
            raise ConfigError(msg)
        check_k(limit)
        self.require_collection()
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.encoder.dimension:
            msg = (
                f"near_duplicates takes an (n, {self.encoder.dimension}) array of dense vectors, got shape "
                f"{vectors.shape}. Encode the texts with this store's encoder."
            )
            raise ShapeError(msg)
        if not len(vectors):
            return []
        models = _models()
        flt = build_filter(filter)
        # the engines keep scores strictly above `score_threshold`: send the float32 just below, so a tie stays
        below = float(np.nextafter(np.float32(threshold), np.float32(-2.0)))
        requests = [
            models.QueryRequest(
                query=v.tolist(), using=DENSE, limit=limit, score_threshold=below, filter=flt, with_payload=True
            )
            for v in vectors
        ]
        responses = self.client.query_batch_points(self.collection, requests=requests)
        return [[self._passage(p.id, p.payload, p.score) for p in r.points if p.score >= threshold] for r in responses]

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        filter: Any = None,
        prefetch_k: int = 50,
        weights: Sequence[float] = HYBRID_WEIGHTS,
    ) -> list[Passage]:
        """Top-k passages for a query, best first; `Passage.score` is the search score."""
        return self.search_batch([query], k=k, mode=mode, filter=filter, prefetch_k=prefetch_k, weights=weights)[0]

    async def asearch(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        filter: Any = None,
        prefetch_k: int = 50,
        weights: Sequence[float] = HYBRID_WEIGHTS,
    ) -> list[Passage]:
        """Async search: the native async client against a server; a worker thread in embedded mode."""
        if self.aclient is None:
            return await asyncio.to_thread(
                self.search, query, k=k, mode=mode, filter=filter, prefetch_k=prefetch_k, weights=weights
            )
        await asyncio.to_thread(self.require_collection)
        requests = await asyncio.to_thread(self._requests, [query], k, mode, filter, prefetch_k, check_weights(weights))
        responses = await self.aclient.query_batch_points(self.collection, requests=requests)
        return self._answer(requests, responses)[0]

    def _passage(self, point_id: Any, payload: dict | None, score: float | None, vector: Any = None) -> Passage:
        payload = payload or {}
        if isinstance(vector, dict) and DENSE in vector:  # prime the cache: later stages skip re-encoding
            self.encoder.cache.put(payload.get("text", ""), np.asarray(vector[DENSE], dtype=np.float32))
        return Passage(
            text=payload.get("text", ""),
            id=str(point_id),
            metadata=payload.get("metadata") or {},
            score=score,
            source=payload.get("source"),
        )

    def fetch(self, ids: Iterable[str]) -> list[Passage]:
        """Stored passages by id (missing ids are left out)."""
        points = self.client.retrieve(self.collection, ids=list(ids), with_payload=True, with_vectors=False)
        return [self._passage(p.id, p.payload, None) for p in points]

    def fetch_token_vectors(self, ids: Iterable[str]) -> dict[str, np.ndarray]:
        """Stored `tokens` multivectors by id, each (n_tokens, dim) float32 with unit rows.

        Ids that are not stored (or not valid point ids), and points without token vectors,
        are left out; so is everything when the collection was indexed without them.
        """
        wanted = _point_ids(ids)  # Qdrant's spelling of each id -> the caller's
        if not wanted or not self.has_token_vectors:
            return {}
        request = [int(pid) if pid.isdigit() else pid for pid in wanted]
        points = self.client.retrieve(self.collection, ids=request, with_payload=False, with_vectors=[TOKENS])
        out = {}
        for p in points:
            vector = p.vector.get(TOKENS) if isinstance(p.vector, dict) else None
            if vector:
                out[wanted[str(p.id)]] = np.asarray(vector, dtype=np.float32)
        return out


def _point_ids(ids: Iterable[str]) -> dict[str, str]:
    """Map Qdrant's canonical form of each usable id (UUID or unsigned int) to the id as given."""
    out = {}
    for pid in ids:
        text = str(pid)
        if text.isdigit():
            out[str(int(text))] = text
            continue
        try:
            out[str(uuid.UUID(text))] = text
        except ValueError:
            continue  # not a point id: cannot be in the store
    return out
