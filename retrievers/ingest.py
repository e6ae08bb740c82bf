"""Ingestion: load `.txt`, `.md` and `.jsonl` files, chunk by encoder tokens, upsert in batches.

Idempotent and resumable by construction: a chunk's point id is the hash of its text, and
each batch first asks the store which ids it already holds, so a re-run (after success or
after a crash) encodes and writes only what is missing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragarbiter.config import ChunkConfig
from ragarbiter.errors import EmptyCorpusError, InvalidInputError
from ragarbiter.types import Passage

from .encoders import TextTokenizer
from .store import QdrantStore

logger = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md", ".markdown", ".jsonl")


@dataclass
class SourceDocument:
    text: str
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class IngestReport:
    files: int = 0
    skipped_files: list[str] = field(default_factory=list)
    documents: int = 0
    chunks: int = 0
    added: int = 0
    skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def iter_files(paths: Sequence[str | Path]) -> Iterator[Path]:
    """Supported files under `paths`, in a stable order; a missing path is an error."""
    if not paths:
        msg = "No path given. Pass files or folders to index, e.g. `ragarbiter index docs/`."
        raise EmptyCorpusError(msg)
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            msg = f"Path {str(raw)!r} does not exist. Check the spelling or pass an existing file or folder."
            raise InvalidInputError(msg)
        if path.is_file():
            if path.suffix.lower() in SUFFIXES:
                yield path
            else:
                logger.warning("skipping %s: unsupported file type (supported: %s)", path, ", ".join(SUFFIXES))
            continue
        for file in sorted(path.rglob("*")):
            rel = file.relative_to(path)
            if file.is_file() and file.suffix.lower() in SUFFIXES and not any(p.startswith(".") for p in rel.parts):
                yield file


def read_text(path: Path) -> str | None:
    """File text as UTF-8, or None (with a warning naming the file) if binary or undecodable."""
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        logger.warning("skipping %s: it looks binary (NUL bytes). Convert it to UTF-8 text first.", path)
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        logger.warning("skipping %s: not valid UTF-8 (byte %d). Re-encode it as UTF-8.", path, exc.start)
        return None


def load_file(path: Path) -> list[SourceDocument] | None:
    text = read_text(path)
    if text is None:
        return None
    if path.suffix.lower() != ".jsonl":
        return [SourceDocument(text, str(path), {})] if text.strip() else []
    docs = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            logger.warning("skipping %s:%d: invalid JSON (%s)", path, lineno, exc.msg)
            continue
        body = record.get("text") if isinstance(record, dict) else None
        if not isinstance(body, str) or not body.strip():
            logger.warning("skipping %s:%d: each line needs a non-empty string field 'text'", path, lineno)
            continue
        meta = {k: v for k, v in record.items() if k not in ("text", "source")}
        source = record.get("source") if isinstance(record.get("source"), str) else f"{path}:{lineno}"
        docs.append(SourceDocument(body, source, meta))
    return docs


def chunk_text(text: str, tokenizer: TextTokenizer, config: ChunkConfig | None = None) -> list[str]:
    """Split into windows of at most `chunk_tokens` tokens overlapping by `overlap_tokens`.

    Window edges snap to word starts (never inside a WordPiece word), and each chunk is
    the exact character span of its tokens in the original text.
    """
    cfg = config or ChunkConfig()
    enc = tokenizer.encode(text)
    n = len(enc.ids)
    if n <= cfg.chunk_tokens:
        return [text.strip()] if text.strip() else []
    tokens, offsets = enc.tokens, enc.offsets

    def word_start(i: int) -> int:
        while 0 < i < n and tokens[i].startswith("##"):
            i -= 1
        return i

    chunks, start = [], 0
    while start < n:
        end = min(start + cfg.chunk_tokens, n)
        if end < n:
            end = max(word_start(end), start + 1)
        chunks.append(text[offsets[start][0] : offsets[end - 1][1]].strip())
        if end >= n:
            break
        start = max(word_start(end - cfg.overlap_tokens), start + 1)
    return [c for c in chunks if c]


def to_passages(doc: SourceDocument, tokenizer: TextTokenizer, config: ChunkConfig | None = None) -> list[Passage]:
    chunks = chunk_text(doc.text, tokenizer, config)
    return [
        Passage(text=c, metadata={**doc.metadata, "chunk": i, "n_chunks": len(chunks)}, source=doc.source)
        for i, c in enumerate(chunks)
    ]


def collect_passages(
    paths: Sequence[str | Path], tokenizer: TextTokenizer, config: ChunkConfig | None = None
) -> tuple[list[Passage], IngestReport]:
    report = IngestReport()
    passages: list[Passage] = []
    for file in iter_files(paths):
        docs = load_file(file)
        if docs is None:
            report.skipped_files.append(str(file))
            continue
        report.files += 1
        report.documents += len(docs)
        for doc in docs:
            passages += to_passages(doc, tokenizer, config)
    report.chunks = len(passages)
    if not passages:
        shown = ", ".join(str(p) for p in paths)
        msg = (
            f"Nothing to index in {shown}: no non-empty {', '.join(SUFFIXES)} files"
            f"{' (skipped: ' + ', '.join(report.skipped_files) + ')' if report.skipped_files else ''}. "
            f"Point at a folder of text files, or at JSONL with a 'text' field."
        )
        raise EmptyCorpusError(msg)
    return passages, report


def batched(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def index_passages(
    store: QdrantStore,
    passages: Sequence[Passage],
    *,
    batch_size: int = 64,
    progress: bool = True,
    report: IngestReport | None = None,
) -> IngestReport:
    """Upsert passages in batches with a progress bar; skips ids the store already has."""
    from tqdm.auto import tqdm

    report = report or IngestReport(chunks=len(passages))
    store.ensure_collection()
    with tqdm(total=len(passages), desc=f"indexing into {store.collection}", unit="chunk", disable=not progress) as bar:
        for batch in batched(passages, batch_size):
            result = store.upsert(batch)
            report.added += result.added
            report.skipped += len(batch) - result.added
            bar.update(len(batch))
    logger.info(
        "indexed %d chunks into %s (%d new, %d already present)",
        report.chunks,
        store.collection,
        report.added,
        report.skipped,
    )
    return report


def index_paths(
    store: QdrantStore,
    paths: Sequence[str | Path],
    *,
    chunk_config: ChunkConfig | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> IngestReport:
    """Load, chunk and index files; safe to re-run, and to resume after a crash."""
    tokenizer = TextTokenizer(store.encoder.config.model)
    passages, report = collect_passages(paths, tokenizer, chunk_config)
    return index_passages(store, passages, batch_size=batch_size, progress=progress, report=report)
