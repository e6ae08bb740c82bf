"""The testbed's small causal LM: a `tokenizers` BPE on the world's text and a Llama model.

The model is a Hugging Face `LlamaForCausalLM` (GQA, RoPE, SDPA attention), so every
ragarbiter stage that takes a causal LM runs on it unchanged. It is trained from scratch
with the project's one trainer (`ragarbiter.training.Trainer`: accelerate, progress bar,
checkpoints, `--resume`, held-out evaluation, manifest) on `corpus.CorpusMaker` text, and
saved with `save_pretrained` next to its tokenizer and a manifest.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ragarbiter.errors import ConfigError, InvalidInputError, ModelNotFoundError

from .corpus import CorpusMaker, Example
from .world import World, WorldConfig, build_world

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")
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


def bpe_tokenizer(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on `texts`, with <pad>, <s>, </s> and <unk>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )


# -- the trainable module -------------------------------------------------------------------
class ExampleCollator:
    """Tokenize examples: `<s> prompt target </s>`.

    The loss covers every token by default (`answer_only=False`): a RAG example about an
    invented entity repeats its name and values between the documents and the question,
    and predicting those repeats is what teaches the model to copy from its context (with
    the loss on the answer alone, a 4-layer model had not started reading after 1,250 steps).
    """

    def __init__(self, tokenizer, max_length: int = 768, answer_only: bool = False) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.answer_only = answer_only

    def __call__(self, examples: Sequence[Example]) -> dict:
        import torch

        tok = self.tokenizer
        rows, masks = [], []
        for ex in examples:
            prompt = tok(ex.prompt, add_special_tokens=False)["input_ids"] if ex.prompt else []
            target = tok(ex.target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            bos = [tok.bos_token_id] if tok.bos_token_id is not None else []  # models without <s> (Qwen) start bare
            ids = [*bos, *prompt, *target][-self.max_length :]
            trained = ([0] * len(bos) + [0 if self.answer_only else 1] * len(prompt) + [1] * len(target))[
                -self.max_length :
            ]
            rows.append(ids)
            masks.append(trained)
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        for i, (ids, trained) in enumerate(zip(rows, masks)):  # right padding for training
            input_ids[i, : len(ids)] = torch.tensor(ids)
            attention[i, : len(ids)] = 1
            labels[i, : len(ids)] = torch.where(torch.tensor(trained, dtype=torch.bool), torch.tensor(ids), -100)
        return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


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


def length_batches(
    examples: Sequence[Example], tokenizer, batch_size: int, seed: int, max_length: int | None = None
) -> list[list[Example]]:
    """Group examples of similar token length into batches (shuffled batch order), so padding
    costs little: the RAG examples run from 20 to 500 tokens and one long row would pad 31 short ones.
    With `max_length` (the collator's), examples that will be cut are counted and logged."""
    import random

    lengths = [len(tokenizer(e.prompt + e.target, add_special_tokens=False)["input_ids"]) for e in examples]
    too_long = sum(n + 2 > max_length for n in lengths) if max_length else 0  # + <s> and </s>
    if too_long:
        logger.warning(
            "%d of %d examples exceed %d tokens; the collator keeps their end, so the start of their prompt is cut",
            too_long,
            len(examples),
            max_length,
        )
    order = sorted(range(len(examples)), key=lambda i: lengths[i])
    batches = [[examples[i] for i in order[j : j + batch_size]] for j in range(0, len(order), batch_size)]
    random.Random(seed).shuffle(batches)
    return batches


class BatchCollator:
    """The trainer hands over one pre-built batch at a time (batch_size 1 of a list of examples)."""

    def __init__(self, collator: ExampleCollator) -> None:
        self.collator = collator

    def __call__(self, batches: Sequence[Sequence[Example]]) -> dict:
        return self.collator([e for batch in batches for e in batch])


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


@dataclass
class TestbedModel:
    """A loaded testbed model, its tokenizer and the world it was trained on."""

    model: object
    tokenizer: object
    world: World
    path: Path

    def generate(
        self, prompts: Sequence[str], max_new_tokens: int = 10, batch_size: int = 32, progress: bool | None = None
    ) -> list[str]:
        """Greedy answers (up to the end of the line) for `prompts`, batched with left padding
        (a progress bar from 8 batches up, unless `progress` says otherwise)."""
        import torch
        from tqdm.auto import tqdm

        tok, out = self.tokenizer, []
        starts = range(0, len(prompts), batch_size)
        show = len(starts) >= 8 if progress is None else progress
        for i in tqdm(starts, desc="testbed generate", unit="batch", disable=not show, leave=False):
            chunk = [(tok.bos_token or "") + p for p in prompts[i : i + batch_size]]
            enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                ids = self.model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tok.pad_token_id,
                    eos_token_id=tok.eos_token_id,
                )
            for row in ids[:, enc["input_ids"].shape[1] :]:
                out.append(tok.decode(row, skip_special_tokens=True).split("\n")[0].strip())
        return out


def load_world(path: str | Path) -> World:
    """The world of a model written by `train_testbed`, rebuilt from its saved seed and sizes (no weights loaded)."""
    path = Path(path)
    meta = path / "testbed.json"
    if not meta.is_file():
        msg = (
            f"{path} holds no testbed model (no testbed.json). Train one with "
            f"`ragarbiter testbed train --size small --seed 0 --out {path}`."
        )
        raise ModelNotFoundError(msg)
    info = json.loads(meta.read_text(encoding="utf-8"))
    try:
        world = build_world(WorldConfig(**info["world"]))
    except (TypeError, KeyError) as exc:
        msg = f"{meta} has no valid world description ({exc}). Retrain the model."
        raise InvalidInputError(msg) from exc
    return world


def load_testbed(path: str | Path) -> TestbedModel:
    """Load a model written by `train_testbed` (with its world, rebuilt from the saved seed and sizes)."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    path = Path(path)
    world = load_world(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    model = LlamaForCausalLM.from_pretrained(path, attn_implementation="sdpa").eval()
    return TestbedModel(model, tokenizer, world, path)
