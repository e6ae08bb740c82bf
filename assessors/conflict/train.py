"""Train the ConflictAssessor adapter from QA files (NQ-Swap recipe) and ConflictQA.

Minimal-edit conflicting pairs are built from LitM NQ-Open files (each gold passage's answer is
replaced by another question's answer of the same type) and ConflictQA pairs are added; LoRA on
the top blocks of all-MiniLM-L6-v2 plus a pair head are trained on them. Multi-process:
`accelerate launch -m ragarbiter.cli.main train conflict ...`.
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
from .data import NEUTRAL, RECIPE, UNKNOWN_STANCE, ConflictGroup, build_groups, mention, yes_no_question
from .model import ConflictNet

logger = logging.getLogger(__name__)


class GroupCollator:
    """Tokenize each group's (query, passage) pairs and list every labelled pair."""

    def __init__(self, spec: BackboneSpec) -> None:
        self.backbone = Backbone(spec)  # tokenizer only; the weights are never loaded here

    def __call__(self, groups: Sequence[ConflictGroup]) -> dict:
        encodings, pairs, labels, stated, relevant, stance, yes_no = [], [], [], [], [], [], []
        for g in groups:
            relevant += [c != NEUTRAL for c in g.clusters]
            stance += list(g.stances) if g.stances else [UNKNOWN_STANCE] * len(g.texts)
            yes_no += [yes_no_question(g.query)] * len(g.texts)
            base = len(encodings)
            encodings += self.backbone.encode_pairs(g.query, g.texts)
            stated += [(text, g.answers[k] if k < len(g.answers) else ()) for k, text in enumerate(g.texts)]
            for i, j, label in g.pairs():
                pairs.append((base + i, base + j))
                labels.append(label)
        batch = pad_batch(encodings)
        batch["answer_tokens"], batch["answer_known"] = answer_token_labels(
            encodings, stated, batch["input_ids"].shape[1]
        )
        batch["pairs"] = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)
        batch["labels"] = torch.tensor(labels, dtype=torch.long)
        batch["relevant"] = torch.tensor(relevant, dtype=torch.bool)
        batch["stance"] = torch.tensor(stance, dtype=torch.long)
        batch["yes_no"] = torch.tensor(yes_no, dtype=torch.bool)
        return batch


def answer_token_labels(encodings, stated, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, T) 1.0 on passage tokens inside a mention of the stated answer; (N,) whether it is known."""
    tokens = torch.zeros(len(encodings), width)
    known = torch.zeros(len(encodings), dtype=torch.bool)
    for r, (enc, (text, answers)) in enumerate(zip(encodings, stated)):
        spans = [m.span() for a in answers for m in mention(a).finditer(text)]
        if not spans:
            continue
        known[r] = True
        for t, ((a, b), inside) in enumerate(zip(enc.offsets, enc.in_passage)):
            if inside and b > a and any(s < b and a < e for s, e in spans):
                tokens[r, t] = 1.0
    return tokens, known


def pair_metrics(outputs: dict[str, np.ndarray]) -> dict[str, float]:
    """Pair AUROC and F1 at 0.5; with a stance head also the yes/no pairs' AUROC for the differ
    head alone, the stance alone and the blend (to choose `stance_weight` on held-out data)."""
    scores, labels = outputs["scores"], outputs["labels"]
    out = {"pair_auroc": auroc(scores, labels), "pair_f1": prf(scores >= 0.5, labels)["f1"]}
    yes_no = outputs.get("yes_no")
    if "scores_stance" in outputs and yes_no is not None and yes_no.any():
        yn = yes_no.astype(bool)
        out["yes_no_auroc"] = auroc(scores[yn], labels[yn])
        out["yes_no_auroc_differ"] = auroc(outputs["scores_differ"][yn], labels[yn])
        out["yes_no_auroc_stance"] = auroc(outputs["scores_stance"][yn], labels[yn])
    return out


def train_conflict(
    data: Sequence[str | Path],
    config: TrainConfig,
    *,
    lora: LoraSettings | None = None,
    spec: BackboneSpec | None = None,
    eval_fraction: float = 0.05,
    resume: bool = False,
    stance: bool = False,
    align: bool = True,
) -> dict | None:
    """Build the groups, hold some out, train, and write the adapter folder to `config.out_dir`.

    The manifest records the recipe (`RECIPE`) and the digests of every question the groups hold
    (`qa.question_digest`), so that benchmarks can score only questions the adapter never saw."""
    from ..qa import question_digest

    spec = spec or TRAINED_SPECS["conflict"]
    groups = build_groups(data, seed=config.seed)
    train, held = split_holdout(groups, eval_fraction, config.seed)
    logger.info("conflict: %d training groups, %d held out", len(train), len(held))
    torch.manual_seed(config.seed)
    model = ConflictNet(spec, lora or LoraSettings(), stance=stance, align=align)
    digests = sorted({question_digest(g.query) for g in groups})
    trainer = Trainer(
        model,
        config,
        train_data=train,
        eval_data=held,
        collate=GroupCollator(spec),
        metrics=pair_metrics,
        task="conflict",
        base_model=describe_model(spec.model, spec.split),
        data_files=list(data),
        settings={**model.settings, "groups": len(groups)},
        extra={
            "recipe": RECIPE,
            "questions": {"digest": "sha1-12 of qa.question_key", "count": len(digests), "values": digests},
        },
    )
    return trainer.fit(resume=resume)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        required=True,
        nargs="+",
        metavar="FILE",
        help="LitM NQ-Open .jsonl[.gz], SynthWiki .csv and/or ConflictQA .json(l) files",
    )
    p.add_argument(
        "--stance-head",
        action="store_true",
        help="add a yes/no stance head, trained where a ConflictQA record's answer statements give the "
        "stance and blended into the pair probability for yes/no questions. Measured with the previous "
        "(two-block) recipe it adds nothing on ConflictQA (gpt4 0.862 vs 0.867 on 400 items), so the shipped "
        "adapter does not use it",
    )
    p.add_argument(
        "--no-align",
        dest="align",
        action="store_false",
        help="compare passages by their answer codes alone, without the answer-token alignment of each pair",
    )
    add_encoder_args(p, "conflict")
    add_train_args(p, batch_size=4)


def run(args: argparse.Namespace) -> dict | None:
    return train_conflict(
        args.data,
        train_config(args),
        lora=lora_settings(args),
        spec=BackboneSpec(split=args.split, max_length=args.max_length),
        eval_fraction=args.eval_fraction,
        resume=args.resume,
        stance=args.stance_head,
        align=args.align,
    )
