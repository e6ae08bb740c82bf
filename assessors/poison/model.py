"""Training-free poisoning signals: abnormally tight groups of near-duplicates, checked for conflict.

Corpus poisoning (PoisonedRAG and its kin) plants several passages written to be retrieved
for one question and to assert one false answer. They betray themselves twice: they are
paraphrases of each other, far closer than independent sources usually are, and their
claim conflicts with the rest of the evidence. A group needs both (or, with no
contradicting evidence, at least `min_cluster` copies) before anything happens to it.

Only independent evidence convicts: a passage that is itself in a suspicious group cannot
convict another group. Otherwise two groups of restatements about different facts of one
entity (which a conflict model may read as disagreeing) would convict each other, and every
passage would go. Once a group is convicted, its looser relatives follow it: passages close
to the group on average, agreeing with it, and contradicted by the same evidence.

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


def mark_disputes(groups: list[SuspiciousGroup], conflict: np.ndarray, threshold: float) -> list[SuspiciousGroup]:
    """Each group with the members of the other groups whose mean conflict with it reaches `threshold`:
    two groups of copies that contradict each other are a dispute, which neither side's copies settle."""
    out = []
    for g in groups:
        rivals = [
            h.members
            for h in groups
            if h is not g and float(conflict[np.ix_(g.members, h.members)].mean()) >= threshold
        ]
        out.append(replace(g, disputed_by=tuple(i for members in rivals for i in members)))
    return out


def tight_clusters(sims: np.ndarray, similarity: float, min_size: int) -> list[list[int]]:
    """Complete-linkage groups whose every pair has cosine >= `similarity`; only groups of `min_size`+.
    Each group then absorbs the passages whose mean cosine to its core reaches `similarity`."""
    clusters = [[i] for i in range(sims.shape[0])]
    while len(clusters) > 1:
        best, pair = similarity, None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                link = sims[np.ix_(clusters[a], clusters[b])].min()
                if link >= best:
                    best, pair = link, (a, b)
        if pair is None:
            break
        a, b = pair
        clusters[a] = sorted(clusters[a] + clusters[b])
        del clusters[b]
    groups = [c for c in clusters if len(c) >= min_size]
    taken = {i for c in groups for i in c}
    for c in groups:  # a planted family: outsiders as close to the group on average join it
        core = list(c)
        for i in range(sims.shape[0]):
            if i not in taken and sims[i, core].mean() >= similarity:
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
) -> list[SuspiciousGroup]:
    """Attach to each tight group the independent passages that contradict it (mean conflict over
    its members) and, for a contradicted group, its family (see the module notes). `independent`
    defaults to the passages in no cluster."""
    groups = []
    if independent is None:
        grouped = {i for c in clusters for i in c}
        independent = [o for o in range(sims.shape[0]) if o not in grouped]
    for members in clusters:
        against: list[tuple[float, int]] = []
        if conflict is not None and independent:
            mean = conflict[np.ix_(members, independent)].mean(axis=0)  # (len(independent),)
            against = sorted(
                ((float(m), o) for m, o in zip(mean, independent) if m >= conflict_threshold), reverse=True
            )
        dissent = [o for _, o in against]
        family: list[int] = []
        if dissent and conflict is not None and family_similarity is not None:
            for o in independent:
                if o in dissent or sims[o, members].mean() < family_similarity:
                    continue
                if (
                    conflict[o, members].mean() < conflict_threshold
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
