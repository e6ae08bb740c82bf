"""CARE's assessor and base passes on a tiny Llama built in code."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("peft")

from ragarbiter.errors import ConfigError, InvalidInputError  # noqa: E402

from .tiny import PASSAGE, pretrained, tiny_care, tiny_llama  # noqa: E402


def test_soft_prompt_has_memory_tokens_per_chunk(tokenizer):
    care = tiny_care(tokenizer)
    n_tokens = len(tokenizer(PASSAGE, add_special_tokens=False)["input_ids"])
    chunks = -(-n_tokens // 12)
    soft = care.encode([PASSAGE, "Dashel."])
    assert soft.shape == ((chunks + 1) * 4, 48)
    with pytest.raises(InvalidInputError, match="empty"):
        care.encode([PASSAGE, "  "])


def test_adapter_is_on_for_the_assessor_and_off_for_the_base_lm(tokenizer):
    from peft.tuners.lora import LoraLayer

    care = tiny_care(tokenizer)
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
    care = tiny_care(tokenizer)
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


@pytest.mark.slow
def test_losses_train_only_the_assessor_and_reconstruction_falls(tokenizer):
    other = "Kiri Vos was born in Orem and paints ships for the harbour office in winter."
    care = tiny_care(tokenizer, base=pretrained(tokenizer, [" " + PASSAGE, " " + other]))
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
    assert float(loss.detach()) == pytest.approx(parts["lm"] + 2.0 * parts["kl"], rel=1e-5)
    assert parts["lm"] > 0.0 and parts["kl"] >= 0.0
    assert care.memory.grad is not None


def test_save_and_load_round_trip_and_refuse_another_base(tokenizer, tmp_path):
    from ragarbiter.assessors.care.model import CareModel

    care = tiny_care(tokenizer)
    with torch.no_grad():  # move every trained part away from its initial value
        care.memory.add_(0.5)
        for name, param in care.named_parameters():
            if "lora_B" in name or "projector" in name:
                param.add_(0.05 * torch.randn_like(param))
    care.save(tmp_path, "tiny-llama")
    again = CareModel.load(tmp_path, tiny_llama(tokenizer), tokenizer)
    trained = {n: p for n, p in care.named_parameters() if p.requires_grad}
    loaded = dict(again.named_parameters())
    assert all(torch.equal(p, loaded[n]) for n, p in trained.items())
    assert torch.allclose(care.encode([PASSAGE]), again.encode([PASSAGE]), atol=1e-5)
    with pytest.raises(ConfigError, match="trained on base model 'tiny-llama'"):
        CareModel.load(tmp_path, tiny_llama(tokenizer, seed=1), tokenizer)


def test_kl_term_is_teacher_to_student_at_a_temperature_as_a_hand_computation(tokenizer):
    care = tiny_care(tokenizer)
    question, answer, temperature = "Where was Tavo Rin born?", "Dashel", 0.5
    with torch.no_grad():  # a soft prompt far from the raw passage, so student and teacher differ clearly
        torch.manual_seed(0)
        care.projector[2].weight.normal_(0.0, 3.0)
        care.lm.get_output_embeddings().weight.mul_(20.0)
        with_kl, parts = care.conflict_loss(question, PASSAGE, answer, PASSAGE, lam=3.0, temperature=temperature)
        without, _ = care.conflict_loss(question, PASSAGE, answer, PASSAGE, lam=0.0, temperature=temperature)
        prefix, suffix = care.prompt_ids(question)
        target = tokenizer(" " + answer, add_special_tokens=False)["input_ids"]
        n = len(target)
        soft = care.encode([PASSAGE])
        student = care.base_logits(care.base_embeds(prefix, soft, suffix + target))[0, -n - 1 : -1].double()
        context = tokenizer(" " + PASSAGE, add_special_tokens=False)["input_ids"]
        teacher = care.base_logits(care.base_embeds(prefix + context, None, suffix + target))[0, -n - 1 : -1].double()
    hand = reverse = 0.0
    t_probs, s_probs = (teacher / temperature).softmax(-1), (student / temperature).softmax(-1)
    for row_t, row_s in zip(t_probs, s_probs):  # KL(teacher || student) per answer token, times T^2
        hand += sum(float(p) * (float(p.log()) - float(q.log())) for p, q in zip(row_t, row_s))
        reverse += sum(float(q) * (float(q.log()) - float(p.log())) for p, q in zip(row_t, row_s))
    hand, reverse = hand / n * temperature**2, reverse / n * temperature**2
    assert abs(hand - reverse) > 1e-3 * max(hand, 1e-6)  # the two directions differ here, so the test can tell
    assert parts["kl"] == pytest.approx(hand, rel=1e-4, abs=1e-6)
    assert float(with_kl - without) == pytest.approx(3.0 * hand, rel=1e-4, abs=1e-6)


def test_kl_helper_direction_on_two_distributions():
    from ragarbiter.assessors.care.model import kl_teacher_student

    teacher = torch.tensor([[0.9, 0.1]]).log()
    student = torch.tensor([[0.5, 0.5]]).log()
    expected = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)  # KL(teacher || student) = 0.368...
    assert float(kl_teacher_student(teacher, student, 1.0)) == pytest.approx(expected, rel=1e-6)
    assert float(kl_teacher_student(student, teacher, 1.0)) != pytest.approx(expected, rel=1e-2)
