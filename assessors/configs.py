"""Settings every adapter-backed assessor shares (light: no torch, so configs and CLIs import it freely)."""

from __future__ import annotations

from dataclasses import dataclass

from ragarbiter.errors import ConfigError


@dataclass
class AssessorConfig:
    """Settings every adapter-backed stage shares.

    `adapter`: a folder written by `ragarbiter train <what>` (None: the shipped default).
    `threshold`: the probability from which the stage acts (0.5 is the trained operating point).
    """

    adapter: str | None = None
    threshold: float = 0.5
    device: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 < float(self.threshold) < 1.0:
            msg = (
                f"{type(self).__name__}.threshold must lie in (0, 1), got "
                f"{self.threshold!r}. 0.5 is the trained operating point."
            )
            raise ConfigError(msg)
        if self.adapter is not None:
            self.adapter = str(self.adapter)
