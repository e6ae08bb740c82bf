"""Length-grouped inference blocks give what one padded batch gives (float32, a tiny BERT made in code)."""

import pytest
import torch
from transformers import BertConfig, BertModel

from ragarbiter.assessors.backbone import length_groups, padded_states, run_blocks, run_layers


@pytest.fixture(scope="module")
def layers():
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BertModel(config).eval().encoder.layer


def test_length_groups_cover_every_sequence_once_and_isolate_a_long_outlier():
    lengths = [130 + (k % 7) for k in range(19)] + [256]
    groups = length_groups(lengths)
    assert sorted(i for g in groups for i in g) == list(range(20))
    assert [19] in groups  # the 256-token passage does not pad the others to 256
    assert length_groups([64] * 8) == [list(range(8))]  # equal lengths: one batch
    assert length_groups([]) == []


@pytest.mark.parametrize("lengths", [[5], [7, 7, 7], [3, 40, 9, 41, 12, 90, 4, 88, 40]])
def test_run_blocks_matches_one_padded_batch(layers, lengths):
    states = [torch.randn(n, 32) for n in lengths]
    with torch.inference_mode():
        hidden, mask = padded_states(states)
        padded = run_layers(layers, hidden, mask)
        grouped = run_blocks(layers, states)
    assert [tuple(g.shape) for g in grouped] == [(n, 32) for n in lengths]
    for k, n in enumerate(lengths):
        assert torch.allclose(grouped[k], padded[k, :n], atol=1e-5), k
    assert not torch.allclose(grouped[0], states[0], atol=1e-2)  # the blocks did change the states
