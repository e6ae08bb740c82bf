"""CARE: conflict-aware soft prompts from a LoRA context assessor (work in progress).

`CareModel` holds both halves on one causal LM: the assessor (LoRA on, memory tokens,
projector) and the base LM (LoRA off) that reads the soft prompt instead of the passage.
The stage, the generator wrappers and the training CLI are not built yet.
"""

from .model import CareConfig, CareModel, base_fingerprint

__all__ = ["CareConfig", "CareModel", "base_fingerprint"]
