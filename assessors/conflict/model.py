"""The conflict model: one query-conditioned vector per passage, then a cheap pair head.

Each passage is encoded once with the query (`[CLS] query [SEP] passage`), so n passages
cost n encoder passes, never n^2. The pair head compares two passage vectors with
symmetric features (product and absolute difference) and returns the probability that
the two passages give different answers to the query.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ragarbiter.training import LoraSettings

from ..adapted import AdaptedEncoder, AdaptedParts
from ..backbone import BackboneSpec, pad_batch, padded_states, run_layers

logger = logging.getLogger(__name__)


class ConflictHead(nn.Module):
    """Pooled token states -> unit vector (`embed`); two vectors -> conflict logit (`pair_logits`)."""

    def __init__(self, hidden: int = 384, dim: int = 128) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.pair = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU(), nn.Linear(dim, 1))

    def embed(self, hidden: torch.Tensor, passage_mask: torch.Tensor) -> torch.Tensor:
        m = passage_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        mean = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, H)
        z = self.proj(torch.cat([hidden[:, 0], mean], dim=-1))  # (B, dim)
        return nn.functional.normalize(z, dim=-1)

    def pair_logits(self, za: torch.Tensor, zb: torch.Tensor) -> torch.Tensor:
        return self.pair(torch.cat([za * zb, (za - zb).abs()], dim=-1)).squeeze(-1)  # (P,)


class ConflictNet(AdaptedEncoder):
    """The trainable model: frozen bottom blocks, LoRA in the top blocks, ConflictHead."""

    def __init__(self, spec: BackboneSpec, lora: LoraSettings, dim: int = 128) -> None:
        super().__init__(spec, lora, lambda hidden: ConflictHead(hidden, dim), {"head_dim": dim})

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        z = self.head.embed(self.top_states(batch), batch["passage_mask"])  # (N, dim)
        pairs, labels = batch["pairs"], batch["labels"].float()  # (P, 2), (P,)
        logits = self.head.pair_logits(z[pairs[:, 0]], z[pairs[:, 1]])
        loss = nn.functional.binary_cross_entropy_with_logits(logits, labels)
        return {"loss": loss, "scores": torch.sigmoid(logits), "labels": labels}


def _make_head(hidden: int, settings: dict) -> ConflictHead:
    return ConflictHead(hidden, int(settings.get("head_dim", 128)))


def default_adapter_dir() -> Path:
    """The adapter shipped with the package (trained with `ragarbiter train conflict`)."""
    return Path(__file__).resolve().parent / "default"


class ConflictScorer:
    """Inference: query-conditioned passage vectors (cached) and pairwise conflict probabilities."""

    def __init__(self, adapter: str | Path | None = None, *, device: str | None = None, cache_size: int = 1024) -> None:
        self.adapter = Path(adapter) if adapter is not None else default_adapter_dir()
        self._cache: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
        self.cache_size = cache_size
        self._lock = threading.Lock()
        self._adapted = AdaptedParts(self.adapter, _make_head, device)

    @property
    def _parts(self):
        return self._adapted.loaded

    def load(self) -> ConflictScorer:
        self._parts  # noqa: B018
        return self

    def embed(self, query: str, texts: Sequence[str]) -> torch.Tensor:
        """(n, dim) unit vectors, one per text, conditioned on `query`."""
        backbone, layers, head = self._parts
        texts = list(texts)
        with self._lock:
            found = {t: self._cache.get((query, t)) for t in texts}
        missing = list(dict.fromkeys(t for t, v in found.items() if v is None))
        if missing:
            encodings, states = backbone.bottom(query, missing)
            hidden, mask = padded_states(states, backbone.device)
            passage = pad_batch(encodings, backbone.device)["passage_mask"]
            with torch.inference_mode():
                z = head.embed(run_layers(layers, hidden, mask).float(), passage)
            with self._lock:
                for t, v in zip(missing, z.cpu()):
                    found[t] = v
                    self._cache[(query, t)] = v
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return torch.stack([found[t] for t in texts]) if texts else torch.zeros(0, 1)

    def pair_probabilities(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """(n, n) symmetric matrix of conflict probabilities (zero diagonal)."""
        n = len(texts)
        if n < 2:
            return np.zeros((n, n), dtype=np.float32)
        _, _, head = self._parts
        z = self.embed(query, texts)
        i, j = torch.triu_indices(n, n, offset=1)
        with torch.inference_mode():
            p = torch.sigmoid(head.pair_logits(z[i], z[j])).numpy()
        out = np.zeros((n, n), dtype=np.float32)
        out[i.numpy(), j.numpy()] = p
        return out + out.T


@functools.lru_cache(maxsize=8)
def shared_scorer(adapter: str | None = None, device: str | None = None) -> ConflictScorer:
    """One scorer per (adapter, device) in a process, so the conflict and poison stages share its cache."""
    return ConflictScorer(adapter, device=device)
