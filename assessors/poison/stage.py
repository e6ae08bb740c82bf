"""`PoisonFilter`: drops or demotes groups of planted near-duplicate passages, with reasons."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np

from ragarbiter.config import with_overrides
from ragarbiter.errors import ConfigError, StoreError
from ragarbiter.events import ContextReordered, PassageFlagged
from ragarbiter.stage import Stage, drop, judge
from ragarbiter.types import Context, Judgement, Passage, content_id

from ..backbone import shared_dense_encoder
from ..conflict.model import ConflictScorer, shared_scorer
from ..text import describe
from .config import PoisonConfig, default_judge_dir
from .model import SuspiciousGroup, judge_groups, mark_disputes, rival_groups, tight_clusters

logger = logging.getLogger(__name__)

# The store is asked for this many neighbours beyond `store_copies`: the passage itself comes back
# among its near-duplicates (under its id, or as the same text under another), and entries that
# repeat one text count once, so a few spare places keep such hits from crowding out real copies.
STORE_LOOKUP_SPARE = 5
# A group nothing contradicts is only suspected (copies of one claim), not convicted: its
# judgements score half its tightness, below a contradicted group's (its conflict or tightness).
UNCONTRADICTED_WEIGHT = 0.5


class PoisonFilter(Stage):
    """Defend against corpus poisoning without any training of its own.

    1. Group the passages by cosine similarity (complete linkage, bundled encoder):
       only groups of `min_cluster` or more near-duplicates are suspicious. Only near-copies
       that agree share a group: once cosine finds a candidate group, the conflict judge is
       asked, and two passages that name different answers (answer mismatch reaching
       `answer_mismatch`) are never grouped (the source a planted group imitates is not one of
       its copies). A group so split below `min_cluster` is not suspicious.
    2. Ask the conflict judge whether independent passages (in no group) contradict it. When two
       groups contradict each other, a passage that contradicts both takes neither side.
    3. A contradicted group is dropped (default), with its family: looser paraphrases that
       agree with every member and are contradicted by the same passages; a passage that
       conflicts with a group is never dropped with it. An uncontradicted group
       takes the `uncorroborated` action: dropped (default), or, with "demote", its best-ranked
       member keeps its place and its copies move after the other passages.
    4. When groups make up more than `max_coverage` of the passages, the context is redundant
       (many restatements), not attacked (a few planted texts): groups are only flagged.
    5. With a `store` (the default pipeline passes its own), a lone passage whose store holds
       `store_copies` or more near-duplicates of it that do not conflict with it takes the
       `uncorroborated` action, contradicted or not.

    Two or more independent sources that agree are left alone: agreement is not
    evidence of poisoning, only near-verbatim repetition is.
    """

    name = "poison"

    def __init__(
        self,
        config: PoisonConfig | None = None,
        *,
        encoder: Any = None,
        scorer: ConflictScorer | None = None,
        store: Any = None,
        store_filter: Any = None,
        **overrides: Any,
    ) -> None:
        """`overrides`: any `PoisonConfig` field (`similarity`, `min_cluster`, `conflict_threshold`, ...).

        Runtime objects: `encoder` (a dense encoder with `encode_cached`; default: the shared one
        named by `config.encoder`), `scorer` (a `ConflictScorer`; default: `config.conflict_adapter`),
        `store` (where to look for planted copies) and `store_filter` (the retrieval filter, so
        copies outside it do not count).
        """
        if isinstance(encoder, str):
            msg = (
                f"PoisonFilter(encoder=...) takes an encoder object, got the name {encoder!r}. "
                f"To pick the encoder by name pass PoisonFilter(PoisonConfig(encoder={encoder!r}))."
            )
            raise ConfigError(msg)
        self.config = with_overrides(PoisonConfig, config, overrides, type(self))
        self._encoder = encoder
        self._scorer = scorer
        self.store = store
        self.store_filter = store_filter

    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder = shared_dense_encoder(self.config.encoder, self.config.device)
        return self._encoder

    @property
    def scorer(self) -> ConflictScorer:
        if self._scorer is None:
            adapter = self.config.conflict_adapter or str(default_judge_dir())
            self._scorer = shared_scorer(adapter, self.config.device)
        return self._scorer

    def find_groups(self, query: str, passages: tuple[Passage, ...], filter: Any = None) -> list[SuspiciousGroup]:
        """The suspicious groups among `passages` (empty when nothing looks planted); `filter`
        restricts the store lookup as it restricted retrieval."""
        cfg = self.config
        if not passages:
            return []
        texts = [p.text for p in passages]
        vectors = np.asarray(self.encoder.encode_cached(texts))  # (n, d), unit rows
        sims = vectors @ vectors.T
        clusters = tight_clusters(sims, cfg.similarity, cfg.min_cluster) if len(passages) >= cfg.min_cluster else []
        conflict = None
        if clusters:  # only paid when something looks planted; near-copies that name different answers split
            conflict = self.scorer.pair_probabilities(query, texts)
            clusters = tight_clusters(sims, cfg.similarity, cfg.min_cluster, *self._clash(query, texts, conflict))
        in_clusters = {i for c in clusters for i in c}
        stored = self.stored_copies(query, passages, in_clusters, filter)
        if not clusters and not stored:
            return []
        if conflict is None:
            conflict = self.scorer.pair_probabilities(query, texts)
        # the retrieved groups first, with every lone passage (stored copies or not) still counting as evidence
        rivals = rival_groups(clusters, conflict, cfg.conflict_threshold)
        groups = judge_groups(sims, conflict, clusters, cfg.conflict_threshold, cfg.family_similarity, rivals=rivals)
        groups = mark_disputes(groups, conflict, cfg.conflict_threshold)
        convicting = {o for g in groups for o in g.contradicted_by}
        lone = list(stored)
        grouped = in_clusters | stored.keys()  # neither convicts a lone passage
        independent = [o for o in range(len(passages)) if o not in grouped]
        judged = judge_groups(
            sims, conflict, [[i] for i in lone], cfg.conflict_threshold, cfg.family_similarity, independent
        )
        for i, g in zip(lone, judged):
            if i in convicting and not g.contradicted_by:
                continue  # uncontradicted evidence that convicted a planted group stands
            family = tuple(o for o in g.family if o not in convicting)  # and never goes as someone's paraphrase
            groups.append(replace(g, stored=stored[i][0], tightness=stored[i][1], family=family))
        return groups

    def _clash(self, query: str, texts: list[str], conflict: np.ndarray) -> tuple[np.ndarray, float]:
        """What keeps near-copies apart, and from what value: the answer mismatch where the judge can point
        at answers, else its pair conflict probability."""
        mismatch = getattr(self.scorer, "answer_mismatch", None)
        if mismatch is None:
            return conflict, self.config.conflict_threshold
        return mismatch(query, texts), self.config.answer_mismatch

    def stored_copies(
        self, query: str, passages: tuple[Passage, ...], grouped: set[int], filter: Any = None
    ) -> dict[int, tuple[int, float]]:
        """rank -> (copies in the store, itself included; their mean cosine) for each passage outside
        `grouped` whose store holds `store_copies` or more near-duplicates of it that do not conflict
        with it for `query`."""
        cfg = self.config
        ranks = [i for i in range(len(passages)) if i not in grouped]
        if self.store is None or cfg.store_copies is None or not ranks:
            return {}
        vectors = np.asarray(self.store.encoder.encode_cached([passages[i].text for i in ranks]))
        try:
            found = self.store.near_duplicates(
                vectors, threshold=cfg.similarity, limit=cfg.store_copies + STORE_LOOKUP_SPARE, filter=filter
            )
        except StoreError as e:
            msg = (
                f"The poison stage could not look for planted copies in the store: {e} Fix the store, or build "
                f"the stage with store=None (or store_copies=None) to judge the retrieved passages alone."
            )
            raise type(e)(msg) from e
        candidates: dict[int, list[tuple[str, float]]] = {}
        for i, near in zip(ranks, found):
            own = {passages[i].id, content_id(passages[i].text)}  # itself, under its id or as the same text
            copies: dict[str, tuple[str, float]] = {}
            for p in near:
                key = content_id(p.text)
                if p.id not in own and key not in own:
                    copies.setdefault(key, (p.text, float(p.score or 0.0)))
            if len(copies) + 1 >= cfg.store_copies:
                candidates[i] = list(copies.values())
        if not candidates:
            return {}
        # one conflict call over every candidate and its copies (one batch of encoder passes)
        texts = list(dict.fromkeys(t for i, cs in candidates.items() for t in (passages[i].text, *(c for c, _ in cs))))
        at = {t: k for k, t in enumerate(texts)}
        conflict = self.scorer.pair_probabilities(query, texts)
        out = {}
        for i, cs in candidates.items():
            row = conflict[at[passages[i].text]]
            close = [sim for c, sim in cs if row[at[c]] < cfg.conflict_threshold]
            if len(close) + 1 >= cfg.store_copies:
                out[i] = (len(close) + 1, float(np.mean(close)))
        return out

    def _run(self, context: Context) -> Context:
        passages = context.passages
        groups = self.find_groups(context.query, passages, context.options.get("filter", self.store_filter))
        if not groups:
            return context
        judgements, events, to_drop, demoted = [], [], {}, []
        judged: set[int] = set()
        covered = len({i for g in groups if not g.stored for i in g.members}) / len(passages)
        redundant = covered > self.config.max_coverage  # planted texts are a few among many, not most
        label = "repeated" if redundant else "poisoned"
        for g in groups:
            action = self.config.contradicted if g.contradicted_by else self.config.uncorroborated
            if not g.contradicted_by and g.disputed_by and action == "drop":
                action = "demote"  # a dispute between groups of copies: keep one copy of each claim
            if g.stored:  # one retrieved copy: a single contradicting passage must not be enough to drop it
                action = self.config.uncorroborated
            if redundant:
                action = "flag"
            for rank in (*g.members, *g.family):
                if (action == "demote" and rank == g.members[0] and not g.stored) or rank in judged:
                    continue  # one copy of a claim keeps its place; a family shared by two groups is judged once
                judged.add(rank)
                reason, score = self._reason(g, rank, passages, action)
                if redundant:
                    reason += (
                        f"; but near-duplicate groups make up {covered:.0%} of the passages, which is a "
                        f"redundant context rather than a few planted texts, so nothing was moved or dropped"
                    )
                p = passages[rank]
                judgements.append(
                    Judgement(self.name, p.id, label, score, reason, tuple(passages[o].id for o in g.contradicted_by))
                )
                events.append(
                    PassageFlagged(
                        stage=self.name,
                        passage_id=p.id,
                        label=label,
                        score=score,
                        reason=reason,
                        evidence=judgements[-1].evidence,
                    )
                )
                if action == "drop":
                    to_drop[p.id] = reason
                elif action == "demote":
                    demoted.append(p.id)
        logger.info(
            "%s: %d suspicious group(s), %d dropped, %d demoted", self.name, len(groups), len(to_drop), len(demoted)
        )
        out = judge(context, judgements, events, flags={} if redundant else {"poison_suspected": True})
        if demoted:
            out = self._demote(out, demoted)
        return drop(out, to_drop, self.name) if to_drop else out

    def _reason(self, g: SuspiciousGroup, rank: int, passages: tuple[Passage, ...], action: str) -> tuple[str, float]:
        head = f"one of {len(g.members)} near-duplicate passages (mean cosine {g.tightness:.2f})"
        if g.stored:
            head = f"one of {g.stored} near-duplicate copies of one text in the store (mean cosine {g.tightness:.2f})"
        if rank in g.family:
            first = describe(g.members[0], passages[g.members[0]])
            head = (
                f"a looser paraphrase of {first}, which has {g.stored} near-duplicate copies in the store, "
                f"agreeing with it,"
                if g.stored
                else f"a looser paraphrase of the {len(g.members)} near-duplicate passages led by {first}, "
                f"agreeing with them,"
            )
        if g.contradicted_by:
            who = ", ".join(describe(o, passages[o]) for o in g.contradicted_by[:3])
            verb = {"drop": "dropped", "demote": "moved down", "flag": "flagged"}[action]
            return (
                f"{head} asserting a claim that {who} contradicts (conflict probability {g.conflict:.2f}); "
                f"looks planted, {verb}",
                min(1.0, max(g.conflict, g.tightness)),
            )
        which = "it" if g.stored else "this one"
        done = {
            "demote": f"so {which} was moved after the other passages",
            "flag": "flagged",
            "drop": f"so {which} was dropped",
        }[action]
        if g.stored:
            return (
                f"{head}, with nothing here to contradict it; planted texts come as many copies, {done}",
                min(1.0, g.tightness) * UNCONTRADICTED_WEIGHT,
            )
        first = describe(g.members[0], passages[g.members[0]])
        return (
            f"{head} repeating the claim of {first} with nothing to contradict it; copies of one claim "
            f"count once, {done}",
            min(1.0, g.tightness) * UNCONTRADICTED_WEIGHT,
        )

    def _demote(self, context: Context, demoted: list[str]) -> Context:
        before = tuple(p.id for p in context.passages)
        moved = set(demoted)
        kept = [p for p in context.passages if p.id not in moved]
        tail = [p for p in context.passages if p.id in moved]
        after = tuple(p.id for p in kept + tail)
        event = ContextReordered(
            stage=self.name,
            before=before,
            after=after,
            reason=f"{len(tail)} near-duplicate copies moved after independent passages",
        )
        return context.evolve(passages=tuple(kept + tail), events=[event])
