"""CARE inside a LangChain chain, on the testbed model. Runs offline on CPU.

    ragarbiter testbed train --size small --seed 0                       # the base LM (cached)
    M=~/.local/share/ragarbiter/testbed/small-seed0
    ragarbiter train care --base-model $M --testbed --stage pretrain --out $M/care-s1
    ragarbiter train care --base-model $M --testbed --stage finetune --init $M/care-s1 --out $M/care
    python examples/care_chain.py

The retriever returns a misleading passage for a person the model knows, and the right passage
for a person it does not know. CARE's assessor turns the passages into a soft prompt. The base LM
answers from that soft prompt and never reads the passages' tokens.
"""

from __future__ import annotations

import random

from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from ragarbiter.adapters.langchain import CareChatModel, care_messages
from ragarbiter.assessors.qa import held_out
from ragarbiter.testbed import cached_model_dir, load_testbed, render_prompt

MODEL = cached_model_dir("small", 0)
testbed = load_testbed(MODEL)
world = testbed.world
rng = random.Random(0)
# Questions that CARE's training left out (one in five).
known = next(i for i in world.qa_items(known=True) if i.attribute == "birthplace" and held_out(i.question))
unknown = next(i for i in world.qa_items(known=False) if i.attribute == "birthplace" and held_out(i.question))
by_name = world.by_name()
passages = {  # question -> what the "retriever" returns
    known.question: [
        world.passage(
            by_name[known.subject], rng, include="birthplace", override={"birthplace": world.wrong_value(known, rng)}
        )
    ],
    unknown.question: [world.passage(by_name[unknown.subject], rng, include="birthplace")],
}
retriever = RunnableLambda(lambda question: [Document(text) for text in passages[question]])

# The five lines:
llm = CareChatModel.from_folders(str(MODEL / "care"), str(MODEL))
chain = {"documents": retriever, "question": RunnablePassthrough()} | RunnableLambda(care_messages) | llm
for item in (known, unknown):
    reply = chain.invoke(item.question)
    plain = testbed.generate([render_prompt(item.question, passages[item.question])])[0]  # the same LM reading the text
    print(
        f"{item.question} CARE: {reply.content!r}, plain RAG: {plain!r}, true: {item.answer!r} "
        f"(soft prompt {reply.response_metadata['soft_prompt_shape']})"
    )
