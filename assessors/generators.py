"""Loading the local generator a method adapts (CARE, RW-Steering): any Hugging Face causal LM folder.

A testbed model is such a folder with a `testbed.json` (`ragarbiter testbed train`); it comes with
the closed synthetic world it was trained on, which the methods build their training and
evaluation sets from.
"""

from __future__ import annotations

from pathlib import Path


def load_generator(path: str | Path, *, require_world: bool = False):
    """Any local causal LM as a `ragarbiter.lm.CausalLM`, padded on the left, with its world when it
    is a testbed model (world=None otherwise). With `require_world`, a folder without a
    `testbed.json` raises `ModelNotFoundError`, naming how to train a testbed model."""
    from ragarbiter.lm import CausalLM, load_causal_lm
    from ragarbiter.synthetic import load_world

    folder = Path(path).expanduser()
    world = load_world(folder) if require_world or (folder / "testbed.json").is_file() else None
    model, tokenizer = load_causal_lm(str(folder))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return CausalLM(model, tokenizer, world, folder)
