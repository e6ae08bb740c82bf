"""`trained_questions`: the questions an adapter was trained on, from its manifest or its training files."""

import csv
import gzip
import json
import logging
from pathlib import Path

import pytest

import ragarbiter.assessors
from ragarbiter.assessors.qa import question_digest
from ragarbiter.assessors.trained import DIGEST, check_trained, trained_questions
from ragarbiter.errors import InvalidInputError
from ragarbiter.training.manifest import describe_files
from tests.assessors.tiny_data import CONFLICTQA, LITM, POOL, RGB, write_conflictqa, write_pool, write_rgb


def write_manifest(folder: Path, **entries) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({"task": "conflict", **entries}), encoding="utf-8")
    return folder


def write_litm_gz(path: Path) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for question, answers, title, text in LITM:
            ctx = {"title": title, "text": text, "hasanswer": True, "isgold": True}
            fh.write(json.dumps({"question": question, "answers": answers, "ctxs": [ctx]}) + "\n")
    return path


def write_synthwiki(path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["context", "question", "answer"])
        writer.writeheader()
        for question, answers, _, text in LITM[:3]:
            writer.writerow({"context": text, "question": question, "answer": answers[0]})
    return path


def digests(questions) -> set[str]:
    return {question_digest(q) for q in questions}


def adapter_trained_on(shipped: Path, folder: Path, questions) -> Path:
    """A copy of a shipped adapter whose manifest says it was trained on exactly `questions`."""
    import shutil

    shutil.copytree(shipped, folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    values = sorted(digests(questions))
    manifest["questions"] = {"digest": DIGEST, "count": len(values), "values": values}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def test_the_manifest_questions_key_is_the_answer(tmp_path):
    values = sorted(digests(["Who designed it?", "When was it lit?"]))
    folder = write_manifest(
        tmp_path / "a",
        data=[{"path": str(tmp_path / "gone.jsonl"), "sha256": "0"}],  # not needed: the key wins
        questions={"digest": DIGEST, "count": 2, "values": values},
    )
    assert trained_questions(folder) == set(values)
    assert check_trained(folder).source == "manifest"


@pytest.mark.parametrize(
    "writer, name, questions",
    [
        (write_litm_gz, "nq.jsonl.gz", [q for q, *_ in LITM]),
        (write_conflictqa, "conflictQA.json", [r["question"] for r in CONFLICTQA]),
        (write_rgb, "en_fact.json", [r["query"] for r in RGB]),
        (write_synthwiki, "madlibs.csv", [q for q, *_ in LITM[:3]]),
        (write_pool, "fakenews_output.json", [r["Question"] for r in POOL]),
    ],
    ids=["litm", "conflictqa", "rgb", "synthwiki", "testbed-pool"],
)
def test_without_the_key_the_questions_come_from_the_training_files(tmp_path, writer, name, questions):
    data = writer(tmp_path / name)
    folder = write_manifest(tmp_path / "a", data=describe_files([data]))
    assert trained_questions(folder) == digests(questions)
    assert check_trained(folder).source == "data files"


def test_every_training_file_counts(tmp_path):
    files = [write_litm_gz(tmp_path / "nq.jsonl.gz"), write_conflictqa(tmp_path / "c.json")]
    folder = write_manifest(tmp_path / "a", data=describe_files(files))
    assert trained_questions(folder) == digests([q for q, *_ in LITM] + [r["question"] for r in CONFLICTQA])


def test_a_relative_data_path_is_read_from_the_current_folder(tmp_path, monkeypatch):
    data = write_litm_gz(tmp_path / "nq.jsonl.gz")
    [entry] = describe_files([data])
    folder = write_manifest(tmp_path / "adapters" / "a", data=[{**entry, "path": "nq.jsonl.gz"}])
    monkeypatch.chdir(tmp_path)
    assert trained_questions(folder) == digests([q for q, *_ in LITM])


def test_a_missing_training_file_makes_the_check_unavailable_with_a_warning(tmp_path, caplog):
    data = write_litm_gz(tmp_path / "nq.jsonl.gz")
    folder = write_manifest(tmp_path / "a", data=describe_files([data]))
    data.unlink()
    with caplog.at_level(logging.WARNING, logger="ragarbiter.assessors.trained"):
        assert trained_questions(folder) is None
    [record] = caplog.records
    assert "cannot tell which questions the adapter" in record.message
    assert "nq.jsonl.gz' is not there" in record.message


def test_a_training_file_that_changed_since_makes_the_check_unavailable(tmp_path, caplog):
    data = write_conflictqa(tmp_path / "c.json")
    folder = write_manifest(tmp_path / "a", data=describe_files([data]))
    write_rgb(data)  # same path, other content
    with caplog.at_level(logging.WARNING, logger="ragarbiter.assessors.trained"):
        assert trained_questions(folder) is None
    assert "has changed since" in caplog.text


def test_a_folder_without_a_manifest_makes_the_check_unavailable(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="ragarbiter.assessors.trained"):
        assert trained_questions(tmp_path) is None
    assert "it has no manifest.json" in caplog.text


def test_a_malformed_questions_key_is_a_clear_error(tmp_path):
    folder = write_manifest(tmp_path / "a", questions={"values": "abc"})
    with pytest.raises(InvalidInputError, match="'questions' must be an object whose 'values' is a list"):
        trained_questions(folder)


@pytest.mark.parametrize("method", ["poison", "inappropriate"])
def test_the_shipped_adapters_list_their_training_questions(method):
    folder = Path(ragarbiter.assessors.__file__).parent / method / "default"
    manifest = json.loads((folder / "manifest.json").read_text())
    questions = manifest["questions"]
    assert questions["digest"] == DIGEST
    assert questions["count"] == len(questions["values"]) == len(set(questions["values"]))
    assert questions["values"] == sorted(questions["values"])
    assert trained_questions(folder) == set(questions["values"])
