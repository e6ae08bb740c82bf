import json
import logging
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from ragarbiter import ChunkConfig, StoreConfig
from ragarbiter.errors import ConfigError, EmptyCorpusError, InvalidInputError
from ragarbiter.retrievers import QdrantStore, TextTokenizer, chunk_text, index_paths, load_file


@pytest.fixture(scope="module")
def tokenizer():
    return TextTokenizer()


def write_corpus(folder, n_files=3, paragraphs=4):
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(n_files):
        body = "\n\n".join(
            f"File {f} paragraph {p}: the keeper of tower {f} wrote entry {p} about storm {f * 10 + p}."
            for p in range(paragraphs)
        )
        (folder / f"doc{f}.md").write_text(body, encoding="utf-8")
    return folder


def test_chunks_respect_the_token_budget_and_overlap(tokenizer):
    text = " ".join(f"word{i}" for i in range(400))
    cfg = ChunkConfig(chunk_tokens=50, overlap_tokens=10)
    chunks = chunk_text(text, tokenizer, cfg)
    assert len(chunks) > 5
    assert all(tokenizer.count(c) <= 50 for c in chunks)
    for left, right in zip(chunks, chunks[1:]):
        assert left.split()[-1] in right  # consecutive chunks overlap
    assert chunks[0].startswith("word0") and chunks[-1].endswith("word399")


def test_chunk_edges_never_split_a_word(tokenizer):
    text = " ".join(["extraordinarily", "uncharacteristically", "lighthouse"] * 60)
    words = set(text.split())
    for chunk in chunk_text(text, tokenizer, ChunkConfig(chunk_tokens=17, overlap_tokens=5)):
        assert set(chunk.split()) <= words


def test_overlap_must_be_smaller_than_chunk():
    with pytest.raises(ConfigError, match="overlap_tokens"):
        ChunkConfig(chunk_tokens=10, overlap_tokens=10)


@pytest.mark.slow
def test_huge_document_is_chunked_not_truncated(tmp_path, make_store):
    text = " ".join(f"Entry {i} records the tide at harbour station {i % 17}." for i in range(3000))
    (tmp_path / "huge.txt").write_text(text, encoding="utf-8")
    store = make_store()
    report = index_paths(store, [tmp_path], progress=False)
    assert report.chunks > 100 and store.count() == report.chunks
    assert store.search("Entry 2999 records the tide", k=1, mode="sparse")[0].metadata["chunk"] == report.chunks - 1


def test_jsonl_fields_become_metadata_and_bad_lines_are_skipped(tmp_path, caplog):
    path = tmp_path / "docs.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"text": "first", "author": "ann", "source": "s1"}),
                "{not json",
                json.dumps({"title": "no text field"}),
                json.dumps({"text": "second", "year": 1901}),
            ]
        ),
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING):
        docs = load_file(path)
    assert [(d.text, d.source, d.metadata) for d in docs] == [
        ("first", "s1", {"author": "ann"}),
        ("second", f"{path}:4", {"year": 1901}),
    ]
    assert f"{path}:2" in caplog.text and f"{path}:3" in caplog.text


def test_binary_and_undecodable_files_are_skipped_with_a_warning(tmp_path, make_store, caplog):
    (tmp_path / "good.txt").write_text("The harbour froze in 1947.", encoding="utf-8")
    (tmp_path / "image.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 au lait".encode("latin-1"))
    with caplog.at_level(logging.WARNING):
        report = index_paths(make_store(), [tmp_path], progress=False)
    assert report.files == 1 and report.chunks == 1
    assert sorted(os.path.basename(p) for p in report.skipped_files) == ["image.md", "latin1.txt"]
    assert "image.md" in caplog.text and "latin1.txt" in caplog.text and "UTF-8" in caplog.text


def test_empty_corpus_and_missing_path_are_clear_errors(tmp_path, make_store):
    (tmp_path / "empty.txt").write_text("   \n", encoding="utf-8")
    with pytest.raises(EmptyCorpusError, match="Nothing to index"):
        index_paths(make_store(), [tmp_path], progress=False)
    with pytest.raises(InvalidInputError, match="does not exist"):
        index_paths(make_store(), [tmp_path / "nope"], progress=False)
    with pytest.raises(EmptyCorpusError, match="No path given"):
        index_paths(make_store(), [], progress=False)


def test_reindexing_the_same_files_adds_no_points(tmp_path, make_store):
    corpus = write_corpus(tmp_path / "corpus")
    store = make_store()
    first = index_paths(store, [corpus], progress=False)
    second = index_paths(store, [corpus], progress=False)
    assert first.added == first.chunks > 0
    assert (second.added, second.skipped) == (0, first.chunks)
    assert store.count() == first.chunks


KILLER = textwrap.dedent("""
    import os, signal, sys
    from ragarbiter import StoreConfig, ChunkConfig
    from ragarbiter.retrievers import QdrantStore, index_paths, DenseEncoder

    class DiesMidRun(DenseEncoder):
        calls = 0
        def encode(self, texts, **kw):
            DiesMidRun.calls += 1
            if DiesMidRun.calls == 3:          # after two batches are stored
                os.kill(os.getpid(), signal.SIGKILL)
            return super().encode(texts, **kw)

    store = QdrantStore(StoreConfig(collection="c", path=sys.argv[1]), encoder=DiesMidRun())
    index_paths(store, [sys.argv[2]], chunk_config=ChunkConfig(chunk_tokens=24, overlap_tokens=4),
                batch_size=4, progress=False)
""")


@pytest.mark.slow
def test_ingestion_killed_mid_run_resumes_with_every_chunk_once(tmp_path, encoder):
    corpus = write_corpus(tmp_path / "corpus", n_files=4, paragraphs=5)
    folder = tmp_path / "store"
    proc = subprocess.run([sys.executable, "-c", KILLER, str(folder), str(corpus)], capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]

    cfg = ChunkConfig(chunk_tokens=24, overlap_tokens=4)
    with QdrantStore(StoreConfig(collection="c", path=str(folder)), encoder=encoder) as store:
        partial = store.count()
        report = index_paths(store, [corpus], chunk_config=cfg, batch_size=4, progress=False)
        assert 0 < partial < report.chunks  # the kill really happened mid-run
        assert report.skipped == partial and report.added == report.chunks - partial
        tok = TextTokenizer()
        from ragarbiter.retrievers.ingest import collect_passages

        expected, _ = collect_passages([corpus], tok, cfg)
        assert store.ids() == {p.id for p in expected} and store.count() == len(expected)
