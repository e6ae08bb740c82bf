"""Typed decision events and the sinks they are sent to.

Stages record events on the Context they return; the Pipeline forwards each stage's new
events to its sinks as soon as that stage finishes, so a serving layer sees every decision
while the request is still running.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Base class: every event names the stage that made it and when."""

    kind: ClassVar[str] = "event"
    stage: str
    time: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return {"event": self.kind, **data}


@dataclass(frozen=True)
class PassagesRetrieved(Event):
    kind: ClassVar[str] = "passages_retrieved"
    query: str
    passage_ids: tuple[str, ...]
    scores: tuple[float | None, ...]
    mode: str = ""


@dataclass(frozen=True)
class PassageFlagged(Event):
    kind: ClassVar[str] = "passage_flagged"
    passage_id: str
    label: str
    score: float
    reason: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class PassageDropped(Event):
    kind: ClassVar[str] = "passage_dropped"
    passage_id: str
    reason: str


@dataclass(frozen=True)
class ConflictDetected(Event):
    kind: ClassVar[str] = "conflict_detected"
    passage_ids: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class ContextReordered(Event):
    kind: ClassVar[str] = "context_reordered"
    before: tuple[str, ...]
    after: tuple[str, ...]
    reason: str = ""


@dataclass(frozen=True)
class SoftPromptBuilt(Event):
    kind: ClassVar[str] = "soft_prompt_built"
    shape: tuple[int, ...]
    passage_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageTimed(Event):
    """A stage finished: how long it took, and the passages it was given and returned, in order,
    with their scores (what a reranker trace shows as the documents before and after)."""

    kind: ClassVar[str] = "stage_timed"
    seconds: float
    n_in: int = 0
    n_out: int = 0
    passages_in: tuple[str, ...] = ()
    passages_out: tuple[str, ...] = ()
    scores_in: tuple[float | None, ...] = ()
    scores_out: tuple[float | None, ...] = ()


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        PassagesRetrieved,
        PassageFlagged,
        PassageDropped,
        ConflictDetected,
        ContextReordered,
        SoftPromptBuilt,
        StageTimed,
    )
}


@runtime_checkable
class EventSink(Protocol):
    """Anything with `emit(event)`; an optional `aemit` is awaited from async runs."""

    def emit(self, event: Event) -> None: ...


def emit_all(sinks: Sequence[EventSink], events: Sequence[Event]) -> None:
    """Send events to every sink; a failing sink is logged, never fatal to the request."""
    for sink in sinks:
        for event in events:
            try:
                sink.emit(event)
            except Exception:  # a broken observer must not break the chain
                logger.exception("event sink %r failed on %s", sink, event.kind)


async def aemit_all(sinks: Sequence[EventSink], events: Sequence[Event]) -> None:
    for sink in sinks:
        aemit = getattr(sink, "aemit", None)
        for event in events:
            try:
                if aemit is not None:
                    await aemit(event)
                else:
                    sink.emit(event)
            except Exception:
                logger.exception("event sink %r failed on %s", sink, event.kind)


class ListSink:
    """Keeps events in memory (tests, the CLI's --json output)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)


class LoggingSink:
    """Writes one log line per decision at INFO (timings at DEBUG)."""

    def __init__(self, logger_name: str = "ragarbiter.decisions") -> None:
        self.log = logging.getLogger(logger_name)

    def emit(self, event: Event) -> None:
        level = logging.DEBUG if isinstance(event, StageTimed) else logging.INFO
        self.log.log(level, "%s", json.dumps(event.to_dict(), default=str))


class JsonlSink:
    """Appends one JSON object per event to a file (an audit log)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        line = json.dumps(event.to_dict(), default=str)
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


class QueueSink:
    """Puts events on an asyncio queue, thread-safely (used to stream events over HTTP)."""

    def __init__(self, queue: asyncio.Queue, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.queue = queue
        self.loop = loop or asyncio.get_event_loop()

    def emit(self, event: Event) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    async def aemit(self, event: Event) -> None:
        await self.queue.put(event)
