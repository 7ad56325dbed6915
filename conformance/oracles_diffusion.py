r"""Tier R oracles for §13, diffusion: the DDPM formulas in exact arithmetic.

Nothing from ``spec`` is imported. Inputs and schedules are converted exactly to mpmath (50
significant digits); ᾱₜ = Π(1 − βₛ) and 1 − ᾱₜ are formed exactly (no cancellation at 50 digits
for the records' β ≥ 1e-4), square roots and quotients at 50 digits; only the final value is
rounded, correctly, to float64. Time is 1-based (``betas[t-1] = β_t``, ᾱ₀ = 1), as in the spec.
A schedule value given as an array broadcasts against the inputs.

``ORACLES`` maps each equation to its oracle, ``FLOORS`` to the scale of its ulp measure; the
budgets per dtype, with their derivation, are in the records (conformance/records/diffusion.py).
"""

from __future__ import annotations

from collections.abc import Callable

import mpmath
import numpy as np

from .mp import DPS
from .mp import at_dps as _at_dps
from .mp import f64 as _f64
from .mp import mp as _mp


def _mix(a, b, coef, coef_name: str, first, second) -> np.ndarray:
    """first(c)·a + second(c)·b elementwise, c the (broadcast) schedule value."""
    a, b = np.asarray(a), np.asarray(b)
    c = np.broadcast_to(np.asarray(coef), a.shape)
    out = np.empty(a.shape, dtype=np.float64)
    for idx in np.ndindex(a.shape):
        cv = _mp(c[idx])
        if not 0 <= cv <= 1:
            raise ValueError(f"{coef_name} must be in [0, 1]")
        out[idx] = _f64(first(cv) * _mp(a[idx]) + second(cv) * _mp(b[idx]))
    return out


@_at_dps
def diffusion_forward_step(x_prev, eps, /, *, beta_t):
    return _mix(x_prev, eps, beta_t, "beta_t", lambda b: mpmath.sqrt(1 - b), mpmath.sqrt)


@_at_dps
def diffusion_marginal(x0, eps, /, *, alpha_bar_t):
    return _mix(x0, eps, alpha_bar_t, "alpha_bar_t", mpmath.sqrt,
                lambda a: mpmath.sqrt(1 - a))


@_at_dps
def alpha_bar(betas, /):
    b = np.asarray(betas)
    out = np.empty(b.shape, dtype=np.float64)
    for idx in np.ndindex(b.shape[:-1]):
        running = mpmath.mpf(1)
        for t, beta in enumerate(b[idx]):
            running *= 1 - _mp(beta)  # exact: ≤ 16 factors of 53 bits fit in 166
            out[(*idx, t)] = _f64(running)
    return out


def _schedule(betas, t):
    b = [_mp(x) for x in np.asarray(betas, dtype=np.float64).reshape(-1)]
    if not 1 <= t <= len(b):
        raise ValueError(f"t must be in [1, {len(b)}]")
    ab = [mpmath.mpf(1)]
    for beta in b:
        ab.append(ab[-1] * (1 - beta))
    return b[t - 1], ab[t - 1], ab[t]  # β_t, ᾱ_{t−1}, ᾱ_t


def _posterior_coefficients(betas, t):
    beta, ab_prev, ab = _schedule(betas, t)
    if t == 1:
        # ᾱ₀ = 1: the coefficients are β₁/β₁ = 1 and 0·(…) = 0; at β₁ = 0 (0/0) their limit,
        # the posterior of x₀ given x₀ being x₀ itself
        return mpmath.mpf(1), mpmath.mpf(0)
    if ab == 1:  # β₁ … βₜ all 0: xₜ = x₀, the same limit of the 0/0 coefficients
        return mpmath.mpf(1), mpmath.mpf(0)
    return (mpmath.sqrt(ab_prev) * beta / (1 - ab),
            mpmath.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab))


def _reverse_coefficients(betas, t):
    beta, _, ab = _schedule(betas, t)
    root = mpmath.sqrt(1 - beta)
    if t == 1:  # 1 − ᾱ₁ = β₁: β₁/√β₁ = √β₁, also its limit 0 at β₁ = 0
        return 1 / root, -mpmath.sqrt(beta) / root
    if ab == 1:  # β₁ … βₜ all 0: βₜ/√(1 − ᾱₜ) → 0 as βₜ → 0 (it is ≤ √βₜ)
        return 1 / root, mpmath.mpf(0)
    return 1 / root, -beta / (mpmath.sqrt(1 - ab) * root)


def _linear(a, b, ca, cb) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    out = np.empty(a.shape, dtype=np.float64)
    for idx in np.ndindex(a.shape):
        out[idx] = _f64(ca * _mp(a[idx]) + cb * _mp(b[idx]))
    return out


def _betas_as_given(betas, x):
    """The schedule as the spec rounds it: a sequence of numbers is cast to x's dtype."""
    return np.asarray(betas, dtype=np.asarray(x).dtype)


@_at_dps
def ddpm_posterior_mean(x_t, x0, /, *, betas, t):
    c_x0, c_xt = _posterior_coefficients(_betas_as_given(betas, x_t), t)
    return _linear(x0, x_t, c_x0, c_xt)


@_at_dps
def ddpm_reverse_mean(x_t, eps_pred, /, *, betas, t):
    c_xt, c_eps = _reverse_coefficients(_betas_as_given(betas, x_t), t)
    return _linear(x_t, eps_pred, c_xt, c_eps)


ORACLES: dict[str, Callable] = {
    f.__name__: f for f in (diffusion_forward_step, diffusion_marginal, alpha_bar,
                            ddpm_posterior_mean, ddpm_reverse_mean)
}


def _relative(reference, args, kwargs):
    return 0.0


def _two_terms(first, second, option):
    def floor(reference, args, kwargs):
        a, b = (np.abs(np.asarray(x, dtype=np.float64)) for x in args)
        c = np.asarray(kwargs[option], dtype=np.float64)
        return first(c) * a + second(c) * b

    return floor


def _ddpm_floor(coefficients):
    def floor(reference, args, kwargs):
        a, b = (np.abs(np.asarray(x, dtype=np.float64)) for x in args)
        with mpmath.workdps(DPS):
            ca, cb = coefficients(_betas_as_given(kwargs["betas"], args[0]), kwargs["t"])
        return abs(float(ca)) * a + abs(float(cb)) * b

    return floor


FLOORS: dict[str, Callable] = {
    # a sum of two terms of either sign: normwise at |c₁ a| + |c₂ b|
    "diffusion_forward_step": _two_terms(lambda b: np.sqrt(1 - b), np.sqrt, "beta_t"),
    "diffusion_marginal": _two_terms(np.sqrt, lambda a: np.sqrt(1 - a), "alpha_bar_t"),
    "ddpm_posterior_mean": _ddpm_floor(lambda b, t: _posterior_coefficients(b, t)),
    "ddpm_reverse_mean": _ddpm_floor(lambda b, t: _reverse_coefficients(b, t)),
    # a product of factors in [0, 1]: relative to itself
    "alpha_bar": _relative,
}
