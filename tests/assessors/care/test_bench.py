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


def test_print_result_lists_each_system_then_the_counts_then_resilience_and_boost(capsys):
    from ragarbiter.assessors.care.bench import print_result

    row = {"clean": 0.0, "counterfactual": 1.0, "unhelpful": 0.5, "mean": 0.5}
    result = {"closed_book": row, "rag": row, "care": row, "n": {"clean": 2, "counterfactual": 2, "unhelpful": 2}}
    print_result({**result, "resilience": {"rag": 0.25, "care": 0.75}})
    assert capsys.readouterr().out.splitlines() == [
        f"    closed_book: {row}",
        f"            rag: {row}",
        f"           care: {row}",
        "              n: {'clean': 2, 'counterfactual': 2, 'unhelpful': 2}",
        "     resilience: {'rag': 0.25, 'care': 0.75}",
    ]
