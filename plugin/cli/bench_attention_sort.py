"""`ragarbiter bench attention-sort --data SYNTHWIKI.csv --model DIR`: gold placement and cost of attention sorting."""

from __future__ import annotations

import argparse
import platform

from .common import add_json_arg, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "attention-sort",
        help="attention sorting on SynthWiki: where the gold paragraph ends up, and the cost",
        description="Each question's gold paragraph is placed at a random position among other paragraphs of the "
        "file, then ordered three ways in one run: the random arrival order, the lost-in-the-middle "
        "reorder (bundled encoder relevance) and attention sorting. Reports the share with the gold "
        "paragraph last and in the last 3, its mean rank from the end, the wall time per question, and "
        "the cost of one sorting iteration against one plain prefill and one eager-attention forward.",
    )
    p.add_argument("--data", required=True, metavar="FILE", help="SynthWiki CSV (context, question, answer)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", metavar="DIR", help="a Hugging Face causal LM folder (save_pretrained)")
    which.add_argument(
        "--random-llama",
        action="store_true",
        help="a Llama built from a config with random weights and a BPE tokenizer trained on the "
        "file (machinery and timing only: its attention knows nothing)",
    )
    p.add_argument("--docs", type=int, default=10, help="paragraphs per question, gold included (default: 10)")
    p.add_argument("--iterations", type=int, default=3, help="sorting iterations (default: 3)")
    p.add_argument("--questions", type=int, default=100, help="questions to sample (default: 100)")
    p.add_argument("--batch-size", type=int, default=8, help="prompts per forward pass (default: 8)")
    p.add_argument("--aggregate", choices=("sum", "mean"), default="sum", help="per-document score (default: sum)")
    p.add_argument(
        "--timing-questions",
        type=int,
        default=16,
        help="questions timed one at a time for the cost figures (0: skip; default: 16)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    p.add_argument("--seed", type=int, default=0)
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ragarbiter.assessors.attention_sort import AttentionSorter
    from ragarbiter.assessors.attention_sort.bench import random_llama, run_bench, synthwiki_cases
    from ragarbiter.assessors.backbone import shared_dense_encoder
    from ragarbiter.datasets import read_synthwiki
    from ragarbiter.lm import load_causal_lm
    from ragarbiter.models import default_device

    device = args.device or default_device()
    cases = synthwiki_cases(args.data, docs=args.docs, questions=args.questions, seed=args.seed)
    if args.model:
        model, tokenizer = load_causal_lm(args.model, device=device)
        model_name = args.model
    else:
        from ragarbiter.lm import bpe_tokenizer

        tokenizer = bpe_tokenizer(sorted({i.passages[0] for i in read_synthwiki(args.data)}), 4096)
        model = random_llama(tokenizer, seed=args.seed).to(device)
        model_name = "random Llama (4 layers, hidden 256, 8 heads / 2 kv heads)"
    sorter = AttentionSorter(
        model, tokenizer, iterations=args.iterations, aggregate=args.aggregate, batch_size=args.batch_size
    )
    result = run_bench(cases, sorter, shared_dense_encoder(), timing_questions=args.timing_questions)
    result.update(
        model=model_name,
        device=str(device),
        torch_threads=torch.get_num_threads(),
        machine=platform.machine(),
        data=args.data,
        seed=args.seed,
    )
    if args.json:
        print_json(result)
    else:
        for name in ("random", "lost_in_the_middle", "attention_sort"):
            print(f"{name:>20}: {result[name]}")
        if "cost" in result:
            print(f"{'cost':>20}: {result['cost']}")
    return 0
