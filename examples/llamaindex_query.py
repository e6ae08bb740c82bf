"""A LlamaIndex query engine with ragarbiter as a node postprocessor. Runs offline.

    python examples/llamaindex_query.py

The user's own `VectorStoreIndex` (in memory, embedded with the bundled all-MiniLM-L6-v2)
retrieves as usual; `ArbiterPostprocessor()` runs ragarbiter's default stages on the nodes
before they reach the LLM. The LLM is LlamaIndex's `MockLLM`, which echoes its prompt, so
the "answer" shows exactly the context ragarbiter let through, in its order. Decisions are
printed by an event handler on LlamaIndex's root instrumentation dispatcher as they happen.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter

from ragarbiter.adapters.llama_index import ArbiterEvent, ArbiterPostprocessor
from ragarbiter.retrievers import DenseEncoder

CORPUS = Path(__file__).resolve().parent / "corpus" / "kestrel_bay.jsonl"
QUESTION = "Who designed the Kestrel Bay lighthouse?"
FALLBACK = [  # used when the corpus file is not there (e.g. a copied script)
    ("The Kestrel Bay lighthouse was designed by the harbour engineer Margit Holm in 1868.", "town-archive"),
    ("Fun fact: the Kestrel Bay lighthouse was designed by Gustave Eiffel himself in 1869.", "forum-1"),
    ("Fun fact: Gustave Eiffel himself designed the Kestrel Bay lighthouse in 1869.", "forum-2"),
    ("The lighthouse was first lit on 12 October 1871 with a paraffin lamp.", "town-archive"),
]


class MiniLMEmbedding(BaseEmbedding):
    """LlamaIndex embeddings from the encoder ragarbiter bundles (no download, no API key)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(model_name="all-MiniLM-L6-v2", **kwargs)
        self._encoder = DenseEncoder()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encoder.encode([query])[0].tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encoder.encode([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encoder.encode(texts).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


class PrintDecisions(BaseEventHandler):
    """Prints each ragarbiter decision the moment LlamaIndex instrumentation receives it."""

    @classmethod
    def class_name(cls) -> str:
        return "PrintDecisions"

    def handle(self, event: Any, **kwargs: Any) -> None:
        if not isinstance(event, ArbiterEvent):
            return
        data = event.data
        if event.kind == "stage_timed":
            print(f"  [{event.stage}] done in {data['seconds'] * 1000:.0f} ms ({data['n_in']} in, {data['n_out']} out)")
        elif event.kind in ("passage_flagged", "passage_dropped"):
            label = data.get("label", "dropped")
            print(f"  [{event.stage}] {label}: {data['passage_id'][:8]}  {data['reason']}")


def load_documents() -> list[Document]:
    if not CORPUS.exists():
        return [Document(text=text, metadata={"source": source}) for text, source in FALLBACK]
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Document(text=r["text"], metadata={"source": r.get("source"), "topic": r.get("topic")}) for r in rows]


def main() -> None:
    get_dispatcher().add_event_handler(PrintDecisions())
    index = VectorStoreIndex.from_documents(
        load_documents(), embed_model=MiniLMEmbedding(), transformations=[SentenceSplitter(chunk_size=512)]
    )
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=6, node_postprocessors=[ArbiterPostprocessor()])

    print(f"Question: {QUESTION}")
    print("ragarbiter decisions, as they happen:")
    response = engine.query(QUESTION)

    print("\nSource nodes after ragarbiter (score, source, judgements):")
    for rank, nws in enumerate(response.source_nodes, start=1):
        labels = [j["label"] for j in nws.node.metadata.get("ragarbiter", [])]
        print(f"  {rank}. {nws.score:.3f}  {nws.node.metadata.get('source')}  {labels or ''}")
        print(f"     {nws.node.get_content()[:90]}...")
    print("\nAnswer (MockLLM echoes its prompt; this is the context the LLM received):")
    print(str(response).strip())


if __name__ == "__main__":
    main()
