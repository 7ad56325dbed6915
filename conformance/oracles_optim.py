r"""Tier R oracles for §6 Optimisation: exact values from mpmath at 50 digits.

Written independently of ``spec/optim.py`` (nothing from ``spec`` is imported). Each input
element and each hyperparameter (a Python float, i.e. a double) is converted exactly to an
mpf, the update is evaluated at 50 digits and only the result is rounded to float64.

The update rules that return state (``momentum_step``, ``adam_step``, ``rmsprop_step``) have
oracles too, returning a tuple in the spec's order; the generic tier R test takes single
arrays, so their `accuracy` property (conformance/properties/optim.py) measures those. The ulp
budgets are in the records (conformance/records/optim.py).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

from .mp import at_dps as _at_dps
from .mp import f64 as _f64
from .mp import mp as _mp


def _elementwise(rule, n_out: int, *arrays):
    """Apply `rule` (mpf arguments → `n_out` mpfs) to each element; float64 arrays back."""
    arrays = [np.asarray(a) for a in arrays]
    shape = arrays[0].shape
    outs = [np.empty(shape, dtype=np.float64) for _ in range(n_out)]
    for idx in np.ndindex(shape):
        values = rule(*[_mp(a[idx]) for a in arrays])
        for out, value in zip(outs, values, strict=True):
            out[idx] = _f64(value)
    return outs


@_at_dps
def sgd_step(theta, grad, /, *, lr):
    eta = _mp(lr)
    (out,) = _elementwise(lambda t, g: (t - eta * g,), 1, theta, grad)
    return out


@_at_dps
def momentum_step(theta, velocity, grad, /, *, lr, beta=0.9, form="ema"):
    eta, b = _mp(lr), _mp(beta)
    damp = 1 - b if form == "ema" else 1  # heavy ball: the buffer sums the gradients

    def rule(t, vel, g):
        vel = b * vel + damp * g
        return t - eta * vel, vel

    return tuple(_elementwise(rule, 2, theta, velocity, grad))


@_at_dps
def adam_step(theta, m, v, grad, /, *, step, lr=3e-4, beta1=0.9, beta2=0.999, eps=1e-8,
              eps_form="after_root"):
    eta, b1, b2, e = _mp(lr), _mp(beta1), _mp(beta2), _mp(eps)
    c1, c2 = 1 - b1**step, 1 - b2**step

    def rule(t, m_, v_, g):
        m_ = b1 * m_ + (1 - b1) * g
        v_ = b2 * v_ + (1 - b2) * g * g
        if eps_form == "hat":  # Kingma & Ba §2: α_t = α√(1−β₂ᵗ)/(1−β₁ᵗ), θ − α_t m/(√v + ε̂)
            return t - eta * mpmath.sqrt(c2) / c1 * m_ / (mpmath.sqrt(v_) + e), m_, v_
        if eps_form == "inside_root":  # 002's summary table: √(v̂ + ε)
            return t - eta * (m_ / c1) / mpmath.sqrt(v_ / c2 + e), m_, v_
        return t - eta * (m_ / c1) / (mpmath.sqrt(v_ / c2) + e), m_, v_

    return tuple(_elementwise(rule, 3, theta, m, v, grad))


@_at_dps
def rmsprop_step(theta, sq_avg, grad, /, *, lr, alpha=0.99, eps=1e-8, eps_form="after_root"):
    eta, a, e = _mp(lr), _mp(alpha), _mp(eps)

    def rule(t, s, g):
        s = a * s + (1 - a) * g * g
        root = mpmath.sqrt(s) + e if eps_form == "after_root" else mpmath.sqrt(s + e)
        return t - eta * g / root, s

    return tuple(_elementwise(rule, 2, theta, sq_avg, grad))


@_at_dps
def warmup_cosine_lr(step, /, *, peak_lr, warmup_steps, total_steps, min_lr=0.0):
    peak, floor = _mp(peak_lr), _mp(min_lr)
    w, total = mpmath.mpf(warmup_steps), mpmath.mpf(total_steps)

    def rate(t):
        if t < w:
            return peak * t / w
        progress = min(mpmath.mpf(1), (t - w) / (total - w))
        return floor + (peak - floor) * (1 + mpmath.cos(mpmath.pi * progress)) / 2

    if np.ndim(step) == 0 and not isinstance(step, np.ndarray):
        return float(_f64(rate(_mp(step))))
    steps = np.asarray(step)
    out = np.empty(steps.shape, dtype=np.float64)
    for idx in np.ndindex(steps.shape):
        out[idx] = _f64(rate(_mp(steps[idx])))
    return out


@_at_dps
def minibatch_gradient(per_example_grads, /):
    g = np.asarray(per_example_grads)
    b = g.shape[0]
    out = np.empty(g.shape[1:], dtype=np.float64)
    for idx in np.ndindex(g.shape[1:]):
        column = [_mp(g[(i, *idx)]) for i in range(b)]
        out[idx] = math.nan if any(mpmath.isnan(c) for c in column) else _f64(
            mpmath.fsum(column) / b)
    return out


ORACLES = {f.__name__: f for f in (sgd_step, momentum_step, adam_step, rmsprop_step,
                                    warmup_cosine_lr, minibatch_gradient)}


# ---------------------------------------------------------------------------------------------
def _sgd_floor(reference, args, kwargs):
    # θ − ηg cancels when θ ≈ ηg: judged at the larger of the two terms
    theta = np.abs(np.asarray(args[0], dtype=np.float64))
    step = np.abs(float(kwargs["lr"]) * np.asarray(args[1], dtype=np.float64))
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(step), np.maximum(theta, step), 0.0)


def _mean_floor(reference, args, kwargs):
    # a mean cancels when the gradients disagree in sign: judged at the mean of |gᵢ|
    return np.mean(np.abs(np.asarray(args[0], dtype=np.float64)), axis=0)


FLOORS = {
    "sgd_step": _sgd_floor,
    # normwise at the peak: cos loses relative accuracy near its zeros (progress ≈ 1/2)
    "warmup_cosine_lr": lambda reference, args, kwargs: float(kwargs["peak_lr"]),
    "minibatch_gradient": _mean_floor,
}
