"""Keep the repository's top-level folders from shadowing installed packages.

Each top-level folder (``plugin``, ``retrievers``, ``assessors``, ``adapters``, ``kernels``)
is installed as a sub-package of ``ragarbiter``. Python puts the current directory (or the
script's folder) first on ``sys.path``, so from the repository root ``import kernels``
would find the folder before the installed distribution of that name (Hugging Face
``kernels``, which transformers imports while loading any model). Each folder's
``__init__.py`` therefore checks the name it was imported under: under its own
``ragarbiter.*`` name it runs as usual; under a bare name it calls `hand_over`, which loads
the installed distribution in its place, or fails as if the folder were not there.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from importlib.machinery import ModuleSpec


def _is_own_folder(spec: ModuleSpec, root: str) -> bool:
    """Whether `spec` is one of the folders (or files) directly under `root`."""
    places = [spec.origin] if spec.origin else []
    places += list(spec.submodule_search_locations or [])
    own = {
        os.path.join(root, spec.name),
        os.path.join(root, spec.name, "__init__.py"),
        os.path.join(root, spec.name + ".py"),
    }
    return any(os.path.realpath(p) in own for p in places if p)


def installed_spec(name: str, root: str) -> ModuleSpec | None:
    """The spec `import name` would find if `root` (which holds the project folders) were not on ``sys.path``."""
    path = [p for p in sys.path if os.path.realpath(p or os.curdir) != root]
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        spec = find_spec(name, path if finder is importlib.machinery.PathFinder else None)
        if spec is not None and not _is_own_folder(spec, root):
            return spec
    return None


def hand_over(name: str, own_name: str) -> None:
    """Make the module being imported as `name` the installed distribution of that name.

    Called from a top-level folder's ``__init__.py`` while Python imports it under its bare
    folder name. The import statement returns whatever ``sys.modules[name]`` holds once the
    ``__init__`` finishes, so the caller gets the installed package. `own_name` is the folder's
    name inside ragarbiter, for the error when nothing else is installed under `name`.
    """
    folder = os.path.dirname(os.path.realpath(sys.modules[name].__file__))
    root = os.path.dirname(folder)  # where the folder was found: the checkout, whatever ragarbiter's install
    spec = installed_spec(name, root)
    if spec is None:
        msg = f"No module named {name!r}: the folder {folder} is ragarbiter's {own_name!r}; import it under that name"
        raise ModuleNotFoundError(msg, name=name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    if spec.loader is not None:
        spec.loader.exec_module(module)
