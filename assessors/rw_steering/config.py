"""RWSteering settings, and the mixture length the bench, the training and `ragarbiter mixtures` share."""

from __future__ import annotations

from dataclasses import dataclass

from ragarbiter.errors import ConfigError
from ragarbiter.synthetic.conditions import MIXTURE_SENTENCES

SENTENCES = MIXTURE_SENTENCES  # mixture length of the bench, the training and `ragarbiter mixtures`


@dataclass
class RWSteeringConfig:
    """`adapter`: a folder from `ragarbiter train rw`; `base_model`: the local causal LM it was trained
    on (both, unless the stage is given a loaded generator with the adapter on, `lm=`).
    `max_new_tokens`: room for the ``Reliable:`` list and the answer."""

    adapter: str | None = None
    base_model: str | None = None
    max_new_tokens: int = 160

    def __post_init__(self) -> None:
        if (self.adapter is None) != (self.base_model is None):
            given, missing = ("adapter", "base_model") if self.base_model is None else ("base_model", "adapter")
            msg = (
                f"RWSteeringConfig got {given}={getattr(self, given)!r} but no {missing}. Pass both adapter= (from "
                "`ragarbiter train rw`) and base_model= (the model it was trained on), or neither with lm=."
            )
            raise ConfigError(msg)
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            msg = (
                f"RWSteeringConfig.max_new_tokens must be a positive integer, got {self.max_new_tokens!r}. "
                "The reliable list and the answer need room: 160 fits 20 sentences."
            )
            raise ConfigError(msg)
        self.adapter = str(self.adapter) if self.adapter is not None else None
        self.base_model = str(self.base_model) if self.base_model is not None else None
