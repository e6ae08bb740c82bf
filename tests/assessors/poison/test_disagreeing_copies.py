"""Only near-copies that agree share a group: a passage that conflicts with a group is never dropped with it."""

import numpy as np
import pytest

from ragarbiter import Context
from ragarbiter.assessors.poison import PoisonFilter, tight_clusters
from tests.assessors.poison.test_poison import EIFFEL, EIFFEL_LOOSE, HOLM, OTHER, QUERY, FakeScorer, passages

# -- tight_clusters on hand-made matrices ------------------------------------------------------------


def uniform(n: int, cosine: float) -> np.ndarray:
    sims = np.full((n, n), cosine)
    np.fill_diagonal(sims, 1.0)
    return sims


def conflicts(n: int, pairs: dict[tuple[int, int], float], base: float = 0.05) -> np.ndarray:
    out = np.full((n, n), base)
    np.fill_diagonal(out, 0.0)
    for (i, j), p in pairs.items():
        out[i, j] = out[j, i] = p
    return out


def test_a_near_copy_that_conflicts_with_the_rest_is_not_in_their_group():
    sims = uniform(5, 0.9)
    conflict = conflicts(5, {(2, k): 0.8 for k in (0, 1, 3, 4)})
    assert tight_clusters(sims, 0.75, 3) == [[0, 1, 2, 3, 4]]  # cosine alone groups all five
    assert tight_clusters(sims, 0.75, 3, conflict, 0.3) == [[0, 1, 3, 4]]


def test_one_conflicting_pair_is_enough_to_keep_two_passages_apart():
    sims = uniform(4, 0.9)
    conflict = conflicts(4, {(0, 3): 0.3})  # reaches the threshold: never in one group
    [group] = tight_clusters(sims, 0.75, 3, conflict, 0.3)
    assert len(group) == 3 and not {0, 3} <= set(group)
    assert tight_clusters(sims, 0.75, 3, conflict, 0.31) == [[0, 1, 2, 3]]


def absorbable() -> np.ndarray:
    """A core 0..2 at cosine 0.95; outsiders 3 and 4 at 0.9 from 0 and 1 but 0.7 from 2 (and 0.5 from each
    other): mean 0.83 to the core, so absorbed, never linked."""
    sims = uniform(5, 0.95)
    for outsider in (3, 4):
        sims[outsider, :2] = sims[:2, outsider] = 0.9
        sims[outsider, 2] = sims[2, outsider] = 0.7
    sims[3, 4] = sims[4, 3] = 0.5
    return sims


def test_the_absorb_step_takes_an_agreeing_outsider_but_not_a_conflicting_one():
    sims = absorbable()
    assert tight_clusters(sims, 0.75, 3) == [[0, 1, 2, 3, 4]]
    conflict = conflicts(5, {(4, 1): 0.6})  # outsider 4 conflicts with one member of the core
    assert tight_clusters(sims, 0.75, 3, conflict, 0.3) == [[0, 1, 2, 3]]


def test_an_outsider_is_not_absorbed_when_it_conflicts_with_an_earlier_absorbed_one():
    sims = absorbable()
    conflict = conflicts(5, {(3, 4): 0.9})  # each agrees with the core, not with each other
    assert tight_clusters(sims, 0.75, 3, conflict, 0.3) == [[0, 1, 2, 3]]


def test_a_group_split_below_min_cluster_is_not_suspicious():
    sims = uniform(4, 0.9)
    conflict = conflicts(4, {(i, j): 0.7 for i in (0, 1) for j in (2, 3)})  # two pairs of agreeing copies
    assert tight_clusters(sims, 0.75, 3) == [[0, 1, 2, 3]]
    assert tight_clusters(sims, 0.75, 3, conflict, 0.3) == []
    assert tight_clusters(sims, 0.75, 2, conflict, 0.3) == [[0, 1], [2, 3]]


# -- the stage -----------------------------------------------------------------------------------------


class CountingScorer(FakeScorer):
    def __init__(self):
        self.calls = 0

    def pair_probabilities(self, query, texts):
        self.calls += 1
        return super().pair_probabilities(query, texts)


def test_the_judge_is_not_asked_when_cosine_finds_no_group(encoder):
    scorer = CountingScorer()
    ps = passages([EIFFEL[0], HOLM, OTHER, EIFFEL_LOOSE])
    out = PoisonFilter(encoder=encoder, scorer=scorer)(Context.for_query(QUERY, ps))
    assert (scorer.calls, out.passages, out.judgements) == (0, tuple(ps), ())
    PoisonFilter(encoder=encoder, scorer=scorer)(Context.for_query(QUERY, passages([*EIFFEL, HOLM, OTHER])))
    assert scorer.calls == 1  # a candidate group: one call, before the grouping


# Eiffel's template with Holm's answer: a near-copy of the planted texts by cosine (>= 0.83 to each).
HOLM_IN_EIFFELS_WORDS = (
    "Fun fact: the Kestrel Bay lighthouse was designed by Margit Holm in 1868, and its iron lantern came "
    "from a Paris workshop.",
    "harbour-history",
)
# Mean cosine 0.73 to the Eiffel copies, 0.72 from the furthest: absorbed (not linked) at similarity 0.72.
HOLM_ABSORBED = (
    "Margit Holm designed the Kestrel Bay lighthouse in 1868; its lantern was cast in a Paris iron workshop.",
    "lighthouse-society",
)


@pytest.mark.parametrize(
    "row, similarity",
    [(HOLM_IN_EIFFELS_WORDS, 0.75), (HOLM_ABSORBED, 0.72)],
    ids=["linked-by-cosine", "absorbed-by-cosine"],
)
def test_a_passage_that_disagrees_with_the_group_it_would_join_by_cosine_is_never_dropped_with_it(
    encoder, row, similarity
):
    ps = passages([*EIFFEL, row, OTHER])
    vectors = np.asarray(encoder.encode([p.text for p in ps]))
    assert tight_clusters(vectors @ vectors.T, similarity, 3) == [[0, 1, 2, 3]]  # cosine alone: one group
    out = PoisonFilter(encoder=encoder, scorer=FakeScorer(), similarity=similarity)(Context.for_query(QUERY, ps))
    assert {d.passage.id for d in out.dropped} == {p.id for p in ps[:3]}  # the copies go, convicted by it
    assert [p.id for p in out.passages] == [ps[3].id, ps[4].id]
    assert all(j.evidence == (ps[3].id,) for j in out.judgements)


class TableScorer:
    """Conflict probabilities for named pairs of texts; every other pair 0.05."""

    def __init__(self, pairs: dict[tuple[str, str], float]):
        self.pairs = pairs

    def pair_probabilities(self, query, texts):
        out = np.array([[self.pairs.get((a, b), self.pairs.get((b, a), 0.05)) for b in texts] for a in texts])
        np.fill_diagonal(out, 0.0)
        return out


def test_a_looser_relative_that_conflicts_with_one_member_is_not_dropped_as_family(encoder):
    """Its mean conflict with the group (0.23) is below the threshold, but one pair (0.6) reaches it."""
    loose = EIFFEL_LOOSE[0]
    pairs = {(e, HOLM[0]): 0.9 for e, _ in EIFFEL} | {(loose, HOLM[0]): 0.9, (loose, EIFFEL[2][0]): 0.6}
    ps = passages([*EIFFEL, EIFFEL_LOOSE, HOLM, OTHER])
    out = PoisonFilter(encoder=encoder, scorer=TableScorer(pairs))(Context.for_query(QUERY, ps))
    assert {d.passage.id for d in out.dropped} == {p.id for p in ps[:3]}
    assert [p.id for p in out.passages] == [ps[3].id, ps[4].id, ps[5].id]
    agreeing = TableScorer({k: v for k, v in pairs.items() if k != (loose, EIFFEL[2][0])})
    out = PoisonFilter(encoder=encoder, scorer=agreeing)(Context.for_query(QUERY, ps))
    assert ps[3].id in {d.passage.id for d in out.dropped}  # agreeing with every member, it follows them


def test_evidence_against_both_sides_of_a_dispute_convicts_neither(encoder):
    """Two groups of copies contradict each other and one lone passage contradicts both: it takes
    no side, so each group keeps one copy in place and nothing is dropped."""
    from tests.assessors.poison.test_poison import HOLM_COPIES, MORE

    third = ("The Kestrel Bay lighthouse was designed by the Swedish engineer Nils Ek.", "pamphlet")

    class ThreeClaims:
        def pair_probabilities(self, query, texts):
            side = [1 if "Eiffel" in t else 2 if "Holm" in t else 3 if "Nils Ek" in t else 0 for t in texts]
            return np.array([[0.9 if a and b and a != b else 0.05 for b in side] for a in side])

    ps = passages([*EIFFEL, *HOLM_COPIES, third, OTHER, *MORE])
    out = PoisonFilter(encoder=encoder, scorer=ThreeClaims())(Context.for_query(QUERY, ps))
    assert out.dropped == ()
    assert [p.id for p in out.passages[:6]] == [ps[0].id, ps[3].id, ps[6].id, ps[7].id, ps[8].id, ps[9].id]
