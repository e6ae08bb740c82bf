"""Pretraining text for the testbed model: parametric memory plus reading practice.

Three kinds of example, mixed with `CorpusMix` weights:
- **facts**: passages about *known* entities (two entities per example, paraphrases drawn
  at random): this is what the model remembers;
- **closed-book QA** on known entities (`Question: ...\\nAnswer: value`): it learns to
  answer from memory;
- **RAG examples**: numbered documents (gold among distractors, at a uniform position,
  as passages or as single tagged sentences), then the question and the answer. Most (75%)
  are about *fresh* entities, invented for that example only, so the only way to answer
  them is to read the context; the rest are about known entities. Half of those are
  *updates*: the document gives the asked attribute a newer value than the model
  remembers, and the answer is the document's value, as when a retrieved page is more
  recent than pretraining. This is what teaches a model to let context override memory,
  the behaviour that counterfactual contexts then exploit.
  Short contexts (one to three documents) are drawn more often: they teach finding the
  attribute before longer ones teach finding the subject.

Unknown world entities never appear in any example as a subject (they may appear as a
value, e.g. a known person's employer), and no context ever disagrees with itself: conflicts,
poison and inappropriate sentences appear only at evaluation time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ragarbiter.lm.collate import Example
from ragarbiter.lm.prompts import RELIABLE_SOURCES, render_prompt

from .world import ATTRIBUTES, Entity, NameMaker, World


@dataclass(frozen=True)
class CorpusMix:
    facts: float = 0.25
    closed_book: float = 0.1
    rag: float = 0.65
    fresh_fraction: float = 0.75  # of RAG examples: about invented entities (reading is the only way)
    sentence_fraction: float = 0.25  # of RAG examples: single tagged sentences instead of passages
    max_docs: int = 10
    update_fraction: float = 0.5  # of RAG examples about known entities: the document updates the asked value


class CorpusMaker:
    """Draws examples for one world from one seeded generator."""

    def __init__(self, world: World, seed: int, mix: CorpusMix | None = None) -> None:
        self.world = world
        self.mix = mix or CorpusMix()
        self.rng = random.Random(seed)
        self.known = [e for e in world.entities if e.known]
        self.fresh_names = NameMaker(random.Random(seed + 7919), taken={e.name for e in world.entities}, remember=False)

    def fresh(self, entity_type: str) -> Entity:
        """An invented entity with random values from the world's pools (never a world entity)."""
        rng, pools = self.rng, self.world.pools
        name = {"person": self.fresh_names.person, "company": self.fresh_names.company}.get(
            entity_type, self.fresh_names.place
        )()
        facts = tuple((a.name, rng.choice(pools[a.kind])) for a in ATTRIBUTES[entity_type])
        return Entity(name, entity_type, False, facts)

    def example(self) -> Example:
        r = self.rng.random()
        if r < self.mix.facts:
            return self.facts()
        if r < self.mix.facts + self.mix.closed_book:
            return self.closed_book()
        return self.rag()

    def facts(self) -> Example:
        entities = self.rng.sample(self.known, 2)
        return Example("", " ".join(self.world.passage(e, self.rng, n_facts=None) for e in entities), "facts")

    def closed_book(self) -> Example:
        e = self.rng.choice(self.known)
        a = self.rng.choice(ATTRIBUTES[e.type])
        return Example(render_prompt(a.question.format(s=e.name)), " " + e.value(a.name), "closed_book")

    def rag(self) -> Example:
        rng = self.rng
        entity_type = rng.choice(("person", "person", "company", "city"))
        fresh = rng.random() < self.mix.fresh_fraction
        subject = self.fresh(entity_type) if fresh else rng.choice([e for e in self.known if e.type == entity_type])
        a = rng.choice(ATTRIBUTES[entity_type])
        update = not fresh and rng.random() < self.mix.update_fraction
        if update:
            subject = self._updated(subject, a)
        question = a.question.format(s=subject.name)
        n_docs = rng.choices(range(1, self.mix.max_docs + 1), [3, 3, 2] + [1] * (self.mix.max_docs - 3))[0]
        if rng.random() < self.mix.sentence_fraction:
            docs = self._sentences(subject, a.name, n_docs)
            sources = [rng.choice(RELIABLE_SOURCES) for _ in docs] if rng.random() < 0.5 else None
        else:
            same = a.name if rng.random() < 0.5 else None  # distractors that state the same attribute of someone else
            docs = [self.world.passage(self._other(entity_type, subject), rng, include=same) for _ in range(n_docs - 1)]
            docs.insert(rng.randrange(n_docs), self.world.passage(subject, rng, include=a.name))
            sources = None
        kind = "rag_fresh" if fresh else "rag_update" if update else "rag"
        return Example(render_prompt(question, docs, sources), " " + subject.value(a.name), kind)

    def _updated(self, entity: Entity, attribute) -> Entity:
        """The entity with a newer value for one attribute (any other value of the same kind)."""
        old = entity.value(attribute.name)
        pool = [v for v in self.world.pools[attribute.kind] if v not in (old, entity.name)]
        new = self.rng.choice(pool)
        facts = tuple((name, new if name == attribute.name else value) for name, value in entity.facts)
        return Entity(entity.name, entity.type, entity.known, facts)

    def _other(self, entity_type: str, subject: Entity) -> Entity:
        if self.rng.random() < 0.5:
            return self.fresh(entity_type)
        pool = [e for e in self.known if e.type == entity_type and e.name != subject.name]
        return self.rng.choice(pool)

    def _sentences(self, subject: Entity, attr: str, n: int) -> list[str]:
        """True single sentences: the gold fact (maybe restated), the subject's other facts, others' facts."""
        rng = self.rng
        rows = [self.world.statement(subject, attr, rng)]
        for _ in range(n - 1):
            r = rng.random()
            if r < 0.3:
                rows.append(self.world.statement(subject, attr, rng))
            elif r < 0.6:
                rows.append(self.world.statement(subject, rng.choice(ATTRIBUTES[subject.type]).name, rng))
            else:
                other = self._other(subject.type, subject)
                rows.append(self.world.statement(other, rng.choice(ATTRIBUTES[other.type]).name, rng))
        rng.shuffle(rows)
        return rows

    def examples(self, n: int) -> list[Example]:
        return [self.example() for _ in range(n)]
