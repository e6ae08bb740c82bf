"""RW-Steering: a generator fine-tuned to name the reliable sentences of a mixed context first.

Mixed-context prompts (`mixture`), the stage-1 target format and its parser (`targets`), a
Rescorla-Wagner model of how competing context signals drive the answer (`rw`), the two-stage
LoRA fine-tuning (`train`) and the `RWSteering` stage.
"""

from ..methods import Method

METHOD = Method(
    "rw_steering",
    "a generator that names the reliable sentences of a mixed context, then answers from them",
    stages={"rw_steering": "RWSteering"},
    aliases=("rw",),
    exports={
        "POSITIONS": "mixture",
        "Mixture": "mixture",
        "build_mixtures": "mixture",
        "from_context_set": "mixture",
        "from_pool_record": "mixture",
        "read_mixtures": "mixture",
        "read_pool": "mixture",
        "reposition": "mixture",
        "world_mixtures": "mixture",
        "write_jsonl": "mixture",
        "fit_rw": "rw",
        "predict_quality": "rw",
        "ParsedOutput": "targets",
        "answer_only_target": "targets",
        "parse_output": "targets",
        "stage1_target": "targets",
    },
)
__getattr__ = METHOD.exports_getattr(__name__)
