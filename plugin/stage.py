"""Stage and Pipeline: everything that touches a Context is a Stage."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .deadline import check_budget
from .errors import ConfigError, InvalidInputError
from .events import EventSink, StageTimed, aemit_all, emit_all
from .types import Context, DroppedPassage, Judgement, Passage

logger = logging.getLogger(__name__)


class Stage:
    """One step of a pipeline: `Context -> Context`, sync and async.

    Subclasses implement `_run` (and `_arun` when they have real async work, such as a
    network call); the public `__call__` / `acall` validate the input and never mutate it.
    """

    name: str = "stage"

    def __call__(self, context: Context) -> Context:
        self._check(context)
        return self._run(context)

    async def acall(self, context: Context) -> Context:
        self._check(context)
        return await self._arun(context)

    def _run(self, context: Context) -> Context:
        raise NotImplementedError(f"{type(self).__name__} must implement _run(context)")

    async def _arun(self, context: Context) -> Context:
        # Default for CPU-bound stages: run in a worker thread so the event loop stays free.
        return await asyncio.to_thread(self._run, context)

    def _check(self, context: Context) -> None:
        if not isinstance(context, Context):
            msg = (
                f"{self.name}: expected a ragarbiter Context, got "
                f"{type(context).__name__}. Wrap the query with Context.for_query(query)."
            )
            raise InvalidInputError(msg)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def judge(context: Context, judgements: Iterable[Judgement], events: Iterable[Any] = (), **changes: Any) -> Context:
    """Helper for stages: append judgements (and their events) to a Context."""
    return context.evolve(judgements=context.judgements + tuple(judgements), events=events, **changes)


def drop(context: Context, to_drop: dict[str, str], stage: str) -> Context:
    """Remove passages by id, recording each with its reason (nothing disappears silently)."""
    from .events import PassageDropped

    kept: list[Passage] = []
    dropped: list[DroppedPassage] = []
    events = []
    for p in context.passages:
        if p.id in to_drop:
            dropped.append(DroppedPassage(p, stage, to_drop[p.id]))
            events.append(PassageDropped(stage=stage, passage_id=p.id, reason=to_drop[p.id]))
        else:
            kept.append(p)
    return context.evolve(passages=tuple(kept), dropped=context.dropped + tuple(dropped), events=events)


def _timed(stage: Stage, before: Context, after: Context, start: float) -> Context:
    """`after` with the StageTimed event of `stage` appended (passages in and out, with scores)."""
    timed = StageTimed(
        stage=stage.name,
        seconds=time.perf_counter() - start,
        n_in=len(before.passages),
        n_out=len(after.passages),
        passages_in=tuple(p.id for p in before.passages),
        passages_out=tuple(p.id for p in after.passages),
        scores_in=tuple(p.score for p in before.passages),
        scores_out=tuple(p.score for p in after.passages),
    )
    return after.evolve(events=[timed])


class Pipeline(Stage):
    """An ordered list of Stages, itself a Stage.

    >>> pipe = Pipeline([QdrantRetriever(store)])          # doctest: +SKIP
    >>> pipe.run("who founded the observatory?", k=5)      # doctest: +SKIP
    """

    name = "pipeline"

    def __init__(self, stages: Sequence[Stage], sinks: Sequence[EventSink] = (), name: str = "pipeline") -> None:
        stages = list(stages)
        for i, stage in enumerate(stages):
            if not callable(stage) or not hasattr(stage, "acall"):
                msg = f"Pipeline stage #{i} ({stage!r}) is not a Stage. Subclass ragarbiter.Stage."
                raise ConfigError(msg)
        self.stages = stages
        self.sinks = list(sinks)
        self.name = name

    def with_sinks(self, *sinks: EventSink) -> Pipeline:
        return Pipeline(self.stages, [*self.sinks, *sinks], self.name)

    def without_retrieval(self) -> Pipeline:
        """The post-retrieval stages only (for compressors and postprocessors)."""
        kept = [s for s in self.stages if not getattr(s, "retrieves", False)]
        return Pipeline(kept, self.sinks, self.name)

    # -- entry points -----------------------------------------------------------------
    def run(
        self, query: str, *, passages: Iterable[Passage] = (), sinks: Sequence[EventSink] = (), **options: Any
    ) -> Context:
        return self._run_with(Context.for_query(query, passages, **options), sinks)

    async def arun(
        self, query: str, *, passages: Iterable[Passage] = (), sinks: Sequence[EventSink] = (), **options: Any
    ) -> Context:
        return await self._arun_with(Context.for_query(query, passages, **options), sinks)

    def batch(self, queries: Sequence[str], *, max_concurrency: int = 4, **options: Any) -> list[Context]:
        """Run several queries; results keep the input order."""
        if max_concurrency < 1:
            msg = f"max_concurrency must be >= 1, got {max_concurrency}."
            raise ConfigError(msg)
        contexts = [Context.for_query(q, **options) for q in queries]  # validate all first
        with ThreadPoolExecutor(max_workers=max_concurrency) as pool:
            return list(pool.map(self.__call__, contexts))

    async def abatch(self, queries: Sequence[str], *, max_concurrency: int = 4, **options: Any) -> list[Context]:
        contexts = [Context.for_query(q, **options) for q in queries]
        gate = asyncio.Semaphore(max_concurrency)

        async def one(ctx: Context) -> Context:
            async with gate:
                return await self.acall(ctx)

        return list(await asyncio.gather(*(one(c) for c in contexts)))

    # -- Stage interface ----------------------------------------------------------------
    def _run(self, context: Context) -> Context:
        return self._run_with(context, ())

    async def _arun(self, context: Context) -> Context:
        return await self._arun_with(context, ())

    def _run_with(self, context: Context, extra_sinks: Sequence[EventSink]) -> Context:
        sinks = [*self.sinks, *extra_sinks]
        for stage in self.stages:
            check_budget(f"before stage {stage.name!r}")
            start, seen = time.perf_counter(), len(context.trace)
            out = _timed(stage, context, stage(context), start)
            emit_all(sinks, out.trace[seen:])
            context = out
        return context

    async def _arun_with(self, context: Context, extra_sinks: Sequence[EventSink]) -> Context:
        sinks = [*self.sinks, *extra_sinks]
        for stage in self.stages:
            check_budget(f"before stage {stage.name!r}")
            start, seen = time.perf_counter(), len(context.trace)
            out = _timed(stage, context, await stage.acall(context), start)
            await aemit_all(sinks, out.trace[seen:])
            context = out
        return context

    def __repr__(self) -> str:
        inner = ", ".join(s.name for s in self.stages)
        return f"Pipeline([{inner}])"
