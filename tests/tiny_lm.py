"""Tiny random chat LMs built in code: a two-layer Llama and a byte-level BPE tokenizer with a ChatML
template, saved to a folder that `ragarbiter.lm.load_generator` (and every `--generator`) accepts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_tokenizer(texts: Sequence[str], vocab: int, chat: bool = True):
    """A BPE tokenizer trained on `texts`, with ChatML markers; without `chat`, no template and no pad token."""
    from ragarbiter.lm import bpe_tokenizer

    tok = bpe_tokenizer(list(texts), vocab)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    if chat:
        tok.chat_template = CHATML
    else:
        # load_generator must fall back to EOS for padding and pad on the left whatever was saved.
        tok.pad_token = None
        tok.padding_side = "right"
    return tok


def metaspace_tokenizer(texts: Sequence[str], vocab: int):
    """A SentencePiece-style BPE (Metaspace: spaces become ``▁`` and every input starts with one, BOS
    in front): a text tokenized alone does not tokenize as it does inside a longer one."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    tok.train_from_iterator(
        list(texts), trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials, show_progress=False)
    )
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def save_tiny_lm(
    folder: Path,
    texts: Sequence[str],
    *,
    vocab: int = 320,
    chat: bool = True,
    heads: tuple[int, int] = (4, 2),
    max_positions: int = 512,
    initializer_range: float = 0.02,
    seed: int = 0,
) -> Path:
    """Save a random two-layer Llama (hidden size 32) and its tokenizer into `folder`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from ragarbiter.lm.loading import quiet_loading

    tok = tiny_tokenizer(texts, vocab, chat)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=heads[0],
        num_key_value_heads=heads[1],
        max_position_embeddings=max_positions,
        initializer_range=initializer_range,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    with torch.random.fork_rng(), quiet_loading():
        torch.manual_seed(seed)
        LlamaForCausalLM(config).save_pretrained(folder)
        tok.save_pretrained(folder)
    return folder
