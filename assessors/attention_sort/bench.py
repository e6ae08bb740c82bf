"""`ragarbiter bench attention-sort`: where the gold paragraph ends up, and what sorting costs.

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

import logging
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ragarbiter.errors import ConfigError, EmptyCorpusError
from ragarbiter.types import Context, Passage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SortCase:
    question: str
    passages: tuple[Passage, ...]
    gold_id: str

    def context(self) -> Context:
        return Context.for_query(self.question, self.passages)


def synthwiki_cases(path: str, *, docs: int = 10, questions: int | None = 100, seed: int = 0) -> list[SortCase]:
    """Each question's gold paragraph at a random position among `docs - 1` other paragraphs of the file."""
    from ragarbiter.datasets import read_synthwiki

    if docs < 2:
        raise ConfigError(f"docs={docs} must be >= 2 (the gold paragraph and at least one other).")
    items = read_synthwiki(path)
    paragraphs = sorted({i.passages[0] for i in items})
    if len(paragraphs) < docs:
        msg = f"{path} has {len(paragraphs)} distinct paragraphs, fewer than docs={docs}; pass a smaller --docs."
        raise EmptyCorpusError(msg)
    rng = random.Random(seed)
    if questions is not None and questions < len(items):
        items = rng.sample(items, questions)
    cases = []
    for item in items:
        gold = item.passages[0]
        others = rng.sample([p for p in paragraphs if p != gold], docs - 1)
        others.insert(rng.randrange(docs), gold)
        passages = tuple(Passage(text, id=f"p{k}") for k, text in enumerate(others))
        cases.append(SortCase(item.question, passages, passages[others.index(gold)].id))
    return cases


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


def random_llama(
    tokenizer,
    *,
    max_positions: int = 8192,
    hidden: int = 256,
    layers: int = 4,
    heads: int = 8,
    kv_heads: int = 2,
    seed: int = 0,
):
    """A Llama-architecture model built from a config with random weights (for machinery and timing)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 8 // 3,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config).eval()


def time_costs(sorter, cases: Sequence[SortCase], iterations: int, repeats: int = 1) -> dict:
    """Seconds per question: one sorting iteration, one plain prefill, one eager-attention forward.

    Everything runs one prompt at a time on the same prompts (the cases' arrival order), after
    a warm-up that also fills the prefix cache, so the ratios compare like with like.
    """
    import torch

    model, attention = sorter.attention.model, sorter.attention
    prompts = []
    for case in cases:
        text, spans = sorter.template.render(case.question, [p.text for p in case.passages])
        prompts.append(attention.encode(text, spans))
    device = model.device

    def prefill(prompt):
        model(input_ids=torch.tensor([prompt.ids], device=device), use_cache=True, logits_to_keep=1)

    def eager(prompt):
        model(input_ids=torch.tensor([prompt.ids], device=device), output_attentions=True, logits_to_keep=1)

    def sort_one(case):
        saved = sorter.batch_size
        sorter.batch_size = 1
        try:
            sorter(case.context())
        finally:
            sorter.batch_size = saved

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
        t_sort = clock(sort_one, list(cases)) / iterations
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


def run_bench(cases: Sequence[SortCase], sorter, encoder, *, timing_questions: int = 16, progress: bool = True) -> dict:
    """Gold placement for random / lost-in-the-middle / attention-sorted orders, and the cost figures."""
    from tqdm.auto import tqdm

    from .stage import LostInTheMiddleReorder

    if not cases:
        raise EmptyCorpusError("No questions to sort: the data file gave none. Check --data and --questions.")
    random_orders = [[p.id for p in c.passages] for c in cases]
    litm = LostInTheMiddleReorder()
    litm_orders = [[p.id for p in litm(ctx).passages] for ctx in relevance_scored(cases, encoder)]
    sorted_orders, started = [], time.perf_counter()
    step = max(1, sorter.batch_size * 4)
    for i in tqdm(range(0, len(cases), step), desc="attention sort", unit="batch", disable=not progress):
        contexts = [c.context() for c in cases[i : i + step]]
        sorted_orders += [[p.id for p in out.passages] for out in sorter.sort_many(contexts)]
    wall = time.perf_counter() - started
    result = {
        "questions": len(cases),
        "docs": len(cases[0].passages),
        "iterations": sorter.iterations,
        "random": gold_figures(cases, random_orders),
        "lost_in_the_middle": gold_figures(cases, litm_orders),
        "attention_sort": {
            **gold_figures(cases, sorted_orders),
            "seconds_per_question": round(wall / len(cases), 4),
            "batch_size": sorter.batch_size,
        },
    }
    if timing_questions:
        result["cost"] = time_costs(sorter, cases[:timing_questions], sorter.iterations)
    return result
