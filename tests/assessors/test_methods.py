"""One declaration per method folder; the registry, the exports and the CLI derive from it."""

from __future__ import annotations

import dataclasses
import importlib

import pytest

import ragarbiter.assessors
from ragarbiter.assessors.methods import FOLDER, methods
from ragarbiter.cli.main import build_parser
from ragarbiter.registry import provided_stages, stage_factory

METHODS = sorted(methods())
CONTRACT = ("__init__.py", "config.py", "stage.py", "model.py", "data.py")


def test_every_method_folder_declares_itself():
    folders = sorted(p.name for p in FOLDER.iterdir() if (p / "__init__.py").is_file())
    assert METHODS == folders == ["attention_sort", "care", "conflict", "inappropriate", "poison", "rw_steering"]


@pytest.mark.parametrize("name", METHODS)
def test_a_method_folder_has_the_contract_files(name):
    missing = [f for f in CONTRACT if not (FOLDER / name / f).is_file()]
    assert not missing, f"{name} lacks {missing}"


@pytest.mark.parametrize("name", METHODS)
def test_each_stage_is_registered_from_its_declaration(name):
    method = methods()[name]
    for stage, cls in method.stages.items():
        assert provided_stages()[stage] == f"ragarbiter.assessors.{name}.stage:{cls}"
        factory = stage_factory(stage)
        assert factory is getattr(importlib.import_module(f"ragarbiter.assessors.{name}.stage"), cls)
        assert factory.name == stage


@pytest.mark.parametrize("name", METHODS)
def test_the_config_is_a_dataclass_and_every_export_resolves(name):
    method = methods()[name]
    package = importlib.import_module(f"ragarbiter.assessors.{name}")
    if method.config:
        config = getattr(package, method.config)
        assert dataclasses.is_dataclass(config) and config.__module__.endswith(f"{name}.config")
        assert getattr(ragarbiter.assessors, method.config) is config
    for export, module in method.exports.items():
        assert getattr(package, export) is getattr(importlib.import_module(f"{package.__name__}.{module}"), export)


def test_the_package_exports_are_the_stages_and_configs():
    expected = set()
    for method in methods().values():
        expected |= {*method.stages.values(), *([method.config] if method.config else []), *method.package_exports}
    assert set(ragarbiter.assessors.__all__) == expected
    assert {"ConflictAssessor", "PoisonFilter", "InappropriateFilter", "RWSteering", "CareGenerator"} <= expected


@pytest.mark.parametrize("kind", ["train", "bench"])
def test_train_and_bench_commands_exist_exactly_for_the_folders_that_have_them(kind):
    parser = build_parser()
    group = next(a for a in parser._subparsers._group_actions[0].choices[kind]._actions if a.dest == kind)
    for name in METHODS:
        has_module = (FOLDER / name / f"{kind}.py").is_file()
        assert (name in group.choices) == has_module, name
        for alias in methods()[name].aliases:
            assert (alias in group.choices) == has_module


def test_only_the_command_asked_for_is_imported():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from ragarbiter.cli.main import build_parser\n"
        "build_parser(['bench', 'conflict', '--help-not-parsed'])\n"
        "loaded = [m for m in sys.modules if m.startswith('ragarbiter.assessors.')"
        " and m.endswith(('.bench', '.train'))]\n"
        "print(sorted(loaded), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "['ragarbiter.assessors.conflict.bench'] False", out.stderr
