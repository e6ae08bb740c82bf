"""One exception hierarchy for ragarbiter.

Every message names the bad value and ends with the fix. Errors that correspond to
a built-in category also subclass it (``ValueError``, ``ImportError``, ...), so
callers that already catch those keep working.
"""

from __future__ import annotations


class RagArbiterError(Exception):
    """Base class of every error ragarbiter raises on purpose."""


class ConfigError(RagArbiterError, ValueError):
    """A configuration value is out of range or of the wrong kind."""


class InvalidInputError(RagArbiterError, ValueError):
    """A user-supplied value (query, text, file) cannot be used as given."""


class EmptyQueryError(InvalidInputError):
    """The query is empty or only whitespace."""


class EmptyCorpusError(InvalidInputError):
    """A path or corpus holds nothing that can be indexed."""


class ShapeError(RagArbiterError, ValueError):
    """A tensor argument has the wrong shape, dtype or device."""


class MissingExtraError(RagArbiterError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, feature: str = "this feature") -> None:
        msg = (
            f"{feature} needs the optional package '{package}', which is not installed. "
            f"Install it with: pip install 'ragarbiter[{extra}]'"
        )
        super().__init__(msg)
        self.package = package
        self.extra = extra


class ModelNotFoundError(RagArbiterError, OSError):
    """A model id or path cannot be resolved (offline, or it does not exist)."""


class StoreError(RagArbiterError):
    """Base class of vector-store errors."""


class StoreLockedError(StoreError):
    """An embedded store folder is held by another process."""


class StoreUnreachableError(StoreError, ConnectionError):
    """A Qdrant server URL does not answer."""


class UnknownCollectionError(StoreError, KeyError):
    """The named collection does not exist in the store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DimensionMismatchError(StoreError, ValueError):
    """The encoder's dimension differs from the collection's."""


class RequestTooLargeError(InvalidInputError):
    """A request body is larger than the server accepts."""


class OverloadedError(RagArbiterError):
    """Every worker is busy and the queue in front of them is full: retry after a moment."""


class DeadlineExceededError(RagArbiterError, TimeoutError):
    """A request ran past its deadline, or its client went away; the work stopped where it was."""


def require(package: str, extra: str, feature: str = "this feature"):
    """Import an optional dependency or raise `MissingExtraError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise MissingExtraError(package, extra, feature) from exc
