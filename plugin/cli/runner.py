"""One runner for every `ragarbiter bench` and `ragarbiter train` command.

A command module (a method's `bench.py` / `train.py`, or one of the CLI's own `bench_<name>.py`)
defines ``add_arguments(parser)`` and ``run(args) -> dict``; a bench may also define
``plot(result, folder) -> list[Path]``, ``print_result(result)`` (its own human summary) and
``exit_code(result) -> int``. Its docstring is the command's description. The runner
adds ``--json`` (and ``--plot DIR`` where the bench draws), times the run, and prints either one
JSON object on the last line or a table of the result.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .common import add_json_arg, print_json


def add_command(
    sub, name: str, help: str, load: Callable[[], ModuleType] | None, kind: str, aliases: tuple[str, ...] = ()
) -> None:
    """Add `name` under `sub`; `load` (None: list it only) imports the module that implements it."""
    if load is None:  # another command was asked for: list this one without importing it
        sub.add_parser(name, help=help, aliases=aliases)
        return
    module = load()
    p = sub.add_parser(name, help=help, description=_description(module, help), aliases=aliases)
    module.add_arguments(p)
    if not any("--json" in action.option_strings for action in p._actions):
        add_json_arg(p)
    if kind == "bench" and hasattr(module, "plot"):
        p.add_argument("--plot", "--plots", dest="plot", metavar="DIR", help="also write the figures to this folder")
    p.set_defaults(func=functools.partial(run_bench if kind == "bench" else run_train, module))


def _description(module: ModuleType, fallback: str) -> str:
    doc = (module.__doc__ or "").strip()
    return doc or fallback


def run_bench(module: ModuleType, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    result = module.run(args)
    result.setdefault("seconds", round(time.perf_counter() - started, 1))
    if getattr(args, "plot", None):
        result["plots"] = [str(path) for path in module.plot(result, args.plot)]
    if args.json:
        print_json(result)
    elif hasattr(module, "print_result"):
        module.print_result(result)
    else:
        print_table(result)
    return module.exit_code(result) if hasattr(module, "exit_code") else 0


def run_train(module: ModuleType, args: argparse.Namespace) -> int:
    from ragarbiter.training.args import report

    return report(args, module.run(args))


def flatten(result: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as dotted keys; lists of numbers kept whole, longer lists of records counted."""
    rows: list[tuple[str, Any]] = []
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += flatten(value, f"{name}.")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            rows.append((name, f"{len(value)} records (see --json)"))
        else:
            rows.append((name, value))
    return rows


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", overflow="fold")
    for name, value in flatten(result):
        table.add_row(name, str(value))
    Console().print(table)
