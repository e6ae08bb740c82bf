"""Micro-batching: concurrent calls share passes, each gets its own results, errors reach every caller."""

import threading
import time

import pytest

from ragarbiter.batching import MicroBatcher
from ragarbiter.errors import ConfigError


def test_concurrent_calls_share_passes_and_get_their_own_results():
    sizes = []

    def slow_square(items):
        sizes.append(len(items))
        time.sleep(0.05)
        return [x * x for x in items]

    batcher = MicroBatcher(slow_square)
    results = {}
    start = threading.Barrier(8)

    def worker(w):
        start.wait()
        results[w] = batcher(list(range(w * 10, w * 10 + w + 1)))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {w: [x * x for x in range(w * 10, w * 10 + w + 1)] for w in range(8)}
    assert batcher.calls == 8
    assert batcher.passes < 8  # calls that arrived during a pass went together in the next
    assert max(sizes) > 8  # a pass held more than one call's items (the largest call has 8)


def test_a_lone_call_runs_at_once_and_an_empty_one_not_at_all():
    batcher = MicroBatcher(lambda items: [x + 1 for x in items])
    assert batcher([1, 2]) == [2, 3]
    assert batcher([]) == []
    assert (batcher.passes, batcher.calls) == (1, 1)


def test_max_items_bounds_a_pass_without_splitting_a_call():
    sizes = []
    gate = threading.Event()

    def fn(items):
        sizes.append(len(items))
        gate.wait(1.0)
        return items

    batcher = MicroBatcher(fn, max_items=5)
    threads = [threading.Thread(target=batcher, args=([i] * 3,)) for i in range(4)]
    for t in threads:
        t.start()
        time.sleep(0.02)
    gate.set()
    for t in threads:
        t.join()
    assert sum(sizes) == 12 and max(sizes) <= 5 and all(s % 3 == 0 for s in sizes)


def test_an_error_in_a_pass_reaches_every_caller_in_it_and_the_batcher_keeps_working():
    calls = {"n": 0}

    def fn(items):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("bad batch")
        return items

    batcher = MicroBatcher(fn)
    with pytest.raises(ValueError, match="bad batch"):
        batcher([1])
    assert batcher([2]) == [2]


def test_a_wrong_result_count_is_an_error_not_a_silent_misalignment():
    batcher = MicroBatcher(lambda items: items[:-1])
    with pytest.raises(RuntimeError, match="returned 1 results for 2 items"):
        batcher([1, 2])


def test_bad_settings_are_named():
    with pytest.raises(ConfigError, match="window_s >= 0 and max_items >= 1, got -1"):
        MicroBatcher(lambda x: x, window_s=-1)
