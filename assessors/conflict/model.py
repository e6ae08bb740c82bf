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
from ..backbone import BackboneSpec, pad_batch, padded_states, run_blocks_shared
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

    def __init__(
        self, hidden: int = 384, dim: int = 128, stance: bool = False, stance_weight: float = 0.5, align: bool = False
    ) -> None:
        super().__init__()
        self.dim = dim
        self.stance_weight = float(stance_weight)
        self.span = nn.Linear(hidden, 1)
        self.relevance = nn.Linear(2 * hidden, 1)
        self.proj = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.differ = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU(), nn.Linear(dim, 1))
        self.stance_pool = nn.Linear(hidden, 1) if stance else None
        self.stance = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Linear(hidden, 1)) if stance else None
        self.align = nn.Linear(3, 1) if align else None
        if self.align is not None:  # starts as the code comparison alone
            with torch.no_grad():
                self.align.weight.copy_(torch.tensor([[1.0, 0.0, 0.0]]))
                self.align.bias.zero_()

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

    def answer_weights(self, span: torch.Tensor, passage_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) where each passage puts its answer: the span scorer's softmax over its own tokens."""
        return span.masked_fill(~passage_mask, -1e4).softmax(-1)

    def pair_logits(self, ea: torch.Tensor, eb: torch.Tensor, mismatch: torch.Tensor | None = None) -> torch.Tensor:
        """(P,) "different answers" logits: the code comparison, and with `align` the answer tokens' mismatch
        ((P, 2): the share of each side's answer weight on tokens the other passage does not contain)."""
        d = self.differ_logits(ea, eb)
        if self.align is None or mismatch is None:
            return d
        both, least = mismatch.sum(-1), mismatch.min(-1).values
        return self.align(torch.stack([d, both, least], dim=-1)).squeeze(-1)

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
        mismatch: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(P,) conflict probabilities; `yes_no` (per pair or for all) switches on the stance blend."""
        both = torch.sigmoid(ea[:, -1]) * torch.sigmoid(eb[:, -1])
        p = torch.sigmoid(self.pair_logits(ea, eb, mismatch))
        if self.has_stance:
            w = self.stance_weight if stance_weight is None else float(stance_weight)
            sa, sb = torch.sigmoid(self.stance_logits(ea)), torch.sigmoid(self.stance_logits(eb))
            blended = (1 - w) * p + w * (sa * (1 - sb) + (1 - sa) * sb)
            p = torch.where(torch.as_tensor(yes_no, device=p.device), blended, p)
        return p * both  # (P,)


def answer_mismatch(ids_a, weights_a, ids_b, mask_b) -> torch.Tensor:
    """(P,) for each pair, the share of passage a's answer weight on token ids that passage b's own
    tokens (`mask_b`) do not contain: near 0 when b states a's answer, near 1 when it states another.
    ids_*, weights_a, mask_b: (P, T)."""
    present = ((ids_a[:, :, None] == ids_b[:, None, :]) & mask_b[:, None, :]).any(-1)  # (P, Ta)
    return (weights_a * (~present).to(weights_a.dtype)).sum(-1)


def pair_mismatch(ids, weights, passage_mask, pairs) -> torch.Tensor:
    """(P, 2) `answer_mismatch` both ways for index pairs (P, 2) into (N, T) rows."""
    a, b = pairs[:, 0], pairs[:, 1]
    return torch.stack(
        [
            answer_mismatch(ids[a], weights[a], ids[b], passage_mask[b]),
            answer_mismatch(ids[b], weights[b], ids[a], passage_mask[a]),
        ],
        dim=-1,
    )


class ConflictNet(AdaptedEncoder):
    """The trainable model: frozen bottom blocks, LoRA in the top blocks, ConflictHead.

    Loss: BCE on "different answers" for pairs of passages that both answer the query,
    BCE on relevance for every passage, and, where the stated answer is known, token BCE
    that teaches the span scorer where it is.
    """

    span_weight = 0.5
    stance_loss_weight = 1.0

    def __init__(
        self,
        spec: BackboneSpec,
        lora: LoraSettings,
        dim: int = 128,
        stance: bool = False,
        stance_weight: float = 0.5,
        align: bool = True,
    ) -> None:
        super().__init__(
            spec,
            lora,
            lambda hidden: ConflictHead(hidden, dim, stance, stance_weight, align),
            {"head_dim": dim, "stance": stance, "stance_weight": stance_weight, "align": align},
        )

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        bce = nn.functional.binary_cross_entropy_with_logits
        hidden = self.top_states(batch)
        span = self.head.span_logits(hidden)
        codes = self.head.embed(hidden, batch["passage_mask"], span)  # (N, dim + 1)
        pairs, labels = batch["pairs"], batch["labels"].float()  # (P, 2), (P,)
        relevant = batch["relevant"]  # (N,)
        ea, eb = codes[pairs[:, 0]], codes[pairs[:, 1]]
        mismatch = None
        if self.head.align is not None:
            weights = self.head.answer_weights(span, batch["passage_mask"])
            mismatch = pair_mismatch(batch["input_ids"], weights, batch["passage_mask"], pairs)
        both = relevant[pairs[:, 0]] & relevant[pairs[:, 1]]
        loss = bce(codes[:, -1], relevant.float())
        if both.any():
            loss = loss + bce(
                self.head.pair_logits(ea[both], eb[both], None if mismatch is None else mismatch[both]), labels[both]
            )
        known = batch["answer_known"][:, None] & batch["passage_mask"]  # (N, T)
        if known.any():
            loss = loss + self.span_weight * bce(span[known], batch["answer_tokens"][known])
        yes_no = batch["yes_no"][pairs[:, 0]]  # (P,): the pair's query is a yes/no question
        out = {"labels": labels, "yes_no": yes_no, "scores": self.head.pair_probs(ea, eb, yes_no, mismatch=mismatch)}
        if self.head.has_stance:
            stance = batch["stance"]  # (N,): 1 yes, 0 no, -1 unknown
            if (stance >= 0).any():
                loss = loss + self.stance_loss_weight * bce(
                    self.head.stance_logits(codes)[stance >= 0], stance[stance >= 0].float()
                )
            out["scores_differ"] = self.head.pair_probs(ea, eb, yes_no, stance_weight=0.0, mismatch=mismatch)
            out["scores_stance"] = self.head.pair_probs(ea, eb, yes_no, stance_weight=1.0, mismatch=mismatch)
        return {"loss": loss, **out}


def _make_head(hidden: int, settings: dict) -> ConflictHead:
    return ConflictHead(
        hidden,
        int(settings.get("head_dim", 128)),
        bool(settings.get("stance", False)),
        float(settings.get("stance_weight", 0.5)),
        bool(settings.get("align", False)),
    )


def default_adapter_dir() -> Path:
    """The adapter shipped with the package (trained with `ragarbiter train conflict`)."""
    return Path(__file__).resolve().parent / "default"


TOPIC_RAMP = (0.20, 0.35)
ANSWER_SPAN_SHARE = 0.25  # `ConflictScorer.answer_spans`: neighbours with this share of the best token's weight


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
        self._cache: OrderedDict[tuple[str, str], tuple] = OrderedDict()
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
        texts = list(texts)
        found = self._encoded(query, texts)
        return torch.stack([found[t][0] for t in texts]) if texts else torch.zeros(0, 1)

    def answer_spans(self, query: str, texts: Sequence[str]) -> list[str]:
        """The words of each text that its answer weights point at (the answer it gives, as the model
        reads it): the best token and its neighbours holding at least a quarter of its weight."""
        texts = list(texts)
        found = self._encoded(query, texts)
        out = []
        for t in texts:
            _, _, weights, offsets = found[t]
            if not len(weights):
                out.append("")
                continue
            best = int(weights.argmax())
            keep = weights >= ANSWER_SPAN_SHARE * weights[best]
            lo = hi = best
            while lo > 0 and keep[lo - 1]:
                lo -= 1
            while hi + 1 < len(weights) and keep[hi + 1]:
                hi += 1
            start, end = offsets[lo][0], offsets[hi][1]
            while start > 0 and (t[start - 1].isalnum() or t[start - 1] in "-'"):  # whole words
                start -= 1
            while end < len(t) and (t[end].isalnum() or t[end] in "-'"):
                end += 1
            out.append(t[start:end].strip())
        return out

    def _encoded(self, query: str, texts: list[str]) -> dict[str, tuple]:
        """text -> (code, passage token ids, answer weights on them, their character offsets),
        computed once per (query, text)."""
        backbone, layers, head = self._parts
        with self._lock:
            found = {t: self._cache.get((query, t)) for t in texts}
        missing = list(dict.fromkeys(t for t, v in found.items() if v is None))
        if missing:
            encodings, states = backbone.bottom(query, missing)
            batch = pad_batch(encodings, backbone.device)
            passage = batch["passage_mask"]
            with torch.inference_mode():
                hidden, _ = padded_states(run_blocks_shared(layers, states), backbone.device)
                span = head.span_logits(hidden.float())
                z = head.embed(hidden.float(), passage, span).cpu()
                weights = head.answer_weights(span, passage).cpu()
            ids, passage = batch["input_ids"].cpu(), passage.cpu()
            with self._lock:
                for k, (t, e) in enumerate(zip(missing, encodings)):
                    offsets = [o for o, inside in zip(e.offsets, e.in_passage) if inside]
                    found[t] = (z[k], ids[k][passage[k]], weights[k][passage[k]], offsets)
                    self._cache[(query, t)] = found[t]
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return found

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

    def answer_mismatch(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """(n, n) symmetric: for each pair, the smaller of the two `answer_mismatch` shares (how much of each
        side's answer weight falls on tokens the other does not contain). Near 1 only when neither passage
        contains the other's answer: near-copies that name different answers; near 0 for copies of one claim."""
        n = len(texts)
        if n < 2:
            return np.zeros((n, n), dtype=np.float32)
        found = self._encoded(query, list(texts))
        i, j = torch.triu_indices(n, n, offset=1)
        ids, weights, mask = self._profiles([found[t] for t in texts])
        return _symmetric(n, i, j, pair_mismatch(ids, weights, mask, torch.stack([i, j], dim=-1)).min(-1).values)

    @staticmethod
    def _profiles(rows) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded (n, T) passage token ids, answer weights and validity mask from `_encoded` rows."""
        n, width = len(rows), max(len(r[1]) for r in rows)
        ids = torch.zeros(n, width, dtype=torch.long)
        weights = torch.zeros(n, width)
        mask = torch.zeros(n, width, dtype=torch.bool)
        for k, (_, tok, w, _) in enumerate(rows):
            ids[k, : len(tok)], weights[k, : len(tok)], mask[k, : len(tok)] = tok, w, True
        return ids, weights, mask

    def pair_probabilities(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """(n, n) symmetric matrix of conflict probabilities (zero diagonal), topic gate applied."""
        n = len(texts)
        if n < 2:
            return np.zeros((n, n), dtype=np.float32)
        _, _, head = self._parts
        found = self._encoded(query, list(texts))
        rows = [found[t] for t in texts]
        codes = torch.stack([r[0] for r in rows])
        i, j = torch.triu_indices(n, n, offset=1)
        mismatch = None
        if head.align is not None:
            mismatch = pair_mismatch(*self._profiles(rows), torch.stack([i, j], dim=-1))
        with torch.inference_mode():
            p = head.pair_probs(codes[i], codes[j], yes_no_question(query), mismatch=mismatch)
        gate = self.topical(query, texts)
        return _symmetric(n, i, j, p) * np.outer(gate, gate)


def _symmetric(n: int, i: torch.Tensor, j: torch.Tensor, values: torch.Tensor) -> np.ndarray:
    """(n, n) float32 with `values` at (i, j) and (j, i), zeros on the diagonal."""
    out = np.zeros((n, n), dtype=np.float32)
    out[i.numpy(), j.numpy()] = values.numpy()
    return out + out.T


@functools.lru_cache(maxsize=8)
def shared_scorer(adapter: str | None = None, device: str | None = None) -> ConflictScorer:
    """One scorer per (adapter, device) in a process, so the conflict and poison stages share its cache."""
    return ConflictScorer(adapter, device=device)
