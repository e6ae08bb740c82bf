"""Fixtures for the adapter tests: a small store with one planted near-duplicate, and probe stages."""

from __future__ import annotations

import pytest

from ragarbiter import Passage, Pipeline, StoreConfig
from ragarbiter.retrievers import Deduplicator, QdrantRetriever, QdrantStore
from tests.adapters.support import DUPLICATE, QUESTION, ConcurrencyProbe, GateStage


@pytest.fixture(scope="session")
def store(encoder):
    """The six facts plus a near-copy of the first, in a `:memory:` store. Read-only: shared."""
    from tests.conftest import FACTS

    facts = [Passage(text, source=src, metadata={"topic": src.split(".")[0]}) for text, src in FACTS]
    shared = QdrantStore(StoreConfig(collection="adapters", path=":memory:"), encoder=encoder)
    shared.upsert([*facts, DUPLICATE])
    yield shared
    shared.close()


@pytest.fixture
def expected(store):
    """What the store itself returns for QUESTION (ids and scores, best first)."""
    return store.search(QUESTION, k=4)


@pytest.fixture
def judging_pipeline(store, encoder):
    """Retrieval, then a deduplicator that flags copies (and keeps them)."""
    return Pipeline([QdrantRetriever(store), Deduplicator(encoder)])


@pytest.fixture
def dropping_pipeline(store, encoder):
    """Retrieval, then a deduplicator that removes the copies (so something is dropped)."""
    return Pipeline([QdrantRetriever(store), Deduplicator(encoder, drop=True)])


@pytest.fixture
def probe():
    return ConcurrencyProbe()


@pytest.fixture
def gate():
    return GateStage()
