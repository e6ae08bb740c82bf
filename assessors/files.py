"""Reading whole-file JSON datasets with errors that name the file and the expected shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ragarbiter.datasets import open_text
from ragarbiter.errors import InvalidInputError


def load_json(path: str | Path, expected: type, what: str) -> Any:
    """Parse `path` as one JSON value of type `expected` (`what` describes the format for errors)."""
    with open_text(path) as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            msg = f"{path} is not valid JSON ({exc.msg}). Expected {what}."
            raise InvalidInputError(msg) from exc
    if not isinstance(data, expected):
        msg = f"{path} holds a JSON {type(data).__name__}; expected {what}."
        raise InvalidInputError(msg)
    return data
