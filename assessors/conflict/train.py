"""`train_conflict`: NQ-Swap groups (+ ConflictQA) -> LoRA adapter + pair head + manifest."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ragarbiter.training import LoraSettings, TrainConfig, Trainer
from ragarbiter.training.cli import split_holdout

from ..backbone import Backbone, BackboneSpec, describe_model, pad_batch
from ..metrics import auroc, prf
from .data import ConflictGroup, build_groups
from .model import ConflictNet

logger = logging.getLogger(__name__)


class GroupCollator:
    """Tokenize each group's (query, passage) pairs and list every labelled pair."""

    def __init__(self, spec: BackboneSpec) -> None:
        self.backbone = Backbone(spec)  # tokenizer only; the weights are never loaded here

    def __call__(self, groups: Sequence[ConflictGroup]) -> dict:
        encodings, pairs, labels = [], [], []
        for g in groups:
            base = len(encodings)
            encodings += self.backbone.encode_pairs(g.query, g.texts)
            for i, j, label in g.pairs():
                pairs.append((base + i, base + j))
                labels.append(label)
        batch = pad_batch(encodings)
        batch["pairs"] = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)
        batch["labels"] = torch.tensor(labels, dtype=torch.long)
        return batch


def pair_metrics(outputs: dict[str, np.ndarray]) -> dict[str, float]:
    scores, labels = outputs["scores"], outputs["labels"]
    return {"pair_auroc": auroc(scores, labels), "pair_f1": prf(scores >= 0.5, labels)["f1"]}


def train_conflict(data: Sequence[str | Path], config: TrainConfig, *, lora: LoraSettings | None = None,
                   spec: BackboneSpec | None = None, eval_fraction: float = 0.05, resume: bool = False) -> dict | None:
    """Build the groups, hold some out, train, and write the adapter folder to `config.out_dir`."""
    spec = spec or BackboneSpec()
    groups = build_groups(data, seed=config.seed)
    train, held = split_holdout(groups, eval_fraction, config.seed)
    logger.info("conflict: %d training groups, %d held out", len(train), len(held))
    torch.manual_seed(config.seed)
    model = ConflictNet(spec, lora or LoraSettings())
    trainer = Trainer(model, config, train_data=train, eval_data=held, collate=GroupCollator(spec),
                      metrics=pair_metrics, task="conflict",
                      base_model=describe_model(spec.model, spec.split),
                      data_files=list(data), settings={**model.settings, "groups": len(groups)})
    return trainer.fit(resume=resume)
