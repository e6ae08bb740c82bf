"""`bench rw` figures: the measured curves against contamination, with their Rescorla-Wagner fits."""

from __future__ import annotations

from pathlib import Path

LABELS = {"plain": "plain RAG", "answer_only": "answer-only fine-tune", "rw_steering": "RW-Steering"}


def _figure():
    from ragarbiter.errors import require

    matplotlib = require("matplotlib", "all", "RW plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.4, 4.0), dpi=120)


def _finish(fig, ax, title: str, ylabel: str, folder: str | Path, name: str, legend_size: int) -> Path:
    import matplotlib.pyplot as plt

    ax.set_xlabel("share of inappropriate sentences")
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)
    fig.tight_layout()
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _params(fit: dict) -> str:
    if fit.get("regime", "").startswith("small"):
        return f"a_I/a_A={fit['salience_ratio']}"
    return f"a_A={fit['alpha_appropriate']}, a_I={fit['alpha_inappropriate']}"


def plot_rw(result: dict, folder: str | Path, name: str = "rw_fit.png") -> Path:
    """The measured quality and leakage of one system, with the fitted RW curve."""
    curve, fit = result["curve"], result["rw_fit"]
    fig, ax = _figure()
    ax.plot(curve["proportions"], curve["quality"], "o", label="measured quality")
    if "fitted" in fit:
        ax.plot(curve["proportions"], fit["fitted"], "-", label=f"RW fit ({_params(fit)}, RMSE {fit['rmse']})")
    ax.plot(curve["proportions"], curve["leakage"], "s--", color="grey", label="leakage")
    return _finish(
        fig, ax, "Answer quality under mixed contexts, with the Rescorla-Wagner fit", "rate", folder, name, 8
    )


def plot_curves(result: dict, folder: str | Path, name: str = "rw_curves.png") -> Path:
    """Accuracy of plain RAG, the answer-only fine-tune and RW-Steering, each with its RW fit."""
    fig, ax = _figure()
    for i, (system, label) in enumerate(LABELS.items()):
        curve, fit = result["curves"][system], result["rw_fit"][system]
        color = f"C{i}"
        ax.plot(curve["proportions"], curve["quality"], "o", color=color, label=f"{label} (measured)")
        if "fitted" in fit:
            ax.plot(curve["proportions"], fit["fitted"], "-", color=color, label=f"RW fit, RMSE {fit['rmse']}")
    return _finish(fig, ax, f"Accuracy under mixed contexts (n={result['n']} per point)", "accuracy", folder, name, 7)
