"""The RWSteering stage: its settings, and its decisions inside LangChain and LlamaIndex."""

from __future__ import annotations

import pytest

from .pool import RECORD


def test_rw_steering_stage_runs_inside_both_frameworks():
    """The stage's decisions reach a LangChain chain and a LlamaIndex postprocessor (generator stubbed)."""
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from types import SimpleNamespace

    from langchain_core.documents import Document
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from ragarbiter import Pipeline
    from ragarbiter.adapters.langchain import ArbiterCompressor
    from ragarbiter.adapters.llama_index import ArbiterPostprocessor
    from ragarbiter.assessors.rw_steering.stage import RWSteering

    stage = RWSteering(lm=SimpleNamespace())
    stage.generate = lambda context: "Reliable: 1, 3\nAnswer: Tarrow"
    texts = ["Norland's capital is Tarrow.", "The capital of Norland is Vesk.", "Tarrow sits on the coast."]
    docs = ArbiterCompressor(pipeline=Pipeline([stage])).invoke(
        {"documents": [Document(t) for t in texts], "query": RECORD["Question"]}
    )
    assert [d.page_content for d in docs] == [texts[0], texts[2]]
    nodes = ArbiterPostprocessor(pipeline=Pipeline([stage])).postprocess_nodes(
        [NodeWithScore(node=TextNode(text=t), score=1.0) for t in texts], query_bundle=QueryBundle(RECORD["Question"])
    )
    assert [n.node.get_content() for n in nodes] == [texts[0], texts[2]]


def test_stage_settings_come_from_its_config(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from ragarbiter.assessors.rw_steering import RWSteering, RWSteeringConfig, config
    from ragarbiter.errors import ConfigError, ModelNotFoundError

    monkeypatch.setattr(config, "SHIPPED", tmp_path / "nothing-shipped")

    lm = SimpleNamespace()
    stage = RWSteering(lm=lm, max_new_tokens=24)
    assert stage.config == RWSteeringConfig(adapter=None, base_model=None, max_new_tokens=24) and stage.lm is lm
    assert RWSteering(RWSteeringConfig(), lm=lm).config.max_new_tokens == 160
    with pytest.raises(ConfigError, match="RWSteering needs adapter="):
        RWSteering()
    with pytest.raises(ModelNotFoundError, match="adapter='rw' holds no LoRA adapter"):
        RWSteering(adapter="rw")
    with pytest.raises(ConfigError, match="max_new_tokens must be a positive integer, got 0"):
        RWSteering(lm=lm, max_new_tokens=0)
    with pytest.raises(ConfigError, match="RWSteering's only positional argument is its RWSteeringConfig, got str"):
        RWSteering("rw", lm=lm)
    with pytest.raises(ConfigError, match="RWSteering got both lm= and adapter=/base_model="):
        RWSteering(lm=lm, adapter="rw", base_model="base")
