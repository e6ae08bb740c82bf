"""Readers for the public dataset formats the benchmarks and trainers take with `--data FILE`.

Each reader accepts any file of its format (not only the copies in a developer's
`shared/data`), and raises `InvalidInputError` naming the file and the expected format.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidInputError


@dataclass
class RetrievalItem:
    """A question, its answers, and the passages it comes with (gold ones marked)."""

    question: str
    answers: list[str]
    passages: list[str]
    gold: list[str] = field(default_factory=list)


def open_text(path: str | Path) -> io.TextIOBase:
    path = Path(path)
    if not path.exists():
        msg = f"Data file {str(path)!r} does not exist. Pass the path of a downloaded dataset file with --data."
        raise InvalidInputError(msg)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8", newline="")


def iter_jsonl(path: str | Path) -> Iterator[dict]:
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                msg = f"{path}:{lineno} is not valid JSON ({exc.msg}). Expected one JSON object per line."
                raise InvalidInputError(msg) from exc


def passage_text(ctx: dict) -> str:
    """LitM / DPR-style context -> indexed text ("title\\ntext" when a title is present)."""
    title, text = (ctx.get("title") or "").strip(), (ctx.get("text") or "").strip()
    return f"{title}\n{text}" if title else text


def read_litm(path: str | Path) -> list[RetrievalItem]:
    """Lost-in-the-Middle NQ-Open format: `question`, `answers[]`, `ctxs[{title, text, isgold}]`."""
    items = []
    for i, rec in enumerate(iter_jsonl(path)):
        if "question" not in rec or not isinstance(rec.get("ctxs"), list):
            msg = (
                f"{path}: record {i} lacks 'question' or 'ctxs'. Expected the Lost-in-the-Middle NQ-Open "
                f"format (question, answers[], ctxs[{{title, text, isgold}}])."
            )
            raise InvalidInputError(msg)
        passages = [passage_text(c) for c in rec["ctxs"]]
        gold = [passage_text(c) for c in rec["ctxs"] if c.get("isgold")]
        items.append(RetrievalItem(rec["question"], list(rec.get("answers") or []), passages, gold))
    return items


def read_synthwiki(path: str | Path) -> list[RetrievalItem]:
    """SynthWiki CSV: `context`, `question`, `answer`; the context is the gold passage."""
    with open_text(path) as fh:
        reader = csv.DictReader(fh)
        missing = {"context", "question", "answer"} - set(reader.fieldnames or [])
        if missing:
            msg = (
                f"{path}: missing CSV columns {sorted(missing)}. Expected SynthWiki columns context, question, answer."
            )
            raise InvalidInputError(msg)
        return [RetrievalItem(r["question"], [r["answer"]], [r["context"]], [r["context"]]) for r in reader]


def read_retrieval(path: str | Path) -> list[RetrievalItem]:
    """Pick the reader from the file name: `.csv` is SynthWiki, `.jsonl[.gz]` is LitM NQ-Open."""
    name = str(path).lower()
    if name.endswith(".csv") or name.endswith(".csv.gz"):
        return read_synthwiki(path)
    if name.endswith((".jsonl", ".jsonl.gz", ".json.gz")):
        return read_litm(path)
    msg = f"Unknown retrieval data format for {str(path)!r}. Pass a LitM .jsonl.gz or a SynthWiki .csv file."
    raise InvalidInputError(msg)
