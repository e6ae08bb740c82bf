"""The accuracy-by-gold-position protocol: cases, chat prompts, repeated sorting, and the CLI end to end
with tiny chat LMs built in code (one that sorts and answers, and a second one that only sorts)."""

from __future__ import annotations

import csv
import json

import pytest

pytest.importorskip("transformers")

from ragarbiter import Context, Passage  # noqa: E402
from ragarbiter.assessors.attention_sort.accuracy import (  # noqa: E402
    PositionCase,
    answered,
    chat_template,
    fractions,
    position_cases,
    recovery,
    sorted_orders,
)
from ragarbiter.errors import ConfigError, EmptyCorpusError  # noqa: E402
from tests.tiny_lm import save_tiny_lm  # noqa: E402

NAMES = ["Asha Kell", "Mira Voss", "Ravi Sand", "Nena Orr", "Tobin Hale", "Ulla Brek", "Piet Lamb", "Doran Pike"]
CITIES = ["Lisbon", "Quito", "Hanoi", "Accra", "Oslo", "Lima", "Perth", "Cairo"]


def _rows():
    for i, (name, city) in enumerate(zip(NAMES, CITIES)):
        friend = NAMES[(i + 3) % len(NAMES)]
        context = f"{name} is a painter born in {city}. {name} often visits the sea with {friend}."
        yield context, f"Where was {name} born?", city


@pytest.fixture(scope="module")
def synthwiki(tmp_path_factory):
    path = tmp_path_factory.mktemp("sw") / "madlibs.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["context", "question", "answer"])
        writer.writerows(_rows())
    return path


@pytest.fixture(scope="module")
def lms(tmp_path_factory):
    texts = [c for c, _, _ in _rows()] + [q for _, q, _ in _rows()]
    base = tmp_path_factory.mktemp("lms")
    return (
        save_tiny_lm(base / "answers", texts, max_positions=1024, seed=0),
        save_tiny_lm(base / "sorts", texts, max_positions=1024, seed=1),
    )


def test_cases_fill_the_length_with_distractors_that_never_hold_the_answer(synthwiki):
    from ragarbiter.datasets import read_synthwiki

    items = read_synthwiki(synthwiki)
    words = len  # a "token" per character keeps the arithmetic visible
    cases = position_cases(items, words, 200, limit=None, seed=3)
    assert [c.question for c in cases] == [i.question for i in items]
    sampled = [c.question for c in position_cases(items, words, 200, limit=3, seed=3)]
    assert len(set(sampled)) == 3 and set(sampled) < {i.question for i in items}
    for case in cases:
        assert all(case.answer not in d for d in case.distractors) and case.gold not in case.distractors
        total = len(case.gold) + sum(map(len, case.distractors))
        assert total >= 200 and total - len(case.distractors[-1]) < 200  # the last one was needed
        assert case.docs(0)[0] == case.gold and case.docs(len(case.distractors))[-1] == case.gold
        assert [case.depth(f) for f in fractions(3)] == [0, round(len(case.distractors) / 2), len(case.distractors)]
    assert position_cases(items, words, 200, limit=None, seed=3) == cases
    with pytest.raises(EmptyCorpusError, match="--context-tokens 100000"):
        position_cases(items, words, 100000, limit=2, seed=0)
    with pytest.raises(ConfigError, match="--positions must be >= 2"):
        fractions(1)


def test_the_sorters_prompt_is_the_chat_prompt_its_model_answers_from(lms):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(lms[0])
    text, spans = chat_template(tok).render("Where was Asha born?", ["First doc.", "Second doc."])
    content = (
        "Answer the question using only the documents below. Reply with the answer only.\n\n"
        "Document [1] First doc.\nDocument [2] Second doc.\n\nQuestion: Where was Asha born?"
    )
    turn = [{"role": "user", "content": content}]
    expected = tok.apply_chat_template(turn, tokenize=False, add_generation_prompt=True)
    assert text == expected
    assert [text[a:b] for a, b in spans] == ["First doc.", "Second doc."]


def test_answered_is_the_folded_answer_string_in_the_output():
    assert answered("He was born in  LISBON, Portugal.", "Lisbon")
    assert not answered("He was born in Lisb on.", "Lisbon") and not answered("anything", "  ")


def test_recovery_is_the_share_of_the_gap_won_back_at_the_worst_depth():
    table = {
        "0": {"accuracy_by_position": {"0.00": 0.8, "0.50": 0.4, "1.00": 0.9}, "best": 0.9, "worst": 0.4},
        "3": {"accuracy_by_position": {"0.00": 0.7, "0.50": 0.65, "1.00": 0.9}},
    }
    assert recovery(table, "3") == 0.5
    flat = {"0": {"accuracy_by_position": {"0.00": 0.5}, "best": 0.5, "worst": 0.5}, "1": {}}
    assert recovery(flat, "1") is None


def test_one_iteration_repeated_k_times_is_the_sorter_with_k_iterations(lms):
    from ragarbiter.assessors.attention_sort import AttentionSorter
    from ragarbiter.lm import load_generator

    lm = load_generator(str(lms[0]))
    template = chat_template(lm.tokenizer)
    contexts = [
        Context.for_query(q, tuple(Passage(c, id=f"d{i}") for i, (c, _, _) in enumerate(_rows())))
        for _, q, _ in list(_rows())[:3]
    ]
    once = AttentionSorter(model=lm.model, tokenizer=lm.tokenizer, template=template, iterations=1)
    orders = sorted_orders(once, contexts, [0, 1, 3])
    assert orders[0] == [[p.id for p in c.passages] for c in contexts]
    for k in (1, 3):
        direct = AttentionSorter(model=lm.model, tokenizer=lm.tokenizer, template=template, iterations=k)
        assert orders[k] == [[p.id for p in c.passages] for c in direct.sort_many(contexts)]
    assert orders[1] != orders[0]  # the sort moved something
    thrice = AttentionSorter(model=lm.model, tokenizer=lm.tokenizer, template=template, iterations=3)
    with pytest.raises(ConfigError, match="iterations=1"):
        sorted_orders(thrice, contexts, [1])


@pytest.mark.parametrize("second_sorter", [False, True])
def test_bench_reports_accuracy_by_depth_for_each_length_and_k(synthwiki, lms, tmp_path, capsys, second_sorter):
    from ragarbiter.cli.main import main
    from ragarbiter.datasets import read_synthwiki
    from ragarbiter.lm import load_generator

    argv = ["bench", "attention-sort", "--data", str(synthwiki), "--generator", str(lms[0])]
    argv += ["--context-tokens", "60", "150", "--positions", "3", "--iterations", "0", "1", "2", "--limit", "3"]
    argv += ["--timing-questions", "2", "--max-new-tokens", "4", "--plot", str(tmp_path), "--json"]
    if second_sorter:
        argv += ["--sorter", str(lms[1])]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (result["same_model"], result["iterations"], result["positions"]) == (
        not second_sorter,
        [0, 1, 2],
        ["0.00", "0.50", "1.00"],
    )
    assert result["sorter"].endswith("sorts" if second_sorter else "answers")
    assert list(result["by_length"]) == ["60", "150"]
    for table in result["by_length"].values():
        for k in ("0", "1", "2"):
            row = table[k]
            assert row["n"] == 3 and list(row["accuracy_by_position"]) == ["0.00", "0.50", "1.00"]
            assert row["worst"] == min(row["accuracy_by_position"].values()) <= row["mean"]
        # Unsorted, the gold paragraph stays where it was put (the middle rounds to a whole slot).
        assert (table["0"]["gold_depth_after"]["0.00"], table["0"]["gold_depth_after"]["1.00"]) == (0.0, 1.0)
        assert table["prompt_tokens"] > 60
    assert result["cost"]["questions"] == 2 and result["cost_per_iteration_vs_prefill"] > 0
    assert result["plots"] == [str(tmp_path / "attention_sort_positions.png")]
    assert (tmp_path / "attention_sort_positions.png").stat().st_size > 10_000
    # k = 0 at 60 tokens, recomputed here: the generator's greedy answers to the unsorted prompts.
    lm = load_generator(str(lms[0]))
    items = read_synthwiki(synthwiki)

    def count(text):
        return len(lm.tokenizer(text, add_special_tokens=False)["input_ids"])

    cases = position_cases(items, count, 60, limit=3, seed=0)
    template = chat_template(lm.tokenizer)
    hits = {}
    for fraction, key in zip(fractions(3), ["0.00", "0.50", "1.00"]):
        prompts = [template.render(c.question, c.docs(c.depth(fraction)))[0] for c in cases]
        outputs = lm.complete(prompts, max_new_tokens=4, batch_size=8)
        hits[key] = round(sum(answered(o, c.answer) for o, c in zip(outputs, cases)) / 3, 4)
    assert result["by_length"]["60"]["0"]["accuracy_by_position"] == hits


def test_position_case_docs_do_not_change_the_case():
    case = PositionCase("q?", "a", "gold", ("x", "y"))
    assert case.docs(1) == ["x", "gold", "y"] and case.distractors == ("x", "y")


class _LastDocumentReader:
    """Answers with the last document of the prompt: right exactly when the gold paragraph is last."""

    def complete(self, prompts, max_new_tokens, batch_size, progress=False):
        return [p.split("Document [")[-1].split("\n")[0] for p in prompts]


def test_accuracy_by_depth_counts_the_answers_where_the_gold_paragraph_sits(synthwiki):
    from ragarbiter.assessors.attention_sort.accuracy import run_length
    from ragarbiter.datasets import read_synthwiki
    from ragarbiter.lm.prompts import PromptTemplate

    cases = position_cases(read_synthwiki(synthwiki), len, 250, limit=4, seed=0)
    template = PromptTemplate(document="Document [{index}] {text}\n")
    table = run_length(cases, fractions(3), [0], generator=_LastDocumentReader(), sorter=None, template=template)
    assert table["0"]["accuracy_by_position"] == {"0.00": 0.0, "0.50": 0.0, "1.00": 1.0}
    assert (table["0"]["mean"], table["0"]["worst"], table["0"]["best"], table["0"]["n"]) == (0.3333, 0.0, 1.0, 4)
