"""Held-out splits for training data."""

from __future__ import annotations

import random

from ragarbiter.errors import ConfigError


def split_holdout(items: list, fraction: float, seed: int, cap: int = 400) -> tuple[list, list]:
    """(train, held-out): a seeded shuffle, then the first `fraction` (at most `cap`) held out."""
    if not 0.0 <= fraction < 1.0:
        msg = f"--eval-fraction must lie in [0, 1), got {fraction!r}. Try 0.05."
        raise ConfigError(msg)
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_eval = min(cap, int(round(len(items) * fraction)))
    held = [items[i] for i in order[:n_eval]]
    return [items[i] for i in order[n_eval:]], held
