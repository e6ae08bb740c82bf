"""A tiny Llama and tokenizer built in code, and the CARE parts on top of them, for CARE's tests."""

from __future__ import annotations

import torch

PASSAGE = "Tavo Rin was born in Dashel and works for Miro Labs as a glassblower since the year nineteen ten."

# Facts for training through the CLI.
FACTS = [
    ("Where was Tavo Rin born?", "Dashel", "Tavo Rin was born in Dashel and blows glass for Miro Labs."),
    ("Where was Kiri Vos born?", "Orem", "Kiri Vos was born in Orem and paints ships for the harbour office."),
    ("Who employs Lem Ostra?", "Pallo Works", "Lem Ostra has worked for Pallo Works since the flood year."),
    ("Where was Nena Dau born?", "Kestry", "Nena Dau was born in Kestry, a town of salt traders."),
]


def make_tokenizer():
    from ragarbiter.lm import bpe_tokenizer

    return bpe_tokenizer([PASSAGE * 3, "Question: Where was Tavo Rin born?\nAnswer: Dashel. Context: Repeat"], 300)


def tiny_llama(tokenizer, seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=48,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
        )
    )


def tiny_care(tokenizer, base=None, **config):
    from ragarbiter.assessors.care.config import CareConfig
    from ragarbiter.assessors.care.model import CareModel

    return CareModel(
        base or tiny_llama(tokenizer), tokenizer, CareConfig(**{"memory_tokens": 4, "chunk_tokens": 12, **config})
    )


def pretrained(tokenizer, texts, steps=60):
    """A base LM that has seen `texts` (CARE starts from a pretrained LM, never a random one)."""
    model = tiny_llama(tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batch = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    for _ in range(steps):
        for ids in batch:
            ids = torch.tensor([ids])
            loss = model(input_ids=ids, labels=ids).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def tiny_generator(tokenizer):
    from ragarbiter.assessors.care import CareGenerator

    return CareGenerator(tiny_care(tokenizer), max_new_tokens=4)
