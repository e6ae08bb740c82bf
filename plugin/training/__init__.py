"""The project's one trainer: LoRA through peft, devices and processes through accelerate.

Assessors (and later CARE, RW-Steering and the testbed) build a model and examples, then
hand them to `Trainer`, which adds checkpoints, `resume`, held-out evaluation, progress
bars and the adapter folder with its JSON manifest. Importing this package loads no
heavy dependency; torch, peft and accelerate are imported when used.
"""

from .config import LoraSettings, TrainConfig
from .lora import apply_lora, check_adapter_folder, load_adapter_into, load_heads, lora_deltas, save_adapter
from .manifest import describe_files, read_manifest, sha256_file, write_manifest
from .ship import ship_adapter
from .split import split_holdout
from .trainer import Trainer, TrainState

__all__ = [
    "LoraSettings",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "apply_lora",
    "check_adapter_folder",
    "describe_files",
    "load_adapter_into",
    "lora_deltas",
    "load_heads",
    "read_manifest",
    "save_adapter",
    "sha256_file",
    "ship_adapter",
    "split_holdout",
    "write_manifest",
]
