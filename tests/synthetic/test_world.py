"""The closed world: deterministic generation, the tokenizer, and what each condition's sets hold."""

import random

import pytest

from ragarbiter.errors import ConfigError
from ragarbiter.lm import render_prompt
from ragarbiter.synthetic import PROPORTIONS, ContextBuilder, CorpusMaker, WorldConfig, build_world
from ragarbiter.synthetic.conditions import INAPPROPRIATE
from ragarbiter.testbed import build_tokenizer

SMALL = WorldConfig(seed=3, people=24, companies=6, cities=6, countries=3)


@pytest.fixture(scope="module")
def world():
    return build_world(SMALL)


@pytest.fixture(scope="module")
def builder(world):
    return ContextBuilder(world, k=6, position_k=10, n_poison=3, mixture_sentences=20)


def test_generation_is_deterministic_per_seed():
    a, b = build_world(SMALL), build_world(SMALL)
    assert a.entities == b.entities and a.pools == b.pools
    other = build_world(WorldConfig(seed=4, people=24, companies=6, cities=6, countries=3))
    assert [e.name for e in other.entities] != [e.name for e in a.entities]
    sets_a = [ContextBuilder(a).poisoned(i, random.Random(9)) for i in a.qa_items(known=False)[:5]]
    sets_b = [ContextBuilder(b).poisoned(i, random.Random(9)) for i in b.qa_items(known=False)[:5]]
    assert sets_a == sets_b
    corpus_a = [e.prompt + e.target for e in CorpusMaker(a, 1).examples(50)]
    assert corpus_a == [e.prompt + e.target for e in CorpusMaker(b, 1).examples(50)]


def test_world_has_known_and_unknown_entities_with_typed_values(world):
    people = world.of_type("person")
    assert len(people) == 24 and len(world.of_type("person", known=True)) == 12
    names = {e.name for e in world.entities}
    cities = set(world.pools["city"])
    for p in people:
        assert p.value("birthplace") in cities
        assert p.value("best_friend") in names and p.value("best_friend") != p.name
        assert p.value("employer") in set(world.pools["company"])
        assert 1900 <= int(p.value("birth_year")) <= 1999
    assert len(names) == len(world.entities)  # syllable names never collide


def test_unknown_entities_never_appear_as_a_subject_in_pretraining(world):
    from ragarbiter.synthetic import ATTRIBUTES

    unknown = [e for e in world.entities if not e.known]
    assert unknown
    forbidden = {
        t.format(s=e.name, v=e.value(a.name)) for e in unknown for a in ATTRIBUTES[e.type] for t in a.statements
    }
    forbidden |= {a.question.format(s=e.name) for e in unknown for a in ATTRIBUTES[e.type]}
    examples = CorpusMaker(world, 0).examples(600)
    assert {ex.kind for ex in examples} == {"facts", "closed_book", "rag", "rag_fresh", "rag_update"}
    for ex in examples:
        text = ex.prompt + ex.target
        assert not any(f in text for f in forbidden), text


def test_update_examples_give_a_known_entity_a_new_value_that_the_context_states(world):
    from ragarbiter.synthetic import ATTRIBUTES

    asked = {a.question.format(s=e.name): (e, a) for e in world.entities if e.known for a in ATTRIBUTES[e.type]}
    updates = [ex for ex in CorpusMaker(world, 1).examples(800) if ex.kind == "rag_update"]
    assert len(updates) >= 10
    for ex in updates:
        documents, question = ex.prompt.split("Question: ")
        subject, attribute = asked[question.split("\n")[0]]
        new = ex.target.strip()
        assert new != subject.value(attribute.name)  # memory says otherwise
        assert new in documents  # the documents state the new value


def test_tokenizer_round_trips_world_text_and_prompts(world, tmp_path):
    tok = build_tokenizer(world, 400)
    texts = list(world.texts(known_only=False))[:200]
    texts.append(render_prompt("Where was Kalo Mi born?", ["Kalo Mi was born in Dun.\nÄ new line, ünïcode"], ["forum"]))
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
    enc = tok(texts[0], return_offsets_mapping=True, add_special_tokens=False)
    assert "".join(texts[0][a:b] for a, b in enc["offset_mapping"]) == texts[0]
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(texts[5])["input_ids"] == tok(texts[5])["input_ids"]
    assert again.pad_token == "<pad>" and again.eos_token == "</s>"


def test_clean_set_has_one_gold_passage_that_states_the_answer(world, builder):
    for item in world.qa_items(known=False)[:20]:
        s = builder.clean(item, random.Random(1))
        assert len(s.passages) == 6 and s.labels.count("gold") == 1
        gold = s.passages[s.gold_positions[0]]
        assert item.answer in gold and item.subject in gold
        assert all(item.subject not in p for p, label in zip(s.passages, s.labels) if label == "distractor")


def test_counterfactual_set_asserts_another_value_and_holds_no_gold(world, builder):
    for item in world.qa_items(known=True)[:20]:
        s = builder.counterfactual(item, random.Random(2))
        assert s.wrong and s.wrong != item.answer and "gold" not in s.labels
        [text] = [p for p, label in zip(s.passages, s.labels) if label == "counterfactual"]
        assert s.wrong in text and item.subject in text


def test_conflict_set_holds_both_values(world, builder):
    for item in world.qa_items(known=False)[:20]:
        s = builder.conflict(item, random.Random(3))
        texts = dict(zip(s.labels, s.passages))
        assert item.answer in texts["gold"] and s.wrong in texts["conflicting"]
        assert item.answer not in texts["conflicting"]  # the conflicting side never states the true value


def _jaccard(a: str, b: str) -> float:
    x, y = set(a.lower().split()), set(b.lower().split())
    return len(x & y) / len(x | y)


def test_poisoned_set_holds_the_stated_number_of_near_duplicates(world, builder):
    for item in world.qa_items(known=False)[:20]:
        s = builder.poisoned(item, random.Random(4))
        poison = [p for p, label in zip(s.passages, s.labels) if label == "poison"]
        assert len(poison) == 3 and s.labels.count("gold") == 1 and len(s.passages) == 6
        assert len(set(poison)) == 3  # near-duplicates, not copies
        assert all(p.startswith(item.question) and p.count(s.wrong) == 2 for p in poison)
        assert min(_jaccard(a, b) for i, a in enumerate(poison) for b in poison[i + 1 :]) >= 0.5


@pytest.mark.parametrize("proportion", PROPORTIONS)
def test_mixture_proportion_is_exact_and_the_gold_fact_stays(world, builder, proportion):
    item = world.qa_items(known=False)[7]
    s = builder.mixture(item, proportion, random.Random(5))
    bad = sum(label in INAPPROPRIATE for label in s.labels)
    assert len(s.passages) == 20 and bad == round(proportion * 20)
    assert s.labels.count("appropriate-gold") == 1
    assert item.answer in s.passages[s.gold_positions[0]]
    if bad:
        assert "false" in s.labels and any(s.wrong in p for p, label in zip(s.passages, s.labels) if label == "false")
    tags = dict(zip(s.labels, s.sources))
    assert all(tags.values())


def test_mixture_refuses_an_unanswerable_proportion(world, builder):
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        builder.mixture(world.qa_items()[0], 1.0, random.Random(0))


@pytest.mark.parametrize("index", [0, 4, 9])
def test_position_set_puts_the_gold_passage_exactly_there(world, builder, index):
    item = world.qa_items(known=False)[2]
    s = builder.position(item, index, random.Random(6))
    assert len(s.passages) == 10 and s.gold_positions == (index,) and s.level == index
    assert item.answer in s.passages[index] and item.subject in s.passages[index]
    with pytest.raises(ConfigError, match="outside 0..9"):
        builder.position(item, 10, random.Random(6))
