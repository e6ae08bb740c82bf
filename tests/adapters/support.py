"""Constants and probe stages shared by the adapter tests."""

from __future__ import annotations

import asyncio
import threading

from ragarbiter import Passage, Stage

QUESTION = "Who founded the Halvorsen Observatory?"
# A near-duplicate of the first fact (cosine ~0.99 with MiniLM): the dedupe stage flags it.
DUPLICATE = Passage(
    "In 1898 the astronomer Ingrid Halvorsen founded the Halvorsen Observatory.",
    source="copy.txt",
    metadata={"topic": "observatory"},
)


class ConcurrencyProbe(Stage):
    """Records how many runs are inside it at once (async path)."""

    name = "probe"

    def __init__(self, delay: float = 0.1) -> None:
        self.delay = delay
        self.inside = 0
        self.most = 0
        self._lock = threading.Lock()

    def _run(self, context):
        return context

    async def _arun(self, context):
        with self._lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        await asyncio.sleep(self.delay)
        with self._lock:
            self.inside -= 1
        return context


class GateStage(Stage):
    """Waits until the test opens the gate; fails the run if it is not opened in time.

    Placed after retrieval, it proves that events are delivered while the pipeline is
    still running: the test opens the gate only after it has seen the retrieval event.
    """

    name = "gate"

    def __init__(self, timeout: float = 10.0) -> None:
        self.gate = threading.Event()
        self.timeout = timeout

    def _run(self, context):
        if not self.gate.wait(self.timeout):
            raise TimeoutError("the gate was never opened: events were not streamed while the run was going")
        return context


# The planted pair: the first fact and its near-copy.
ORIGINAL = Passage("The Halvorsen Observatory was founded in 1898 by the astronomer Ingrid Halvorsen.")
PAIR = {ORIGINAL.id, DUPLICATE.id}

# Questions whose best passage is unambiguous, with the source that must come first.
ROUTED = [
    ("When does the river Lenne flood?", "river.txt"),
    ("What is the bakery famous for?", "bakery.txt"),
    ("Where can residents borrow a telescope?", "library.txt"),
]
