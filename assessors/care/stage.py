"""`CareAssessor` (stage "care") fills `Context.soft_prompt`; `CareGenerator` answers from it.

generator = CareGenerator.from_folders("care-dir", "base-model-dir")  # or (): the shipped assessor
context = CareAssessor(generator=generator)(Context.for_query(question, passages))
answer = generator.answer(context)     # the base LM never sees the passages' tokens
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from ragarbiter.config import with_overrides
from ragarbiter.errors import ConfigError
from ragarbiter.events import SoftPromptBuilt
from ragarbiter.stage import Stage
from ragarbiter.types import Context

from .config import CareAssessorConfig, care_base_model, care_folder
from .model import CareModel

logger = logging.getLogger(__name__)


class CareGenerator:
    """A CARE assessor and its base LM, loaded once; thread-safe (one forward pass at a time)."""

    def __init__(self, care: CareModel, max_new_tokens: int = 32, passages: int | None = None) -> None:
        """`passages`: the most passages in one soft prompt (None: as many as the assessor was trained with)."""
        if passages is not None and passages < 1:
            raise ConfigError(f"CareGenerator passages must be >= 1 or None (as trained), got {passages}.")
        self.care = care.eval()
        self.max_new_tokens = max_new_tokens
        self.passages = passages or care.config.passages
        self._told = False
        self._lock = threading.Lock()
        self._handover: dict[str, object] = {}
        self._handover_lock = threading.Lock()

    @classmethod
    def from_folders(
        cls,
        care_dir: str | Path | None = None,
        base_model: str | Path | None = None,
        *,
        device: str | None = None,
        **options: Any,
    ) -> CareGenerator:
        """The CARE assessor in `care_dir` (default: the one shipped in the package) on `base_model`
        (a folder or a packaged name such as ``smollm2-135m-instruct``; default: the model its
        care.json names). `options`: `max_new_tokens`, `passages`."""
        from ragarbiter.lm import load_causal_lm

        folder = care_folder(care_dir)  # checked before the base model is loaded
        model, tokenizer = load_causal_lm(str(care_base_model(folder, base_model)), device=device)
        return cls(CareModel.load(folder, model, tokenizer), **options)

    # -- hand-over between a framework's postprocessor and its LLM call (LlamaIndex) --------------------
    # Shared across threads behind a lock: LlamaIndex's async path runs the postprocessor in a
    # worker thread and the LLM call on the event loop.
    def remember(self, query: str, soft) -> None:
        """Keep the soft prompt built for `query` until the LLM call that answers it."""
        with self._handover_lock:
            self._handover[query] = soft
            while len(self._handover) > 32:
                self._handover.pop(next(iter(self._handover)))

    def recall(self, prompt: str):
        """(query, soft prompt) remembered for the longest query that `prompt` contains, or (None, None)."""
        with self._handover_lock:
            found = [q for q in self._handover if q and q in prompt]
            if not found:
                return None, None
            query = max(found, key=len)
            return query, self._handover.pop(query)

    def soft_prompt(self, texts: list[str], passages: int | None = None):
        """The soft prompt of the first `passages` texts (default: `self.passages`, as trained)."""
        import torch

        limit = passages or self.passages
        if len(texts) > limit and not self._told:
            self._told = True
            logger.info(
                "care encodes the first %d of %d passages (as many as it was trained with; set passages= to change)",
                limit,
                len(texts),
            )
        with self._lock, torch.no_grad():
            return self.care.encode(list(texts)[:limit])

    def answer(self, context: Context | str, soft=None) -> str:
        """The base LM's answer to the query, given the context's soft prompt (closed book without one)."""
        import torch

        question = context.query if isinstance(context, Context) else context
        if isinstance(context, Context) and soft is None:
            soft = context.soft_prompt
        with self._lock, torch.no_grad():
            return self.care.answer(question, soft, self.max_new_tokens)


class CareAssessor(Stage):
    """Encode the passages into CARE's soft prompt (memory tokens per chunk, concatenated).

    Only the first `passages` non-empty passages are encoded (by default as many as the assessor was
    trained with); the `SoftPromptBuilt` event lists the ones that were."""

    name = "care"

    def __init__(
        self, config: CareAssessorConfig | None = None, *, generator: CareGenerator | None = None, **overrides: Any
    ) -> None:
        """`generator`: a loaded `CareGenerator`; without it the stage loads `care_dir` (default: the
        shipped assessor) onto `base_model` (default: the model its care.json names).
        `overrides`: any `CareAssessorConfig` field (`care_dir`, `base_model`, `device`, `passages`)."""
        self.config = with_overrides(CareAssessorConfig, config, overrides, type(self))
        if generator is not None and (self.config.care_dir or self.config.base_model):
            msg = "CareAssessor got both generator= and care_dir=/base_model=; pass one or the other."
            raise ConfigError(msg)
        if generator is None:
            generator = CareGenerator.from_folders(
                self.config.care_dir, self.config.base_model, device=self.config.device
            )
        self.generator = generator

    @property
    def passages(self) -> int:
        """The most passages in one soft prompt: the config's, else the generator's (as trained)."""
        return self.config.passages or self.generator.passages

    def _run(self, context: Context) -> Context:
        given = [p for p in context.passages if p.text.strip()]
        if not given:
            return context
        used = given[: self.passages]
        soft = self.generator.soft_prompt([p.text for p in given], self.passages)  # logs what it leaves out
        event = SoftPromptBuilt(stage=self.name, shape=tuple(soft.shape), passage_ids=tuple(p.id for p in used))
        return context.evolve(soft_prompt=soft, events=[event])
