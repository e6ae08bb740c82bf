"""The testbed's small causal LM: a `tokenizers` BPE on the world's text and a Llama model.

The model is a Hugging Face `LlamaForCausalLM` (GQA, RoPE, SDPA attention), so every
ragarbiter stage that takes a causal LM runs on it unchanged. It is trained from scratch
with the project's one trainer (`ragarbiter.training.Trainer`: accelerate, progress bar,
checkpoints, `--resume`, held-out evaluation, manifest) on `ragarbiter.synthetic.corpus.CorpusMaker` text, and
saved with `save_pretrained` next to its tokenizer and a manifest.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ragarbiter.errors import ConfigError
from ragarbiter.lm.collate import BatchCollator, ExampleCollator, length_batches
from ragarbiter.lm.loading import CausalLM
from ragarbiter.lm.tokenizer import bpe_tokenizer
from ragarbiter.synthetic.corpus import CorpusMaker
from ragarbiter.synthetic.world import World, WorldConfig, build_world

logger = logging.getLogger(__name__)

SCAFFOLD = (
    "Documents:\n[1] [2] [3] [10] [12] [20] (encyclopedia) (registry) (newspaper) (forum) (anonymous post) "
    "(chain message)\nQuestion: ?\nAnswer:"
)


@dataclass(frozen=True)
class TestbedSize:
    """A named size: the world, the model and the training run."""

    name: str
    world: WorldConfig
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    steps: int
    batch_size: int
    lr: float
    train_examples: int

    def model_config(self, vocab_size: int):
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=self.hidden,
            intermediate_size=self.intermediate,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            num_key_value_heads=self.kv_heads,
            max_position_embeddings=1024,
            rope_theta=10000.0,
            tie_word_embeddings=True,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            attn_implementation="sdpa",
        )


def sizes(seed: int = 0) -> dict[str, TestbedSize]:
    """`tiny`: minutes on a laptop CPU, for tests. `small`: the benchmark model."""
    return {
        "tiny": TestbedSize(
            "tiny",
            WorldConfig(seed=seed, people=40, companies=10, cities=10, countries=4),
            hidden=96,
            layers=2,
            heads=4,
            kv_heads=2,
            intermediate=256,
            vocab=600,
            steps=600,
            batch_size=32,
            lr=3e-3,
            train_examples=19_200,
        ),
        "small": TestbedSize(
            "small",
            WorldConfig(seed=seed, people=160, companies=24, cities=16, countries=5),
            hidden=256,
            layers=4,
            heads=8,
            kv_heads=2,
            intermediate=688,
            vocab=1200,
            steps=2200,
            batch_size=32,
            lr=2e-3,
            train_examples=70_400,
        ),
    }


def size(name: str, seed: int = 0) -> TestbedSize:
    table = sizes(seed)
    if name not in table:
        msg = f"unknown testbed size {name!r}; choose one of {sorted(table)}."
        raise ConfigError(msg)
    return table[name]


# -- tokenizer ------------------------------------------------------------------------------
def build_tokenizer(world: World, vocab_size: int, extra: Sequence[str] = ()):
    """A byte-level BPE trained on the world's text (exact round trip, offsets for every token),
    wrapped as a `PreTrainedTokenizerFast` so it saves and loads like any HF tokenizer."""
    return bpe_tokenizer([*world.texts(known_only=False), SCAFFOLD, *extra], vocab_size)


# -- the trainable module -------------------------------------------------------------------
def _lm_module(model, tokenizer, manifest_extra: dict):
    import torch

    class TestbedLM(torch.nn.Module):
        """What the trainer trains: the causal LM; `save_adapter` writes the whole model (trained from scratch)."""

        def __init__(self) -> None:
            super().__init__()
            self.lm = model

        def forward(self, batch: dict) -> dict:
            out = self.lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
            logits = out.logits[:, :-1].argmax(-1)
            labels = batch["labels"][:, 1:]
            trained = labels != -100
            correct = ((logits == labels) & trained).sum(-1).float() / trained.sum(-1).clamp(min=1)
            return {"loss": out.loss, "token_accuracy": correct}

        def save_adapter(self, folder: str | Path) -> list[str]:
            folder = Path(folder)
            self.lm.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            (folder / "testbed.json").write_text(json.dumps(manifest_extra, indent=2), encoding="utf-8")
            return sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != "manifest.json")

    return TestbedLM()


def _metrics(outputs: dict) -> dict[str, float]:
    return {"token_accuracy": float(outputs["token_accuracy"].mean())}


def default_mixed_precision() -> str:
    """bf16 autocast where the device runs it natively (AMX / AVX512-BF16 CPUs, CUDA), else fp32."""
    from ragarbiter.models import default_device, native_bf16

    return "bf16" if native_bf16(default_device()) else "no"


def train_testbed(
    size_name: str | TestbedSize,
    seed: int,
    out: str | Path,
    *,
    steps: int | None = None,
    resume: bool = False,
    progress: bool = True,
    mixed_precision: str | None = None,
    eval_examples: int = 256,
) -> dict:
    """Build the world, the tokenizer and the model; train; save; measure closed-book accuracy."""
    import torch
    from transformers import LlamaForCausalLM

    from ragarbiter.training import TrainConfig, Trainer, read_manifest, write_manifest

    spec = size_name if isinstance(size_name, TestbedSize) else size(size_name, seed)
    world = build_world(spec.world)
    tokenizer = build_tokenizer(world, spec.vocab)
    maker = CorpusMaker(world, seed)
    train = length_batches(maker.examples(spec.train_examples), tokenizer, spec.batch_size, seed)
    held = length_batches(CorpusMaker(world, seed + 1).examples(eval_examples), tokenizer, spec.batch_size, seed)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(spec.model_config(len(tokenizer)))
    extra = {"size": spec.name, "seed": seed, "world": asdict(spec.world)}
    module = _lm_module(model, tokenizer, extra)
    config = TrainConfig(
        out_dir=str(out),
        max_steps=steps or spec.steps,
        batch_size=1,
        lr=spec.lr,
        checkpoint_every=max(50, (steps or spec.steps) // 6),
        seed=seed,
        progress=progress,
        mixed_precision=mixed_precision or default_mixed_precision(),
        weight_decay=0.1,
    )
    started = time.perf_counter()
    trainer = Trainer(
        module,
        config,
        train_data=train,
        eval_data=held,
        collate=BatchCollator(ExampleCollator(tokenizer)),
        metrics=_metrics,
        task=f"testbed-{spec.name}",
        base_model={
            "name": "LlamaForCausalLM (trained from scratch)",
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        settings={
            "size": spec.name,
            "world": asdict(spec.world),
            "model": {k: getattr(spec, k) for k in ("hidden", "layers", "heads", "kv_heads", "intermediate")},
            "vocab_size": len(tokenizer),
            "batch_size": spec.batch_size,
            "train_examples": spec.train_examples,
        },
    )
    manifest = trainer.fit(resume=resume)
    seconds = time.perf_counter() - started
    if manifest is None:  # a non-main process of a multi-process run
        return {}
    from .harness import closed_book_accuracy

    lm = load_testbed(out)
    manifest = read_manifest(out)
    manifest["closed_book"] = closed_book_accuracy(lm, world)
    manifest["run"]["wall_seconds"] = round(seconds, 1)
    write_manifest(out, manifest)
    logger.info("testbed %s trained in %.0f s; closed-book accuracy %s", spec.name, seconds, manifest["closed_book"])
    return manifest


def load_testbed(path: str | Path) -> CausalLM:
    """Load a model written by `train_testbed` (with its world, rebuilt from the saved seed and sizes)."""
    from ragarbiter.assessors.generators import load_generator

    return load_generator(path, require_world=True)
