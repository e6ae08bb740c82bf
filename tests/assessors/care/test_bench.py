"""`bench care`: the context sets it answers, and how it reports them."""

from __future__ import annotations

from types import SimpleNamespace


def test_bench_sets_use_held_out_questions_only():
    from ragarbiter.assessors.care.bench import build_sets
    from ragarbiter.assessors.qa import held_out
    from ragarbiter.synthetic import WorldConfig, build_world

    world = build_world(WorldConfig(seed=4, people=20, companies=4, cities=4, countries=2))
    sets = build_sets(SimpleNamespace(world=world), questions=3, seed=0)
    assert sorted(sets) == ["clean", "counterfactual", "unhelpful"]
    assert [len(group) for group in sets.values()] == [3, 3, 3]
    known = {i.question for i in world.qa_items(known=True)}
    assert all(held_out(s.item.question) for group in sets.values() for s in group)
    assert not any(s.item.question in known for s in sets["clean"])  # clean sets ask about unknown entities
    assert all(s.item.question in known for s in sets["counterfactual"] + sets["unhelpful"])
    for s in sets["unhelpful"]:  # the clean sets of known entities, the gold passage taken out
        assert s.condition == "unhelpful" and "gold" not in s.labels
        assert len(s.passages) == len(s.labels) == len(s.sources) == 4
    assert all(s.labels.count("gold") == 1 for s in sets["clean"])
    assert build_sets(SimpleNamespace(world=world), questions=3, seed=0) == sets  # deterministic in the seed


def test_print_result_lists_each_condition_then_resilience_and_boost(capsys):
    from ragarbiter.assessors.care.bench import print_result

    accuracy = {"clean": {"closed_book": 0.0, "rag": 1.0, "care": 0.5}}
    print_result({"accuracy": accuracy, "resilience": {"rag": 0.25, "care": 0.75}, "boost": {"rag": 1.0, "care": 0.5}})
    assert capsys.readouterr().out.splitlines() == [
        "          clean: {'closed_book': 0.0, 'rag': 1.0, 'care': 0.5}",
        "     resilience: {'rag': 0.25, 'care': 0.75}",
        "          boost: {'rag': 1.0, 'care': 0.5}",
    ]
