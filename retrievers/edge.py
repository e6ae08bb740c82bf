"""The embedded store engine: Qdrant Edge shards behind the part of QdrantClient's API we use.

Qdrant Edge (`qdrant-edge-py`) is Qdrant's own storage and search engine, compiled, running
in-process. It replaces qdrant-client's local mode as the default embedded engine because
that mode scores every point in Python: at 10,000 passages a sparse search took ~100 ms
there and ~1 ms here. Everything else (named dense and sparse vectors, the IDF modifier,
MaxSim multivectors, prefetch and weighted RRF, payload filters) is the same Qdrant.

`EdgeClient` speaks qdrant-client's model objects (`QueryRequest`, `Prefetch`, `RrfQuery`,
`PointStruct`, `Filter`...) so `QdrantStore` builds one request for every engine. One folder
holds one shard per collection; a lock file makes the folder single-process, like
qdrant-client's local mode.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ragarbiter.errors import ConfigError, StoreLockedError

SHARDS = "shards"
LOCK_FILE = ".ragarbiter.lock"
RRF_K = 2  # Qdrant's default RRF constant, so results match a Qdrant server's
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def available() -> bool:
    try:
        import qdrant_edge  # noqa: F401
    except ImportError:
        return False
    return True


def _qe():
    import qdrant_edge

    return qdrant_edge


def _models():
    from qdrant_client import models

    return models


class EdgeClient:
    """Qdrant Edge shards in `folder` (a temporary folder when None, removed on close)."""

    def __init__(self, folder: str | Path | None) -> None:
        self._temporary = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="ragarbiter-edge-")) if folder is None else Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._lock_fd)
            msg = (
                f"The store folder {str(self.folder)!r} is locked by another process. The embedded store allows "
                f"one process at a time: stop the other process, pass a different --store DIR, or run a Qdrant "
                f"server and point every process at it with --url http://HOST:6333."
            )
            raise StoreLockedError(msg) from exc
        self._shards: dict[str, Any] = {}
        self._guard = threading.RLock()

    # -- shards ---------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        if not isinstance(name, str) or not _NAME.match(name):
            msg = (
                f"Collection name {name!r} cannot name an embedded shard folder. Use letters, digits, '_', '-' "
                f"or '.', starting with a letter or digit (at most 128 characters)."
            )
            raise ConfigError(msg)
        return self.folder / SHARDS / name

    def _shard(self, name: str):
        with self._guard:
            shard = self._shards.get(name)
            if shard is None:
                folder = self._dir(name)
                if not (folder / "edge_config.json").exists():
                    msg = f"Collection {name!r} does not exist in {str(self.folder)!r}."
                    raise ValueError(msg)
                shard = self._shards[name] = _qe().EdgeShard.load(str(folder))
            return shard

    def get_collections(self):
        root = self.folder / SHARDS
        names = sorted(p.name for p in root.iterdir() if (p / "edge_config.json").exists()) if root.exists() else []
        return SimpleNamespace(collections=[SimpleNamespace(name=n) for n in names])

    def collection_exists(self, name: str) -> bool:
        return (self._dir(name) / "edge_config.json").exists()

    def create_collection(self, name: str, vectors_config: dict, sparse_vectors_config: dict | None = None) -> bool:
        qe, models = _qe(), _models()
        vectors = {}
        for vname, params in vectors_config.items():
            multi = None
            if params.multivector_config is not None:
                multi = qe.MultiVectorConfig(comparator=qe.MultiVectorComparator.MaxSim)
            vectors[vname] = qe.EdgeVectorParams(
                size=params.size, distance=_distance(params.distance), multivector_config=multi
            )
        sparse = {}
        for vname, params in (sparse_vectors_config or {}).items():
            idf = params.modifier == models.Modifier.IDF
            sparse[vname] = qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf if idf else None)
        with self._guard:
            folder = self._dir(name)
            folder.parent.mkdir(parents=True, exist_ok=True)
            self._shards[name] = qe.EdgeShard.create(str(folder), qe.EdgeConfig(vectors=vectors, sparse_vectors=sparse))
        return True

    def get_collection(self, name: str):
        """The collection's vector parameters, read from the shard's own config file."""
        models = _models()
        config = json.loads((self._dir(name) / "edge_config.json").read_text(encoding="utf-8"))
        vectors = {}
        for vname, params in (config.get("vectors") or {}).items():
            multi = None
            if params.get("multivector_config"):
                multi = models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
            vectors[vname] = models.VectorParams(
                size=int(params["size"]), distance=models.Distance.COSINE, multivector_config=multi
            )
        return SimpleNamespace(config=SimpleNamespace(params=SimpleNamespace(vectors=vectors)))

    # -- reading and writing --------------------------------------------------------------
    def count(self, name: str, exact: bool = True):
        return SimpleNamespace(count=int(self._shard(name).count(_qe().CountRequest(exact=exact))))

    def upsert(self, name: str, points: list, wait: bool = True) -> None:
        qe = _qe()
        converted = [qe.Point(_point_id(p.id), _vector(p.vector), p.payload) for p in points]
        shard = self._shard(name)
        shard.update(qe.UpdateOperation.upsert_points(converted))

    def retrieve(self, name: str, ids: list, with_payload: Any = True, with_vectors: Any = False) -> list:
        if not ids:
            return []
        records = self._shard(name).retrieve(
            [_point_id(i) for i in ids], with_payload=with_payload, with_vector=with_vectors
        )
        return [_record(r) for r in records]

    def scroll(
        self, name: str, limit: int = 10, offset: Any = None, with_payload: Any = True, with_vectors: Any = False
    ) -> tuple[list, Any]:
        qe = _qe()
        request = qe.ScrollRequest(
            limit=limit,
            offset=None if offset is None else _point_id(offset),
            with_payload=with_payload,
            with_vector=with_vectors,
        )
        records, next_offset = self._shard(name).scroll(request)
        return [_record(r) for r in records], next_offset

    def query_batch_points(self, name: str, requests: list) -> list:
        shard = self._shard(name)
        return [SimpleNamespace(points=[_record(p) for p in shard.query(_query_request(r))]) for r in requests]

    def close(self) -> None:
        with self._guard:
            for shard in self._shards.values():
                shard.close()
            self._shards.clear()
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = None
            if self._temporary:
                shutil.rmtree(self.folder, ignore_errors=True)


# -- conversions from qdrant-client models ----------------------------------------------------
def _distance(distance) -> Any:
    qe, models = _qe(), _models()
    table = {
        models.Distance.COSINE: qe.Distance.Cosine,
        models.Distance.DOT: qe.Distance.Dot,
        models.Distance.EUCLID: qe.Distance.Euclid,
        models.Distance.MANHATTAN: qe.Distance.Manhattan,
    }
    return table[distance]


def _point_id(pid: Any) -> Any:
    if isinstance(pid, int):
        return pid
    text = str(pid)
    return int(text) if text.isdigit() else text


def _named(value: Any) -> Any:
    models = _models()
    if isinstance(value, models.SparseVector):
        return _qe().SparseVector(list(value.indices), [float(v) for v in value.values])
    return value


def _vector(vector: Any) -> Any:
    if isinstance(vector, dict):
        return {k: _named(v) for k, v in vector.items()}
    return vector


def _record(r: Any) -> SimpleNamespace:
    """A qdrant-client-shaped point: `id` (str for UUIDs), `payload`, `score`, `vector`."""
    pid = r.id if isinstance(r.id, int) else str(r.id)
    return SimpleNamespace(
        id=pid, payload=getattr(r, "payload", None), score=getattr(r, "score", None), vector=getattr(r, "vector", None)
    )


def _filter(flt: Any) -> Any:
    if flt is None:
        return None
    qe, models = _qe(), _models()

    def condition(c):
        if isinstance(c, models.Filter):
            return _filter(c)
        if not isinstance(c, models.FieldCondition):
            msg = f"The embedded store supports field conditions and nested filters, not {type(c).__name__}."
            raise ConfigError(msg)
        match = c.match
        if isinstance(match, models.MatchValue):
            return qe.FieldCondition(key=c.key, match=qe.MatchValue(match.value))
        if isinstance(match, models.MatchAny):
            return qe.FieldCondition(key=c.key, match=qe.MatchAny(list(match.any)))
        if c.range is not None:
            r = c.range
            return qe.FieldCondition(key=c.key, range=qe.RangeFloat(gt=r.gt, gte=r.gte, lt=r.lt, lte=r.lte))
        msg = f"The embedded store cannot translate the condition on {c.key!r}; use match or range conditions."
        raise ConfigError(msg)

    def many(items):
        if items is None:
            return None
        items = items if isinstance(items, list) else [items]
        return [condition(c) for c in items]

    return qe.Filter(must=many(flt.must), should=many(flt.should), must_not=many(flt.must_not))


def _scoring(query: Any, using: str | None) -> Any:
    qe, models = _qe(), _models()
    if isinstance(query, models.RrfQuery):
        weights = list(query.rrf.weights) if query.rrf.weights else None
        return qe.Fusion.Rrf(k=query.rrf.k or RRF_K, weights=weights)
    if isinstance(query, models.SparseVector):
        return qe.Query.Nearest(_named(query), using=using)
    if isinstance(query, list):
        return qe.Query.Nearest(query, using=using)
    msg = f"The embedded store cannot run a {type(query).__name__} query; use a dense, sparse or RRF query."
    raise ConfigError(msg)


def _prefetch(p: Any) -> Any:
    nested = (
        [_prefetch(x) for x in (p.prefetch if isinstance(p.prefetch, list) else [p.prefetch])] if p.prefetch else None
    )
    return _qe().Prefetch(limit=p.limit, query=_scoring(p.query, p.using), prefetches=nested, filter=_filter(p.filter))


def _query_request(r: Any) -> Any:
    prefetch = r.prefetch if isinstance(r.prefetch, list) else ([r.prefetch] if r.prefetch else [])
    return _qe().QueryRequest(
        limit=r.limit,
        query=_scoring(r.query, r.using),
        prefetches=[_prefetch(p) for p in prefetch] or None,
        with_payload=r.with_payload if r.with_payload is not None else True,
        with_vector=r.with_vector if r.with_vector is not None else False,
        filter=_filter(r.filter),
        score_threshold=r.score_threshold,
    )
