"""Imports flow one way: the import contracts in pyproject.toml hold, and they cover every package.

import-linter reads the source tree of one package, so the test lays the project's folders out
as the installed `ragarbiter` package (the `package-dir` mapping) in a temporary folder and runs
`lint-imports` on it. Imports inside functions count as much as those at the top of a module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONTRACTS = {c["id"]: c for c in PYPROJECT["tool"]["importlinter"]["contracts"]}


def lay_out_package(dst: Path) -> Path:
    for package, folder in PYPROJECT["tool"]["setuptools"]["package-dir"].items():
        target = dst.joinpath(*package.split("."))
        for source in (ROOT / folder).rglob("*.py"):
            rel = source.relative_to(ROOT / folder)
            if "__pycache__" not in rel.parts:
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, target / rel)
    return dst


def lint_imports(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(lint), str(ROOT / "pyproject.toml")], cwd=tree, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return lay_out_package(tmp_path_factory.mktemp("layers"))


def test_the_import_contracts_hold(tree):
    done = lint_imports(tree)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "3 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("kernels/maxsim.py", "def _upward():\n    from ragarbiter.assessors import text\n", "layers"),
        ("assessors/text.py", "from ragarbiter.testbed import harness\n", "layers"),
        ("training/trainer.py", "from ragarbiter.assessors.backbone import TRAINED_SPECS\n", "layers"),
        ("types.py", "from ragarbiter.lm import render_prompt\n", "core"),
        ("assessors/poison/data.py", "from ragarbiter.assessors.care.data import testbed_items\n", "methods"),
    ],
)
def test_an_upward_import_breaks_a_contract(tmp_path, module, line, broken):
    tree = lay_out_package(tmp_path)
    with (tree / "ragarbiter" / module).open("a") as f:
        f.write("\n" + line)
    done = lint_imports(tree)
    assert done.returncode == 1, done.stdout[-3000:]
    assert f"{CONTRACTS[broken]['name']} BROKEN" in " ".join(done.stdout.split())


def test_every_package_and_core_module_is_under_a_contract():
    plugin = ROOT / "plugin"
    packages = {p.name for p in plugin.iterdir() if (p / "__init__.py").is_file()}
    packages |= {name.split(".")[1] for name in PYPROJECT["tool"]["setuptools"]["package-dir"] if "." in name}
    layered = {name.strip() for layer in CONTRACTS["layers"]["layers"] for name in layer.split("|")}
    assert packages == layered
    core = {f"ragarbiter.{p.stem}" for p in plugin.glob("*.py") if p.name != "__init__.py"}
    assert core == set(CONTRACTS["core"]["source_modules"])
    assert set(CONTRACTS["core"]["forbidden_modules"]) == {f"ragarbiter.{name}" for name in layered}
    methods = {p.name for p in (ROOT / "assessors").iterdir() if (p / "__init__.py").is_file()}
    assert {m.rsplit(".", 1)[1] for m in CONTRACTS["methods"]["modules"]} == methods
