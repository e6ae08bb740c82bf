"""The project trainer on a tiny in-file model: schedule, checkpoints, exact resume, manifest."""

import json

import pytest
import torch
from torch import nn

from ragarbiter.errors import ConfigError, InvalidInputError
from ragarbiter.training import LoraSettings, TrainConfig, Trainer, apply_lora, read_manifest, save_adapter, sha256_file


class TinyNet(nn.Module):
    """y = head(fc(x)); LoRA goes on `fc`."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x)


class TinyTask(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        base = TinyNet()
        for p in base.parameters():
            p.requires_grad_(False)
        self.encoder = apply_lora(base, LoraSettings(r=2, alpha=4, dropout=0.0, target_modules=("fc",)))
        self.head = nn.Linear(4, 1)

    def forward(self, batch):
        pred = self.head(self.encoder(batch["x"])).squeeze(-1)
        loss = nn.functional.mse_loss(pred, batch["y"])
        return {"loss": loss, "scores": pred, "labels": batch["y"]}

    def save_adapter(self, folder):
        return save_adapter(
            folder, self.encoder, {"head.weight": self.head.weight, "head.bias": self.head.bias}, "tiny"
        )


def examples(n=24):
    g = torch.Generator().manual_seed(1)
    xs = torch.randn(n, 4, generator=g)
    return [(x, float(x.sum())) for x in xs]


def collate(items):
    return {"x": torch.stack([x for x, _ in items]), "y": torch.tensor([y for _, y in items])}


def make_trainer(tmp_path, data_file, **cfg):
    config = TrainConfig(out_dir=str(tmp_path / "out"), batch_size=4, lr=1e-2, progress=False, cpu=True, **cfg)
    return Trainer(
        TinyTask(),
        config,
        train_data=examples(),
        eval_data=examples(8),
        collate=collate,
        metrics=lambda out: {"mean_score": float(out["scores"].mean())},
        task="tiny",
        base_model={"name": "tiny"},
        data_files=[data_file],
    )


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"x": 1}\n', encoding="utf-8")
    return path


def trainable(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize(
    "field, value",
    [
        ("epochs", 0),
        ("max_steps", 0),
        ("batch_size", 0),
        ("grad_accum", 0),
        ("lr", 0.0),
        ("warmup_ratio", 1.0),
        ("checkpoint_every", -1),
        ("mixed_precision", "fp8"),
        ("out_dir", ""),
    ],
)
def test_train_config_rejects_bad_values_with_the_name(field, value):
    kwargs = {"out_dir": "x", field: value}
    with pytest.raises(ConfigError, match=field if field != "out_dir" else "out"):
        TrainConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"r": 0}, {"dropout": 1.0}, {"target_modules": ()}, {"layers": (-1,)}])
def test_lora_settings_reject_bad_values(kwargs):
    with pytest.raises(ConfigError):
        LoraSettings(**kwargs)


def test_training_lowers_the_loss_and_writes_adapter_and_manifest(tmp_path, data_file):
    trainer = make_trainer(tmp_path, data_file, max_steps=30)
    before = trainer.evaluate(trainer.model)["eval_loss"]
    manifest = trainer.fit()
    out = tmp_path / "out"
    assert manifest["metrics"]["eval_loss"] < before
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "heads.safetensors",
        "manifest.json",
    ]
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "tiny"
    assert read_manifest(out)["run"]["steps"] == 30


def test_manifest_names_data_files_with_their_hashes_and_the_hyperparameters(tmp_path, data_file):
    manifest = make_trainer(tmp_path, data_file, max_steps=2).fit()
    assert manifest["data"] == [
        {"path": str(data_file), "name": "data.jsonl", "bytes": 9, "sha256": sha256_file(data_file)}
    ]
    assert manifest["hyperparameters"]["max_steps"] == 2
    assert manifest["hyperparameters"]["lr"] == 1e-2
    assert manifest["base_model"] == {"name": "tiny"}
    assert set(manifest["metrics"]) == {"eval_loss", "mean_score", "step"}


def test_checkpoints_keep_only_the_latest_ones(tmp_path, data_file):
    make_trainer(tmp_path, data_file, max_steps=9, checkpoint_every=2, keep_checkpoints=2).fit()
    names = sorted(p.name for p in (tmp_path / "out" / "checkpoints").iterdir())
    assert names == ["step-0000006", "step-0000008"]


def test_resume_continues_exactly_where_the_checkpoint_left_off(tmp_path, data_file):
    straight = make_trainer(tmp_path / "a", data_file, max_steps=10)
    straight.fit()
    crashing = make_trainer(tmp_path / "b", data_file, max_steps=10, checkpoint_every=4)
    calls = iter(range(100))

    def crash_on_step_6(items):
        if next(calls) == 5:
            raise RuntimeError("simulated crash")
        return collate(items)

    crashing.collate = crash_on_step_6
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashing.fit()  # the last checkpoint is step 4
    resumed = make_trainer(tmp_path / "b", data_file, max_steps=10, checkpoint_every=4)
    manifest = resumed.fit(resume=True)
    assert manifest["run"]["steps"] == 10
    a, b = trainable(straight.model), trainable(resumed.model)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], msg=name)


def test_resume_without_a_checkpoint_starts_from_zero(tmp_path, data_file):
    manifest = make_trainer(tmp_path, data_file, max_steps=3).fit(resume=True)
    assert manifest["run"]["steps"] == 3


def test_too_little_data_for_one_batch_is_a_clear_error(tmp_path, data_file):
    config = TrainConfig(out_dir=str(tmp_path / "out"), batch_size=64, progress=False, cpu=True)
    trainer = Trainer(TinyTask(), config, train_data=examples(8), collate=collate, task="tiny", data_files=[data_file])
    with pytest.raises(InvalidInputError, match="too few for batch_size 64"):
        trainer.fit()


def test_missing_data_file_is_named(tmp_path):
    with pytest.raises(InvalidInputError, match="nope.jsonl"):
        Trainer(
            TinyTask(),
            TrainConfig(out_dir=str(tmp_path)),
            train_data=examples(),
            collate=collate,
            data_files=[tmp_path / "nope.jsonl"],
        )
