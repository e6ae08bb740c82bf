"""The framework examples end to end with a real (tiny, random) local LLM behind each framework's own
Hugging Face integration: LangChain's `ChatHuggingFace` over `HuggingFacePipeline`, LlamaIndex's
`HuggingFaceLLM`.

A tiny Llama with a byte-level BPE tokenizer and a ChatML chat template is built in code and saved
to a temporary folder, which each example's ``main(["--generator", folder])`` loads. A spy on
``generate`` records the exact tokens the model was given, so the tests check what the LLM saw:
the chat template was applied, ragarbiter's kept passages are in the prompt and the planted ones it
dropped are not, and the answer printed is the model's own greedy completion.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("transformers")

from tests.tiny_lm import save_tiny_lm  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CORPUS = EXAMPLES / "corpus" / "kestrel_bay.jsonl"
PLANTED = "Gustave Eiffel"  # the false claim the planted near-duplicates make


def _example(name: str, integration: str) -> ModuleType:
    """Import examples/<name>.py (a script folder, not a package) as a module, if its integration is there."""
    pytest.importorskip(integration)
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory) -> Path:
    """A random two-layer Llama with a ChatML tokenizer trained on the demo corpus, saved to a folder."""
    texts = [json.loads(line)["text"] for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return save_tiny_lm(tmp_path_factory.mktemp("tiny-chat-llm"), texts, vocab=1000, heads=(2, 1), max_positions=4096)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test (the examples must run offline)."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"the example tried to open a network connection: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def generate_calls(monkeypatch) -> list[dict]:
    """Every `generate` call of a Llama during the test: its input ids, its output ids, its options."""
    from transformers import LlamaForCausalLM

    calls: list[dict] = []
    original = LlamaForCausalLM.generate

    def spy(self, *args, **kwargs):
        inputs = kwargs.get("input_ids", args[0] if args else None)
        out = original(self, *args, **kwargs)
        calls.append({"inputs": inputs, "outputs": out, "kwargs": kwargs})
        return out

    monkeypatch.setattr(LlamaForCausalLM, "generate", spy)
    return calls


def _seen(tiny_generator: Path, call: dict) -> tuple[str, str]:
    """(the prompt the model saw, special tokens included; the completion it wrote, without them)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_generator)
    inputs, outputs = call["inputs"], call["outputs"]
    assert inputs.shape[0] == 1  # one prompt per call
    prompt = tok.decode(inputs[0], skip_special_tokens=False)
    completion = tok.decode(outputs[0, inputs.shape[1] :], skip_special_tokens=True)
    return prompt, completion


def _is_greedy(call: dict) -> bool:
    config = call["kwargs"].get("generation_config")
    return call["kwargs"].get("do_sample", getattr(config, "do_sample", None)) is False


def test_langchain_example_answers_with_the_local_llm_from_ragarbiters_context(
    tiny_generator, generate_calls, no_network, capsys
):
    example = _example("langchain_chain", "langchain_huggingface")

    result = example.main(["--generator", str(tiny_generator)])

    # The plain chain runs first, then the one through ragarbiter: one greedy generation each.
    assert len(generate_calls) == 2 and all(_is_greedy(c) for c in generate_calls)
    (plain_prompt, plain_completion), (prompt, completion) = (_seen(tiny_generator, c) for c in generate_calls)
    plain, arbiter = result["plain"], result["arbiter"]

    # ChatHuggingFace rendered the system + human messages with the tokenizer's chat template.
    for seen in (plain_prompt, prompt):
        assert seen.startswith("<|im_start|>system\nAnswer only from the numbered context.")
        assert f"<|im_start|>user\n{example.QUESTION}<|im_end|>\n" in seen
        assert seen.endswith("<|im_start|>assistant\n")

    # ragarbiter dropped the planted passages: the plain prompt has them, the judged one does not.
    kept = [d.page_content for d in arbiter["docs"]]
    dropped = [d.page_content for d in plain["docs"] if d.page_content not in kept]
    assert kept and dropped and len(plain["docs"]) == example.K
    assert all(text in prompt for text in kept)
    assert all(text in plain_prompt and text not in prompt for text in dropped)
    assert PLANTED in plain_prompt and PLANTED not in prompt
    flagged = {j["label"] for d in arbiter["docs"] for j in d.metadata.get("ragarbiter", [])}
    assert all(f"[flagged: {label}]" in prompt for label in flagged)

    # The answers are the model's own completions (only the reply, not the prompt echoed).
    assert arbiter["answer"].strip() == completion.strip() and plain["answer"].strip() == plain_completion.strip()
    assert "<|im_start|>" not in arbiter["answer"]

    # The decisions came through the callback handler and were printed after the answers.
    summary = result["summary"]
    assert summary["dropped"] == len(dropped) and summary["labels"].get("poisoned", 0) >= 1
    out = capsys.readouterr().out
    assert out.index(f"Question: {example.QUESTION}") < out.index("Answer with ragarbiter") < out.index("decisions")
    assert f"dropped: {summary['dropped']}" in out


def test_llamaindex_example_answers_with_the_local_llm_from_the_postprocessed_nodes(
    tiny_generator, generate_calls, no_network, capsys
):
    from llama_index.core.instrumentation import get_dispatcher

    example = _example("llamaindex_query", "llama_index.llms.huggingface")
    handlers_before = len(get_dispatcher().event_handlers)

    result = example.main(["--generator", str(tiny_generator)])

    assert len(generate_calls) == 1 and _is_greedy(generate_calls[0])
    prompt, completion = _seen(tiny_generator, generate_calls[0])
    response = result["response"]

    # HuggingFaceLLM (is_chat_model=True) rendered the query engine's chat messages with the template.
    assert prompt.startswith("<|im_start|>system\n") and "<|im_start|>user\n" in prompt
    assert prompt.endswith("<|im_start|>assistant\n") and example.QUESTION in prompt

    # The LLM saw exactly the nodes ragarbiter kept; the planted ones it dropped never reached it.
    kept = [n.node.get_content() for n in response.source_nodes]
    assert 0 < len(kept) < 6
    assert all(text in prompt for text in kept)
    assert PLANTED not in prompt and all(PLANTED not in text for text in kept)
    assert "ragarbiter" not in prompt  # judgements ride in metadata hidden from the LLM

    # The answer is the model's greedy completion, and the decisions went through instrumentation.
    assert str(response).strip() == completion.strip()
    kinds = [e.kind for e in result["events"]]
    assert kinds.count("passage_dropped") == 6 - len(kept) and "stage_timed" in kinds
    assert len(get_dispatcher().event_handlers) == handlers_before  # main() removed its handler
    out = capsys.readouterr().out
    assert "[poison] dropped:" in out and out.index("[poison] dropped:") < out.index("Answer:")
