"""Per-request budgets that stop the work itself, not just the wait for it.

A server gives each request a `Budget` (a deadline, and a flag its client's disconnect sets)
and runs the pipeline inside ``with budget.active():``. The budget rides in a context variable,
so it follows the request into `asyncio.to_thread` workers. The Pipeline checks it between
stages; encoders and assessors check it between batches with `check_budget`. Past the deadline,
or once cancelled, the next check raises `DeadlineExceededError` and the worker is free again.

Code outside a budget (scripts, notebooks, the CLI) pays one context-variable read per check.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator

from .errors import ConfigError, DeadlineExceededError

_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("ragarbiter_budget", default=None)


class Budget:
    """A deadline (seconds from now; None for none) and a cancel flag, shared across threads."""

    def __init__(self, seconds: float | None = None) -> None:
        if seconds is not None and not seconds > 0:
            msg = f"A request deadline must be > 0 seconds, got {seconds!r}."
            raise ConfigError(msg)
        self.seconds = seconds
        self.expires = None if seconds is None else time.monotonic() + seconds
        self._cancelled = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "the client went away") -> None:
        self.reason = reason
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def remaining(self) -> float | None:
        """Seconds left (never below 0), or None without a deadline."""
        return None if self.expires is None else max(0.0, self.expires - time.monotonic())

    def check(self, where: str = "") -> None:
        at = f" (at {where})" if where else ""
        if self._cancelled.is_set():
            msg = f"The request was cancelled{at}: {self.reason}. Nothing was returned; send it again if needed."
            raise DeadlineExceededError(msg)
        if self.expires is not None and time.monotonic() > self.expires:
            msg = (
                f"The request ran past its {self.seconds:g} s deadline{at} and was stopped. "
                f"Retry later, ask for fewer passages (k), or raise the deadline."
            )
            raise DeadlineExceededError(msg)

    @contextlib.contextmanager
    def active(self) -> Iterator[Budget]:
        """Make this the current budget for the block (and the threads the block hands work to)."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)


def current_budget() -> Budget | None:
    return _CURRENT.get()


def check_budget(where: str = "") -> None:
    """Raise `DeadlineExceededError` when the current request is past its deadline or cancelled."""
    budget = _CURRENT.get()
    if budget is not None:
        budget.check(where)
