"""Sentences that restate each other within a passage are each judged without the others."""

import pytest

from ragarbiter import Context, Passage
from ragarbiter.assessors.inappropriate import InappropriateFilter, SentenceVerdict, model
from ragarbiter.assessors.inappropriate.model import SentenceScorer
from ragarbiter.assessors.text import split_sentences
from ragarbiter.errors import ConfigError

QUERY = "Who designed the Kestrel Bay lighthouse?"
CLAIM = "Gustave Eiffel designed the Kestrel Bay lighthouse."
AGAIN = "The Kestrel Bay lighthouse was designed by Gustave Eiffel."
OTHERS = [
    "The harbour engineer Margit Holm drew the plans in 1868.",
    "The tower was first lit in 1871.",
    "Puffins nest on the cliffs below it.",
]


FILLER = [
    "The harbour board meets on the first Monday of each month.",
    "Ferries leave for the Skarv islands at nine.",
    "A fish market is held on the quay every Saturday morning.",
    "The old customs house now holds a small museum.",
    "Winter storms closed the coast road twice in 2019.",
    "Cod and haddock are landed from November to March.",
    "The sailing club runs a regatta in late July.",
    "Puffins return to the northern cliffs in April.",
    "The town band plays in the square on summer evenings.",
    "A new ice plant opened beside the east docks.",
    "The school by the church has about two hundred pupils.",
    "Hikers follow the cliff path to Vessel Head.",
]


@pytest.fixture(scope="module")
def scorers():
    apart = SentenceScorer().load()
    whole = SentenceScorer(restated_at=None)
    whole._adapted = apart._adapted  # the same loaded model, judging every sentence in its whole passage
    return apart, whole


@pytest.fixture
def every_verdict_doubtful(monkeypatch):
    """Read apart whatever the first verdict (the shipped setting skips verdicts already near 0 or 1)."""
    monkeypatch.setattr(model, "CLEAR", 0.0)


def test_a_restated_sentence_gets_the_verdict_it_gets_without_its_restatement(scorers, every_verdict_doubtful):
    apart, whole = scorers
    text = " ".join([OTHERS[0], CLAIM, OTHERS[1], AGAIN, OTHERS[2]])
    [verdicts] = apart.score(QUERY, [text])
    assert [v.restatements for v in verdicts] == [0, 1, 0, 1, 0]
    [plain] = whole.score(QUERY, [text])
    assert [v.restatements for v in plain] == [0] * 5
    for k, left_out in ((1, AGAIN), (3, CLAIM)):  # each restatement, read with the other one left out
        view = " ".join(s for s in [OTHERS[0], CLAIM, OTHERS[1], AGAIN, OTHERS[2]] if s != left_out)
        [alone] = whole.score(QUERY, [view])
        [same] = [v for v in alone if v.sentence.text == verdicts[k].sentence.text]
        assert abs(verdicts[k].score - same.score) < 1e-2
    for k in (0, 2, 4):  # sentences nothing restates keep their whole-passage verdict
        assert abs(verdicts[k].score - plain[k].score) < 1e-2
    assert verdicts[1].sentence == plain[1].sentence  # spans still point into the original text


def test_restatements_are_found_across_the_windows_of_a_long_passage(scorers, every_verdict_doubtful):
    apart, _ = scorers
    text = " ".join([CLAIM, *FILLER, AGAIN])
    assert len(apart.windows(QUERY, split_sentences(text))) > 1  # the two restatements fall in different windows
    [verdicts] = apart.score(QUERY, [text])
    assert verdicts[0].restatements == 1 and verdicts[-1].restatements == 1
    assert all(v.restatements == 0 for v in verdicts[1:-1])


def test_dissimilar_sentences_are_never_read_apart(scorers, every_verdict_doubtful):
    apart, _ = scorers
    [verdicts] = apart.score(QUERY, [" ".join(OTHERS + FILLER[:4])])
    assert [v.restatements for v in verdicts] == [0] * 7


def test_clear_verdicts_are_not_read_again(scorers, monkeypatch):
    apart, whole = scorers
    text = " ".join([OTHERS[0], CLAIM, OTHERS[1], AGAIN])
    monkeypatch.setattr(model, "CLEAR", 0.5)  # every verdict counts as clear
    [verdicts] = apart.score(QUERY, [text])
    [plain] = whole.score(QUERY, [text])
    assert [v.restatements for v in verdicts] == [0, 0, 0, 0]
    assert [v.score for v in verdicts] == [v.score for v in plain]


def test_sentence_vectors_are_the_sentence_transformers_embeddings(scorers):
    from ragarbiter.assessors.backbone import shared_dense_encoder

    apart, _ = scorers
    texts = [CLAIM, AGAIN, *OTHERS]
    own = apart._parts[0].sentence_vectors(texts)
    reference = shared_dense_encoder().encode(texts)
    assert own.shape == reference.shape
    assert (own * reference).sum(1).min() > 0.99  # the same vectors, up to bfloat16 rounding
    assert abs(float(own[0] @ own[1]) - float(reference[0] @ reference[1])) < 0.02
    assert float(own[0] @ own[1]) >= model.RESTATED_AT > float(own[0] @ own[2])  # restatement vs another fact


class Restated:
    def score(self, question, texts, **options):
        return [
            [
                SentenceVerdict(s, 0.9 if "Eiffel" in s.text else 0.1, "false_claim", (), int("Eiffel" in s.text))
                for s in split_sentences(t)
            ]
            for t in texts
        ]


def test_the_reason_says_a_sentence_was_judged_without_its_restatement():
    p = Passage(" ".join([OTHERS[0], CLAIM, AGAIN]))
    [j] = InappropriateFilter(scorer=Restated())(Context.for_query(QUERY, [p])).judgements
    assert j.reason == (
        "removed 2 of 3 sentences: a false or counterfactual claim (0.90, judged without its "
        f'1 restatement in the passage): "{CLAIM}"; a false or counterfactual claim (0.90, judged '
        f'without its 1 restatement in the passage): "{AGAIN}"'
    )


@pytest.mark.parametrize("value", [0.0, 1.5, -1])
def test_a_similarity_outside_the_unit_interval_is_a_config_error(value):
    with pytest.raises(ConfigError, match=rf"restated_at must lie in \(0, 1\].*got {value}"):
        InappropriateFilter(restated_at=value)
    with pytest.raises(ConfigError, match="restated_at must lie in"):
        SentenceScorer(restated_at=value)


def test_a_denial_is_not_a_restatement_of_the_claim_it_denies(scorers, every_verdict_doubtful):
    apart, _ = scorers
    denial = "Gustave Eiffel did not design the Kestrel Bay lighthouse."
    [verdicts] = apart.score(QUERY, [" ".join([OTHERS[0], CLAIM, denial])])
    assert [v.restatements for v in verdicts] == [0, 0, 0]
    [verdicts] = apart.score(QUERY, [" ".join([OTHERS[0], CLAIM, denial, AGAIN])])
    assert [v.restatements for v in verdicts] == [0, 1, 0, 1]  # the two claims still restate each other


def test_the_setting_is_read_as_a_number_and_can_be_overridden_per_call(scorers, every_verdict_doubtful):
    apart, _ = scorers
    assert InappropriateFilter(restated_at="0.8").config.restated_at == 0.8
    with pytest.raises(ConfigError, match="restated_at must lie in"):
        InappropriateFilter(restated_at="high")
    text = " ".join([OTHERS[0], CLAIM, AGAIN])
    assert [v.restatements for v in apart.score(QUERY, [text], restated_at=None)[0]] == [0, 0, 0]
    assert [v.restatements for v in apart.score(QUERY, [text])[0]] == [0, 1, 1]
    assert [v.restatements for v in apart.score(QUERY, [CLAIM + " " + CLAIM], restated_at=1.0)[0]] == [1, 1]
