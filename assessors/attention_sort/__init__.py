"""Sort stages: attention sorting with a local causal LM, and the model-free lost-in-the-middle reorder.

- `AttentionSorter` ("attention_sort"): most-attended passage last, by the attention a causal LM
  pays each passage, captured with the fused `segment_attention_mass` kernel.
- `LostInTheMiddleReorder` ("lost_in_the_middle"): most relevant passages at the two ends.
"""

from ..methods import Method

METHOD = Method(
    "attention_sort",
    "passages ordered by the attention a causal LM pays them",
    stages={"attention_sort": "AttentionSorter", "lost_in_the_middle": "LostInTheMiddleReorder"},
    config="AttentionSortConfig",
    exports={"ends_first": "stage"},
    aliases=("attention-sort",),
)
__getattr__ = METHOD.exports_getattr(__name__)
