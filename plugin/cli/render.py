"""Human-readable output: a rich table of ranked passages with their flags."""

from __future__ import annotations

from ragarbiter.types import Context


def _flags(context: Context, passage_id: str) -> str:
    marks = [
        f"{j.label} {j.score:.2f}"
        for j in context.judgements_for(passage_id)
        if j.label not in ("reliable", "attention")
    ]
    return ", ".join(marks)


def render_context(context: Context, *, width: int = 90) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=max(width, 100))
    table = Table(title=f"Q: {context.query}", show_lines=False, title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("source", no_wrap=True, max_width=22)
    table.add_column("flags", style="bold red", max_width=26)
    table.add_column("passage", max_width=width // 2 + 10)
    for rank, p in enumerate(context.passages, start=1):
        text = p.text if len(p.text) <= 140 else p.text[:137] + "..."
        score = "" if p.score is None else f"{p.score:.3f}"
        table.add_row(str(rank), score, str(p.source or ""), _flags(context, p.id), text)
    console.print(table)
    for rank, p in enumerate(context.passages, start=1):
        for j in context.judgements_for(p.id):
            if j.label == "conflicting":
                console.print(f"  [red]#{rank} {j.label}[/] ({j.stage}): {escape(j.reason)}")
    for d in context.dropped:
        console.print(f"  [yellow]dropped[/] {d.passage.source or d.passage.id} by {d.stage}: {d.reason}")
    for key, value in context.flags.items():
        console.print(f"  [magenta]flag[/] {key}: {escape(_flag_value(context, value))}")


def _flag_value(context: Context, value) -> str:
    """A flag as a reader wants it: groups of passage ids become the ranks shown above."""
    if not (isinstance(value, list) and value and all(isinstance(g, list) for g in value)):
        return str(value)
    ranks = {p.id: rank for rank, p in enumerate(context.passages, start=1)}
    groups = []
    for g in value:
        shown = [f"#{ranks[i]}" for i in g if i in ranks]
        hidden = len(g) - len(shown)
        groups.append("(" + ", ".join(shown + ([f"{hidden} not shown"] if hidden else [])) + ")")
    return " ".join(groups)


def render_answers(question: str, plain: str, ours: str, *, width: int = 100) -> None:
    """The plain-RAG answer and the ragarbiter answer to one question, side by side."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Q: {question}", title_justify="left", show_lines=False)
    table.add_column("plain RAG (retrieved passages as they came)", ratio=1)
    table.add_column("with ragarbiter (after the default stages)", ratio=1)
    same = plain.strip() == ours.strip()
    table.add_row(plain, ours + ("  [dim](same answer)[/]" if same else ""))
    Console(width=width).print(table)
