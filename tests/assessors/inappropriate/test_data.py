"""Testbed pools and the sentence-labelled training passages built from them."""

import json

import pytest

from ragarbiter.assessors.inappropriate.data import CATEGORIES, DataRecipe, bench_example, build_examples, read_pool
from ragarbiter.assessors.inappropriate.samples import WRITTEN, written_samples
from ragarbiter.errors import ConfigError, InvalidInputError
from tests.assessors.tiny_data import write_pool


def test_read_pool_takes_appropriate_and_inappropriate_sentences(tmp_path):
    [first, second] = read_pool(write_pool(tmp_path / "pool.json"))
    assert first.question == "Who designed the Kestrel Bay lighthouse?"
    assert first.bad == ("Gustave Eiffel designed the Kestrel Bay lighthouse.",)
    assert len(first.good) == 2 and first.category == "false_claim"


def test_privacy_pools_are_read_as_private_information(tmp_path):
    path = tmp_path / "privacy.json"
    path.write_text(
        json.dumps(
            [
                {
                    "Question": "Who is the harbour master?",
                    "Non-private Information": ["The harbour master runs the port office."],
                    "Privacy information": ["The harbour master lives at 14 Strand Road."],
                }
            ]
        )
    )
    [record] = read_pool(path)
    assert record.category == "private"
    example = bench_example(record, seed=0)
    assert sorted(example.labels) == [0, CATEGORIES.index("private")]


@pytest.mark.parametrize(
    "content, match",
    [
        ('{"a": 1}', "JSON list"),
        ('[{"Question": "q"}]', "record 0 lacks"),
        ("not json", "not valid JSON"),
    ],
)
def test_malformed_pools_are_clear_errors(tmp_path, content, match):
    path = tmp_path / "pool.json"
    path.write_text(content)
    with pytest.raises(InvalidInputError, match=match):
        read_pool(path)


def test_bench_example_is_deterministic_and_labels_every_sentence(tmp_path):
    [record, _] = read_pool(write_pool(tmp_path / "pool.json"))
    a, b = bench_example(record, seed=3), bench_example(record, seed=3)
    assert a == b
    assert dict(zip(a.sentences, a.labels))["Gustave Eiffel designed the Kestrel Bay lighthouse."] == 1
    assert sum(a.labels) == 1 and len(a.sentences) == 3


def test_written_samples_pair_each_category_with_look_alikes():
    samples = written_samples(10, seed=1)
    cats = [c for _, c in samples]
    assert cats.count("ok") == 30
    assert {c: cats.count(c) for c in WRITTEN} == {"hateful": 10, "private": 10, "injection": 10}


def test_build_examples_mixes_pool_and_written_sentences(tmp_path):
    examples = build_examples([write_pool(tmp_path / "pool.json")], written=4, whole=0.0, seed=0)
    labels = [CATEGORIES[y] for e in examples for y in e.labels]
    assert labels.count("false_claim") == 2  # each record's one false sentence, once
    assert {"hateful", "private", "injection"} <= set(labels)
    assert all(len(e.sentences) == len(e.labels) for e in examples)


def test_plain_facts_about_invented_entities_are_appropriate_examples(tmp_path):
    from ragarbiter.assessors.inappropriate.samples import unverifiable_facts

    facts = unverifiable_facts(20, seed=3)
    assert facts == unverifiable_facts(20, seed=3) and len(facts) == 20
    assert all(sentences for _, sentences in facts)
    kinds = {q.split()[0] + " " + q.split()[1] for q, _ in facts}
    assert {"Where is", "Where was"} <= kinds  # firms and people both
    examples = build_examples([write_pool(tmp_path / "pool.json")], written=2, unfamiliar=5, seed=0)
    questions = {q for q, _ in unverifiable_facts(5, 0)}
    unfamiliar = [e for e in examples if e.query in questions]
    assert len(unfamiliar) == 5 and all(set(e.labels) == {0} for e in unfamiliar)


def test_a_litm_file_adds_counterfactual_claims_next_to_the_true_sentences(tmp_path):
    from tests.assessors.tiny_data import LITM, write_litm

    litm = write_litm(tmp_path / "litm.jsonl")
    examples = build_examples([write_pool(tmp_path / "pool.json"), litm], written=0, restate=0.0)
    answers = {q: a for q, a, _, _ in LITM}
    swapped = [ex for ex in examples if ex.query in answers]
    false = CATEGORIES.index("false_claim")
    with_claims = [ex for ex in swapped if false in ex.labels]
    assert with_claims  # most passages get a claim; some stay whole and all true
    assert all(set(ex.labels) == {0} for ex in swapped if ex not in with_claims)
    for ex in with_claims:
        claims = [s for s, y in zip(ex.sentences, ex.labels) if y == false]
        kept = [s for s, y in zip(ex.sentences, ex.labels) if y == 0]
        assert claims and kept
        assert any(a in s for a in answers[ex.query] for s in kept)  # the true sentence stays
        assert not any(a in c for a in answers[ex.query] for c in claims)  # the claim names another answer


def test_whole_records_put_every_restatement_of_a_claim_in_one_passage(tmp_path):
    path = tmp_path / "pool.json"
    good = ["The lighthouse was built in 1871.", "Its lamp burns paraffin.", "Puffins nest on the cliffs."]
    bad = ["The lighthouse was built by Gustave Eiffel.", "Gustave Eiffel designed the Kestrel Bay lighthouse."]
    path.write_text(
        json.dumps(
            [
                {"Question": f"Who built lighthouse {k}?", "Generated Information": good, "Synonym Sentence": bad}
                for k in range(20)
            ]
        )
    )

    def holds_everything(ex):
        return set(ex.sentences) >= set(good + bad)

    whole = build_examples([path], written=0, unfamiliar=0, whole=1.0, seed=0)
    assert sum(holds_everything(ex) for ex in whole) == 20  # one whole passage per record
    for ex in filter(holds_everything, whole):
        assert [y for s, y in zip(ex.sentences, ex.labels) if s in bad] == [1, 1]
        assert [y for s, y in zip(ex.sentences, ex.labels) if s in good] == [0, 0, 0]
    split = build_examples([path], written=0, unfamiliar=0, whole=0.0, seed=0)
    assert not any(holds_everything(ex) for ex in split)  # the default recipe never does
    assert sum(ex.labels.count(1) for ex in split) == sum(ex.labels.count(1) for ex in whole) - 20
    with pytest.raises(InvalidInputError, match="whole must lie in"):
        build_examples([path], whole=1.5)


def test_true_restatements_of_the_answer_are_labelled_appropriate(tmp_path):
    from tests.assessors.tiny_data import LITM, write_litm

    litm = write_litm(tmp_path / "litm.jsonl")
    answers = {q: a for q, a, _, _ in LITM}

    def restatements(examples):  # one-line claims (they quote the question) and their labels
        return [
            (s, y, ex.query)
            for ex in examples
            if ex.query in answers
            for s, y in zip(ex.sentences, ex.labels)
            if ex.query.lower() in s.lower()
        ]

    examples = build_examples([write_pool(tmp_path / "pool.json"), litm], written=0, restate=1.0)
    with_true = restatements(examples)
    true = [(s, q) for s, y, q in with_true if y == 0]
    assert {q for _, q in true} == {ex.query for ex in examples if ex.query in answers}  # every passage restates it
    assert all(any(a in s for a in answers[q]) for s, q in true)
    assert all(not any(a in s for a in answers[q]) for s, y, q in with_true if y != 0)  # false ones name another
    without = restatements(build_examples([write_pool(tmp_path / "pool.json"), litm], written=0, restate=0.0))
    assert all(y != 0 for _, y, _ in without)  # without it, every one-line claim is a false one


def test_a_records_true_answer_joins_one_of_its_passages_as_appropriate(tmp_path):
    from ragarbiter.assessors.inappropriate.data import answer_statement

    assert answer_statement("No, the beer market in Georgia is diverse.") == "The beer market in Georgia is diverse."
    assert answer_statement("Michel Denisot speaks French.") == "Michel Denisot speaks French."
    assert answer_statement("Yes, Providence was a sanctuary city.") == ""  # may agree with the claim
    assert answer_statement("No.") == "" and answer_statement(None) == ""
    path = tmp_path / "pool.json"
    good = ["The lighthouse was built in 1871.", "Its lamp burns paraffin.", "Puffins nest on the cliffs."]
    bad = ["The lighthouse was built by Gustave Eiffel.", "Gustave Eiffel designed the Kestrel Bay lighthouse."]
    answer = "No, the harbour engineer Margit Holm designed it."
    path.write_text(
        json.dumps(
            [
                {
                    "Question": f"Who built lighthouse {k}?",
                    "Generated Information": good,
                    "Synonym Sentence": bad,
                    "Simple Answer": answer,
                }
                for k in range(20)
            ]
        )
    )
    assert {r.answer for r in read_pool(path)} == {"The harbour engineer Margit Holm designed it."}

    def with_answer(examples):
        return [ex for ex in examples if "The harbour engineer Margit Holm designed it." in ex.sentences]

    every = build_examples([path], written=0, unfamiliar=0, answers=1.0, seed=0)
    assert len(with_answer(every)) == 20  # once per record, in one of its passages
    for ex in with_answer(every):
        assert dict(zip(ex.sentences, ex.labels))["The harbour engineer Margit Holm designed it."] == 0
        assert 1 in ex.labels  # beside a restatement of the false claim it contradicts
    assert not with_answer(build_examples([path], written=0, unfamiliar=0, answers=0.0, seed=0))
    with pytest.raises(InvalidInputError, match="answers must lie in"):
        build_examples([path], answers=-0.1)


def test_a_recipe_and_keyword_options_build_the_same_passages(tmp_path):
    path = write_pool(tmp_path / "pool.json")
    recipe = DataRecipe(written=2, unfamiliar=3)
    assert build_examples([path], recipe, seed=1) == build_examples([path], written=2, unfamiliar=3, seed=1)
    assert build_examples([path], recipe, unfamiliar=0, seed=1) == build_examples(
        [path], written=2, unfamiliar=0, seed=1
    )
    assert DataRecipe() == DataRecipe(records=None, written=600, unfamiliar=200, whole=0.0, restate=0.0, answers=0.0)
    with pytest.raises(InvalidInputError, match="restate must lie in"):
        DataRecipe(restate=2.0)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['writen'\]"):
        build_examples([path], writen=2)
