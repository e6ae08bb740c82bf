"""Sentence-level, question-conditioned classification over one encoder pass per passage.

The passage is read with the question (`[CLS] question [SEP] passage`); each sentence is
the mean of its own token states, concatenated with the [CLS] state, so its verdict sees
the question and the sentences around it. A passage longer than the encoder window is
read in windows of whole sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ragarbiter.training import LoraSettings

from ..adapted import AdaptedEncoder, AdaptedParts
from ..backbone import PairEncoding, padded_states, run_blocks
from ..text import Sentence, split_sentences
from .data import CATEGORIES


class SentenceHead(nn.Module):
    """Token states -> per-sentence category logits (S, C).

    A sentence is described by the mean of its token states, the pair's [CLS] state, the
    mean of the other sentences read with it, and its distance from them: a claim that
    disagrees with the sentences around it stands out.
    """

    def __init__(self, hidden: int = 384, n_classes: int = len(CATEGORIES)) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(4 * hidden, hidden), nn.GELU(), nn.Dropout(0.1), nn.Linear(hidden, n_classes))

    def forward(self, hidden: torch.Tensor, token_sentence: torch.Tensor, sentence_row: torch.Tensor) -> torch.Tensor:
        b, t, h = hidden.shape
        flat, idx = hidden.reshape(b * t, h), token_sentence.reshape(b * t)  # (B*T, H), (B*T,)
        keep = idx >= 0
        n = sentence_row.shape[0]
        sums = torch.zeros(n, h, dtype=hidden.dtype, device=hidden.device).index_add_(0, idx[keep], flat[keep])
        counts = torch.bincount(idx[keep], minlength=n).clamp(min=1).to(hidden.dtype)  # (S,)
        mean = sums / counts[:, None]  # (S, H)
        row_sum = torch.zeros(b, h, dtype=hidden.dtype, device=hidden.device).index_add_(0, sentence_row, mean)
        row_n = torch.bincount(sentence_row, minlength=b).to(hidden.dtype)  # (B,)
        others = (row_sum[sentence_row] - mean) / (row_n[sentence_row] - 1).clamp(min=1)[:, None]  # (S, H)
        feats = torch.cat([mean, hidden[sentence_row, 0], others, (mean - others).abs()], dim=-1)  # (S, 4H)
        return self.mlp(feats)


def token_sentences(encoding: PairEncoding, spans: Sequence[tuple[int, int]], first_id: int) -> list[int]:
    """For each token: the global id of the sentence it falls in, or -1 (query, special, padding)."""
    out = []
    for (a, b), in_passage in zip(encoding.offsets, encoding.in_passage):
        sid = -1
        if in_passage and b > a:
            sid = next((first_id + k for k, (s, e) in enumerate(spans) if s <= a and b <= e), -1)
        out.append(sid)
    return out


def sentence_batch(encodings: Sequence[PairEncoding], spans: Sequence[Sequence[tuple[int, int]]]) -> dict:
    """token_sentence (B, T), sentence_row (S,) and covered (S,) for passages with known sentence spans."""
    width = max(len(e) for e in encodings)
    rows, token_rows, covered, first = [], [], [], 0
    for r, (enc, sp) in enumerate(zip(encodings, spans)):
        ids = token_sentences(enc, sp, first)
        token_rows.append(ids + [-1] * (width - len(ids)))
        present = set(ids)
        covered += [first + k in present for k in range(len(sp))]
        rows += [r] * len(sp)
        first += len(sp)
    return {"token_sentence": torch.tensor(token_rows, dtype=torch.long),
            "sentence_row": torch.tensor(rows, dtype=torch.long), "covered": torch.tensor(covered, dtype=torch.bool)}


class InappropriateNet(AdaptedEncoder):
    """Trainable: frozen bottom, LoRA top, SentenceHead; cross-entropy over covered sentences."""

    def __init__(self, spec, lora: LoraSettings) -> None:
        super().__init__(spec, lora, lambda hidden: SentenceHead(hidden), {"categories": list(CATEGORIES)})

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        logits = self.head(self.top_states(batch), batch["token_sentence"], batch["sentence_row"])
        covered = batch["covered"]
        labels = batch["sentence_labels"]
        loss = nn.functional.cross_entropy(logits[covered], labels[covered])
        probs = logits[covered].softmax(-1)
        return {"loss": loss, "scores": 1.0 - probs[:, 0], "labels": (labels[covered] > 0).long(),
                "category": labels[covered], "predicted": probs.argmax(-1)}


def default_adapter_dir() -> Path:
    return Path(__file__).resolve().parent / "default"


ALSO_AT = 0.15  # a second category this likely is named in the reason too (e.g. harassment that doxxes)


@dataclass(frozen=True)
class SentenceVerdict:
    sentence: Sentence
    score: float  # probability that the sentence is inappropriate
    category: str  # the most likely inappropriate category
    also: tuple[str, ...] = ()  # other inappropriate categories at least ALSO_AT likely


class SentenceScorer:
    """Inference: split passages into sentences and score each one for the question."""

    def __init__(self, adapter: str | Path | None = None, *, device: str | None = None) -> None:
        self.adapter = Path(adapter) if adapter is not None else default_adapter_dir()
        self._adapted = AdaptedParts(self.adapter, lambda hidden, settings: SentenceHead(hidden), device)

    @property
    def _parts(self):
        return self._adapted.loaded

    def load(self) -> SentenceScorer:
        self._parts  # noqa: B018
        return self

    def windows(self, question: str, sentences: list[Sentence]) -> list[tuple[int, int]]:
        """Group consecutive sentences into (first, last+1) windows that fit the encoder."""
        backbone = self._parts[0]
        budget = backbone.spec.max_length - len(backbone.tokenizer(question)["input_ids"]) - 1
        counts = [len(ids) for ids in backbone.tokenizer([s.text for s in sentences], add_special_tokens=False)["input_ids"]]
        out, start, used = [], 0, 0
        for k, n in enumerate(counts):
            if k > start and used + n > budget:
                out.append((start, k))
                start, used = k, 0
            used += n
        out.append((start, len(sentences)))
        return out

    def score(self, question: str, texts: Sequence[str],
              sentences: Sequence[list[Sentence]] | None = None) -> list[list[SentenceVerdict]]:
        """One list of sentence verdicts per text (empty for a text with no sentence).

        `sentences` gives each text's sentence spans when they are known (else they are split here).
        """
        backbone, layers, head = self._parts
        split = list(sentences) if sentences is not None else [split_sentences(t) for t in texts]
        chunks, owners = [], []  # (chunk text, sentence spans within it), (text index, sentence indices)
        for ti, (text, sents) in enumerate(zip(texts, split)):
            if not sents:
                continue
            whole = self.windows(question, sents) if len(sents) > 1 else [(0, 1)]
            for a, b in whole:
                base = sents[a].start
                chunks.append((text[base:sents[b - 1].end], [(s.start - base, s.end - base) for s in sents[a:b]]))
                owners.append((ti, list(range(a, b))))
        verdicts: list[list[SentenceVerdict]] = [[] for _ in texts]
        if not chunks:
            return verdicts
        encodings, states = backbone.bottom(question, [c for c, _ in chunks])
        sb = sentence_batch(encodings, [sp for _, sp in chunks])
        with torch.inference_mode():
            hidden, _ = padded_states(run_blocks(layers, states), backbone.device)
            probs = head(hidden.float(), sb["token_sentence"].to(backbone.device),
                         sb["sentence_row"].to(backbone.device)).softmax(-1).cpu()
        k = 0
        for ti, indices in owners:
            for si in indices:
                p = probs[k]
                category = CATEGORIES[1 + int(p[1:].argmax())]
                also = tuple(CATEGORIES[c] for c in range(1, len(CATEGORIES))
                             if CATEGORIES[c] != category and float(p[c]) >= ALSO_AT)
                verdicts[ti].append(SentenceVerdict(split[ti][si], float(1.0 - p[0]), category, also))
                k += 1
        return verdicts
