"""Time one attention-sorting iteration at long contexts, against a plain prefill and eager attention.

A Llama-architecture model is built from a config with random weights (timing does not
depend on the weights). For each context length, 20 documents of equal length fill the
prompt. Three forward passes over the same prompt are timed:

- prefill: the causal LM forward that starts generation (SDPA, ``logits_to_keep=1``);
- sort iteration: `AttentionSorter` with one iteration, capture through the
  AttentionInterface with `segment_attention_mass` (includes tokenization and the re-sort);
- eager: the approach without capture: ``attn_implementation="eager"`` with
  ``output_attentions=True`` (an out-of-memory error is reported as such).

Usage (GPU; the reference setting is one H200, bf16):

    python benchmarks/attention_sort_speed.py --device cuda --contexts 4096 16384 32768

On CPU use small settings, e.g. ``--device cpu --contexts 1024 2048 --layers 2 --hidden 256``.
Prints one JSON object per context length and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from ragarbiter.assessors.attention_sort import AttentionSorter
from ragarbiter.lm import bpe_tokenizer
from ragarbiter.types import Context, Passage

WORDS = (
    "amber basalt cedar delta ember fjord garnet harbor indigo juniper kestrel lantern meadow "
    "nectar orchard pebble quartz raven saffron tundra umber violet willow xenon yarrow zephyr"
).split()


def documents(tokenizer, total_tokens: int, n_docs: int = 20) -> list[str]:
    """`n_docs` texts of `total_tokens / n_docs` tokens each (cut from a long word stream)."""
    per_doc = max(8, total_tokens // n_docs)
    docs = []
    for i in range(n_docs):
        stream = " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(per_doc * 2))
        docs.append(tokenizer.decode(tokenizer(stream)["input_ids"][:per_doc]).strip())
    return docs


def timed(fn, device, repeats: int) -> float:
    fn()  # warm-up
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def sync(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--contexts", type=int, nargs="+", default=[4096, 16384, 32768])
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument(
        "--dtype", choices=("bfloat16", "float32"), default=None, help="default: bfloat16 on CUDA, float32 on CPU"
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from transformers import LlamaConfig, LlamaForCausalLM

    dtype = getattr(torch, args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32"))
    tokenizer = bpe_tokenizer([" ".join(WORDS)] * 4, 300)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden,
        intermediate_size=args.hidden * 8 // 3,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=max(args.contexts) + 512,
    )
    model = LlamaForCausalLM(config).to(device=args.device, dtype=dtype).eval()
    sorter = AttentionSorter(model=model, tokenizer=tokenizer, iterations=1, batch_size=1)
    rows = []
    for n in args.contexts:
        docs = documents(tokenizer, n)
        context = Context.for_query("Which document mentions the kestrel?", [Passage(d) for d in docs])
        prompt, spans = sorter.config.template.render(context.query, docs)
        ids = torch.tensor([sorter.attention.encode(prompt, spans).ids], device=args.device)
        row = {
            "context_tokens": ids.shape[1],
            "device": args.device,
            "dtype": str(dtype).removeprefix("torch."),
            "layers": args.layers,
            "hidden": args.hidden,
            "heads": args.heads,
            "kv_heads": args.kv_heads,
        }
        with torch.inference_mode():
            row["prefill_s"] = timed(
                lambda: model(input_ids=ids, use_cache=True, logits_to_keep=1), args.device, args.repeats
            )
            row["sort_iteration_s"] = timed(lambda: sorter(context), args.device, args.repeats)
            model.set_attn_implementation("eager")
            try:
                row["eager_s"] = timed(
                    lambda: model(input_ids=ids, output_attentions=True, logits_to_keep=1), args.device, args.repeats
                )
            except torch.OutOfMemoryError:
                row["eager_s"] = "out of memory"
            finally:
                model.set_attn_implementation("sdpa")
                if args.device.startswith("cuda"):
                    torch.cuda.empty_cache()
        row["iteration_over_prefill"] = round(row["sort_iteration_s"] / row["prefill_s"], 3)
        if isinstance(row["eager_s"], float):
            row["eager_over_iteration"] = round(row["eager_s"] / row["sort_iteration_s"], 2)
        row["machine"] = (
            torch.cuda.get_device_name()
            if args.device.startswith("cuda")
            else platform.processor() or platform.machine()
        )
        print(json.dumps(row), flush=True)
        rows.append(row)
    print("\n| context tokens | prefill (s) | sort iteration (s) | iteration / prefill | eager (s) |")
    print("|---|---|---|---|---|")
    for r in rows:
        eager = r["eager_s"] if isinstance(r["eager_s"], str) else f"{r['eager_s']:.4f}"
        print(
            f"| {r['context_tokens']} | {r['prefill_s']:.4f} | {r['sort_iteration_s']:.4f} | "
            f"{r['iteration_over_prefill']:.3f} | {eager} |"
        )
    print(f"\nmean iteration / prefill: {statistics.fmean(r['iteration_over_prefill'] for r in rows):.3f}")


if __name__ == "__main__":
    main()
