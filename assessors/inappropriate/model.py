"""Sentence-level, question-conditioned classification over one encoder pass per passage.

The passage is read with the question (`[CLS] question [SEP] passage`); each sentence is
the mean of its own token states, concatenated with the [CLS] state, so its verdict sees
the question and the sentences around it. A passage longer than the encoder window is
read in windows of whole sentences.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ragarbiter.training import LoraSettings

from ..adapted import AdaptedEncoder, AdaptedParts
from ..backbone import PairEncoding, padded_states, run_blocks_shared
from ..text import NEGATION, Sentence, join_sentences, split_sentences
from .config import RESTATED_AT, InappropriateConfig
from .data import CATEGORIES


class SentenceHead(nn.Module):
    """Token states -> per-sentence category logits (S, C).

    A sentence is described by the mean of its token states, the pair's [CLS] state, the
    mean of the other sentences read with it, and its distance from them: a claim that
    disagrees with the sentences around it stands out.
    """

    def __init__(self, hidden: int = 384, n_classes: int = len(CATEGORIES)) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(4 * hidden, hidden), nn.GELU(), nn.Dropout(0.1), nn.Linear(hidden, n_classes)
        )

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
    return {
        "token_sentence": torch.tensor(token_rows, dtype=torch.long),
        "sentence_row": torch.tensor(rows, dtype=torch.long),
        "covered": torch.tensor(covered, dtype=torch.bool),
    }


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
        return {
            "loss": loss,
            "scores": 1.0 - probs[:, 0],
            "labels": (labels[covered] > 0).long(),
            "category": labels[covered],
            "predicted": probs.argmax(-1),
        }


def default_adapter_dir() -> Path:
    return Path(__file__).resolve().parent / "default"


ALSO_AT = 0.15  # a second category this likely is named in the reason too (e.g. harassment that doxxes)


@dataclass(frozen=True)
class SentenceVerdict:
    sentence: Sentence
    score: float  # probability that the sentence is inappropriate
    category: str  # the most likely inappropriate category
    also: tuple[str, ...] = ()  # other inappropriate categories at least ALSO_AT likely
    restatements: int = 0  # sentences of its passage that restate it, left out when it was judged


CLEAR = 0.2  # a verdict this close to 0 or 1 is not read again apart from its restatements
MAY_RESTATE = 0.1  # word overlap (Jaccard) below which two sentences are not compared by meaning
_STOPWORDS = frozenset(
    "a an the of in on at to for by with and or is are was were be been it its this that as "
    "from has have had not no do does did will would could may might can".split()
)


def _content_words(text: str) -> tuple[frozenset[str], bool]:
    """A sentence's content words, and whether it negates."""
    return frozenset(w for w in re.findall(r"\w+", text.lower()) if w not in _STOPWORDS), bool(NEGATION.search(text))


def _may_restate(a: tuple[frozenset[str], bool], b: tuple[frozenset[str], bool]) -> bool:
    """Whether two sentences share enough words to be compared by meaning. On the testbed pools'
    first 600 records, 99% of the pairs the sentence embeddings call restatements pass. A
    sentence and its denial ("X is in Y" / "X is not in Y") embed close together but are not
    restatements: the denial is the evidence the claim must be read against."""
    (wa, na), (wb, nb) = a, b
    return bool(wa and wb) and na == nb and len(wa & wb) / len(wa | wb) >= MAY_RESTATE


_OWN = object()  # `score`: use the scorer's own `restated_at`


class SentenceScorer:
    """Inference: split passages into sentences and score each one for the question.

    A sentence whose verdict is not already clear (inappropriate probability between `CLEAR`
    and 1 - `CLEAR`) and that other sentences of its passage restate (they share content words,
    agree in negation, and their all-MiniLM-L6-v2 sentence embeddings reach cosine
    `restated_at`) is judged a second time with them left out, and that verdict is the one
    kept. A page that pushes a claim tends to repeat it, and each restatement makes the claim
    look like the context that should vouch for it; read apart, the claim meets only the rest
    of the passage. Pass `restated_at=None` to judge every
    sentence in its whole passage only.
    """

    def __init__(
        self, adapter: str | Path | None = None, *, device: str | None = None, restated_at: float | None = RESTATED_AT
    ) -> None:
        self.adapter = Path(adapter) if adapter is not None else default_adapter_dir()
        self.restated_at = InappropriateConfig(restated_at=restated_at).restated_at  # checked
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
        budget = backbone.spec.max_length - backbone.count_tokens([question])[0] - 1
        counts = backbone.count_tokens([s.text for s in sentences], special=False)
        out, start, used = [], 0, 0
        for k, n in enumerate(counts):
            if k > start and used + n > budget:
                out.append((start, k))
                start, used = k, 0
            used += n
        out.append((start, len(sentences)))
        return out

    def score(
        self,
        question: str,
        texts: Sequence[str],
        sentences: Sequence[list[Sentence]] | None = None,
        *,
        restated_at: float | None | object = _OWN,
    ) -> list[list[SentenceVerdict]]:
        """One list of sentence verdicts per text (empty for a text with no sentence).

        `sentences` gives each text's sentence spans when they are known (else they are split here).
        `restated_at` overrides the scorer's own setting for this call (stages that share one
        scorer each pass theirs).
        """
        restated_at = self.restated_at if restated_at is _OWN else restated_at
        split = list(sentences) if sentences is not None else [split_sentences(t) for t in texts]
        chunks, owners = [], []  # (chunk text, sentence spans within it), (text index, sentence indices)
        for ti, (text, sents) in enumerate(zip(texts, split)):
            if not sents:
                continue
            whole = self.windows(question, sents) if len(sents) > 1 else [(0, 1)]
            for a, b in whole:
                base = sents[a].start
                chunks.append((text[base : sents[b - 1].end], [(s.start - base, s.end - base) for s in sents[a:b]]))
                owners.append((ti, list(range(a, b))))
        verdicts: list[list[SentenceVerdict]] = [[] for _ in texts]
        if not chunks:
            return verdicts
        probs = self._probabilities(question, chunks)
        restated = [0] * len(probs)
        if restated_at is not None:
            rows = {(ti, si): k for k, (ti, si) in enumerate((ti, si) for ti, indices in owners for si in indices)}
            probs, restated = self._apart(question, split, rows, probs, float(restated_at))
        k = 0
        for ti, indices in owners:
            for si in indices:
                p = probs[k]
                category = CATEGORIES[1 + int(p[1:].argmax())]
                also = tuple(
                    CATEGORIES[c]
                    for c in range(1, len(CATEGORIES))
                    if CATEGORIES[c] != category and float(p[c]) >= ALSO_AT
                )
                verdicts[ti].append(SentenceVerdict(split[ti][si], float(1.0 - p[0]), category, also, restated[k]))
                k += 1
        return verdicts

    def _probabilities(self, question: str, chunks: Sequence[tuple[str, Sequence[tuple[int, int]]]]) -> torch.Tensor:
        """(S, C) category probabilities of every sentence of every (text, sentence spans) chunk, in order."""
        backbone, layers, head = self._parts
        encodings, states = backbone.bottom(question, [c for c, _ in chunks])
        sb = sentence_batch(encodings, [sp for _, sp in chunks])
        with torch.inference_mode():
            hidden, _ = padded_states(run_blocks_shared(layers, states), backbone.device)
            return (
                head(hidden.float(), sb["token_sentence"].to(backbone.device), sb["sentence_row"].to(backbone.device))
                .softmax(-1)
                .cpu()
            )

    def _apart(
        self,
        question: str,
        split: Sequence[list[Sentence]],
        rows: dict[tuple[int, int], int],
        probs: torch.Tensor,
        restated_at: float,
    ) -> tuple[torch.Tensor, list[int]]:
        """Judge each restated sentence again in its text without its restatements (see the class).

        `rows` maps (text index, sentence index) to the sentence's row in `probs`. Only sentences
        whose verdict is not already clear are read again, and only pairs that share words
        (`_may_restate`) are compared by meaning, so clean passages cost little. The view left is
        read in windows like any text; the sentence's own window gives its verdict."""
        restated = [0] * len(probs)
        doubtful = ((probs[:, 0] > CLEAR) & (probs[:, 0] < 1.0 - CLEAR)).tolist()
        candidates = {}  # (text index, sentence index) -> the sentences of its text that may restate it
        for ti, sents in enumerate(split):
            words = None
            for a in range(len(sents)):
                if len(sents) < 2 or not doubtful[rows[(ti, a)]]:
                    continue
                words = words or [_content_words(s.text) for s in sents]
                near = [b for b in range(len(sents)) if b != a and _may_restate(words[a], words[b])]
                if near:
                    candidates[(ti, a)] = near
        if not candidates:
            return probs, restated
        texts = list(dict.fromkeys(split[ti][k].text for (ti, a), near in candidates.items() for k in (a, *near)))
        vectors = dict(zip(texts, self._parts[0].sentence_vectors(texts)))
        chunks, targets = [], []
        for (ti, a), near in candidates.items():
            sents = split[ti]
            drop = {
                b
                for b in near  # the tolerance keeps exact duplicates restatements at restated_at=1
                if float(vectors[sents[a].text] @ vectors[sents[b].text]) >= restated_at - 1e-6
            }
            if not drop:
                continue
            keep = [b for b in range(len(sents)) if b not in drop]
            text, view = join_sentences([sents[b].text for b in keep])
            own = keep.index(a)
            first, last = next(w for w in self.windows(question, view) if w[0] <= own < w[1])
            base = view[first].start
            chunks.append((text[base : view[last - 1].end], [(s.start - base, s.end - base) for s in view[first:last]]))
            targets.append((rows[(ti, a)], own - first, len(drop)))
        if not chunks:
            return probs, restated
        again = self._probabilities(question, chunks)
        firsts = np.cumsum([0] + [len(spans) for _, spans in chunks])
        probs = probs.clone()
        for (k, local, left_out), first in zip(targets, firsts):
            probs[k] = again[int(first) + local]
            restated[k] = left_out
        return probs, restated
