"""The conflict model: one query-conditioned vector per passage, then a cheap pair head.

Each passage is encoded once with the query (`[CLS] query [SEP] passage`), so n passages
cost n encoder passes, never n^2. The pair head compares two passage vectors with
symmetric features (product and absolute difference) and returns the probability that
the two passages give different answers to the query.

At inference a training-free topic gate joins the learned relevance: a passage whose
sentence embedding is far from the query's (cosine below `TOPIC_RAMP`) is not about the
query, so it cannot disagree about its answer. Measured with the bundled encoder on 600
LitM NQ-Open questions: 99% of gold passages have cosine >= 0.37 with their question, 95%
of random passages <= 0.16; the gate ramps from 0 at 0.20 to 1 at 0.35.
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
from ..backbone import BackboneSpec, pad_batch, padded_states, run_blocks
from .data import yes_no_question

logger = logging.getLogger(__name__)


class ConflictHead(nn.Module):
    """Token states -> passage code (`embed`); two codes -> conflict probability (`pair_probs`).

    A span scorer marks the passage tokens that answer the query; their attention-weighted
    mean is projected to a unit vector z: "the answer this passage gives". A relevance
    logit r says whether the passage answers the query at all. Two passages conflict when
    both answer it and their answers differ: p = differ(z_a, z_b) * sigmoid(r_a) * sigmoid(r_b).

    With `stance` (yes/no questions, where the answer is a stance argued over several
    sentences rather than a span), a second attention pooling feeds a stance logit s, the
    probability that the passage answers "yes". For a yes/no query the pair probability
    blends in the chance that the two stances differ, s_a (1 - s_b) + (1 - s_a) s_b, with
    weight `stance_weight`. The code is [z, s, r] ((dim + 2) values) or [z, r] without stance.
    """

    def __init__(self, hidden: int = 384, dim: int = 128, stance: bool = False, stance_weight: float = 0.5) -> None:
        super().__init__()
        self.dim = dim
        self.stance_weight = float(stance_weight)
        self.span = nn.Linear(hidden, 1)
        self.relevance = nn.Linear(2 * hidden, 1)
        self.proj = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.differ = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU(), nn.Linear(dim, 1))
        self.stance_pool = nn.Linear(hidden, 1) if stance else None
        self.stance = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Linear(hidden, 1)) if stance else None

    @property
    def has_stance(self) -> bool:
        return self.stance is not None

    def span_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.span(hidden).squeeze(-1)  # (B, T)

    def embed(self, hidden: torch.Tensor, passage_mask: torch.Tensor, span: torch.Tensor | None = None) -> torch.Tensor:
        span = self.span_logits(hidden) if span is None else span
        weights = span.masked_fill(~passage_mask, -1e4).softmax(-1).unsqueeze(-1)  # (B, T, 1)
        answer = (weights * hidden).sum(1)  # (B, H)
        z = nn.functional.normalize(self.proj(answer), dim=-1)  # (B, dim)
        r = self.relevance(torch.cat([answer, hidden[:, 0]], dim=-1))  # (B, 1)
        if not self.has_stance:
            return torch.cat([z, r], dim=-1)  # (B, dim + 1)
        pool = self.stance_pool(hidden).squeeze(-1).masked_fill(~passage_mask, -1e4).softmax(-1).unsqueeze(-1)
        s = self.stance(torch.cat([(pool * hidden).sum(1), hidden[:, 0]], dim=-1))  # (B, 1)
        return torch.cat([z, s, r], dim=-1)  # (B, dim + 2)

    def stance_logits(self, codes: torch.Tensor) -> torch.Tensor:
        return codes[:, self.dim]  # (B,), only with `has_stance`

    def differ_logits(self, ea: torch.Tensor, eb: torch.Tensor) -> torch.Tensor:
        za, zb = ea[:, : self.dim], eb[:, : self.dim]
        return self.differ(torch.cat([za * zb, (za - zb).abs()], dim=-1)).squeeze(-1)  # (P,)

    def pair_probs(
        self,
        ea: torch.Tensor,
        eb: torch.Tensor,
        yes_no: torch.Tensor | bool = False,
        stance_weight: float | None = None,
    ) -> torch.Tensor:
        """(P,) conflict probabilities; `yes_no` (per pair or for all) switches on the stance blend."""
        both = torch.sigmoid(ea[:, -1]) * torch.sigmoid(eb[:, -1])
        p = torch.sigmoid(self.differ_logits(ea, eb))
        if self.has_stance:
            w = self.stance_weight if stance_weight is None else float(stance_weight)
            sa, sb = torch.sigmoid(self.stance_logits(ea)), torch.sigmoid(self.stance_logits(eb))
            blended = (1 - w) * p + w * (sa * (1 - sb) + (1 - sa) * sb)
            p = torch.where(torch.as_tensor(yes_no, device=p.device), blended, p)
        return p * both  # (P,)


class ConflictNet(AdaptedEncoder):
    """The trainable model: frozen bottom blocks, LoRA in the top blocks, ConflictHead.

    Loss: BCE on "different answers" for pairs of passages that both answer the query,
    BCE on relevance for every passage, and, where the stated answer is known, token BCE
    that teaches the span scorer where it is.
    """

    span_weight = 0.5
    stance_loss_weight = 1.0

    def __init__(
        self, spec: BackboneSpec, lora: LoraSettings, dim: int = 128, stance: bool = False, stance_weight: float = 0.5
    ) -> None:
        super().__init__(
            spec,
            lora,
            lambda hidden: ConflictHead(hidden, dim, stance, stance_weight),
            {"head_dim": dim, "stance": stance, "stance_weight": stance_weight},
        )

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        bce = nn.functional.binary_cross_entropy_with_logits
        hidden = self.top_states(batch)
        span = self.head.span_logits(hidden)
        codes = self.head.embed(hidden, batch["passage_mask"], span)  # (N, dim + 1)
        pairs, labels = batch["pairs"], batch["labels"].float()  # (P, 2), (P,)
        relevant = batch["relevant"]  # (N,)
        ea, eb = codes[pairs[:, 0]], codes[pairs[:, 1]]
        both = relevant[pairs[:, 0]] & relevant[pairs[:, 1]]
        loss = bce(codes[:, -1], relevant.float())
        if both.any():
            loss = loss + bce(self.head.differ_logits(ea[both], eb[both]), labels[both])
        known = batch["answer_known"][:, None] & batch["passage_mask"]  # (N, T)
        if known.any():
            loss = loss + self.span_weight * bce(span[known], batch["answer_tokens"][known])
        yes_no = batch["yes_no"][pairs[:, 0]]  # (P,): the pair's query is a yes/no question
        out = {"labels": labels, "yes_no": yes_no, "scores": self.head.pair_probs(ea, eb, yes_no)}
        if self.head.has_stance:
            stance = batch["stance"]  # (N,): 1 yes, 0 no, -1 unknown
            if (stance >= 0).any():
                loss = loss + self.stance_loss_weight * bce(
                    self.head.stance_logits(codes)[stance >= 0], stance[stance >= 0].float()
                )
            out["scores_differ"] = self.head.pair_probs(ea, eb, yes_no, stance_weight=0.0)
            out["scores_stance"] = self.head.pair_probs(ea, eb, yes_no, stance_weight=1.0)
        return {"loss": loss, **out}


def _make_head(hidden: int, settings: dict) -> ConflictHead:
    return ConflictHead(
        hidden,
        int(settings.get("head_dim", 128)),
        bool(settings.get("stance", False)),
        float(settings.get("stance_weight", 0.5)),
    )


def default_adapter_dir() -> Path:
    """The adapter shipped with the package (trained with `ragarbiter train conflict`)."""
    return Path(__file__).resolve().parent / "default"


TOPIC_RAMP = (0.20, 0.35)


class ConflictScorer:
    """Inference: query-conditioned passage vectors (cached) and pairwise conflict probabilities."""

    def __init__(
        self,
        adapter: str | Path | None = None,
        *,
        device: str | None = None,
        cache_size: int = 1024,
        topic_ramp: tuple[float, float] | None = TOPIC_RAMP,
        dense_encoder=None,
    ) -> None:
        self.adapter = Path(adapter) if adapter is not None else default_adapter_dir()
        self.topic_ramp = topic_ramp
        self.device = device
        self._dense = dense_encoder
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
        """(n, code size) passage codes (answer vector, [stance logit,] relevance logit), conditioned on `query`."""
        backbone, layers, head = self._parts
        texts = list(texts)
        with self._lock:
            found = {t: self._cache.get((query, t)) for t in texts}
        missing = list(dict.fromkeys(t for t, v in found.items() if v is None))
        if missing:
            encodings, states = backbone.bottom(query, missing)
            passage = pad_batch(encodings, backbone.device)["passage_mask"]
            with torch.inference_mode():
                hidden, _ = padded_states(run_blocks(layers, states), backbone.device)
                z = head.embed(hidden.float(), passage)
            with self._lock:
                for t, v in zip(missing, z.cpu()):
                    found[t] = v
                    self._cache[(query, t)] = v
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return torch.stack([found[t] for t in texts]) if texts else torch.zeros(0, 1)

    def topical(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """(n,) in [0, 1]: how far each text is about the query at all (1 without a topic gate)."""
        if self.topic_ramp is None or not texts:
            return np.ones(len(texts), dtype=np.float32)
        if self._dense is None:
            from ..backbone import shared_dense_encoder

            self._dense = shared_dense_encoder(device=self.device)
        vectors = np.asarray(self._dense.encode_cached([query, *texts]), dtype=np.float32)  # unit rows
        lo, hi = self.topic_ramp
        return np.clip((vectors[1:] @ vectors[0] - lo) / (hi - lo), 0.0, 1.0)

    def pair_probabilities(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """(n, n) symmetric matrix of conflict probabilities (zero diagonal), topic gate applied."""
        n = len(texts)
        if n < 2:
            return np.zeros((n, n), dtype=np.float32)
        _, _, head = self._parts
        codes = self.embed(query, texts)
        i, j = torch.triu_indices(n, n, offset=1)
        with torch.inference_mode():
            p = head.pair_probs(codes[i], codes[j], yes_no_question(query)).numpy()
        out = np.zeros((n, n), dtype=np.float32)
        out[i.numpy(), j.numpy()] = p
        gate = self.topical(query, texts)
        return (out + out.T) * np.outer(gate, gate)


@functools.lru_cache(maxsize=8)
def shared_scorer(adapter: str | None = None, device: str | None = None) -> ConflictScorer:
    """One scorer per (adapter, device) in a process, so the conflict and poison stages share its cache."""
    return ConflictScorer(adapter, device=device)
