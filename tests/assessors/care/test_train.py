"""CARE's training data and the `train care` command (one process and two)."""

from __future__ import annotations

import pytest

pytest.importorskip("peft")


from .tiny import FACTS, pretrained, tiny_llama  # noqa: E402


@pytest.mark.slow
def test_train_care_cli_runs_both_stages_and_the_stage1_loss_falls(tmp_path, capsys, monkeypatch):
    import gzip
    import json

    from ragarbiter.assessors.care import train as care_train
    from ragarbiter.assessors.qa import held_out

    # A tiny LM knows nothing closed-book; say it knows every other question, so both halves exist.
    monkeypatch.setattr(
        care_train, "closed_book_labeller", lambda care, **_: lambda qa: [i % 2 == 0 for i in range(len(qa))]
    )

    from ragarbiter.assessors.care.model import CareModel
    from ragarbiter.cli.main import main
    from ragarbiter.lm import bpe_tokenizer

    texts = [t for _, _, t in FACTS]
    tok = bpe_tokenizer([*texts, "Context:\nQuestion: Answer:"], 300)
    base = pretrained(tok, [" " + t for t in texts], steps=40)
    base.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    data = tmp_path / "litm.jsonl.gz"
    with gzip.open(data, "wt", encoding="utf-8") as fh:
        for i, (question, answer, gold) in enumerate(FACTS):
            others = [{"title": "", "text": t, "isgold": False} for j, (_, _, t) in enumerate(FACTS) if j != i]
            fh.write(
                json.dumps(
                    {
                        "question": question,
                        "answers": [answer],
                        "ctxs": [{"title": "", "text": gold, "isgold": True}, *others],
                    }
                )
                + "\n"
            )
    common = [
        "--base-model",
        str(tmp_path / "base"),
        "--data",
        str(data),
        "--batch-size",
        "2",
        "--lr",
        "3e-2",
        "--no-progress",
        "--eval-fraction",
        "0.25",
        "--json",
    ]
    assert (
        main(["train", "care", "--stage", "pretrain", "--out", str(tmp_path / "s1"), "--max-steps", "24", *common]) == 0
    )
    run = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run"]
    assert run["final_train_loss"] < 0.7 * run["initial_train_loss"]
    assert (
        main(
            [
                "train",
                "care",
                "--stage",
                "finetune",
                "--init",
                str(tmp_path / "s1"),
                "--out",
                str(tmp_path / "s2"),
                "--max-steps",
                "4",
                *common,
            ]
        )
        == 0
    )
    manifest = json.loads((tmp_path / "s2" / "manifest.json").read_text())
    counts = manifest["examples"]
    assert counts == manifest["hyperparameters"]["examples"] and counts["reconstruct"] == 0
    assert counts["grounded"] > 0 and counts["misleading"] + counts["unhelpful"] > 0
    assert manifest["questions"]["count"] == sum(not held_out(q) for q, _, _ in FACTS)
    assert (tmp_path / "s2" / "care.json").is_file()
    from ragarbiter.lm import load_causal_lm

    model, tokenizer = load_causal_lm(str(tmp_path / "base"))
    care = CareModel.load(tmp_path / "s2", model, tokenizer)
    assert care.encode([FACTS[0][2]]).shape == (16, 48)  # one chunk, 16 memory tokens (the defaults)


def test_testbed_training_items_leave_the_held_out_questions_out():
    from ragarbiter.assessors.care.data import testbed_records as testbed_items
    from ragarbiter.assessors.qa import held_out
    from ragarbiter.synthetic import WorldConfig, build_world

    world = build_world(WorldConfig(seed=4, people=20, companies=4, cities=4, countries=2))
    asked = {q for q, *_ in testbed_items(world)}
    every = {i.question for i in world.qa_items()}
    assert asked == {q for q in every if not held_out(q)} and len(every - asked) > 0


@pytest.mark.slow
def test_two_process_cpu_accelerate_launch_trains_care(tmp_path, tokenizer):
    import gzip
    import json
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    launcher = Path(sys.executable).with_name("accelerate")
    launcher = str(launcher) if launcher.exists() else shutil.which("accelerate")
    if launcher is None:
        pytest.skip("accelerate not installed")
    tiny_llama(tokenizer).save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    data = tmp_path / "litm.jsonl.gz"
    with gzip.open(data, "wt", encoding="utf-8") as fh:
        for question, answer, gold in FACTS:
            fh.write(
                json.dumps(
                    {"question": question, "answers": [answer], "ctxs": [{"title": "", "text": gold, "isgold": True}]}
                )
                + "\n"
            )
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
        "care",
        "--stage",
        "pretrain",
        "--base-model",
        str(tmp_path / "base"),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "out"),
        "--cpu",
        "--max-steps",
        "2",
        "--batch-size",
        "1",
        "--eval-fraction",
        "0.25",
        "--no-progress",
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["run"]["processes"] == 2 and manifest["run"]["steps"] == 2
    assert (tmp_path / "out" / "care.json").is_file()
