"""Shipping an adapter folder: float16 weights that load back, portable paths, held-out figures."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from ragarbiter.errors import InvalidInputError
from ragarbiter.training import read_manifest, sha256_file, ship_adapter


@pytest.fixture
def trained(tmp_path):
    src = tmp_path / "run"
    (src / "checkpoints" / "step-1").mkdir(parents=True)
    weights = {"lora_A": torch.randn(4, 8), "lora_B": torch.randn(8, 4), "index": torch.arange(3)}
    save_file(weights, str(src / "adapter_model.safetensors"))
    (src / "adapter_config.json").write_text(json.dumps({"r": 4, "base_model_name_or_path": "/root/models/base"}))
    (src / "rw.json").write_text(json.dumps({"init": "/tmp/run/stage1", "pools": ["../data/pool.json"], "r": 4}))
    manifest = {"task": "t", "data": [{"path": "/home/me/data/pool.json", "name": "pool.json", "sha256": "ab"}]}
    (src / "manifest.json").write_text(json.dumps(manifest))
    return src, weights


def test_shipped_copy_is_half_precision_portable_and_carries_held_out_figures(trained, tmp_path):
    src, weights = trained
    dst = ship_adapter(src, tmp_path / "shipped", held_out={"accuracy": 0.5, "n": 20}, recipe={"stage 1": "cmd"})
    shipped = load_file(str(dst / "adapter_model.safetensors"))
    assert shipped["lora_A"].dtype == torch.float16 and shipped["index"].dtype == weights["index"].dtype
    torch.testing.assert_close(shipped["lora_A"].float(), weights["lora_A"], atol=2e-3, rtol=1e-3)
    assert (dst / "adapter_model.safetensors").stat().st_size < (src / "adapter_model.safetensors").stat().st_size
    assert not (dst / "checkpoints").exists()
    rw = json.loads((dst / "rw.json").read_text())
    assert rw == {"init": "stage1", "pools": ["pool.json"], "r": 4}
    config = json.loads((dst / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "base"
    manifest = read_manifest(dst)
    assert manifest["held_out"] == {"accuracy": 0.5, "n": 20} and manifest["recipe"] == {"stage 1": "cmd"}
    assert manifest["data"][0] == {"path": "pool.json", "name": "pool.json", "sha256": "ab"}
    files = manifest["shipped"]["files"]
    assert set(files) == {"adapter_model.safetensors", "adapter_config.json", "rw.json"}
    assert files["rw.json"] == sha256_file(dst / "rw.json")


def test_a_module_loads_the_half_precision_weights_back(trained, tmp_path):
    src, weights = trained
    dst = ship_adapter(src, tmp_path / "shipped")
    layer = torch.nn.Linear(8, 4, bias=False)
    layer.load_state_dict({"weight": load_file(str(dst / "adapter_model.safetensors"))["lora_A"]})
    assert layer.weight.dtype == torch.float32
    torch.testing.assert_close(layer.weight, weights["lora_A"], atol=2e-3, rtol=1e-3)


def test_bad_sources_fail_clearly(trained, tmp_path):
    src, _ = trained
    with pytest.raises(InvalidInputError, match="holds no manifest.json"):
        ship_adapter(tmp_path, tmp_path / "out")
    with pytest.raises(InvalidInputError, match="float16 halves"):
        ship_adapter(src, tmp_path / "out", dtype="int8")
    with pytest.raises(InvalidInputError, match="overwrite its source"):
        ship_adapter(src, src)
