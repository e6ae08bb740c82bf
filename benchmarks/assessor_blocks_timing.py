"""Interleaved timing of the three assessor stages: length groups (`run_blocks`) against one padded batch.

    python benchmarks/assessor_blocks_timing.py [LITM.jsonl.gz]

Both ways run in one process on the same retrieved passages, alternating which goes first,
with every cache of encoder states and sentence vectors cleared before each run; prints one JSON line (ms).
"""

import gc
import json
import sys
import tempfile
import time

import numpy as np

import ragarbiter.assessors.backbone as bb
import ragarbiter.assessors.conflict.model as cm
import ragarbiter.assessors.inappropriate.model as im
from ragarbiter.assessors import ConflictAssessor, InappropriateFilter, PoisonFilter
from ragarbiter.config import StoreConfig
from ragarbiter.datasets import read_litm
from ragarbiter.retrievers import QdrantStore, index_passages
from ragarbiter.types import Context, Passage

grouped = bb.run_blocks


def padded(layers, states):
    if not states:
        return []
    hidden, mask = bb.padded_states(states, states[0].device)
    out = bb.run_layers(layers, hidden, mask)
    return [out[i, : s.shape[0]] for i, s in enumerate(states)]


def use(fn):
    bb.run_blocks = cm.run_blocks = im.run_blocks = fn


def clear():
    for o in gc.get_objects():
        if isinstance(o, (bb.Backbone, cm.ConflictScorer)):
            o._cache.clear()
        if isinstance(o, bb.Backbone):
            o._vectors.clear()


items = read_litm(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/litm/nq-open-oracle.jsonl.gz")
texts = list(dict.fromkeys(t for it in items for t in it.passages))[:1000]
qs = [it.question for it in items][:32]
store = QdrantStore(StoreConfig(collection="latency", path=tempfile.mkdtemp()))
index_passages(store, [Passage(t) for t in texts], progress=False)
stages = [PoisonFilter(encoder=store.encoder, store=store), ConflictAssessor(), InappropriateFilter()]
times = {"grouped": {s.name: [] for s in stages}, "padded": {s.name: [] for s in stages}}
for i, q in enumerate(qs):
    found = store.search(q, k=20, mode="hybrid")
    bb.shared_dense_encoder().encode_cached([q, *[p.text for p in found]])  # both modes find the topic vectors cached
    order = (("grouped", grouped), ("padded", padded)) if i % 2 else (("padded", padded), ("grouped", grouped))
    for name, fn in order:
        use(fn)
        clear()
        ctx = Context.for_query(q, found)
        for s in stages:
            t0 = time.perf_counter()
            ctx = s(ctx)
            dt = time.perf_counter() - t0
            if i >= 2:
                times[name][s.name].append(dt)
use(grouped)
out = {}
for name, per in times.items():
    total = np.sum([per[s] for s in per], axis=0)
    out[name] = {
        **{s: round(1000 * float(np.median(v)), 1) for s, v in per.items()},
        "total_p50": round(1000 * float(np.median(total)), 1),
        "total_p90": round(1000 * float(np.percentile(total, 90)), 1),
    }
print(json.dumps({"queries": len(qs) - 2, "passages": 20, **out}))
