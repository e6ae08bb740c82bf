"""Answer accuracy by gold position at long context: the attention-sorting paper's SynthWiki protocol.

For each question, distractor paragraphs (other SynthWiki paragraphs that do not hold the answer)
fill the context up to a token length, and the gold paragraph goes at each of `positions` evenly
spaced depths (0 = first, 1 = last, next to the question). The generator then answers:

- with the paragraphs in that order (k = 0), and
- after k iterations of attention sorting (`AttentionSorter`, one iteration at a time, so the
  orders for k = 1 and k = 3 come from the same run).

An answer is right when it contains the answer string (case and spacing folded), as in the paper.
Besides accuracy by depth, each cell reports where the gold paragraph landed after sorting.

The sorter may be another model than the generator ("a small sorter in front of another LLM"):
it reads the same paragraphs through its own chat template, and the generator answers from the
order it chose.
"""

from __future__ import annotations

import logging
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragarbiter.errors import ConfigError, EmptyCorpusError
from ragarbiter.lm.prompts import PromptTemplate
from ragarbiter.types import Context, Passage

logger = logging.getLogger(__name__)

INSTRUCTION = "Answer the question using only the documents below. Reply with the answer only.\n\n"
DOCUMENT = "Document [{index}] {text}\n"
QUESTION = "\nQuestion: {question}"
MARK = "\x00"  # a placeholder that no chat template rewrites


@dataclass(frozen=True)
class PositionCase:
    """One question at one context length: its distractors in order, and the gold paragraph."""

    question: str
    answer: str
    gold: str
    distractors: tuple[str, ...]

    def docs(self, depth: int) -> list[str]:
        """The paragraphs with the gold one inserted before distractor `depth` (len(distractors): last)."""
        docs = list(self.distractors)
        docs.insert(depth, self.gold)
        return docs

    def depth(self, fraction: float) -> int:
        return round(fraction * len(self.distractors))


def chat_template(tokenizer) -> PromptTemplate:
    """The documents-and-question prompt as `tokenizer`'s chat template renders it (one user turn,
    then the assistant's turn opens), or the plain layout with "Answer:" when it has no template.

    The sorter reads the attention of exactly the prompt its model would answer from.
    """
    if not getattr(tokenizer, "chat_template", None):
        return PromptTemplate(instruction=INSTRUCTION, document=DOCUMENT, question=QUESTION + "\nAnswer:")
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": MARK}], tokenize=False, add_generation_prompt=True
    )
    before, after = rendered.split(MARK)
    return PromptTemplate(instruction=before + INSTRUCTION, document=DOCUMENT, question=QUESTION + after)


def fractions(positions: int) -> list[float]:
    """`positions` evenly spaced depths from 0 (first) to 1 (last)."""
    if positions < 2:
        raise ConfigError(f"--positions must be >= 2 (first and last at least), got {positions}.")
    return [j / (positions - 1) for j in range(positions)]


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def answered(output: str, answer: str) -> bool:
    """The paper's metric: the answer string appears in the output (case and spacing folded)."""
    return bool(_fold(answer)) and _fold(answer) in _fold(output)


def position_cases(
    items: Sequence[Any],
    count_tokens,
    context_tokens: int,
    *,
    limit: int | None,
    seed: int = 0,
) -> list[PositionCase]:
    """SynthWiki items (question, answers, gold passage) with distractors filling `context_tokens`.

    `count_tokens(text)` counts a paragraph's tokens with the generator's tokenizer; paragraphs
    that hold the question's answer are never distractors.
    """
    paragraphs = sorted({i.passages[0] for i in items})
    rng = random.Random(seed)
    chosen = rng.sample(list(items), min(limit, len(items))) if limit else list(items)
    sizes = {p: count_tokens(p) for p in paragraphs}
    cases = []
    for item in chosen:
        gold, answer = item.passages[0], item.answers[0]
        pool = [p for p in paragraphs if p != gold and not answered(p, answer)]
        rng.shuffle(pool)
        total, distractors = sizes[gold], []
        for p in pool:
            if total >= context_tokens:
                break
            distractors.append(p)
            total += sizes[p]
        if total < context_tokens:
            msg = (
                f"the file's paragraphs come to {total} tokens without the answer to {item.question!r}, "
                f"fewer than --context-tokens {context_tokens}; pass a smaller length or a bigger file."
            )
            raise EmptyCorpusError(msg)
        cases.append(PositionCase(item.question, answer, gold, tuple(distractors)))
    return cases


def sorted_orders(sorter, contexts: Sequence[Context], iterations: Sequence[int]) -> dict[int, list[list[str]]]:
    """Passage ids in order after each number of iterations in `iterations` (0 = as given).

    The sorter runs one iteration at a time on the previous one's output, which is what
    `iterations=k` does in one call.
    """
    if sorter.config.iterations != 1:
        raise ConfigError("sorted_orders needs a sorter with iterations=1; it repeats it itself.")
    out, current = {}, list(contexts)
    for k in range(max(iterations) + 1):
        if k:
            current = sorter.sort_many(current)
        if k in iterations:
            out[k] = [[p.id for p in c.passages] for c in current]
    return out


def summarize(hits: dict[str, list[bool]], landed: dict[str, list[float]]) -> dict[str, Any]:
    """Accuracy by depth, its mean and worst, and where the gold paragraph ended (1 = last)."""
    by_position = {d: round(statistics.fmean(h), 4) for d, h in hits.items()}
    return {
        "accuracy_by_position": by_position,
        "mean": round(statistics.fmean(by_position.values()), 4),
        "worst": min(by_position.values()),
        "best": max(by_position.values()),
        "gold_depth_after": {d: round(statistics.fmean(v), 4) for d, v in landed.items()},
        "n": len(next(iter(hits.values()))),
    }


def recovery(table: dict[str, dict[str, Any]], k: str) -> float | None:
    """Share of the gap between the best and the worst depth (unsorted) that k iterations win back at the
    worst depth: (worst_k - worst_0) / (best_0 - worst_0); None when there is no gap."""
    base = table["0"]
    gap = base["best"] - base["worst"]
    if gap <= 0:
        return None
    worst_depth = min(base["accuracy_by_position"], key=base["accuracy_by_position"].get)
    return round((table[k]["accuracy_by_position"][worst_depth] - base["worst"]) / gap, 4)


def run_length(
    cases: Sequence[PositionCase],
    depths: Sequence[float],
    iterations: Sequence[int],
    *,
    generator,
    sorter,
    template: PromptTemplate,
    max_new_tokens: int = 24,
    batch_size: int = 4,
    progress: bool = False,
) -> dict[str, Any]:
    """One context length: for each k in `iterations`, accuracy by depth and where the gold landed."""
    keys = [f"{d:.2f}" for d in depths]
    contexts, golds = [], []
    for case in cases:
        for d in depths:
            docs = case.docs(case.depth(d))
            passages = tuple(Passage(text, id=f"d{i}") for i, text in enumerate(docs))
            contexts.append(Context.for_query(case.question, passages))
            golds.append(f"d{case.depth(d)}")
    if any(iterations):
        orders = sorted_orders(sorter, contexts, iterations)
    else:  # nothing to sort: no sorter needed
        orders = {0: [[p.id for p in c.passages] for c in contexts]}
    result = {}
    for k in iterations:
        prompts = []
        for context, order in zip(contexts, orders[k]):
            texts = {p.id: p.text for p in context.passages}
            prompts.append(template.render(context.query, [texts[i] for i in order])[0])
        outputs = generator.complete(prompts, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress)
        hits = {key: [] for key in keys}
        landed = {key: [] for key in keys}
        for j, (output, order, gold) in enumerate(zip(outputs, orders[k], golds)):
            case, key = cases[j // len(depths)], keys[j % len(depths)]
            hits[key].append(answered(output, case.answer))
            landed[key].append(order.index(gold) / max(1, len(order) - 1))
        result[str(k)] = summarize(hits, landed)
        logger.info("k=%d: mean %.3f, worst %.3f", k, result[str(k)]["mean"], result[str(k)]["worst"])
    return result
