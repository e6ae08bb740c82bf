"""AttentionSorter and LostInTheMiddleReorder through their public calls, on a tiny Llama built in code."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from ragarbiter import Context, Passage, Pipeline
from ragarbiter.errors import ConfigError
from ragarbiter.registry import build_stage
from tests.eager import eager_document_mass

transformers = pytest.importorskip("transformers")


# -- LostInTheMiddleReorder ----------------------------------------------------------------------
def _ids(context):
    return [p.text for p in context.passages]


@pytest.mark.parametrize(
    ("arrived", "placed"),
    [
        ("abcde", "acedb"),  # LongContextReorder: walking from the weakest, alternately front and back
        ("abcdef", "bdfeca"),
        ("ab", "ab"),
    ],
)
def test_lost_in_the_middle_puts_the_best_at_both_ends(arrived, placed):
    stage = build_stage("lost_in_the_middle")
    out = stage(Context.for_query("q?", [Passage(c) for c in arrived]))
    assert "".join(_ids(out)) == placed
    if arrived != placed:
        event = out.trace[-1]
        assert event.kind == "context_reordered" and "both ends" in event.reason


def test_lost_in_the_middle_ranks_by_score_when_every_passage_has_one():
    scored = [
        Passage(c, score=s) for c, s in zip("abcde", (0.1, 0.9, 0.5, 0.7, 0.3))
    ]  # ranks: b d c e a -> r1 r3 r5 r4 r2
    out = build_stage("lost_in_the_middle")(Context.for_query("q?", scored))
    assert "".join(_ids(out)) == "bcaed"
    assert "retrieval score" in out.trace[-1].reason


# -- AttentionSorter ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    from transformers import LlamaConfig, LlamaForCausalLM

    from ragarbiter.synthetic import WorldConfig, build_world
    from ragarbiter.testbed.lm import build_tokenizer

    world = build_world(WorldConfig(seed=5, people=16, companies=4, cities=4, countries=2))
    tok = build_tokenizer(world, 400)
    torch.manual_seed(1)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
        )
    ).eval()
    texts = list(world.texts())
    docs = [Passage(" ".join(texts[2 * i : 2 * i + 2 + i % 3]), source=f"src{i}") for i in range(6)]
    return model, tok, docs


def _sorter(tiny, **options):
    from ragarbiter.assessors import AttentionSorter

    model, tok, _ = tiny
    return AttentionSorter(model=model, tokenizer=tok, **options)


def _eager_scores(tiny, sorter, query, passages):
    """The reference: eager attention of the last token, per document, for the prompt in this order."""
    model = tiny[0]
    prompt, spans = sorter.config.template.render(query, [p.text for p in passages], [p.source for p in passages])
    enc = sorter.attention.encode(prompt, spans)
    return eager_document_mass(model, enc.ids, enc.spans)


def test_one_iteration_sorts_by_eager_attention_most_attended_last(tiny):
    _, _, docs = tiny
    sorter = _sorter(tiny, iterations=1)
    query = "Where was Tavo born?"
    want = _eager_scores(tiny, sorter, query, docs)
    out = sorter(Context.for_query(query, docs))
    expected = [p.id for _, p in sorted(zip(want, docs), key=lambda t: t[0])]
    assert [p.id for p in out.passages] == expected
    scores = {j.passage_id: j.score for j in out.judgements}
    assert [scores[p.id] for p in out.passages] == pytest.approx(sorted(want), abs=1e-5)
    assert all(j.label == "attention" and "attention mass" in j.reason for j in out.judgements)
    assert out.trace[-1].kind == "context_reordered"


def test_iterations_repeat_the_sort_on_the_new_order(tiny):
    _, _, docs = tiny
    query = "Who employs Kiri?"
    once = _sorter(tiny, iterations=1)
    twice = _sorter(tiny, iterations=2)
    step1 = once(Context.for_query(query, docs))
    step2 = once(Context.for_query(query, step1.passages))
    assert [p.id for p in twice(Context.for_query(query, docs)).passages] == [p.id for p in step2.passages]


class _WholePrompts:
    """The reference encoder: every prompt tokenized whole (the sorter before piecewise encoding)."""

    def __init__(self, attention) -> None:
        self.encode = attention.encode


def _sort_recording(sorter, context, monkeypatch, *, whole_prompts: bool = False):
    """Sort `context`, returning the result, the prompts each forward pass got, and the whole-prompt encodes."""
    import ragarbiter.assessors.attention_sort.stage as stage

    prompts, encodes = [], []
    mass, encode = sorter.attention.mass, sorter.attention.encode
    with monkeypatch.context() as mp:
        if whole_prompts:
            mp.setattr(stage, "PiecewiseEncoder", _WholePrompts)
        mp.setattr(sorter.attention, "mass", lambda batch, **kw: prompts.append(list(batch)) or mass(batch, **kw))
        mp.setattr(sorter.attention, "encode", lambda *a: encodes.append(a) or encode(*a))
        return sorter(context), prompts, encodes


def test_iterations_reuse_the_documents_tokens_and_see_the_whole_prompts_ids(tiny, monkeypatch):
    _, _, docs = tiny
    context = Context.for_query("Where was Tavo born?", docs)
    want, want_prompts, _ = _sort_recording(_sorter(tiny), context, monkeypatch, whole_prompts=True)
    out, prompts, encodes = _sort_recording(_sorter(tiny), context, monkeypatch)
    assert len(prompts) == 3 and prompts == want_prompts  # the same ids and spans at every iteration
    assert len(encodes) == 1  # only the first prompt was tokenized whole (and checked against its pieces)
    assert [p.id for p in out.passages] == [p.id for p in want.passages]
    assert [j.score for j in out.judgements] == [j.score for j in want.judgements]


def test_a_tokenizer_that_merges_across_pieces_sorts_from_whole_prompts(tiny, monkeypatch, caplog):
    import logging

    from transformers import LlamaConfig, LlamaForCausalLM

    from ragarbiter.assessors import AttentionSorter
    from tests.tiny_lm import metaspace_tokenizer

    _, _, docs = tiny
    tok = metaspace_tokenizer([*(p.text for p in docs), "Answer the question using only the documents below."], 300)
    torch.manual_seed(2)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
    )
    model = LlamaForCausalLM(config).eval()
    context = Context.for_query("Where was Tavo born?", docs)
    want, want_prompts, _ = _sort_recording(
        AttentionSorter(model=model, tokenizer=tok), context, monkeypatch, whole_prompts=True
    )
    with caplog.at_level(logging.DEBUG, logger="ragarbiter.lm.capture"):
        out, prompts, encodes = _sort_recording(AttentionSorter(model=model, tokenizer=tok), context, monkeypatch)
    assert "tokenizes differently in pieces" in caplog.text
    assert len(encodes) == 3  # every iteration tokenized its prompt whole
    assert prompts == want_prompts
    assert [p.id for p in out.passages] == [p.id for p in want.passages]
    assert [p.id for p in out.passages] != [p.id for p in docs]  # it did reorder


def test_batched_contexts_sort_like_single_ones(tiny):
    _, _, docs = tiny
    sorter = _sorter(tiny, iterations=2, batch_size=3)
    contexts = [Context.for_query(q, docs[i:]) for i, q in enumerate(["a?", "Where was Tavo born?", "b?", "c?"])]
    together = sorter.sort_many(contexts)
    for context, batched in zip(contexts, together):
        assert [p.id for p in sorter(context).passages] == [p.id for p in batched.passages]


def test_reorder_event_and_prefix_cache(tiny):
    _, _, docs = tiny
    context = Context.for_query("Where was Tavo born?", docs)
    plain = _sorter(tiny)(context)
    event = next(e for e in plain.trace if e.kind == "context_reordered")
    assert event.before == tuple(p.id for p in docs) and event.after == tuple(p.id for p in plain.passages)
    cached = _sorter(tiny, min_prefix_tokens=1)
    out = cached(context)
    assert cached.attention._prefixes  # the instruction's key/value cache was built and kept
    assert [p.id for p in out.passages] == [p.id for p in plain.passages]
    assert [j.score for j in out.judgements] == pytest.approx([j.score for j in plain.judgements], abs=1e-5)


def test_passages_with_the_same_text_keep_their_own_fate(tiny):
    _, _, docs = tiny
    twins = [docs[0], docs[1], Passage(docs[0].text), docs[2]]  # same text, so the same content id
    out = _sorter(tiny, truncate_to=3)(Context.for_query("q?", twins))
    assert len(out.passages) == 3 and len(out.dropped) == 1
    assert len(out.judgements) == 4


def test_concurrent_pipeline_batch_matches_one_at_a_time(tiny):
    _, _, docs = tiny
    sorter = _sorter(tiny, min_prefix_tokens=1)
    queries = ["Where was Tavo born?", "Who employs Kiri?", "q?", "What does Lem do?"]
    pipeline = Pipeline([sorter])
    one_at_a_time = [pipeline.run(q, passages=docs) for q in queries]
    with ThreadPoolExecutor(4) as pool:  # what Pipeline.batch does
        threaded = list(pool.map(lambda q: pipeline.run(q, passages=docs), queries))
    for a, b in zip(one_at_a_time, threaded):
        assert [p.id for p in a.passages] == [p.id for p in b.passages]


def test_mean_aggregate_divides_by_the_span_length(tiny):
    _, _, docs = tiny
    total = _sorter(tiny, iterations=1)(Context.for_query("q?", docs))
    mean = _sorter(tiny, iterations=1, aggregate="mean")(Context.for_query("q?", docs))
    sums = {j.passage_id: j.score for j in total.judgements}
    means = {j.passage_id: j.score for j in mean.judgements}
    sorter = _sorter(tiny)
    prompt, spans = sorter.config.template.render("q?", [p.text for p in docs], [p.source for p in docs])
    lengths = [e - s for s, e in sorter.attention.encode(prompt, spans).spans]
    for p, n in zip(docs, lengths):
        assert means[p.id] == pytest.approx(sums[p.id] / n, rel=1e-4)
    assert "per token" in mean.judgements[0].reason


def test_empty_documents_are_skipped_with_a_reason_and_kept(tiny):
    _, _, docs = tiny
    passages = [docs[0], Passage("   ", id="blank"), docs[1]]
    out = _sorter(tiny)(Context.for_query("q?", passages))
    assert out.passages[0].id == "blank"
    blank = out.judgements_for("blank")[0]
    assert blank.score == 0.0 and "empty text" in blank.reason
    assert len(out.passages) == 3
    cut = _sorter(tiny, truncate_to=1)(Context.for_query("q?", passages))
    assert len(cut.passages) == 1 and {d.passage.id for d in cut.dropped} >= {"blank"}


def test_truncate_to_keeps_the_most_attended_and_says_why_the_rest_went(tiny):
    _, _, docs = tiny
    full = _sorter(tiny)(Context.for_query("q?", docs))
    cut = _sorter(tiny, truncate_to=2)(Context.for_query("q?", docs))
    assert [p.id for p in cut.passages] == [p.id for p in full.passages][-2:]
    assert len(cut.dropped) == 4 and all("truncate_to" in d.reason for d in cut.dropped)


def test_prompt_longer_than_the_window_is_an_error_or_drops_the_lowest_ranked(tiny):
    model, tok, docs = tiny
    sorter = _sorter(tiny)
    sorter.attention.max_positions = 200
    with pytest.raises(ConfigError, match=r"longer than the model's window of 200.*overflow='drop'"):
        sorter(Context.for_query("q?", docs))
    dropping = _sorter(tiny, overflow="drop")
    dropping.attention.max_positions = 200
    out = dropping(Context.for_query("q?", docs))
    assert out.dropped and all("over the model's window of 200" in d.reason for d in out.dropped)
    kept = {p.id for p in out.passages}
    assert kept == {p.id for p in docs[: len(kept)]}  # the lowest-ranked (last to arrive) went first
    assert len(kept) + len(out.dropped) == len(docs)


def test_bad_options_name_the_value_and_the_fix(tiny):
    model, tok, _ = tiny
    with pytest.raises(ConfigError, match="needs a causal LM"):
        build_stage("attention_sort")
    with pytest.raises(ConfigError, match="tokenizer"):
        build_stage("attention_sort", model=model)
    for bad in ({"iterations": 0}, {"aggregate": "max"}, {"truncate_to": 0}, {"overflow": "wrap"}):
        with pytest.raises(ConfigError, match=repr(next(iter(bad.values())))):
            build_stage("attention_sort", model=model, tokenizer=tok, **bad)


def test_settings_come_from_the_config_and_the_model_is_a_keyword(tiny):
    from ragarbiter.assessors import AttentionSortConfig, AttentionSorter

    model, tok, _ = tiny
    sorter = AttentionSorter(AttentionSortConfig(iterations=2, aggregate="mean"), model=model, tokenizer=tok, heads=[1])
    assert (sorter.config.iterations, sorter.config.aggregate, sorter.config.batch_size) == (2, "mean", 8)
    assert sorter.attention.heads == [1] and sorter.attention.min_prefix_tokens == 1024
    assert repr(sorter) == "AttentionSorter(model=LlamaForCausalLM, iterations=2, aggregate='mean')"
    from ragarbiter.lm import PromptTemplate, prompt_template

    assert sorter.config.template == PromptTemplate()
    # the testbed harness builds the stage by name with its own layout
    by_name = build_stage("attention_sort", model=model, tokenizer=tok, template=prompt_template())
    assert by_name.config.template == prompt_template() != PromptTemplate()
    with pytest.raises(ConfigError, match=r"got LlamaForCausalLM.*runtime objects as keywords \(model=, tokenizer=\)"):
        AttentionSorter(model, tokenizer=tok)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['iteration'\]"):
        AttentionSorter(model=model, tokenizer=tok, iteration=2)


def test_a_model_folder_loads_by_path(tiny, tmp_path):
    model, tok, docs = tiny
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    by_path = build_stage("attention_sort", model=str(tmp_path), iterations=1)
    by_object = _sorter(tiny, iterations=1)
    assert [p.id for p in by_path(Context.for_query("q?", docs)).passages] == [
        p.id for p in by_object(Context.for_query("q?", docs)).passages
    ]
    from ragarbiter.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="no config.json"):
        build_stage("attention_sort", model=str(tmp_path / "missing"))


# -- proxy use: a small local model sorts the context for a larger LLM called through a framework --
def test_langchain_chain_sends_the_larger_llm_the_sorted_context(tiny):
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableLambda

    from ragarbiter.adapters.langchain import ArbiterCompressor

    _, _, docs = tiny
    sorter = _sorter(tiny)
    expected = [p.text for p in sorter(Context.for_query("Where was Tavo born?", docs)).passages]
    seen = []

    def remember(prompt_value):
        seen.append(prompt_value.to_string())
        return prompt_value

    chain = (
        {"documents": RunnableLambda(lambda q: [Document(p.text) for p in docs]), "query": lambda q: q}
        | ArbiterCompressor(pipeline=Pipeline([sorter]))
        | RunnableLambda(
            lambda ds: {"context": "\n".join(d.page_content for d in ds), "question": "Where was Tavo born?"}
        )
        | ChatPromptTemplate.from_template("{context}\n\nQuestion: {question}")
        | RunnableLambda(remember)
        | FakeListChatModel(responses=["Vesh"])
    )
    assert chain.invoke("Where was Tavo born?").content == "Vesh"
    positions = [seen[0].index(text) for text in expected]
    assert positions == sorted(positions)  # the large model read the documents in sorted order


def test_llama_index_postprocessor_sorts_nodes(tiny):
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from ragarbiter.adapters.llama_index import ArbiterPostprocessor

    _, _, docs = tiny
    sorter = _sorter(tiny)
    expected = [p.text for p in sorter(Context.for_query("Where was Tavo born?", docs)).passages]
    nodes = [NodeWithScore(node=TextNode(text=p.text), score=1.0 - i / 10) for i, p in enumerate(docs)]
    out = ArbiterPostprocessor(pipeline=Pipeline([sorter])).postprocess_nodes(
        nodes, query_bundle=QueryBundle("Where was Tavo born?")
    )
    assert [n.node.get_content() for n in out] == expected
    assert all(n.node.metadata["ragarbiter"][0]["label"] == "attention" for n in out)


# -- the benchmark ---------------------------------------------------------------------------------
PEOPLE = [
    ("Asha Kell", "Doran Pike", "Lisbon"),
    ("Mira Voss", "Tobin Hale", "Quito"),
    ("Ravi Sand", "Ulla Brek", "Hanoi"),
    ("Nena Orr", "Piet Lamb", "Accra"),
]


def _write_synthwiki(path):
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["context", "question", "answer"])
        for name, friend, city in PEOPLE:
            context = f"{name} is a painter born in {city}. {name}'s closest friend is {friend}, a sculptor."
            writer.writerow([context, f"Who is {name}'s best friend?", friend])
            writer.writerow([context, f"Where was {name} born?", city])
    return path


@pytest.mark.slow
def test_bench_attention_sort_cli_reports_every_order_and_the_cost(tmp_path, capsys):
    import json

    from ragarbiter.assessors.attention_sort import AttentionSorter
    from ragarbiter.assessors.attention_sort.bench import RANDOM_VOCAB, gold_figures
    from ragarbiter.assessors.attention_sort.data import synthwiki_cases, synthwiki_paragraphs
    from ragarbiter.assessors.attention_sort.model import random_llama
    from ragarbiter.cli.main import main
    from ragarbiter.lm import bpe_tokenizer
    from ragarbiter.models import default_device

    data = _write_synthwiki(tmp_path / "synthwiki.csv")
    code = main(
        [
            "bench",
            "attention_sort",
            "--data",
            str(data),
            "--random-llama",
            "--docs",
            "3",
            "--questions",
            "5",
            "--iterations",
            "2",
            "--timing-questions",
            "2",
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["questions"] == 5 and result["docs"] == 3 and result["iterations"] == 2
    assert result["model"] == "random Llama (4 layers, hidden 256, 8 heads / 2 kv heads)"
    assert (result["data"], result["seed"], result["attention_sort"]["batch_size"]) == (str(data), 0, 8)
    for name in ("random", "lost_in_the_middle", "attention_sort"):
        assert 0.0 <= result[name]["gold_last"] <= result[name]["gold_last3"] <= 1.0
        assert 1.0 <= result[name]["mean_rank_from_end"] <= 3.0
    # Three documents: the gold is always in the last three, and LongContextReorder puts the
    # encoder's best match (the gold, for these questions) first.
    assert result["lost_in_the_middle"]["mean_rank_from_end"] == 3.0
    assert result["lost_in_the_middle"] == {"gold_last": 0.0, "gold_last3": 1.0, "mean_rank_from_end": 3.0}
    # The same cases, model and sorter built here give the figures the command reported.
    cases = synthwiki_cases(str(data), docs=3, questions=5, seed=0)
    assert result["random"] == gold_figures(cases, [[p.id for p in c.passages] for c in cases])
    tokenizer = bpe_tokenizer(synthwiki_paragraphs(str(data)), RANDOM_VOCAB)
    sorter = AttentionSorter(
        model=random_llama(tokenizer, seed=0).to(default_device()), tokenizer=tokenizer, iterations=2
    )
    orders = [[p.id for p in out.passages] for out in sorter.sort_many([c.context() for c in cases])]
    figures = {k: v for k, v in result["attention_sort"].items() if k not in ("seconds_per_question", "batch_size")}
    assert figures == gold_figures(cases, orders)
    cost = result["cost"]
    prompts = [sorter.config.template.render(c.question, [p.text for p in c.passages]) for c in cases[:2]]
    tokens = [len(sorter.attention.encode(text, spans).ids) for text, spans in prompts]
    assert cost["questions"] == 2 and cost["mean_prompt_tokens"] == round(sum(tokens) / 2, 1)
    assert cost["prefill_s"] > 0 and cost["sort_iteration_s"] > 0
    assert cost["eager_forward_s"] > 0


def test_bench_attention_sort_keeps_its_earlier_name_and_reads_defaults_from_the_config():
    from ragarbiter.assessors.attention_sort import AttentionSortConfig
    from ragarbiter.cli.main import build_parser

    for name in ("attention_sort", "attention-sort"):
        args = build_parser(["bench", name]).parse_args(["bench", name, "--data", "x.csv", "--random-llama"])
        # No --iterations: the accuracy protocol compares 0 1 3, gold placement runs the config's 3.
        assert (args.iterations, args.batch_size, args.aggregate) == (None, 8, "sum")
        assert (args.docs, args.questions, args.timing_questions) == (10, 100, 16)
    defaults = AttentionSortConfig()
    assert (defaults.iterations, defaults.batch_size, defaults.aggregate) == (3, 8, "sum")


def test_synthwiki_cases_place_the_gold_at_random_positions(tmp_path):
    import csv

    from ragarbiter.assessors.attention_sort.bench import gold_figures
    from ragarbiter.assessors.attention_sort.data import synthwiki_cases

    data = tmp_path / "s.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["context", "question", "answer"])
        for i in range(30):
            writer.writerow([f"Paragraph {i} says the code is {i * 7}.", f"What is code {i}?", str(i * 7)])
    cases = synthwiki_cases(str(data), docs=5, questions=None, seed=1)
    assert len(cases) == 30
    positions = set()
    for case in cases:
        texts = [p.text for p in case.passages]
        gold = next(p for p in case.passages if p.id == case.gold_id)
        assert len(set(texts)) == 5 and gold.text.startswith(f"Paragraph {case.question.split()[-1][:-1]} ")
        positions.add([p.id for p in case.passages].index(case.gold_id))
    assert positions == set(range(5))
    assert synthwiki_cases(str(data), docs=5, questions=None, seed=1) == cases  # deterministic in the seed
    orders = [[p.id for p in c.passages if p.id != c.gold_id] + [c.gold_id] for c in cases]
    assert gold_figures(cases, orders) == {"gold_last": 1.0, "gold_last3": 1.0, "mean_rank_from_end": 1.0}
