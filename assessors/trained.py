"""Which questions an adapter was trained on, so that a bench can score only the others.

A trained adapter's manifest lists them under "questions" (`qa.question_digest` of each, sorted).
Older manifests do not; for those the digests are recomputed from the training files the manifest
names, when each is still at its recorded path (relative paths are read from the current folder)
with its recorded SHA-256. Every record's question counts, held-out ones included: a bench then
leaves out at worst a few questions too many, never one the adapter saw. When neither is possible
the check is unavailable (None), and a warning says why.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

logger = logging.getLogger(__name__)

DIGEST = "sha1-12 of qa.question_key"  # how manifests name the digest of their "questions"
DIGESTS = (DIGEST, "sha1-12 of question_key")  # the names this module can compare against
QUESTION_FIELDS = ("question", "query", "Question")  # LitM / ConflictQA, RGB, Poisoned Context Testbed pools
T = TypeVar("T")


@dataclass(frozen=True)
class TrainedCheck:
    """The digests of an adapter's training questions, or (None) why they cannot be known."""

    adapter: Path
    digests: frozenset[str] | None
    source: str = ""  # "manifest" or "data files"; the reason the check is unavailable when digests is None

    def trained_on(self, question: str) -> bool:
        """Whether the adapter saw `question` in training (False when the check is unavailable)."""
        from .qa import question_digest

        return self.digests is not None and question_digest(question) in self.digests

    def unseen(self, items: Sequence[T], question: Callable[[T], str], limit: int | None = None) -> tuple[list[T], int]:
        """The first `limit` (default: all) items whose question the adapter was not trained on, and how
        many trained ones were passed over on the way."""
        kept: list[T] = []
        passed = 0
        for item in items:
            if limit is not None and len(kept) >= limit:
                break
            if self.trained_on(question(item)):
                passed += 1
            else:
                kept.append(item)
        return kept, passed


def trained_questions(adapter_dir: str | Path) -> set[str] | None:
    """The `qa.question_digest` of every question the adapter in `adapter_dir` was trained on; None
    (with a logged warning) when neither its manifest nor its training files can tell."""
    digests = check_trained(adapter_dir).digests
    return None if digests is None else set(digests)


def check_trained(adapter_dir: str | Path) -> TrainedCheck:
    """`trained_questions` with where the digests came from, or why the check is unavailable."""
    from ragarbiter.errors import InvalidInputError
    from ragarbiter.training.manifest import MANIFEST

    folder = Path(adapter_dir)
    path = folder / MANIFEST
    if not path.is_file():
        return _unavailable(folder, f"it has no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        msg = f"{path} is not valid JSON ({exc.msg}). Pass an adapter folder written by `ragarbiter train ...`."
        raise InvalidInputError(msg) from exc
    if "questions" in manifest:
        return _from_manifest(folder, manifest["questions"])
    return _from_data_files(folder, manifest.get("data") or [])


def _unavailable(folder: Path, why: str) -> TrainedCheck:
    reason = (
        f"cannot tell which questions the adapter {str(folder)!r} was trained on: {why}. Every question is "
        f"scored, seen in training or not"
    )
    logger.warning("%s.", reason)
    return TrainedCheck(folder, None, reason)


def _from_manifest(folder: Path, questions) -> TrainedCheck:
    from ragarbiter.errors import InvalidInputError

    values = questions.get("values") if isinstance(questions, dict) else None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        msg = (
            f"{folder / 'manifest.json'}: 'questions' must be an object whose 'values' is a list of question "
            f"digests, got {str(questions)[:80]!r}. Retrain the adapter, or delete the key to recompute it from "
            f"the training files."
        )
        raise InvalidInputError(msg)
    digest = questions.get("digest", DIGEST)
    if digest not in DIGESTS:
        return _unavailable(folder, f"its manifest lists question digests of an unknown kind ({digest!r})")
    return TrainedCheck(folder, frozenset(values), "manifest")


def _from_data_files(folder: Path, data: list) -> TrainedCheck:
    from ragarbiter.training.manifest import sha256_file

    from .qa import question_digest

    if not data:
        return _unavailable(folder, "its manifest lists neither its questions nor its training files")
    digests: set[str] = set()
    for entry in data:
        path = Path(str(entry.get("path", ""))) if isinstance(entry, dict) else Path()
        if not path.is_file():
            return _unavailable(
                folder, f"its manifest lists no questions, and the training file {str(path)!r} is not there"
            )
        if sha256_file(path) != entry.get("sha256"):
            return _unavailable(
                folder, f"its manifest lists no questions, and the training file {str(path)!r} has changed since"
            )
        found = {question_digest(q) for q in questions_in(path)}
        if not found:
            return _unavailable(folder, f"the training file {str(path)!r} holds no question field")
        digests |= found
    return TrainedCheck(folder, frozenset(digests), "data files")


def questions_in(path: str | Path) -> Iterator[str]:
    """The question of every record in a training file: SynthWiki .csv, a JSON list (testbed pools),
    or JSONL (LitM NQ-Open, ConflictQA, RGB); records without one are skipped."""
    from ragarbiter.datasets import iter_jsonl, open_text, read_synthwiki

    from .files import load_json

    name = str(path).lower()
    if name.endswith((".csv", ".csv.gz")):
        yield from (item.question for item in read_synthwiki(path))
        return
    with open_text(path) as fh:
        head = fh.read(4096).lstrip()
    records = load_json(path, list, "a JSON list of records") if head.startswith("[") else iter_jsonl(path)
    for rec in records:
        question = next((rec[k] for k in QUESTION_FIELDS if isinstance(rec, dict) and k in rec), None)
        if isinstance(question, str) and question.strip():
            yield question


def add_unseen_arguments(p: argparse.ArgumentParser, adapter: str) -> None:
    """`--unseen-only` (the default) / `--include-trained`; `adapter` says whose training questions count."""
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--unseen-only",
        dest="unseen_only",
        action="store_true",
        default=True,
        help=f"score only questions {adapter} was not trained on, by its manifest (default)",
    )
    group.add_argument(
        "--include-trained",
        dest="unseen_only",
        action="store_false",
        help=f"also score the questions {adapter} was trained on",
    )


def unseen_report(check: TrainedCheck | None) -> dict:
    """The bench result's `unseen_only` (None: asked for, but unavailable) and the warning saying why."""
    if check is None:
        return {"unseen_only": False}
    if check.digests is None:
        return {"unseen_only": None, "warning": check.source}
    return {"unseen_only": True, "trained_questions_from": check.source}
