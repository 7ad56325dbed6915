r"""Tier R oracles for §1 Linear algebra: exact values from mpmath at 50 digits.

Written independently of ``spec/linalg.py`` (nothing from ``spec`` is imported): every input
element is converted exactly to an mpf, the equation is evaluated in arbitrary-exponent
arithmetic (so 1e200² neither overflows nor 1e-200² underflows), and only the result is rounded
correctly to float64. The SVD-based oracles use ``mpmath.svd_r`` at 50 digits.

Conventions, matching the spec's docstrings: `axis` indexes the broadcast shape of two
vector inputs; a NaN anywhere in a reduced slice gives NaN; an infinity follows the extended
reals (‖x‖ = ∞ when an entry is ±∞); an empty axis has norm and dot product 0.

``FLOORS`` gives, per equation, the magnitude at which an error is measured in ulps (see
``conformance.oracles.ulp_error``), each with its reason; the budgets live with the records
(``conformance/records/linalg.py``).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

from .mp import at_dps as _at_dps
from .mp import f64 as _f64
from .mp import mp as _mp


def _moved(a, axis):
    a = np.asarray(a)
    if a.ndim < 1:
        raise ValueError("the input must have at least 1 dimension")
    axis = axis % a.ndim
    return np.moveaxis(a, axis, -1)


def _has_nan(values) -> bool:
    return any(mpmath.isnan(x) for x in values)


def _norm_exact(values) -> mpmath.mpf:
    if _has_nan(values):
        return mpmath.mpf("nan")
    if any(mpmath.isinf(x) for x in values):
        return mpmath.mpf("inf")
    return mpmath.sqrt(mpmath.fsum(x * x for x in values))


# ---------------------------------------------------------------------------------------------
@_at_dps
def dot(x, y, /, *, axis=-1):
    x, y = np.broadcast_arrays(np.asarray(x), np.asarray(y))
    mx, my = _moved(x, axis), _moved(y, axis)
    out = np.empty(mx.shape[:-1], dtype=np.float64)
    for idx in np.ndindex(mx.shape[:-1]):
        xs, ys = [_mp(a) for a in mx[idx]], [_mp(b) for b in my[idx]]
        # products of two doubles are exact at 50 digits; ∞·0 and ∞ − ∞ give NaN
        out[idx] = _f64(mpmath.fsum(a * b for a, b in zip(xs, ys, strict=True)))
    return out


@_at_dps
def norm(x, /, *, axis=-1, keepdims=False):
    moved = _moved(x, axis)
    out = np.empty(moved.shape[:-1], dtype=np.float64)
    for idx in np.ndindex(moved.shape[:-1]):
        out[idx] = _f64(_norm_exact([_mp(a) for a in moved[idx]]))
    return np.expand_dims(out, axis % np.ndim(x)) if keepdims else out


@_at_dps
def cosine_similarity(x, y, /, *, axis=-1, eps=1e-8):
    x, y = np.broadcast_arrays(np.asarray(x), np.asarray(y))
    mx, my = _moved(x, axis), _moved(y, axis)
    e = _mp(eps)
    out = np.empty(mx.shape[:-1], dtype=np.float64)
    for idx in np.ndindex(mx.shape[:-1]):
        xs, ys = [_mp(a) for a in mx[idx]], [_mp(b) for b in my[idx]]
        if _has_nan(xs) or _has_nan(ys):
            out[idx] = math.nan
            continue
        nx, ny = max(_norm_exact(xs), e), max(_norm_exact(ys), e)
        out[idx] = _f64(mpmath.fsum(a * b for a, b in zip(xs, ys, strict=True)) / (nx * ny))
    return out


@_at_dps
def frobenius_norm(W, /):
    W = np.asarray(W)
    out = np.empty(W.shape[:-2], dtype=np.float64)
    for idx in np.ndindex(W.shape[:-2]):
        out[idx] = _f64(_norm_exact([_mp(a) for a in W[idx].reshape(-1)]))
    return out


def _svd(matrix):
    """(U, σ, Vᵀ) of one host matrix at the working precision, σ in descending order."""
    a = mpmath.matrix([[_mp(e) for e in row] for row in matrix])
    u, s, vt = mpmath.svd_r(a, full_matrices=False, compute_uv=True)
    order = sorted(range(len(s)), key=lambda i: -s[i])
    return u, [s[i] for i in order], vt, order


@_at_dps
def low_rank_approximation(W, /, *, rank):
    W = np.asarray(W)
    m, n = W.shape[-2:]
    out = np.empty(W.shape, dtype=np.float64)
    for idx in np.ndindex(W.shape[:-2]):
        if not np.all(np.isfinite(W[idx])):  # no SVD: the spec's W_k is all NaN
            out[idx] = math.nan
            continue
        u, s, vt, order = _svd(W[idx])
        top = order[:rank]
        for i in range(m):
            for j in range(n):
                out[(*idx, i, j)] = _f64(mpmath.fsum(s[r] * u[i, c] * vt[c, j]
                                                     for r, c in enumerate(top)))
    return out


@_at_dps
def spectral_norm(W, /):
    W = np.asarray(W)
    out = np.empty(W.shape[:-2], dtype=np.float64)
    for idx in np.ndindex(W.shape[:-2]):
        if not np.all(np.isfinite(W[idx])):  # sup ‖Wx‖/‖x‖: NaN with a NaN, else ∞
            out[idx] = math.nan if np.any(np.isnan(W[idx])) else math.inf
            continue
        a = mpmath.matrix([[_mp(e) for e in row] for row in W[idx]])
        out[idx] = _f64(max(mpmath.svd_r(a, compute_uv=False)))
    return out


ORACLES = {f.__name__: f for f in (dot, norm, cosine_similarity, frobenius_norm,
                                    low_rank_approximation, spectral_norm)}


# ---------------------------------------------------------------------------------------------
def _dot_floor(reference, args, kwargs):
    # normwise: a sum of products cancels, so an error is judged at Σ|xᵢyᵢ| (the condition
    # number of the dot product times its value), not at the possibly tiny result
    x, y = np.broadcast_arrays(np.asarray(args[0], np.float64), np.asarray(args[1], np.float64))
    with np.errstate(over="ignore", invalid="ignore"):
        return np.sum(np.abs(_moved(x, kwargs.get("axis", -1)) * _moved(y, kwargs.get("axis",
                                                                                       -1))),
                      axis=-1)


def _own_magnitude(reference, args, kwargs):
    # norms are perfectly conditioned (relative error in = relative error out): relative
    return np.abs(reference)


def _low_rank_floor(reference, args, kwargs):
    # W_k's entries are sums of σᵢuᵢvᵢᵀ terms of size up to σ₁: judged normwise at σ₁ of W
    # (a backward-stable SVD is accurate to a few ulp of ‖W‖₂, not of each small entry)
    sigma_1 = spectral_norm(args[0])
    return np.asarray(sigma_1)[..., None, None]


FLOORS = {
    "dot": _dot_floor,
    "norm": _own_magnitude,
    # the cosine lies in [−1, 1]: an absolute error, measured at 1
    "cosine_similarity": lambda reference, args, kwargs: 1.0,
    "frobenius_norm": _own_magnitude,
    "low_rank_approximation": _low_rank_floor,
    # σ_max is perfectly conditioned (Weyl: |δσ| ≤ ‖δW‖₂): relative
    "spectral_norm": _own_magnitude,
}
