"""Prompt layouts for causal LMs: where the documents, their source tags and the question go.

`PromptTemplate` renders a prompt and the character span of every document's text in it,
which is what per-document attention capture needs. `render_prompt` is the plain layout the
testbed models are trained on; `prompt_template()` is the same layout as a template.

`rag_prompt_parts` and `closed_book_prompt` are the generator's answering prompts, through the
tokenizer's chat template when it has one (the plain layout otherwise): the text before and after
the documents, so that a caller can put numbered passages there, or a soft prompt (CARE).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ragarbiter.errors import ConfigError

#: Source tags the testbed and the RW-Steering mixtures put in front of a passage.
RELIABLE_SOURCES = ("encyclopedia", "registry", "newspaper")
UNRELIABLE_SOURCES = ("forum", "anonymous post", "chain message")

#: What a generator is told around the documents when it answers from context (chat models).
RAG_INSTRUCTION = "Answer the question using the documents above. Answer in one short sentence."
CLOSED_BOOK_INSTRUCTION = "Answer the question in one short sentence."
# Where the documents go while the chat template renders; private-use characters no template alters.
_DOCUMENTS_SLOT = "\ue000documents\ue000"


@dataclass(frozen=True)
class PromptTemplate:
    """How documents and the question are laid out for the model.

    ``document`` holds ``{text}`` and may hold ``{index}`` (1-based position) and
    ``{source_tag}`` (``"(source) "`` or nothing). The attention span of a document is the
    tokens of its ``{text}`` only, found from the tokenizer's character offsets.
    """

    instruction: str = "Answer the question using only the documents below.\n\n"
    document: str = "Document [{index}] {source_tag}{text}\n"
    question: str = "\nQuestion: {question}\nAnswer:"

    def __post_init__(self) -> None:
        if self.document.count("{text}") != 1:
            raise ConfigError(f"PromptTemplate.document must contain '{{text}}' exactly once, got {self.document!r}.")
        if self.question.count("{question}") != 1:
            msg = f"PromptTemplate.question must contain '{{question}}' exactly once, got {self.question!r}."
            raise ConfigError(msg)

    def render(
        self, question: str, texts: Sequence[str], sources: Sequence[str | None] | None = None
    ) -> tuple[str, list[tuple[int, int]]]:
        """The prompt, and the character span ``[start, end)`` of each document's text in it."""
        head, tail = self.document.split("{text}")
        parts, spans, at = [self.instruction], [], len(self.instruction)
        for i, text in enumerate(texts):
            source = sources[i] if sources else None
            fields = {"index": i + 1, "source_tag": f"({source}) " if source else ""}
            before, after = head.format(**fields), tail.format(**fields)
            spans.append((at + len(before), at + len(before) + len(text)))
            parts += [before, text, after]
            at += len(before) + len(text) + len(after)
        parts.append(self.question.format(question=question))
        return "".join(parts), spans


def render_prompt(question: str, passages: Sequence[str] = (), sources: Sequence[str] | None = None) -> str:
    """The plain layout the testbed models are trained on: numbered documents, the question, "Answer:"."""
    lines = []
    if passages:
        lines.append("Documents:")
        for i, text in enumerate(passages):
            tag = f"({sources[i]}) " if sources and sources[i] else ""
            lines.append(f"[{i + 1}] {tag}{text}")
    lines += [f"Question: {question}", "Answer:"]
    return "\n".join(lines)


def prompt_template():
    """`render_prompt` as a `PromptTemplate`, for stages that build the prompt themselves
    (attention sorting reads the attention of exactly the prompt the model answers)."""
    return PromptTemplate(
        instruction="Documents:\n", document="[{index}] {source_tag}{text}\n", question="Question: {question}\nAnswer:"
    )


def has_chat_template(tokenizer) -> bool:
    """Whether prompts for this tokenizer's model go through its chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def number_documents(passages: Sequence[str]) -> str:
    """The documents as the answering prompts show them: ``[1] text``, one per line."""
    return "\n".join(f"[{i}] {text}" for i, text in enumerate(passages, start=1))


def _chat(tokenizer, content: str) -> str:
    messages = [{"role": "user", "content": content}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def chat_prompt_parts(tokenizer, before: str, after: str) -> tuple[str, str]:
    """The chat-templated prompt of one user turn ``before + <slot> + after``, split at the slot: the
    text before and after whatever goes there (documents, or a soft prompt)."""
    head, found, tail = _chat(tokenizer, before + _DOCUMENTS_SLOT + after).partition(_DOCUMENTS_SLOT)
    if not found:
        msg = "The tokenizer's chat template dropped part of the user turn; pass a template that keeps it."
        raise ConfigError(msg)
    return head, tail


def rag_prompt_parts(tokenizer, question: str) -> tuple[str, str]:
    """The answering prompt's text before and after the documents (`number_documents`, or a soft
    prompt): the chat template's user turn when the tokenizer has one, else the plain layout after BOS."""
    if not has_chat_template(tokenizer):
        return (tokenizer.bos_token or "") + "Documents:\n", f"\nQuestion: {question}\nAnswer:"
    return chat_prompt_parts(tokenizer, "Documents:\n", f"\n\n{RAG_INSTRUCTION}\nQuestion: {question}")


def closed_book_prompt(tokenizer, question: str) -> str:
    """The answering prompt without documents (chat template when the tokenizer has one)."""
    if not has_chat_template(tokenizer):
        return (tokenizer.bos_token or "") + render_prompt(question)
    return _chat(tokenizer, f"{CLOSED_BOOK_INSTRUCTION}\nQuestion: {question}")
