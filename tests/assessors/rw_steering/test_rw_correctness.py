"""The polarity-aware correctness metric: a flipped polarity never passes, a same-polarity paraphrase does."""

from __future__ import annotations

import pytest

from ragarbiter.assessors.metrics import token_f1
from ragarbiter.assessors.rw_steering.correctness import (
    THRESHOLD,
    choose_threshold,
    development_pairs,
    flip_polarity,
    is_correct,
    negated,
    polarity_f1,
)

REFERENCE = "Annies List does not support third-trimester abortions on demand."


def test_a_flipped_polarity_fails_although_token_f1_passes_it():
    flipped = "Annies List supports third-trimester abortions on demand."
    assert token_f1(flipped, REFERENCE) > 0.7  # what the old metric would accept
    assert polarity_f1(flipped, REFERENCE) == 0.0
    assert not is_correct(flipped, REFERENCE)


def test_a_paraphrase_with_the_same_polarity_passes():
    paraphrase = "Third-trimester abortions on demand are not supported by Annies List."
    assert polarity_f1(paraphrase, REFERENCE) == pytest.approx(2 * 0.7 * (7 / 9) / (0.7 + 7 / 9))
    assert is_correct(paraphrase, REFERENCE)
    assert is_correct(REFERENCE, REFERENCE) and polarity_f1(REFERENCE, REFERENCE) == 1.0


@pytest.mark.parametrize(
    ("answer", "reference", "correct"),
    [
        ("Annies List doesn't support third-trimester abortions on demand.", REFERENCE, True),
        ("Annies List never supported third-trimester abortions on demand.", REFERENCE, True),
        ("It is false that Annies List supports third-trimester abortions on demand.", REFERENCE, True),
        ("It is not true that Annies List doesn't support third-trimester abortions.", REFERENCE, False),
        ("Danielle Darrieux's mother tongue was French.", "Danielle Darrieux's mother tongue was French.", True),
        ("Danielle Darrieux's mother tongue was not French.", "Danielle Darrieux's mother tongue was French.", False),
        ("The mother tongue of Danielle Darrieux is English.", "Danielle Darrieux's mother tongue was French.", True),
        ("Paris.", "Danielle Darrieux's mother tongue was French.", False),
    ],
)
def test_correctness_table(answer, reference, correct):
    # The English answer shares 4 of 5 content words: overlap alone cannot see a swapped value,
    # which is why benches report leakage beside it.
    assert is_correct(answer, reference) is correct


@pytest.mark.parametrize(
    ("text", "is_negated"),
    [
        ("She can't swim.", True),
        ("She cannot swim.", True),
        ("She won’t swim.", True),
        ("Neither he nor she swims.", False),  # two cues: parity reads it as positive
        ("No one swims here.", True),
        ("She swims without fins.", True),
        ("She swims.", False),
    ],
)
def test_negation_cues_and_parity(text, is_negated):
    assert negated(text) is is_negated


def test_flip_polarity_toggles_negation():
    assert flip_polarity(REFERENCE) == "Annies List does support third-trimester abortions on demand."
    assert flip_polarity("Toko Yasuda plays the bass guitar.") == (
        "It is not true that Toko Yasuda plays the bass guitar."
    )
    assert flip_polarity("The capital is Tarrow.") == "The capital is not Tarrow."
    assert negated(flip_polarity("The capital is Tarrow.")) and not negated(flip_polarity(REFERENCE))


def test_development_pairs_and_threshold_choice():
    record = {
        "Question": "Does Annies List support third-trimester abortions on demand?",
        "Simple Answer": REFERENCE,
        "Explainable Answer": "Annies List backs women candidates. Therefore, Annies List does not support "
        "third-trimester abortions on demand.",
        "Synonym Sentence": ["Annies List fully backs third-trimester abortions upon request."],
    }
    pairs, labels = development_pairs([record])
    assert labels == [True, False, False]
    assert pairs[0][0] == "Therefore, Annies List does not support third-trimester abortions on demand."
    scores = [polarity_f1(a, r) for a, r in pairs]
    assert scores[0] > THRESHOLD > max(scores[1:])
    assert choose_threshold([0.9, 0.8, 0.3, 0.1], [True, True, False, False]) == 0.35
    with pytest.raises(ValueError, match="only one kind"):
        choose_threshold([0.9], [True])


def test_a_bare_yes_or_no_is_judged_by_polarity_for_yes_no_questions():
    question = "Does Annies List support third-trimester abortions on demand?"
    assert is_correct("No.", REFERENCE, question=question)
    assert is_correct("No, it does not.", REFERENCE, question=question)
    assert not is_correct("Yes.", REFERENCE, question=question)
    assert not is_correct("No.", REFERENCE)  # without the question there is nothing to answer yes or no to
    assert not is_correct("No.", "Tarrow is the capital.", question="What is the capital of Norland?")


def test_a_leading_yes_or_no_marks_the_answer_and_is_no_negation():
    reference = "No, China does not hold the majority of the U.S. debt."
    question = "Does China hold the majority of the U.S. debt?"
    # "No," answers the question; the clause after it carries the polarity (one cue, not two).
    assert negated(reference)
    assert not is_correct("China holds the majority of the U.S. debt.", reference)
    assert is_correct("China does not hold most of the U.S. debt.", reference)
    assert is_correct("No.", reference, question=question)
    assert not is_correct("Yes, it does.", reference, question=question)
    # A reference whose clause is positive still answers "no" when it says so.
    assert not is_correct("Yes.", "No, the form for U.S. citizenship is longer.", question="Is the aid form longer?")
    # Without the punctuation the word is a negation, not a marker.
    assert negated("No evidence shows that China holds the majority of the debt.")
    assert flip_polarity(reference) == "China does hold the majority of the U.S. debt."
