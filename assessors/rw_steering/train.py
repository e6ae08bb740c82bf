"""RW-Steering's two-stage LoRA fine-tuning on the testbed model, and the answer-only baseline.

- Stage 1 (`--stage 1`): mixtures at every proportion (0–95%, or only `--proportions`); the
  target first lists the reliable sentence numbers, then answers from them (`data.stage1_target`).
- Stage 2 (`--stage 2`, from a stage-1 adapter with `--init`): 70% of the mixtures hold only one
  or two inappropriate sentences, where plain fine-tuning fails, plus 30% stage-1 replay.
- `--target answer`: the fine-tuned baseline, trained on the answers alone.

The mixtures come from the testbed model's world (questions about unknown entities, so the
context is the only source), from one or more Poisoned Context Testbed pools (`--pools`), or
from a mixtures JSONL written by `ragarbiter mixtures`. One question in five is held out for
evaluation everywhere (`ragarbiter.assessors.qa.held_out`, shared by every testbed method).
The proportions and pools stage 1 saw are recorded in the adapter's `rw.json` and manifest, so
`bench rw` can tell seen proportions and pool types from held-out ones. Sentences carry no
source tags unless `--source-tags` asks for them (the tags give the label away).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path

from ragarbiter.errors import ConfigError, InvalidInputError
from ragarbiter.synthetic.conditions import PROPORTIONS

from ..generators import load_generator
from .config import SENTENCES
from .data import (
    POSITIONS,
    Mixture,
    add_source_tag_arguments,
    answer_only_target,
    check_proportions,
    first_questions,
    from_context_set,
    from_pool_record,
    is_mixture_file,
    read_mixtures,
    read_pool,
    rw_prompt,
    stage1_target,
    untagged,
)

logger = logging.getLogger(__name__)

STAGE2_FEW = (1, 2)  # stage 2's mixtures hold one or two inappropriate sentences
STAGE2_REPLAY = 0.3  # the share of stage-1 mixtures replayed in stage 2
TARGETS = ("rw", "answer")
LORA_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def mixture_sizes(n: int) -> list[int]:
    """Sentence counts for training mixtures: from 4 (or n, if smaller) up to n, so the model learns to
    read how many numbered sentences there are instead of assuming one length."""
    if n < 2:
        raise ConfigError(f"sentences={n} is too few: a mixture needs at least 2 sentences.")
    return list(range(min(4, n), n + 1))


def stage_proportion(stage: int, n: int, rng: random.Random, proportions: Sequence[float] = PROPORTIONS) -> float:
    """Stage 1: one of `proportions` (default 0 to 95%). Stage 2: one or two inappropriate
    sentences, with stage-1 replay."""
    if stage == 2 and rng.random() >= STAGE2_REPLAY:
        return min(rng.choice(STAGE2_FEW), n - 1) / n  # one appropriate sentence always stays
    return rng.choice(list(proportions))


def rw_mixtures(
    world,
    stage: int,
    *,
    n: int = SENTENCES,
    limit: int | None = None,
    seed: int = 0,
    held_out_only: bool = False,
    source_tags: bool = False,
    proportions: Sequence[float] = PROPORTIONS,
) -> list[Mixture]:
    """Two mixtures per question from the testbed's `mixture` condition (unknown entities), each of
    a random length up to `n` sentences."""
    from ragarbiter.synthetic import ContextBuilder

    from ..qa import held_out

    rng = random.Random(seed)
    builders = {k: ContextBuilder(world, mixture_sentences=k) for k in mixture_sizes(n)}
    items = [i for i in world.qa_items(known=False) if held_out(i.question) == held_out_only]
    rng.shuffle(items)
    return _two_each(
        items[:limit] if limit else items,
        stage,
        n,
        rng,
        lambda item, k, proportion: from_context_set(
            builders[k].mixture(item, proportion, rng), source_tags=source_tags
        ),
        proportions,
    )


def _two_each(items, stage: int, n: int, rng: random.Random, build, proportions=PROPORTIONS) -> list[Mixture]:
    """Two mixtures per item, each of a random length k up to n at the stage's proportion: `build(item, k, p)`."""
    out = []
    for item in items:
        for _ in range(2):
            k = rng.choice(mixture_sizes(n))
            out.append(build(item, k, stage_proportion(stage, k, rng, proportions)))
    return out


def _at(proportion: float, proportions: Sequence[float]) -> bool:
    return any(abs(proportion - p) < 1e-9 for p in proportions)


def file_mixtures(
    path: str,
    stage: int,
    *,
    n: int = SENTENCES,
    limit: int | None = None,
    seed: int = 0,
    held_out_only: bool = False,
    source_tags: bool = False,
    proportions: Sequence[float] = PROPORTIONS,
) -> list[Mixture]:
    """Training mixtures from a file, for `limit` questions at most.

    - A pool: two mixtures per record, at the stage's proportions, random positions and
      lengths up to `n`.
    - A mixtures JSONL: used as written (without their tags unless `source_tags`), keeping those
      at `proportions`. Stage 2 keeps those with one or two inappropriate sentences plus a replay
      share of the rest.
    """
    from ..qa import held_out

    rng = random.Random(seed)
    if is_mixture_file(path):
        mixtures = [m for m in read_mixtures(path) if held_out(m.question) == held_out_only]
        mixtures = mixtures if source_tags else untagged(mixtures)
        rng.shuffle(mixtures)
        mixtures = first_questions(mixtures, limit)
        if stage == 2:
            few = [m for m in mixtures if sum(m.inappropriate) in STAGE2_FEW]
            if not few:
                raise InvalidInputError(
                    f"{path} has no mixture with one or two inappropriate sentences, which stage 2 "
                    f"trains on. Build them with `ragarbiter mixtures --sentences 20 "
                    f"--proportions 0.05 0.1 ...`."
                )
            rest = [m for m in mixtures if sum(m.inappropriate) not in STAGE2_FEW and _at(m.proportion, proportions)]
            mixtures = few + rest[: round(len(few) * STAGE2_REPLAY / (1 - STAGE2_REPLAY))]
            rng.shuffle(mixtures)
            return mixtures
        kept = [m for m in mixtures if _at(m.proportion, proportions)]
        if mixtures and not kept:
            found = sorted({m.proportion for m in mixtures})
            raise InvalidInputError(
                f"{path} holds no mixture at --proportions {list(proportions)} (it has {found}). "
                f"Pass proportions it holds, or write more with `ragarbiter mixtures --proportions ...`."
            )
        return kept
    records = [r for r in read_pool(path) if held_out(str(r.get("Question", ""))) == held_out_only]
    rng.shuffle(records)
    return _two_each(
        records[:limit] if limit else records,
        stage,
        n,
        rng,
        lambda r, k, proportion: from_pool_record(
            r, proportion, n=k, position=rng.choice(POSITIONS), source_tags=source_tags, rng=rng
        ),
        proportions,
    )


def split_by_question(mixtures: list[Mixture], fraction: float, seed: int) -> tuple[list[Mixture], list[Mixture]]:
    """(train, held-out) with every mixture of one question on the same side, so the held-out loss
    measures questions the adapter never trained on."""
    from ragarbiter.training import split_holdout

    questions = list(dict.fromkeys(m.question for m in mixtures))
    _, held_questions = split_holdout(questions, fraction, seed)
    held = set(held_questions)
    return [m for m in mixtures if m.question not in held], [m for m in mixtures if m.question in held]


def training_mixtures(source, stage: int, **options) -> list[Mixture]:
    """Mixtures from a testbed world, a pool / mixtures file path, or a list of pool paths (mixed
    together, deterministically in `seed`)."""
    if stage not in (1, 2):
        raise ConfigError(f"stage={stage!r} must be 1 or 2.")
    if isinstance(source, (str, Path)):
        return file_mixtures(str(source), stage, **options)
    if isinstance(source, (list, tuple)):
        mixtures = [m for path in source for m in file_mixtures(str(path), stage, **options)]
        random.Random(options.get("seed", 0)).shuffle(mixtures)
        return mixtures
    return rw_mixtures(source, stage, **options)


def rw_examples(mixtures, target: str = "rw"):
    """Training examples (prompt, target) for `mixtures`: stage-1 targets, or the answers alone."""
    from ragarbiter.lm import Example

    if target not in TARGETS:
        raise ConfigError(f"target={target!r} must be one of {TARGETS}.")
    write = stage1_target if target == "rw" else answer_only_target
    return [Example(rw_prompt(m.question, m.sentences, m.sources), " " + write(m), f"rw-{target}") for m in mixtures]


def _lora_targets(model, targets: Sequence[str]) -> tuple[str, ...]:
    """`targets`, checked against the model's module names (a clear error lists the linear ones)."""
    import torch

    targets = tuple(targets)
    if not targets:
        raise ConfigError("--lora-targets is empty; name at least one module, e.g. q_proj v_proj.")
    linear = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
    missing = [t for t in targets if t not in linear]
    if missing:
        raise ConfigError(f"--lora-targets {missing} name no linear layer of this model; choose from {linear}.")
    return targets


def _init_meta(init: str | None) -> dict:
    """The `rw.json` of the adapter a stage-2 run starts from (empty when there is none)."""
    path = Path(init) / "rw.json" if init else None
    if path is None or not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def seen_in_training(init: str | None, proportions: Sequence[float], pools: Sequence[str]) -> dict:
    """What the adapter has seen: this run's proportions and pools, with those of its `init` adapter."""
    before = _init_meta(init)
    return {
        "proportions": sorted({*map(float, proportions), *before.get("proportions", [])}),
        "pools": sorted({*map(str, pools), *before.get("pools", [])}),
    }


def train_rw(
    base_model: str,
    stage: int,
    out: str,
    config,
    *,
    init: str | None = None,
    target: str = "rw",
    n: int = SENTENCES,
    limit: int | None = None,
    eval_fraction: float = 0.05,
    resume: bool = False,
    data: str | Sequence[str] | None = None,
    source_tags: bool = False,
    proportions: Sequence[float] = PROPORTIONS,
    lora_r: int | None = None,
    lora_alpha: int | None = None,
    lora_targets: Sequence[str] | None = None,
) -> dict | None:
    """LoRA fine-tuning on mixed contexts (one stage) with the project's Trainer.

    The mixtures come from `data` (a pool, a mixtures JSONL, or a list of pools) or, without it,
    from the testbed model's own world, at `proportions` (stage 1; stage 2's replay). `base_model`
    is a testbed model or, with `data`, any local causal LM. `lora_r`, `lora_alpha`,
    `lora_targets`: None takes `LoraSettings`' defaults and `LORA_MODULES`; a stage-2 run keeps its
    `init` adapter's. The proportions, pools and LoRA shape go into `rw.json` and the manifest."""
    import torch

    from ragarbiter.lm import BatchCollator, ExampleCollator, length_batches
    from ragarbiter.lm.generator import resolve_generator
    from ragarbiter.training import LoraSettings, Trainer, apply_lora

    proportions = check_proportions(proportions)
    pools = [str(d) for d in ([data] if isinstance(data, (str, Path)) else data or [])]
    lm = load_generator(resolve_generator(base_model))  # a folder, or a name such as smollm2-135m-instruct
    if not pools and lm.world is None:
        raise ConfigError(
            f"{base_model} is not a testbed model, so there is no world to build mixtures from. "
            f"Pass --data POOL.json (or a mixtures JSONL from `ragarbiter mixtures`), or --pools POOL.json ..."
        )
    if init:
        from .model import with_adapter

        model = with_adapter(lm, init, trainable=True).model
        logger.info("train rw --init %s: the LoRA shape (r, alpha, targets) is the init adapter's", init)
    else:
        if stage == 2:
            logger.warning("train rw --stage 2 without --init: no stage-1 adapter to start from")
        shape = {"r": lora_r, "alpha": lora_alpha}
        lora = LoraSettings(
            dropout=0.0,
            target_modules=_lora_targets(lm.model, lora_targets or LORA_MODULES),
            **{k: v for k, v in shape.items() if v is not None},
        )
        model = apply_lora(lm.model, lora)
    source = (pools[0] if len(pools) == 1 else pools) if pools else lm.world
    mixtures = training_mixtures(
        source, stage, n=n, limit=limit, seed=config.seed, source_tags=source_tags, proportions=proportions
    )
    if not mixtures:
        raise InvalidInputError(f"no training mixtures from {pools or base_model} (every question is held out?).")
    train_mix, held_mix = split_by_question(mixtures, eval_fraction, config.seed)
    train, held = rw_examples(train_mix, target), rw_examples(held_mix, target)
    tokenizer = lm.tokenizer
    max_length = min(int(getattr(lm.model.config, "max_position_embeddings", 2048) or 2048), 4096)
    collate = BatchCollator(ExampleCollator(tokenizer, max_length=max_length, answer_only=True))
    train_batches = length_batches(train, tokenizer, config.batch_size, config.seed, max_length)
    held_batches = length_batches(held, tokenizer, config.batch_size, config.seed, max_length) if held else []
    peft_config = model.peft_config["default"]
    recorded = {
        "stage": stage,
        "target": target,
        "sentences": n,
        "source_tags": source_tags,
        "proportions": list(proportions),
        "pools": pools or ["testbed world"],
        "seen": seen_in_training(init, proportions, pools or ["testbed world"]),
        "lora": {
            "r": int(peft_config.r),
            "alpha": peft_config.lora_alpha,
            "targets": sorted(peft_config.target_modules),
        },
        "init": init,
    }
    if stage == 2:  # besides the replayed proportions, stage 2 sees mixtures with one or two bad sentences
        recorded["seen"]["few_inappropriate_sentences"] = list(STAGE2_FEW)

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
            meta = {
                "method": "rw_steering",
                **recorded,
                "base_model": str(base_model),
                "data": pools[0] if len(pools) == 1 else (pools or "testbed world"),
            }
            (folder / "rw.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            return sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != "manifest.json")

    per_step = dataclasses.replace(config, batch_size=1)  # the trainer gets pre-built, length-bucketed batches
    trainer = Trainer(
        RWModule(),
        per_step,
        train_data=train_batches,
        eval_data=held_batches,
        collate=collate,
        task=f"rw-stage{stage}-{target}",
        base_model={"name": Path(base_model).name},
        data_files=pools,
        settings={**recorded, "examples": len(train) + len(held), "batch_size": config.batch_size},
    )
    return trainer.fit(resume=resume)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ragarbiter.training.args import add_train_args

    p.add_argument(
        "--base-model",
        required=True,
        metavar="DIR",
        help="a testbed model (`ragarbiter testbed train`), or with --data / --pools any local causal LM "
        "(a folder, or smollm2-135m-instruct, the default generator)",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--data",
        metavar="FILE",
        help="a Poisoned Context Testbed pool (.json) or a mixtures JSONL "
        "(`ragarbiter mixtures`); default: the testbed model's own world",
    )
    source.add_argument(
        "--pools",
        nargs="+",
        metavar="FILE",
        help="Poisoned Context Testbed pools (.json) to mix; leave a pool type out to test on it as held out",
    )
    p.add_argument(
        "--proportions",
        type=float,
        nargs="+",
        default=list(PROPORTIONS),
        metavar="P",
        help="shares of inappropriate sentences stage 1 trains on (and stage 2 replays), each in [0, 1) "
        "(default: 0 to 0.95); leave some out to test them as held out",
    )
    add_source_tag_arguments(p)
    p.add_argument("--stage", type=int, required=True, choices=(1, 2))
    p.add_argument("--init", metavar="DIR", help="start from this adapter (stage 1's, for stage 2)")
    p.add_argument("--target", choices=TARGETS, default=TARGETS[0], help="rw (default) or the answer-only baseline")
    p.add_argument(
        "--sentences",
        type=int,
        default=SENTENCES,
        help=f"longest mixture; each training mixture has 4 to this many sentences (default: {SENTENCES})",
    )
    p.add_argument("--limit", type=int, default=None, metavar="N", help="training questions")
    p.add_argument(
        "--lora-targets",
        nargs="+",
        default=list(LORA_MODULES),
        metavar="NAME",
        help=f"module names that get LoRA adapters (default: {' '.join(LORA_MODULES)})",
    )
    add_train_args(p, batch_size=16, lr=2e-3)


def run(args: argparse.Namespace) -> dict | None:
    from ragarbiter.training.args import train_config

    return train_rw(
        args.base_model,
        args.stage,
        args.out,
        train_config(args),
        init=args.init,
        target=args.target,
        n=args.sentences,
        limit=args.limit,
        eval_fraction=args.eval_fraction,
        resume=args.resume,
        data=args.pools or args.data,
        source_tags=args.source_tags,
        proportions=args.proportions,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_targets=args.lora_targets,
    )
