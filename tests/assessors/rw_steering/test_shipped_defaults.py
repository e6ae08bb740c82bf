"""`RWSteering()` with no arguments: the shipped adapter on the default generator its rw.json names.

A tiny real LoRA adapter (rank 2 on q_proj, random weights, no training) stands in for the shipped one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("peft")

from ragarbiter import Context, Passage  # noqa: E402
from ragarbiter.errors import ConfigError, ModelNotFoundError  # noqa: E402

QUESTION = "Where was Tavo Rin born?"
PASSAGES = ["Tavo Rin was born in Dashel.", "Tavo Rin was born in Orem, the records say."]


@pytest.fixture(scope="module")
def models(default_generator_models):
    return default_generator_models


@pytest.fixture(autouse=True)
def _real_models(models, monkeypatch):
    monkeypatch.setenv("RAGARBITER_MODELS", str(models))


@pytest.fixture(scope="module")
def adapter(models, tmp_path_factory):
    """A `train rw`-shaped folder: a rank-2 LoRA on SmolLM2's q_proj with non-zero weights, and its
    rw.json naming the default generator. Returns (folder, the LoRA weights saved)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from ragarbiter.lm import load_generator

    lm = load_generator(models / "smollm2-135m-instruct")
    model = get_peft_model(lm.model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"], lora_dropout=0.0))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:  # peft starts B at zero: make the adapter change something
                param.normal_(std=0.02)
    weights = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    folder = tmp_path_factory.mktemp("rw") / "shipped"
    model.save_pretrained(str(folder))
    meta = {"method": "rw_steering", "target": "rw", "stage": 1, "base_model": "smollm2-135m-instruct"}
    (folder / "rw.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder, weights


def _lora_weights(stage) -> dict:
    return {n: p.detach() for n, p in stage.lm.model.named_parameters() if "lora_" in n}


def test_no_arguments_load_the_shipped_adapter_onto_the_generator_its_rw_json_names(adapter, models, monkeypatch):
    import torch
    from peft import PeftModel

    from ragarbiter.assessors.rw_steering import RWSteering, config

    folder, saved = adapter
    monkeypatch.setattr(config, "SHIPPED", folder)
    stage = RWSteering(max_new_tokens=2)  # a couple of tokens: the run is what is tested, not the answer
    assert stage.config.adapter is None and stage.config.base_model is None
    assert isinstance(stage.lm.model, PeftModel) and not stage.lm.model.training
    assert stage.lm.path == models / "smollm2-135m-instruct"
    loaded = _lora_weights(stage)
    assert loaded.keys() == saved.keys() and len(saved) == 2 * 30  # A and B on each of the 30 layers' q_proj
    assert all(torch.equal(loaded[n], saved[n]) for n in saved)

    out = stage(Context.for_query(QUESTION, [Passage(t) for t in PASSAGES]))
    assert isinstance(out, Context) and isinstance(out.flags["rw_output"], str) and "answer" in out.flags
    assert len(out.passages) + len(out.dropped) == 2


def test_an_adapter_without_rw_json_goes_on_the_default_generator(adapter, models, tmp_path):
    from ragarbiter.assessors.rw_steering import RWSteering

    folder = tmp_path / "bare"
    shutil.copytree(adapter[0], folder)
    (folder / "rw.json").unlink()
    stage = RWSteering(adapter=folder)
    assert stage.config.adapter == str(folder) and stage.config.base_model is None
    assert stage.lm.path == models / "smollm2-135m-instruct"
    assert _lora_weights(stage).keys() == adapter[1].keys()


def test_the_base_model_comes_from_rw_json_a_packaged_name_or_a_folder(adapter, models, tmp_path):
    from ragarbiter.assessors.rw_steering.config import base_model_folder

    smollm = models / "smollm2-135m-instruct"
    folder = tmp_path / "a"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}", encoding="utf-8")
    assert base_model_folder(folder) == smollm  # no rw.json: the default generator
    for recorded in ["smollm2-135m-instruct", str(smollm), "/elsewhere/models/smollm2-135m-instruct"]:
        (folder / "rw.json").write_text(json.dumps({"base_model": recorded}), encoding="utf-8")
        assert base_model_folder(folder) == smollm, recorded  # the training machine's folder: by its name
    assert base_model_folder(folder, "smollm2-135m-instruct") == smollm
    assert base_model_folder(folder, str(smollm)) == smollm
    (folder / "rw.json").write_text(json.dumps({"base_model": "/elsewhere/my-model"}), encoding="utf-8")
    with pytest.raises(ModelNotFoundError, match=r"trained on '/elsewhere/my-model' \(its rw.json\).*base_model="):
        base_model_folder(folder)


def test_nothing_shipped_names_the_path_and_the_training_command(tmp_path, monkeypatch):
    from ragarbiter.assessors.rw_steering import RWSteering, config

    for shipped in [tmp_path / "missing", tmp_path / "empty"]:
        if shipped.name == "empty":
            shipped.mkdir()
        monkeypatch.setattr(config, "SHIPPED", shipped)
        with pytest.raises(ConfigError) as err:
            RWSteering()
        message = str(err.value)
        assert str(shipped) in message
        assert "`ragarbiter train rw --base-model smollm2-135m-instruct" in message
        assert "adapter=DIR" in message and "base_model=" in message and "lm=" in message


def test_a_folder_without_an_adapter_and_lm_with_folders_are_refused(tmp_path):
    from types import SimpleNamespace

    from ragarbiter.assessors.rw_steering import RWSteering

    with pytest.raises(ModelNotFoundError, match=r"adapter='.*nothing' holds no LoRA adapter.*ragarbiter train rw"):
        RWSteering(adapter=tmp_path / "nothing")
    with pytest.raises(ConfigError, match="RWSteering got both lm= and adapter=/base_model="):
        RWSteering(lm=SimpleNamespace(), adapter="rw")
    with pytest.raises(ConfigError, match="RWSteering got both lm= and adapter=/base_model="):
        RWSteering(lm=SimpleNamespace(), base_model="smollm2-135m-instruct")


def test_the_bench_and_the_stage_share_one_shipped_path():
    from ragarbiter.assessors.rw_steering import bench, config

    assert bench.SHIPPED is config.SHIPPED and config.SHIPPED.name == "shipped"
    assert bench.SHIPPED_ANSWER_ONLY is config.SHIPPED_ANSWER_ONLY
    assert config.SHIPPED.parent == config.SHIPPED_ANSWER_ONLY.parent == Path(config.__file__).resolve().parent
