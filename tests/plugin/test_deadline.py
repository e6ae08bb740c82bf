"""Per-request budgets: the pipeline stops between stages once a deadline passes or the request is cancelled,
and the budget follows the request into worker threads."""

import asyncio
import time

import pytest

from ragarbiter import Context, Pipeline, Stage
from ragarbiter.deadline import Budget, check_budget, current_budget
from ragarbiter.errors import ConfigError, DeadlineExceededError


class Slow(Stage):
    def __init__(self, name, seconds, log):
        self.name, self.seconds, self.log = name, seconds, log

    def _run(self, context: Context) -> Context:
        self.log.append(self.name)
        time.sleep(self.seconds)
        return context


def test_the_pipeline_stops_at_the_first_stage_boundary_past_the_deadline():
    log = []
    pipe = Pipeline([Slow("a", 0.15, log), Slow("b", 0.0, log), Slow("c", 0.0, log)])
    with Budget(0.1).active(), pytest.raises(DeadlineExceededError, match="0.1 s deadline \\(at before stage 'b'\\)"):
        pipe.run("q")
    assert log == ["a"]
    assert pipe.run("q").query == "q"  # outside a budget nothing is checked
    assert log == ["a", "a", "b", "c"]


def test_a_cancelled_budget_stops_work_running_in_a_worker_thread():
    log = []
    budget = Budget(30)

    async def main():
        pipe = Pipeline([Slow("a", 0.2, log), Slow("b", 0.0, log)])
        with budget.active():
            task = asyncio.create_task(pipe.arun("q"))
        await asyncio.sleep(0.05)
        budget.cancel()
        with pytest.raises(DeadlineExceededError, match="cancelled \\(at before stage 'b'\\): the client went away"):
            await task

    asyncio.run(main())
    assert log == ["a"]


def test_the_budget_is_visible_in_threads_the_request_hands_work_to():
    async def main():
        with Budget(5).active() as budget:
            seen = await asyncio.to_thread(current_budget)
        return seen is budget

    assert asyncio.run(main())
    check_budget()  # no budget: no error


def test_a_deadline_must_be_positive():
    with pytest.raises(ConfigError, match="deadline must be > 0 seconds, got 0"):
        Budget(0)
