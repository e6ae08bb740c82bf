"""Retrieval: the Qdrant store and retriever, encoders, ingestion, MaxSim reranking and deduplication."""

if __name__.partition(".")[0] != "ragarbiter":  # imported by its bare folder name: see ragarbiter._layout
    from ragarbiter._layout import hand_over

    hand_over(__name__, "ragarbiter.retrievers")
else:
    from .dedupe import Deduplicator
    from .encoders import DenseEncoder, SparseEncoder, TextTokenizer
    from .ingest import IngestReport, chunk_text, index_passages, index_paths, iter_files, load_file
    from .maxsim import MaxSimReranker
    from .retriever import QdrantRetriever
    from .store import QdrantStore, UpsertReport, build_filter

    # The stages this package provides to `ragarbiter.build_stage`, built as Class(**options).
    STAGES = {
        "qdrant": "ragarbiter.retrievers.retriever:QdrantRetriever",
        "dedupe": "ragarbiter.retrievers.dedupe:Deduplicator",
        "maxsim": "ragarbiter.retrievers.maxsim:MaxSimReranker",
    }

    __all__ = [
        "DenseEncoder",
        "Deduplicator",
        "IngestReport",
        "MaxSimReranker",
        "QdrantRetriever",
        "QdrantStore",
        "SparseEncoder",
        "TextTokenizer",
        "UpsertReport",
        "build_filter",
        "chunk_text",
        "index_passages",
        "index_paths",
        "iter_files",
        "load_file",
    ]
