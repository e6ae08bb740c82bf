"""`ragarbiter bench conflict` and `ragarbiter train conflict` on tiny files."""

import json

import numpy as np
import pytest

from ragarbiter.assessors.conflict.bench import report, score_items
from ragarbiter.assessors.conflict.config import ConflictConfig
from ragarbiter.assessors.conflict.data import BenchItem, bench_items
from ragarbiter.assessors.conflict.model import ConflictScorer, default_adapter_dir
from ragarbiter.assessors.metrics import auroc
from ragarbiter.cli.main import main
from ragarbiter.errors import EmptyCorpusError
from tests.assessors.test_trained import adapter_trained_on
from tests.assessors.tiny_data import CONFLICTQA, write_conflictqa, write_jsonl, write_rgb


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("writer, n_pairs", [(write_conflictqa, 6), (write_rgb, 3)])
def test_bench_conflict_reports_assessor_and_cosine_baseline(tmp_path, capsys, writer, n_pairs):
    data = writer(tmp_path / "data.jsonl")
    assert main(["bench", "conflict", "--data", str(data), "--json"]) == 0
    out = last_json(capsys)
    scores, labels = [], []
    scorer = ConflictScorer().load()
    for item in bench_items(data):  # the assessor's pair scores, recomputed outside the bench
        probs = scorer.pair_probabilities(item.query, item.texts)
        scores += [probs[i, j] for i, j, _ in item.pairs]
        labels += [label for _, _, label in item.pairs]
    assert out["n_pairs"] == len(labels) == n_pairs and out["n_conflict_pairs"] == sum(labels)
    assert out["assessor"]["pair_auroc"] == round(auroc(scores, labels), 4)
    assert out["assessor"]["threshold"] == ConflictConfig.threshold
    assert set(out["baseline_cosine"]) == set(out["assessor"])
    flagged = out["assessor"]["flagged_by_kind"]
    kinds = [k for item in bench_items(data) for k in item.kinds]
    assert {k: v["pairs"] for k, v in flagged.items() if k != "unanswering"} == {k: kinds.count(k) for k in kinds}
    for kind, v in flagged.items():
        if kind != "unanswering":
            hits = [s >= ConflictConfig.threshold for s, k in zip(scores, kinds) if k == kind]
            assert v["flagged"] == round(sum(hits) / len(hits), 4)


def test_bench_metrics_flatten_pairs_and_sets():
    item = BenchItem("q", ("a", "b", "c"), pairs=((0, 1, 1), (0, 2, 0), (1, 2, 0)), sets=(((0, 1), 1), ((0, 2), 0)))
    probs = np.array([[0.0, 0.9, 0.2], [0.9, 0.0, 0.6], [0.2, 0.6, 0.0]])
    scores, labels, sets = score_items([item], [probs])
    assert scores.tolist() == [0.9, 0.2, 0.6] and labels.tolist() == [1, 0, 0]
    assert sets == [(0.9, 1), (0.2, 0)]
    out = report(scores, labels, sets, threshold=0.5)
    assert (out["pair_auroc"], out["pair_precision"], out["pair_recall"]) == (1.0, 0.5, 1.0)
    assert out["set_accuracy"] == 1.0 and out["threshold"] == 0.5


def test_bench_conflict_can_skip_the_questions_of_training_files(tmp_path, capsys):
    data = write_conflictqa(tmp_path / "data.jsonl")
    seen = write_jsonl(
        tmp_path / "seen.jsonl", [{"question": "  is the kestrel bay LIGHTHOUSE older than the railway"}]
    )
    assert main(["bench", "conflict", "--data", str(data), "--exclude-questions", str(seen), "--json"]) == 0
    out = last_json(capsys)
    assert out["n_excluded_items"] == 1 and out["n_items"] == 1 and out["n_pairs"] == 3


def test_bench_conflict_says_when_the_exclusion_leaves_nothing(tmp_path, capsys):
    data = write_conflictqa(tmp_path / "data.jsonl")
    assert main(["bench", "conflict", "--data", str(data), "--exclude-questions", str(data)]) == 2
    assert "Every one of the 2 items" in capsys.readouterr().err


def test_bench_conflict_exclusion_file_without_questions_is_a_clear_error(tmp_path, capsys):
    data = write_conflictqa(tmp_path / "data.jsonl")
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "no question here"}])
    assert main(["bench", "conflict", "--data", str(data), "--exclude-questions", str(bad)]) == 2
    assert "no 'question' or 'query'" in capsys.readouterr().err


def test_train_conflict_with_a_missing_file_exits_2_naming_it(tmp_path, capsys):
    assert main(["train", "conflict", "--data", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")]) == 2
    assert "none.jsonl" in capsys.readouterr().err


def bench_conflict(*argv: str) -> dict:
    from ragarbiter.assessors.conflict.bench import run
    from ragarbiter.cli.main import build_parser

    return run(build_parser(["bench", "conflict"]).parse_args(["bench", "conflict", *argv, "--json"]))


@pytest.fixture
def trained_on_first(tmp_path):
    """The shipped adapter, said by its manifest to be trained on the first ConflictQA question only."""
    return adapter_trained_on(default_adapter_dir(), tmp_path / "adapter", [CONFLICTQA[0]["question"].upper()])


def test_bench_conflict_scores_only_the_questions_the_adapter_was_not_trained_on(tmp_path, trained_on_first):
    data = write_conflictqa(tmp_path / "data.jsonl")
    out = bench_conflict("--data", str(data), "--adapter", str(trained_on_first))
    assert (out["unseen_only"], out["n_excluded_trained"], out["n_items"], out["n_pairs"]) == (True, 1, 1, 3)
    everything = bench_conflict("--data", str(data), "--adapter", str(trained_on_first), "--include-trained")
    assert (everything["unseen_only"], everything["n_excluded_trained"], everything["n_items"]) == (False, 0, 2)


def test_bench_conflict_names_the_option_when_every_question_was_trained_on(tmp_path):
    data = write_conflictqa(tmp_path / "data.jsonl")
    adapter = adapter_trained_on(default_adapter_dir(), tmp_path / "a", [r["question"] for r in CONFLICTQA])
    with pytest.raises(EmptyCorpusError, match=r"Every one of the 2 items .* Pass --include-trained"):
        bench_conflict("--data", str(data), "--adapter", str(adapter))


def test_bench_conflict_says_when_it_cannot_tell_the_trained_questions(tmp_path, trained_on_first):
    manifest = json.loads((trained_on_first / "manifest.json").read_text())
    del manifest["questions"]
    manifest["data"] = [{"path": str(tmp_path / "gone.jsonl"), "name": "gone.jsonl", "bytes": 1, "sha256": "0"}]
    (trained_on_first / "manifest.json").write_text(json.dumps(manifest))
    out = bench_conflict("--data", str(write_conflictqa(tmp_path / "d.jsonl")), "--adapter", str(trained_on_first))
    assert (out["unseen_only"], out["n_excluded_trained"], out["n_items"]) == (None, 0, 2)
    assert "gone.jsonl' is not there" in out["warning"]


def test_bench_conflict_combines_both_exclusions(tmp_path, trained_on_first):
    data = write_conflictqa(tmp_path / "data.jsonl")
    seen = write_jsonl(tmp_path / "seen.jsonl", [{"question": CONFLICTQA[1]["question"]}])
    argv = ("--data", str(data), "--adapter", str(trained_on_first), "--exclude-questions", str(seen))
    with pytest.raises(EmptyCorpusError, match=r"trained on \(1\) or listed in --exclude-questions \(1\)"):
        bench_conflict(*argv)


def test_train_conflict_records_the_recipe_and_every_question_it_trained_on(tmp_path, capsys):
    from ragarbiter.assessors.conflict.data import RECIPE
    from ragarbiter.assessors.qa import held_out, question_digest
    from tests.assessors.conflict.test_data import SYNTHWIKI, write_synthwiki
    from tests.assessors.tiny_data import LITM, write_litm

    litm, synthwiki = write_litm(tmp_path / "litm.jsonl"), write_synthwiki(tmp_path / "madlibs.csv")
    out = tmp_path / "adapter"
    args = ["train", "conflict", "--data", str(litm), str(synthwiki), "--out", str(out), "--cpu"]
    args += ["--max-steps", "1", "--batch-size", "1", "--max-length", "48", "--eval-fraction", "0.25"]
    assert main([*args, "--no-progress", "--json"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    trained = [q for q, *_ in LITM if not held_out(q)] + [q for c, q, _ in SYNTHWIKI if not held_out(c)]
    assert manifest["questions"]["values"] == sorted({question_digest(q) for q in trained})
    assert manifest["questions"]["count"] == len(set(trained)) < len(LITM) + len(SYNTHWIKI)
    assert manifest["recipe"] == RECIPE
    assert manifest["hyperparameters"]["align"] is True
