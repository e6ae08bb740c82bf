"""Prompt layouts for causal LMs: where the documents, their source tags and the question go.

`PromptTemplate` renders a prompt and the character span of every document's text in it,
which is what per-document attention capture needs. `render_prompt` is the plain layout the
testbed models are trained on; `prompt_template()` is the same layout as a template.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ragarbiter.errors import ConfigError

#: Source tags the testbed and the RW-Steering mixtures put in front of a passage.
RELIABLE_SOURCES = ("encyclopedia", "registry", "newspaper")
UNRELIABLE_SOURCES = ("forum", "anonymous post", "chain message")


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
