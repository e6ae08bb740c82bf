"""Causal LMs: loading, prompt layouts, per-document attention capture and fine-tuning data.

- `load_generator(name_or_path)`: the generator that answers (default `smollm2-135m-instruct`, the
  packaged SmolLM2-135M-Instruct, converted once), as a `CausalLM` with `answer`, `answers`
  (batched, greedy) and `stream`, through the model's chat template.
- `load_causal_lm(folder)`: a local Hugging Face causal LM and its fast tokenizer.
- `PromptTemplate`, `render_prompt`: where documents, source tags and the question go;
  `rag_prompt_parts`, `closed_book_prompt`: the answering prompts (chat template when there is one).
- `capture_attention`, `SegmentAttention`: attention mass per document on the segment kernel,
  without eager attention; `PiecewiseEncoder`: its prompts re-arranged, from cached pieces.
- `Example`, `ExampleCollator`, `length_batches`: prompt/target fine-tuning batches.

Importing this package is cheap: torch and transformers load on first use.
"""

from .capture import CaptureRequest, PiecewiseEncoder, SegmentAttention, capture_attention, check_hookable
from .collate import BatchCollator, Example, ExampleCollator, length_batches
from .generator import DEFAULT_GENERATOR, load_generator, models_dir, resolve_generator
from .loading import CausalLM, load_causal_lm
from .prompts import (
    RELIABLE_SOURCES,
    UNRELIABLE_SOURCES,
    PromptTemplate,
    chat_prompt_parts,
    closed_book_prompt,
    has_chat_template,
    number_documents,
    prompt_template,
    rag_prompt_parts,
    render_prompt,
)
from .tokenizer import bpe_tokenizer

__all__ = [
    "DEFAULT_GENERATOR",
    "RELIABLE_SOURCES",
    "UNRELIABLE_SOURCES",
    "BatchCollator",
    "CaptureRequest",
    "CausalLM",
    "Example",
    "ExampleCollator",
    "PiecewiseEncoder",
    "PromptTemplate",
    "SegmentAttention",
    "bpe_tokenizer",
    "capture_attention",
    "chat_prompt_parts",
    "check_hookable",
    "closed_book_prompt",
    "has_chat_template",
    "length_batches",
    "load_causal_lm",
    "load_generator",
    "models_dir",
    "number_documents",
    "prompt_template",
    "rag_prompt_parts",
    "render_prompt",
    "resolve_generator",
]
