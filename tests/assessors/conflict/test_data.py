"""Training groups (NQ-Swap recipe, ConflictQA) and benchmark items (ConflictQA, RGB)."""

import json
import random

import pytest

from ragarbiter.assessors.conflict.data import (
    NEUTRAL,
    UNKNOWN_STANCE,
    ConflictGroup,
    bench_items,
    build_groups,
    claim_polarity,
    litm_groups,
    yes_no_question,
)
from ragarbiter.assessors.qa import answer_type, sniff, swap_answer
from ragarbiter.errors import InvalidInputError
from tests.assessors.tiny_data import CONFLICTQA, LITM, write_conflictqa, write_jsonl, write_litm, write_rgb


@pytest.mark.parametrize(
    "answer, kind",
    [
        ("1871", "year"),
        ("12 October 1871", "date"),
        ("23", "number"),
        ("3 million", "number"),
        ("Margit Holm", "name"),
        ("Gustave Eiffel", "name"),
        ("a paraffin lamp", "other"),
    ],
)
def test_answer_type(answer, kind):
    assert answer_type(answer) == kind


def test_swap_answer_replaces_every_mention_and_only_whole_words():
    text = "Holm drew it; Margit Holm signed it. Holmsen did not."
    assert swap_answer(text, ["Margit Holm", "Holm"], "Eiffel") == "Eiffel drew it; Eiffel signed it. Holmsen did not."
    assert swap_answer(text, ["Lunde"], "Eiffel") is None


def test_group_pairs_label_conflict_only_across_answer_clusters():
    g = ConflictGroup("q", ("a", "a2", "b", "n"), (0, 0, 1, NEUTRAL))
    assert g.pairs() == [(0, 1, 0), (0, 2, 1), (0, 3, 0), (1, 2, 1), (1, 3, 0), (2, 3, 0)]


def test_nq_swap_groups_put_the_substitute_answer_in_the_conflicting_side(tmp_path):
    groups = litm_groups(write_litm(tmp_path / "litm.jsonl"), random.Random(0))
    assert len(groups) == len(LITM)
    answers = {q: a[0] for q, a, _, _ in LITM}
    for g in groups:
        assert g.clusters[:6] == (0, 0, 1, 1, 0, 1)
        original, swapped = g.texts[0], g.texts[2]
        assert answers[g.query] in original and answers[g.query] not in swapped
        substitute = next(a[0] for _, a, _, _ in LITM if a[0] in swapped and a[0] != answers[g.query])
        assert answer_type(substitute) == answer_type(answers[g.query])


def test_build_groups_reads_litm_and_conflictqa_together(tmp_path):
    groups = build_groups([write_litm(tmp_path / "l.jsonl"), write_conflictqa(tmp_path / "c.json")])
    cqa = [g for g in groups if g.query.startswith(("Is the", "Did Margit"))]
    assert len(cqa) == 2
    assert cqa[0].clusters[:4] == (0, 0, 1, 1)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("Is the lighthouse older than the railway?", True),
        ("did Margit Holm design it?", True),
        ("Would a dog respond to a bell before a grey seal?", True),
        ("Who designed the lighthouse?", False),
        ("When was the lighthouse first lit?", False),
        ("Island of the isles: which one?", False),
    ],
)
def test_yes_no_question(query, expected):
    assert yes_no_question(query) is expected


def test_claim_polarity_reads_the_negated_side_as_no():
    assert claim_polarity("The hall is older than the railway.", "The hall is not older than the railway.") == 1
    assert claim_polarity("Shrimp scampi isn't free of plastic.", "Shrimp scampi is free of plastic.") == 0
    assert claim_polarity("It is red.", "It is blue.") == UNKNOWN_STANCE


def test_conflictqa_groups_carry_the_stance_of_each_side(tmp_path):
    groups = build_groups([write_conflictqa(tmp_path / "c.json")])
    labelled, unlabelled = groups  # only the first record has its one-line answer statements
    assert labelled.clusters[:6] == (0, 0, 1, 1, 0, 1)
    assert labelled.stances[:6] == (1, 1, 0, 0, 1, 0)  # memory says yes, counter-memory says no
    assert all(s == UNKNOWN_STANCE for s, c in zip(labelled.stances, labelled.clusters) if c == NEUTRAL)
    assert set(unlabelled.stances) == {UNKNOWN_STANCE}


@pytest.mark.parametrize("truth, memory_right", [(["True"], True), ("false", False), (["yes"], True), ("No", False)])
def test_the_gold_side_fact_list_is_trained_as_stating_no_answer(tmp_path, truth, memory_right):
    record = {**CONFLICTQA[0], "ground_truth": truth}  # the memory says "yes"
    [group] = build_groups([write_jsonl(tmp_path / "c.json", [record])])
    facts, generated = (1, 3) if memory_right else (3, 1)
    assert group.clusters[facts] == NEUTRAL and group.stances[facts] == UNKNOWN_STANCE
    assert group.clusters[generated] == group.clusters[generated - 1] != NEUTRAL
    labels = {(i, j): label for i, j, label in group.pairs()}
    assert labels[0, 2] == 1 and labels[min(facts, 2), max(facts, 2)] == 0  # nor does it conflict with the other memory


@pytest.mark.parametrize("truth", [None, ["True", "False"], "maybe", 1])
def test_without_a_yes_no_gold_answer_both_evidences_keep_their_side(tmp_path, truth):
    record = {**CONFLICTQA[0], **({} if truth is None else {"ground_truth": truth})}
    [group] = build_groups([write_jsonl(tmp_path / "c.json", [record])])
    assert group.clusters[:4] == (0, 0, 1, 1)


def test_conflictqa_bench_items_pair_memories_and_their_evidence(tmp_path):
    [item, _] = bench_items(write_conflictqa(tmp_path / "c.json"))
    assert item.pairs == ((0, 1, 1), (0, 2, 0), (1, 3, 0))
    assert item.texts[0].startswith("Yes. The lighthouse") and item.texts[1].startswith("No. The railway")
    assert item.sets == (((0, 1, 2, 3), 1), ((0, 2), 0), ((1, 3), 0))


def test_rgb_bench_items_conflict_across_sides_and_agree_within(tmp_path):
    [item] = bench_items(write_rgb(tmp_path / "en_fact.json"))
    assert item.pairs == ((0, 2, 1), (1, 2, 1), (0, 1, 0))
    assert item.sets[0] == ((0, 1, 2, 3), 1)


def test_unknown_format_is_a_clear_error(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"foo": 1}) + "\n")
    with pytest.raises(InvalidInputError, match="cannot tell the format"):
        sniff(path)


def test_missing_conflictqa_field_names_the_record(tmp_path):
    path = tmp_path / "c.json"
    rec = {
        "question": "q",
        "parametric_memory": "a",
        "counter_memory": "b",
        "parametric_memory_aligned_evidence": "c",
        "counter_memory_aligned_evidence": "d",
    }
    bad = {k: v for k, v in rec.items() if k != "counter_memory"}
    path.write_text(json.dumps(rec) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(InvalidInputError, match=r"record 1 lacks \['counter_memory'\]"):
        bench_items(path)


def test_rgb_file_is_refused_for_training(tmp_path):
    with pytest.raises(InvalidInputError, match="bench conflict"):
        build_groups([write_rgb(tmp_path / "en_fact.json")])
