"""Micro-batching: calls that arrive while the same work is running share its next pass.

A server answers many queries at once, each in its own worker thread, and every query runs the
same encoder blocks over its own few passages. Run separately, those small passes contend for the
same cores; run together, they are one larger pass that costs less than their sum.

`MicroBatcher(fn)` wraps a function from a list of items to a list of results of the same length.
A call hands over its items and waits. When no pass is running, the caller runs one at once with
every item waiting at that moment (its own included); calls that arrive during a pass wait for it
to end and then go together in the next. A lone call therefore pays nothing extra (no timer), and
under load the batches grow by themselves. `window_s` adds an optional wait before each pass so
that requests arriving a few milliseconds apart can meet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")


class _Call(Generic[T, R]):
    __slots__ = ("done", "error", "items", "results")

    def __init__(self, items: list[T]) -> None:
        self.items = items
        self.results: list[R] | None = None
        self.error: BaseException | None = None
        self.done = False


class MicroBatcher(Generic[T, R]):
    """Thread-safe: ``batcher(items) -> results``, with concurrent calls merged into one `fn` pass.

    `max_items` bounds one pass (a call's own items are never split). An error in a pass is raised
    in every call that was part of it. `passes` and `calls` count what happened (for tests and
    benchmarks: calls / passes is the mean batch size in calls).
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], *, window_s: float = 0.0, max_items: int = 512) -> None:
        if window_s < 0 or max_items < 1:
            msg = f"MicroBatcher needs window_s >= 0 and max_items >= 1, got {window_s!r} and {max_items!r}."
            raise ConfigError(msg)
        self.fn, self.window_s, self.max_items = fn, window_s, max_items
        self._cond = threading.Condition()
        self._waiting: list[_Call[T, R]] = []
        self._busy = False
        self.passes = 0
        self.calls = 0

    def __call__(self, items: Sequence[T]) -> list[R]:
        call: _Call[T, R] = _Call(list(items))
        if not call.items:
            return []
        with self._cond:
            self._waiting.append(call)
        while True:
            with self._cond:
                while self._busy and not call.done:
                    self._cond.wait()
                if call.done:
                    break
                self._busy = True  # no pass is running: this thread runs the next one
            self._pass()
        if call.error is not None:
            raise call.error
        return call.results  # type: ignore[return-value]

    def _pass(self) -> None:
        batch: list[_Call[T, R]] = []
        try:
            if self.window_s:
                time.sleep(self.window_s)
            with self._cond:
                size = 0
                for call in self._waiting:
                    if batch and size + len(call.items) > self.max_items:
                        break
                    batch.append(call)
                    size += len(call.items)
                self._waiting = self._waiting[len(batch) :]
            flat = [item for call in batch for item in call.items]
            results = list(self.fn(flat))
            if len(results) != len(flat):
                msg = f"MicroBatcher: {self.fn!r} returned {len(results)} results for {len(flat)} items."
                raise RuntimeError(msg)
            start = 0
            for call in batch:
                call.results = results[start : start + len(call.items)]
                start += len(call.items)
        except BaseException as exc:  # every caller in the pass sees its error
            for call in batch:
                call.error = exc
        finally:
            with self._cond:
                for call in batch:
                    call.done = True
                self.passes += 1
                self.calls += len(batch)
                self._busy = False
                self._cond.notify_all()
