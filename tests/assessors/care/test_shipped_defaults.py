"""`CareAssessor()` and `CareGenerator.from_folders()` with no arguments: the shipped CARE assessor
on the default generator its care.json names.

A tiny real CARE assessor on SmolLM2 (rank-2 LoRA, random heads, no training) stands in for the
shipped one.
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
def shipped(models, tmp_path_factory):
    """A `train care`-shaped folder on SmolLM2 (rank-2 LoRA with non-zero weights, moved memory
    tokens), saved naming the default generator. Returns (folder, its CareConfig, the soft prompt
    it gives PASSAGES[0])."""
    import torch

    from ragarbiter.assessors.care.config import CareConfig
    from ragarbiter.assessors.care.model import CareModel
    from ragarbiter.lm import load_causal_lm

    model, tokenizer = load_causal_lm(str(models / "smollm2-135m-instruct"))
    care = CareModel(model, tokenizer, CareConfig(lora_r=2, lora_alpha=4)).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in care.lm.named_parameters():
            if "lora_B" in name:  # peft starts B at zero: make the adapter change the soft prompt
                param.normal_(std=0.02)
        care.memory.add_(torch.randn_like(care.memory))  # its initial value is seeded: move it off that
        soft = care.encode([PASSAGES[0]])
    folder = tmp_path_factory.mktemp("care") / "shipped"
    care.save(folder, "smollm2-135m-instruct")
    return folder, care.config, soft


def test_no_arguments_load_the_shipped_assessor_onto_the_generator_its_care_json_names(shipped, monkeypatch):
    import torch

    from ragarbiter.assessors.care import CareAssessor, config

    monkeypatch.setattr(config, "SHIPPED", shipped[0])
    stage = CareAssessor()
    assert stage.config.care_dir is None and stage.config.base_model is None
    assert stage.generator.care.config == shipped[1] and shipped[1].lora_r == 2 and shipped[1].prompt == "chat"
    out = stage(Context.for_query(QUESTION, [Passage(t) for t in PASSAGES]))
    assert isinstance(out, Context)
    assert out.soft_prompt.shape == (16, 576)  # one passage (as trained), one chunk, 16 memory tokens
    assert torch.allclose(out.soft_prompt, shipped[2], atol=1e-5)  # LoRA, memory and projector all loaded
    assert [e.kind for e in out.trace][-1] == "soft_prompt_built"


def test_from_folders_takes_the_shipped_folder_and_a_packaged_base_model_name(shipped, tmp_path, monkeypatch):
    import torch

    from ragarbiter.assessors.care import CareGenerator, config

    monkeypatch.setattr(config, "SHIPPED", tmp_path / "nothing")
    with pytest.raises(ConfigError, match="ragarbiter train care"):
        CareGenerator.from_folders()
    monkeypatch.setattr(config, "SHIPPED", shipped[0])
    generator = CareGenerator.from_folders(base_model="smollm2-135m-instruct", max_new_tokens=3)
    assert generator.care.config == shipped[1] and generator.max_new_tokens == 3
    with torch.no_grad():
        assert torch.allclose(generator.care.encode([PASSAGES[0]]), shipped[2], atol=1e-5)


def test_nothing_shipped_names_the_path_and_the_training_command(tmp_path, monkeypatch):
    from ragarbiter.assessors.care import CareAssessor, config

    for folder in [tmp_path / "missing", tmp_path / "empty"]:
        if folder.name == "empty":
            folder.mkdir()
        monkeypatch.setattr(config, "SHIPPED", folder)
        with pytest.raises(ConfigError) as err:
            CareAssessor()
        message = str(err.value)
        assert str(folder) in message and "`ragarbiter train care --base-model smollm2-135m-instruct" in message
        assert "care_dir=DIR" in message and "base_model=" in message and "generator=" in message


def test_a_folder_without_care_json_or_with_an_unknown_base_model_is_refused(shipped, tmp_path):
    from ragarbiter.assessors.care import CareAssessor, CareGenerator

    with pytest.raises(ModelNotFoundError, match=r"care_dir='.*nothing' holds no CARE assessor.*ragarbiter train"):
        CareAssessor(care_dir=tmp_path / "nothing")
    copy = tmp_path / "elsewhere"
    shutil.copytree(shipped[0], copy)
    meta = json.loads((copy / "care.json").read_text(encoding="utf-8"))
    (copy / "care.json").write_text(json.dumps({**meta, "base_model": "my-model"}), encoding="utf-8")
    with pytest.raises(ModelNotFoundError, match=r"trained on 'my-model' \(its care.json\).*base_model="):
        CareGenerator.from_folders(copy)


def test_the_bench_and_the_stage_share_one_shipped_path(tmp_path, monkeypatch):
    from ragarbiter.assessors.care import bench, config

    assert config.SHIPPED == Path(config.__file__).resolve().parent / "shipped"
    monkeypatch.setattr(config, "SHIPPED", tmp_path / "shipped")
    with pytest.raises(ModelNotFoundError, match=r"shipped holds no care.json.*ragarbiter train care.*--care DIR"):
        bench.default_care_dir()
