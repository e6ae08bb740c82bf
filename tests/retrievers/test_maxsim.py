import numpy as np
import pytest

from ragarbiter import Context, ContextReordered, Passage, PassageDropped, StoreConfig, build_stage
from ragarbiter.errors import ConfigError, DimensionMismatchError
from ragarbiter.retrievers import MaxSimReranker, QdrantStore, TextTokenizer

QUERY = "Who founded the Halvorsen Observatory, and when?"


class CountingEncoder:
    """The session encoder, recording every text it is asked to turn into token embeddings."""

    def __init__(self, encoder):
        self.inner = encoder
        self.token_calls: list[list[str]] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode_tokens(self, texts, **kwargs):
        self.token_calls.append(list(texts))
        return self.inner.encode_tokens(texts, **kwargs)


@pytest.fixture
def token_store(encoder, fact_passages):
    store = QdrantStore(StoreConfig(collection="tokens", path=":memory:"), encoder=encoder, token_vectors=True)
    store.upsert(fact_passages)
    yield store
    store.close()


def brute_force_maxsim(query: np.ndarray, doc: np.ndarray) -> float:
    """Mean over query tokens of the best cosine with any document token, one pair at a time."""
    best = [max(float(np.dot(q, t)) for t in doc) for q in query]
    return sum(best) / len(best)


def test_order_and_scores_match_a_brute_force_maxsim(encoder, fact_passages):
    out = MaxSimReranker(encoder)(Context.for_query(QUERY, fact_passages))
    [query] = encoder.encode_tokens([QUERY])
    expected = {
        p.id: brute_force_maxsim(query, d)
        for p, d in zip(fact_passages, encoder.encode_tokens([p.text for p in fact_passages]))
    }
    assert [p.id for p in out.passages] == sorted(expected, key=expected.get, reverse=True)
    assert [p.score for p in out.passages] == pytest.approx([expected[p.id] for p in out.passages], abs=1e-5)
    assert all(-1.0 <= p.score <= 1.0 for p in out.passages)


def test_token_embeddings_leave_out_padding_and_special_tokens(encoder):
    short, long = "Tarn", "The river Lenne floods every spring when the snow on Mount Tarn melts."
    together = encoder.encode_tokens([short, long, "   "])
    alone = [encoder.encode_tokens([t])[0] for t in (short, long)]
    n_words = [TextTokenizer().count(t) for t in (short, long)]
    assert [len(t) for t in together] == [*n_words, 0]
    for batched, single in zip(together, alone):
        np.testing.assert_allclose(batched, single, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


def test_a_passage_with_the_query_rare_terms_moves_above_a_generic_one(encoder):
    generic = Passage("The boiling point of a chemical element depends on pressure.", score=0.9)
    specific = Passage("Zorbium, a soft grey metal, turns to vapour at 1312 kelvin.", score=0.8)
    out = MaxSimReranker(encoder)(Context.for_query("What is the boiling point of zorbium?", [generic, specific]))
    assert [p.id for p in out.passages] == [specific.id, generic.id]
    assert out.passages[0].score > out.passages[1].score


def test_stored_token_vectors_replace_encoding_and_give_the_same_order(encoder, token_store, fact_passages):
    counting = CountingEncoder(encoder)
    context = Context.for_query(QUERY, fact_passages)
    from_store = MaxSimReranker(counting, store=token_store)(context)
    assert counting.token_calls == [[QUERY]]  # the query only; no candidate was encoded
    on_the_fly = MaxSimReranker(encoder)(context)
    assert [p.id for p in from_store.passages] == [p.id for p in on_the_fly.passages]
    assert [p.score for p in from_store.passages] == pytest.approx([p.score for p in on_the_fly.passages], abs=1e-5)
    assert "6 from the store, 0 encoded" in from_store.trace[0].reason


def test_token_store_fetches_multivectors_by_id_and_skips_unknown_ids(token_store, fact_passages):
    wanted = [fact_passages[0].id, "not-a-point-id", "7", fact_passages[2].id]
    vectors = token_store.fetch_token_vectors(wanted)
    assert sorted(vectors) == sorted([fact_passages[0].id, fact_passages[2].id])
    expected = token_store.encoder.encode_tokens([fact_passages[0].text])[0]
    np.testing.assert_allclose(vectors[fact_passages[0].id], expected, atol=1e-5)


def test_plain_store_has_no_token_vectors_and_refuses_to_add_them(make_store, fact_passages, encoder):
    plain = make_store()
    plain.upsert(fact_passages)
    assert not plain.has_token_vectors and plain.fetch_token_vectors([fact_passages[0].id]) == {}
    again = QdrantStore(plain.config, encoder=encoder, token_vectors=True)
    again._client = plain.client  # the same in-memory instance
    with pytest.raises(DimensionMismatchError, match="without the 'tokens' multivector.*new collection"):
        again.upsert(fact_passages)


def test_reordering_is_an_event_with_before_and_after_ids(encoder, fact_passages):
    context = Context.for_query(QUERY, [p.evolve(score=1.0 - i / 10) for i, p in enumerate(fact_passages)])
    out = MaxSimReranker(encoder)(context)
    [event] = out.trace
    assert isinstance(event, ContextReordered) and event.stage == "maxsim"
    assert event.before == tuple(p.id for p in fact_passages)
    assert event.after == tuple(p.id for p in out.passages)
    assert "MaxSim" in event.reason
    original = {p.id: p.score for p in context.passages}
    assert all(p.metadata["retrieval_score"] == original[p.id] for p in out.passages)
    assert [p.id for p in context.passages] == list(event.before)  # the input is untouched


def test_top_n_records_every_truncated_passage_with_its_rank(encoder, fact_passages):
    out = MaxSimReranker(encoder, top_n=2)(Context.for_query(QUERY, fact_passages))
    full_order = out.trace[0].after
    assert [p.id for p in out.passages] == list(full_order[:2])
    assert [d.passage.id for d in out.dropped] == list(full_order[2:])
    assert all(d.stage == "maxsim" and "below top_n=2" in d.reason for d in out.dropped)
    assert out.dropped[0].reason.startswith("ranked #3 of 6 by MaxSim")
    dropped_events = [e for e in out.trace if isinstance(e, PassageDropped)]
    assert [e.passage_id for e in dropped_events] == list(full_order[2:])


def test_no_passages_leaves_the_context_unchanged(encoder):
    context = Context.for_query(QUERY)
    assert MaxSimReranker(encoder)(context) is context


def test_a_wordless_passage_goes_last_without_a_score(encoder, fact_passages):
    blank = Passage("   ", id="blank", score=5.0)
    out = MaxSimReranker(encoder)(Context.for_query(QUERY, [blank, *fact_passages[:2]]))
    assert out.passages[-1].id == "blank" and out.passages[-1].score is None
    assert out.passages[-1].metadata["retrieval_score"] == 5.0


def test_the_triton_kernel_under_the_interpreter_gives_the_same_order(encoder, fact_passages):
    pytest.importorskip("triton")
    context = Context.for_query(QUERY, fact_passages)
    reference = MaxSimReranker(encoder, backend="torch")(context)
    kernel = MaxSimReranker(encoder, backend="triton")(context)
    assert [p.id for p in kernel.passages] == [p.id for p in reference.passages]
    assert [p.score for p in kernel.passages] == pytest.approx([p.score for p in reference.passages], abs=1e-4)


def test_the_stage_built_by_name_reranks_like_the_class(encoder, fact_passages):
    context = Context.for_query(QUERY, fact_passages)
    by_name = build_stage("maxsim", encoder=encoder, top_n=3)(context)
    direct = MaxSimReranker(encoder, top_n=3)(context)
    assert [p.id for p in by_name.passages] == [p.id for p in direct.passages]
    assert len(by_name.passages) == 3
    assert [p.score for p in by_name.passages] == pytest.approx([p.score for p in direct.passages])


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"top_n": 0}, "top_n must be a positive integer, got 0"),
        ({"batch_size": -1}, "batch_size must be a positive integer, got -1"),
        ({"backend": "cuda"}, "backend='cuda'.*'auto', 'triton', 'torch'"),
    ],
)
def test_bad_options_name_the_value_and_the_fix(encoder, options, match):
    with pytest.raises(ConfigError, match=match):
        MaxSimReranker(encoder, **options)
