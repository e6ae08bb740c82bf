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
from ragarbiter.models import default_device, quiet_loading, resolve_model_path

logger = logging.getLogger(__name__)
_LOAD_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8)
def _load_sentence_transformer(path: str, device: str):
    from sentence_transformers import SentenceTransformer

    logger.info("loading encoder %s on %s", path, device)
    try:
        with quiet_loading():
            return SentenceTransformer(path, device=device, local_files_only=True)
    except OSError as exc:
        msg = f"Could not load the encoder from {path!r}: {exc}. Pass a folder holding a sentence-transformers model."
        raise ModelNotFoundError(msg) from exc


def tokenizer_file(path: str):
    """A new `tokenizers.Tokenizer` from the model folder's `tokenizer.json` (callers set its truncation)."""
    from tokenizers import Tokenizer

    file = Path(path) / "tokenizer.json"
    if not file.exists():
        msg = f"No tokenizer.json in {path!r}. The encoder needs a fast (Rust) tokenizer; re-save it with transformers."
        raise ModelNotFoundError(msg)
    return Tokenizer.from_file(str(file))


@functools.lru_cache(maxsize=8)
def _load_tokenizer(path: str):
    tok = tokenizer_file(path)
    tok.no_truncation()
    tok.no_padding()
    return tok


@dataclass(frozen=True)
class SentenceRecipe:
    """What a sentence-transformers folder does after its Transformer module, when it is the common
    Transformer -> Pooling -> (Normalize) chain: read directly from its module configs."""

    max_length: int
    pooling: str  # "mean" or "cls"
    normalize: bool
    lowercase: bool


def sentence_recipe(folder) -> SentenceRecipe | None:
    """The recipe of a plain Transformer/Pooling/Normalize folder, or None for anything else (Dense layers,
    weighted or max pooling, prompts, ...), which sentence-transformers then runs itself."""
    import json

    folder = Path(folder)
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        kinds = [str(m["type"]).rsplit(".", 1)[-1] for m in modules]
        if kinds not in (["Transformer", "Pooling", "Normalize"], ["Transformer", "Pooling"]) or modules[0]["path"]:
            return None
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
        bert = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    modes = {
        k.removeprefix("pooling_mode_").removesuffix("_tokens").removesuffix("_token")
        for k, v in pooling.items()
        if k.startswith("pooling_mode_") and v
    }
    if modes not in ({"mean"}, {"cls"}) or pooling.get("include_prompt") is False:
        return None
    if not isinstance(bert.get("max_seq_length"), int) or set(bert) - {"max_seq_length", "do_lower_case"}:
        return None
    return SentenceRecipe(
        bert["max_seq_length"], modes.pop(), kinds[-1] == "Normalize", bool(bert.get("do_lower_case"))
    )


class _DirectEncoder:
    """The shared base encoder (`bert.base_encoder`) run with a sentence-transformers folder's recipe:
    same tokens, same pooling, same vectors, none of sentence-transformers' import cost."""

    def __init__(self, path: str, recipe: SentenceRecipe, net, device: str) -> None:
        self.recipe, self.net, self.device = recipe, net, device
        self.tokenizer = tokenizer_file(path)
        self.tokenizer.enable_truncation(recipe.max_length)
        self.tokenizer.no_padding()
        unk = self.tokenizer.token_to_id("[UNK]")
        specials = {
            i
            for t, i in self.tokenizer.get_vocab(with_added_tokens=True).items()
            if t.startswith("[") and t.endswith("]")
        }
        self.special_ids = sorted(specials - {unk})

    def states(self, texts: Sequence[str], batch_size: int, progress: bool):
        """Yields (indices, ids (B, T), mask (B, T), hidden (B, T, H)) per batch, texts sorted by length."""
        import torch

        from ragarbiter.deadline import check_budget

        texts = [t.strip().lower() if self.recipe.lowercase else t.strip() for t in texts]
        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc="encoding", unit="text")
        for batch in batches:
            check_budget("encoding")
            width = max(len(encodings[i].ids) for i in batch)
            ids = torch.zeros(len(batch), width, dtype=torch.long)
            mask = torch.zeros(len(batch), width, dtype=torch.long)
            for row, i in enumerate(batch):
                n = len(encodings[i].ids)
                ids[row, :n] = torch.tensor(encodings[i].ids)
                mask[row, :n] = 1
            ids, mask = ids.to(self.device), mask.to(self.device)
            with torch.inference_mode():
                yield batch, ids, mask, self.net(ids, mask)
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()

    def encode(self, texts: Sequence[str], batch_size: int, progress: bool) -> np.ndarray:
        import torch

        from .bert import mean_pool

        out = np.zeros((len(texts), self.net.config.hidden_size), dtype=np.float32)
        for batch, _, mask, hidden in self.states(texts, batch_size, progress):
            with torch.inference_mode():
                pooled = mean_pool(hidden, mask) if self.recipe.pooling == "mean" else hidden[:, 0]
                if self.recipe.normalize:
                    pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[batch] = pooled.float().cpu().numpy()
        return out

    def encode_tokens(self, texts: Sequence[str], batch_size: int) -> list[np.ndarray]:
        import torch

        result: list[np.ndarray | None] = [None] * len(texts)
        special = torch.tensor(self.special_ids, device=self.device)
        for batch, ids, mask, hidden in self.states(texts, batch_size, False):
            keep = mask.bool() & ~torch.isin(ids, special)
            for row, i in enumerate(batch):
                result[i] = _unit_rows(hidden[row][keep[row]])
        return result  # type: ignore[return-value]


def _unit_rows(states) -> np.ndarray:
    arr = states.float().cpu().numpy().astype(np.float32, copy=True)  # (n_i, dim)
    arr /= np.linalg.norm(arr, axis=1, keepdims=True).clip(min=1e-12)
    return arr


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


# Function words that BM25 implementations conventionally drop: their IDF is near zero, and
# leaving them in makes every sparse vector longer (and embedded-mode sparse search slower).
STOPWORDS = frozenset(
    """
a about above after again against all am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her
here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
now of off on once only or other our ours ourselves out over own same she should so some such than that the
their theirs them themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
""".split()
)


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

    @functools.cached_property
    def _dropped_ids(self) -> frozenset[int]:
        vocab = self.tokenizer.backend.get_vocab(with_added_tokens=True)
        stop = {vocab[w] for w in STOPWORDS if w in vocab} if self.config.bm25_stopwords else set()
        return frozenset(stop | set(self.tokenizer.special_ids))

    def _terms(self, encoding) -> list[int]:
        dropped = self._dropped_ids
        return [
            i for i, tok in zip(encoding.ids, encoding.tokens) if i not in dropped and any(c.isalnum() for c in tok)
        ]

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

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def put(self, text: str, vector: np.ndarray) -> None:
        with self._lock:
            self._data[text] = vector
            self._data.move_to_end(text)
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)


@functools.cache
def shared_cache(model: str) -> EmbeddingCache:
    """One vector cache per model, shared by every encoder of it in the process.

    The store primes it with the vectors a search returns, so any later stage that
    encodes those passages with the same model reuses them.
    """
    return EmbeddingCache()


def dimension_from_files(folder) -> int | None:
    """A sentence-transformers folder's output size from `modules.json` and the module configs: the
    last Dense module's `out_features`, else the Pooling module's `word_embedding_dimension`
    (None when the files do not say, or name a module whose size they do not state)."""
    import json
    from pathlib import Path

    folder = Path(folder)
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    size = None
    for module in modules if isinstance(modules, list) else []:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        config = folder / str(module.get("path", "")) / "config.json"
        if kind in ("Transformer", "Normalize"):
            continue
        try:
            values = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        key = {"Pooling": "word_embedding_dimension", "Dense": "out_features"}.get(kind)
        if key is None or not isinstance(values.get(key), int):
            return None
        size = values[key]
    return size


class DenseEncoder:
    """Sentence embeddings from a sentence-transformers model folder, loaded lazily.

    A plain Transformer -> Pooling -> Normalize folder (the bundled all-MiniLM-L6-v2 is one) runs on
    the process-wide base encoder that the assessors share; any other folder runs through
    sentence-transformers.
    """

    def __init__(self, config: EncoderConfig | None = None) -> None:
        self.config = config or EncoderConfig()
        self._device = self.config.device
        self.cache = shared_cache(self.config.model)

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = default_device()
        return self._device

    @functools.cached_property
    def _direct(self) -> _DirectEncoder | None:
        from .bert import base_encoder, direct_loading

        path = resolve_model_path(self.config.model)
        recipe = sentence_recipe(path)
        if recipe is None or not direct_loading():
            return None

        with _LOAD_LOCK:
            return _DirectEncoder(str(path), recipe, base_encoder(self.config.model, self.device), self.device)

    @property
    def model(self):
        """The loaded model: the shared base encoder, or a `SentenceTransformer` for other folders."""
        direct = self._direct
        if direct is not None:
            return direct.net
        with _LOAD_LOCK:
            return _load_sentence_transformer(str(resolve_model_path(self.config.model)), self.device)

    @functools.cached_property
    def dimension(self) -> int:
        """The embedding size, read from the model folder's module configs when they tell it (so that
        checking a collection, or counting its points, loads no model), else from the loaded model."""
        known = dimension_from_files(resolve_model_path(self.config.model))
        if known is not None:
            return known
        model = self.model
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    @property
    def max_tokens(self) -> int:
        direct = self._direct
        return direct.recipe.max_length if direct is not None else int(self.model.max_seq_length)

    def _check(self, texts: Sequence[str]) -> None:
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                msg = f"Text #{i} is a {type(t).__name__}, not a str. Decode it before encoding."
                raise InvalidInputError(msg)

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """(len(texts), dim) float32, unit-norm rows."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        self._check(texts)
        batch_size = batch_size or self.config.batch_size
        if self._direct is not None:
            return self._direct.encode(texts, batch_size, progress)
        vectors = self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=progress
        )
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
        """Per-token embeddings, one (n_i, dim) float32 array of unit rows per text.

        Padding and the model's special tokens ([CLS], [SEP], ...) are removed, so a text
        without words (e.g. whitespace) gives a (0, dim) array. Texts longer than the model's
        `max_tokens` are truncated, as for `encode`.
        """
        texts = list(texts)
        if not texts:
            return []
        self._check(texts)
        batch_size = batch_size or self.config.batch_size
        if self._direct is not None:
            return self._direct.encode_tokens(texts, batch_size)
        import torch

        # output_value=None keeps input_ids and attention_mask next to the token embeddings
        outs = self.model.encode(
            texts, batch_size=batch_size, output_value=None, convert_to_numpy=False, show_progress_bar=False
        )
        tok = self.model.tokenizer
        special = sorted(set(tok.all_special_ids) - {tok.unk_token_id})
        result = []
        for features in outs:
            emb = features["token_embeddings"]  # (L, dim), L may include padding
            ids = features["input_ids"].to(emb.device)  # (L,)
            keep = features["attention_mask"].to(emb.device).bool()  # (L,)
            if special:
                keep &= ~torch.isin(ids, torch.tensor(special, device=emb.device))
            result.append(_unit_rows(emb[keep]))
        return result
