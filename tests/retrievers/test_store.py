import pytest

from ragarbiter import Passage, StoreConfig
from ragarbiter.errors import DimensionMismatchError, EmptyQueryError, UnknownCollectionError
from ragarbiter.retrievers import QdrantStore, SparseEncoder


def test_upsert_is_idempotent(make_store, fact_passages):
    store = make_store()
    first = store.upsert(fact_passages)
    second = store.upsert(fact_passages)
    assert (first.added, first.skipped) == (6, 0)
    assert (second.added, second.skipped) == (0, 6)
    assert store.count() == 6
    assert store.ids() == {p.id for p in fact_passages}


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_each_mode_finds_the_relevant_passage_first(filled_store, mode):
    hits = filled_store.search("Who founded the Halvorsen Observatory?", k=3, mode=mode)
    assert hits[0].source == "observatory.txt"
    # sparse returns only passages sharing a term with the query (here: two of six)
    assert len(hits) == (2 if mode == "sparse" else 3)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_sparse_search_matches_rare_terms_exactly(filled_store):
    hits = filled_store.search("cardamom", k=2, mode="sparse")
    assert [h.source for h in hits] == ["bakery.txt"]  # only one passage holds the term


def test_metadata_filter_restricts_results(filled_store):
    hits = filled_store.search("observatory", k=5, filter={"topic": "river"})
    assert [h.source for h in hits] == ["river.txt"]
    hits = filled_store.search("observatory", k=5, filter={"topic": ["river", "library"]})
    assert {h.source for h in hits} == {"river.txt", "library.txt"}


def test_payload_round_trips_metadata_and_source(filled_store, fact_passages):
    [hit] = filled_store.search("cardamom buns", k=1, mode="dense")
    original = next(p for p in fact_passages if p.id == hit.id)
    assert (hit.text, hit.source, hit.metadata) == (original.text, original.source, original.metadata)


def test_empty_query_is_rejected(filled_store):
    with pytest.raises(EmptyQueryError, match="at least one word"):
        filled_store.search("   ")


def test_unknown_collection_lists_what_exists_and_the_fix(filled_store, encoder):
    other = QdrantStore(StoreConfig(collection="missing"), encoder=encoder)
    other._client = filled_store.client  # same in-memory instance
    with pytest.raises(UnknownCollectionError) as info:
        other.search("q")
    msg = str(info.value)
    assert "'missing'" in msg and filled_store.collection in msg and "ragarbiter index" in msg


def test_dimension_mismatch_is_detected(tmp_path, make_store, fact_passages):
    from qdrant_client import models

    store = make_store()
    store.client.create_collection(
        store.collection, vectors_config={"dense": models.VectorParams(size=128, distance=models.Distance.COSINE)}
    )
    with pytest.raises(DimensionMismatchError, match="128-d.*384-d"):
        store.upsert(fact_passages)


def test_bm25_weights_saturate_and_normalise_length():
    enc = SparseEncoder()
    once, thrice = enc.encode_documents(["harbour", "harbour harbour harbour"])
    assert once.indices == thrice.indices and len(once.indices) == 1
    assert once.values[0] < thrice.values[0] < 3 * once.values[0]  # grows, but saturates
    short, long = enc.encode_documents(["harbour town", "harbour " + "quiet street " * 60])
    term = enc.tokenizer.backend.get_vocab()["harbour"]
    assert short.values[short.indices.index(term)] > long.values[long.indices.index(term)]


def test_sparse_terms_are_real_tokenizer_ids_without_punctuation():
    enc = SparseEncoder()
    [vec] = enc.encode_queries(["Lighthouse?!"])
    vocab = enc.tokenizer.backend.get_vocab()
    assert vec.indices == [vocab["lighthouse"]] and vec.values == [1.0]


def test_search_primes_the_embedding_cache(filled_store):
    [hit] = filled_store.search("river floods", k=1, mode="dense")
    cached = filled_store.encoder.cache.get(hit.text)
    assert cached is not None and cached.shape == (filled_store.encoder.dimension,)


def test_same_text_maps_to_one_point_even_from_two_sources(make_store):
    store = make_store()
    store.upsert([Passage("identical text", source="a.txt")])
    report = store.upsert([Passage("identical text", source="b.txt")])
    assert report.added == 0 and store.count() == 1


def test_stopwords_carry_no_sparse_weight_unless_asked_for():
    from ragarbiter import EncoderConfig

    keep = SparseEncoder(EncoderConfig(bm25_stopwords=False))
    drop = SparseEncoder()
    text = "Who is the designer of the lighthouse?"
    assert drop.tokenizer.backend.decode(drop.encode_queries([text])[0].indices) == "designer lighthouse"
    assert len(keep.encode_queries([text])[0].indices) == 6


def test_hybrid_weights_shift_the_fusion_toward_a_branch(make_store):
    from ragarbiter.errors import ConfigError

    store = make_store()
    semantic = Passage("Light metal alloys keep modern airliners efficient and strong.")
    lexical = Passage("The Zorbium stall at the Saturday market sells honey and candles.")
    store.upsert([semantic, lexical])
    query = "which zorbium alloy is used to build aircraft?"
    assert store.search(query, k=1, mode="dense")[0].id == semantic.id
    assert store.search(query, k=1, mode="sparse")[0].id == lexical.id
    assert store.search(query, k=1, weights=(1.0, 0.0))[0].id == semantic.id
    assert store.search(query, k=1, weights=(0.0, 1.0))[0].id == lexical.id
    with pytest.raises(ConfigError, match="non-negative"):
        store.search(query, weights=(0.0, 0.0))


def test_both_embedded_engines_give_the_same_hybrid_ranking(tmp_path, encoder, fact_passages):
    from ragarbiter import StoreConfig
    from ragarbiter.retrievers import QdrantStore

    rankings = {}
    for engine in ("edge", "python"):
        with QdrantStore(
            StoreConfig(collection="facts", path=str(tmp_path / engine), engine=engine), encoder=encoder
        ) as store:
            assert store.engine == engine
            store.upsert(fact_passages)
            rankings[engine] = {
                mode: [p.id for p in store.search("Who founded the observatory?", k=5, mode=mode)]
                for mode in ("dense", "sparse", "hybrid")
            }
            filtered = store.search("observatory", k=5, filter={"topic": fact_passages[0].metadata["topic"]})
            assert filtered and {p.metadata["topic"] for p in filtered} == {fact_passages[0].metadata["topic"]}
    assert rankings["edge"] == rankings["python"]


def test_an_edge_store_reopens_with_its_points_and_a_second_opener_is_refused(tmp_path, encoder, fact_passages):
    from ragarbiter import StoreConfig
    from ragarbiter.errors import StoreLockedError
    from ragarbiter.retrievers import QdrantStore

    config = StoreConfig(collection="facts", path=str(tmp_path / "s"), engine="edge")
    first = QdrantStore(config, encoder=encoder)
    first.upsert(fact_passages)
    with pytest.raises(StoreLockedError, match="locked by another process.*--url"):
        QdrantStore(config, encoder=encoder).count()
    first.close()
    with QdrantStore(config, encoder=encoder) as again:
        assert again.count() == len(fact_passages)
        assert again.collections() == ["facts"]


def test_an_unknown_engine_is_a_config_error():
    from ragarbiter import StoreConfig
    from ragarbiter.errors import ConfigError

    with pytest.raises(ConfigError, match="engine must be one of auto, edge, python, got 'rust'"):
        StoreConfig(engine="rust")


@pytest.mark.parametrize("engine", ["edge", "python"])
def test_a_qdrant_filter_with_ranges_and_exclusions_passes_through_both_engines(tmp_path, encoder, engine):
    from qdrant_client import models

    from ragarbiter import Passage, StoreConfig
    from ragarbiter.retrievers import QdrantStore

    years = {1868: "archive", 1871: "archive", 1874: "brochure", 1921: "museum"}
    passages = [
        Passage(f"The harbour logbook entry from {y}.", source=src, metadata={"year": y}) for y, src in years.items()
    ]
    flt = models.Filter(
        must=[models.FieldCondition(key="metadata.year", range=models.Range(gte=1870, lt=1900))],
        must_not=[models.FieldCondition(key="source", match=models.MatchValue(value="brochure"))],
    )
    with QdrantStore(
        StoreConfig(collection="years", path=str(tmp_path / engine), engine=engine), encoder=encoder
    ) as store:
        store.upsert(passages)
        found = store.search("harbour logbook", k=4, filter=flt)
    assert [p.metadata["year"] for p in found] == [1871]


def test_counting_points_loads_no_model(tmp_path, encoder, fact_passages):
    from ragarbiter import StoreConfig
    from ragarbiter.retrievers import DenseEncoder, QdrantStore
    from ragarbiter.retrievers.encoders import _load_sentence_transformer

    config = StoreConfig(collection="facts", path=str(tmp_path / "s"))
    with QdrantStore(config, encoder=encoder) as store:
        store.upsert(fact_passages)
    _load_sentence_transformer.cache_clear()
    with QdrantStore(config, encoder=DenseEncoder()) as store:
        assert store.count() == len(fact_passages)
        assert store.encoder.dimension == 384
    assert _load_sentence_transformer.cache_info().currsize == 0
