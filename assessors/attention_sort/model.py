"""The causal LM the AttentionSorter reads: a folder or an object with its tokenizer, or a random Llama.

A random Llama (built from a config, weights untrained) runs the machinery and the timing with
no downloaded model: its attention knows nothing, so its sort order means nothing.
"""

from __future__ import annotations

from typing import Any

from ragarbiter.errors import ConfigError


def causal_lm(model: Any, tokenizer: Any, device: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer): a folder is loaded (with its tokenizer unless one is given); an object needs a tokenizer."""
    if model is None:
        msg = (
            "AttentionSorter needs a causal LM: pass model=<folder or model object> (and tokenizer=), e.g. "
            "the testbed model from `ragarbiter testbed train --size small --seed 0`."
        )
        raise ConfigError(msg)
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        from ragarbiter.lm import load_causal_lm

        model, loaded_tokenizer = load_causal_lm(str(model), device=device)
        return model, tokenizer or loaded_tokenizer
    if tokenizer is None:
        raise ConfigError("AttentionSorter got a model object but no tokenizer; pass tokenizer= as well.")
    return model, tokenizer


# LLaMA's SwiGLU feed-forward width: 2/3 of the usual 4 x hidden, so 8/3 x hidden.
FFN_NUMERATOR, FFN_DENOMINATOR = 8, 3


def random_llama(
    tokenizer,
    *,
    max_positions: int = 8192,
    hidden: int = 256,
    layers: int = 4,
    heads: int = 8,
    kv_heads: int = 2,
    seed: int = 0,
):
    """A Llama-architecture model built from a config with random weights (for machinery and timing)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * FFN_NUMERATOR // FFN_DENOMINATOR,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config).eval()


def describe_random_llama(model) -> str:
    """The shape of a `random_llama`, read from its config: "random Llama (4 layers, hidden 256, ...)"."""
    c = model.config
    return (
        f"random Llama ({c.num_hidden_layers} layers, hidden {c.hidden_size}, "
        f"{c.num_attention_heads} heads / {c.num_key_value_heads} kv heads)"
    )
