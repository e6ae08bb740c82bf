"""`ragarbiter bench care --model DIR [--care DIR]`: CARE vs plain RAG vs closed book on the testbed."""

from __future__ import annotations

import argparse

from .common import add_json_arg, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "care",
        help="CARE against plain RAG and closed book on the testbed model: accuracy, resilience, boost",
        description="Clean sets (unknown entities, right context), counterfactual sets (known entities, misleading "
        "context) and unhelpful sets (known entities, no answer in the context), answered closed-book, "
        "with the passages in the prompt (RAG), and from CARE's soft prompt. Resilience: accuracy on "
        "counterfactual sets the model answers correctly closed-book. Boost: accuracy on clean sets it "
        "gets wrong closed-book.",
    )
    p.add_argument("--model", required=True, metavar="DIR", help="a testbed model (`ragarbiter testbed train`)")
    p.add_argument("--care", metavar="DIR", help="its CARE assessor (default: DIR/care)")
    p.add_argument("--questions", type=int, default=200, help="questions per condition (default: 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="DIR", help="write care.png here")
    add_json_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from ragarbiter.assessors.care import CareGenerator, CareModel
    from ragarbiter.assessors.care.evaluate import evaluate_care, plot_care
    from ragarbiter.testbed import load_testbed

    lm = load_testbed(args.model)
    folder = Path(args.care) if args.care else Path(args.model) / "care"
    generator = CareGenerator(CareModel.load(folder, lm.model, lm.tokenizer), max_new_tokens=10)
    started = time.perf_counter()
    result = evaluate_care(lm, generator, args.questions, args.seed)
    result.update(model=str(args.model), care=str(folder), seconds=round(time.perf_counter() - started, 1))
    if args.plot:
        result["plot"] = str(plot_care(result, args.plot))
    if args.json:
        print_json(result)
    else:
        for condition, row in result["accuracy"].items():
            print(f"{condition:>15}: {row}")
        print(f"{'resilience':>15}: {result['resilience']}\n{'boost':>15}: {result['boost']}")
    return 0
