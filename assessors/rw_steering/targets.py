"""The stage-1 target format, and its parser.

Stage 1 restructures what the model writes: first which numbered sentences are reliable,
then an answer drawn only from them::

    Reliable: 1, 3, 4
    Answer: Danielle Darrieux's mother tongue was French.

`parse_output` reads that back. Output that does not follow the format never raises: it comes
back with `ok=False` and the reason, so the stage can fall back safely and flag it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .mixture import Mixture

_RELIABLE = re.compile(r"^\s*reliable\s*:\s*(.*)$", re.IGNORECASE)
_ANSWER = re.compile(r"^\s*answer\s*:\s*(.*)$", re.IGNORECASE)


def stage1_target(mixture: Mixture) -> str:
    numbers = ", ".join(str(i) for i in mixture.reliable) or "none"
    return f"Reliable: {numbers}\nAnswer: {mixture.answer}"


def answer_only_target(mixture: Mixture) -> str:
    """The fine-tuned baseline's target: the answer alone."""
    return f"Answer: {mixture.answer}"


@dataclass(frozen=True)
class ParsedOutput:
    reliable: tuple[int, ...]
    answer: str
    ok: bool
    problem: str = ""


def answer_text(text: str) -> str:
    """The answer-only baseline's output: the first ``Answer:`` line's text, else the first line."""
    for line in text.splitlines():
        if m := _ANSWER.match(line):
            return m.group(1).strip()
    return text.split("\n")[0].strip()


def parse_output(text: str, n_sentences: int) -> ParsedOutput:
    """The reliable-sentence numbers and the answer; `ok=False` with the reason when malformed."""
    if not isinstance(text, str):
        return ParsedOutput((), "", False, f"output is a {type(text).__name__}, not text")
    reliable_line = answer = None
    for line in text.splitlines():
        if reliable_line is None and (m := _RELIABLE.match(line)):
            reliable_line = m.group(1).strip()
        elif answer is None and (m := _ANSWER.match(line)):
            answer = m.group(1).strip()
    if reliable_line is None:
        return ParsedOutput((), (answer or text).strip(), False, "no 'Reliable:' line")
    if reliable_line.casefold() in ("none", ""):
        numbers: list[int] = []
    else:
        parts = [p.strip() for p in re.split(r"[,\s]+", reliable_line) if p.strip()]
        if not all(p.isdigit() for p in parts):
            return ParsedOutput((), (answer or "").strip(), False, f"'Reliable:' holds non-numbers: {reliable_line!r}")
        numbers = [int(p) for p in parts]
    out_of_range = [k for k in numbers if not 1 <= k <= n_sentences]
    if out_of_range:
        return ParsedOutput(
            (), (answer or "").strip(), False, f"sentence numbers {out_of_range} are outside 1..{n_sentences}"
        )
    if answer is None:
        return ParsedOutput(tuple(sorted(set(numbers))), "", False, "no 'Answer:' line")
    return ParsedOutput(tuple(sorted(set(numbers))), answer, True)
