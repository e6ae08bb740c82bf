"""CARE's assessor and base passes on a tiny Llama built in code."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("peft")

from ragarbiter.errors import ConfigError, InvalidInputError  # noqa: E402

PASSAGE = "Tavo Rin was born in Dashel and works for Miro Labs as a glassblower since the year nineteen ten."


@pytest.fixture(scope="module")
def tokenizer():
    from ragarbiter.lm import bpe_tokenizer

    return bpe_tokenizer([PASSAGE * 3, "Question: Where was Tavo Rin born?\nAnswer: Dashel. Context: Repeat"], 300)


def _base(tokenizer, seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=48,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
        )
    )


def _care(tokenizer, base=None, **config):
    from ragarbiter.assessors.care.model import CareConfig, CareModel

    return CareModel(
        base or _base(tokenizer), tokenizer, CareConfig(**{"memory_tokens": 4, "chunk_tokens": 12, **config})
    )


def _pretrained(tokenizer, texts, steps=60):
    """A base LM that has seen `texts` (CARE starts from a pretrained LM, never a random one)."""
    model = _base(tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batch = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    for _ in range(steps):
        for ids in batch:
            ids = torch.tensor([ids])
            loss = model(input_ids=ids, labels=ids).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def test_soft_prompt_has_memory_tokens_per_chunk(tokenizer):
    care = _care(tokenizer)
    n_tokens = len(tokenizer(PASSAGE, add_special_tokens=False)["input_ids"])
    chunks = -(-n_tokens // 12)
    soft = care.encode([PASSAGE, "Dashel."])
    assert soft.shape == ((chunks + 1) * 4, 48)
    with pytest.raises(InvalidInputError, match="empty"):
        care.encode([PASSAGE, "  "])


def test_adapter_is_on_for_the_assessor_and_off_for_the_base_lm(tokenizer):
    from peft.tuners.lora import LoraLayer

    care = _care(tokenizer)
    lora = next(m for m in care.lm.modules() if isinstance(m, LoraLayer))
    calls = []
    lora.lora_A["default"].register_forward_hook(lambda *a: calls.append(1))
    soft = care.encode([PASSAGE])
    assert calls, "the assessor pass must run the LoRA weights"
    assert not care.adapter_enabled  # off again as soon as the assessor pass ends
    calls.clear()
    care.base_logits(care.base_embeds([1, 5], soft, [7, 8]))
    assert not calls, "the base LM must run with the adapter disabled"
    names = [n for n, p in care.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in names)  # switching the adapter never hides the LoRA weights from an optimizer


def test_base_lm_never_receives_passage_token_ids(tokenizer):
    care = _care(tokenizer)
    seen = []
    care.lm.get_input_embeddings().register_forward_hook(lambda m, args, out: seen.append(args[0].flatten().tolist()))
    soft = care.encode([PASSAGE])
    seen.clear()
    prefix, suffix = [1, 9, 10], [11, 12]
    care.generate(prefix, soft, suffix, max_new_tokens=3)
    passage = tokenizer(PASSAGE, add_special_tokens=False)["input_ids"]
    assert seen[:2] == [prefix, suffix]  # the only prompt tokens the base LM embeds
    flat = [t for ids in seen for t in ids]
    assert not any(flat[i : i + 6] == passage[:6] for i in range(len(flat)))


def test_losses_train_only_the_assessor_and_reconstruction_falls(tokenizer):
    other = "Kiri Vos was born in Orem and paints ships for the harbour office in winter."
    care = _care(tokenizer, base=_pretrained(tokenizer, [" " + PASSAGE, " " + other]))
    trainable = [p for p in care.parameters() if p.requires_grad]
    names = {n for n, p in care.named_parameters() if p.requires_grad}
    assert "memory" in names and any("lora_" in n for n in names) and any("projector" in n for n in names)
    assert not any("embed_tokens" in n for n in names)
    optimizer = torch.optim.AdamW(trainable, lr=3e-2)
    first = None
    for step in range(30):
        loss = care.reconstruction_loss(PASSAGE if step % 2 else other)
        first = first if first is not None else float(loss.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    final = float(care.reconstruction_loss(other).detach())
    assert final < 0.7 * first
    optimizer.zero_grad(set_to_none=True)
    loss, parts = care.conflict_loss("Where was Tavo Rin born?", PASSAGE, "Dashel", teacher_passage=PASSAGE, lam=2.0)
    loss.backward()
    assert torch.isfinite(loss) and parts["kl"] >= 0.0
    assert care.memory.grad is not None


def test_save_and_load_round_trip_and_refuse_another_base(tokenizer, tmp_path):
    from ragarbiter.assessors.care.model import CareModel

    care = _care(tokenizer)
    with torch.no_grad():  # move every trained part away from its initial value
        care.memory.add_(0.5)
        for name, param in care.named_parameters():
            if "lora_B" in name or "projector" in name:
                param.add_(0.05 * torch.randn_like(param))
    care.save(tmp_path, "tiny-llama")
    again = CareModel.load(tmp_path, _base(tokenizer), tokenizer)
    trained = {n: p for n, p in care.named_parameters() if p.requires_grad}
    loaded = dict(again.named_parameters())
    assert all(torch.equal(p, loaded[n]) for n, p in trained.items())
    assert torch.allclose(care.encode([PASSAGE]), again.encode([PASSAGE]), atol=1e-5)
    with pytest.raises(ConfigError, match="trained on base model 'tiny-llama'"):
        CareModel.load(tmp_path, _base(tokenizer, seed=1), tokenizer)


# -- training through the CLI -------------------------------------------------------------------------
FACTS = [
    ("Where was Tavo Rin born?", "Dashel", "Tavo Rin was born in Dashel and blows glass for Miro Labs."),
    ("Where was Kiri Vos born?", "Orem", "Kiri Vos was born in Orem and paints ships for the harbour office."),
    ("Who employs Lem Ostra?", "Pallo Works", "Lem Ostra has worked for Pallo Works since the flood year."),
    ("Where was Nena Dau born?", "Kestry", "Nena Dau was born in Kestry, a town of salt traders."),
]


def test_train_care_cli_runs_both_stages_and_the_stage1_loss_falls(tmp_path, capsys):
    import gzip
    import json

    from ragarbiter.assessors.care.model import CareModel
    from ragarbiter.cli.main import main
    from ragarbiter.lm import bpe_tokenizer

    texts = [t for _, _, t in FACTS]
    tok = bpe_tokenizer([*texts, "Context:\nQuestion: Answer:"], 300)
    base = _pretrained(tok, [" " + t for t in texts], steps=40)
    base.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    data = tmp_path / "litm.jsonl.gz"
    with gzip.open(data, "wt", encoding="utf-8") as fh:
        for i, (question, answer, gold) in enumerate(FACTS):
            others = [{"title": "", "text": t, "isgold": False} for j, (_, _, t) in enumerate(FACTS) if j != i]
            fh.write(
                json.dumps(
                    {
                        "question": question,
                        "answers": [answer],
                        "ctxs": [{"title": "", "text": gold, "isgold": True}, *others],
                    }
                )
                + "\n"
            )
    common = [
        "--base-model",
        str(tmp_path / "base"),
        "--data",
        str(data),
        "--batch-size",
        "2",
        "--lr",
        "3e-2",
        "--no-progress",
        "--eval-fraction",
        "0.25",
        "--json",
    ]
    assert (
        main(["train", "care", "--stage", "pretrain", "--out", str(tmp_path / "s1"), "--max-steps", "24", *common]) == 0
    )
    run = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run"]
    assert run["final_train_loss"] < 0.7 * run["initial_train_loss"]
    assert (
        main(
            [
                "train",
                "care",
                "--stage",
                "finetune",
                "--init",
                str(tmp_path / "s1"),
                "--out",
                str(tmp_path / "s2"),
                "--max-steps",
                "4",
                *common,
            ]
        )
        == 0
    )
    manifest = json.loads((tmp_path / "s2" / "manifest.json").read_text())
    counts = manifest["hyperparameters"]["examples"]
    assert counts["grounded"] + counts["adversarial"] == len(FACTS) and counts["reconstruct"] == 0
    assert (tmp_path / "s2" / "care.json").is_file()
    from ragarbiter.lm import load_causal_lm

    model, tokenizer = load_causal_lm(str(tmp_path / "base"))
    care = CareModel.load(tmp_path / "s2", model, tokenizer)
    assert care.encode([FACTS[0][2]]).shape == (16, 48)  # one chunk, 16 memory tokens (the defaults)


def test_kl_term_matches_a_hand_computation(tokenizer):
    care = _care(tokenizer)
    question, answer = "Where was Tavo Rin born?", "Dashel"
    with torch.no_grad():
        with_kl, parts = care.conflict_loss(question, PASSAGE, answer, teacher_passage=PASSAGE, lam=3.0)
        without, _ = care.conflict_loss(question, PASSAGE, answer, teacher_passage=PASSAGE, lam=0.0)
        prefix, suffix = care.prompt_ids(question)
        target = tokenizer(" " + answer, add_special_tokens=False)["input_ids"]
        n = len(target)
        soft = care.encode([PASSAGE])
        student = care.base_logits(care.base_embeds(prefix, soft, suffix + target))[0, -n - 1 : -1].double()
        context = tokenizer(" " + PASSAGE, add_special_tokens=False)["input_ids"]
        teacher = care.base_logits(care.base_embeds(prefix + context, None, suffix + target))[0, -n - 1 : -1].double()
    hand = 0.0
    for row_s, row_t in zip(student.softmax(-1), teacher.softmax(-1)):  # KL(student || teacher), per answer token
        hand += sum(float(p) * (float(p.log()) - float(q.log())) for p, q in zip(row_s, row_t))
    hand /= n
    assert parts["kl"] == pytest.approx(hand, rel=1e-4, abs=1e-6)
    assert float(with_kl - without) == pytest.approx(3.0 * hand, rel=1e-4, abs=1e-6)


def _generator(tokenizer):
    from ragarbiter.assessors.care import CareGenerator

    return CareGenerator(_care(tokenizer), max_new_tokens=4)


def test_stage_fills_the_soft_prompt_and_reports_it(tokenizer):
    from ragarbiter import Context, Passage
    from ragarbiter.assessors.care import CareAssessor

    generator = _generator(tokenizer)
    passages = [Passage(PASSAGE), Passage(" "), Passage("Dashel is a town.")]
    out = CareAssessor(generator)(Context.for_query("Where was Tavo Rin born?", passages))
    chunks = len(generator.care.chunks([PASSAGE, "Dashel is a town."]))  # the blank passage is skipped
    assert chunks >= 3 and out.soft_prompt.shape == (chunks * 4, 48)
    event = out.trace[-1]
    assert event.kind == "soft_prompt_built" and event.passage_ids == (passages[0].id, passages[2].id)
    # the answer comes from this context's soft prompt, not closed book
    assert generator.answer(out) == generator.care.answer("Where was Tavo Rin born?", out.soft_prompt, 4)
    with pytest.raises(ConfigError, match="care_dir"):
        CareAssessor()


def test_care_chat_model_in_a_langchain_chain(tokenizer):
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    from ragarbiter.adapters.langchain import CareChatModel, care_messages

    llm = CareChatModel(generator=_generator(tokenizer))
    retriever = RunnableLambda(lambda q: [Document(PASSAGE), Document("Dashel is a town.")])
    chain = {"documents": retriever, "question": RunnablePassthrough()} | RunnableLambda(care_messages) | llm
    from ragarbiter.adapters.langchain import ArbiterCallbackHandler

    handler = ArbiterCallbackHandler()
    reply = chain.invoke("Where was Tavo Rin born?", config={"callbacks": [handler]})
    soft = llm.generator.soft_prompt([PASSAGE, "Dashel is a town."])  # what the retrieved documents encode to
    assert reply.content == llm.generator.answer("Where was Tavo Rin born?", soft)
    assert handler.n_events == 1  # the soft_prompt_built decision reached the chain's callbacks
    chunks = len(llm.generator.care.chunks([PASSAGE, "Dashel is a town."]))
    assert reply.response_metadata["soft_prompt_shape"] == [chunks * 4, 48] and reply.response_metadata["passages"] == 2
    closed = llm.invoke("Where was Tavo Rin born?")  # no documents: closed book
    assert closed.response_metadata["soft_prompt_shape"] is None


def test_llama_index_postprocessor_hands_the_soft_prompt_to_the_llm(tokenizer):
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from ragarbiter.adapters.llama_index import CareLLM, CarePostprocessor

    generator = _generator(tokenizer)
    llm, post = CareLLM(generator=generator), CarePostprocessor(generator=generator)
    nodes = [NodeWithScore(node=TextNode(text=PASSAGE), score=1.0)]
    question = "Where was Tavo Rin born?"
    assert post.postprocess_nodes(nodes, query_bundle=QueryBundle(question)) == nodes
    answered = llm.complete(f"Context information is below.\n{PASSAGE}\nQuery: {question}\nAnswer: ")
    assert answered.additional_kwargs["soft_prompt"] is True
    again = llm.complete(f"Query: {question}\nAnswer: ")  # the hand-over is used once
    assert again.additional_kwargs["soft_prompt"] is False


async def test_llama_index_async_path_keeps_the_hand_over(tokenizer):
    """LlamaIndex runs the async postprocessor in a worker thread and the LLM on the event loop."""
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from ragarbiter.adapters.llama_index import CareLLM, CarePostprocessor

    generator = _generator(tokenizer)
    llm, post = CareLLM(generator=generator), CarePostprocessor(generator=generator)
    question = "Where was Tavo Rin born?"
    await post.apostprocess_nodes(
        [NodeWithScore(node=TextNode(text=PASSAGE), score=1.0)], query_bundle=QueryBundle(question)
    )
    answered = await llm.acomplete(f"Query: {question}\nAnswer: ")
    assert answered.additional_kwargs["soft_prompt"] is True


def test_testbed_training_items_leave_the_held_out_questions_out():
    from ragarbiter.assessors.care.data import testbed_items
    from ragarbiter.assessors.qa import held_out
    from ragarbiter.synthetic import WorldConfig, build_world

    world = build_world(WorldConfig(seed=4, people=20, companies=4, cities=4, countries=2))
    asked = {q for q, *_ in testbed_items(world)}
    every = {i.question for i in world.qa_items()}
    assert asked == {q for q in every if not held_out(q)} and len(every - asked) > 0


def test_two_process_cpu_accelerate_launch_trains_care(tmp_path, tokenizer):
    import gzip
    import json
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    launcher = Path(sys.executable).with_name("accelerate")
    launcher = str(launcher) if launcher.exists() else shutil.which("accelerate")
    if launcher is None:
        pytest.skip("accelerate not installed")
    _base(tokenizer).save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    data = tmp_path / "litm.jsonl.gz"
    with gzip.open(data, "wt", encoding="utf-8") as fh:
        for question, answer, gold in FACTS:
            fh.write(
                json.dumps(
                    {"question": question, "answers": [answer], "ctxs": [{"title": "", "text": gold, "isgold": True}]}
                )
                + "\n"
            )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [
        launcher,
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "ragarbiter.cli.main",
        "train",
        "care",
        "--stage",
        "pretrain",
        "--base-model",
        str(tmp_path / "base"),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "out"),
        "--cpu",
        "--max-steps",
        "2",
        "--batch-size",
        "1",
        "--eval-fraction",
        "0.25",
        "--no-progress",
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["run"]["processes"] == 2 and manifest["run"]["steps"] == 2
    assert (tmp_path / "out" / "care.json").is_file()
