"""A LlamaIndex query engine with ragarbiter as a node postprocessor and a real local LLM. Runs offline.

    python examples/llamaindex_query.py [--generator NAME_OR_DIR]

The user's own `VectorStoreIndex` (in memory, embedded with the bundled all-MiniLM-L6-v2)
retrieves as usual; `ArbiterPostprocessor()` runs ragarbiter's default stages on the nodes
before they reach the LLM. Decisions are printed by an event handler on LlamaIndex's root
instrumentation dispatcher as they happen, i.e. before the LLM is called.

The LLM is ragarbiter's default generator, SmolLM2-135M-Instruct (or any local Hugging Face
causal-LM folder given with --generator), loaded with `ragarbiter.lm.load_generator` and handed
to LlamaIndex's own Hugging Face integration, `llama_index.llms.huggingface.HuggingFaceLLM`, as a
ready model and tokenizer: it runs in this process and downloads nothing. `is_chat_model=True`
makes the query engine send chat messages, which `HuggingFaceLLM` renders with the tokenizer's
chat template; generation is greedy and short.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.llms import LLM
from llama_index.core.node_parser import SentenceSplitter

from ragarbiter.adapters.llama_index import ArbiterEvent, ArbiterPostprocessor
from ragarbiter.lm import DEFAULT_GENERATOR, load_generator
from ragarbiter.retrievers import DenseEncoder

CORPUS = Path(__file__).resolve().parent / "corpus" / "kestrel_bay.jsonl"
QUESTION = "Who designed the Kestrel Bay lighthouse?"
FALLBACK = [  # used when the corpus file is not there (e.g. a copied script)
    ("The Kestrel Bay lighthouse was designed by the harbour engineer Margit Holm in 1868.", "town-archive"),
    ("Fun fact: the Kestrel Bay lighthouse was designed by Gustave Eiffel himself in 1869.", "forum-1"),
    ("Fun fact: Gustave Eiffel himself designed the Kestrel Bay lighthouse in 1869.", "forum-2"),
    ("The lighthouse was first lit on 12 October 1871 with a paraffin lamp.", "town-archive"),
]
MAX_NEW_TOKENS = 48


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
    """Prints each ragarbiter decision the moment LlamaIndex instrumentation receives it (and keeps it)."""

    events: list = []  # the ArbiterEvents seen, in order

    @classmethod
    def class_name(cls) -> str:
        return "PrintDecisions"

    def handle(self, event: Any, **kwargs: Any) -> None:
        if not isinstance(event, ArbiterEvent):
            return
        self.events.append(event)
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


def load_llm(generator: str | None = None, max_new_tokens: int = MAX_NEW_TOKENS) -> LLM:
    """A local causal LM as a LlamaIndex LLM, through llama-index-llms-huggingface (offline, greedy)."""
    from llama_index.llms.huggingface import HuggingFaceLLM

    gen = load_generator(generator)
    tok = gen.tokenizer
    return HuggingFaceLLM(
        model=gen.model,
        tokenizer=tok,
        model_name=str(gen.path),  # shown in the metadata; nothing is loaded by name
        tokenizer_name=str(gen.path),
        max_new_tokens=max_new_tokens,
        is_chat_model=True,  # chat messages in, rendered by the tokenizer's chat template
        generate_kwargs={"do_sample": False, "pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id},
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--generator",
        default=DEFAULT_GENERATOR,
        metavar="NAME_OR_DIR",
        help=f"the local LLM: a generator name or a Hugging Face causal-LM folder (default: {DEFAULT_GENERATOR})",
    )
    args = parser.parse_args(argv)

    index = VectorStoreIndex.from_documents(
        load_documents(), embed_model=MiniLMEmbedding(), transformations=[SentenceSplitter(chunk_size=512)]
    )
    engine = index.as_query_engine(
        llm=load_llm(args.generator), similarity_top_k=6, node_postprocessors=[ArbiterPostprocessor()]
    )

    print(f"Question: {QUESTION}")
    print("ragarbiter decisions, as they happen:")
    dispatcher, decisions = get_dispatcher(), PrintDecisions(events=[])
    dispatcher.add_event_handler(decisions)
    try:
        response = engine.query(QUESTION)
    finally:
        dispatcher.event_handlers.remove(decisions)

    print(f"\nAnswer: {' '.join(str(response).split())}")
    print("\nSource nodes the LLM got, after ragarbiter (score, source, judgements):")
    for rank, nws in enumerate(response.source_nodes, start=1):
        labels = [j["label"] for j in nws.node.metadata.get("ragarbiter", [])]
        print(f"  {rank}. {nws.score:.3f}  {nws.node.metadata.get('source')}  {labels or ''}")
        print(f"     {nws.node.get_content()[:90]}...")
    return {"response": response, "events": decisions.events}


if __name__ == "__main__":
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar for every model the stages load
    main()
