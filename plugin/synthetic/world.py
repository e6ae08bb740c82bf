"""A fictional world from a seed: typed entities, fact passages and QA items.

Names are built from syllables, so nothing a model learned about the real world applies.
Every entity has typed attributes (a person's birthplace is a city, an employer a company,
a best friend another person). Each attribute has several paraphrase templates for
statements and one question template. Part of the people and companies are *known* (their
facts go into pretraining, so a model trained on them holds them in parametric memory);
the rest are *unknown* (their facts appear only in the contexts the harness builds).

Everything is a pure function of the seed and the sizes: the same `WorldConfig` always
gives the same world, byte for byte.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ragarbiter.errors import ConfigError, InvalidInputError, ModelNotFoundError

SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ren",
    "tho",
    "vak",
    "dor",
    "sel",
    "mur",
    "qen",
    "bri",
    "fal",
    "zo",
    "tin",
    "gar",
    "hul",
    "pes",
    "wen",
    "yra",
    "cel",
    "dun",
    "lav",
    "nor",
    "oph",
    "rax",
    "sum",
    "tev",
    "vin",
    "bel",
    "kor",
)
COMPANY_SUFFIXES = ("Works", "Group", "Labs", "Foundry", "Trading", "Mills")
PROFESSIONS = (
    "baker",
    "surveyor",
    "glassblower",
    "pilot",
    "librarian",
    "chemist",
    "tailor",
    "geologist",
    "cartographer",
    "violinist",
    "carpenter",
    "nurse",
    "astronomer",
    "weaver",
    "locksmith",
    "brewer",
)
INDUSTRIES = (
    "shipping",
    "textiles",
    "mining",
    "publishing",
    "software",
    "brewing",
    "insurance",
    "aviation",
    "farming",
    "glassware",
)


@dataclass(frozen=True)
class Attribute:
    """One typed attribute: the value kind, a question template and statement paraphrases ({s} subject, {v} value)."""

    name: str
    kind: str
    question: str
    statements: tuple[str, ...]


ATTRIBUTES: dict[str, tuple[Attribute, ...]] = {
    "person": (
        Attribute(
            "birthplace",
            "city",
            "Where was {s} born?",
            ("{s} was born in {v}.", "{s} is a native of {v}.", "The birthplace of {s} is {v}."),
        ),
        Attribute(
            "employer",
            "company",
            "Which company does {s} work for?",
            ("{s} works for {v}.", "{s} is employed by {v}.", "{v} employs {s}."),
        ),
        Attribute(
            "profession",
            "profession",
            "What is the profession of {s}?",
            ("{s} works as a {v}.", "By profession, {s} is a {v}.", "The profession of {s} is {v}."),
        ),
        Attribute(
            "birth_year",
            "year",
            "In which year was {s} born?",
            ("{s} was born in the year {v}.", "The birth year of {s} is {v}.", "In {v}, {s} was born."),
        ),
        Attribute(
            "best_friend",
            "person",
            "Who is the best friend of {s}?",
            ("The best friend of {s} is {v}.", "{s} counts {v} as a best friend.", "{v} is the closest friend of {s}."),
        ),
    ),
    "company": (
        Attribute(
            "headquarters",
            "city",
            "Where is {s} headquartered?",
            ("{s} is headquartered in {v}.", "The head office of {s} is in {v}.", "{s} has its headquarters in {v}."),
        ),
        Attribute(
            "founded",
            "year",
            "In which year was {s} founded?",
            ("{s} was founded in {v}.", "{s} dates back to {v}.", "The founding year of {s} is {v}."),
        ),
        Attribute(
            "industry",
            "industry",
            "Which industry is {s} in?",
            ("{s} operates in the {v} industry.", "{s} is in the {v} business.", "The industry of {s} is {v}."),
        ),
    ),
    "city": (
        Attribute(
            "country",
            "country",
            "In which country is {s}?",
            ("{s} is a city in {v}.", "{s} lies in {v}.", "The country of {s} is {v}."),
        ),
    ),
}


def attribute(entity_type: str, name: str) -> Attribute:
    for a in ATTRIBUTES[entity_type]:
        if a.name == name:
            return a
    msg = f"{entity_type} has no attribute {name!r}; it has {[a.name for a in ATTRIBUTES[entity_type]]}."
    raise ConfigError(msg)


@dataclass(frozen=True)
class Entity:
    name: str
    type: str
    known: bool
    facts: tuple[tuple[str, str], ...]  # (attribute, value), in ATTRIBUTES order

    def value(self, attr: str) -> str:
        return dict(self.facts)[attr]


@dataclass(frozen=True)
class QAItem:
    """A question about one fact. `kind` is the value type (the pool wrong answers come from)."""

    question: str
    answer: str
    subject: str
    attribute: str
    entity_type: str
    kind: str
    known: bool


@dataclass(frozen=True)
class WorldConfig:
    """How large a world is. `known_fraction` of the people and companies go into pretraining."""

    seed: int = 0
    people: int = 200
    companies: int = 30
    cities: int = 24
    countries: int = 6
    known_fraction: float = 0.5

    def __post_init__(self) -> None:
        for name in ("people", "companies", "cities", "countries"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 2:
                msg = f"WorldConfig.{name} must be an int >= 2, got {value!r}."
                raise ConfigError(msg)
        if not 0.0 < self.known_fraction < 1.0:
            msg = f"WorldConfig.known_fraction must lie in (0, 1), got {self.known_fraction!r}. Try 0.5."
            raise ConfigError(msg)


class NameMaker:
    """Unique capitalised names from syllables, drawn from one seeded generator."""

    def __init__(self, rng: random.Random, taken: set[str] | None = None, remember: bool = True) -> None:
        self.rng = rng
        self.taken = taken if taken is not None else set()
        self.remember = remember  # False: avoid `taken`, but a name may come back (throwaway entities)

    def word(self, lo: int = 2, hi: int = 3) -> str:
        return "".join(self.rng.choice(SYLLABLES) for _ in range(self.rng.randint(lo, hi))).capitalize()

    def unique(self, make) -> str:
        for _ in range(1000):
            name = make()
            if name not in self.taken:
                if self.remember:
                    self.taken.add(name)
                return name
        msg = "ran out of unique syllable names; make the world smaller."
        raise ConfigError(msg)

    def person(self) -> str:
        return self.unique(lambda: f"{self.word(2, 2)} {self.word(2, 3)}")

    def company(self) -> str:
        return self.unique(lambda: f"{self.word(2, 3)} {self.rng.choice(COMPANY_SUFFIXES)}")

    def place(self) -> str:
        return self.unique(lambda: self.word(2, 3))


@dataclass
class World:
    config: WorldConfig
    entities: list[Entity]
    pools: dict[str, tuple[str, ...]] = field(default_factory=dict)  # value kind -> every value of that kind

    @property
    def seed(self) -> int:
        return self.config.seed

    def by_name(self) -> dict[str, Entity]:
        return {e.name: e for e in self.entities}

    def of_type(self, entity_type: str, known: bool | None = None) -> list[Entity]:
        return [e for e in self.entities if e.type == entity_type and (known is None or e.known == known)]

    def qa_items(self, known: bool | None = None) -> list[QAItem]:
        """One QA item per fact of every entity (filtered by known/unknown)."""
        out = []
        for e in self.entities:
            if known is not None and e.known != known:
                continue
            for a in ATTRIBUTES[e.type]:
                out.append(
                    QAItem(a.question.format(s=e.name), e.value(a.name), e.name, a.name, e.type, a.kind, e.known)
                )
        return out

    def wrong_value(self, item: QAItem, rng: random.Random, avoid: tuple[str, ...] = ()) -> str:
        """Another value of the same kind (never the true one, the subject itself or `avoid`)."""
        pool = [v for v in self.pools[item.kind] if v != item.answer and v != item.subject and v not in avoid]
        return rng.choice(pool)

    def statement(
        self, entity: Entity, attr: str, rng: random.Random, value: str | None = None, template: int | None = None
    ) -> str:
        a = attribute(entity.type, attr)
        t = a.statements[rng.randrange(len(a.statements)) if template is None else template % len(a.statements)]
        return t.format(s=entity.name, v=entity.value(attr) if value is None else value)

    def passage(
        self,
        entity: Entity,
        rng: random.Random,
        *,
        include: str | None = None,
        n_facts: int | None = 3,
        override: dict[str, str] | None = None,
    ) -> str:
        """A fact passage: `n_facts` of the entity's facts (all with None; always `include`) in
        random order and paraphrases; `override` swaps in other values (counterfactual and poisoned passages)."""
        override = override or {}
        names = [a.name for a in ATTRIBUTES[entity.type]]
        if n_facts is not None and n_facts < len(names):
            rest = [n for n in names if n != include]
            names = ([include] if include else []) + rng.sample(rest, n_facts - (1 if include else 0))
        rng.shuffle(names)
        return " ".join(self.statement(entity, n, rng, override.get(n)) for n in names)

    def texts(self, known_only: bool = True) -> Iterator[str]:
        """Every fact statement in every paraphrase (the text a tokenizer is built on)."""
        for e in self.entities:
            if known_only and not e.known and e.type != "city":
                continue
            for a in ATTRIBUTES[e.type]:
                for t in a.statements:
                    yield t.format(s=e.name, v=e.value(a.name))
                yield a.question.format(s=e.name)


def build_world(config: WorldConfig | None = None) -> World:
    """The world for `config` (deterministic in `config.seed`)."""
    config = config or WorldConfig()
    rng = random.Random(config.seed)
    names = NameMaker(rng)
    countries = [names.place() for _ in range(config.countries)]
    city_names = [names.place() for _ in range(config.cities)]
    company_names = [names.company() for _ in range(config.companies)]
    people_names = [names.person() for _ in range(config.people)]
    entities: list[Entity] = []
    for c in city_names:  # cities are common knowledge: always known
        entities.append(Entity(c, "city", True, (("country", rng.choice(countries)),)))

    def known_flags(n: int) -> list[bool]:
        k = round(n * config.known_fraction)
        flags = [True] * k + [False] * (n - k)
        rng.shuffle(flags)
        return flags

    for c, known in zip(company_names, known_flags(len(company_names))):
        entities.append(
            Entity(
                c,
                "company",
                known,
                (
                    ("headquarters", rng.choice(city_names)),
                    ("founded", str(rng.randint(1800, 1990))),
                    ("industry", rng.choice(INDUSTRIES)),
                ),
            )
        )
    for i, (p, known) in enumerate(zip(people_names, known_flags(len(people_names)))):
        friend = rng.choice([q for j, q in enumerate(people_names) if j != i])
        entities.append(
            Entity(
                p,
                "person",
                known,
                (
                    ("birthplace", rng.choice(city_names)),
                    ("employer", rng.choice(company_names)),
                    ("profession", rng.choice(PROFESSIONS)),
                    ("birth_year", str(rng.randint(1900, 1999))),
                    ("best_friend", friend),
                ),
            )
        )
    pools = {
        "city": tuple(city_names),
        "company": tuple(company_names),
        "profession": PROFESSIONS,
        "year": tuple(str(y) for y in range(1800, 2000)),
        "person": tuple(people_names),
        "industry": INDUSTRIES,
        "country": tuple(countries),
    }
    return World(config, entities, pools)


def load_world(path: str | Path) -> World:
    """The world of a model written by `train_testbed`, rebuilt from its saved seed and sizes (no weights loaded)."""
    path = Path(path)
    meta = path / "testbed.json"
    if not meta.is_file():
        msg = (
            f"{path} holds no testbed model (no testbed.json). Train one with "
            f"`ragarbiter testbed train --size small --seed 0 --out {path}`."
        )
        raise ModelNotFoundError(msg)
    info = json.loads(meta.read_text(encoding="utf-8"))
    try:
        world = build_world(WorldConfig(**info["world"]))
    except (TypeError, KeyError) as exc:
        msg = f"{meta} has no valid world description ({exc}). Retrain the model."
        raise InvalidInputError(msg) from exc
    return world
