"""`train_care`: CARE's two training stages on the project's one trainer.

`pretrain` (stage 1) learns the assessor from scratch: LoRA, memory tokens and projector.
`finetune` (stage 2) starts from a stage-1 folder (`--init DIR`) and adds the conflict-aware
KL loss. Both write the same folder layout (`CareModel.save`) and the trainer's manifest.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from ragarbiter.errors import ConfigError

from .data import STAGES, CareExample, conflict_examples, litm_items, reconstruction_examples, testbed_items
from .model import CareConfig, CareModel

logger = logging.getLogger(__name__)


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
    lam: float = 2.0,
    limit: int | None = None,
    care: CareConfig | None = None,
    lora_r: int = 8,
    lora_alpha: int = 16,
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
