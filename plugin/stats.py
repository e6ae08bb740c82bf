"""Latency summaries with one set of key names, for every benchmark that times something."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def latency_summary(seconds: Sequence[float], quantiles: Sequence[int] = (50, 90, 99)) -> dict[str, float | int]:
    """``{"n", "mean_ms", "p50_ms", "p90_ms", "p99_ms"}`` of per-call times given in seconds."""
    if not len(seconds):
        return {"n": 0}
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    out: dict[str, float | int] = {"n": int(ms.size), "mean_ms": round(float(ms.mean()), 1)}
    for q in quantiles:
        out[f"p{q}_ms"] = round(float(np.percentile(ms, q)), 1)
    return out
