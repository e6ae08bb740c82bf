"""RW-Steering: a generator fine-tuned to name the reliable sentences of a mixed context first.

Mixed-context prompts, the stage-1 target format and its parser (`data`), the adapter loading and
the adapted Rescorla-Wagner model of how competing context signals drive the answer (`model`),
a correctness metric that checks polarity (`correctness`), the two-stage LoRA fine-tuning
(`train`), the behaviour curves and their RW fits (`bench`, `plots`) and the `RWSteering` stage.
"""

from ..methods import Method

METHOD = Method(
    "rw_steering",
    "a generator that names the reliable sentences of a mixed context, then answers from them",
    stages={"rw_steering": "RWSteering"},
    config="RWSteeringConfig",
    aliases=("rw",),
    exports={
        "POSITIONS": "data",
        "check_proportions": "data",
        "Mixture": "data",
        "build_mixtures": "data",
        "from_context_set": "data",
        "from_pool_record": "data",
        "read_mixtures": "data",
        "read_pool": "data",
        "reposition": "data",
        "world_mixtures": "data",
        "write_jsonl": "data",
        "ParsedOutput": "data",
        "answer_only_target": "data",
        "parse_output": "data",
        "stage1_target": "data",
        "rw_prompt": "data",
        "is_correct": "correctness",
        "polarity_f1": "correctness",
        "fit_rw": "model",
        "predict_quality": "model",
        "with_adapter": "model",
    },
)
__getattr__ = METHOD.exports_getattr(__name__)
