"""The one runner of `bench` and `train` commands: --json, --plot, timing, tables and exit codes."""

from __future__ import annotations

import argparse
import json
import types
from pathlib import Path

from ragarbiter.cli import runner


def bench_module(**hooks) -> types.ModuleType:
    module = types.ModuleType("fake_bench", "A fake bench.\n\nIt measures nothing.")

    def add_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--n", type=int, default=2)

    module.add_arguments = add_arguments
    module.run = lambda args: {"n": args.n, "metric": {"f1": 0.5, "auroc": 0.75}, "rows": [{"a": 1}, {"a": 2}]}
    for name, fn in hooks.items():
        setattr(module, name, fn)
    return module


def parse(module: types.ModuleType, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="bench")
    runner.add_command(sub, "fake", "a fake bench", lambda: module, "bench", aliases=("fk",))
    return parser.parse_args(list(argv))


def test_json_holds_the_result_the_seconds_and_the_plots(tmp_path, capsys):
    drawn = tmp_path / "fig.png"
    module = bench_module(plot=lambda result, folder: [Path(folder) / "fig.png"])
    args = parse(module, "fk", "--n", "3", "--json", "--plot", str(tmp_path))
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["n"], out["metric"], out["plots"]) == (3, {"f1": 0.5, "auroc": 0.75}, [str(drawn)])
    assert isinstance(out["seconds"], float) and out["seconds"] >= 0.0


def test_without_json_a_table_of_the_flattened_result(capsys):
    args = parse(bench_module(), "fake")
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "metric.f1" in printed and "0.75" in printed and "2 records (see --json)" in printed
    assert runner.flatten({"a": {"b": 1, "c": [1, 2]}, "d": [{"x": 1}]}) == [
        ("a.b", 1),
        ("a.c", [1, 2]),
        ("d", "1 records (see --json)"),
    ]


def test_print_result_and_exit_code_hooks(capsys):
    module = bench_module(print_result=lambda result: print("custom", result["n"]), exit_code=lambda result: 1)
    args = parse(module, "fake")
    assert args.func(args) == 1
    assert capsys.readouterr().out.strip() == "custom 2"


def test_the_description_is_the_module_docstring():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="bench")
    runner.add_command(sub, "fake", "a fake bench", lambda: bench_module(), "bench")
    assert sub.choices["fake"].description == "A fake bench.\n\nIt measures nothing."
    assert not hasattr(parser.parse_args(["fake"]), "plot")  # --plot only where the bench draws
