"""CARE settings: the model's (`CareConfig`: the soft prompt's size, the assessor's LoRA and the base
LM's prompt layout, saved with the assessor) and the stage's (`CareAssessorConfig`: which folders to load)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ragarbiter.errors import ConfigError, ModelNotFoundError

#: The CARE assessor shipped in the package: the stage's and `bench care`'s default (a folder with care.json).
SHIPPED = Path(__file__).resolve().parent / "shipped"
TRAIN_COMMAND = (
    "`ragarbiter train care --base-model smollm2-135m-instruct --stage pretrain --data ... --out DIR1`, "
    "then `--stage finetune --init DIR1 --data ... --out DIR2`"
)
PROMPTS = ("auto", "chat", "plain")
ALL_PROJ = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: LoRA (rank, alpha, target modules) per architecture (`config.model_type`), as the CARE reference
#: trains them: Llama-3-8B-Instruct, Mistral-7B-Instruct-v0.2 and Qwen3-8B. SmolLM2 is a Llama.
LORA_DEFAULTS: dict[str, tuple[int, int, tuple[str, ...]]] = {
    "llama": (64, 128, ("q_proj", "v_proj")),
    "mistral": (512, 32, ("q_proj", "v_proj")),
    "qwen2": (8, 16, ALL_PROJ),
    "qwen3": (8, 16, ALL_PROJ),
}
LORA_FALLBACK = (8, 16, ("q_proj", "k_proj", "v_proj", "o_proj"))


@dataclass(frozen=True)
class CareConfig:
    """`lora_r`, `lora_alpha`, `target_modules`: None takes the base architecture's default
    (`LORA_DEFAULTS`). `prompt`: the base LM's prompt, "chat" (the tokenizer's chat template, the
    same prompt the plain generator answers with), "plain" (`context_prefix`, the soft prompt, then
    `question_template`) or "auto" (chat when the tokenizer has a template). `passages`: passages
    per soft prompt in training, and the most the stage encodes at inference unless told otherwise."""

    memory_tokens: int = 16
    chunk_tokens: int = 180
    lora_r: int | None = None
    lora_alpha: int | None = None
    target_modules: tuple[str, ...] | None = None
    prompt: str = "auto"
    passages: int = 1
    # The plain prompt: `context_prefix`, the soft prompt (or raw passage), then `question_template`.
    context_prefix: str = "Context:"
    question_template: str = "\nQuestion: {question}\nAnswer:"

    def __post_init__(self) -> None:
        if self.memory_tokens < 1 or self.chunk_tokens < 1:
            msg = (
                f"CareConfig needs memory_tokens >= 1 and chunk_tokens >= 1, got memory_tokens="
                f"{self.memory_tokens}, chunk_tokens={self.chunk_tokens}. The paper uses 16 and 180."
            )
            raise ConfigError(msg)
        if self.prompt not in PROMPTS:
            raise ConfigError(f"CareConfig.prompt={self.prompt!r} must be one of {PROMPTS}.")
        if self.passages < 1:
            raise ConfigError(f"CareConfig.passages must be >= 1, got {self.passages}. The paper uses 1.")
        for name in ("lora_r", "lora_alpha"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(
                    f"CareConfig.{name} must be a positive int or None (per architecture), got {value!r}."
                )
        if self.target_modules is not None:
            modules = tuple(m.strip() for m in self.target_modules if m.strip())
            if not modules:
                raise ConfigError("CareConfig.target_modules is empty. Name modules, e.g. q_proj,v_proj, or pass None.")
            object.__setattr__(self, "target_modules", modules)

    def resolve(self, model_type: str, chat: bool) -> CareConfig:
        """Every per-architecture and per-tokenizer default filled in (what is saved with the assessor)."""
        r, alpha, modules = LORA_DEFAULTS.get(model_type, LORA_FALLBACK)
        return replace(
            self,
            lora_r=self.lora_r or r,
            lora_alpha=self.lora_alpha or alpha,
            target_modules=self.target_modules or modules,
            prompt=("chat" if chat else "plain") if self.prompt == "auto" else self.prompt,
        )

    def to_dict(self) -> dict:
        modules = list(self.target_modules) if self.target_modules is not None else None
        return {**asdict(self), "target_modules": modules}

    @classmethod
    def from_dict(cls, values: dict) -> CareConfig:
        """A saved config; keys older assessors lack take their old defaults (a plain prompt, one passage)."""
        values = {**values}
        if values.get("target_modules") is not None:
            values["target_modules"] = tuple(values["target_modules"])
        values.setdefault("prompt", "plain")
        return cls(**values)


@dataclass
class CareAssessorConfig:
    """`care_dir`: a folder from `ragarbiter train care` (default: the one shipped in the package,
    `SHIPPED`); `base_model`: the causal LM it was trained on, a folder or a packaged name such as
    ``smollm2-135m-instruct`` (default: the one its care.json names). Neither goes with a loaded
    `CareGenerator`. `device`: where to load the base LM (default: where transformers puts it);
    `passages`: the most passages encoded into one soft prompt (None: as many as the assessor was
    trained with, `CareConfig.passages`)."""

    care_dir: str | None = None
    base_model: str | None = None
    device: str | None = None
    passages: int | None = None

    def __post_init__(self) -> None:
        if self.passages is not None and self.passages < 1:
            msg = f"CareAssessorConfig.passages must be >= 1 or None (as trained), got {self.passages}."
            raise ConfigError(msg)
        self.care_dir = str(self.care_dir) if self.care_dir is not None else None
        self.base_model = str(self.base_model) if self.base_model is not None else None


def shipped_care_dir() -> Path | None:
    """The shipped CARE folder (`SHIPPED`) when it holds an assessor, else None."""
    return SHIPPED if (SHIPPED / "care.json").is_file() else None


def not_shipped(folder: str | Path, use: str) -> str:
    """The error when nothing is shipped at `folder`: how to train an assessor, and to pass it with `use`."""
    return (
        f"No CARE assessor is shipped in this package ({folder} holds no care.json). Train one with "
        f"{TRAIN_COMMAND}, and pass its folder with {use}."
    )


def care_folder(care_dir: str | Path | None) -> Path:
    """`care_dir` (checked for a care.json), or the shipped assessor when None; a clear error otherwise."""
    if care_dir is None:
        found = shipped_care_dir()
        if found is None:
            use = "care_dir=DIR (base_model= defaults to the model its care.json names), or pass generator="
            raise ConfigError(not_shipped(SHIPPED, use))
        return found
    folder = Path(care_dir).expanduser()
    if not (folder / "care.json").is_file():
        raise ModelNotFoundError(
            f"care_dir={str(care_dir)!r} holds no CARE assessor (no care.json). Pass a folder written by "
            f"{TRAIN_COMMAND}."
        )
    return folder


def care_base_model(care_dir: str | Path, base_model: str | Path | None = None) -> Path:
    """The local folder of `base_model`, else of the model the assessor's care.json names
    (`ragarbiter.lm.resolve_generator`: a folder, or a packaged name converted once)."""
    from ragarbiter.lm.generator import resolve_generator, resolve_recorded

    if base_model is not None:
        return resolve_generator(base_model)
    meta = json.loads((Path(care_dir) / "care.json").read_text(encoding="utf-8"))
    return resolve_recorded(meta.get("base_model"), f"The CARE assessor in {care_dir}", "its care.json")
