"""The shipped conflict adapter on the two cases it must tell apart: one slot swapped, and another attribute."""

from ragarbiter import Context, Passage
from ragarbiter.assessors import ConflictAssessor

OPENED_1911 = Passage("The Varnel bridge opened in 1911 and spans the river Osk.", source="county-archive")
OPENED_1924 = Passage(
    "Opened to traffic in 1924, the Varnel bridge carries the coastal road over the Osk.", source="travel-blog"
)
RENOVATED = Passage("The bridge was renovated in 1998 after a flood damaged its piers.", source="council")
OPENED = "When did the Varnel bridge open?"

CAPITAL = "What is the capital of the province of Dalmor?"
KESSING = Passage("Kessing is the capital of the province of Dalmor and its largest port.", source="atlas")
ULBRECHT = Passage("The capital of Dalmor province is Ulbrecht, an inland market town.", source="forum")
POPULATION = Passage("Dalmor province has a population of about 1.2 million people.", source="census")
AUTHOR = "Who wrote the novel The Salt Orchard?"
PRYCE = Passage("The Salt Orchard is a 1964 novel by the Welsh writer Gwen Pryce.", source="library")
ADAPTED = Passage("The Salt Orchard was adapted for television in 1979 and filmed on Anglesey.", source="tv-guide")


def test_an_entity_swapped_pair_is_flagged_and_the_reason_quotes_both_answers():
    out = ConflictAssessor()(Context.for_query(CAPITAL, [KESSING, ULBRECHT]))
    assert out.flags["conflict"] is True
    reasons = {j.passage_id: j.reason for j in out.judgements}
    assert set(reasons) == {KESSING.id, ULBRECHT.id}
    assert reasons[ULBRECHT.id].startswith('says "Ulbrecht" where #1 (atlas) says "Kessing"')


def test_a_same_entity_different_attribute_pair_is_not_flagged():
    for query, answer, other in (
        (OPENED, OPENED_1911, RENOVATED),
        (CAPITAL, KESSING, POPULATION),
        (AUTHOR, PRYCE, ADAPTED),
    ):
        out = ConflictAssessor()(Context.for_query(query, [answer, other]))
        assert out.flags["conflict"] is False, (query, other.text)
        assert out.judgements == ()


def test_with_both_in_one_context_only_the_two_capitals_conflict():
    out = ConflictAssessor()(Context.for_query(CAPITAL, [KESSING, POPULATION, ULBRECHT]))
    assert {j.passage_id for j in out.judgements} == {KESSING.id, ULBRECHT.id}
