"""Inter-passage conflict: which retrieved passages give different answers to the query."""

from ..methods import Method

METHOD = Method(
    "conflict",
    "passages that give different answers to the query",
    stages={"conflict": "ConflictAssessor"},
    config="ConflictConfig",
    exports={"ConflictScorer": "model", "shared_scorer": "model", "agreeing_clusters": "stage"},
)
__getattr__ = METHOD.exports_getattr(__name__)
