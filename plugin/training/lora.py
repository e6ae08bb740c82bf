"""LoRA through peft, and the on-disk layout of a trained adapter.

An adapter folder holds peft's own files (`adapter_config.json`,
`adapter_model.safetensors`), a small `heads.safetensors` with the extra trained tensors
(projections, classifiers) and the `manifest.json`.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path

from ragarbiter.errors import InvalidInputError, ModelNotFoundError

from .config import LoraSettings

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
HEADS = "heads.safetensors"


def apply_lora(model, settings: LoraSettings):
    """Wrap `model` with trainable LoRA weights; everything else is frozen."""
    from peft import get_peft_model

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(model, settings.to_peft())
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    logger.info(
        "LoRA r=%d on %s (layers %s): %d trainable parameters",
        settings.r,
        ",".join(settings.target_modules),
        settings.layers or "all",
        trainable,
    )
    return peft_model


def save_adapter(folder: str | Path, peft_model, heads: Mapping[str, object], base_model: str) -> list[str]:
    """Write the peft adapter and the extra tensors; return the file names written."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(folder))
    (folder / "README.md").unlink(missing_ok=True)  # peft's model-card stub; the manifest says more
    config_path = folder / ADAPTER_CONFIG
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_model  # a name, not this machine's path
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tensors = {name: t.detach().cpu().contiguous() for name, t in heads.items()}
    save_file(tensors, str(folder / HEADS))
    return [ADAPTER_CONFIG, ADAPTER_WEIGHTS, HEADS]


def check_adapter_folder(folder: str | Path) -> Path:
    folder = Path(folder)
    missing = [name for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS, HEADS) if not (folder / name).is_file()]
    if missing:
        msg = (
            f"Adapter folder {str(folder)!r} lacks {', '.join(missing)}. "
            f"Pass a folder written by `ragarbiter train ...`, or omit it to use the shipped default."
        )
        raise ModelNotFoundError(msg)
    return folder


def load_adapter_into(model, folder: str | Path, *, merge: bool = True):
    """Load the peft adapter in `folder` onto `model` (merged into its weights by default)."""
    from peft import PeftModel

    folder = check_adapter_folder(folder)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = PeftModel.from_pretrained(model, str(folder))
    return peft_model.merge_and_unload() if merge else peft_model


def load_heads(folder: str | Path) -> dict[str, object]:
    from safetensors.torch import load_file

    folder = check_adapter_folder(folder)
    try:
        return load_file(str(folder / HEADS))
    except Exception as exc:
        msg = f"{folder / HEADS} cannot be read ({exc}). Re-train the adapter with `ragarbiter train ...`."
        raise InvalidInputError(msg) from exc


LORA_PREFIX = "base_model.model."


def lora_deltas(folder: str | Path) -> dict[str, object] | None:
    """The weight change each adapted linear layer gets when the adapter in `folder` is merged:
    ``{module name: scale * B @ A}`` (float32), read from peft's own files without importing peft.

    This is the inference path: a process that only runs the shipped adapters never pays peft's
    import. It reads plain LoRA (optionally rank-stabilised), the only kind `ragarbiter train`
    writes; for anything else (DoRA, per-module rank or alpha patterns, LoRA biases, fan-in-fan-out
    layers) it returns None and the caller merges with peft (`load_adapter_into`). Tests check that
    both merges give the same weights.
    """
    import math

    from safetensors.torch import load_file

    folder = check_adapter_folder(folder)
    config = json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    plain = (
        config.get("peft_type") == "LORA"
        and not config.get("use_dora")
        and not config.get("rank_pattern")
        and not config.get("alpha_pattern")
        and config.get("bias", "none") == "none"
        and not config.get("lora_bias")
        and not config.get("fan_in_fan_out")
        and not config.get("modules_to_save")
    )
    if not plain:
        return None
    r, alpha = int(config["r"]), float(config["lora_alpha"])
    scale = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r
    tensors = load_file(str(folder / ADAPTER_WEIGHTS))
    deltas = {}
    for key, a in tensors.items():
        if not key.endswith(".lora_A.weight"):
            continue
        name = key[: -len(".lora_A.weight")]
        b = tensors.get(f"{name}.lora_B.weight")
        if b is None or not name.startswith(LORA_PREFIX):
            return None
        deltas[name[len(LORA_PREFIX) :]] = scale * (b.float() @ a.float())
    if len(deltas) * 2 != len(tensors):
        return None  # tensors this reader does not know (embeddings, magnitudes, ...)
    return deltas
