r"""Tier R oracles of §8 Embeddings and positions, independent of the spec code.

Each oracle takes the spec call's host NumPy arguments and options and returns the exact
result as float64 NumPy (indices as int64). Lookups (`embedding`, `one_hot`) are exact
closed forms. Everything else is computed in mpmath at 50 digits. The angles p·base^(−2i/d)
use the exact position and base, and the exponent −2i/d as an exact fraction at 50 digits.
The cosines use exact dot products and roots. Nothing from ``spec`` is imported.

The cosine follows the convention of ``cosine_similarity`` (EQUATIONS.md §1):
x·y/(max(‖x‖, ε)·max(‖y‖, ε)) with ε = 1e-8, so a zero vector has cosine 0. Rankings sort
by decreasing cosine, and exact ties go to the lower index.

Scales (``FLOORS``, what an error is measured against): 0 for the exact equations
(`embedding`, `one_hot`, `analogy`, `cosine_top_k`: a copy, an indicator or an index);
Σⱼ|hⱼEᵥⱼ| for `tied_logits` (a dot product is accurate normwise); max(1, |pθᵢ|) for
`sinusoidal_positions` (the absolute condition of sin/cos at a float angle);
(|x_a| + |x_b|)·max(1, |pθᵢ|) for `rope`. The ulp budgets at these scales, with the operation
counts behind them, are filed with the records (conformance/records/embeddings.py).
"""

from __future__ import annotations

from collections.abc import Callable

import mpmath
import numpy as np

from .mp import DPS
from .mp import f64 as _f64
from .mp import mp as _mp

__all__ = ["FLOORS", "ORACLES"]

#: `cosine_similarity`'s default ε
COS_EPS = 1e-8


# ---------------------------------------------------------------------------------------------
# exact lookups
def embedding(table, tokens, /):
    table, tokens = np.asarray(table, dtype=np.float64), np.asarray(tokens)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= table.shape[0]):
        raise ValueError("token ids out of range")
    return table[tokens]


def one_hot(labels, num_classes, /, *, dtype=None):
    labels, k = np.asarray(labels), int(num_classes)
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError("labels out of range")
    return (labels[..., None] == np.arange(k)).astype(np.float64)


# ---------------------------------------------------------------------------------------------
# mpmath
def tied_logits(h, table, /):
    h, table = np.asarray(h), np.asarray(table)
    out = np.empty((*h.shape[:-1], table.shape[0]), dtype=np.float64)
    with mpmath.workdps(DPS):
        rows = [[_mp(t) for t in row] for row in table]
        for idx in np.ndindex(h.shape[:-1]):
            hv = [_mp(t) for t in h[idx]]
            out[idx] = [_f64(mpmath.fsum(a * b for a, b in zip(hv, row))) for row in rows]
    return out


def _theta(i: int, dim: int, base) -> mpmath.mpf:
    """base^(−2i/d) at the working precision (the exponent an exact fraction)."""
    return mpmath.power(mpmath.mpf(float(base)), mpmath.mpf(-2 * i) / dim)


def sinusoidal_positions(num_positions, dim, /, *, base=10000.0, xp=None, dtype=None,
                         device=None):
    n, dim = int(num_positions), int(dim)
    out = np.empty((n, dim), dtype=np.float64)
    with mpmath.workdps(DPS):
        for i in range(dim // 2):
            theta = _theta(i, dim, base)
            for p in range(n):
                out[p, 2 * i] = _f64(mpmath.sin(p * theta))
                out[p, 2 * i + 1] = _f64(mpmath.cos(p * theta))
    return out


def _pairs(dim: int, layout: str):
    """The feature indices (a, b) of pair i, i = 0 … d/2 − 1."""
    if layout == "interleaved":
        return [(2 * i, 2 * i + 1) for i in range(dim // 2)]
    if layout == "half":
        return [(i, i + dim // 2) for i in range(dim // 2)]
    raise ValueError(f"unknown layout {layout!r}")


def _scaled_thetas(thetas: list, scaling) -> list:
    """The frequencies of a scaled RoPE at the working precision: linear θ/s; llama3 (Meta's
    apply_scaling) θ where 2π/θ < L/h, θ/s where 2π/θ > L/l, else the blend
    (1 − γ)θ/s + γθ with γ = (L/λ − l)/(h − l)."""
    if scaling is None or scaling.get("rope_type", scaling.get("type")) in (None, "default"):
        return thetas
    s = mpmath.mpf(float(scaling["factor"]))
    if scaling.get("rope_type", scaling.get("type")) == "linear":
        return [t / s for t in thetas]
    context = mpmath.mpf(float(scaling["original_max_position_embeddings"]))
    low, high = (mpmath.mpf(float(scaling[k])) for k in ("low_freq_factor", "high_freq_factor"))
    out = []
    for t in thetas:
        wavelength = 2 * mpmath.pi / t
        if wavelength < context / high:
            out.append(t)
        elif wavelength > context / low:
            out.append(t / s)
        else:
            gamma = (context / wavelength - low) / (high - low)
            out.append((1 - gamma) * t / s + gamma * t)
    return out


def rope(x, positions, /, *, base=10000.0, layout="interleaved", scaling=None):
    x = np.asarray(x)
    positions = np.broadcast_to(np.asarray(positions), x.shape[:-1])  # one row per sequence
    dim = x.shape[-1]
    out = np.empty(x.shape, dtype=np.float64)
    with mpmath.workdps(DPS):
        thetas = _scaled_thetas([_theta(i, dim, base) for i in range(dim // 2)], scaling)
        for idx in np.ndindex(x.shape[:-1]):
            p = _mp(positions[idx])
            for i, (a, b) in enumerate(_pairs(dim, layout)):
                c, s = mpmath.cos(p * thetas[i]), mpmath.sin(p * thetas[i])
                xa, xb = _mp(x[idx][a]), _mp(x[idx][b])
                out[(*idx, a)] = _f64(xa * c - xb * s)
                out[(*idx, b)] = _f64(xa * s + xb * c)
    return out


def _cosines(query, rows) -> list:
    """cos(query, row) for every row, with ‖·‖ clamped below at ε (a zero vector gives 0)."""
    eps = mpmath.mpf(COS_EPS)
    q = [_mp(t) for t in query]
    qn = max(mpmath.sqrt(mpmath.fsum(t * t for t in q)), eps)
    out = []
    for row in rows:
        r = [_mp(t) for t in row]
        rn = max(mpmath.sqrt(mpmath.fsum(t * t for t in r)), eps)
        out.append(mpmath.fsum(a * b for a, b in zip(q, r)) / (qn * rn))
    return out


def _ranking(cosines: list) -> list[int]:
    """Indices by decreasing cosine, exact ties to the lower index."""
    return sorted(range(len(cosines)), key=lambda j: (-cosines[j], j))


def analogy(table, a, b, c, /):
    table = np.asarray(table)
    a, b, c = np.broadcast_arrays(np.asarray(a), np.asarray(b), np.asarray(c))
    out = np.empty(a.shape, dtype=np.int64)
    with mpmath.workdps(DPS):
        for idx in np.ndindex(a.shape):
            ia, ib, ic = int(a[idx]), int(b[idx]), int(c[idx])
            target = [_mp(eb) - _mp(ea) + _mp(ec)
                      for ea, eb, ec in zip(table[ia], table[ib], table[ic])]
            cos = _cosines(target, table)
            out[idx] = next(j for j in _ranking(cos) if j not in (ia, ib, ic))
    return out


def cosine_top_k(query, docs, /, *, k):
    query, docs = np.asarray(query), np.asarray(docs)
    out = np.empty((*query.shape[:-1], int(k)), dtype=np.int64)
    with mpmath.workdps(DPS):
        for idx in np.ndindex(query.shape[:-1]):
            out[idx] = _ranking(_cosines(query[idx], docs))[: int(k)]
    return out


ORACLES: dict[str, Callable] = {
    f.__name__: f
    for f in (embedding, one_hot, tied_logits, sinusoidal_positions, rope, analogy,
              cosine_top_k)
}


# ---------------------------------------------------------------------------------------------
# scales
def _exact(reference, args, kwargs):
    return 0.0  # a copy, an indicator or an index is exact: any difference is an error


def _tied_floor(reference, args, kwargs):
    h, table = (np.abs(np.asarray(a, dtype=np.float64)) for a in args)
    return h @ table.T  # Σⱼ|hⱼEᵥⱼ|: a dot product is accurate normwise, not relatively


def _angles(positions, dim, base):
    theta = np.array([float(base) ** (-2.0 * i / dim) for i in range(dim // 2)])
    return np.abs(np.asarray(positions, dtype=np.float64))[..., None] * theta  # (..., d/2)


def _sinusoidal_floor(reference, args, kwargs):
    n, dim = int(args[0]), int(args[1])
    g = np.maximum(1.0, _angles(np.arange(n), dim, kwargs.get("base", 10000.0)))
    return np.repeat(g, 2, axis=1)  # the absolute condition of sin/cos at a float angle


def _rope_floor(reference, args, kwargs):
    x = np.abs(np.asarray(args[0], dtype=np.float64))
    positions = np.broadcast_to(np.asarray(args[1], dtype=np.float64), x.shape[:-1])
    dim = x.shape[-1]
    # the unscaled angles bound the scaled ones (every scaling only lowers θ)
    g = np.maximum(1.0, _angles(positions, dim, kwargs.get("base", 10000.0)))  # (..., T, d/2)
    floor = np.empty(x.shape, dtype=np.float64)
    for i, (a, b) in enumerate(_pairs(dim, kwargs.get("layout", "interleaved"))):
        size = (x[..., a] + x[..., b]) * g[..., i]
        floor[..., a] = size
        floor[..., b] = size
    return floor  # (|x_a| + |x_b|)·max(1, |pθ|): rotation error scales with the pair and angle


FLOORS: dict[str, Callable] = {
    "embedding": _exact,
    "one_hot": _exact,
    "analogy": _exact,
    "cosine_top_k": _exact,
    "tied_logits": _tied_floor,
    "sinusoidal_positions": _sinusoidal_floor,
    "rope": _rope_floor,
}
