"""The optional stance head: for yes/no questions, opposite stances conflict even when the answer vectors agree."""

import torch

from ragarbiter.assessors.conflict.model import ConflictHead


def _code(head: ConflictHead, z: torch.Tensor, stance: float, relevance: float = 10.0) -> torch.Tensor:
    return torch.cat([z, torch.tensor([stance, relevance])])[None]


def test_opposite_stances_conflict_only_for_yes_no_questions():
    torch.manual_seed(0)
    head = ConflictHead(hidden=16, dim=4, stance=True, stance_weight=1.0).eval()
    z = torch.nn.functional.normalize(torch.ones(4), dim=0)
    yes, no = _code(head, z, 10.0), _code(head, z, -10.0)
    with torch.no_grad():
        opposite = head.pair_probs(yes, no, yes_no=True)
        same = head.pair_probs(yes, yes, yes_no=True)
        plain = head.pair_probs(yes, no, yes_no=False)
        differ_only = head.pair_probs(yes, no, yes_no=False, stance_weight=1.0)
    assert opposite.item() > 0.99 and same.item() < 0.01
    assert abs(plain.item() - differ_only.item()) < 1e-6  # not a yes/no question: the stance is ignored
    assert abs(plain.item() - opposite.item()) > 0.05


def test_a_head_without_stance_keeps_the_old_code_layout():
    head = ConflictHead(hidden=16, dim=4)
    hidden = torch.randn(2, 5, 16)
    mask = torch.ones(2, 5, dtype=torch.bool)
    assert head.embed(hidden, mask).shape == (2, 5)  # [z (4), relevance]
    with_stance = ConflictHead(hidden=16, dim=4, stance=True)
    assert with_stance.embed(hidden, mask).shape == (2, 6)  # [z (4), stance, relevance]
