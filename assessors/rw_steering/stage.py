"""`RWSteering` (stage "rw_steering"): the tuned generator names the reliable sentences, and answers.

The passages are the numbered sentences. The generator writes ``Reliable: ...`` then
``Answer: ...``. Sentences it leaves out are dropped, each with the reason. The answer goes
to ``context.flags["answer"]``. Output that does not parse never raises: every passage is
kept, ``flags["rw_malformed"]`` says what was wrong, and the raw text is kept as the answer.
"""

from __future__ import annotations

import logging
import threading

from ragarbiter.errors import ConfigError
from ragarbiter.events import PassageFlagged
from ragarbiter.stage import Stage, drop, judge
from ragarbiter.types import Context, Judgement

from .targets import parse_output
from .train import rw_prompt

logger = logging.getLogger(__name__)


def with_adapter(lm, adapter: str, *, trainable: bool = False):
    """The loaded generator `lm` with the `train rw` adapter on (in eval mode unless `trainable`).
    peft injects the LoRA layers into `lm.model` in place, so use `lm` only through the returned
    object afterwards."""
    import dataclasses
    import warnings

    from peft import PeftModel

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        model = PeftModel.from_pretrained(lm.model, adapter, is_trainable=trainable)
    return dataclasses.replace(lm, model=model if trainable else model.eval())


class RWSteering(Stage):
    name = "rw_steering"

    def __init__(
        self, adapter: str | None = None, base_model: str | None = None, *, lm=None, max_new_tokens: int = 160
    ) -> None:
        if lm is None:
            if not (adapter and base_model):
                msg = (
                    "RWSteering needs adapter= (from `ragarbiter train rw`) and base_model= (the model it was "
                    "trained on), or lm= (a loaded testbed model with the adapter on)."
                )
                raise ConfigError(msg)
            from .train import load_generator

            lm = with_adapter(load_generator(base_model), adapter)
        self.lm = lm
        self.max_new_tokens = max_new_tokens
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
                max_new_tokens=self.max_new_tokens,
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
