"""RW-Steering: mixed-context prompts, the stage-1 target format and its parser, a Rescorla–Wagner
model of how competing context signals drive the answer, the two-stage LoRA fine-tuning
(`train.train_rw`) and the `RWSteering` stage (`stage.RWSteering`, imported on use).
"""

from .mixture import (
    POSITIONS,
    Mixture,
    build_mixtures,
    from_context_set,
    from_pool_record,
    read_mixtures,
    read_pool,
    reposition,
    world_mixtures,
    write_jsonl,
)
from .rw import fit_rw, predict_quality
from .targets import ParsedOutput, answer_only_target, parse_output, stage1_target

__all__ = [
    "POSITIONS",
    "Mixture",
    "ParsedOutput",
    "answer_only_target",
    "build_mixtures",
    "fit_rw",
    "from_context_set",
    "from_pool_record",
    "parse_output",
    "predict_quality",
    "read_mixtures",
    "read_pool",
    "reposition",
    "stage1_target",
    "world_mixtures",
    "write_jsonl",
]
