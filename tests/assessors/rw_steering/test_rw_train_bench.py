"""`train rw` honours the LoRA shape, proportions and pools it is given, and `bench rw` reports
what the adapters saw in training, for the three systems, on a tiny in-file Llama."""

from __future__ import annotations

import json

import pytest

from ragarbiter.cli.main import main

from .pool import RECORD, save_llama_without_bos

pytest.importorskip("peft")


def _records(prefix: str, count: int) -> list[dict]:
    return [{**RECORD, "Question": f"What is the capital of {prefix} {i}?"} for i in range(count)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A one-layer Llama (not a testbed model) and two pools of different names."""
    folder = tmp_path_factory.mktemp("rw-tiny")
    texts = [RECORD["Question"], *RECORD["Generated Information"], *RECORD["Synonym Sentence"]]
    save_llama_without_bos(folder / "lm", texts, max_positions=2048)
    pools = {}
    for name in ("fakenews_output.json", "non_factual_output.json"):
        pools[name] = folder / name
        pools[name].write_text(json.dumps(_records(name.split("_")[0], 30)), encoding="utf-8")
    return folder / "lm", pools


def _train(lm, pool, out, *extra) -> dict:
    argv = ["train", "rw", "--base-model", str(lm), "--pools", str(pool), "--stage", "1", "--out", str(out)]
    argv += ["--max-steps", "2", "--batch-size", "4", "--sentences", "4", "--no-progress", "--eval-fraction", "0"]
    assert main([*argv, *extra, "--json"]) == 0
    return json.loads((out / "rw.json").read_text(encoding="utf-8"))


def test_lora_shape_proportions_and_pools_reach_the_adapter(tiny, tmp_path, capsys):
    lm, pools = tiny
    out = tmp_path / "rw"
    meta = _train(
        lm,
        pools["fakenews_output.json"],
        out,
        "--lora-r",
        "4",
        "--lora-alpha",
        "12",
        "--lora-targets",
        "q_proj",
        "v_proj",
        "--proportions",
        "0",
        "0.5",
    )
    lora = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    assert (lora["r"], lora["lora_alpha"], sorted(lora["target_modules"])) == (4, 12, ["q_proj", "v_proj"])
    assert meta["lora"] == {"r": 4, "alpha": 12, "targets": ["q_proj", "v_proj"]}
    assert meta["proportions"] == [0.0, 0.5] and meta["pools"] == [str(pools["fakenews_output.json"])]
    assert meta["source_tags"] is False
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert json.dumps(manifest).count('"proportions": [0.0, 0.5]') >= 1
    assert str(pools["fakenews_output.json"]) in json.dumps(manifest["data"])
    capsys.readouterr()


def test_unknown_lora_targets_and_bad_proportions_are_named(tiny, tmp_path, capsys):
    lm, pools = tiny
    base = ["train", "rw", "--base-model", str(lm), "--data", str(pools["fakenews_output.json"]), "--stage", "1"]
    assert main([*base, "--out", str(tmp_path / "x"), "--lora-targets", "query"]) == 2
    err = capsys.readouterr().err
    assert "--lora-targets ['query'] name no linear layer of this model; choose from [" in err and "'q_proj'" in err
    assert main([*base, "--out", str(tmp_path / "y"), "--proportions", "0", "1.0"]) == 2
    assert "--proportions got [1.0]" in capsys.readouterr().err


def test_bench_reports_three_systems_and_what_training_saw(tiny, tmp_path, capsys):
    lm, pools = tiny
    _train(lm, pools["fakenews_output.json"], tmp_path / "rw", "--proportions", "0", "0.5")
    _train(lm, pools["fakenews_output.json"], tmp_path / "ans", "--target", "answer", "--proportions", "0.5")
    capsys.readouterr()
    argv = ["bench", "rw", "--generator", str(lm), "--adapter", str(tmp_path / "rw")]
    argv += ["--answer-only", str(tmp_path / "ans"), "--data", str(pools["non_factual_output.json"])]
    argv += ["--proportions", "0", "0.25", "0.5", "--sentences", "4", "--questions", "2", "--plot", str(tmp_path)]
    assert main([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for system in ("plain", "answer_only", "rw_steering"):
        assert set(result[system]) == {"0.0", "0.25", "0.5"}
        assert all(0.0 <= v <= 1.0 for v in result[system].values())
        assert result["rw_fit"][system]["form"] == "per_signal" and result["rw_fit"][system]["rmse"] >= 0.0
    assert result["n"] == 2 and (tmp_path / "rw_curves.png").is_file()
    rw = result["adapters"]["rw_steering"]["training"]
    assert rw["proportions_seen"] == [0.0, 0.5] and rw["proportions_held_out"] == [0.25]
    assert rw["eval_pool_seen_in_training"] is False
    answer = result["adapters"]["answer_only"]["training"]
    assert answer["proportions_seen"] == [0.5] and answer["proportions_held_out"] == [0.0, 0.25]


def test_testbed_path_still_measures_one_curve_with_coverage(tiny, tmp_path, capsys):
    lm, pools = tiny
    _train(lm, pools["fakenews_output.json"], tmp_path / "rw", "--proportions", "0.5")
    capsys.readouterr()
    argv = ["bench", "rw", "--model", str(lm), "--adapter", str(tmp_path / "rw")]
    argv += ["--data", str(pools["fakenews_output.json"]), "--proportions", "0", "0.5", "--sentences", "4"]
    assert main([*argv, "--questions", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["curve"]["proportions"] == [0.0, 0.5] and set(result["accuracy"]) == {"0.0", "0.5"}
    assert result["training"]["proportions_held_out"] == [0.0]
    assert result["training"]["eval_pool_seen_in_training"] is True
