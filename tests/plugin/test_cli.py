"""The CLI through its entry point, in-process (the encoder stays loaded) unless a second process is the point."""

import json
import subprocess
import sys
import time

import pytest

from ragarbiter.cli.main import build_parser, main

QUESTION = "Who founded the Halvorsen Observatory?"


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def indexed(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    from tests.conftest import FACTS

    for i, (text, _src) in enumerate(FACTS):
        (corpus / f"fact{i}.txt").write_text(text, encoding="utf-8")
    store = str(tmp_path / "store")
    assert main(["index", str(corpus), "--store", store, "--collection", "facts", "--json", "--no-progress"]) == 0
    report = last_json(capsys.readouterr().out)
    return store, report


def all_commands(parser=None, prefix=()):
    """Every command path the parser knows, e.g. ("bench", "retrieval")."""
    import argparse

    parser = parser or build_parser()
    yield list(prefix)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from all_commands(sub, (*prefix, name))


def test_the_documented_commands_exist():
    paths = {tuple(p) for p in all_commands()}
    assert {("index",), ("query",), ("demo",), ("bench", "retrieval"), ("bench", "latency"), ("train",)} <= paths


@pytest.mark.parametrize("argv", list(all_commands()), ids=lambda a: " ".join(a) or "top")
def test_every_command_has_help(argv, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([*argv, "--help"])
    assert info.value.code == 0
    assert "usage: ragarbiter" in capsys.readouterr().out


def test_index_then_query_json_contract(indexed, capsys):
    store, report = indexed
    assert (report["files"], report["chunks"], report["added"], report["points"]) == (6, 6, 6, 6)
    assert main(["query", QUESTION, "--store", store, "--collection", "facts", "-k", "3", "--json"]) == 0
    out = last_json(capsys.readouterr().out)
    assert out["query"] == QUESTION and len(out["passages"]) == 3
    top = out["passages"][0]
    assert set(top) >= {"id", "text", "score", "rank", "source", "metadata", "judgements"}
    assert top["rank"] == 1 and "Halvorsen" in top["text"] and top["source"].endswith("fact0.txt")
    assert {"dropped", "events"} <= set(out)
    assert [e["event"] for e in out["events"]][0] == "passages_retrieved"


def test_human_query_output_is_a_table(indexed, capsys):
    store, _ = indexed
    assert main(["query", QUESTION, "--store", store, "--collection", "facts", "-k", "2", "--mode", "dense"]) == 0
    out = capsys.readouterr().out
    assert "Halvorsen" in out and "score" in out and "source" in out


def test_reindex_adds_nothing(indexed, tmp_path, capsys):
    store, _ = indexed
    assert (
        main(["index", str(tmp_path / "corpus"), "--store", store, "--collection", "facts", "--json", "--no-progress"])
        == 0
    )
    again = last_json(capsys.readouterr().out)
    assert (again["added"], again["skipped"], again["points"]) == (0, 6, 6)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["query", "  "], "query is empty"),
        (["query", QUESTION, "--collection", "nope"], "Unknown collection 'nope'"),
        (["index", "/definitely/not/here"], "does not exist"),
        (["query", QUESTION, "-k", "0"], "k must be a positive integer"),
    ],
)
def test_bad_input_gets_one_line_error_and_exit_2(indexed, argv, needle, capsys):
    store, _ = indexed
    code = main([*argv, "--store", store] if argv[0] != "index" else argv)
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err


def test_unreachable_url_names_the_server_and_the_fix(capsys):
    code = main(["query", QUESTION, "--url", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and "http://127.0.0.1:9" in err and "unreachable" in err and "--url" in err


def test_locked_store_suggests_a_server(indexed, capsys):
    store, _ = indexed
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom ragarbiter.retrievers import QdrantStore\n"
            f"c = QdrantStore(path={store!r}).client\nprint('ready', flush=True)\ntime.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        code = main(["query", QUESTION, "--store", store, "--collection", "facts"])
        err = capsys.readouterr().err
        assert code == 2 and "locked by another process" in err and "--url" in err
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.2)
    # nothing stored was lost
    assert main(["query", QUESTION, "--store", store, "--collection", "facts", "--json"]) == 0
    assert len(last_json(capsys.readouterr().out)["passages"]) == 6


def test_dimension_mismatch_is_reported(tmp_path, capsys):
    from qdrant_client import models

    from ragarbiter.retrievers import QdrantStore

    folder = str(tmp_path / "store")
    client = QdrantStore(path=folder).client
    client.create_collection(
        "odd", vectors_config={"dense": models.VectorParams(size=16, distance=models.Distance.COSINE)}
    )
    client.close()
    code = main(["query", QUESTION, "--store", folder, "--collection", "odd"])
    err = capsys.readouterr().err
    assert code == 2 and "16-d" in err and "384-d" in err and "new --collection" in err


def test_console_script_runs_out_of_process():
    proc = subprocess.run([sys.executable, "-m", "ragarbiter.cli.main", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("ragarbiter ")
