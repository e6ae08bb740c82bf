"""Cold start and warm query: `ragarbiter query` in a fresh process, and a query in a warm one.

A 32-passage corpus is indexed into a throwaway data folder. Then, for each loader, `--runs` fresh
processes each answer `ragarbiter query QUESTION -k K --json` over it (everything included: Python,
imports, model loads, the default pipeline), and one more process builds the default pipeline,
answers one question to warm up and times `--queries` new ones in-process.

The measured loader reads the one shared base encoder from its safetensors file
(`ragarbiter.retrievers.bert`); the baseline, measured in the same run, is
RAGARBITER_LOADER=transformers: sentence-transformers for the retriever, transformers and peft
for the assessors, as before the shared encoder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ragarbiter.stats import latency_summary

LOADERS = {"baseline_transformers": "transformers", "shared_encoder": "auto"}

WARM = """
import json, sys, time
from ragarbiter import default_pipeline
questions, k = json.loads(sys.argv[1]), int(sys.argv[2])
pipeline = default_pipeline(k=k)
start = time.perf_counter()
pipeline.run(questions[0])
first = time.perf_counter() - start
times = []
for q in questions[1:]:
    start = time.perf_counter()
    pipeline.run(q)
    times.append(time.perf_counter() - start)
print(json.dumps({"first_s": first, "times": times}))
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--passages", type=int, default=32, help="corpus size (default: 32)")
    p.add_argument("--runs", type=int, default=3, help="fresh processes per loader (default: 3)")
    p.add_argument("--queries", type=int, default=20, help="warm queries per loader (default: 20)")
    p.add_argument("-k", type=int, default=10, help="passages per query (default: 10)")


def _env(home: str, loader: str) -> dict[str, str]:
    return {**os.environ, "RAGARBITER_HOME": home, "RAGARBITER_LOADER": loader, "HF_HUB_OFFLINE": "1"}


def _call(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        msg = f"{' '.join(argv[:4])} ... failed ({done.returncode}): {done.stderr[-1500:]}"
        raise RuntimeError(msg)
    return seconds, done.stdout


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ragarbiter.config import check_k
    from ragarbiter.errors import ConfigError

    from .bench_serve import synthetic_corpus

    check_k(args.k)
    for name in ("passages", "runs", "queries"):
        if getattr(args, name) < 1:
            msg = f"--{name} must be >= 1, got {getattr(args, name)}."
            raise ConfigError(msg)
    passages, questions = synthetic_corpus(args.passages, seed=7)
    cli = [sys.executable, "-m", "ragarbiter.cli.main"]
    result: dict[str, Any] = {"bench": "startup", "passages": len(passages), "k": args.k, "runs": args.runs}
    with tempfile.TemporaryDirectory(prefix="ragarbiter-startup-") as home:
        corpus = Path(home) / "corpus.jsonl"
        corpus.write_text(
            "".join(json.dumps({"text": p.text, "source": p.source}) + "\n" for p in passages), encoding="utf-8"
        )
        result["index_s"] = round(_call([*cli, "index", str(corpus), "--no-progress"], _env(home, "auto"))[0], 2)
        for name, loader in LOADERS.items():
            env = _env(home, loader)
            cold, answers = [], set()
            for i in range(args.runs):
                seconds, out = _call([*cli, "query", questions[i], "-k", str(args.k), "--json"], env)
                cold.append(seconds)
                answers.add(len(json.loads(out.strip().splitlines()[-1])["passages"]))
            warm_q = [questions[(i + args.runs) % len(questions)] for i in range(args.queries + 1)]
            _, out = _call([sys.executable, "-c", WARM, json.dumps(warm_q), str(args.k)], env)
            warm = json.loads(out.strip().splitlines()[-1])
            result[name] = {
                "cold_query_s": {"median": round(statistics.median(cold), 2), "all": [round(s, 2) for s in cold]},
                "warm_first_query_s": round(warm["first_s"], 2),
                "warm_query": latency_summary(warm["times"], quantiles=(50, 95)),
                "passages_returned": sorted(answers),
            }
    shared = result["shared_encoder"]
    result["goals"] = {
        "cold_query_le_5s": shared["cold_query_s"]["median"] <= 5.0,
        "warm_query_p50_le_500ms": shared["warm_query"]["p50_ms"] <= 500.0,
    }
    return result


def print_result(result: dict[str, Any]) -> None:
    print(f"bench startup: {result['passages']} passages, k={result['k']}, {result['runs']} fresh processes each")
    print(f"{'':24} {'cold query s':>13} {'warm p50 ms':>12} {'warm p95 ms':>12}")
    for name in LOADERS:
        r = result[name]
        print(
            f"{name:24} {r['cold_query_s']['median']:>13.2f} {r['warm_query']['p50_ms']:>12.1f} "
            f"{r['warm_query']['p95_ms']:>12.1f}"
        )
    print("goals:", ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in result["goals"].items()))
