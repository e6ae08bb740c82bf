"""The human-readable context: conflict reasons under the table, groups of ids as the ranks shown."""

from ragarbiter import Context, Judgement, Passage
from ragarbiter.cli.render import render_context

A = Passage("The lighthouse was first lit in 1874.", source="brochure")
B = Passage("The lighthouse was first lit in 1871.", source="archive")
HIDDEN = Passage("The lamp was first lit in 1871 [see the minutes].", source="minutes")


def test_conflict_reasons_and_groups_name_the_ranks_shown(capsys):
    reason = 'says "1874" where #2 (archive) says "1871" [minutes]'
    ctx = Context.for_query("When was it first lit?", [A, B]).evolve(
        judgements=[Judgement("conflict", A.id, "conflicting", 0.9, reason, (B.id,))],
        flags={"conflict": True, "conflict_groups": [[A.id], [B.id, HIDDEN.id]]},
    )
    render_context(ctx)
    out = " ".join(capsys.readouterr().out.split())
    assert f"#1 conflicting (conflict): {reason}" in out  # markup-like brackets survive
    assert "flag conflict_groups: (#1) (#2, 1 not shown)" in out
    assert A.id not in out
