"""Without its framework, an adapter fails on import with the extra to install."""

from __future__ import annotations

import importlib
import sys

import pytest

from ragarbiter.errors import MissingExtraError


@pytest.mark.parametrize(
    ("module", "framework", "extra"),
    [
        ("ragarbiter.adapters.langchain", "langchain_core", "langchain"),
        ("ragarbiter.adapters.llama_index", "llama_index", "llamaindex"),
        ("ragarbiter.adapters.server", "fastapi", "serve"),
    ],
)
def test_a_missing_framework_names_the_extra(monkeypatch, module, framework, extra):
    for name in [n for n in sys.modules if n == framework or n.startswith(framework + ".")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, framework, None)
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(MissingExtraError) as info:
        importlib.import_module(module)
    assert f"pip install 'ragarbiter[{extra}]'" in str(info.value)
    assert isinstance(info.value, ImportError)


def test_the_adapters_package_imports_without_any_framework(monkeypatch):
    for name in [n for n in sys.modules if n.startswith(("langchain_core", "llama_index", "fastapi"))]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "ragarbiter.adapters", raising=False)
    adapters = importlib.import_module("ragarbiter.adapters")
    assert adapters.__name__ == "ragarbiter.adapters"
