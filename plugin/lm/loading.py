"""Loading causal LMs from local folders, offline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def load_causal_lm(path: str, *, device: str | None = None, dtype: Any = None):
    """Load a local causal LM and its fast tokenizer with SDPA attention; a clear error if the folder is wrong."""
    from pathlib import Path

    from ragarbiter.errors import ModelNotFoundError

    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        msg = (
            f"{folder} holds no Hugging Face model (no config.json). Pass a folder written by "
            f"save_pretrained, e.g. one made by `ragarbiter testbed train --size small --seed 0`."
        )
        raise ModelNotFoundError(msg)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, use_fast=True)
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa", dtype=dtype or "auto")
    if device:
        model = model.to(device)
    return model.eval(), tokenizer


@dataclass
class CausalLM:
    """A loaded causal LM and its tokenizer, with greedy batched answering.

    `world` is the closed synthetic world the model was trained on (`ragarbiter.synthetic`), for
    testbed models; None for any other model.
    """

    model: Any
    tokenizer: Any
    world: Any = None
    path: Path | None = None

    def generate(
        self, prompts: Sequence[str], max_new_tokens: int = 10, batch_size: int = 32, progress: bool | None = None
    ) -> list[str]:
        """Greedy answers (up to the end of the line) for `prompts`, batched with left padding
        (a progress bar from 8 batches up, unless `progress` says otherwise)."""
        import torch
        from tqdm.auto import tqdm

        tok, out = self.tokenizer, []
        starts = range(0, len(prompts), batch_size)
        show = len(starts) >= 8 if progress is None else progress
        for i in tqdm(starts, desc="generate", unit="batch", disable=not show, leave=False):
            chunk = [(tok.bos_token or "") + p for p in prompts[i : i + batch_size]]
            enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                ids = self.model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tok.pad_token_id,
                    eos_token_id=tok.eos_token_id,
                )
            for row in ids[:, enc["input_ids"].shape[1] :]:
                out.append(tok.decode(row, skip_special_tokens=True).split("\n")[0].strip())
        return out
