r"""Tier R oracles for the losses of §4 added beside the softmax cross-entropy.

Each oracle evaluates its loss a second time, independently of ``spec`` (nothing from it is
imported), in mpmath at 50 significant digits: every input element is converted exactly, the
formula is evaluated where nothing overflows, underflows or cancels, and only the final value is
rounded, correctly, to float64. Non-finite inputs follow the extended reals with the loss
conventions the spec documents: 0·log 0 = 0, and a term whose weight is exactly 0 contributes 0
even when its factor is infinite (y = 1 at z = +∞ costs 0 in the logit form of BCE).

``ORACLES`` maps each equation to its oracle, ``FLOORS`` to the scale of its ulp measure
(:func:`conformance.oracles.ulp_error`); the budgets per dtype are filed with the records
(``conformance/records/losses.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import mpmath
import numpy as np

from .mp import at_dps as _at_dps
from .mp import f64 as _f64
from .mp import mp as _mp

_INF = mpmath.mpf("inf")


def _elementwise(fn, *arrays) -> np.ndarray:
    arrays = [np.asarray(a) for a in arrays]
    out = np.empty(arrays[0].shape, dtype=np.float64)
    for idx in np.ndindex(out.shape):
        vals = [_mp(a[idx]) for a in arrays]
        out[idx] = math.nan if any(mpmath.isnan(x) for x in vals) else _f64(fn(*vals))
    return out


def _reduce(terms: np.ndarray, exact: dict, reduction: str):
    """Round the exact terms (dict idx → mpf) elementwise, or sum / average them first."""
    if reduction == "none":
        return terms
    vals = list(exact.values())
    if any(mpmath.isnan(x) for x in vals):
        return np.asarray(math.nan)
    total = mpmath.fsum(vals)
    if reduction == "sum":
        return np.asarray(_f64(total))
    return np.asarray(_f64(total / len(vals)) if vals else math.nan)


def _xlog(a, b):
    """a·log b with 0·log b = 0."""
    return mpmath.mpf(0) if a == 0 else a * mpmath.log(b)


def _xmul(a, b):
    """a·b with 0·b = 0, also for b = ∞."""
    return mpmath.mpf(0) if a == 0 else a * b


def _softplus(t):
    """log(1 + eᵗ) in the extended reals (mpmath's exponent range makes e^1000 harmless)."""
    if t == _INF:
        return _INF
    if t == -_INF:
        return mpmath.mpf(0)
    return mpmath.log1p(mpmath.exp(t))


# ---------------------------------------------------------------------------------------------
@_at_dps
def mse(y_hat, y, /, *, reduction="mean"):
    a, b = np.asarray(y_hat), np.asarray(y)
    if a.shape != b.shape:
        raise ValueError(f"y_hat and y must have the same shape, got {a.shape} and {b.shape}")
    exact, terms = {}, np.empty(a.shape, dtype=np.float64)
    for idx in np.ndindex(a.shape):
        x, t = _mp(a[idx]), _mp(b[idx])
        d = x - t  # exact: two doubles differ by at most ~2100 bits, far inside the next step
        exact[idx] = d * d if not mpmath.isnan(d) else mpmath.mpf("nan")
        terms[idx] = math.nan if mpmath.isnan(d) else _f64(d * d)
    return _reduce(terms, exact, reduction)


@_at_dps
def binary_cross_entropy(p, y, /):
    def bce(pi, yi):
        if not (0 <= pi <= 1 and 0 <= yi <= 1):
            raise ValueError("p and y must lie in [0, 1]")
        return -(_xlog(yi, pi) + _xlog(1 - yi, 1 - pi))  # 1 − p is exact at 166 bits

    return _elementwise(bce, p, y)


@_at_dps
def binary_cross_entropy_with_logits(z, y, /):
    def bce(zi, yi):
        if not 0 <= yi <= 1:
            raise ValueError("y must lie in [0, 1]")
        # −log σ(z) = softplus(−z), −log(1 − σ(z)) = softplus(z): no 1 − σ cancellation
        return _xmul(yi, _softplus(-zi)) + _xmul(1 - yi, _softplus(zi))

    return _elementwise(bce, z, y)


def _cross_entropy_row(row: list, y: int) -> mpmath.mpf:
    """−log softmax(row)_y = logsumexp(row) − row_y, in the extended reals."""
    if any(mpmath.isnan(x) for x in row):
        return mpmath.mpf("nan")
    if any(x == _INF for x in row):
        return mpmath.mpf("nan") if row[y] == _INF else _INF
    finite = [x for x in row if x != -_INF]
    if not finite:
        return mpmath.mpf("nan")  # −∞ − (−∞)
    m = max(finite)
    # (m − z_y) ≥ 0 plus log Σ e^{z_j − m} ≥ 0: no cancellation when the loss is ≈ 0
    return (m - row[y]) + mpmath.log(mpmath.fsum(mpmath.exp(x - m) for x in row))


@_at_dps
def sequence_nll(logits, tokens, /):
    z, t = np.asarray(logits), np.asarray(tokens)
    if z.ndim < 2 or t.shape != z.shape[:-1]:
        raise ValueError(f"tokens {t.shape} must be logits {z.shape} without its last axis")
    vocab = z.shape[-1]
    out = np.empty(t.shape[:-1], dtype=np.float64)
    for idx in np.ndindex(out.shape):
        steps = []
        for step in range(t.shape[-1]):
            y = int(t[(*idx, step)])
            if not 0 <= y < vocab:
                raise ValueError(f"token id {y} outside [0, {vocab})")
            steps.append(_cross_entropy_row([_mp(x) for x in z[(*idx, step)]], y))
        out[idx] = math.nan if any(mpmath.isnan(s) for s in steps) else _f64(mpmath.fsum(steps))
    return out


def _arrays(params) -> list:
    return [np.asarray(params)] if isinstance(params, np.ndarray) else [np.asarray(w)
                                                                          for w in params]


@_at_dps
def l2_penalty(params, /, *, weight):
    lam = _mp(weight)
    if not lam >= 0:
        raise ValueError("weight must be non-negative")
    squares = [_mp(x) ** 2 for w in _arrays(params) for x in w.reshape(-1)]
    if any(mpmath.isnan(s) for s in squares):
        return np.asarray(math.nan)
    return np.asarray(_f64(lam * mpmath.fsum(squares)))


@_at_dps
def empirical_risk(losses, /):
    vals = [_mp(x) for x in np.asarray(losses).reshape(-1)]
    if not vals:
        raise ValueError("no examples")
    if any(mpmath.isnan(x) for x in vals):
        return np.asarray(math.nan)
    return np.asarray(_f64(mpmath.fsum(vals) / len(vals)))


ORACLES: dict[str, Callable] = {
    f.__name__: f
    for f in (mse, binary_cross_entropy, binary_cross_entropy_with_logits, sequence_nll,
              l2_penalty, empirical_risk)
}


def _relative(reference, args, kwargs):
    return 0.0


def _log_domain(reference, args, kwargs):
    return 1.0


def _mean_of_magnitudes(reference, args, kwargs):
    return float(np.mean(np.abs(np.asarray(args[0], dtype=np.float64)))) if np.size(args[0]) \
        else 0.0


FLOORS: dict[str, Callable] = {
    # sums of non-negative terms (squares, −y log p ≥ 0, softplus ≥ 0, λw² ≥ 0) never cancel,
    # so the error is relative to the value itself, however small
    "mse": _relative,
    "binary_cross_entropy": _relative,
    "binary_cross_entropy_with_logits": _relative,
    "l2_penalty": _relative,
    # a sum of log-domain cross-entropies: an absolute error, as for softmax_cross_entropy
    "sequence_nll": _log_domain,
    # losses of either sign may cancel in the mean: normwise, at the mean of |Lₙ|
    "empirical_risk": _mean_of_magnitudes,
}
