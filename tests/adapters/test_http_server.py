"""The HTTP server: real requests over loopback, Server-Sent Events read as they arrive."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from ragarbiter import Pipeline  # noqa: E402
from ragarbiter.adapters.server import BackgroundServer, create_app  # noqa: E402
from ragarbiter.cli.main import main  # noqa: E402
from ragarbiter.registry import default_pipeline  # noqa: E402
from ragarbiter.retrievers import QdrantRetriever  # noqa: E402
from tests.adapters.support import QUESTION  # noqa: E402


def read_sse(lines):
    """(event, data) pairs from an iterator of SSE lines, yielded as each frame completes."""
    event, data = None, []
    for line in lines:
        if line == "":
            if event is not None:
                yield event, json.loads("\n".join(data))
            event, data = None, []
        elif line.startswith("event:"):
            event = line[len("event:") :].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:") :].strip())


def decisions(body: dict) -> tuple:
    """The parts of a query result that do not depend on the clock."""
    return (
        [(p["id"], p["rank"], p["score"], p["judgements"]) for p in body["passages"]],
        body["dropped"],
        [e["event"] for e in body["events"]],
        body["flags"],
    )


@pytest.fixture
def served(judging_pipeline):
    with BackgroundServer(create_app(judging_pipeline)) as server:
        yield server


def test_query_returns_the_pipeline_result_as_json(served, judging_pipeline):
    response = httpx.post(served.url + "/query", json={"query": QUESTION, "k": 4}, timeout=30)
    assert response.status_code == 200
    assert decisions(response.json()) == decisions(judging_pipeline.run(QUESTION, k=4).to_dict())
    assert response.json()["passages"][1]["judgements"][0]["label"] == "redundant"


def test_stream_sends_each_event_while_the_pipeline_runs(store, gate):
    app = create_app(Pipeline([QdrantRetriever(store), gate]))
    frames = []
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        with client.stream("POST", "/query/stream", json={"query": QUESTION, "k": 2}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for event, data in read_sse(response.iter_lines()):
                frames.append((event, data))
                if event == "passages_retrieved":
                    assert not gate.gate.is_set()
                    gate.gate.set()  # the pipeline can only finish after we saw its first event
    assert [event for event, _ in frames] == ["passages_retrieved", "stage_timed", "stage_timed", "result"]
    assert [s["stage"] for e, s in frames if e == "stage_timed"] == ["retrieve", "gate"]
    result = frames[-1][1]
    assert [p["id"] for p in result["passages"]] == frames[0][1]["passage_ids"] and len(result["passages"]) == 2


@pytest.mark.parametrize("path", ["/query", "/query/stream"])
@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"query": "  "}, "query is empty"),
        ({"query": QUESTION, "k": 0}, "got 0"),
        ({"query": QUESTION, "mode": "fuzzy"}, "fuzzy"),
    ],
)
def test_bad_requests_get_400_with_the_reason(served, path, body, needle):
    response = httpx.post(served.url + path, json=body, timeout=30)
    assert response.status_code == 400
    assert needle in response.json()["error"]


def test_a_missing_collection_is_404_and_a_stream_error_event(make_store):
    with BackgroundServer(create_app(default_pipeline(make_store()))) as server:
        plain = httpx.post(server.url + "/query", json={"query": QUESTION}, timeout=30)
        streamed = httpx.post(server.url + "/query/stream", json={"query": QUESTION}, timeout=30)
    assert plain.status_code == 404 and "ragarbiter index" in plain.json()["error"]
    ((event, data),) = list(read_sse(streamed.text.splitlines()))
    assert (event, data["status"], data["type"]) == ("error", 404, "UnknownCollectionError")


@pytest.mark.slow
def test_bench_serve_runs_each_level_and_answers_every_fault_as_it_should(capsys):
    argv = ["bench", "serve", "--concurrency", "1", "4", "--rounds", "2", "--min-requests", "6", "--passages", "30"]
    argv += ["--faults", "--fault-concurrency", "4", "--fault-share", "1.0", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for level, n in (("1", 6), ("4", 8)):
        r = report["levels"][level]
        assert (r["requests"], r["ok"], r["4xx"], r["5xx"], r["transport_errors"]) == (n, n, 0, 0, 0)
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["max_ms"] and r["rps_ok"] > 0
    faults = report["fault_run"]["faults"]
    assert faults == {
        "huge_k": {"400": 2},
        "nested_filter": {"400": 2},
        "oversized_body": {"413": 2},
        "slow_client": {"200": 1},
        "sse_disconnect": {"200": 1},
    }
    assert report["server"]["limits"]["workers"] >= 1 and report["baseline"]["rps"] > 0
    assert report["goals"]["no_5xx_except_503"] is True


def test_serve_refuses_a_store_without_the_collection(tmp_path, capsys):
    assert main(["serve", "--store", str(tmp_path / "empty"), "--port", "0"]) == 2
    assert "ragarbiter index" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_the_cli_serves_what_ragarbiter_query_prints(tmp_path, fact_passages, capsys):
    corpus, store = tmp_path / "corpus", str(tmp_path / "store")
    corpus.mkdir()
    for i, p in enumerate(fact_passages):
        (corpus / f"fact{i}.txt").write_text(p.text, encoding="utf-8")
    assert main(["index", str(corpus), "--store", store, "--json", "--no-progress"]) == 0
    assert main(["query", QUESTION, "--store", store, "-k", "3", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ragarbiter.cli.main",
            "serve",
            "--store",
            store,
            "-k",
            "3",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not come up within 90s"
                time.sleep(0.25)
        served = httpx.post(f"http://127.0.0.1:{port}/query", json={"query": QUESTION}, timeout=60).json()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert decisions(served) == decisions(printed)
