"""Attention sorting on SynthWiki: answer accuracy by gold position at long context, and what sorting costs.

With `--generator` (or neither `--model` nor `--random-llama`): the paper's protocol
(`ragarbiter.assessors.attention_sort.accuracy`). SynthWiki distractors fill the context to each
`--context-tokens` length, the gold paragraph goes at `--positions` evenly spaced depths, and the
generator answers with no sorting and after each `--iterations` count of sorting by `--sorter`
(default: the generator itself). Accuracy (the answer string in the output) by depth, its mean and
worst, where the gold paragraph landed, and one sorting iteration's cost against a plain prefill.

With `--model DIR` or `--random-llama`, the gold-placement check below runs instead.

For each SynthWiki question the gold paragraph is placed at a random position among other
paragraphs of the same file. Three orders are compared in one run: the random arrival order,
`LostInTheMiddleReorder` (relevance from the bundled encoder's cosine), and `AttentionSorter`.
Figures: the share of questions whose gold paragraph ends last and in the last three, its
mean rank counted from the end (1 = next to the question), and the wall time per question.

Cost: one sorting iteration (capture through the AttentionInterface, tokenization and re-sort included)
against one plain prefill of the same prompt (the causal LM forward that starts generation),
and against the eager ``output_attentions`` forward that attention sorting otherwise needs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

from ragarbiter.errors import ConfigError, EmptyCorpusError
from ragarbiter.types import Context, Passage

from .config import AGGREGATES, AttentionSortConfig
from .data import DOCS, QUESTIONS, SortCase

TIMING_QUESTIONS = 16  # questions timed one at a time for the cost figures
ITERATIONS = (0, 1, 3)  # accuracy protocol: unsorted, one iteration, the paper's few
CONTEXT_TOKENS = (2000, 4000, 7500)  # SmolLM2's window is 8,192 tokens
POSITIONS = 5
LIMIT = 20
MAX_NEW_TOKENS = 24
# Contexts handed to `sort_many` at once: a few forward batches' worth, so the progress bar moves
# while each call still fills whole batches.
BATCHES_PER_STEP = 4
# BPE vocabulary trained on the file for the random Llama: seconds to train on one SynthWiki file,
# and enough merges that the common words are single tokens.
RANDOM_VOCAB = 4096


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="FILE", help="SynthWiki CSV (context, question, answer)")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--generator",
        metavar="NAME_OR_DIR",
        help="the LM that answers (default: the default generator): accuracy by gold position",
    )
    which.add_argument(
        "--model", metavar="DIR", help="gold placement only: a Hugging Face causal LM folder (save_pretrained)"
    )
    which.add_argument(
        "--random-llama",
        action="store_true",
        help="a Llama built from a config with random weights and a BPE tokenizer trained on the "
        "file (machinery and timing only: its attention knows nothing)",
    )
    p.add_argument("--docs", type=int, default=DOCS, help=f"paragraphs per question, gold included (default: {DOCS})")
    cfg = AttentionSortConfig
    p.add_argument(
        "--iterations",
        type=int,
        nargs="+",
        default=None,
        help=f"sorting iterations to compare (default: {' '.join(map(str, ITERATIONS))}; gold placement: "
        f"{cfg.iterations}, the largest given)",
    )
    p.add_argument("--sorter", metavar="NAME_OR_DIR", help="the LM that sorts (default: the generator)")
    p.add_argument(
        "--context-tokens",
        type=int,
        nargs="+",
        default=list(CONTEXT_TOKENS),
        help=f"context lengths in the generator's tokens (default: {' '.join(map(str, CONTEXT_TOKENS))})",
    )
    p.add_argument(
        "--positions", type=int, default=POSITIONS, help=f"gold depths, first to last (default: {POSITIONS})"
    )
    p.add_argument("--limit", type=int, default=LIMIT, help=f"questions per length (default: {LIMIT})")
    p.add_argument(
        "--max-new-tokens", type=int, default=MAX_NEW_TOKENS, help=f"answer length (default: {MAX_NEW_TOKENS})"
    )
    p.add_argument("--questions", type=int, default=QUESTIONS, help=f"questions to sample (default: {QUESTIONS})")
    p.add_argument(
        "--batch-size", type=int, default=cfg.batch_size, help=f"prompts per forward pass (default: {cfg.batch_size})"
    )
    p.add_argument(
        "--aggregate", choices=AGGREGATES, default=cfg.aggregate, help=f"per-document score (default: {cfg.aggregate})"
    )
    p.add_argument(
        "--timing-questions",
        type=int,
        default=TIMING_QUESTIONS,
        help=f"questions timed one at a time for the cost figures (0: skip; default: {TIMING_QUESTIONS})",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    p.add_argument("--seed", type=int, default=0)


def gold_figures(cases: Sequence[SortCase], orders: Sequence[Sequence[str]]) -> dict:
    """Share of gold last / in the last 3, and its mean rank from the end (1 = last)."""
    ranks = [len(order) - list(order).index(case.gold_id) for case, order in zip(cases, orders)]
    n = max(1, len(ranks))
    return {
        "gold_last": round(sum(r == 1 for r in ranks) / n, 4),
        "gold_last3": round(sum(r <= 3 for r in ranks) / n, 4),
        "mean_rank_from_end": round(statistics.fmean(ranks), 3) if ranks else None,
    }


def relevance_scored(cases: Sequence[SortCase], encoder) -> list[Context]:
    """Each case with the encoder's query-passage cosine as the passages' scores."""
    out = []
    for case in cases:
        vectors = encoder.encode([case.question, *(p.text for p in case.passages)])
        scores = vectors[1:] @ vectors[0]
        out.append(Context.for_query(case.question, [p.evolve(score=float(s)) for p, s in zip(case.passages, scores)]))
    return out


def time_costs(sorter, cases: Sequence[SortCase], iterations: int, repeats: int = 1) -> dict:
    """Seconds per question: one sorting iteration, one plain prefill, one eager-attention forward.

    Everything runs one prompt at a time on the same prompts (the cases' arrival order), after
    a warm-up that also fills the prefix cache, so the ratios compare like with like.
    """
    import torch

    model, attention = sorter.attention.model, sorter.attention
    prompts = []
    for case in cases:
        text, spans = sorter.config.template.render(case.question, [p.text for p in case.passages])
        prompts.append(attention.encode(text, spans))
    device = model.device

    def prefill(prompt):
        model(input_ids=torch.tensor([prompt.ids], device=device), use_cache=True, logits_to_keep=1)

    def eager(prompt):
        model(input_ids=torch.tensor([prompt.ids], device=device), output_attentions=True, logits_to_keep=1)

    def clock(fn, args) -> float:
        fn(args[0])  # warm-up (and the prefix cache)
        _sync(device)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for a in args:
                fn(a)
            _sync(device)
            best = min(best, time.perf_counter() - start)
        return best / len(args)

    with torch.inference_mode():
        t_prefill = clock(prefill, prompts)
        t_sort = clock(lambda case: sorter(case.context()), list(cases)) / iterations
        base = model.config._attn_implementation
        model.set_attn_implementation("eager")
        try:
            t_eager = clock(eager, prompts)
        finally:
            model.set_attn_implementation(base)
    tokens = statistics.fmean(len(p.ids) for p in prompts)
    return {
        "questions": len(prompts),
        "mean_prompt_tokens": round(tokens, 1),
        "prefill_s": round(t_prefill, 5),
        "sort_iteration_s": round(t_sort, 5),
        "eager_forward_s": round(t_eager, 5),
        "iteration_over_prefill": round(t_sort / t_prefill, 3),
        "eager_over_prefill": round(t_eager / t_prefill, 3),
    }


def _sync(device) -> None:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        torch.cuda.synchronize()


def run_bench(
    cases: Sequence[SortCase], sorter, encoder, *, timing_questions: int = TIMING_QUESTIONS, progress: bool = True
) -> dict:
    """Gold placement for random / lost-in-the-middle / attention-sorted orders, and the cost figures."""
    from tqdm.auto import tqdm

    from .stage import LostInTheMiddleReorder

    if not cases:
        raise EmptyCorpusError("No questions to sort: the data file gave none. Check --data and --questions.")
    random_orders = [[p.id for p in c.passages] for c in cases]
    litm = LostInTheMiddleReorder()
    litm_orders = [[p.id for p in litm(ctx).passages] for ctx in relevance_scored(cases, encoder)]
    sorted_orders, started = [], time.perf_counter()
    step = max(1, sorter.config.batch_size * BATCHES_PER_STEP)
    for i in tqdm(range(0, len(cases), step), desc="attention sort", unit="batch", disable=not progress):
        contexts = [c.context() for c in cases[i : i + step]]
        sorted_orders += [[p.id for p in out.passages] for out in sorter.sort_many(contexts)]
    wall = time.perf_counter() - started
    result = {
        "questions": len(cases),
        "docs": len(cases[0].passages),
        "iterations": sorter.config.iterations,
        "random": gold_figures(cases, random_orders),
        "lost_in_the_middle": gold_figures(cases, litm_orders),
        "attention_sort": {
            **gold_figures(cases, sorted_orders),
            "seconds_per_question": round(wall / len(cases), 4),
            "batch_size": sorter.config.batch_size,
        },
    }
    if timing_questions:
        result["cost"] = time_costs(sorter, cases[:timing_questions], sorter.config.iterations)
    return result


def run(args: argparse.Namespace) -> dict:
    if args.model or args.random_llama:
        return run_placement(args)
    return run_accuracy(args)


def run_accuracy(args: argparse.Namespace) -> dict:
    """The paper's protocol: accuracy by gold depth per context length and iteration count."""
    import platform

    import torch

    from ragarbiter.datasets import read_synthwiki
    from ragarbiter.lm import load_generator

    from .accuracy import chat_template, fractions, position_cases, recovery, run_length
    from .data import SortCase
    from .stage import AttentionSorter

    iterations = sorted(set(args.iterations or ITERATIONS))
    if iterations[0] < 0 or 0 not in iterations:
        raise ConfigError(f"--iterations must include 0 (the unsorted baseline) and be >= 0, got {args.iterations}.")
    depths = fractions(args.positions)
    generator = load_generator(args.generator, device=args.device)
    same = args.sorter is None or args.sorter == args.generator
    ranker = generator if same else load_generator(args.sorter, device=args.device)
    sorter = AttentionSorter(
        model=ranker.model,
        tokenizer=ranker.tokenizer,
        template=chat_template(ranker.tokenizer),
        iterations=1,
        aggregate=args.aggregate,
        batch_size=args.batch_size,
    )
    template = chat_template(generator.tokenizer)
    items = read_synthwiki(args.data)

    def count(text: str) -> int:
        return len(generator.tokenizer(text, add_special_tokens=False)["input_ids"])

    by_length, cost = {}, None
    for tokens in args.context_tokens:
        cases = position_cases(items, count, tokens, limit=args.limit, seed=args.seed)
        table = run_length(
            cases,
            depths,
            iterations,
            generator=generator,
            sorter=sorter,
            template=template,
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
            progress=not args.json,
        )
        for k in iterations[1:]:
            table[str(k)]["recovers"] = recovery(table, str(k))
            table[str(k)]["mean_change"] = round(table[str(k)]["mean"] - table["0"]["mean"], 4)
        prompt = template.render(cases[0].question, cases[0].docs(0))[0]
        table["prompt_tokens"] = len(generator.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        by_length[str(tokens)] = table
        if args.timing_questions and cost is None:
            timed = []
            for case in cases[: args.timing_questions]:
                docs = case.docs(case.depth(0.5))
                passages = tuple(Passage(text, id=f"d{i}") for i, text in enumerate(docs))
                timed.append(SortCase(case.question, passages, f"d{case.depth(0.5)}"))
            cost = {"context_tokens": tokens, **time_costs(sorter, timed, 1)}
    return {
        "generator": str(generator.path),
        "sorter": str(ranker.path),
        "same_model": same,
        "data": args.data,
        "positions": [f"{d:.2f}" for d in depths],
        "iterations": iterations,
        "limit": args.limit,
        "seed": args.seed,
        "by_length": by_length,
        "cost_per_iteration_vs_prefill": cost["iteration_over_prefill"] if cost else None,
        "cost": cost,
        "device": str(generator.model.device),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }


def run_placement(args: argparse.Namespace) -> dict:
    import platform

    import torch

    from ragarbiter.assessors.backbone import shared_dense_encoder
    from ragarbiter.lm import bpe_tokenizer, load_causal_lm
    from ragarbiter.models import default_device

    from .data import synthwiki_cases, synthwiki_paragraphs
    from .model import describe_random_llama, random_llama
    from .stage import AttentionSorter

    device = args.device or default_device()
    cases = synthwiki_cases(args.data, docs=args.docs, questions=args.questions, seed=args.seed)
    if args.model:
        model, tokenizer = load_causal_lm(args.model, device=device)
        model_name = args.model
    else:
        tokenizer = bpe_tokenizer(synthwiki_paragraphs(args.data), RANDOM_VOCAB)
        model = random_llama(tokenizer, seed=args.seed).to(device)
        model_name = describe_random_llama(model)
    sorter = AttentionSorter(
        model=model,
        tokenizer=tokenizer,
        iterations=max(args.iterations) if args.iterations else AttentionSortConfig.iterations,
        aggregate=args.aggregate,
        batch_size=args.batch_size,
    )
    result = run_bench(
        cases, sorter, shared_dense_encoder(), timing_questions=args.timing_questions, progress=not args.json
    )
    result.update(
        model=model_name,
        device=str(device),
        torch_threads=torch.get_num_threads(),
        machine=platform.machine(),
        data=args.data,
        seed=args.seed,
    )
    return result


def plot(result: dict, folder: str) -> list:
    """attention_sort_positions.png: accuracy against gold depth, one line per k, one panel per length."""
    from pathlib import Path

    from ragarbiter.errors import require

    if "by_length" not in result:
        return []
    matplotlib = require("matplotlib", "all", "attention-sort plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = list(result["by_length"])
    fig, axes = plt.subplots(1, len(lengths), figsize=(4.2 * len(lengths), 3.6), dpi=120, squeeze=False)
    for ax, tokens in zip(axes[0], lengths):
        for k in result["iterations"]:
            row = result["by_length"][tokens][str(k)]["accuracy_by_position"]
            ax.plot([float(d) for d in row], list(row.values()), marker="o", label=f"k={k}")
        ax.set_title(f"{tokens} tokens")
        ax.set_xlabel("gold depth (0 first, 1 last)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("answer accuracy")
    axes[0][-1].legend()
    same = "sorts and answers" if result.get("same_model") else f"answers; sorter {Path(result['sorter']).name}"
    fig.suptitle(f"{Path(result['generator']).name} {same}", fontsize=10)
    fig.tight_layout()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "attention_sort_positions.png"
    fig.savefig(path)
    plt.close(fig)
    return [path]


def print_result(result: dict) -> None:
    if "by_length" in result:
        print(f"generator {result['generator']}, sorter {result['sorter']}; accuracy by gold depth (0 first, 1 last)")
        for tokens, table in result["by_length"].items():
            for k in result["iterations"]:
                row = table[str(k)]
                cells = " ".join(f"{v:.2f}" for v in row["accuracy_by_position"].values())
                extra = f" recovers {row['recovers']}" if row.get("recovers") is not None else ""
                print(f"{tokens:>6} tokens k={k}: {cells}  mean {row['mean']:.3f} worst {row['worst']:.3f}{extra}")
        print(f"cost per iteration / prefill: {result['cost_per_iteration_vs_prefill']}")
        return
    for name in ("random", "lost_in_the_middle", "attention_sort"):
        print(f"{name:>20}: {result[name]}")
    if "cost" in result:
        print(f"{'cost':>20}: {result['cost']}")
