"""The assessors read the shared base encoder: their pair tokens match transformers' tokenizer, and
their adapters merged without peft match peft's own merge."""

import json
import shutil

import pytest
import torch

from ragarbiter.assessors.backbone import Backbone, BackboneSpec, top_layers
from ragarbiter.models import resolve_model_path
from ragarbiter.retrievers.bert import base_encoder
from ragarbiter.training import lora_deltas


def _shipped(task: str):
    from importlib.resources import files

    return files("ragarbiter.assessors") / task / "default"


def test_pair_tokens_match_the_transformers_tokenizer():
    from transformers import AutoTokenizer

    spec = BackboneSpec(max_length=48)
    query = "Who first lit the lighthouse at Kestrel Bay, and in which year did the keeper start?"
    texts = ["The lighthouse was first lit in 1874 by Margit Holm. " * 6, "Short.", "Café naïve 12.5%"]
    got = Backbone(spec, device="cpu").encode_pairs(query, texts)
    tok = AutoTokenizer.from_pretrained(str(resolve_model_path(spec.model)))
    enc = tok(
        [query] * len(texts),
        texts,
        truncation="longest_first",
        max_length=48,
        return_offsets_mapping=True,
        return_token_type_ids=True,
    )
    for i, pair in enumerate(got):
        seq = enc.sequence_ids(i)
        assert pair.input_ids == tuple(enc["input_ids"][i])
        assert pair.token_type_ids == tuple(enc["token_type_ids"][i])
        assert pair.in_passage == tuple(s == 1 for s in seq)
        assert pair.offsets == tuple((a, b) if s == 1 else (0, 0) for (a, b), s in zip(enc["offset_mapping"][i], seq))
    assert len(got[0]) == 48


@pytest.mark.parametrize("task", ["conflict", "inappropriate", "poison"])
def test_adapters_merged_without_peft_match_peft(task):
    from ragarbiter.assessors.backbone import load_encoder_model
    from ragarbiter.training import load_adapter_into

    folder = _shipped(task)
    split = json.loads((folder / "manifest.json").read_text())["hyperparameters"]["backbone"]["split"]
    ours = top_layers("all-MiniLM-L6-v2", split, folder)
    theirs = load_adapter_into(load_encoder_model("all-MiniLM-L6-v2"), folder, merge=True).encoder.layer[split:]
    want = theirs.state_dict()
    got = ours.state_dict()
    assert set(got) == set(want)
    for name, value in want.items():
        torch.testing.assert_close(got[name], value, atol=1e-6, rtol=1e-5, msg=name)
    base = base_encoder("all-MiniLM-L6-v2", "cpu").encoder.layer[split]
    assert not torch.equal(ours[0].attention.self.query.weight, base.attention.self.query.weight)  # merged into a copy


def test_other_adapter_kinds_are_left_to_peft(tmp_path):
    folder = tmp_path / "dora"
    shutil.copytree(_shipped("conflict"), folder)
    assert lora_deltas(folder) is not None
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    assert lora_deltas(folder) is None
