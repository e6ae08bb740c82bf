"""A LangChain RAG chain with ragarbiter between the retriever and a real local LLM. Runs offline.

    python examples/langchain_chain.py [--generator NAME_OR_DIR]

The corpus is Kestrel Bay (examples/corpus/), indexed into a throwaway in-memory store. The
LLM is ragarbiter's default generator, SmolLM2-135M-Instruct (or any local Hugging Face causal-LM
folder given with --generator), loaded with `ragarbiter.lm.load_generator` and put behind
LangChain's own Hugging Face integration: a transformers `text-generation` pipeline (greedy)
wrapped in `langchain_huggingface.HuggingFacePipeline`, and that in `ChatHuggingFace`, which
renders the chat messages with the model's chat template. Both classes run the model in this
process, so nothing goes over the network; the tokenizer and model id are passed in so that
`ChatHuggingFace` never looks anything up on the Hub. `langchain-huggingface` is installed
with `pip install --no-deps` because it pins huggingface-hub<2, and these local classes need
none of the Hub APIs.

The same chain runs twice: once over the plain hybrid retrieval of the store (no judging) and
once over `ArbiterRetriever`, so the two answers show what ragarbiter's decisions change. Swap
in your own chat model and drop `store=` to use the store `ragarbiter index` filled.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from ragarbiter import Passage, Pipeline, StoreConfig
from ragarbiter.adapters.langchain import ArbiterCallbackHandler, ArbiterRetriever
from ragarbiter.lm import DEFAULT_GENERATOR, load_generator
from ragarbiter.retrievers import QdrantRetriever, QdrantStore

CORPUS = Path(__file__).resolve().parent / "corpus" / "kestrel_bay.jsonl"
QUESTION = "Who designed the Kestrel Bay lighthouse?"
FALLBACK = [  # used when the corpus file is not there (e.g. a copied script)
    ("The Kestrel Bay lighthouse was designed by the harbour engineer Margit Holm in 1868.", "town-archive"),
    ("Fun fact: the Kestrel Bay lighthouse was designed by Gustave Eiffel himself in 1869.", "forum-1"),
    ("Fun fact: Gustave Eiffel himself designed the Kestrel Bay lighthouse in 1869.", "forum-2"),
    ("The lighthouse was first lit on 12 October 1871 with a paraffin lamp.", "town-archive"),
]
K = 6
MAX_NEW_TOKENS = 48

PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer only from the numbered context. Passages marked [flagged] are suspect.\n\n{context}"),
        ("human", "{question}"),
    ]
)


def load_corpus() -> list[Passage]:
    if not CORPUS.exists():
        return [Passage(text, source=source) for text, source in FALLBACK]
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Passage(r["text"], source=r.get("source"), metadata={"topic": r.get("topic")}) for r in rows]


def load_chat_model(generator: str | None = None, max_new_tokens: int = MAX_NEW_TOKENS) -> BaseChatModel:
    """A local causal LM as a LangChain chat model, through langchain-huggingface (offline, greedy)."""
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline
    from transformers import pipeline

    gen = load_generator(generator)
    pipe = pipeline(
        "text-generation",
        model=gen.model,
        tokenizer=gen.tokenizer,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        return_full_text=False,  # the reply only, not the prompt in front of it
        pad_token_id=gen.tokenizer.pad_token_id,
    )
    model_id = str(gen.path)
    llm = HuggingFacePipeline(pipeline=pipe, model_id=model_id)
    # With tokenizer= and model_id= given, ChatHuggingFace loads nothing and asks the Hub nothing.
    return ChatHuggingFace(llm=llm, tokenizer=gen.tokenizer, model_id=model_id)


def format_context(docs: list[Document]) -> str:
    """What the LLM sees: the retriever's order, with ragarbiter's flags spelled out."""
    lines = []
    for i, doc in enumerate(docs, start=1):
        labels = sorted({j["label"] for j in doc.metadata.get("ragarbiter", [])})
        mark = f" [flagged: {', '.join(labels)}]" if labels else ""
        lines.append(f"[{i}]{mark} ({doc.metadata.get('source')}) {doc.page_content}")
    return "\n".join(lines)


def build_chain(retriever: BaseRetriever, llm: BaseChatModel):
    """question -> {"docs", "question", "answer"}: the answer and the context it was given."""
    answer = (
        {"context": RunnableLambda(itemgetter("docs")) | format_context, "question": itemgetter("question")}
        | PROMPT
        | llm
        | StrOutputParser()
    )
    return {"docs": retriever, "question": RunnablePassthrough()} | RunnablePassthrough.assign(answer=answer)


def one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--generator",
        default=DEFAULT_GENERATOR,
        metavar="NAME_OR_DIR",
        help=f"the local LLM: a generator name or a Hugging Face causal-LM folder (default: {DEFAULT_GENERATOR})",
    )
    args = parser.parse_args(argv)

    store = QdrantStore(StoreConfig(collection="kestrel-bay", path=":memory:"))
    try:
        store.upsert(load_corpus())
        llm = load_chat_model(args.generator)
        handler = ArbiterCallbackHandler()
        plain = build_chain(ArbiterRetriever(pipeline=Pipeline([QdrantRetriever(store)]), k=K), llm).invoke(QUESTION)
        result = build_chain(ArbiterRetriever(store=store, k=K), llm).invoke(QUESTION, config={"callbacks": [handler]})
    finally:
        store.close()

    print(f"Question: {QUESTION}")
    print(f"Answer without ragarbiter ({len(plain['docs'])} passages): {one_line(plain['answer'])}")
    print(f"Answer with ragarbiter    ({len(result['docs'])} passages): {one_line(result['answer'])}\n")
    print("ragarbiter decisions (the context the LLM got, in order):")
    for rank, doc in enumerate(result["docs"], start=1):
        verdicts = "; ".join(f"{j['label']} by {j['stage']}: {j['reason']}" for j in doc.metadata.get("ragarbiter", []))
        print(f"  {rank}. score {doc.metadata['relevance_score']:.3f}  {doc.metadata.get('source')}")
        print(f"     {doc.page_content[:90]}{'...' if len(doc.page_content) > 90 else ''}")
        if verdicts:
            print(f"     -> {verdicts}")
    summary = handler.summary()
    timings = ", ".join(f"{stage} {t['total_s'] * 1000:.0f} ms" for stage, t in summary["stages"].items())
    print(
        f"\nevents: {summary['events']}, labels: {summary['labels']}, dropped: {summary['dropped']}, stages: {timings}"
    )
    return {"plain": plain, "arbiter": result, "summary": summary}


if __name__ == "__main__":
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar for every model the stages load
    main()
