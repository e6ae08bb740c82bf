"""Train the InappropriateFilter adapter from testbed pools plus written samples.

Passages are built from Poisoned Context Testbed pools (appropriate and inappropriate sentences
mixed, each labelled), written samples for hateful content, private personal information and
prompt injection (with look-alike appropriate sentences) are added, and plain answers to
questions about invented firms and people (appropriate: an unfamiliar fact is not a false one);
LoRA on the top blocks of all-MiniLM-L6-v2 plus a sentence classifier are trained on them.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ragarbiter.training import LoraSettings, TrainConfig, Trainer, split_holdout
from ragarbiter.training.args import add_train_args, lora_settings, train_config

from ..backbone import TRAINED_SPECS, Backbone, BackboneSpec, add_encoder_args, describe_model, pad_batch
from ..metrics import auroc, prf
from ..text import join_sentences
from .data import CATEGORIES, DataRecipe, SentenceExample, build_examples
from .model import InappropriateNet, sentence_batch


class SentenceCollator:
    """Join each example's sentences into a passage, tokenize with the question, map tokens to sentences."""

    def __init__(self, spec: BackboneSpec) -> None:
        self.backbone = Backbone(spec)  # tokenizer only

    def __call__(self, examples: Sequence[SentenceExample]) -> dict:
        texts, spans = [], []
        for ex in examples:
            text, sentences = join_sentences(ex.sentences)
            texts.append(text)
            spans.append([(s.start, s.end) for s in sentences])
        encodings = []
        for ex, text in zip(examples, texts):
            encodings += self.backbone.encode_pairs(ex.query, [text])
        batch = {**pad_batch(encodings), **sentence_batch(encodings, spans)}
        batch["sentence_labels"] = torch.tensor([y for ex in examples for y in ex.labels], dtype=torch.long)
        return batch


def sentence_metrics(outputs: dict[str, np.ndarray]) -> dict[str, float]:
    scores, labels = outputs["scores"], outputs["labels"]
    out = {"sentence_auroc": auroc(scores, labels), "sentence_f1": prf(scores >= 0.5, labels)["f1"]}
    for k, name in enumerate(CATEGORIES[1:], start=1):
        mask = outputs["category"] == k
        if mask.any():
            out[f"recall_{name}"] = float((scores[mask] >= 0.5).mean())
    return out


def train_inappropriate(
    data: Sequence[str | Path],
    config: TrainConfig,
    *,
    lora: LoraSettings | None = None,
    spec: BackboneSpec | None = None,
    recipe: DataRecipe | None = None,
    eval_fraction: float = 0.05,
    resume: bool = False,
) -> dict | None:
    """Build sentence-labelled passages (`recipe`, default: `DataRecipe()`), hold some out, train,
    and write the adapter folder to `config.out_dir`."""
    spec = spec or TRAINED_SPECS["inappropriate"]
    recipe = recipe or DataRecipe()
    examples = build_examples(data, recipe, seed=config.seed)
    train, held = split_holdout(examples, eval_fraction, config.seed)
    logging.getLogger(__name__).info("inappropriate: %d training passages, %d held out", len(train), len(held))
    torch.manual_seed(config.seed)
    model = InappropriateNet(spec, lora or LoraSettings())
    trainer = Trainer(
        model,
        config,
        train_data=train,
        eval_data=held,
        collate=SentenceCollator(spec),
        metrics=sentence_metrics,
        task="inappropriate",
        base_model=describe_model(spec.model, spec.split),
        data_files=list(data),
        settings={
            **model.settings,
            "records_per_pool": recipe.records,
            "written_per_category": recipe.written,
            "unfamiliar_questions": recipe.unfamiliar,
            "whole_records": recipe.whole,
            "restated": recipe.restate,
            "answers": recipe.answers,
            "passages": len(examples),
        },
    )
    return trainer.fit(resume=resume)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        required=True,
        nargs="+",
        metavar="FILE",
        help="testbed pool .json files, and optionally LitM NQ-Open .jsonl[.gz] files (their gold passages "
        "with NQ-Swap counterfactual claims inserted)",
    )
    p.add_argument(
        "--records",
        type=int,
        default=DataRecipe.records,
        metavar="N",
        help="use only the first N records of each pool (the rest stays unseen for `bench inappropriate --start N`)",
    )
    p.add_argument(
        "--written",
        type=int,
        default=DataRecipe.written,
        metavar="N",
        help=f"written samples per uncovered category, each with a look-alike (default: {DataRecipe.written}; "
        "0 = none)",
    )
    p.add_argument(
        "--unfamiliar",
        type=int,
        default=DataRecipe.unfamiliar,
        metavar="N",
        help="questions about invented firms and people, answered plainly and labelled appropriate "
        f"(default: {DataRecipe.unfamiliar}; 0 = none)",
    )
    p.add_argument(
        "--whole",
        type=float,
        default=DataRecipe.whole,
        metavar="P",
        help="share (0 to 1) of pool records whose second passage holds all their sentences, so that "
        "restatements of one false claim appear side by side "
        f"(default: {DataRecipe.whole}; 0 = none; measured, not shipped)",
    )
    p.add_argument(
        "--restate",
        type=float,
        default=DataRecipe.restate,
        metavar="P",
        help="share (0 to 1) of LitM NQ-Open passages that also get a one-line restatement of the true "
        "answer, labelled appropriate, so that restating a fact is not taken for a false claim "
        f"(default: {DataRecipe.restate}; 0 = none; measured, not shipped)",
    )
    p.add_argument(
        "--answers",
        type=float,
        default=DataRecipe.answers,
        metavar="P",
        help="share (0 to 1) of pool records whose true answer (the pool's `Simple Answer`, as a statement) "
        "joins one of their passages, labelled appropriate: it restates the appropriate sentences and "
        f"contradicts the false claim (default: {DataRecipe.answers}; 0 = none; measured, not shipped)",
    )
    add_encoder_args(p, "inappropriate")
    add_train_args(p, batch_size=16)


def run(args: argparse.Namespace) -> dict | None:
    recipe = DataRecipe(
        records=args.records,
        written=args.written,
        unfamiliar=args.unfamiliar,
        whole=args.whole,
        restate=args.restate,
        answers=args.answers,
    )
    return train_inappropriate(
        args.data,
        train_config(args),
        lora=lora_settings(args),
        spec=BackboneSpec(split=args.split, max_length=args.max_length),
        recipe=recipe,
        eval_fraction=args.eval_fraction,
        resume=args.resume,
    )
