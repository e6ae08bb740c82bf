"""Accuracy vs gold position and accuracy vs contamination proportion, as PNG files, plus a markdown table."""

from __future__ import annotations

import logging
from pathlib import Path

from ragarbiter.errors import require

logger = logging.getLogger(__name__)
CONDITION_KEYS = ("clean", "counterfactual", "conflict", "poisoned")


def measured_stages(result: dict) -> dict[str, dict]:
    return {name: r for name, r in result.get("stages", {}).items() if r.get("status") == "measured"}


def plot_curves(result: dict, folder: str | Path, prefix: str = "testbed") -> list[Path]:
    """`<prefix>_position.png` and `<prefix>_mixture.png`: the plain model and every measured stage."""
    matplotlib = require("matplotlib", "all", "testbed plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    series = {"no stage": result["rag"], **measured_stages(result)}
    written = []
    for key, xlabel, title in (
        ("position", "gold passage position (0 = first)", "Accuracy vs gold position"),
        ("mixture", "share of inappropriate sentences", "Accuracy vs contamination"),
    ):
        fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
        for name, scores in series.items():
            points = sorted((float(x), y) for x, y in scores[key].items())
            ax.plot(
                [x for x, _ in points],
                [y for _, y in points],
                marker="o",
                label=name,
                linewidth=2.2 if name == "no stage" else 1.4,
            )
        if key == "mixture":
            wrong = sorted((float(x), y) for x, y in result["rag"]["detail"]["wrong_answer_rate"]["mixture"].items())
            ax.plot(
                [x for x, _ in wrong],
                [y for _, y in wrong],
                linestyle="--",
                color="grey",
                label="no stage: answers the planted value",
            )
        ax.set_xlabel(xlabel)
        ax.set_ylabel("exact-match accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{title} (testbed seed {result.get('seed')})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = folder / f"{prefix}_{key}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
        logger.info("plot written: %s", path)
    return written


def markdown_table(result: dict) -> str:
    """Rows: the plain model and each stage; columns: the conditions, mean accuracy over the curves."""
    head = "| setting | " + " | ".join(CONDITION_KEYS) + " | mixture (mean) | position (mean) |"
    rows = [head, "|" + "---|" * (len(CONDITION_KEYS) + 3)]
    for name, scores in {"no stage": result["rag"], **result.get("stages", {})}.items():
        if "clean" not in scores:
            rows.append(
                f"| {name}: {scores.get('status', 'absent')} | " + " | ".join(["—"] * (len(CONDITION_KEYS) + 2)) + " |"
            )
            continue
        cells = [f"{scores[k]:.3f}" for k in CONDITION_KEYS]
        for curve in ("mixture", "position"):
            values = list(scores[curve].values())
            cells.append(f"{sum(values) / max(1, len(values)):.3f}")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
