"""Training groups (NQ-Swap recipe, ConflictQA) and benchmark items (ConflictQA, RGB)."""

import json
import random

import pytest

from ragarbiter.assessors.conflict.data import (
    NEUTRAL,
    UNKNOWN_STANCE,
    ConflictGroup,
    attribute_sentence,
    bench_items,
    build_groups,
    claim_polarity,
    decoy_swap,
    litm_groups,
    question_template,
    typed_mentions,
    yes_no_question,
)
from ragarbiter.assessors.qa import answer_type, held_out, sniff, swap_answer
from ragarbiter.errors import InvalidInputError
from tests.assessors.tiny_data import (
    CONFLICTQA,
    LITM,
    POISON_TARGET,
    write_conflictqa,
    write_jsonl,
    write_litm,
    write_poisonedrag,
    write_rgb,
)


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
    groups = litm_groups(write_litm(tmp_path / "litm.jsonl"), random.Random(0), holdout=False)
    assert len(groups) == len(LITM)
    answers = {q: a[0] for q, a, _, _ in LITM}
    for g in groups:
        assert g.clusters[:5] == (0, 0, 1, 0, 1)
        original, swapped = g.texts[0], g.texts[2]
        assert answers[g.query] in original and answers[g.query] not in swapped
        substitute = next(a[0] for _, a, _, _ in LITM if a[0] in swapped and a[0] != answers[g.query])
        assert answer_type(substitute) == answer_type(answers[g.query])
        for text, cluster in zip(g.texts, g.clusters):  # every text on the answer's side states it, no other
            assert (answers[g.query] in text) == (cluster == 0) or cluster == NEUTRAL


def test_held_out_questions_are_never_trained_on(tmp_path):
    path = write_litm(tmp_path / "litm.jsonl")
    trained = {g.query for g in litm_groups(path, random.Random(0))}
    kept_out = {q for q, *_ in LITM if held_out(q)}
    assert kept_out, "the tiny file should hold a question that held_out keeps for evaluation"
    assert trained == {q for q, *_ in LITM} - kept_out


def test_hard_negatives_keep_the_answer_or_state_none(tmp_path):
    """A decoy swap changes another slot of the answer's type and agrees; a sentence about another
    attribute of the same entity answers nothing."""
    groups = {g.query: g for g in litm_groups(write_litm(tmp_path / "litm.jsonl"), random.Random(0), holdout=False)}
    g = groups["when was the kestrel bay lighthouse first lit"]
    other = [t for t, c in zip(g.texts, g.clusters) if c == NEUTRAL]
    assert "Its keeper was Anders Lunde." in other
    g = groups["who designed the kestrel bay lighthouse"]
    others = ("Elin Varg", "Oscar Dahl", "Anders Lunde")  # the other name answers: the decoy's pool
    decoys = [t for t, c in zip(g.texts, g.clusters) if c == 0 and any(n in t for n in others)]
    assert decoys and all("Margit Holm" in t and "1868" in t for t in decoys)


def test_decoy_swap_never_touches_the_answer():
    text = "The Kestrel Bay lighthouse was designed by Margit Holm in 1868. It stands on Gannet Point."
    for seed in range(10):
        out = decoy_swap(text, ["Margit Holm"], "name", ["Oscar Dahl", "Elin Varg"], random.Random(seed))
        assert "Margit Holm" in out and out != text
        assert ("Kestrel Bay" in out) != ("Gannet Point" in out)
    assert decoy_swap("Margit Holm drew it.", ["Margit Holm"], "name", ["Oscar Dahl"], random.Random(0)) is None
    assert [text[a:b] for a, b in typed_mentions(text, "name")] == ["Kestrel Bay", "Margit Holm", "Gannet Point"]
    assert attribute_sentence(text, ["Margit Holm"], "name", random.Random(0)) == "It stands on Gannet Point."


SYNTHWIKI = [
    (
        "Tove Rask is a Norwegian potter. Born in Bergen, she trained in Kyoto. Her best friend is Ada Lind.",
        "What is the name of Tove Rask's best friend?",
        "Ada Lind",
    ),
    (
        "Tove Rask is a Norwegian potter. Born in Bergen, she trained in Kyoto. Her best friend is Ada Lind.",
        "In which city was Tove Rask born?",
        "Bergen",
    ),
    (
        "Omar Haddad is a Jordanian chef. Born in Irbid, he cooks in Amman. His best friend is Sami Nasser.",
        "What is the name of Omar Haddad's best friend?",
        "Sami Nasser",
    ),
    (
        "Omar Haddad is a Jordanian chef. Born in Irbid, he cooks in Amman. His best friend is Sami Nasser.",
        "In which city was Omar Haddad born?",
        "Irbid",
    ),
]


def write_synthwiki(path):
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["context", "question", "answer"])
        w.writerows(SYNTHWIKI)
    return path


def test_question_template_takes_the_names_out():
    assert question_template("What is the name of Tove Rask's best friend?") == "What is the name of X best friend?"
    assert question_template("In which city was Omar Haddad born?") == "In which city was X born?"


def test_synthwiki_swaps_come_from_the_same_question_template(tmp_path):
    path = write_synthwiki(tmp_path / "madlibs.csv")
    items = bench_items(path)
    assert len(items) == 4
    by_query = {i.query: i for i in items}
    friend = by_query["What is the name of Tove Rask's best friend?"]
    assert "Sami Nasser" in friend.texts[2] and "Ada Lind" not in friend.texts[2]  # the other record's friend
    assert "Her best friend is Ada Lind." in friend.texts  # the answer sentence alone is a second view
    negatives = {friend.texts[k] for _, k in friend.unanswering}
    assert "Born in Bergen, she trained in Kyoto." in negatives  # another attribute of the same person
    groups = build_groups([path], holdout=False)
    assert {g.query for g in groups} == {q for _, q, _ in SYNTHWIKI}


def test_poisonedrag_targets_become_rgb_swaps(tmp_path):
    [item] = bench_items(write_poisonedrag(tmp_path / "nq.json"))
    wrong = POISON_TARGET["adv_texts"][:3]
    assert item.texts[3:] == tuple(wrong)
    assert item.texts[:3] == tuple(t.replace("Gustave Eiffel", "Margit Holm") for t in wrong)
    assert (0, 3, 1) in item.pairs and (0, 1, 0) in item.pairs and (3, 4, 0) in item.pairs


def test_labelled_pair_files_are_one_pair_each(tmp_path):
    path = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"query": "q?", "a": "x", "b": "y", "conflict": 1, "kind": "swap"},
            {"query": "q?", "a": "x", "b": "z", "conflict": 0},
        ],
    )
    items = bench_items(path)
    assert [(i.pairs, i.kinds) for i in items] == [(((0, 1, 1),), ("swap",)), (((0, 1, 0),), ("unlabelled",))]
    write_jsonl(path, [{"query": "q?", "a": "x", "b": "y", "conflict": "maybe"}])
    with pytest.raises(InvalidInputError, match="conflict='maybe'"):
        bench_items(path)


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
