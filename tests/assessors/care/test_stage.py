"""The CARE stage, its generator, and both framework adapters, on a tiny Llama built in code."""

from __future__ import annotations

import pytest

pytest.importorskip("peft")

from ragarbiter.errors import ConfigError, ModelNotFoundError  # noqa: E402

from .tiny import PASSAGE, tiny_generator  # noqa: E402


def test_stage_fills_the_soft_prompt_and_reports_it(tokenizer, tmp_path, monkeypatch):
    from ragarbiter import Context, Passage
    from ragarbiter.assessors.care import CareAssessor

    generator = tiny_generator(tokenizer)
    passages = [Passage(PASSAGE), Passage(" "), Passage("Dashel is a town.")]
    out = CareAssessor(generator=generator, passages=2)(Context.for_query("Where was Tavo Rin born?", passages))
    chunks = len(generator.care.chunks([PASSAGE, "Dashel is a town."]))  # the blank passage is skipped
    assert chunks >= 3 and out.soft_prompt.shape == (chunks * 4, 48)
    event = out.trace[-1]
    assert event.kind == "soft_prompt_built" and event.passage_ids == (passages[0].id, passages[2].id)
    # by default, as many passages as the assessor was trained with (one)
    first = CareAssessor(generator=generator)(Context.for_query("Where was Tavo Rin born?", passages))
    assert first.trace[-1].passage_ids == (passages[0].id,)
    assert first.soft_prompt.shape == (len(generator.care.chunks([PASSAGE])) * 4, 48)
    # the answer comes from this context's soft prompt, not closed book
    assert generator.answer(out) == generator.care.answer("Where was Tavo Rin born?", out.soft_prompt, 4)
    from ragarbiter.assessors.care import config

    monkeypatch.setattr(config, "SHIPPED", tmp_path / "nothing-shipped")
    with pytest.raises(ConfigError, match="care_dir"):
        CareAssessor()


def test_stage_settings_come_from_its_config(tokenizer):
    from ragarbiter.assessors.care import CareAssessor, CareAssessorConfig

    generator = tiny_generator(tokenizer)
    stage = CareAssessor(CareAssessorConfig(), generator=generator)
    assert stage.config == CareAssessorConfig(care_dir=None, base_model=None, device=None, passages=None)
    assert stage.generator is generator
    with pytest.raises(ModelNotFoundError, match="care_dir='care' holds no CARE assessor"):
        CareAssessor(care_dir="care")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['folder'\]"):
        CareAssessor(generator=generator, folder="care")
    with pytest.raises(ConfigError, match="only positional argument is its CareAssessorConfig, got CareGenerator"):
        CareAssessor(generator)
    with pytest.raises(ConfigError, match="CareAssessor got both generator= and care_dir=/base_model="):
        CareAssessor(generator=generator, care_dir="care", base_model="base")


def test_care_chat_model_in_a_langchain_chain(tokenizer):
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    from ragarbiter.adapters.langchain import CareChatModel, care_messages

    llm = CareChatModel(generator=tiny_generator(tokenizer))
    retriever = RunnableLambda(lambda q: [Document(PASSAGE), Document("Dashel is a town.")])
    chain = {"documents": retriever, "question": RunnablePassthrough()} | RunnableLambda(care_messages) | llm
    from ragarbiter.adapters.langchain import ArbiterCallbackHandler

    handler = ArbiterCallbackHandler()
    reply = chain.invoke("Where was Tavo Rin born?", config={"callbacks": [handler]})
    soft = llm.generator.soft_prompt([PASSAGE, "Dashel is a town."])  # what the retrieved documents encode to
    assert reply.content == llm.generator.answer("Where was Tavo Rin born?", soft)
    assert handler.n_events == 1  # the soft_prompt_built decision reached the chain's callbacks
    chunks = len(llm.generator.care.chunks([PASSAGE]))  # as many documents as the assessor was trained with (1)
    assert reply.response_metadata["soft_prompt_shape"] == [chunks * 4, 48] and reply.response_metadata["passages"] == 2
    closed = llm.invoke("Where was Tavo Rin born?")  # no documents: closed book
    assert closed.response_metadata["soft_prompt_shape"] is None


def test_llama_index_postprocessor_hands_the_soft_prompt_to_the_llm(tokenizer):
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from ragarbiter.adapters.llama_index import CareLLM, CarePostprocessor

    generator = tiny_generator(tokenizer)
    llm, post = CareLLM(generator=generator), CarePostprocessor(generator=generator)
    nodes = [NodeWithScore(node=TextNode(text=PASSAGE), score=1.0)]
    question = "Where was Tavo Rin born?"
    assert post.postprocess_nodes(nodes, query_bundle=QueryBundle(question)) == nodes
    answered = llm.complete(f"Context information is below.\n{PASSAGE}\nQuery: {question}\nAnswer: ")
    assert answered.additional_kwargs["soft_prompt"] is True
    again = llm.complete(f"Query: {question}\nAnswer: ")  # the hand-over is used once
    assert again.additional_kwargs["soft_prompt"] is False


async def test_llama_index_async_path_keeps_the_hand_over(tokenizer):
    """LlamaIndex runs the async postprocessor in a worker thread and the LLM on the event loop."""
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from ragarbiter.adapters.llama_index import CareLLM, CarePostprocessor

    generator = tiny_generator(tokenizer)
    llm, post = CareLLM(generator=generator), CarePostprocessor(generator=generator)
    question = "Where was Tavo Rin born?"
    await post.apostprocess_nodes(
        [NodeWithScore(node=TextNode(text=PASSAGE), score=1.0)], query_bundle=QueryBundle(question)
    )
    answered = await llm.acomplete(f"Query: {question}\nAnswer: ")
    assert answered.additional_kwargs["soft_prompt"] is True
