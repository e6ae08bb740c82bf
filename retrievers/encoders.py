"""Encoders over one real pretrained model (default: the bundled all-MiniLM-L6-v2).

- `DenseEncoder`: sentence embeddings (L2-normalised), for the `dense` vector.
- `SparseEncoder`: BM25-style term weights over the same WordPiece tokenizer's term ids,
  for the `sparse` vector. Only term frequency (with saturation and length
  normalisation) is computed here; IDF is left to Qdrant's `Modifier.IDF`, which keeps it
  correct as the collection grows.
- `TextTokenizer`: the model's tokenizer without truncation, for chunking by tokens.

Models load lazily on first use and are cached per process.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ragarbiter.config import EncoderConfig
from ragarbiter.errors import InvalidInputError, ModelNotFoundError
from ragarbiter.models import default_device, resolve_model_path

logger = logging.getLogger(__name__)
_LOAD_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8)
def _load_sentence_transformer(path: str, device: str):
    from sentence_transformers import SentenceTransformer

    logger.info("loading encoder %s on %s", path, device)
    try:
        return SentenceTransformer(path, device=device, local_files_only=True)
    except OSError as exc:
        msg = f"Could not load the encoder from {path!r}: {exc}. Pass a folder holding a sentence-transformers model."
        raise ModelNotFoundError(msg) from exc


@functools.lru_cache(maxsize=8)
def _load_tokenizer(path: str):
    from tokenizers import Tokenizer

    file = Path(path) / "tokenizer.json"
    if not file.exists():
        msg = f"No tokenizer.json in {path!r}. The encoder needs a fast (Rust) tokenizer; re-save it with transformers."
        raise ModelNotFoundError(msg)
    tok = Tokenizer.from_file(str(file))
    tok.no_truncation()
    tok.no_padding()
    return tok


class TextTokenizer:
    """The encoder's real tokenizer, untruncated: term ids and character offsets."""

    def __init__(self, model: str | Path = EncoderConfig.model) -> None:
        self.model = str(model)

    @property
    def backend(self):
        return _load_tokenizer(str(resolve_model_path(self.model)))

    @functools.cached_property
    def special_ids(self) -> frozenset[int]:
        vocab = self.backend.get_vocab(with_added_tokens=True)
        specials = {t for t in vocab if t.startswith("[") and t.endswith("]")}
        return frozenset(vocab[t] for t in specials)

    def encode(self, text: str):
        """`tokenizers.Encoding` without special tokens (ids, offsets, tokens)."""
        return self.backend.encode(text, add_special_tokens=False)

    def encode_batch(self, texts: Sequence[str]):
        return self.backend.encode_batch(list(texts), add_special_tokens=False)

    def count(self, text: str) -> int:
        return len(self.encode(text).ids)


@dataclass
class SparseVector:
    indices: list[int]
    values: list[float]


class SparseEncoder:
    """BM25 term-frequency weights keyed by the tokenizer's term ids.

    Document weight of term t: tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len)).
    Query weight: 1 per distinct term. Qdrant multiplies in the IDF (Modifier.IDF).
    """

    def __init__(self, config: EncoderConfig | None = None, tokenizer: TextTokenizer | None = None) -> None:
        self.config = config or EncoderConfig()
        self.tokenizer = tokenizer or TextTokenizer(self.config.model)

    def _terms(self, encoding) -> list[int]:
        special = self.tokenizer.special_ids
        return [i for i, tok in zip(encoding.ids, encoding.tokens) if i not in special and any(c.isalnum() for c in tok)]

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        k1, b, avg = self.config.bm25_k1, self.config.bm25_b, self.config.bm25_avg_len
        out = []
        for enc in self.tokenizer.encode_batch(texts):
            terms = self._terms(enc)
            norm = k1 * (1.0 - b + b * len(terms) / avg)
            tf = Counter(terms)
            ids = sorted(tf)
            out.append(SparseVector(ids, [tf[i] * (k1 + 1.0) / (tf[i] + norm) for i in ids]))
        return out

    def encode_queries(self, texts: Sequence[str]) -> list[SparseVector]:
        out = []
        for enc in self.tokenizer.encode_batch(texts):
            ids = sorted(set(self._terms(enc)))
            out.append(SparseVector(ids, [1.0] * len(ids)))
        return out


class EmbeddingCache:
    """A bounded text -> vector memo, so vectors fetched from the store are not recomputed."""

    def __init__(self, capacity: int = 8192) -> None:
        self.capacity = capacity
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> np.ndarray | None:
        with self._lock:
            vec = self._data.get(text)
            if vec is not None:
                self._data.move_to_end(text)
            return vec

    def put(self, text: str, vector: np.ndarray) -> None:
        with self._lock:
            self._data[text] = vector
            self._data.move_to_end(text)
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)


class DenseEncoder:
    """Sentence embeddings from a sentence-transformers model, loaded lazily."""

    def __init__(self, config: EncoderConfig | None = None) -> None:
        self.config = config or EncoderConfig()
        self._device = self.config.device
        self.cache = EmbeddingCache()

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = default_device()
        return self._device

    @property
    def model(self):
        with _LOAD_LOCK:
            return _load_sentence_transformer(str(resolve_model_path(self.config.model)), self.device)

    @functools.cached_property
    def dimension(self) -> int:
        model = self.model
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """(len(texts), dim) float32, unit-norm rows."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                msg = f"Text #{i} is a {type(t).__name__}, not a str. Decode it before encoding."
                raise InvalidInputError(msg)
        vectors = self.model.encode(texts, batch_size=batch_size or self.config.batch_size,
                                    normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=progress)
        return np.asarray(vectors, dtype=np.float32)

    def encode_cached(self, texts: Sequence[str]) -> np.ndarray:
        """Like `encode`, but reuses vectors seen before (e.g. returned by a search)."""
        texts = list(texts)
        found = [self.cache.get(t) for t in texts]
        missing = [t for t, v in zip(texts, found) if v is None]
        if missing:
            for t, v in zip(missing, self.encode(missing)):
                self.cache.put(t, v)
        return np.stack([self.cache.get(t) for t in texts]) if texts else self.encode([])

    def encode_tokens(self, texts: Sequence[str], *, batch_size: int | None = None) -> list[np.ndarray]:
        """Per-token embeddings (L2-normalised, special tokens removed), one (n_i, dim) array per text."""
        texts = list(texts)
        if not texts:
            return []
        outs = self.model.encode(texts, batch_size=batch_size or self.config.batch_size,
                                 output_value="token_embeddings", convert_to_numpy=False)
        result = []
        for emb in outs:
            arr = emb.float().cpu().numpy()[1:-1] if emb.shape[0] > 2 else emb.float().cpu().numpy()
            arr /= np.linalg.norm(arr, axis=1, keepdims=True).clip(min=1e-12)
            result.append(arr.astype(np.float32))
        return result
