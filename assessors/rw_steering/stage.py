"""`RWSteering` (stage "rw_steering"): the tuned generator names the reliable sentences, and answers.

The passages are the numbered sentences. The generator writes ``Reliable: ...`` then
``Answer: ...``. Sentences it leaves out are dropped, each with the reason. The answer goes
to ``context.flags["answer"]``. Output that does not parse never raises: every passage is
kept, ``flags["rw_malformed"]`` says what was wrong, and the raw text is kept as the answer.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ragarbiter.config import with_overrides
from ragarbiter.errors import ConfigError
from ragarbiter.events import PassageFlagged
from ragarbiter.stage import Stage, drop, judge
from ragarbiter.types import Context, Judgement

from .config import RWSteeringConfig, adapter_folder, base_model_folder
from .data import parse_output, rw_prompt

logger = logging.getLogger(__name__)


class RWSteering(Stage):
    name = "rw_steering"

    def __init__(self, config: RWSteeringConfig | None = None, *, lm=None, **overrides: Any) -> None:
        """`lm`: a loaded generator with the adapter on (`ragarbiter.lm.CausalLM`); without it the
        stage loads `adapter` (default: the shipped one) onto `base_model` (default: the model the
        adapter's rw.json names, else the default generator). `overrides`: any `RWSteeringConfig`
        field (`adapter`, `base_model`, `max_new_tokens`)."""
        self.config = with_overrides(RWSteeringConfig, config, overrides, type(self))
        if lm is not None and (self.config.adapter or self.config.base_model):
            msg = "RWSteering got both lm= and adapter=/base_model=; pass a loaded generator or the two folders."
            raise ConfigError(msg)
        if lm is None:
            from ..generators import load_generator
            from .model import with_adapter

            adapter = adapter_folder(self.config.adapter)  # checked before the base model is loaded
            lm = with_adapter(load_generator(base_model_folder(adapter, self.config.base_model)), str(adapter))
        self.lm = lm
        self._lock = threading.Lock()

    def generate(self, context: Context) -> str:
        import torch

        tok = self.lm.tokenizer
        prompt = rw_prompt(
            context.query, [p.text for p in context.passages], [p.source or "" for p in context.passages]
        )
        enc = tok((tok.bos_token or "") + prompt, return_tensors="pt", add_special_tokens=False)
        with self._lock, torch.inference_mode():
            ids = self.lm.model.generate(
                **enc,
                max_new_tokens=self.config.max_new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
        return tok.decode(ids[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip()

    def _run(self, context: Context) -> Context:
        if not context.passages:
            return context
        text = self.generate(context)
        parsed = parse_output(text, len(context.passages))
        if not parsed.ok:
            logger.warning("%s: malformed output (%s); every passage kept", self.name, parsed.problem)
            return context.evolve(
                flags={"rw_malformed": parsed.problem, "answer": parsed.answer or text, "rw_output": text}
            )
        keep = set(parsed.reliable)
        judgements, events, to_drop = [], [], {}
        for number, passage in enumerate(context.passages, start=1):
            if number in keep:
                judgements.append(
                    Judgement(
                        self.name,
                        passage.id,
                        "reliable",
                        1.0,
                        f"sentence [{number}] is in the generator's reliable list",
                    )
                )
                continue
            reason = f"sentence [{number}] is not in the generator's reliable list ({parsed.reliable or 'none'})"
            judgements.append(Judgement(self.name, passage.id, "inappropriate", 1.0, reason))
            events.append(
                PassageFlagged(stage=self.name, passage_id=passage.id, label="inappropriate", score=1.0, reason=reason)
            )
            to_drop[passage.id] = reason
        out = judge(context, judgements, events, flags={"answer": parsed.answer, "rw_output": text})
        return drop(out, to_drop, self.name) if to_drop else out
