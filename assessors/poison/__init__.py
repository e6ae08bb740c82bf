"""Corpus-poisoning defence: planted near-duplicate groups, checked against the other evidence."""

from ..methods import Method

METHOD = Method(
    "poison",
    "planted groups of near-duplicates that other evidence contradicts",
    stages={"poison": "PoisonFilter"},
    config="PoisonConfig",
    exports={"SuspiciousGroup": "model", "judge_groups": "model", "tight_clusters": "model"},
)
__getattr__ = METHOD.exports_getattr(__name__)
