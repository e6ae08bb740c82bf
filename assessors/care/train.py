"""CARE's context assessor, in two stages on the project's one trainer.

Stage 1 (`--stage pretrain`) learns the assessor from scratch (LoRA, memory tokens and projector)
so the base LM can regenerate a passage from its soft prompt. Stage 2 (`--stage finetune`, with
`--init` from stage 1) labels each question closed-book with the base LM: unknown answers get a
positive passage and the raw-passage teacher (grounded), known ones a hard negative and the
no-context teacher (adversarial); the loss is LM + lambda * KL(student || teacher). Both write
the same folder layout (`CareModel.save`) and the trainer's manifest.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from torch import nn

from ragarbiter.errors import ConfigError

from .config import CareConfig
from .data import STAGES, CareExample, conflict_examples, litm_items, reconstruction_examples, testbed_items
from .model import CareModel

logger = logging.getLogger(__name__)

KL_WEIGHT = 2.0  # lambda: the weight of the KL term in stage 2


class CareTrainModule(nn.Module):
    """What the trainer trains: the CARE assessor; the loss per example follows its kind."""

    def __init__(self, care: CareModel, base_name: str, stage: str, lam: float) -> None:
        super().__init__()
        self.care, self.base_name, self.stage, self.lam = care, base_name, stage, lam

    def forward(self, batch: dict) -> dict:
        losses = []
        for ex in batch["examples"]:
            if ex.kind == "reconstruct":
                losses.append(self.care.reconstruction_loss(ex.passage, ex.instruction))
            else:
                losses.append(
                    self.care.conflict_loss(ex.question, ex.passage, ex.answer, ex.teacher_passage, self.lam)[0]
                )
        stacked = torch.stack(losses)
        return {"loss": stacked.mean(), "example_loss": stacked.detach()}

    def save_adapter(self, folder) -> list[str]:
        self.care.save(folder, self.base_name, {"stage": self.stage, "lambda": self.lam})
        return sorted(p.name for p in Path(folder).iterdir() if p.is_file() and p.name != "manifest.json")


def _collate(examples: list[CareExample]) -> dict:
    return {"examples": examples}


def closed_book_labeller(care: CareModel, max_new_tokens: int = 16):
    """`knows([(question, answer)]) -> [bool]`: does the base LM (adapter off, no context) answer correctly?"""

    def norm(text: str) -> str:
        return " ".join(text.casefold().strip().strip(".").split())

    def knows(questions_and_answers):
        """Each entry is (question, answer or list of aliases): right if the output holds any alias."""
        out = []
        for question, answers in questions_and_answers:
            aliases = [answers] if isinstance(answers, str) else list(answers)
            said = norm(care.answer(question, None, max_new_tokens))
            out.append(any(norm(a) and norm(a) in said for a in aliases))
        return out

    return knows


def build_examples(
    care: CareModel, stage: str, data: list[str], *, testbed_world=None, limit: int | None = None, seed: int = 0
) -> list[CareExample]:
    """Stage 1: passages to reconstruct; stage 2: grounded and adversarial examples, labelled closed-book."""
    if stage not in STAGES:
        raise ConfigError(f"stage={stage!r} must be one of {STAGES}.")
    items = []
    for path in data:
        items += litm_items(path, limit)
    if testbed_world is not None:
        items += testbed_items(testbed_world, seed, limit)
    if stage == "pretrain":
        passages = sorted({p for _, _, positives, negatives in items for p in [*positives, *negatives]})
        return reconstruction_examples(passages[:limit] if limit else passages, seed)
    return conflict_examples(items, closed_book_labeller(care), seed)


def train_care(
    base_model: str,
    stage: str,
    data: list[str],
    config,
    *,
    init: str | None = None,
    testbed: bool = False,
    lam: float = KL_WEIGHT,
    limit: int | None = None,
    care: CareConfig | None = None,
    lora_r: int = CareConfig.lora_r,
    lora_alpha: int = CareConfig.lora_alpha,
    eval_fraction: float = 0.05,
    resume: bool = False,
) -> dict | None:
    """Train one CARE stage on `base_model` (a local folder) with the project's Trainer (`config`)."""
    from ragarbiter.lm import load_causal_lm
    from ragarbiter.training import Trainer, split_holdout

    model, tokenizer = load_causal_lm(base_model)
    world = None
    if testbed:
        from ragarbiter.synthetic import load_world

        world = load_world(base_model)
    if not data and world is None:
        raise ConfigError(
            "train care needs --data FILE (LitM NQ-Open) or --testbed (with a testbed model as --base-model)."
        )
    if init:
        assessor = CareModel.load(init, model, tokenizer)
    else:
        if stage == "finetune":
            logger.warning("train care --stage finetune without --init: the assessor starts untrained (no stage 1)")
        layout = {"context_prefix": "Documents:\n[1] "} if testbed else {}
        assessor = CareModel(model, tokenizer, care or CareConfig(lora_r=lora_r, lora_alpha=lora_alpha, **layout))
    examples = build_examples(assessor, stage, data, testbed_world=world, limit=limit, seed=config.seed)
    train, held = split_holdout(examples, eval_fraction, config.seed)
    if not train:
        raise ConfigError(
            f"train care built {len(examples)} example(s) from {data or 'the testbed'}; add data or --limit."
        )
    counts = {k: sum(e.kind == k for e in examples) for k in ("reconstruct", "grounded", "adversarial")}
    logger.info("care %s: %d examples %s", stage, len(examples), counts)
    name = Path(base_model).name
    trainer = Trainer(
        CareTrainModule(assessor, name, stage, lam),
        config,
        train_data=train,
        eval_data=held,
        collate=_collate,
        task=f"care-{stage}",
        base_model={"name": name, "fingerprint": care_fingerprint(assessor)},
        data_files=data,
        settings={"stage": stage, "lambda": lam, "care": assessor.config.to_dict(), "examples": counts, "init": init},
    )
    return trainer.fit(resume=resume)


def care_fingerprint(care: CareModel) -> str:
    from .model import base_fingerprint

    return base_fingerprint(care.lm.get_base_model())


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ragarbiter.training.args import add_train_args

    p.add_argument("--base-model", required=True, metavar="PATH", help="a local causal LM folder (save_pretrained)")
    p.add_argument("--stage", required=True, choices=STAGES)
    p.add_argument("--data", nargs="*", default=[], metavar="FILE", help="LitM NQ-Open .jsonl[.gz] files")
    p.add_argument(
        "--testbed",
        action="store_true",
        help="also build examples from the testbed world of --base-model (a model from `ragarbiter testbed train`)",
    )
    p.add_argument("--init", metavar="DIR", help="start from this CARE folder (stage 1 output for stage 2)")
    p.add_argument(
        "--lambda", dest="lam", type=float, default=KL_WEIGHT, help=f"weight of the KL term (default: {KL_WEIGHT})"
    )
    p.add_argument("--limit", type=int, default=None, metavar="N", help="questions per data source")
    add_train_args(p, batch_size=4, lr=1e-3)


def run(args: argparse.Namespace) -> dict | None:
    from ragarbiter.training.args import train_config

    return train_care(
        args.base_model,
        args.stage,
        args.data,
        train_config(args),
        init=args.init,
        testbed=args.testbed,
        lam=args.lam,
        limit=args.limit,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        eval_fraction=args.eval_fraction,
        resume=args.resume,
    )
