r"""Tier R oracle for §10 Transformer: the position-wise MLP (``feed_forward``) in mpmath.

Written independently of ``spec``: inputs are taken exactly as mpf, the two affine maps are
exact sums of exact products, the activation is evaluated from its definition at 50 digits
(GELU = x(1 + erf(x/√2))/2, its tanh form x(1 + tanh(√(2/π)(x + 0.044715x³)))/2, ReLU,
SiLU = x/(1 + e^{−x}), SwiGLU = SiLU(gate)·up on the two halves of the stacked w1), and only the
result is rounded to float64. The other transformer equations compose attention,
normalisation and embeddings whose accuracy is measured in their own chapters; they are
checked here in tiers S, P, D, X and E.

Floor. First-order rounding analysis with unit roundoff u, elementwise absolute values, n₁ =
d_in + 1 and n₂ = d_ff + 1 terms per dot product (bias included):

* z = xW₁ᵀ + b₁ has |δz| ≤ n₁·u·Z, Z = |x||W₁|ᵀ + |b₁|;
* φ is Lipschitz with |φ'| ≤ 1.2 for GELU (max 1.129), tanh-GELU, ReLU and SiLU (max 1.100),
  so |δh| ≤ n₁·u·M + 4u·|h| with M = 1.2·Z (SwiGLU: M = 1.2·Z_g·|up| + |SiLU(g)|·Z_up) and
  4 units for φ's own evaluation;
* o = hW₂ᵀ + b₂ then has |δo| ≤ u·(|W₂|(n₁M + 4|h|) + n₂(|h||W₂|ᵀ + |b₂|)) = u·F,

and F is the floor: the error is below one unit in the last place there (a spacing exceeds u
times the magnitude). The budget (conformance/records/transformer.py) allows 4 for the
second-order terms and the activations' polynomial approximations (Cody's erf in the spec).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

from .mp import DPS
from .mp import mp as _mp

__all__ = ["FLOORS", "ORACLES"]


def _activation(name: str, z):
    if name == "gelu":
        return z * (1 + mpmath.erf(z / mpmath.sqrt(2))) / 2
    if name == "gelu_tanh":
        c = mpmath.sqrt(2 / mpmath.pi)
        return z * (1 + mpmath.tanh(c * (z + mpmath.mpf("0.044715") * z ** 3))) / 2
    if name == "relu":
        return z if z > 0 else mpmath.mpf(0)
    if name == "silu":
        return z / (1 + mpmath.exp(-z))
    raise ValueError(f"unknown activation {name!r}")


def feed_forward(x, w1, b1, w2, b2, /, *, activation="gelu"):
    x, w1, w2 = (np.asarray(a) for a in (x, w1, w2))
    with mpmath.workdps(DPS):
        rows = x.reshape(-1, x.shape[-1])
        out = np.empty((rows.shape[0], w2.shape[0]), dtype=np.float64)
        for r, row in enumerate(rows):
            xs = [_mp(a) for a in row]
            z = []
            for j in range(w1.shape[0]):
                zj = mpmath.fsum(a * _mp(w) for a, w in zip(xs, w1[j]))
                z.append(zj + (_mp(b1[j]) if b1 is not None else 0))
            if activation == "swiglu":
                half = len(z) // 2
                h = [_activation("silu", g) * u for g, u in zip(z[:half], z[half:])]
            else:
                h = [_activation(activation, zj) for zj in z]
            for i in range(w2.shape[0]):
                o = mpmath.fsum(hj * _mp(w) for hj, w in zip(h, w2[i]))
                if b2 is not None:
                    o += _mp(b2[i])
                out[r, i] = float(o)
        return out.reshape(*x.shape[:-1], w2.shape[0])


ORACLES = {"feed_forward": feed_forward}


def _silu(z):
    return z / (1 + np.exp(-z))


def _gelu(z):
    from scipy.special import erf  # a float64 estimate is enough for a floor

    return z * (1 + erf(z / math.sqrt(2))) / 2


def _feed_forward_floor(reference, args, kwargs):
    x, w1, b1, w2, b2 = (None if a is None else np.asarray(a, dtype=np.float64) for a in args)
    activation = kwargs.get("activation", "gelu")
    n1, n2 = x.shape[-1] + 1, w2.shape[1] + 1
    z = x @ w1.T + (0.0 if b1 is None else b1)
    big_z = np.abs(x) @ np.abs(w1).T + (0.0 if b1 is None else np.abs(b1))
    if activation == "swiglu":
        half = z.shape[-1] // 2
        g, up = z[..., :half], z[..., half:]
        h = _silu(g) * up
        m = 1.2 * big_z[..., :half] * np.abs(up) + np.abs(_silu(g)) * big_z[..., half:]
    else:
        h = {"gelu": _gelu, "gelu_tanh": _gelu, "relu": lambda a: np.maximum(a, 0.0),
             "silu": _silu}[activation](z)
        m = 1.2 * big_z
    a2 = np.abs(w2)
    return ((n1 * m + 4 * np.abs(h)) @ a2.T
            + n2 * (np.abs(h) @ a2.T + (0.0 if b2 is None else np.abs(b2))))


#: see the module docstring for the analysis behind the floor
FLOORS = {"feed_forward": _feed_forward_floor}
