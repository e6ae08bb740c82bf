"""Sort stages: attention sorting with a local causal LM, and the model-free lost-in-the-middle reorder.

- `AttentionSorter` ("attention_sort"): most-attended passage last, by the attention a causal LM
  pays each passage, captured with the fused `segment_attention_mass` kernel.
- `LostInTheMiddleReorder` ("lost_in_the_middle"): most relevant passages at the two ends.
"""

from .reorder import LostInTheMiddleReorder, ends_first
from .sorter import AttentionSorter

__all__ = ["AttentionSorter", "LostInTheMiddleReorder", "ends_first"]
