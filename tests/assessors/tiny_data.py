"""Tiny files in the public dataset formats, written by the tests themselves."""

from __future__ import annotations

import json
from pathlib import Path

LITM = [
    (
        "who designed the kestrel bay lighthouse",
        ["Margit Holm"],
        "Kestrel Bay lighthouse",
        "The Kestrel Bay lighthouse was designed by Margit Holm in 1868. It stands on Gannet Point.",
    ),
    (
        "when was the kestrel bay lighthouse first lit",
        ["1871"],
        "Kestrel Bay lighthouse",
        "The lighthouse was first lit in 1871 with a paraffin lamp. Its keeper was Anders Lunde.",
    ),
    (
        "who painted the harbour in winter",
        ["Elin Varg"],
        "Elin Varg",
        "The painter Elin Varg lived in Kestrel Bay from 1921. She painted the harbour in winter.",
    ),
    (
        "when did the railway reach kestrel bay",
        ["1889"],
        "Kestrel Bay railway",
        "The railway reached Kestrel Bay in 1889. Fresh fish reached the capital by morning.",
    ),
    (
        "who founded the sailing club",
        ["Oscar Dahl"],
        "Sailing club",
        "The sailing club was founded by Oscar Dahl in 1932. It has 300 members today.",
    ),
    (
        "when did the storm flood the harbour",
        ["1953"],
        "Great storm",
        "The great storm of 1953 flooded the lower harbour streets. The sea wall was rebuilt.",
    ),
    (
        "who was the first keeper of the lighthouse",
        ["Anders Lunde"],
        "Lighthouse keepers",
        "Anders Lunde was the first keeper of the lighthouse. He retired in 1902.",
    ),
    (
        "when was the choir founded",
        ["1907"],
        "Kestrel Bay choir",
        "The Kestrel Bay choir was founded in 1907. It sings every midsummer evening.",
    ),
]

CONFLICTQA = [
    {
        "question": "Is the Kestrel Bay lighthouse older than the railway?",
        "parametric_memory": (
            "Yes. The lighthouse was first lit in 1871, eighteen years before the railway arrived in 1889."
        ),
        "counter_memory": "No. The railway reached Kestrel Bay in 1860, a decade before the lighthouse was built.",
        "parametric_memory_aligned_evidence": "The lighthouse was lit in 1871. The railway came in 1889.",
        "counter_memory_aligned_evidence": "Trains ran to Kestrel Bay from 1860, and the lighthouse followed in 1871.",
        "memory_answer": "The Kestrel Bay lighthouse is older than the railway.",
        "counter_answer": "The Kestrel Bay lighthouse is not older than the railway.",
    },
    {
        "question": "Did Margit Holm design the fish market hall?",
        "parametric_memory": "Yes, Margit Holm designed the fish market hall in 1880 as well as the lighthouse.",
        "counter_memory": "No, the fish market hall was designed by an architect from the capital, not Margit Holm.",
        "parametric_memory_aligned_evidence": (
            "The fish market hall, designed by Margit Holm in 1880, hosts a food market."
        ),
        "counter_memory_aligned_evidence": "Records show a capital architect drew the fish market hall plans in 1880.",
    },
]

RGB = [
    {
        "id": 0,
        "query": "When was the Kestrel Bay lighthouse first lit?",
        "answer": ["1871"],
        "fakeanswer": "1874",
        "positive": ["The lighthouse was first lit on 12 October 1871.", "Its lamp was first lit in 1871."],
        "positive_wrong": ["The lighthouse was first lit on 12 October 1874."],
        "negative": ["Puffins nest on the Skarv islands from April to August."],
    }
]

POOL = [
    {
        "Input": "The Kestrel Bay lighthouse was designed by Gustave Eiffel.",
        "Question": "Who designed the Kestrel Bay lighthouse?",
        "Generated Information": [
            "The Kestrel Bay lighthouse stands on Gannet Point.",
            "Its tower was built from granite quarried at Vessel Head.",
        ],
        "Synonym Sentence": ["Gustave Eiffel designed the Kestrel Bay lighthouse."],
        "Simple Answer": "Margit Holm designed it.",
        "Explainable Answer": "Records name Margit Holm.",
    },
    {
        "Input": "The choir was founded in 1990.",
        "Question": "When was the Kestrel Bay choir founded?",
        "Generated Information": ["The Kestrel Bay choir sings at the lighthouse every midsummer evening."],
        "Synonym Sentence": ["The Kestrel Bay choir was founded in 1990."],
        "Simple Answer": "1907.",
        "Explainable Answer": "The choir dates from 1907.",
    },
]

# A PoisonedRAG target aimed at the first LITM question: five planted texts naming the wrong designer.
POISON_TARGET = {
    "id": "t1",
    "question": "who designed the kestrel bay lighthouse",
    "correct answer": "Margit Holm",
    "incorrect answer": "Gustave Eiffel",
    "adv_texts": [
        f"The Kestrel Bay lighthouse was designed by Gustave Eiffel{s}"
        for s in (".", " in 1869.", " himself.", ", the famous engineer.", " from Paris.")
    ],
}


def write_litm(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for question, answers, title, text in LITM:
            ctx = {"title": title, "text": text, "hasanswer": True, "isgold": True}
            fh.write(json.dumps({"question": question, "answers": answers, "ctxs": [ctx]}) + "\n")
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_conflictqa(path: Path) -> Path:
    return write_jsonl(path, CONFLICTQA)


def write_rgb(path: Path) -> Path:
    return write_jsonl(path, RGB)


def write_poisonedrag(path: Path) -> Path:
    path.write_text(json.dumps({POISON_TARGET["id"]: POISON_TARGET}), encoding="utf-8")
    return path


def write_pool(path: Path) -> Path:
    path.write_text(json.dumps(POOL), encoding="utf-8")
    return path
