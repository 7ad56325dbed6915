r"""Tier R oracles for the layers of §5 that return one array: neuron, dense, dropout, residual.

Independent of ``spec``: each pre-activation is an exact dot product (``mpmath.fsum`` of exact
products of the float inputs, at 50 digits), then the activation is applied in mpmath —
ReLU, leaky ReLU (slope 0.01), σ, tanh, GELU = x·Φ(x) computed as (x/2)·erfc(−x/√2) so that
nothing cancels for x ≪ 0, SiLU = x·σ(x) — and only the final value is rounded to float64.
(mlp_forward, mlp_backward, linear_regression_fit and xor_network return tuples or lists and
are checked against independent references in conformance/properties/layers.py and
conformance/test_layers.py instead.)

``ORACLES`` and ``FLOORS`` plug into conformance/oracles.py; the ulp budgets are filed with the
records (conformance/records/layers.py).
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


def _sigmoid(z):
    if z == _INF:
        return mpmath.mpf(1)
    if z == -_INF:
        return mpmath.mpf(0)
    return 1 / (1 + mpmath.exp(-z))


def _gelu(z):
    if z == -_INF:
        return mpmath.mpf(0)  # x·Φ(x) → 0 as x → −∞ (the spec's limit)
    return z / 2 * mpmath.erfc(-z / mpmath.sqrt(2))


def _silu(z):
    if z == -_INF:
        return mpmath.mpf(0)
    return z * _sigmoid(z)


_ACT = {
    None: lambda z: z,
    "identity": lambda z: z,
    "relu": lambda z: z if z > 0 else mpmath.mpf(0),
    "leaky_relu": lambda z: z if z >= 0 else mpmath.mpf("0.01") * z,
    "sigmoid": _sigmoid,
    "tanh": mpmath.tanh,
    "gelu": _gelu,
    "silu": _silu,
}


def _apply(name, z) -> float:
    return math.nan if mpmath.isnan(z) else _f64(_ACT[name](z))


def _dot(xs, ws) -> mpmath.mpf:
    terms = [_mp(a) * _mp(b) for a, b in zip(xs, ws, strict=True)]  # 53×53 bits: exact
    if any(mpmath.isnan(t) for t in terms):
        return mpmath.mpf("nan")
    return mpmath.fsum(terms)


@_at_dps
def dense(x, W, b=None, /, *, activation=None):
    x, W = np.asarray(x), np.asarray(W)
    if x.shape[-1] != W.shape[1]:
        raise ValueError(f"x {x.shape} and W {W.shape} do not chain")
    out = np.empty((*x.shape[:-1], W.shape[0]), dtype=np.float64)
    for idx in np.ndindex(x.shape[:-1]):
        for j in range(W.shape[0]):
            z = _dot(x[idx], W[j])
            if b is not None:
                z = z + _mp(np.asarray(b)[j])
            out[(*idx, j)] = _apply(activation, z)
    return out


@_at_dps
def neuron(x, w, b, /, *, activation):
    x, w = np.asarray(x), np.asarray(w)
    out = np.empty(x.shape[:-1], dtype=np.float64)
    for idx in np.ndindex(out.shape):
        out[idx] = _apply(activation, _dot(x[idx], w) + _mp(np.asarray(b)[()]))
    return out


@_at_dps
def dropout(x, u, /, *, rate):
    x, u = np.asarray(x), np.asarray(u)
    p = _mp(rate)
    if not 0 <= p < 1:
        raise ValueError("rate must be in [0, 1)")
    out = np.empty(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        keep = 1 if _mp(u[idx]) >= p else 0
        xi = _mp(x[idx])
        # IEEE multiplication by the mask: a dropped NaN or ∞ gives NaN (0·∞), as the spec says
        val = xi * keep / (1 - p) if mpmath.isfinite(xi) or keep else mpmath.mpf("nan")
        out[idx] = math.nan if mpmath.isnan(val) else _f64(val)
    return out


@_at_dps
def residual(x, fx, /):
    x, fx = np.asarray(x), np.asarray(fx)
    out = np.empty(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        s = _mp(x[idx]) + _mp(fx[idx])  # exact at 50 digits for these inputs' exponent range
        out[idx] = math.nan if mpmath.isnan(s) else _f64(s)
    return out


ORACLES: dict[str, Callable] = {f.__name__: f for f in (dense, neuron, dropout, residual)}


def _dot_magnitude(x, W, b):
    """Σ|xᵢ||Wⱼᵢ| + |bⱼ| per output: the scale of a dot product's rounding error."""
    x = np.abs(np.asarray(x, dtype=np.float64))
    W = np.abs(np.asarray(W, dtype=np.float64))
    m = x @ W.T
    if b is not None:
        m = m + np.abs(np.asarray(b, dtype=np.float64))
    return np.where(np.isfinite(m), m, 0.0)


def _dense_floor(reference, args, kwargs):
    # normwise: a dot product is accurate to n·u relative to Σ|xᵢwᵢ| + |b|, not to its
    # (possibly cancelled) value; the activations are Lipschitz with constant ≤ 1.13 (GELU)
    x, W = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    return _dot_magnitude(x, W, b)


def _neuron_floor(reference, args, kwargs):
    x, w, b = args
    return _dot_magnitude(x, np.asarray(w)[None, :], np.asarray(b).reshape(1))[..., 0]


def _relative(reference, args, kwargs):
    return 0.0


FLOORS: dict[str, Callable] = {
    "dense": _dense_floor,
    "neuron": _neuron_floor,
    # one multiplication by 0 or 1 and one division: relative to the value itself
    "dropout": _relative,
    # one correctly rounded addition of exact inputs: relative to the result
    "residual": _relative,
}
