"""Training-free poisoning signals: abnormally tight groups of near-duplicates, checked for conflict.

Corpus poisoning (PoisonedRAG and its kin) plants several passages written to be retrieved
for one question and to assert one false answer. They betray themselves twice: they are
paraphrases of each other, far closer than independent sources usually are, and their
claim conflicts with the rest of the evidence. A group needs both (or, with no
contradicting evidence, at least `min_cluster` copies) before anything happens to it.

A group holds near-copies that agree. Cosine alone cannot tell a planted copy from the source
it imitates ("designed by Viktor Lang" and "designed by Miriam Okafor" in one template are
near-duplicates), so two passages that name different answers (the judge's answer mismatch
reaches `PoisonConfig.answer_mismatch`) never share a group, as linked members or as absorbed
outsiders; and a passage whose conflict probability with any member reaches the threshold is never
in its family. A group so split below `min_cluster` is not suspicious, and its passages count as
independent evidence.

Only independent evidence convicts: a passage that is itself in a suspicious group cannot
convict another group. Otherwise two groups of restatements about different facts of one
entity (which a conflict model may read as disagreeing) would convict each other, and every
passage would go. Two groups that contradict each other are a dispute, and a passage that
contradicts every side of it takes none: it convicts a disputed group only when it agrees
with one of its rivals. Once a group is convicted, its looser relatives follow it: passages
close to the group on average, agreeing with every member, and contradicted by the same evidence.

The copies need not all be retrieved. With the store at hand, a lone passage whose store
holds `store_copies` or more near-duplicates of it (itself included) that do not conflict
with it for this query is judged like a group: its copies were written for another question,
or ranked lower, but the text was still planted many times over. Such a passage still counts
as independent evidence against the retrieved groups, and when it convicts one (and nothing
contradicts it) it is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .config import PoisonConfig


@dataclass(frozen=True)
class SuspiciousGroup:
    """Passage indices (rank order) of a tight group, and who contradicts it."""

    members: tuple[int, ...]
    tightness: float
    contradicted_by: tuple[int, ...] = ()
    conflict: float = 0.0
    family: tuple[int, ...] = ()  # looser relatives that agree with the group and share its contradiction
    stored: int = 0  # > 0: a lone passage with this many agreeing near-duplicates in the store (itself included)
    disputed_by: tuple[int, ...] = ()  # members of other retrieved groups that contradict this one


def rival_groups(clusters: list[list[int]], conflict: np.ndarray, threshold: float) -> list[list[list[int]]]:
    """For each cluster, the other clusters whose mean conflict with it reaches `threshold` (a dispute)."""
    return [[h for h in clusters if h is not c and float(conflict[np.ix_(c, h)].mean()) >= threshold] for c in clusters]


def mark_disputes(groups: list[SuspiciousGroup], conflict: np.ndarray, threshold: float) -> list[SuspiciousGroup]:
    """Each group with the members of the other groups whose mean conflict with it reaches `threshold`:
    two groups of copies that contradict each other are a dispute, which neither side's copies settle."""
    rivals = rival_groups([list(g.members) for g in groups], conflict, threshold)
    return [replace(g, disputed_by=tuple(i for h in hs for i in h)) for g, hs in zip(groups, rivals)]


def tight_clusters(
    sims: np.ndarray,
    similarity: float,
    min_size: int,
    apart: np.ndarray | None = None,
    apart_from: float = PoisonConfig.answer_mismatch,
) -> list[list[int]]:
    """Complete-linkage groups whose every pair has cosine >= `similarity`; only groups of `min_size`+.
    Each group then absorbs the passages whose mean cosine to its core reaches `similarity`.

    With `apart` ((n, n): how far two passages give different answers, e.g. the judge's answer
    mismatch), no two passages whose value reaches `apart_from` end up in one group: such clusters are
    never merged and such outsiders never absorbed, so near-copies that disagree split apart."""
    n = sims.shape[0]
    clash = apart >= apart_from if apart is not None else np.zeros((n, n), dtype=bool)  # (n, n)
    clusters = [[i] for i in range(n)]
    while len(clusters) > 1:
        best, pair = similarity, None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                link = sims[np.ix_(clusters[a], clusters[b])].min()
                if link >= best and not clash[np.ix_(clusters[a], clusters[b])].any():
                    best, pair = link, (a, b)
        if pair is None:
            break
        a, b = pair
        clusters[a] = sorted(clusters[a] + clusters[b])
        del clusters[b]
    groups = [c for c in clusters if len(c) >= min_size]
    taken = {i for c in groups for i in c}
    for c in groups:  # a planted family: outsiders as close to the group on average, and agreeing, join it
        core = list(c)
        for i in range(n):
            if i not in taken and sims[i, core].mean() >= similarity and not clash[i, c].any():
                c.append(i)
                taken.add(i)
        c.sort()
    return groups


def mean_pairwise(sims: np.ndarray, members: list[int]) -> float:
    n = len(members)
    if n < 2:
        return 1.0
    sub = sims[np.ix_(members, members)]
    return float((sub.sum() - np.trace(sub)) / (n * (n - 1)))


def judge_groups(
    sims: np.ndarray,
    conflict: np.ndarray | None,
    clusters: list[list[int]],
    conflict_threshold: float,
    family_similarity: float | None = None,
    independent: list[int] | None = None,
    rivals: list[list[list[int]]] | None = None,
) -> list[SuspiciousGroup]:
    """Attach to each tight group the independent passages that contradict it (mean conflict over
    its members) and, for a contradicted group, its family (see the module notes). `independent`
    defaults to the passages in no cluster. `rivals[k]`: the clusters in dispute with cluster k
    (`rival_groups`); a passage that contradicts all of them does not count against it either."""
    groups = []
    if independent is None:
        grouped = {i for c in clusters for i in c}
        independent = [o for o in range(sims.shape[0]) if o not in grouped]
    for k, members in enumerate(clusters):
        against: list[tuple[float, int]] = []
        if conflict is not None and independent:
            mean = conflict[np.ix_(members, independent)].mean(axis=0)  # (len(independent),)
            against = sorted(
                ((float(m), o) for m, o in zip(mean, independent) if m >= conflict_threshold), reverse=True
            )
            if rivals and rivals[k]:  # evidence against every side of a dispute takes none of them
                against = [
                    (m, o) for m, o in against if any(conflict[o, r].mean() < conflict_threshold for r in rivals[k])
                ]
        dissent = [o for _, o in against]
        family: list[int] = []
        if dissent and conflict is not None and family_similarity is not None:
            for o in independent:
                if o in dissent or sims[o, members].mean() < family_similarity:
                    continue
                if (
                    conflict[o, members].max() < conflict_threshold  # it conflicts with no member
                    and conflict[o, dissent].mean() >= conflict_threshold
                ):
                    family.append(o)
        groups.append(
            SuspiciousGroup(
                tuple(members),
                mean_pairwise(sims, members),
                tuple(dissent),
                against[0][0] if against else 0.0,
                tuple(family),
            )
        )
    return groups
