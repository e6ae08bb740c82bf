"""Two CPU processes under `accelerate launch`, training the real conflict adapter for a few steps."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.assessors.tiny_data import write_litm

ACCELERATE = Path(sys.executable).with_name("accelerate")


@pytest.mark.skipif(not ACCELERATE.exists() and shutil.which("accelerate") is None, reason="accelerate not installed")
@pytest.mark.slow
def test_two_process_cpu_accelerate_launch_trains_and_writes_one_manifest(tmp_path):
    data = write_litm(tmp_path / "litm.jsonl")
    out = tmp_path / "adapter"
    launcher = str(ACCELERATE) if ACCELERATE.exists() else shutil.which("accelerate")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [
        launcher,
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "ragarbiter.cli.main",
        "train",
        "conflict",
        "--data",
        str(data),
        "--out",
        str(out),
        "--cpu",
        "--max-steps",
        "2",
        "--batch-size",
        "1",
        "--max-length",
        "48",
        "--checkpoint-every",
        "1",
        "--eval-fraction",
        "0.25",
        "--no-progress",
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run"]["processes"] == 2
    assert manifest["run"]["steps"] == 2
    assert (out / "adapter_model.safetensors").is_file() and (out / "heads.safetensors").is_file()
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-0000001"]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["run"]["processes"] == 2
