r"""Tier R oracles of §7 Normalisation: batch, layer and RMS norm in mpmath at 50 digits.

Each oracle takes the spec call's host NumPy arguments and options and returns the exact
result rounded once to float64. The inputs convert exactly to mpmath. The mean is an exact
sum divided by n; the deviations, the variance and the root are taken at 50 digits. Nothing
from ``spec`` is imported.

The scale (``FLOORS``). A normalisation layer is ill-conditioned when the values are large
compared with their spread: an offset of 1e4 and a spread of 1 amplify an input perturbation
of u·|x| into an output change of about u·|x|/σ. So the error is measured normwise at the
size of the terms the formula combines: |γⱼ|·max_k|x_k|/σ + |βⱼ|, where
σ = √(var + ε) (for RMSNorm, √(mean x² + ε)). This is the scale at which a backward-stable
evaluation is accurate to a few units of rounding. The named variants (ε after the root, the
unbiased variance, Gemma's 1 + γ) are computed from their own definitions, and their scale
uses their own denominator (σ + ε) and weight (|γ + offset|).

The budgets, from the operation counts at this scale, are in the records
(conformance/records/normalization.py).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

import mpmath
import numpy as np

from .mp import DPS
from .mp import f64 as _f64
from .mp import mp as _mp

__all__ = ["FLOORS", "ORACLES"]


def _row_norm(row, g, b, eps, *, centre: bool, eps_form="inside_root", correction=0,
              gamma_offset=0.0):
    """One slice: [γⱼ (xⱼ − μ)/√(σ² + ε) + βⱼ] (centre) or [γⱼ xⱼ/√(mean x² + ε)]; with
    eps_form="after_root" the root is σ + ε, with `correction` the variance divides by
    n − correction, with `gamma_offset` the weight is γ + offset."""
    xs = [_mp(t) for t in row]
    n = len(xs)
    mu = mpmath.fsum(xs) / n if centre else mpmath.mpf(0)
    d = [t - mu for t in xs]
    var = mpmath.fsum(t * t for t in d) / (n - _mp(correction))
    s = mpmath.sqrt(var + eps) if eps_form == "inside_root" else mpmath.sqrt(var) + eps
    offset = _mp(gamma_offset)
    out = []
    for dj, gj, bj in zip(d, g, b):
        if s == 0:  # every deviation is 0 too: 0/0
            out.append(math.nan)
            continue
        out.append(_f64((_mp(gj) + offset) * (dj / s) + _mp(bj)))
    return out


def _eps(eps) -> mpmath.mpf:
    eps = float(eps)
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a non-negative finite number, got {eps!r}")
    return mpmath.mpf(eps)


def _last_axis(x, gamma, beta, eps, *, centre: bool, **form):
    x = np.asarray(x)
    n = x.shape[-1]
    g = np.broadcast_to(np.asarray(gamma), (n,))
    b = np.broadcast_to(np.asarray(beta), (n,))
    out = np.empty(x.shape, dtype=np.float64)
    with mpmath.workdps(DPS):
        e = _eps(eps)
        for idx in np.ndindex(x.shape[:-1]):
            out[idx] = _row_norm(x[idx], g, b, e, centre=centre, **form)
    return out


def _batch_axes(ndim: int, axis) -> tuple[int, ...]:
    axes = axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted(operator.index(a) % ndim for a in axes))


def _batch_layout(x, axis):
    """x with the batch axes moved last and flattened: (features..., m), and how to undo it."""
    x = np.asarray(x)
    axes = _batch_axes(x.ndim, axis)
    kept = [i for i in range(x.ndim) if i not in axes]
    moved = np.transpose(x, kept + list(axes))
    features = tuple(x.shape[i] for i in kept)
    flat = moved.reshape((*features, -1))

    def undo(result):
        back = result.reshape(moved.shape)
        return np.transpose(back, np.argsort(kept + list(axes)))

    return flat, features, undo


def batch_norm(x, gamma, beta, /, *, eps=1e-5, axis=0, eps_form="inside_root", correction=0):
    flat, features, undo = _batch_layout(x, axis)
    g = np.broadcast_to(np.asarray(gamma), features)
    b = np.broadcast_to(np.asarray(beta), features)
    out = np.empty(flat.shape, dtype=np.float64)
    with mpmath.workdps(DPS):
        e = _eps(eps)
        for idx in np.ndindex(features):
            m = flat.shape[-1]
            out[idx] = _row_norm(flat[idx], [g[idx]] * m, [b[idx]] * m, e, centre=True,
                                 eps_form=eps_form, correction=correction)
    return undo(out)


def layer_norm(x, gamma, beta, /, *, eps=1e-5, eps_form="inside_root", correction=0):
    return _last_axis(x, gamma, beta, eps, centre=True, eps_form=eps_form,
                      correction=correction)


def rms_norm(x, gamma, /, *, eps=1e-6, gamma_offset=0.0, eps_form="inside_root"):
    return _last_axis(x, gamma, np.zeros(()), eps, centre=False, eps_form=eps_form,
                      gamma_offset=gamma_offset)


ORACLES: dict[str, Callable] = {f.__name__: f for f in (batch_norm, layer_norm, rms_norm)}


# ---------------------------------------------------------------------------------------------
# scales: |γ|·max|x|/σ + |β| per output element, σ from float64 statistics (a scale only)
def _scale(x, axes, eps, *, centre: bool, eps_form="inside_root", correction=0, **_):
    """max|x|/D per slice, D the form's denominator (√(σ² + ε) or σ + ε), from the slice
    divided by its largest magnitude, so values near 1e200 (whose squares overflow float64)
    and tiny ones (whose squares underflow) get their scale too."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        big = np.max(np.abs(x), axis=axes, keepdims=True)
        s = np.where((big > 0) & np.isfinite(big), big, 1.0)
        xs = x / s
        n = np.prod([x.shape[a] for a in np.atleast_1d(axes)])
        mu = np.mean(xs, axis=axes, keepdims=True) if centre else 0.0
        var = np.sum((xs - mu) ** 2, axis=axes, keepdims=True) / (n - float(correction))
        e = float(eps) / s
        denom = np.sqrt(var + e / s) if eps_form == "inside_root" else np.sqrt(var) + e
        return np.where(denom > 0, (big / s) / np.where(denom > 0, denom, 1.0), np.inf)


def _layer_floor(reference, args, kwargs):
    x, gamma, beta = args
    options = {k: val for k, val in kwargs.items() if k != "eps"}
    s = _scale(x, -1, kwargs.get("eps", 1e-5), centre=True, **options)
    return np.abs(np.asarray(gamma, dtype=np.float64)) * s + np.abs(np.asarray(beta,
                                                                             dtype=np.float64))


def _batch_floor(reference, args, kwargs):
    x, gamma, beta = (np.asarray(a, dtype=np.float64) for a in args)
    axes = _batch_axes(x.ndim, kwargs.get("axis", 0))
    kept = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    features = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    g = np.broadcast_to(gamma, features).reshape(kept)
    b = np.broadcast_to(beta, features).reshape(kept)
    options = {k: val for k, val in kwargs.items() if k not in ("eps", "axis")}
    return np.abs(g) * _scale(x, axes, kwargs.get("eps", 1e-5), centre=True,
                              **options) + np.abs(b)


def _rms_floor(reference, args, kwargs):
    x, gamma = args
    options = {k: val for k, val in kwargs.items() if k != "eps"}
    s = _scale(x, -1, kwargs.get("eps", 1e-6), centre=False, **options)
    weight = np.asarray(gamma, dtype=np.float64) + float(kwargs.get("gamma_offset", 0.0))
    return np.abs(weight) * s


#: normwise at the size of the combined terms, |γ|·max|x|/σ + |β| (the problem's condition)
FLOORS: dict[str, Callable] = {
    "batch_norm": _batch_floor,
    "layer_norm": _layer_floor,
    "rms_norm": _rms_floor,
}
