"""LangChain's own contract tests for retrievers, run against ArbiterRetriever."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_tests")

from langchain_tests.integration_tests import RetrieversIntegrationTests  # noqa: E402

from ragarbiter.adapters.langchain import ArbiterRetriever  # noqa: E402
from tests.adapters.support import QUESTION  # noqa: E402


class TestArbiterRetrieverStandard(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _use_store(self, store):
        self._store = store

    @property
    def retriever_constructor(self) -> type[ArbiterRetriever]:
        return ArbiterRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"store": self._store}

    @property
    def retriever_query_example(self) -> str:
        return QUESTION
