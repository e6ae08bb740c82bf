"""Lossless Passage <-> LangChain `Document` <-> LlamaIndex `NodeWithScore` conversions.

Text, id, metadata, source and score survive a round trip in both directions. The score
travels as `metadata["relevance_score"]` (and `NodeWithScore.score`); the source as
`metadata["source"]`; a stage's judgements as `metadata["ragarbiter"]`, a list of dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import InvalidInputError, require
from .types import JUDGEMENTS_KEY, SCORE_KEY, SOURCE_KEY, Judgement, Passage, content_id

# Keys that describe ragarbiter's decisions; an LLM prompt or an embedding should not see them.
HIDDEN_KEYS = [SCORE_KEY, JUDGEMENTS_KEY]


def _framework_metadata(passage: Passage, judgements: Sequence[Judgement]) -> dict[str, Any]:
    meta = dict(passage.metadata)
    if passage.source is not None:
        meta[SOURCE_KEY] = passage.source
    if passage.score is not None:
        meta[SCORE_KEY] = passage.score
    if judgements:
        meta[JUDGEMENTS_KEY] = [j.to_dict() for j in judgements]
    return meta


def _split_metadata(meta: dict[str, Any] | None, score: float | None = None) -> tuple[dict, float | None, str | None]:
    meta = dict(meta or {})
    meta_score = meta.pop(SCORE_KEY, None)
    meta.pop(JUDGEMENTS_KEY, None)
    source = meta.pop(SOURCE_KEY, None)
    if source is not None and not isinstance(source, str):
        meta[SOURCE_KEY], source = source, None
    if score is None and meta_score is not None:
        score = float(meta_score)
    return meta, score, source


def passage_to_document(passage: Passage, judgements: Sequence[Judgement] = ()) -> Any:
    documents = require("langchain_core.documents", "langchain", "LangChain conversion")
    return documents.Document(
        page_content=passage.text, metadata=_framework_metadata(passage, judgements), id=passage.id
    )


def document_to_passage(document: Any) -> Passage:
    text = getattr(document, "page_content", None)
    if not isinstance(text, str):
        msg = f"Expected a LangChain Document with a str page_content, got {type(document).__name__}."
        raise InvalidInputError(msg)
    meta, score, source = _split_metadata(getattr(document, "metadata", None))
    return Passage(
        text=text, id=getattr(document, "id", None) or content_id(text), metadata=meta, score=score, source=source
    )


def passage_to_node(passage: Passage, judgements: Sequence[Judgement] = ()) -> Any:
    schema = require("llama_index.core.schema", "llamaindex", "LlamaIndex conversion")
    node = schema.TextNode(
        text=passage.text,
        id_=passage.id,
        metadata=_framework_metadata(passage, judgements),
        excluded_llm_metadata_keys=list(HIDDEN_KEYS),
        excluded_embed_metadata_keys=list(HIDDEN_KEYS),
    )
    return schema.NodeWithScore(node=node, score=passage.score)


def node_to_passage(node_with_score: Any) -> Passage:
    node = getattr(node_with_score, "node", node_with_score)
    get_content = getattr(node, "get_content", None)
    if get_content is None:
        msg = f"Expected a LlamaIndex NodeWithScore or TextNode, got {type(node_with_score).__name__}."
        raise InvalidInputError(msg)
    schema = require("llama_index.core.schema", "llamaindex", "LlamaIndex conversion")
    text = get_content(metadata_mode=schema.MetadataMode.NONE)
    meta, score, source = _split_metadata(getattr(node, "metadata", None), getattr(node_with_score, "score", None))
    return Passage(
        text=text, id=getattr(node, "node_id", None) or content_id(text), metadata=meta, score=score, source=source
    )
