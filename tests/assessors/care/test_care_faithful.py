"""CARE as the reference trains it: both stage-2 halves, chat prompts, batching, LoRA options,
corpora for stage 1, and `bench care --data` on self-written LitM, RGB and ConflictQA samples."""

from __future__ import annotations

import gzip
import json
from argparse import Namespace

import pytest
import torch

pytest.importorskip("peft")

from ragarbiter.errors import InvalidInputError, ModelNotFoundError  # noqa: E402

from .tiny import PASSAGE, tiny_care, tiny_llama  # noqa: E402

# (question, answer, gold passage): answers are names, so NQ-Swap substitutes them for each other.
QA = [
    ("Where was Tavo Rin born?", "Dashel", "Tavo Rin was born in Dashel and blows glass for Miro Labs."),
    ("Where was Kiri Vos born?", "Orem", "Kiri Vos was born in Orem and paints ships for the harbour office."),
    ("Who employs Lem Ostra?", "Pallo Works", "Lem Ostra has worked for Pallo Works since the flood year."),
    ("Where was Nena Dau born?", "Kestry", "Nena Dau was born in Kestry, a town of salt traders."),
    ("Where does Ivo Marr live?", "Brannoc", "Ivo Marr lives in Brannoc by the old mill."),
    ("Who founded Seln Radio?", "Ada Fenn", "Seln Radio was founded by Ada Fenn after the war."),
]


def write_litm(path, rows=QA):
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for question, answer, gold in rows:
            ctx = {"title": "", "text": gold, "hasanswer": True, "isgold": True}
            fh.write(json.dumps({"question": question, "answers": [answer], "ctxs": [ctx]}) + "\n")
    return path


def every_other(qa):
    return [i % 2 == 0 for i in range(len(qa))]


# -- stage 2: both halves -------------------------------------------------------------------------------
def test_stage2_builds_both_halves_from_a_one_passage_litm_file(tmp_path):
    from ragarbiter.assessors.care.data import conflict_examples, contains_answer, example_counts, litm_records

    records = litm_records(write_litm(tmp_path / "litm.jsonl.gz"))
    assert len(records) == len(QA)  # none of these questions is in the held-out fifth
    examples = conflict_examples(records, every_other, seed=0)
    counts = example_counts(examples)
    assert counts == {"reconstruct": 0, "grounded": 3, "misleading": 3, "unhelpful": 3}
    answers = {q: a for q, a, _ in QA}
    golds = {q: g for q, _, g in QA}
    for ex in examples:
        (passage,) = ex.passages
        if ex.kind == "grounded":  # unknown questions: the gold passage, read raw by the teacher
            assert passage == golds[ex.question] and ex.teacher_passages == (passage,)
        else:  # known questions: the closed-book teacher, and a passage without the answer
            assert ex.teacher_passages is None and not contains_answer(passage, [answers[ex.question]])
        if ex.kind == "misleading":  # the gold passage with another question's answer swapped in
            subs = [a for a in answers.values() if a != answers[ex.question] and a in passage]
            assert len(subs) == 1 and passage == golds[ex.question].replace(answers[ex.question], subs[0])
    assert {ex.question for ex in examples if ex.kind == "grounded"} == {q for q, _, _ in QA[1::2]}


def test_stage2_with_three_passages_adds_unhelpful_fillers(tmp_path):
    from ragarbiter.assessors.care.data import conflict_examples, litm_records

    records = litm_records(write_litm(tmp_path / "litm.jsonl.gz"))
    examples = conflict_examples(records, every_other, seed=1, passages=3)
    assert examples and all(len(ex.passages) == 3 for ex in examples)
    grounded = [ex for ex in examples if ex.kind == "grounded"]
    assert all(dict((q, g) for q, _, g in QA)[ex.question] in ex.passages for ex in grounded)


@pytest.mark.parametrize(
    ("knows", "empty", "fix"),
    [
        (lambda qa: [True] * len(qa), "unknown-question \\(grounded\\) half is empty", "harder questions"),
        (lambda qa: [False] * len(qa), "known-question \\(misleading \\+ unhelpful\\) half", "stronger base model"),
    ],
)
def test_stage2_refuses_to_train_with_an_empty_half(tmp_path, knows, empty, fix):
    from ragarbiter.assessors.care.data import check_halves, conflict_examples, example_counts, litm_records

    records = litm_records(write_litm(tmp_path / "litm.jsonl.gz"))
    counts = example_counts(conflict_examples(records, knows))
    with pytest.raises(InvalidInputError, match=f"{empty}.*6 questions: grounded=.*{fix}"):
        check_halves(counts, len(records), "litm.jsonl.gz")


def test_train_care_finetune_stops_before_training_when_the_labeller_knows_everything(tmp_path, tokenizer, monkeypatch):
    from ragarbiter.assessors.care import train as care_train
    from ragarbiter.training import TrainConfig

    tiny_llama(tokenizer).save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    monkeypatch.setattr(care_train, "closed_book_labeller", lambda care, **_: lambda qa: [True] * len(qa))
    fitted = []
    monkeypatch.setattr(care_train.CareTrainModule, "forward", lambda *a: fitted.append(1))
    with pytest.raises(InvalidInputError, match="grounded=0, misleading=6, unhelpful=6"):
        care_train.train_care(
            str(tmp_path / "base"),
            "finetune",
            [str(write_litm(tmp_path / "litm.jsonl.gz"))],
            TrainConfig(out_dir=str(tmp_path / "out"), max_steps=1, progress=False),
        )
    assert not fitted and not (tmp_path / "out" / "manifest.json").exists()


def test_closed_book_labeller_batches_and_matches_answer_aliases(tokenizer, monkeypatch):
    from ragarbiter.assessors.care.train import closed_book_labeller

    care = tiny_care(tokenizer)
    calls = []

    def answers(questions, softs=None, passages=None, *, max_new_tokens, batch_size):
        calls.append((len(questions), batch_size))
        return ["It is Dashel.", "orem, I think", "Pallo", "dashelton"]

    monkeypatch.setattr(care, "answers", answers)
    knows = closed_book_labeller(care, batch_size=3)
    qa = [(q, [a]) for q, a, _ in QA[:3]] + [("Where?", ["Dashel"])]
    assert knows(qa) == [True, True, False, False]  # whole-word, case-insensitive; no partial words
    assert calls == [(4, 3)]  # one call for all questions, batched inside


# -- stage 1: any corpus the indexer reads ------------------------------------------------------------------
def test_stage1_reads_txt_md_and_jsonl_corpora_and_litm_files(tmp_path, monkeypatch):
    from ragarbiter.assessors.care import data
    from ragarbiter.assessors.care.data import corpus_passages

    # A held-out question's passage stays out: bench care reads it as unseen context.
    monkeypatch.setattr(data, "held_out", lambda question: question == QA[2][0])

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The Varnel bridge opened in 1911.\n", encoding="utf-8")
    (corpus / "b.md").write_text("# Osk\n\nThe river Osk floods in spring.\n", encoding="utf-8")
    lines = [json.dumps({"text": "Mount Tarn is cold."}), json.dumps({"title": "no text"})]
    (corpus / "c.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    litm = write_litm(tmp_path / "litm.jsonl.gz", QA[:3])
    texts = corpus_passages([str(corpus), str(litm)])
    assert texts == [
        "The Varnel bridge opened in 1911.",
        "# Osk\n\nThe river Osk floods in spring.",
        "Mount Tarn is cold.",
        QA[0][2],
        QA[1][2],
    ]


# -- LoRA options, per-architecture defaults ----------------------------------------------------------------
def test_lora_defaults_follow_the_architecture_and_options_reach_the_saved_adapter(tokenizer, tmp_path):
    care = tiny_care(tokenizer)  # a Llama: the reference's Llama-3 setting
    assert (care.config.lora_r, care.config.lora_alpha, care.config.target_modules) == (64, 128, ("q_proj", "v_proj"))
    custom = tiny_care(tokenizer, lora_r=4, lora_alpha=12, target_modules=("q_proj", "o_proj", "up_proj"))
    custom.save(tmp_path, "tiny-llama")
    saved = json.loads((tmp_path / "adapter_config.json").read_text())
    assert saved["r"] == 4 and saved["lora_alpha"] == 12
    assert sorted(saved["target_modules"]) == ["o_proj", "q_proj", "up_proj"]
    adapted = {n.split(".")[-2] for n, _ in custom.lm.named_modules() if n.endswith(".lora_A")}
    assert adapted == {"o_proj", "q_proj", "up_proj"}
    assert json.loads((tmp_path / "care.json").read_text())["care"]["lora_r"] == 4


def test_train_care_cli_options_parse_lora_targets_and_per_architecture_defaults():
    import argparse

    from ragarbiter.assessors.care.train import add_arguments

    p = argparse.ArgumentParser()
    add_arguments(p)
    base = ["--base-model", "m", "--stage", "finetune", "--out", "o"]
    args = p.parse_args([*base, "--lora-targets", "q_proj, v_proj,gate_proj", "--lora-r", "16"])
    assert args.lora_targets == ("q_proj", "v_proj", "gate_proj") and args.lora_r == 16 and args.lora_alpha is None
    defaults = p.parse_args(base)
    assert (defaults.lora_r, defaults.lora_targets, defaults.passages) == (None, None, None)
    assert defaults.kl_temperature == 1.0
    assert defaults.batch_size == 4


# -- chat templates -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chat_care():
    from tests.tiny_lm import tiny_tokenizer

    tok = tiny_tokenizer([PASSAGE * 3, "Question: Where was Tavo Rin born? Answer: Dashel. Documents:"], 300)
    return tiny_care(tok, base=tiny_llama(tok))


def test_chat_model_prompts_go_through_the_chat_template(chat_care):
    from ragarbiter.lm import CausalLM

    care, tok = chat_care, chat_care.tokenizer
    assert care.config.prompt == "chat"
    question = "Where was Tavo Rin born?"
    plain_rag = CausalLM(care.lm, tok).prompt(question, [PASSAGE])  # what the generator answers RAG with
    prefix, suffix = care.prompt_ids(question)
    assert tok.decode(prefix).startswith("<|im_start|>user\nDocuments:\n")
    assert tok.decode(prefix + care.context_ids([PASSAGE]) + suffix) == plain_rag
    closed, rest = care.closed_book_ids(question)
    assert tok.decode(closed + rest) == CausalLM(care.lm, tok).prompt(question)
    assert care.target_ids("Dashel") == tok("Dashel", add_special_tokens=False)["input_ids"]  # no leading space


def test_plain_tokenizer_keeps_the_plain_layout(tokenizer):
    care = tiny_care(tokenizer)
    assert care.config.prompt == "plain"
    prefix, suffix = care.prompt_ids("Where?")
    assert tokenizer.decode(prefix) == "<s>Context:" and tokenizer.decode(suffix) == "\nQuestion: Where?\nAnswer:"


# -- batching ----------------------------------------------------------------------------------------------
def test_batched_answers_and_losses_equal_one_at_a_time(chat_care):
    care = chat_care
    questions = ["Where was Tavo Rin born?", "Who?", "Where was Tavo Rin born and when did he work?"]
    with torch.no_grad():
        softs = care.encode_groups([[PASSAGE], ["Dashel is a town."], [PASSAGE, "Dashel."]])
        batched = care.answers(questions, softs, max_new_tokens=4, batch_size=3)
        single = [care.answer(q, s, max_new_tokens=4) for q, s in zip(questions, softs)]
        assert batched == single
        rag = care.answers(questions, passages=[[PASSAGE], ["Dashel."], None], max_new_tokens=4, batch_size=2)
        assert rag[2] == care.answer(questions[2], None, max_new_tokens=4)  # no passages: closed book
        items = [
            (questions[0], [PASSAGE], "Dashel", [PASSAGE]),
            (questions[1], ["Dashel is a town."], "Miro Labs", None),
        ]
        losses, _ = care.conflict_losses(items, lam=2.0, temperature=2.0)
        one = [care.conflict_losses([item], lam=2.0, temperature=2.0)[0][0] for item in items]
        recon = care.reconstruction_losses([PASSAGE, "Dashel."], ["Copy:", "Repeat the context word for word:"])
    assert torch.allclose(losses, torch.stack(one), atol=1e-4)
    assert torch.allclose(recon[1], care.reconstruction_loss("Dashel.").detach(), atol=1e-4)


# -- bench care --data ----------------------------------------------------------------------------------------
RGB = [
    {
        "id": 0,
        "query": "Where was Tavo Rin born?",
        "answer": ["Dashel"],
        "positive": ["Tavo Rin was born in Dashel."],
        "positive_wrong": ["Tavo Rin was born in Orem."],
        "negative": ["Kiri Vos paints ships."],
    },
    {
        "id": 1,
        "query": "Who employs Lem Ostra?",
        "answer": [["Pallo Works", "Pallo"]],
        "positive": ["Lem Ostra works for Pallo Works."],
        "positive_wrong": ["Lem Ostra works for Miro Labs."],
        "negative": [],
    },
]
CONFLICTQA = [
    {
        "question": "Is Dashel a town of salt traders?",
        "ground_truth": ["True"],
        "memory_answer": "Dashel is not a town of salt traders.",
        "parametric_memory": "Dashel trades only glass.",
        "counter_answer": "Dashel is a town of salt traders.",
        "counter_memory": "Dashel has traded salt for centuries.",
        "parametric_memory_aligned_evidence": "Records show no salt market in Dashel.",
        "counter_memory_aligned_evidence": "The salt guild of Dashel dates to 1400.",
    },
    {
        "question": "Does Orem have a harbour?",
        "ground_truth": "False",
        "memory_answer": "Orem has a harbour.",
        "parametric_memory": "Orem's harbour is busy.",
        "counter_answer": "Orem does not have a harbour.",
        "counter_memory": "Orem lies far inland.",
        "parametric_memory_aligned_evidence": "Ships dock at Orem every day.",
        "counter_memory_aligned_evidence": "Orem is two hundred miles from the sea.",
    },
]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_bench_cases_read_rgb_and_conflictqa_samples(tmp_path):
    from ragarbiter.assessors.care.data import BenchCase, answered, bench_cases

    kind, sets = bench_cases(_jsonl(tmp_path / "en_fact.json", RGB))
    assert kind == "rgb"
    expected = BenchCase("Who employs Lem Ostra?", ("Pallo Works", "Pallo"), tuple(RGB[1]["positive"]))
    assert sets["clean"][1] == expected
    assert sets["counterfactual"][0].passages == ("Tavo Rin was born in Orem.",)
    assert sets["unhelpful"][0].passages == ("Kiri Vos paints ships.",)
    assert sets["unhelpful"][1].passages == ("Tavo Rin was born in Dashel.",)  # no negative: another query's
    kind, sets = bench_cases(_jsonl(tmp_path / "conflictQA-x.json", CONFLICTQA))
    assert kind == "conflictqa"
    clean = [c.passages[0] for c in sets["clean"]]
    assert clean == ["The salt guild of Dashel dates to 1400.", "Orem is two hundred miles from the sea."]
    assert [c.passages[0] for c in sets["counterfactual"]] == [
        "Records show no salt market in Dashel.",
        "Ships dock at Orem every day.",
    ]
    assert answered("Yes, it is.", sets["clean"][0]) and not answered("No, not yes.", sets["clean"][0])
    assert answered("No.", sets["clean"][1])


def test_bench_care_runs_on_a_litm_file_and_skips_trained_questions(tmp_path, tokenizer, monkeypatch):
    from ragarbiter.assessors.care import bench, data

    # LitM cases come from the held-out fifth only; here every question but the last is held out.
    monkeypatch.setattr(data, "held_out", lambda question: question != QA[5][0])

    base = tiny_llama(tokenizer)
    base.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    care = tiny_care(tokenizer, base=base)
    care.save(tmp_path / "care", "base")
    from ragarbiter.assessors.qa import question_digest

    trained = [question_digest(QA[0][0])]
    manifest = {"questions": {"digest": "sha1-12 of qa.question_key", "count": 1, "values": trained}}
    (tmp_path / "care" / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    args = Namespace(
        model=None,
        data=str(write_litm(tmp_path / "litm.jsonl.gz")),
        generator=str(tmp_path / "base"),
        care=str(tmp_path / "care"),
        limit=None,
        questions=200,
        passages=None,
        batch_size=4,
        device="cpu",
        seed=0,
        unseen_only=True,
    )
    result = bench.run(args)
    assert result["format"] == "litm" and result["unseen_only"] is True
    assert result["n"] == {"clean": 4, "counterfactual": 4, "unhelpful": 4}  # QA[0] trained on, QA[5] not held out
    assert result["skipped_trained"] == {"clean": 1, "counterfactual": 1, "unhelpful": 1}
    for system in bench.SYSTEMS:
        row = result[system]
        assert set(row) == {"clean", "counterfactual", "unhelpful", "mean"}
        assert row["mean"] == pytest.approx(sum(row[c] for c in bench.CONDITIONS) / 3, abs=1e-4)


def test_bench_care_summary_counts_right_answers_per_condition():
    from ragarbiter.assessors.care.bench import summary

    correct = {
        "clean": {"closed_book": [False, False], "rag": [True, True], "care": [True, False]},
        "counterfactual": {"closed_book": [True, True], "rag": [False, False], "care": [True, False]},
        "unhelpful": {"closed_book": [True, False], "rag": [False, False], "care": [True, True]},
    }
    out = summary(correct)
    assert out["rag"] == {"clean": 1.0, "counterfactual": 0.0, "unhelpful": 0.0, "mean": 0.3333}
    assert out["care"] == {"clean": 0.5, "counterfactual": 0.5, "unhelpful": 1.0, "mean": 0.6667}


def test_bench_care_without_a_shipped_adapter_names_the_training_command(monkeypatch, tmp_path):
    from ragarbiter.assessors.care import bench, config

    monkeypatch.setattr(config, "SHIPPED", tmp_path / "shipped")
    with pytest.raises(ModelNotFoundError, match="ragarbiter train care"):
        bench.default_care_dir()
