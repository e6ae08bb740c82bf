"""The reference for attention capture: eager attention with ``output_attentions``, per document."""

from __future__ import annotations

import torch


def eager_document_mass(model, ids, spans) -> list[float]:
    """Attention of the last position on each ``[start, end)`` token span, averaged over heads, then layers."""
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            out = model(torch.tensor([list(ids)]), output_attentions=True)
    finally:
        model.set_attn_implementation("sdpa")
    last = torch.stack([a[0, :, -1] for a in out.attentions])  # (layers, heads, N)
    return [last[:, :, s:e].sum(-1).mean(1).mean(0).item() for s, e in spans]
