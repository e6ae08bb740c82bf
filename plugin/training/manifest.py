"""The JSON manifest that travels with every trained adapter.

It names the base model, every data file with its SHA-256, the hyperparameters and the
held-out metrics, so an adapter can be traced to exactly what produced it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ragarbiter.errors import InvalidInputError

MANIFEST = "manifest.json"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_files(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """`{"path", "name", "bytes", "sha256"}` for each data file."""
    out = []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            msg = f"Data file {str(p)!r} does not exist. Pass an existing file with --data."
            raise InvalidInputError(msg)
        out.append({"path": str(p), "name": p.name, "bytes": p.stat().st_size, "sha256": sha256_file(p)})
    return out


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("ragarbiter", "torch", "transformers", "peft", "accelerate", "sentence-transformers"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


def build_manifest(
    *,
    task: str,
    base_model: Mapping[str, Any],
    data: list[dict[str, Any]],
    hyperparameters: Mapping[str, Any],
    metrics: Mapping[str, Any],
    run: Mapping[str, Any],
    files: Iterable[str] = (),
) -> dict[str, Any]:
    return {
        "task": task,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "base_model": dict(base_model),
        "data": data,
        "hyperparameters": dict(hyperparameters),
        "metrics": dict(metrics),
        "run": dict(run),
        "files": sorted(files),
        "versions": library_versions(),
    }


def write_manifest(out_dir: str | Path, manifest: Mapping[str, Any]) -> Path:
    path = Path(out_dir) / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def read_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        msg = f"No {MANIFEST} in {str(folder)!r}. Pass a folder written by `ragarbiter train ...`."
        raise InvalidInputError(msg)
    return json.loads(path.read_text(encoding="utf-8"))
