"""Dataclass configs for the trainer and for LoRA, validated at construction."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ragarbiter.errors import ConfigError

MIXED_PRECISION = ("no", "fp16", "bf16")


def _require(ok: bool, msg: str) -> None:
    if not ok:
        raise ConfigError(msg)


@dataclass
class LoraSettings:
    """Which weights get low-rank adapters, and how large they are.

    `layers` restricts the adapters to some transformer blocks (None: all of them);
    the assessors adapt only the top blocks so the frozen bottom can be shared.
    """

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("query", "key", "value", "dense")
    layers: tuple[int, ...] | None = None
    layers_pattern: str = "layer"

    def __post_init__(self) -> None:
        _require(
            isinstance(self.r, int) and self.r > 0, f"LoraSettings.r must be a positive int, got {self.r!r}. Try 8."
        )
        _require(self.alpha > 0, f"LoraSettings.alpha must be > 0, got {self.alpha!r}. Try 2 * r.")
        _require(0.0 <= self.dropout < 1.0, f"LoraSettings.dropout must lie in [0, 1), got {self.dropout!r}.")
        self.target_modules = tuple(self.target_modules)
        _require(
            bool(self.target_modules), "LoraSettings.target_modules is empty. Name at least one module, e.g. 'query'."
        )
        if self.layers is not None:
            self.layers = tuple(int(i) for i in self.layers)
            _require(
                bool(self.layers) and min(self.layers) >= 0,
                f"LoraSettings.layers must be non-negative layer indices, got {self.layers!r}. Pass None for all.",
            )

    def to_peft(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            layers_to_transform=list(self.layers) if self.layers else None,
            layers_pattern=self.layers_pattern if self.layers else None,
            bias="none",
        )


@dataclass
class TrainConfig:
    """How one training run goes: schedule, batching, checkpoints, evaluation.

    `max_steps` (optimizer steps) wins over `epochs` when both are given.
    `checkpoint_every` and `eval_every` count optimizer steps; 0 turns them off
    (a final evaluation always runs when there is held-out data).
    """

    out_dir: str
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_grad_norm: float = 1.0
    eval_every: int = 0
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    seed: int = 0
    cpu: bool = False
    mixed_precision: str = "no"
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(bool(self.out_dir), "TrainConfig.out_dir is empty. Pass --out DIR.")
        _require(self.epochs > 0, f"epochs must be > 0, got {self.epochs!r}.")
        if self.max_steps is not None:
            _require(
                isinstance(self.max_steps, int) and self.max_steps > 0,
                f"max_steps must be a positive int, got {self.max_steps!r}. Omit it to train by epochs.",
            )
        for name in ("batch_size", "grad_accum", "keep_checkpoints"):
            value = getattr(self, name)
            _require(isinstance(value, int) and value >= 1, f"{name} must be an int >= 1, got {value!r}.")
        for name in ("eval_every", "checkpoint_every"):
            value = getattr(self, name)
            _require(
                isinstance(value, int) and value >= 0, f"{name} must be an int >= 0 (0 turns it off), got {value!r}."
            )
        _require(self.lr > 0, f"lr must be > 0, got {self.lr!r}. Try 5e-4 for LoRA.")
        _require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay!r}.")
        _require(0.0 <= self.warmup_ratio < 1.0, f"warmup_ratio must lie in [0, 1), got {self.warmup_ratio!r}.")
        _require(self.max_grad_norm > 0, f"max_grad_norm must be > 0, got {self.max_grad_norm!r}.")
        _require(
            self.mixed_precision in MIXED_PRECISION,
            f"mixed_precision must be one of {', '.join(MIXED_PRECISION)}, got {self.mixed_precision!r}.",
        )

    def hyperparameters(self) -> dict[str, Any]:
        """What the manifest records (paths and switches that do not change the result left out)."""
        out = asdict(self)
        for key in ("out_dir", "progress"):
            out.pop(key)
        return out
