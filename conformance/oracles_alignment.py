r"""Tier R oracles for §12, alignment: the exact losses, objectives and returns.

Nothing from ``spec`` is imported. Inputs are converted exactly to mpmath (50 significant
digits); softplus(x) = log(1 + eˣ) is evaluated directly (mpmath's exponent range is unbounded,
so e^{2000} neither overflows nor underflows); options given as Python floats (β, γ, ε) are
taken at their exact double values; only the final value is rounded, correctly, to float64.
Reductions follow the spec: "mean" (default), "sum" or "none", over the broadcast shape.

``ORACLES`` maps each equation to its oracle, ``FLOORS`` to the scale of its ulp measure; the
budgets per dtype, with their derivation, are in the records (conformance/records/alignment.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import mpmath
import numpy as np

from .mp import at_dps as _at_dps
from .mp import f64 as _f64
from .mp import mp as _mp


def _terms(fn, *arrays) -> dict:
    """fn applied to the exact elements of the broadcast arrays: {index: mpf}."""
    arrays = np.broadcast_arrays(*[np.asarray(a) for a in arrays])
    out = {}
    for idx in np.ndindex(arrays[0].shape):
        vals = [_mp(a[idx]) for a in arrays]
        out[idx] = mpmath.nan if any(mpmath.isnan(x) for x in vals) else fn(*vals)
    return out, arrays[0].shape


def _reduced(terms: dict, shape, reduction: str):
    if reduction == "none":
        out = np.empty(shape, dtype=np.float64)
        for idx, x in terms.items():
            out[idx] = _f64(x)
        return out
    total = mpmath.fsum(terms.values())
    if reduction == "sum":
        return np.asarray(_f64(total))
    return np.asarray(_f64(total / len(terms)) if terms else math.nan)


def _softplus(x):
    return mpmath.log1p(mpmath.exp(x))


@_at_dps
def reward_model_loss(r_chosen, r_rejected, /, *, reduction="mean"):
    terms, shape = _terms(lambda w, l: _softplus(l - w), r_chosen, r_rejected)
    return _reduced(terms, shape, reduction)


def _kl_estimate(estimator: str, lp, lq):
    """Schulman's estimators of KL(π‖π_ref) from one sample, at ρ = π_ref/π."""
    rho = mpmath.exp(lq - lp)
    if estimator == "k2":
        return (mpmath.log(rho)) ** 2 / 2
    if estimator == "k3":
        return rho - 1 - mpmath.log(rho)
    return -mpmath.log(rho)  # k1: log π − log π_ref


@_at_dps
def kl_penalized_reward(reward, logp, logp_ref, /, *, beta, estimator="k1"):
    b = _mp(beta)
    terms, shape = _terms(lambda r, lp, lq: r - b * _kl_estimate(estimator, lp, lq), reward,
                          logp, logp_ref)
    return _reduced(terms, shape, "none")


def _ppo_term(eps, eps_high=None):
    low, high = 1 - eps, 1 + (eps if eps_high is None else eps_high)

    def term(new, old, adv):
        r = mpmath.exp(new - old)  # mpmath's exponent range is unbounded: e^{1000} is finite
        return min(r * adv, min(max(r, low), high) * adv)

    return term


@_at_dps
def ppo_clip_objective(logp_new, logp_old, advantages, /, *, clip_eps=0.2, reduction="mean",
                       clip_eps_high=None):
    high = None if clip_eps_high is None else _mp(clip_eps_high)
    terms, shape = _terms(_ppo_term(_mp(clip_eps), high), logp_new, logp_old, advantages)
    return _reduced(terms, shape, reduction)


@_at_dps
def dpo_loss(logp_chosen, logp_rejected, ref_chosen, ref_rejected, /, *, beta,
             reduction="mean", label_smoothing=0.0):
    b, eps = _mp(beta), _mp(label_smoothing)

    def term(lw, ll, rw, rl):
        margin = b * ((lw - rw) - (ll - rl))
        return (1 - eps) * _softplus(-margin) + eps * _softplus(margin)

    terms, shape = _terms(term, logp_chosen, logp_rejected, ref_chosen, ref_rejected)
    return _reduced(terms, shape, reduction)


def _returns_to_go(row: list, gamma) -> list:
    n = len(row)
    return [mpmath.fsum(gamma ** (k - t) * row[k] for k in range(t, n)) for t in range(n)]


@_at_dps
def discounted_return(rewards, /, *, gamma):
    r = np.asarray(rewards)
    g = _mp(gamma)
    out = np.empty(r.shape, dtype=np.float64)
    for idx in np.ndindex(r.shape[:-1]):
        row = [_mp(x) for x in r[idx]]
        out[idx] = [_f64(x) for x in _returns_to_go(row, g)]
    return out


ORACLES: dict[str, Callable] = {
    f.__name__: f for f in (reward_model_loss, kl_penalized_reward, ppo_clip_objective,
                            dpo_loss, discounted_return)
}


def _relative(reference, args, kwargs):
    return 0.0


def _kl_scale(reference, args, kwargs):
    """max(|r|, β|log π − log π_ref|): the sizes of the two terms that may cancel (for k3,
    whose two parts e^{−Δ} − 1 and Δ cancel too, β(|e^{−Δ} − 1| + |Δ|))."""
    r, lp, lq = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in args))
    delta = np.abs(lp - lq)
    if kwargs.get("estimator") == "k3":
        with np.errstate(over="ignore"):
            delta = delta + np.abs(np.expm1(lq - lp))
    elif kwargs.get("estimator") == "k2":
        delta = delta * delta / 2
    beta = abs(float(kwargs["beta"]))
    return np.maximum(np.abs(r), beta * delta) if beta else np.abs(r)  # not 0·∞


def _ppo_scale(reference, args, kwargs):
    """Σ|term| or mean |term| (or |term| for "none"): terms of either sign may cancel."""
    new, old, adv = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in args))
    eps = float(kwargs.get("clip_eps", 0.2))
    high = eps if kwargs.get("clip_eps_high") is None else float(kwargs["clip_eps_high"])
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.exp(new - old)
        # A·min(r, 1 + ε_h) for A ≥ 0, A·max(r, 1 − ε) below: no ∞·0 where r overflows
        mags = np.abs(adv * np.where(adv >= 0, np.minimum(r, 1 + high), np.maximum(r, 1 - eps)))
    reduction = kwargs.get("reduction", "mean")
    if reduction == "none":
        return mags
    return float(np.sum(mags) if reduction == "sum" else np.mean(mags))


def _return_scale(reference, args, kwargs):
    """Σ_{k≥t} γ^{k−t}|r_k|: the returns-to-go of |r|, the size of what is summed."""
    r = np.abs(np.asarray(args[0], dtype=np.float64))
    gamma = float(kwargs["gamma"])
    out = np.empty_like(r)
    g = np.zeros(r.shape[:-1])
    for t in range(r.shape[-1] - 1, -1, -1):
        g = r[..., t] + gamma * g
        out[..., t] = g
    return out


FLOORS: dict[str, Callable] = {
    # softplus ≥ 0 and the reductions sum non-negative terms: relative to the value itself
    "reward_model_loss": _relative,
    "dpo_loss": _relative,
    # r − β(log π − log π_ref) cancels when r ≈ βΔ: normwise at the larger term
    "kl_penalized_reward": _kl_scale,
    # the surrogate terms have either sign: normwise at the magnitudes summed
    "ppo_clip_objective": _ppo_scale,
    # rewards of either sign: normwise at the discounted sum of |r|
    "discounted_return": _return_scale,
}
