"""CARE settings: the soft prompt's size, the assessor's LoRA, and the base LM's prompt layout."""

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
