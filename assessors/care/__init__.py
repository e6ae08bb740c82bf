"""CARE: conflict-aware soft prompts from a LoRA context assessor.

`CareModel` holds both halves on one causal LM: the assessor (LoRA on, memory tokens,
projector) and the base LM (LoRA off) that reads the soft prompt instead of the passage.
`CareAssessor` (stage "care") fills `Context.soft_prompt`; `CareGenerator` answers from it.
"""

from .model import CareConfig, CareModel, base_fingerprint
from .stage import CareAssessor, CareGenerator

__all__ = ["CareAssessor", "CareConfig", "CareGenerator", "CareModel", "base_fingerprint"]
