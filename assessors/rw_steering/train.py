"""RW-Steering's two-stage LoRA fine-tuning on the testbed model, and the answer-only baseline.

- Stage 1 (`--stage 1`): mixtures at every proportion (0–95%); the target first lists the
  reliable sentence numbers, then answers from them (`targets.stage1_target`).
- Stage 2 (`--stage 2`, from a stage-1 adapter with `--init`): mostly mixtures with only one or
  two inappropriate sentences (5–10%), where plain fine-tuning fails, plus 30% stage-1 replay.
- `--target answer`: the fine-tuned baseline, trained on the answers alone.

Training questions are about unknown entities (the context is the only source), and one
question in five is held out for evaluation (`care.data.held_out`, shared by every testbed
method).
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

from ragarbiter.errors import ConfigError

from .mixture import Mixture, from_context_set
from .targets import answer_only_target, stage1_target

logger = logging.getLogger(__name__)

STAGE1_PROPORTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95)
STAGE2_PROPORTIONS = (0.05, 0.1)
TARGETS = ("rw", "answer")
LORA_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def rw_prompt(question: str, sentences, sources=None) -> str:
    """The testbed prompt with its final ``Answer:`` left for the target to write."""
    from ragarbiter.testbed.conditions import render_prompt

    return render_prompt(question, list(sentences), list(sources) if sources else None).removesuffix("Answer:")


def rw_mixtures(world, stage: int, *, n: int = 10, limit: int | None = None, seed: int = 0,
                held_out_only: bool = False) -> list[Mixture]:
    from ragarbiter.testbed.conditions import ContextBuilder

    from ..care.data import held_out

    rng = random.Random(seed)
    builder = ContextBuilder(world, mixture_sentences=n)
    items = [i for i in world.qa_items(known=False) if held_out(i.question) == held_out_only]
    rng.shuffle(items)
    items = items[:limit] if limit else items
    out = []
    for item in items:
        for _ in range(2):
            if stage == 2 and rng.random() >= 0.3:
                proportion = rng.choice(STAGE2_PROPORTIONS)
            else:
                proportion = rng.choice(STAGE1_PROPORTIONS)
            out.append(from_context_set(builder.mixture(item, proportion, rng)))
    return out


def rw_examples(world, stage: int, target: str = "rw", **options):
    from ragarbiter.testbed.corpus import Example

    if stage not in (1, 2):
        raise ConfigError(f"stage={stage!r} must be 1 or 2.")
    if target not in TARGETS:
        raise ConfigError(f"target={target!r} must be one of {TARGETS}.")
    write = stage1_target if target == "rw" else answer_only_target
    return [Example(rw_prompt(m.question, m.sentences, m.sources), " " + write(m), f"rw{stage}-{target}")
            for m in rw_mixtures(world, stage, **options)]


def train_rw(base_model: str, stage: int, out: str, config, *, init: str | None = None, target: str = "rw",
             n: int = 10, limit: int | None = None, eval_fraction: float = 0.05, resume: bool = False) -> dict | None:
    """LoRA fine-tuning of a testbed model on mixed contexts (one stage) with the project's Trainer."""
    import torch

    from ragarbiter.testbed import load_testbed
    from ragarbiter.testbed.lm import BatchCollator, ExampleCollator, length_batches
    from ragarbiter.training import LoraSettings, Trainer, apply_lora
    from ragarbiter.training.cli import split_holdout

    lm = load_testbed(base_model)
    if init:
        import warnings

        from peft import PeftModel

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            model = PeftModel.from_pretrained(lm.model, init, is_trainable=True)
    else:
        if stage == 2:
            logger.warning("train rw --stage 2 without --init: no stage-1 adapter to start from")
        model = apply_lora(lm.model, LoraSettings(r=8, alpha=16, dropout=0.0, target_modules=LORA_MODULES))
    examples = rw_examples(lm.world, stage, target, n=n, limit=limit, seed=config.seed)
    train, held = split_holdout(examples, eval_fraction, config.seed)
    tokenizer = lm.tokenizer
    collate = BatchCollator(ExampleCollator(tokenizer, answer_only=True))
    train_batches = length_batches(train, tokenizer, config.batch_size, config.seed)
    held_batches = length_batches(held, tokenizer, config.batch_size, config.seed) if held else []

    class RWModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lm = model

        def forward(self, batch: dict) -> dict:
            return {"loss": self.lm(**batch).loss}

        def save_adapter(self, folder) -> list[str]:
            folder = Path(folder)
            self.lm.save_pretrained(str(folder))
            (folder / "README.md").unlink(missing_ok=True)
            meta = {"method": "rw_steering", "stage": stage, "target": target, "sentences": n,
                    "base_model": str(base_model)}
            (folder / "rw.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            return sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != "manifest.json")

    import dataclasses

    per_step = dataclasses.replace(config, batch_size=1)  # the trainer gets pre-built, length-bucketed batches
    trainer = Trainer(RWModule(), per_step, train_data=train_batches, eval_data=held_batches, collate=collate,
                      task=f"rw-stage{stage}-{target}", base_model={"name": Path(base_model).name},
                      settings={"stage": stage, "target": target, "sentences": n, "examples": len(examples),
                                "init": init, "batch_size": config.batch_size})
    return trainer.fit(resume=resume)
