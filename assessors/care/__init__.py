"""CARE: conflict-aware soft prompts from a LoRA context assessor.

`CareModel` holds both halves on one causal LM: the assessor (LoRA on, memory tokens,
projector) and the base LM (LoRA off) that reads the soft prompt instead of the passage.
`CareAssessor` (stage "care") fills `Context.soft_prompt`; `CareGenerator` answers from it.
`CareConfig` is the model's settings (saved with the assessor), `CareAssessorConfig` the stage's.
"""

from ..methods import Method

METHOD = Method(
    "care",
    "a soft prompt that tells the generator which context to trust",
    stages={"care": "CareAssessor"},
    config="CareAssessorConfig",
    exports={
        "CareConfig": "config",
        "CareGenerator": "stage",
        "CareModel": "model",
        "base_fingerprint": "model",
    },
    package_exports=("CareGenerator", "CareConfig"),
)
__getattr__ = METHOD.exports_getattr(__name__)
