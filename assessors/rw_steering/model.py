"""RW-Steering's models: the tuned generator (`with_adapter`), and a Rescorla–Wagner account of
how competing context signals drive a model's answer (`fit_rw`, `predict_quality`).

The generator is any local causal LM (`ragarbiter.assessors.generators.load_generator`) with the
LoRA adapter of `ragarbiter train rw` on.

**The adapted RW model** (form ``"per_signal"``, the default). Source: arXiv 2509.04500, as far
as its public text could be read here: the abstract, the project page and the repository README
(the paper's equations themselves were not retrievable offline, so the form below is rebuilt
from what those state, and is labelled as such in every fit). What they state: two types of
context information C1 and C2 compete; the model's behaviour curve (how often its answer
follows C1) is predicted by RW conditioning from the proportion of C1 in the context; and the
fitted model shows that LLMs over-weight the less prevalent signal, so a little inappropriate
content does outsized harm. The form that has exactly those properties:

- Each signal type c in {A (appropriate), I (inappropriate)} is a cue conditioned to its own
  outcome (the answer it supports), with its own prediction error. Each sentence of type c is
  one trial for c:  ``dV_c = alpha_c * beta * (lambda - V_c)``.
- A context of n sentences with k = round(p * n) inappropriate ones therefore leaves
  ``V_I = lambda * (1 - (1 - alpha_I beta)^k)`` and ``V_A = lambda * (1 - (1 - alpha_A beta)^(n - k))``
  (order-free: each cue's trials only touch its own strength).
- The answer follows I with probability ``V_I / (V_A + V_I)`` (Luce's choice rule), and its
  quality is ``q0 * V_A / (V_A + V_I)``.
- Why it over-weights the rare signal: the acquisition curve is negatively accelerated, so
  the prevalent signal's 19th sentence adds almost nothing while the rare signal's first adds
  alpha_I. With alpha_I = alpha_A = 0.3 and one bad sentence in 20, the bad share is 0.23, not
  0.05. ``rare_signal_gain`` reports that ratio at the smallest contaminated proportion.

Fitted: alpha_A, alpha_I and q0 by least squares on quality against proportion (beta = 1 is
absorbed into the alphas; lambda = 1 cancels in the ratio).

**The project's earlier form** (``"shared"``), kept for comparison, is *not* equivalent. There
both cues predict one outcome through one summed error, ``dV_c = alpha_c * beta * (lambda - (V_A
+ V_I))``, averaged over random sentence orders. Its shared error adds order effects (an early
cue meets a larger error), but with equal saliences every presentation has the same expected
error, so the bad share tracks the proportion (0.05 of 20 gives about 0.05). It can explain
over-weighting only through a larger alpha_I (a salience per content type), never through
rarity itself, which is the effect the paper reports. The two forms agree only in the
small-alpha limit, where both reduce to ``k alpha_I / (k alpha_I + (n - k) alpha_A)`` and only the
ratio of the alphas is identified; each fit says when it lands there.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

FORMS = ("per_signal", "shared")


def with_adapter(lm, adapter: str, *, trainable: bool = False):
    """The loaded generator `lm` with the `train rw` adapter on (in eval mode unless `trainable`).
    peft injects the LoRA layers into `lm.model` in place, so use `lm` only through the returned
    object afterwards."""
    import dataclasses
    import warnings

    from peft import PeftModel

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        model = PeftModel.from_pretrained(lm.model, adapter, is_trainable=trainable)
    return dataclasses.replace(lm, model=model if trainable else model.eval())


def _check_form(form: str) -> None:
    if form not in FORMS:
        raise ValueError(f"form={form!r} is not an RW form; pass one of {FORMS}.")


def inappropriate_count(proportion: float, n: int) -> int:
    """Inappropriate sentences in a mixture of n at this proportion (one appropriate sentence always stays)."""
    return min(n - 1, round(proportion * n))


def signal_strength(trials: int, alpha: float, beta: float = 1.0, lam: float = 1.0) -> float:
    """V of a cue with its own prediction error after `trials` presentations (per-signal form)."""
    return lam * (1.0 - (1.0 - alpha * beta) ** trials)


def final_strengths(
    order: Sequence[bool], alpha_a: float, alpha_i: float, beta: float = 1.0, lam: float = 1.0
) -> tuple[float, float]:
    """(V_A, V_I) after presenting `order` (True = an inappropriate sentence) with one shared error (shared form)."""
    v_a = v_i = 0.0
    for bad in order:
        error = lam - (v_a + v_i)
        if bad:
            v_i += alpha_i * beta * error
        else:
            v_a += alpha_a * beta * error
    return v_a, v_i


def orders_for(n: int, k: int, samples: int, seed: int = 0) -> list[list[bool]]:
    rng = random.Random(seed)
    out = []
    for _ in range(samples):
        order = [True] * k + [False] * (n - k)
        rng.shuffle(order)
        out.append(order)
    return out


def predicted_share(
    proportion: float,
    alpha_a: float,
    alpha_i: float,
    n: int,
    samples: int = 64,
    seed: int = 0,
    *,
    form: str = "per_signal",
) -> float:
    """The share ``V_I / (V_A + V_I)`` of the answer the inappropriate signal drives at this proportion
    (the shared form averages it over `samples` random sentence orders)."""
    _check_form(form)
    k = inappropriate_count(proportion, n)
    if form == "per_signal":
        v_i, v_a = signal_strength(k, alpha_i), signal_strength(n - k, alpha_a)
        return v_i / (v_a + v_i) if v_a + v_i > 0 else 0.0
    shares = []
    for order in orders_for(n, k, samples, seed):
        v_a, v_i = final_strengths(order, alpha_a, alpha_i)
        total = v_a + v_i
        shares.append(v_i / total if total > 0 else 0.0)
    return float(np.mean(shares))


def predict_quality(
    proportions: Sequence[float],
    alpha_a: float,
    alpha_i: float,
    q0: float,
    n: int,
    samples: int = 64,
    seed: int = 0,
    *,
    form: str = "per_signal",
) -> list[float]:
    """Predicted answer quality ``q0 * (1 - share_I)`` at each proportion."""
    return [q0 * (1.0 - predicted_share(p, alpha_a, alpha_i, n, samples, seed, form=form)) for p in proportions]


def _regime(form: str, a_a: float, a_i: float) -> str:
    if max(a_a, a_i) < 0.01:
        return "small-alpha limit: only the salience ratio is identified"
    if form == "per_signal" and min(a_a, a_i) > 0.95:
        return "saturated: both signals reach lambda at once; the alphas are lower bounds"
    return "full RW dynamics"


def fit_rw(
    proportions: Sequence[float],
    quality: Sequence[float],
    n: int,
    *,
    samples: int = 64,
    seed: int = 0,
    form: str = "per_signal",
) -> dict:
    """Least-squares fit of (alpha_A, alpha_I, q0) to a measured quality curve; RMSE included."""
    from scipy.optimize import minimize
    from scipy.special import expit  # a sigmoid that does not overflow

    _check_form(form)
    p = [float(x) for x in proportions]
    y = np.asarray(quality, dtype=float)
    if len(p) != len(y) or len(p) < 3:
        raise ValueError(f"fit_rw needs >= 3 (proportion, quality) points of equal length, got {len(p)} and {len(y)}.")

    def unpack(theta):
        a_a, a_i, q0 = expit(theta)  # alphas and q0 in (0, 1)
        return float(a_a), float(a_i), float(q0)

    def loss(theta):
        fitted = predict_quality(p, *unpack(theta), n, samples, seed, form=form)
        return float(np.mean((np.asarray(fitted) - y) ** 2))

    best = None
    starts = [[-2.0, -2.0, 1.0], [-3.0, -1.0, 1.0], [-1.0, -3.0, 1.0], [0.0, 0.0, 2.0]]
    if form == "per_signal":  # closed form: cheap enough for tighter tolerances and one more start
        starts.append([-1.0, 0.0, 2.0])
        options = {"xatol": 1e-6, "fatol": 1e-10, "maxiter": 4000}
    else:
        options = {"xatol": 1e-4, "fatol": 1e-7, "maxiter": 2000}
    for start in starts:
        res = minimize(loss, np.asarray(start), method="Nelder-Mead", options=options)
        if best is None or res.fun < best.fun:
            best = res
    a_a, a_i, q0 = unpack(best.x)
    fitted = predict_quality(p, a_a, a_i, q0, n, samples, seed, form=form)
    contaminated = [x for x in p if inappropriate_count(x, n) > 0]
    rare = min(contaminated) if contaminated else None
    gain = None
    if rare is not None:
        realised = inappropriate_count(rare, n) / n
        gain = round(predicted_share(rare, a_a, a_i, n, samples, seed, form=form) / realised, 3)
    return {
        "form": form,
        "alpha_appropriate": float(f"{a_a:.4g}"),
        "alpha_inappropriate": float(f"{a_i:.4g}"),
        "regime": _regime(form, a_a, a_i),
        "salience_ratio": round(a_i / a_a, 3) if a_a > 0 else None,
        "rare_signal_gain": gain,
        "q0": round(q0, 4),
        "beta": 1.0,
        "lambda": 1.0,
        "rmse": round(float(np.sqrt(np.mean((np.asarray(fitted) - y) ** 2))), 4),
        "fitted": [round(v, 4) for v in fitted],
        "measured": [round(float(v), 4) for v in y],
        "proportions": p,
        "sentences": n,
    }
