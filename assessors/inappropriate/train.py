"""`train_inappropriate`: testbed pools + written samples -> LoRA adapter + sentence head + manifest."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ragarbiter.training import LoraSettings, TrainConfig, Trainer, split_holdout

from ..backbone import TRAINED_SPECS, Backbone, BackboneSpec, describe_model, pad_batch
from ..metrics import auroc, prf
from ..text import join_sentences
from .data import CATEGORIES, SentenceExample, build_examples
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
    records: int | None = None,
    written: int = 600,
    unfamiliar: int = 200,
    whole: float = 0.0,
    restate: float = 0.0,
    answers: float = 0.0,
    eval_fraction: float = 0.05,
    resume: bool = False,
) -> dict | None:
    """Build sentence-labelled passages, hold some out, train, and write the adapter folder."""
    spec = spec or TRAINED_SPECS["inappropriate"]
    examples = build_examples(
        data,
        records=records,
        written=written,
        unfamiliar=unfamiliar,
        whole=whole,
        restate=restate,
        answers=answers,
        seed=config.seed,
    )
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
            "records_per_pool": records,
            "written_per_category": written,
            "unfamiliar_questions": unfamiliar,
            "whole_records": whole,
            "restated": restate,
            "answers": answers,
            "passages": len(examples),
        },
    )
    return trainer.fit(resume=resume)
