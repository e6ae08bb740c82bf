"""The wheel ships every sub-package, and the public surface is pinned."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import ragarbiter

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {
    "plugin": "ragarbiter",
    "retrievers": "ragarbiter/retrievers",
    "assessors": "ragarbiter/assessors",
    "adapters": "ragarbiter/adapters",
    "kernels": "ragarbiter/kernels",
}


def expected_packages() -> set[str]:
    out = set()
    for folder, target in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            if "__pycache__" not in rel.parts:
                out.add(str(Path(target) / rel) if str(rel) != "." else target)
    return out


def test_every_folder_with_an_init_ends_up_in_the_wheel(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    [wheel] = tmp_path.glob("ragarbiter-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {str(Path(n).parent) for n in names if n.endswith("/__init__.py")}
    missing = expected_packages() - shipped
    assert not missing, f"packages missing from the wheel: {sorted(missing)}"
    assert "ragarbiter/retrievers/store.py" in names and "ragarbiter/cli/main.py" in names
    for stage in (
        "conflict",
        "poison",
        "inappropriate",
    ):  # the shipped adapters, without which the default pipeline fails
        for part in ("manifest.json", "adapter_config.json", "adapter_model.safetensors", "heads.safetensors"):
            assert f"ragarbiter/assessors/{stage}/default/{part}" in names


def test_public_names_are_pinned():
    assert sorted(ragarbiter.__all__) == sorted(
        [
            "DEFAULT_STAGES",
            "ChunkConfig",
            "ConflictDetected",
            "Context",
            "ContextReordered",
            "DroppedPassage",
            "EncoderConfig",
            "Event",
            "EventSink",
            "JsonlSink",
            "Judgement",
            "ListSink",
            "LoggingSink",
            "Passage",
            "PassageDropped",
            "PassageFlagged",
            "PassagesRetrieved",
            "Pipeline",
            "RetrieverConfig",
            "ServerLimits",
            "SoftPromptBuilt",
            "Stage",
            "StageTimed",
            "StoreConfig",
            "__version__",
            "build_stage",
            "content_id",
            "default_pipeline",
            "default_post_stages",
            "errors",
            "register_stage",
        ]
    )
    for name in ragarbiter.__all__:
        assert hasattr(ragarbiter, name), name


@pytest.mark.parametrize(
    "module",
    [
        "ragarbiter",
        "ragarbiter.stage",
        "ragarbiter.types",
        "ragarbiter.events",
        "ragarbiter.registry",
        "ragarbiter.config",
    ],
)
def test_core_imports_no_other_sub_package(module):
    code = (
        f"import sys, {module}\n"
        "bad = [m for m in sys.modules if m.split('.')[:2] in (['ragarbiter','retrievers'], ['ragarbiter','assessors'],"
        " ['ragarbiter','adapters'], ['ragarbiter','kernels'])]\n"
        "heavy = [m for m in ('torch', 'transformers', 'qdrant_client', "
        "'langchain_core', 'llama_index') if m in sys.modules]\n"
        "print(bad, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
    assert out == "[] []"
