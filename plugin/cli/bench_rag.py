"""End-to-end answer quality under corpus poisoning: a real generator's answers, undefended against defended.

The LitM NQ-Open passages and every PoisonedRAG `adv_texts` entry are indexed into one temporary
store. Each target question is retrieved once (`candidates` passages); the generator then
answers from

- nothing (closed book);
- the first k retrieved passages (plain RAG, "undefended");
- the first k left after each default stage alone;
- the first k left after the whole default pipeline ("defended").

`asr` is the share of answers that contain the target's incorrect answer (the PoisonedRAG
metric), `accuracy` the share that contain its correct answer. On the first N LitM questions,
which no poison targets, clean accuracy (any gold alias in the answer) is measured undefended and
defended. Identical contexts are answered once: only generation repeats across settings.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time

import numpy as np

from ragarbiter.config import SEARCH_MODES

K = 5
CLEAN_QUESTIONS = 100
MAX_NEW_TOKENS = 32
SEARCH_BATCH = 64


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="FILE", help="PoisonedRAG targeted results (.json)")
    p.add_argument(
        "--corpus", required=True, metavar="FILE", help="LitM NQ-Open .jsonl.gz (its passages are the corpus)"
    )
    p.add_argument(
        "--generator",
        metavar="NAME_OR_DIR",
        default=None,
        help="the LLM that answers (default: smollm2-135m-instruct; any local causal-LM folder)",
    )
    p.add_argument("--limit", type=int, default=None, metavar="N", help="first N targets only (default: all)")
    p.add_argument(
        "--clean-questions",
        type=int,
        default=CLEAN_QUESTIONS,
        metavar="N",
        help=f"first N corpus questions for clean accuracy (default: {CLEAN_QUESTIONS})",
    )
    p.add_argument("-k", type=int, default=K, help=f"passages the generator reads (default: {K})")
    p.add_argument(
        "--candidates",
        type=int,
        default=None,
        metavar="N",
        help="passages retrieved before the stages (default: 4 x k); the generator reads the first k left",
    )
    p.add_argument("--mode", default="hybrid", choices=SEARCH_MODES, help="retrieval mode (default: hybrid)")
    p.add_argument(
        "--max-new-tokens", type=int, default=MAX_NEW_TOKENS, help=f"answer length cap (default: {MAX_NEW_TOKENS})"
    )
    p.add_argument("--batch-size", type=int, default=8, help="answers generated together (default: 8)")


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def contains(answer: str, target: str) -> bool:
    """Whether `target` occurs in `answer`, ignoring case, punctuation and spacing (PoisonedRAG's test)."""
    needle = normalize(target)
    return bool(needle) and f" {needle} " in f" {normalize(answer)} "


def run(args: argparse.Namespace) -> dict:
    from tqdm.auto import tqdm

    from ragarbiter.assessors.poison.config import PoisonConfig
    from ragarbiter.assessors.poison.data import read_poisonedrag
    from ragarbiter.config import StoreConfig, check_k
    from ragarbiter.datasets import read_litm
    from ragarbiter.errors import ConfigError, EmptyCorpusError
    from ragarbiter.lm import load_generator
    from ragarbiter.registry import default_pipeline, default_post_stages
    from ragarbiter.retrievers import QdrantStore, index_passages
    from ragarbiter.stage import Pipeline
    from ragarbiter.stats import latency_summary
    from ragarbiter.types import Context, Passage, content_id

    check_k(args.k)
    n_candidates = args.candidates or 4 * args.k
    if n_candidates < args.k:
        raise ConfigError(f"--candidates ({n_candidates}) must be >= k ({args.k}).")
    targets = read_poisonedrag(args.data)[: args.limit]
    items = read_litm(args.corpus)
    if not targets or not items:
        msg = f"Nothing to measure: {len(targets)} targets in {args.data}, {len(items)} questions in {args.corpus}."
        raise EmptyCorpusError(msg)
    clean = items[: args.clean_questions]
    generator = load_generator(args.generator)
    corpus = {content_id(t): Passage(t, source="corpus") for it in items for t in it.passages}
    adv = {content_id(t): Passage(t, source=f"adv/{tg.id}") for tg in targets for t in tg.adv_texts}

    # Retrieval and the stages, once per question: settings -> passages the generator reads.
    contexts: list[dict[str, list[Passage]]] = []
    overhead: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ragarbiter-rag-") as folder:
        store = QdrantStore(StoreConfig(collection="rag", path=folder))
        index_passages(store, [*corpus.values(), *adv.values()], progress=not args.json)
        pipeline = default_pipeline(store, k=n_candidates, mode=args.mode)
        post = pipeline.without_retrieval()
        # The same stages with the poison filter's other action for a planted-looking group that nothing
        # in the candidates contradicts (dropped, the default, or demoted), for comparison.
        variant = "demote" if PoisonConfig.uncorroborated == "drop" else "drop"
        other = Pipeline(default_post_stages({"poison": {"store": store, "uncorroborated": variant}}))
        questions = [t.question for t in targets] + [it.question for it in clean]
        hits: list[list[Passage]] = []
        for i in range(0, len(questions), SEARCH_BATCH):
            hits += store.search_batch(questions[i : i + SEARCH_BATCH], k=n_candidates, mode=args.mode)
        for i, (question, found) in enumerate(
            tqdm(list(zip(questions, hits)), desc="assess", unit="question", disable=args.json)
        ):
            ctx = Context.for_query(question, found)
            settings = {"undefended": list(found[: args.k])}
            start = time.perf_counter()
            settings["defended"] = list(post(ctx).passages[: args.k])
            overhead.append(time.perf_counter() - start)
            settings[f"defended_{variant}"] = list(other(ctx).passages[: args.k])
            if i < len(targets):
                for stage in post.stages:
                    settings[stage.name] = list(stage(ctx).passages[: args.k])
            contexts.append(settings)
        stage_names = [s.name for s in post.stages]
        store.close()

    # Generation: each distinct (question, passages) once.
    prompts: dict[tuple[str, tuple[str, ...]], int] = {}
    for question, settings in zip(questions, contexts):
        for passages in [[], *settings.values()]:
            prompts.setdefault((question, tuple(p.text for p in passages)), len(prompts))
    start = time.perf_counter()
    answers = generator.answers(
        list(prompts), max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, progress=not args.json
    )
    s_per_answer = (time.perf_counter() - start) / max(len(answers), 1)

    def answer(question: str, passages: list[Passage]) -> str:
        return answers[prompts[(question, tuple(p.text for p in passages))]]

    def score(names: list[str]) -> dict[str, dict[str, float]]:
        out = {}
        for name in names:
            rows = []
            for tg, settings in zip(targets, contexts):
                passages = [] if name == "closed_book" else settings[name]
                text = answer(tg.question, passages)
                rows.append(
                    (contains(text, tg.incorrect), contains(text, tg.correct), sum(p.id in adv for p in passages))
                )
            asr, acc, n_adv = (np.mean([r[j] for r in rows]) for j in range(3))
            out[name] = {"asr": round(float(asr), 4), "accuracy": round(float(acc), 4)}
            if name.startswith(("undefended", "defended")):
                out[name]["adv_in_topk"] = round(float(n_adv), 4)
        return out

    variant_name = f"defended_{variant}"
    scores = score(["closed_book", "undefended", "defended", variant_name, *stage_names])
    clean_acc = {}
    for name in ("undefended", "defended", variant_name):
        hits_ = [
            any(contains(answer(it.question, settings[name]), a) for a in it.answers)
            for it, settings in zip(clean, contexts[len(targets) :])
        ]
        clean_acc[name] = {"accuracy": round(float(np.mean(hits_)), 4) if hits_ else None}
    return {
        "generator": str(generator.path),
        "data": str(args.data),
        "corpus": str(args.corpus),
        "k": args.k,
        "candidates": n_candidates,
        "mode": args.mode,
        "n_targets": len(targets),
        "n_clean_questions": len(clean),
        "closed_book": {"accuracy": scores["closed_book"]["accuracy"]},
        "undefended": scores["undefended"],
        "defended": scores["defended"],
        "stages": {name: scores[name] for name in stage_names},
        # the poison filter's other setting for uncontradicted planted-looking groups, for comparison
        variant_name: scores[variant_name],
        "clean": clean_acc,
        "s_per_answer": round(s_per_answer, 3),
        "answers_generated": len(answers),
        "defense_overhead": latency_summary(overhead),
    }


def print_result(result: dict) -> None:
    print(
        f"{result['n_targets']} targets, {result['n_clean_questions']} clean questions, k={result['k']} "
        f"from {result['candidates']} candidates ({result['mode']}); generator {result['generator']}"
    )
    rows = [("closed book", {**result["closed_book"], "asr": None})]
    rows += [("undefended (plain RAG)", result["undefended"])]
    rows += [(f"  {name} alone", m) for name, m in result["stages"].items()]
    rows += [("defended (all stages)", result["defended"])]
    rows += [(f"  {name}", m) for name, m in result.items() if name.startswith("defended_")]
    print(f"{'setting':26} {'asr':>6} {'accuracy':>9} {'adv in top-k':>13}")
    for name, m in rows:
        asr = "" if m.get("asr") is None else f"{m['asr']:.2f}"
        adv = f"{m['adv_in_topk']:.2f}" if "adv_in_topk" in m else ""
        print(f"{name:26} {asr:>6} {m['accuracy']:>9.2f} {adv:>13}")
    clean = ", ".join(f"{name} {m['accuracy']}" for name, m in result["clean"].items())
    print(f"clean accuracy: {clean}")
    o = result["defense_overhead"]
    print(
        f"{result['s_per_answer']} s per answer ({result['answers_generated']} generated); the stages add "
        f"p50 {o['p50_ms']} ms, p90 {o['p90_ms']} ms per query"
    )
