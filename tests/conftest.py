"""Shared fixtures: one encoder per session, throwaway stores, an isolated data folder."""

from __future__ import annotations

import itertools
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Triton decides between the interpreter and compiled mode when it is first imported, and
# transformers may import it during collection: choose before anything can.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

FACTS = [
    ("The Halvorsen Observatory was founded in 1898 by the astronomer Ingrid Halvorsen.", "observatory.txt"),
    ("Ingrid Halvorsen built the observatory on Mount Tarn to escape the city lights.", "observatory.txt"),
    ("The river Lenne floods every spring when the snow on Mount Tarn melts.", "river.txt"),
    ("Basalt columns along the coast formed from cooling lava about sixty million years ago.", "geology.txt"),
    ("The town library lends telescopes to residents for two weeks at a time.", "library.txt"),
    ("Tarnby's bakery is famous for its cardamom buns, baked every morning at five.", "bakery.txt"),
]

_counter = itertools.count()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Never touch the real per-user data folder from tests."""
    monkeypatch.setenv("RAGARBITER_HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture(scope="session")
def default_generator_models():
    """The per-user models folder holding the default generator (not the per-test data folder), so its
    one-time GGUF conversion is reused across tests and runs; skips when the generator is not installed."""
    import importlib.util

    from ragarbiter.lm.generator import DEFAULT_GENERATOR, PACKAGED, models_dir, resolve_generator

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("RAGARBITER_HOME", raising=False)
        mp.delenv("RAGARBITER_MODELS", raising=False)
        converted = (models_dir() / DEFAULT_GENERATOR / "config.json").is_file()
        if not converted and importlib.util.find_spec(PACKAGED[DEFAULT_GENERATOR].module) is None:
            pytest.skip(f"the default generator is not installed ({PACKAGED[DEFAULT_GENERATOR].install})")
        return resolve_generator().parent


@pytest.fixture(scope="session")
def encoder():
    from ragarbiter.retrievers import DenseEncoder

    enc = DenseEncoder()
    enc.model  # load once per session  # noqa: B018
    return enc


@pytest.fixture
def make_store(encoder):
    """Factory for `:memory:` stores sharing the session encoder; a fresh collection each call."""
    from ragarbiter import StoreConfig
    from ragarbiter.retrievers import QdrantStore

    stores = []

    def make(collection: str | None = None, path: str = ":memory:"):
        name = collection or f"test{next(_counter)}"
        store = QdrantStore(StoreConfig(collection=name, path=path), encoder=encoder)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def fact_passages():
    from ragarbiter import Passage

    return [Passage(text, source=src, metadata={"topic": src.split(".")[0]}) for text, src in FACTS]


@pytest.fixture
def filled_store(make_store, fact_passages):
    store = make_store()
    store.upsert(fact_passages)
    return store
