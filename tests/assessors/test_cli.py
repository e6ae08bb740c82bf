"""`ragarbiter bench assessors` and what every `train` command shares."""

import json
from pathlib import Path

import pytest

import ragarbiter.assessors
from ragarbiter.cli.main import main


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_bench_assessors_times_the_three_stages(capsys):
    assert main(["bench", "assessors", "--queries", "2", "--warmup", "1", "--passages", "5", "--json"]) == 0
    out = last_json(capsys)
    assert out["queries"] == 2 and out["passages_per_query"] == 5
    assert set(out) >= {"poison", "conflict", "inappropriate", "total"}
    assert out["total"]["p50_ms"] > 0
    assert out["baseline_pairwise_conflict"]["n"] == 2 and out["baseline_pairwise_conflict"]["p50_ms"] > 0
    assert out["total"]["n"] == 2 and out["total"]["p50_ms"] <= out["total"]["p90_ms"] <= out["total"]["p99_ms"]


@pytest.mark.parametrize("target", ["conflict", "inappropriate"])
def test_the_train_commands_default_to_the_shipped_adapters_encoder_settings(target):
    from ragarbiter.assessors.backbone import TRAINED_SPECS
    from ragarbiter.cli.main import build_parser

    args = build_parser().parse_args(["train", target, "--data", "x.json", "--out", "d"])
    manifest = Path(ragarbiter.assessors.__file__).parent / target / "default" / "manifest.json"
    backbone = json.loads(manifest.read_text())["hyperparameters"]["backbone"]
    assert (args.split, args.max_length) == (backbone["split"], backbone["max_length"])
    assert (TRAINED_SPECS[target].split, TRAINED_SPECS[target].max_length) == (args.split, args.max_length)
