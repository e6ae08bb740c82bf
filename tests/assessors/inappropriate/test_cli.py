"""`ragarbiter bench inappropriate` and `ragarbiter train inappropriate` on tiny files."""

import json
from pathlib import Path

import pytest

import ragarbiter.assessors
from ragarbiter.cli.main import main
from tests.assessors.tiny_data import write_pool


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_bench_inappropriate_scores_every_sentence(tmp_path, capsys):
    assert main(["bench", "inappropriate", "--data", str(write_pool(tmp_path / "pool.json")), "--json"]) == 0
    out = last_json(capsys)
    assert out["n_records"] == 2 and out["start"] == 0
    assert out["n_sentences"] == 5 and out["n_inappropriate"] == 2
    assert out["baseline_majority"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "auroc": 0.5}
    assert set(out["filter"]) == set(out["filter_whole_passage_only"]) == {"precision", "recall", "f1", "auroc"}
    assert out["restated_at"] == 0.8
    assert out["n_read_apart"] == 0  # no sentence of the tiny pool restates another, so the two runs agree
    assert out["filter"] == out["filter_whole_passage_only"]


def test_bench_inappropriate_prints_a_summary_without_json(tmp_path, capsys):
    pool = str(write_pool(tmp_path / "pool.json"))
    assert main(["bench", "inappropriate", "--data", pool, "--restated-at", "0.9", "--start", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == (
        f"2 sentences (1 inappropriate) from {pool}; 0 judged apart from their restatements (similarity >= 0.9)"
    )
    assert [line.split()[0] for line in lines[1:]] == ["filter", "filter_whole_passage_only", "baseline_majority"]


def test_bench_inappropriate_past_the_end_of_the_pool_exits_2(tmp_path, capsys):
    assert main(["bench", "inappropriate", "--data", str(write_pool(tmp_path / "pool.json")), "--start", "2"]) == 2
    assert "no records from index 2" in capsys.readouterr().err


@pytest.mark.slow
def test_train_inappropriate_writes_an_adapter_the_filter_can_load(tmp_path, capsys):
    out_dir = tmp_path / "adapter"
    assert (
        main(
            [
                "train",
                "inappropriate",
                "--data",
                str(write_pool(tmp_path / "pool.json")),
                "--out",
                str(out_dir),
                "--max-steps",
                "1",
                "--batch-size",
                "2",
                "--written",
                "2",
                "--max-length",
                "48",
                "--eval-fraction",
                "0.3",
                "--no-progress",
                "--json",
            ]
        )
        == 0
    )
    assert last_json(capsys)["run"]["steps"] == 1
    settings = json.loads((out_dir / "manifest.json").read_text())["hyperparameters"]
    assert (settings["written_per_category"], settings["unfamiliar_questions"], settings["records_per_pool"]) == (
        2,
        200,
        None,
    )
    from ragarbiter.assessors.inappropriate import CATEGORIES, SentenceScorer

    [[verdict]] = SentenceScorer(out_dir).score("Who designed it?", ["Margit Holm designed it."])
    assert verdict.sentence.text == "Margit Holm designed it." and verdict.restatements == 0
    assert verdict.category in CATEGORIES[1:] and 0.0 < verdict.score < 1.0


def test_train_inappropriate_defaults_to_the_shipped_data_recipe():
    from ragarbiter.cli.main import build_parser

    args = build_parser().parse_args(["train", "inappropriate", "--data", "x.json", "--out", "d"])
    manifest = Path(ragarbiter.assessors.__file__).parent / "inappropriate" / "default" / "manifest.json"
    shipped = json.loads(manifest.read_text())["hyperparameters"]
    assert (args.whole, args.restate, args.answers, args.unfamiliar) == (
        shipped["whole_records"],
        shipped["restated"],
        shipped.get("answers", 0.0),
        shipped["unfamiliar_questions"],
    )
    assert args.written == shipped["written_per_category"]
