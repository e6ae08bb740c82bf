"""CARE's context assessor, in two stages on the project's one trainer.

Stage 1 (`--stage pretrain`) learns the assessor from scratch (LoRA, memory tokens and projector)
so the base LM can regenerate a passage from its soft prompt; `--data` is any corpus the indexer
reads (.txt, .md, .jsonl with `text`, folders) or LitM NQ-Open files. Stage 2 (`--stage finetune`,
with `--init` from stage 1) reads QA files with gold passages (LitM NQ-Open) and labels each
question closed-book with the base LM, in batches: unknown answers get the gold passage and the
raw-passage teacher (grounded), known ones a misleading (answer-swapped) and an unhelpful passage
and the no-context teacher; the loss is LM + lambda * T^2 * KL(teacher || student). Both write the
same folder layout (`CareModel.save`) and the trainer's manifest, with the example counts and the
digests of the training questions (so `bench care --data` scores only the others).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import torch
from torch import nn

from ragarbiter.errors import ConfigError

from .config import CareConfig
from .data import (
    STAGES,
    CareExample,
    check_halves,
    conflict_examples,
    corpus_passages,
    example_counts,
    litm_records,
    reconstruction_examples,
    testbed_records,
)
from .model import KL_TEMPERATURE, CareModel

logger = logging.getLogger(__name__)

KL_WEIGHT = 2.0  # lambda: the weight of the KL term in stage 2 (the reference: 2 for Mistral and Qwen, 4 for Llama)
LABEL_BATCH = 32  # questions per closed-book labelling batch


class CareTrainModule(nn.Module):
    """What the trainer trains: the CARE assessor; each batch holds examples of one stage."""

    def __init__(
        self, care: CareModel, base_name: str, stage: str, lam: float, temperature: float = KL_TEMPERATURE
    ) -> None:
        super().__init__()
        self.care, self.base_name, self.stage, self.lam, self.temperature = care, base_name, stage, lam, temperature
        self.manifest_extra: dict = {}

    def forward(self, batch: dict) -> dict:
        examples = batch["examples"]
        if all(ex.kind == "reconstruct" for ex in examples):
            losses = self.care.reconstruction_losses(
                [ex.passages[0] for ex in examples], [ex.instruction for ex in examples]
            )
        else:
            items = [(ex.question, ex.passages, ex.answer, ex.teacher_passages) for ex in examples]
            losses, _ = self.care.conflict_losses(items, self.lam, self.temperature)
        return {"loss": losses.mean(), "example_loss": losses.detach()}

    def save_adapter(self, folder) -> list[str]:
        extra = {"stage": self.stage, "lambda": self.lam, "kl_temperature": self.temperature, **self.manifest_extra}
        self.care.save(folder, self.base_name, extra)
        return sorted(p.name for p in Path(folder).iterdir() if p.is_file() and p.name != "manifest.json")


def _collate(examples: list[CareExample]) -> dict:
    return {"examples": examples}


def closed_book_labeller(care: CareModel, max_new_tokens: int = 16, batch_size: int = LABEL_BATCH):
    """`knows([(question, answers)]) -> [bool]`: does the base LM (adapter off, no context) mention an
    answer alias, answering `batch_size` questions at a time on the model's device?"""
    from .data import contains_answer

    def knows(questions_and_answers):
        questions = [q for q, _ in questions_and_answers]
        said = care.answers(questions, max_new_tokens=max_new_tokens, batch_size=batch_size)
        return [
            contains_answer(out, [answers] if isinstance(answers, str) else list(answers))
            for out, (_, answers) in zip(said, questions_and_answers)
        ]

    return knows


def build_examples(
    care: CareModel,
    stage: str,
    data: list[str],
    *,
    testbed_world=None,
    limit: int | None = None,
    seed: int = 0,
    label_batch: int = LABEL_BATCH,
) -> tuple[list[CareExample], list[str]]:
    """Stage 1: passages to reconstruct; stage 2: grounded, misleading and unhelpful examples, labelled
    closed-book. Returns the examples and the questions they were built from."""
    if stage not in STAGES:
        raise ConfigError(f"stage={stage!r} must be one of {STAGES}.")
    if stage == "pretrain":
        passages = corpus_passages(data)
        if testbed_world is not None:
            passages += [gold for _, _, gold in testbed_records(testbed_world, seed, limit)]
        pieces = [p for text in passages for p in _pieces(care, text)]
        return reconstruction_examples(pieces[:limit] if limit else pieces, seed), []
    records = [r for path in data for r in litm_records(path, limit)]
    if testbed_world is not None:
        records += testbed_records(testbed_world, seed, limit)
    examples = conflict_examples(
        records, closed_book_labeller(care, batch_size=label_batch), seed, care.config.passages
    )
    counts = example_counts(examples)
    logger.info(
        "care finetune: %d questions -> grounded=%d, misleading=%d, unhelpful=%d",
        len(records),
        counts["grounded"],
        counts["misleading"],
        counts["unhelpful"],
    )
    check_halves(counts, len(records), ", ".join(data) or "the testbed")
    return examples, [q for q, _, _ in records]


def _pieces(care: CareModel, text: str) -> list[str]:
    """`text` cut into pieces of at most `chunk_tokens` base-LM tokens (one reconstruction target each)."""
    ids = care.tokenizer(text, add_special_tokens=False)["input_ids"]
    size = care.config.chunk_tokens
    if len(ids) <= size:
        return [text]
    pieces = [care.tokenizer.decode(ids[i : i + size]).strip() for i in range(0, len(ids), size)]
    return [p for p in pieces if p]


def train_care(
    base_model: str,
    stage: str,
    data: list[str],
    config,
    *,
    init: str | None = None,
    testbed: bool = False,
    lam: float = KL_WEIGHT,
    temperature: float = KL_TEMPERATURE,
    limit: int | None = None,
    care: CareConfig | None = None,
    lora_r: int | None = None,
    lora_alpha: int | None = None,
    lora_targets: tuple[str, ...] | None = None,
    passages: int | None = None,
    label_batch: int = LABEL_BATCH,
    eval_fraction: float = 0.05,
    resume: bool = False,
) -> dict | None:
    """Train one CARE stage on `base_model` (a local folder, or a packaged generator's name such as
    smollm2-135m-instruct) with the project's Trainer (`config`)."""
    from ragarbiter.lm import load_causal_lm
    from ragarbiter.lm.generator import resolve_generator
    from ragarbiter.training import Trainer, split_holdout

    from ..qa import question_digest

    if temperature <= 0:
        raise ConfigError(f"--kl-temperature must be > 0, got {temperature}. The reference uses {KL_TEMPERATURE}.")
    device = "cuda" if torch.cuda.is_available() and not config.cpu else None  # label on the GPU too
    folder = resolve_generator(base_model)
    model, tokenizer = load_causal_lm(folder, device=device)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    world = None
    if testbed:
        from ragarbiter.synthetic import load_world

        world = load_world(folder)
    if not data and world is None:
        raise ConfigError(
            "train care needs --data FILE (a corpus for pretrain, LitM NQ-Open for finetune) or --testbed "
            "(with a testbed model as --base-model)."
        )
    if init:
        assessor = CareModel.load(init, model, tokenizer)
        asked = {"lora_r": lora_r, "lora_alpha": lora_alpha, "target_modules": lora_targets}
        ignored = {k: v for k, v in asked.items() if v is not None and v != getattr(assessor.config, k)}
        if ignored:
            logger.warning("train care --init %s keeps its own LoRA settings; ignoring %s", init, ignored)
        if passages is not None:  # not a weight shape: stage 2 may read more passages than stage 1 did
            assessor.config = dataclasses.replace(assessor.config, passages=passages)
    else:
        if stage == "finetune":
            logger.warning("train care --stage finetune without --init: the assessor starts untrained (no stage 1)")
        layout = {"context_prefix": "Documents:\n[1] ", "prompt": "plain"} if testbed else {}
        settings = {"lora_r": lora_r, "lora_alpha": lora_alpha, "target_modules": lora_targets}
        settings["passages"] = passages or 1
        assessor = CareModel(model, tokenizer, care or CareConfig(**settings, **layout))
    examples, questions = build_examples(
        assessor, stage, data, testbed_world=world, limit=limit, seed=config.seed, label_batch=label_batch
    )
    train, held = split_holdout(examples, eval_fraction, config.seed)
    if not train:
        raise ConfigError(
            f"train care built {len(examples)} example(s) from {data or 'the testbed'}; add data or raise --limit."
        )
    counts = example_counts(examples)
    logger.info("care %s: %d examples %s", stage, len(examples), counts)
    digests = sorted({question_digest(q) for q in questions})
    module = CareTrainModule(assessor, Path(base_model).name, stage, lam, temperature)
    module.manifest_extra = {"examples": counts}
    trainer = Trainer(
        module,
        config,
        train_data=train,
        eval_data=held,
        collate=_collate,
        task=f"care-{stage}",
        base_model={"name": Path(base_model).name, "fingerprint": care_fingerprint(assessor)},
        data_files=data,
        settings={
            "stage": stage,
            "lambda": lam,
            "kl_temperature": temperature,
            "care": assessor.config.to_dict(),
            "examples": counts,
            "init": init,
        },
        extra={
            "examples": counts,
            "questions": {"digest": "sha1-12 of qa.question_key", "count": len(digests), "values": digests},
        },
    )
    return trainer.fit(resume=resume)


def care_fingerprint(care: CareModel) -> str:
    from .model import base_fingerprint

    return base_fingerprint(care.lm.get_base_model())


def _targets(text: str) -> tuple[str, ...]:
    modules = tuple(m.strip() for m in text.split(",") if m.strip())
    if not modules:
        raise argparse.ArgumentTypeError(f"--lora-targets {text!r} names no module; e.g. q_proj,v_proj")
    return modules


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ragarbiter.training.args import add_train_args

    p.add_argument(
        "--base-model",
        required=True,
        metavar="NAME_OR_DIR",
        help="a local causal LM folder (save_pretrained) or a packaged generator, e.g. smollm2-135m-instruct",
    )
    p.add_argument("--stage", required=True, choices=STAGES)
    p.add_argument(
        "--data",
        nargs="*",
        default=[],
        metavar="FILE",
        help="pretrain: a corpus (.txt, .md, .jsonl with 'text', folders) or LitM NQ-Open files; "
        "finetune: LitM NQ-Open .jsonl[.gz] files",
    )
    p.add_argument(
        "--testbed",
        action="store_true",
        help="also build examples from the testbed world of --base-model (a model from `ragarbiter testbed train`)",
    )
    p.add_argument("--init", metavar="DIR", help="start from this CARE folder (stage 1 output for stage 2)")
    p.add_argument(
        "--lambda", dest="lam", type=float, default=KL_WEIGHT, help=f"weight of the KL term (default: {KL_WEIGHT})"
    )
    p.add_argument(
        "--kl-temperature",
        type=float,
        default=KL_TEMPERATURE,
        help=f"temperature of KL(teacher || student) (default: {KL_TEMPERATURE}, as the reference)",
    )
    p.add_argument(
        "--passages",
        type=int,
        default=None,
        metavar="N",
        help="passages per training soft prompt, saved with the assessor as the stage's default at inference "
        "(default: 1 as the reference, or --init's)",
    )
    p.add_argument(
        "--label-batch-size",
        type=int,
        default=LABEL_BATCH,
        metavar="N",
        help=f"questions per closed-book labelling batch (default: {LABEL_BATCH})",
    )
    p.add_argument(
        "--lora-targets",
        type=_targets,
        default=None,
        metavar="A,B",
        help="comma-separated modules the LoRA adapts (default: per architecture, e.g. q_proj,v_proj for Llama)",
    )
    p.add_argument("--limit", type=int, default=None, metavar="N", help="questions (or passages) per data source")
    add_train_args(p, batch_size=4, lr=1e-3)
    for action in p._actions:  # per-architecture defaults (config.LORA_DEFAULTS) instead of the trainer's
        if action.dest in ("lora_r", "lora_alpha"):
            action.default = None
            action.help = f"LoRA {'rank' if action.dest == 'lora_r' else 'alpha'} (default: per architecture)"


def run(args: argparse.Namespace) -> dict | None:
    from ragarbiter.training.args import train_config

    if args.passages is not None and args.passages < 1:
        raise ConfigError(f"--passages must be >= 1, got {args.passages}.")
    return train_care(
        args.base_model,
        args.stage,
        args.data,
        train_config(args),
        init=args.init,
        testbed=args.testbed,
        lam=args.lam,
        temperature=args.kl_temperature,
        limit=args.limit,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_targets=args.lora_targets,
        passages=args.passages,
        label_batch=args.label_batch_size,
        eval_fraction=args.eval_fraction,
        resume=args.resume,
    )
