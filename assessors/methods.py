"""Methods register once: each folder under `ragarbiter.assessors` declares itself in its `__init__.py`.

    METHOD = Method(
        "conflict",
        "passages that give different answers to the query",
        stages={"conflict": "ConflictAssessor"},
        config="ConflictConfig",
    )
    __getattr__ = METHOD.exports_getattr(__name__)

Everything else is derived from these declarations, so adding a method means adding a folder:

- the stage registry (`ragarbiter.build_stage(name)`) builds each stage class from `<folder>/stage.py`;
- `ragarbiter.assessors.<Name>` and `ragarbiter.assessors.<folder>.<Name>` resolve the stage
  classes, the config class (`<folder>/config.py`) and the `exports` the method lists;
- `ragarbiter train <folder>` exists when `<folder>/train.py` does, and `ragarbiter bench <folder>`
  when `<folder>/bench.py` does. Each defines ``add_arguments(parser)`` and ``run(args) -> dict``.

Declarations import nothing heavy: a folder's modules (and torch) load when a name is used.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

PACKAGE = "ragarbiter.assessors"
FOLDER = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Method:
    """One method folder: its stages (registry name -> class in `stage.py`), config class and exports.

    `exports` maps further public names of the folder to the module that defines them; those
    named in `package_exports` are also public at `ragarbiter.assessors.<Name>`.
    """

    name: str
    summary: str
    stages: Mapping[str, str] = field(default_factory=dict)
    config: str | None = None
    exports: Mapping[str, str] = field(default_factory=dict)
    package_exports: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # other names of its `train` / `bench` commands

    @property
    def public(self) -> dict[str, str]:
        """Public name -> the folder's module that defines it."""
        names = dict.fromkeys(self.stages.values(), "stage")
        if self.config:
            names[self.config] = "config"
        return {**names, **self.exports}

    def module(self, part: str) -> ModuleType:
        return importlib.import_module(f"{PACKAGE}.{self.name}.{part}")

    def exports_getattr(self, package: str) -> Callable[[str], Any]:
        """A module `__getattr__` for the folder's package that loads public names on first use."""

        def __getattr__(name: str) -> Any:
            if name in self.public:
                return getattr(self.module(self.public[name]), name)
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)

        return __getattr__


@functools.cache
def methods() -> dict[str, Method]:
    """Every method folder's declaration, by folder name."""
    found = {}
    for info in sorted(pkgutil.iter_modules([str(FOLDER)]), key=lambda i: i.name):
        if info.ispkg:
            declared = getattr(importlib.import_module(f"{PACKAGE}.{info.name}"), "METHOD", None)
            if isinstance(declared, Method):
                found[declared.name] = declared
    return found


def stage_table() -> dict[str, str]:
    """Registry name -> ``"module:Class"`` for every method's stages."""
    return {stage: f"{PACKAGE}.{m.name}.stage:{cls}" for m in methods().values() for stage, cls in m.stages.items()}


def export_table() -> dict[str, str]:
    """Public name -> module, for `ragarbiter.assessors.<Name>`: stage and config classes, and `package_exports`."""
    table = {}
    for m in methods().values():
        shared = {*m.stages.values(), *([m.config] if m.config else []), *m.package_exports}
        table.update({name: f"{PACKAGE}.{m.name}.{part}" for name, part in m.public.items() if name in shared})
    return table
