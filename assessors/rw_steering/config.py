"""RWSteering settings, the shipped adapters, and the mixture length the bench, the training and
`ragarbiter mixtures` share."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ragarbiter.errors import ConfigError, ModelNotFoundError
from ragarbiter.synthetic.conditions import MIXTURE_SENTENCES

logger = logging.getLogger(__name__)

SENTENCES = MIXTURE_SENTENCES  # mixture length of the bench, the training and `ragarbiter mixtures`
#: The adapters shipped in the package: RW-Steering's (the stage's and `bench rw`'s default), and
#: the answer-only fine-tune `bench rw` compares it with. Each holds a `train rw` folder (rw.json).
SHIPPED = Path(__file__).resolve().parent / "shipped"
SHIPPED_ANSWER_ONLY = Path(__file__).resolve().parent / "shipped_answer_only"
TRAIN_COMMAND = "ragarbiter train rw --base-model smollm2-135m-instruct --data POOL.json --stage 1 --out DIR"


@dataclass
class RWSteeringConfig:
    """`adapter`: a folder from `ragarbiter train rw` (default: the one shipped in the package,
    `SHIPPED`); `base_model`: the causal LM it was trained on, a folder or a packaged name such as
    ``smollm2-135m-instruct`` (default: the one the adapter's rw.json names, else the default
    generator). Neither goes with `lm=`, a loaded generator with the adapter on.
    `max_new_tokens`: room for the ``Reliable:`` list and the answer."""

    adapter: str | None = None
    base_model: str | None = None
    max_new_tokens: int = 160

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            msg = (
                f"RWSteeringConfig.max_new_tokens must be a positive integer, got {self.max_new_tokens!r}. "
                "The reliable list and the answer need room: 160 fits 20 sentences."
            )
            raise ConfigError(msg)
        self.adapter = str(self.adapter) if self.adapter is not None else None
        self.base_model = str(self.base_model) if self.base_model is not None else None


def adapter_folder(adapter: str | Path | None) -> Path:
    """`adapter`, or the shipped RW-Steering adapter when None; a clear error when there is none."""
    if adapter is None:
        folder = SHIPPED
        if not (folder / "rw.json").is_file():
            msg = (
                f"RWSteering needs adapter= (a folder from `ragarbiter train rw`): no adapter is shipped at "
                f"{folder}. Train one with `{TRAIN_COMMAND}` and pass adapter=DIR (base_model= defaults to the "
                "model its rw.json names), or lm= (a loaded generator with the adapter on)."
            )
            raise ConfigError(msg)
    else:
        folder = Path(adapter).expanduser()
    if not (folder / "adapter_config.json").is_file():
        msg = (
            f"RWSteering adapter={str(adapter or folder)!r} holds no LoRA adapter (no adapter_config.json). "
            f"Pass a folder written by `{TRAIN_COMMAND}`."
        )
        raise ModelNotFoundError(msg)
    return folder


def recorded_base_model(adapter: str | Path) -> str | None:
    """The base model the adapter's rw.json names (None without one)."""
    path = Path(adapter) / "rw.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("base_model") or None


def base_model_folder(adapter: str | Path, base_model: str | None = None) -> Path:
    """The local folder of `base_model`, else of the model the adapter's rw.json names, else of the
    default generator (`ragarbiter.lm.resolve_generator`: a folder, or a packaged name converted once)."""
    from ragarbiter.lm.generator import resolve_generator, resolve_recorded

    recorded = recorded_base_model(adapter)
    if base_model is not None:
        folder = resolve_generator(base_model)
        if recorded and Path(recorded).name != folder.name and recorded != base_model:
            logger.warning("the adapter %s was trained on %s, not on %s", adapter, recorded, base_model)
        return folder
    return resolve_recorded(recorded, f"The adapter in {adapter}", "its rw.json")
