"""RW-Steering's models: the tuned generator (`with_adapter`), and a Rescorla–Wagner account of
how competing context signals drive a model's answer (`fit_rw`, `predict_quality`).

The generator is any local causal LM (`ragarbiter.assessors.generators.load_generator`) with the
LoRA adapter of `ragarbiter train rw` on.

The formulation (ours; the paper publishes none):

- Two cues compete: the appropriate signal A and the inappropriate signal I. The context is a
  sequence of n sentences, k = round(p * n) of them from I, in the order the model reads them.
- Each sentence presentation is a learning trial for its cue only, with the shared prediction
  error of Rescorla–Wagner (1972):

      dV_c = alpha_c * beta * (lambda - (V_A + V_I)),   c in {A, I}, for the presented cue c

  with lambda = 1 (the answer is fully determined) and beta = 1 (absorbed into the alphas).
- After the last sentence, the share of the output driven by I is ``V_I / (V_A + V_I)``, and
  the predicted answer quality is ``q0 * V_A / (V_A + V_I)``, where q0 is the quality of a clean
  context.
- Fitted: alpha_A, alpha_I (salience per presentation) and q0, by least squares on the
  measured quality against p. Predictions average over random sentence orders.

Identifiability: when both alphas are small, V stays far from lambda and the shares reduce
to ``k * alpha_I / (k * alpha_I + (n - k) * alpha_A)``, so only their ratio is identified. The fit
reports that regime when it lands there.

Why this shape: with equal saliences and many trials the shares settle near the proportions,
so a model that followed the majority would fit ``alpha_I = alpha_A``. The paper's finding, that
a little inappropriate content does outsized harm, appears as ``alpha_I / alpha_A > 1``. The
shared error term also gives order effects for free: a cue presented late meets a smaller
remaining error.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np


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


def final_strengths(
    order: Sequence[bool], alpha_a: float, alpha_i: float, beta: float = 1.0, lam: float = 1.0
) -> tuple[float, float]:
    """(V_A, V_I) after presenting `order` (True = an inappropriate sentence)."""
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
    proportion: float, alpha_a: float, alpha_i: float, n: int, samples: int = 64, seed: int = 0
) -> float:
    """Mean ``V_I / (V_A + V_I)`` over random orders of a context at this proportion."""
    k = min(n - 1, round(proportion * n))
    shares = []
    for order in orders_for(n, k, samples, seed):
        v_a, v_i = final_strengths(order, alpha_a, alpha_i)
        total = v_a + v_i
        shares.append(v_i / total if total > 0 else 0.0)
    return float(np.mean(shares))


def predict_quality(
    proportions: Sequence[float], alpha_a: float, alpha_i: float, q0: float, n: int, samples: int = 64, seed: int = 0
) -> list[float]:
    return [q0 * (1.0 - predicted_share(p, alpha_a, alpha_i, n, samples, seed)) for p in proportions]


def fit_rw(proportions: Sequence[float], quality: Sequence[float], n: int, *, samples: int = 64, seed: int = 0) -> dict:
    """Least-squares fit of (alpha_A, alpha_I, q0) to a measured quality curve; RMSE included."""
    from scipy.optimize import minimize

    p = [float(x) for x in proportions]
    y = np.asarray(quality, dtype=float)
    if len(p) != len(y) or len(p) < 3:
        raise ValueError(f"fit_rw needs >= 3 (proportion, quality) points of equal length, got {len(p)} and {len(y)}.")

    from scipy.special import expit  # a sigmoid that does not overflow

    def unpack(theta):
        a_a, a_i = expit(theta[:2])  # alphas in (0, 1)
        q0 = expit(theta[2])
        return float(a_a), float(a_i), float(q0)

    def loss(theta):
        a_a, a_i, q0 = unpack(theta)
        return float(np.mean((np.asarray(predict_quality(p, a_a, a_i, q0, n, samples, seed)) - y) ** 2))

    best = None
    for start in ([-2.0, -2.0, 1.0], [-3.0, -1.0, 1.0], [-1.0, -3.0, 1.0], [0.0, 0.0, 2.0]):
        res = minimize(
            loss, np.asarray(start), method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-7, "maxiter": 2000}
        )
        if best is None or res.fun < best.fun:
            best = res
    a_a, a_i, q0 = unpack(best.x)
    fitted = predict_quality(p, a_a, a_i, q0, n, samples, seed)
    small = max(a_a, a_i) < 0.01
    return {
        "alpha_appropriate": float(f"{a_a:.4g}"),
        "alpha_inappropriate": float(f"{a_i:.4g}"),
        "regime": "small-alpha limit: only the salience ratio is identified" if small else "full RW dynamics",
        "salience_ratio": round(a_i / a_a, 3) if a_a > 0 else None,
        "q0": round(q0, 4),
        "beta": 1.0,
        "lambda": 1.0,
        "rmse": round(float(np.sqrt(np.mean((np.asarray(fitted) - y) ** 2))), 4),
        "fitted": [round(v, 4) for v in fitted],
        "measured": [round(float(v), 4) for v in y],
        "proportions": p,
        "sentences": n,
    }
