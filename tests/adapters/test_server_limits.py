"""The server holds: every limit answers at once in one JSON error shape, deadlines and disconnects stop
the work itself, and a full server says 429 with Retry-After instead of queueing without bound."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from ragarbiter import Context, Pipeline, ServerLimits, Stage  # noqa: E402
from ragarbiter.adapters.server import BackgroundServer, create_app  # noqa: E402
from ragarbiter.deadline import check_budget  # noqa: E402
from ragarbiter.errors import ConfigError  # noqa: E402
from ragarbiter.retrievers import QdrantRetriever  # noqa: E402
from tests.adapters.support import QUESTION  # noqa: E402

SHAPE = {"error", "type", "status"}


class Busy(Stage):
    """Works in small steps for up to `steps * step_s`, checking the request budget between steps."""

    name = "busy"

    def __init__(self, steps: int = 100, step_s: float = 0.02) -> None:
        self.steps, self.step_s = steps, step_s
        self.done_steps: list[int] = []
        self.finished = threading.Event()

    def _run(self, context: Context) -> Context:
        done = 0
        try:
            for _ in range(self.steps):
                check_budget("busy step")
                time.sleep(self.step_s)
                done += 1
        finally:
            self.done_steps.append(done)
            self.finished.set()
        return context


class After(Stage):
    name = "after"

    def __init__(self) -> None:
        self.runs = 0

    def _run(self, context: Context) -> Context:
        self.runs += 1
        return context


def error_of(response, status: int, kind: str) -> str:
    body = response.json()
    assert response.status_code == status and set(body) == SHAPE, (response.status_code, body)
    assert (body["status"], body["type"]) == (status, kind)
    return body["error"]


@pytest.fixture
def served(judging_pipeline):
    limits = ServerLimits(max_body_bytes=2_000, max_query_chars=200, max_k=20)
    with BackgroundServer(create_app(judging_pipeline, limits=limits)) as server:
        yield server


def test_a_body_over_the_limit_is_413_by_length_and_while_it_streams_in(served):
    big = {"query": QUESTION, "filter": {"topic": "x" * 5_000}}
    assert "--max-body-bytes" in error_of(httpx.post(served.url + "/query", json=big), 413, "RequestTooLargeError")

    def chunks():  # no Content-Length: the limit is counted as the body arrives
        yield b'{"query": "' + b"a" * 1_500
        yield b"b" * 1_500 + b'"}'

    chunked = httpx.post(served.url + "/query", content=chunks(), headers={"content-type": "application/json"})
    assert "2000 bytes" in error_of(chunked, 413, "RequestTooLargeError")


@pytest.mark.parametrize("path", ["/query", "/query/stream"])
@pytest.mark.parametrize(
    ("body", "kind", "needle"),
    [
        ({"query": "x" * 500}, "InvalidInputError", "500 characters long; this server takes at most 200"),
        (
            {"query": QUESTION, "k": 100_000},
            "InvalidInputError",
            "k=100000 is more than this server returns (at most 20",
        ),
        ({"query": QUESTION, "filter": {"topic": {"$ne": 1}}}, "InvalidInputError", "filter field 'topic' must be"),
        ({"query": QUESTION, "filter": {"topic": [{"a": 1}]}}, "InvalidInputError", "filter field 'topic'"),
        ({"query": QUESTION, "filter": ["topic"]}, "InvalidInputError", "filter: Input should be a valid dictionary"),
        ({"query": QUESTION, "k": "five"}, "InvalidInputError", "k: Input should be a valid integer"),
        ({"k": 3}, "InvalidInputError", "query: Field required"),
        ({"query": "   "}, "EmptyQueryError", "The query is empty"),
    ],
)
def test_each_bad_request_is_one_400_in_the_one_shape(served, path, body, kind, needle):
    assert needle in error_of(httpx.post(served.url + path, json=body, timeout=30), 400, kind)


def test_unknown_routes_and_methods_use_the_same_shape(served):
    assert error_of(httpx.get(served.url + "/nope"), 404, "HTTPException") == "Not Found"
    assert error_of(httpx.get(served.url + "/query"), 405, "HTTPException") == "Method Not Allowed"


def test_a_full_server_answers_429_at_once_with_retry_after(store):
    busy = Busy(steps=50)
    limits = ServerLimits(workers=1, queue_depth=1, retry_after_s=3)
    app = create_app(Pipeline([QdrantRetriever(store), busy]), limits=limits)
    with BackgroundServer(app) as server:
        results = {}

        def send(i):
            results[i] = httpx.post(server.url + "/query", json={"query": QUESTION, "k": 2}, timeout=30)

        first = [threading.Thread(target=send, args=(i,)) for i in range(2)]  # one runs, one waits
        for t in first:
            t.start()
        time.sleep(0.3)
        start = time.perf_counter()
        third = httpx.post(server.url + "/query", json={"query": QUESTION}, timeout=30)
        rejected_in = time.perf_counter() - start
        for t in first:
            t.join()
        health = httpx.get(server.url + "/health").json()
    assert "--queue-depth 1" in error_of(third, 429, "OverloadedError")
    assert third.headers["retry-after"] == "3" and rejected_in < 0.5
    assert [results[i].status_code for i in range(2)] == [200, 200]
    assert (health["in_flight"], health["rejected"]) == (0, 1)


def test_the_deadline_stops_the_work_and_answers_503_with_retry_after(store):
    busy, after = Busy(steps=100), After()
    app = create_app(Pipeline([QdrantRetriever(store), busy, after]), limits=ServerLimits(deadline_s=0.3))
    with BackgroundServer(app) as server:
        start = time.perf_counter()
        response = httpx.post(server.url + "/query", json={"query": QUESTION}, timeout=30)
        answered_in = time.perf_counter() - start
        assert busy.finished.wait(2)
        streamed = httpx.post(server.url + "/query/stream", json={"query": QUESTION}, timeout=30)
    assert "0.3 s deadline" in error_of(response, 503, "DeadlineExceededError")
    assert response.headers["retry-after"] == "1" and answered_in < 1.0
    assert busy.done_steps[0] < 40 and after.runs == 0  # the work stopped, not just the wait for it
    assert streamed.text.splitlines()[-2].startswith("data: ") and '"DeadlineExceededError"' in streamed.text
    assert '"status": 503' in streamed.text and "event: result" not in streamed.text


@pytest.mark.parametrize("path", ["/query", "/query/stream"])
def test_a_client_that_goes_away_frees_its_worker(store, path):
    busy = Busy(steps=150)
    app = create_app(Pipeline([QdrantRetriever(store), busy]), limits=ServerLimits(workers=1, queue_depth=0))
    with BackgroundServer(app) as server:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(server.url + path, json={"query": QUESTION}, timeout=0.3)
        assert busy.finished.wait(2.0)  # 150 steps would take 3 s: the disconnect stopped them
        deadline = time.monotonic() + 2
        while httpx.get(server.url + "/health").json()["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.02)
        busy.steps = 1
        again = httpx.post(server.url + "/query", json={"query": QUESTION, "k": 2}, timeout=30)
    assert busy.done_steps[0] < 60
    assert again.status_code == 200  # the only worker was free again


def test_limits_are_validated():
    with pytest.raises(ConfigError, match="ServerLimits.workers must be a positive number, got 0"):
        ServerLimits(workers=0)
    assert ServerLimits(queue_depth=0).queue_depth == 0
