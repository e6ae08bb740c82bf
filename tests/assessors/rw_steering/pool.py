"""A Poisoned Context Testbed record written for RW-Steering's tests."""

RECORD = {  # written for these tests, in the Poisoned Context Testbed format
    "Input": "The capital of Norland is Vesk",
    "Question": "What is the capital of Norland?",
    "Generated Information": [
        "Norland's capital is Tarrow.",
        "Tarrow sits on the Norland coast.",
        "The Norland parliament meets in Tarrow.",
    ],
    "Synonym Sentence": ["The capital of Norland is Vesk.", "Vesk is where Norland is governed from."],
    "Simple Answer": "Tarrow is the capital of Norland.",
}


def save_llama_without_bos(folder, texts, max_positions: int):
    """A one-layer Llama (hidden 32) and a BPE tokenizer with no <s>, saved into `folder`: any local
    causal LM, not a testbed model."""
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from ragarbiter.lm import bpe_tokenizer

    base = bpe_tokenizer(list(texts), 300)
    tok = PreTrainedTokenizerFast(tokenizer_object=base.backend_tokenizer, pad_token="<pad>", eos_token="</s>")
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=None,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return tok
