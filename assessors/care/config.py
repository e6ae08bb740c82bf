"""CARE settings: the model's (`CareConfig`: the soft prompt's size, the assessor's LoRA and the base
LM's prompt layout, saved with the assessor) and the stage's (`CareAssessorConfig`: which folders to load)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ragarbiter.errors import ConfigError


@dataclass(frozen=True)
class CareConfig:
    memory_tokens: int = 16
    chunk_tokens: int = 180
    lora_r: int = 8
    lora_alpha: int = 16
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    # The base LM's prompt: `context_prefix`, the soft prompt (or raw passage), then `question_template`.
    context_prefix: str = "Context:"
    question_template: str = "\nQuestion: {question}\nAnswer:"

    def __post_init__(self) -> None:
        if self.memory_tokens < 1 or self.chunk_tokens < 1:
            msg = (
                f"CareConfig needs memory_tokens >= 1 and chunk_tokens >= 1, got memory_tokens="
                f"{self.memory_tokens}, chunk_tokens={self.chunk_tokens}. The paper uses 16 and 180."
            )
            raise ConfigError(msg)

    def to_dict(self) -> dict:
        return {**asdict(self), "target_modules": list(self.target_modules)}


@dataclass
class CareAssessorConfig:
    """`care_dir`: a folder from `ragarbiter train care`; `base_model`: the local causal LM folder it
    was trained on (both, unless the stage is given a loaded `CareGenerator`); `device`: where to
    load the base LM (default: where transformers puts it)."""

    care_dir: str | None = None
    base_model: str | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        if (self.care_dir is None) != (self.base_model is None):
            given, missing = ("care_dir", "base_model") if self.base_model is None else ("base_model", "care_dir")
            msg = (
                f"CareAssessorConfig got {given}={getattr(self, given)!r} but no {missing}. Pass both care_dir= "
                "(from `ragarbiter train care`) and base_model= (the causal LM folder it was trained on), or "
                "neither with generator=."
            )
            raise ConfigError(msg)
        self.care_dir = str(self.care_dir) if self.care_dir is not None else None
        self.base_model = str(self.base_model) if self.base_model is not None else None
