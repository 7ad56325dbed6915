r"""Tier R oracles for §11, decoding: exact arithmetic on the exact input values.

Nothing from ``spec`` is imported. Every input element is converted exactly to mpmath (50
significant digits, where the sums and quotients of ≤ 16 float64 numbers are exact or nearly),
the decisions (which tokens are kept, which index a uniform selects) are taken in exact
arithmetic, and only the final values are rounded, correctly, to float64.

Conventions, matching the spec's docstrings: filters work along the last axis; ties are broken
towards the lower index; a row holding NaN gives NaN; the nucleus is the smallest prefix of the
tokens sorted by probability whose mass reaches p·Σ P (p = 1 keeps every token); a draw is the
first index whose cumulative mass exceeds u·Σ P, never a zero-probability token.

``ORACLES`` maps each equation to its oracle, ``FLOORS`` to the scale of its ulp measure; the
budgets per dtype, with their derivation, are in conformance/records/decoding.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import mpmath
import numpy as np

from .mp import at_dps as _at_dps
from .mp import f64 as _f64
from .mp import mp as _mp


def _rows(probs):
    probs = np.asarray(probs)
    if probs.ndim < 1 or probs.shape[-1] == 0:
        raise ValueError("probs must have a non-empty last axis")
    return probs


def _order(row: list) -> list[int]:
    """Indices sorted by probability, largest first, the lower index first among ties."""
    return sorted(range(len(row)), key=lambda i: (-row[i], i))


def _renormalised(row: list, keep: set[int]) -> list[float]:
    total = mpmath.fsum(row[i] for i in keep)
    return [_f64(row[i] / total) if i in keep else 0.0 for i in range(len(row))]


def _filter(probs, choose) -> np.ndarray:
    probs = _rows(probs)
    out = np.empty(probs.shape, dtype=np.float64)
    for idx in np.ndindex(probs.shape[:-1]):
        row = [_mp(x) for x in probs[idx]]
        if any(mpmath.isnan(x) for x in row):
            out[idx] = math.nan
            continue
        if any(x < 0 for x in row) or not any(x > 0 for x in row):
            raise ValueError("each row must be non-negative with some mass")
        out[idx] = _renormalised(row, choose(row))
    return out


@_at_dps
def temperature_scale(logits, /, *, temperature):
    z = np.asarray(logits)
    t = _mp(temperature)
    if not t > 0 or not mpmath.isfinite(t):
        raise ValueError("temperature must be positive and finite")
    out = np.empty(z.shape, dtype=np.float64)
    for idx in np.ndindex(z.shape):
        out[idx] = _f64(_mp(z[idx]) / t)
    return out


@_at_dps
def top_k_filter(probs, /, *, k, ties="first"):
    def top(row):
        order = _order(row)
        if ties == "all":  # every token tied with the k-th largest
            return {i for i in order if row[i] >= row[order[k - 1]]}
        return set(order[:k])

    return _filter(probs, top)


@_at_dps
def top_p_filter(probs, /, *, p, crossing="keep"):
    target = _mp(p)

    def nucleus(row):
        order = _order(row)
        if target >= 1:
            return set(order)
        goal = target * mpmath.fsum(row)
        kept, mass = set(), mpmath.mpf(0)
        for i in order:
            if crossing == "drop" and kept and mass + row[i] > goal:
                break  # the largest prefix whose mass stays ≤ p·Σ P, never empty
            kept.add(i)
            mass += row[i]
            if crossing == "keep" and mass >= goal:
                break  # the smallest prefix whose mass reaches p·Σ P
        return kept

    return _filter(probs, nucleus)


@_at_dps
def sample(probs, u, /):
    probs, u = _rows(probs), np.asarray(u)
    shape = np.broadcast_shapes(probs.shape[:-1], u.shape)
    rows = np.broadcast_to(probs, (*shape, probs.shape[-1]))
    draws = np.broadcast_to(u, shape)
    out = np.empty(shape, dtype=np.float64)
    for idx in np.ndindex(shape):
        row = [_mp(x) for x in rows[idx]]
        target = _mp(draws[idx]) * mpmath.fsum(row)
        cdf, chosen = mpmath.mpf(0), None
        for i, x in enumerate(row):
            cdf += x
            if cdf > target:
                chosen = i
                break
        if chosen is None:  # u·Σ P reached the total: the last token with positive mass
            chosen = max(i for i, x in enumerate(row) if x > 0)
        out[idx] = float(chosen)
    return out


ORACLES: dict[str, Callable] = {
    f.__name__: f for f in (temperature_scale, top_k_filter, top_p_filter, sample)
}


def _relative(reference, args, kwargs):
    return 0.0


#: each value is judged relative to itself: the quotients z/T and P_i/Σ_kept P of non-negative
#: terms never cancel, and an index must be exact (any other index is an infinite error).
FLOORS: dict[str, Callable] = {name: _relative for name in ORACLES}
