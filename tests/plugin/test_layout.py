"""From the repository root, a bare import finds installed distributions, never the project's folders.

Python puts the current directory first on ``sys.path`` (``python -c``, ``python -m pytest``,
scripts run from the root), and the project's top-level folders are named like PyPI
distributions (``kernels`` is Hugging Face's kernel hub, which transformers imports while it
loads a model; ``adapters`` is another).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
FOLDERS = sorted(PACKAGE_DIRS.values())


def run_from_root(code: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_every_mapped_folder_is_a_top_level_folder():
    assert FOLDERS == ["adapters", "assessors", "kernels", "plugin", "retrievers"]
    assert all((ROOT / folder / "__init__.py").is_file() for folder in FOLDERS)


@pytest.mark.parametrize("folder", FOLDERS)
def test_a_bare_folder_name_does_not_import_the_folder(folder):
    code = (
        f"import importlib\n"
        f"try:\n"
        f"    module = importlib.import_module({folder!r})\n"
        f"except ModuleNotFoundError as exc:\n"
        f"    print('missing', exc.name)\n"
        f"else:\n"
        f"    print('found', module.__spec__.origin)\n"
    )
    kind, where = run_from_root(code).split(" ", 1)
    if kind == "missing":
        assert where == folder
    else:  # an installed distribution of that name
        assert not Path(where).resolve().is_relative_to(ROOT / folder), where


@pytest.mark.slow
def test_transformers_loads_its_kernels_package_while_ragarbiter_kernels_stays_ours():
    code = (
        "import sys, transformers.models.llama.modeling_llama\n"
        "import ragarbiter.kernels\n"
        "print(sys.modules['kernels'].__file__, ragarbiter.kernels.__file__, "
        "hasattr(sys.modules['kernels'], 'CUDAProperties'))"
    )
    installed, ours, has_hub_api = run_from_root(code).split()
    assert not Path(installed).resolve().is_relative_to(ROOT / "kernels"), installed
    assert Path(ours).resolve() == ROOT / "kernels" / "__init__.py"
    assert has_hub_api == "True"


def test_the_missing_name_error_points_at_the_ragarbiter_name():
    code = "try:\n    import assessors\nexcept ModuleNotFoundError as exc:\n    print(exc)\nelse:\n    print('found')"
    assert run_from_root(code).endswith("is ragarbiter's 'ragarbiter.assessors'; import it under that name")
