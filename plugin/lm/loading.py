"""Loading causal LMs from local folders, offline."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragarbiter.models import quiet_loading

from .prompts import CLOSED_BOOK_INSTRUCTION, RAG_INSTRUCTION

# re-exported: the generator and its tests import them from here
__all__ = ["CLOSED_BOOK_INSTRUCTION", "RAG_INSTRUCTION", "quiet_loading"]


def load_causal_lm(path: str, *, device: str | None = None, dtype: Any = None):
    """Load a local causal LM and its fast tokenizer with SDPA attention; a clear error if the folder is wrong."""
    from ragarbiter.errors import ModelNotFoundError

    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        msg = (
            f"{folder} holds no Hugging Face model (no config.json). Pass a folder written by "
            f"save_pretrained, e.g. one made by `ragarbiter testbed train --size small --seed 0`."
        )
        raise ModelNotFoundError(msg)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(folder, use_fast=True)
        model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa", dtype=dtype or "auto")
    if device:
        model = model.to(device)
    return model.eval(), tokenizer


@dataclass
class CausalLM:
    """A loaded causal LM and its tokenizer, with greedy batched answering and streaming.

    `answer`, `answers` and `stream` answer a question from documents (or closed book) through the
    tokenizer's chat template when it has one, and the plain "Documents / Question / Answer:" layout
    otherwise. `generate` completes raw prompts (the testbed's layout).

    `world` is the closed synthetic world the model was trained on (`ragarbiter.synthetic`), for
    testbed models; None for any other model.
    """

    model: Any
    tokenizer: Any
    world: Any = None
    path: Path | None = None

    @property
    def eos_token_id(self) -> Any:
        """Where an answer ends: the model's generation config (it may list end-of-turn ids), else the tokenizer's."""
        config = getattr(self.model, "generation_config", None)
        return getattr(config, "eos_token_id", None) or self.tokenizer.eos_token_id

    @property
    def chat(self) -> bool:
        """Whether prompts go through the tokenizer's chat template."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    def prompt(self, question: str, passages: Sequence[str] = ()) -> str:
        """The full prompt text for `question` over `passages` (closed book when there are none)."""
        from .prompts import closed_book_prompt, number_documents, rag_prompt_parts

        if not passages:
            return closed_book_prompt(self.tokenizer, question)
        before, after = rag_prompt_parts(self.tokenizer, question)
        return before + number_documents(passages) + after

    def answers(
        self,
        items: Sequence[tuple[str, Sequence[str]]],
        max_new_tokens: int = 48,
        batch_size: int = 8,
        progress: bool | None = None,
    ) -> list[str]:
        """Greedy answers to `(question, passages)` pairs, batched (a chat model's whole reply, a
        plain model's first line)."""
        prompts = [self.prompt(q, passages) for q, passages in items]
        return self._complete(prompts, max_new_tokens, batch_size, progress, first_line=not self.chat)

    def answer(self, question: str, passages: Sequence[str] = (), max_new_tokens: int = 48) -> str:
        return self.answers([(question, passages)], max_new_tokens=max_new_tokens, progress=False)[0]

    def stream(
        self, question: str, passages: Sequence[str] = (), max_new_tokens: int = 128, **generate_kwargs: Any
    ) -> Iterator[str]:
        """The answer in pieces as it is generated (greedy unless `generate_kwargs` say otherwise)."""
        import torch
        from transformers import TextIteratorStreamer

        tok = self.tokenizer
        enc = tok(self.prompt(question, passages), return_tensors="pt", add_special_tokens=False)
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
        options = {
            "do_sample": False,
            "pad_token_id": tok.pad_token_id,
            "eos_token_id": self.eos_token_id,
            **generate_kwargs,
        }
        failure: list[BaseException] = []

        def work() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(
                        **enc,
                        max_new_tokens=max_new_tokens,
                        streamer=streamer,
                        **options,
                    )
            except BaseException as exc:  # surfaced in the caller's thread below
                failure.append(exc)
                streamer.end()

        thread = threading.Thread(target=work, name="ragarbiter-generate", daemon=True)
        thread.start()
        yield from streamer
        thread.join()
        if failure:
            raise failure[0]

    def generate(
        self, prompts: Sequence[str], max_new_tokens: int = 10, batch_size: int = 32, progress: bool | None = None
    ) -> list[str]:
        """Greedy answers (up to the end of the line) for raw `prompts` (the BOS token is put in
        front), batched with left padding (a progress bar from 8 batches up, unless `progress`
        says otherwise)."""
        bos = self.tokenizer.bos_token or ""
        return self._complete([bos + p for p in prompts], max_new_tokens, batch_size, progress, first_line=True)

    def complete(
        self, prompts: Sequence[str], max_new_tokens: int = 48, batch_size: int = 8, progress: bool | None = None
    ) -> list[str]:
        """Greedy completions of fully rendered `prompts` (chat markers included, nothing added in
        front), the whole reply up to the end of turn, batched with left padding."""
        return self._complete(list(prompts), max_new_tokens, batch_size, progress, first_line=False)

    def _complete(
        self, prompts: Sequence[str], max_new_tokens: int, batch_size: int, progress: bool | None, first_line: bool
    ) -> list[str]:
        import torch
        from tqdm.auto import tqdm

        tok = self.tokenizer
        # Batches of similar length waste less on padding; answers come back in the caller's order.
        order = sorted(range(len(prompts)), key=lambda j: len(prompts[j]))
        out: list[str] = [""] * len(prompts)
        starts = range(0, len(prompts), batch_size)
        show = len(starts) >= 8 if progress is None else progress
        for i in tqdm(starts, desc="generate", unit="batch", disable=not show, leave=False):
            chunk = order[i : i + batch_size]
            enc = tok([prompts[j] for j in chunk], return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(self.model.device) for k, v in enc.items()}
            with torch.inference_mode():
                ids = self.model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tok.pad_token_id,
                    eos_token_id=self.eos_token_id,
                )
            for j, row in zip(chunk, ids[:, enc["input_ids"].shape[1] :]):
                text = tok.decode(row, skip_special_tokens=True)
                out[j] = (text.split("\n")[0] if first_line else text).strip()
        return out
