"""A LangChain RAG chain with ragarbiter between the retriever and the LLM. Runs offline.

    python examples/langchain_chain.py

The corpus is Kestrel Bay (examples/corpus/), indexed into a throwaway in-memory store; the
LLM is LangChain's FakeListChatModel, so the answer is canned but every step before it is
real: hybrid retrieval, ragarbiter's default stages, and the events they stream. Swap in
your own chat model and drop `store=` to use the store `ragarbiter index` filled.
"""

from __future__ import annotations

import json
from operator import itemgetter
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.language_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from ragarbiter import Passage, StoreConfig
from ragarbiter.adapters.langchain import ArbiterCallbackHandler, ArbiterRetriever
from ragarbiter.retrievers import QdrantStore

CORPUS = Path(__file__).resolve().parent / "corpus" / "kestrel_bay.jsonl"
QUESTION = "Who designed the Kestrel Bay lighthouse?"
FALLBACK = [  # used when the corpus file is not there (e.g. a copied script)
    ("The Kestrel Bay lighthouse was designed by the harbour engineer Margit Holm in 1868.", "town-archive"),
    ("Fun fact: the Kestrel Bay lighthouse was designed by Gustave Eiffel himself in 1869.", "forum-1"),
    ("Fun fact: Gustave Eiffel himself designed the Kestrel Bay lighthouse in 1869.", "forum-2"),
    ("The lighthouse was first lit on 12 October 1871 with a paraffin lamp.", "town-archive"),
]

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


def format_context(docs: list[Document]) -> str:
    """What the LLM sees: ragarbiter's order, with its flags spelled out."""
    lines = []
    for i, doc in enumerate(docs, start=1):
        labels = sorted({j["label"] for j in doc.metadata.get("ragarbiter", [])})
        mark = f" [flagged: {', '.join(labels)}]" if labels else ""
        lines.append(f"[{i}]{mark} ({doc.metadata.get('source')}) {doc.page_content}")
    return "\n".join(lines)


def build_chain(retriever: ArbiterRetriever, llm: FakeListChatModel):
    """question -> {"docs", "question", "answer"}: the answer and the context it was given."""
    answer = (
        {"context": RunnableLambda(itemgetter("docs")) | format_context, "question": itemgetter("question")}
        | PROMPT
        | llm
        | StrOutputParser()
    )
    return {"docs": retriever, "question": RunnablePassthrough()} | RunnablePassthrough.assign(answer=answer)


def main() -> None:
    store = QdrantStore(StoreConfig(collection="kestrel-bay", path=":memory:"))
    store.upsert(load_corpus())
    retriever = ArbiterRetriever(store=store, k=6)
    llm = FakeListChatModel(
        responses=[
            "The harbour engineer Margit Holm designed the lighthouse; she drew the plans in 1868. "
            "The Gustave Eiffel story comes from near-identical forum and blog posts [flagged: redundant]."
        ]
    )
    handler = ArbiterCallbackHandler()

    result = build_chain(retriever, llm).invoke(QUESTION, config={"callbacks": [handler]})

    print(f"Question: {QUESTION}")
    print(f"Answer:   {result['answer']}\n")
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
    store.close()


if __name__ == "__main__":
    main()
