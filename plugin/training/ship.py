"""Package a trained adapter folder for shipping: half-precision weights, portable paths, held-out figures.

`ship_adapter(src, dst, held_out=...)` copies the files an adapter folder holds (not its
checkpoints), stores floating-point tensors in float16 (LoRA deltas and small heads lose nothing
that matters at inference and take half the room), replaces absolute or relative paths of the
machine that trained it by file names, and adds to the manifest the held-out figures measured
with the adapter and the digest of every shipped file. Loading casts the weights back to the
model's dtype (`load_state_dict` copies across dtypes).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ragarbiter.errors import InvalidInputError

from .manifest import MANIFEST, sha256_file, write_manifest

DTYPES = ("float16", "bfloat16", "float32")
# Values that name files on the training machine.
PATH_KEYS = ("init", "path", "data", "pools", "base_model_name_or_path")


def _portable(value: Any, key: str = "") -> Any:
    """`value` with the file paths under `PATH_KEYS` reduced to their names."""
    if isinstance(value, Mapping):
        return {k: _portable(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_portable(v, key) for v in value]
    if isinstance(value, str) and key in PATH_KEYS and ("/" in value or "\\" in value):
        return Path(value).name
    return value


def ship_adapter(
    src: str | Path,
    dst: str | Path,
    *,
    held_out: Mapping[str, Any] | None = None,
    recipe: Mapping[str, Any] | None = None,
    dtype: str = "float16",
) -> Path:
    """Write the shippable copy of adapter folder `src` to `dst` (replaced if it exists) and return it.
    `held_out`: figures measured with the adapter on data no choice looked at; `recipe`: how it was made
    (the commands of earlier stages, whose own manifests are not shipped)."""
    import torch
    from safetensors.torch import load_file, save_file

    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if not (src / MANIFEST).is_file():
        raise InvalidInputError(f"{src} holds no {MANIFEST}; pass a folder written by `ragarbiter train ... --out`.")
    if dtype not in DTYPES:
        raise InvalidInputError(f"dtype={dtype!r} is not one of {DTYPES}; float16 halves the size.")
    if dst.resolve() == src.resolve():
        raise InvalidInputError(f"ship_adapter would overwrite its source {src}; pass another destination.")
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    target = getattr(torch, dtype)
    files = sorted(p for p in src.iterdir() if p.is_file())
    for path in files:
        if path.suffix == ".safetensors":
            tensors = load_file(str(path))
            cast = {k: v.to(target) if v.is_floating_point() else v for k, v in tensors.items()}
            save_file(cast, str(dst / path.name), metadata={"format": "pt"})
        elif path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            (dst / path.name).write_text(json.dumps(_portable(data), indent=2) + "\n", encoding="utf-8")
        else:
            shutil.copy2(path, dst / path.name)
    manifest = json.loads((dst / MANIFEST).read_text(encoding="utf-8"))
    manifest["shipped"] = {
        "dtype": dtype,
        "files": {p.name: sha256_file(p) for p in sorted(dst.iterdir()) if p.name != MANIFEST},
    }
    if held_out is not None:
        manifest["held_out"] = dict(held_out)
    if recipe is not None:
        manifest["recipe"] = dict(recipe)
    write_manifest(dst, manifest)
    return dst
