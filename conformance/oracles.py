r"""Tier R oracles: the exact values of the probability and loss equations, from mpmath.

Every equation of ``spec/probability.py`` and ``spec/losses.py`` is implemented here a second
time, independently of the spec code (nothing from ``spec`` is imported), in mpmath at 50
significant digits. Each input element is converted exactly (``mpmath.mpf(float(x))`` is exact
for float32 and float64 values), the equation is evaluated in arbitrary-exponent arithmetic where
nothing overflows or underflows, and only the final value is rounded, correctly, to float64.
The result is the reference that tier R of the conformance suite measures every backend's
float32 and float64 output against, in units in the last place (:func:`ulp_error`) at the scale
:func:`scale_floor` chooses for each equation.

Where the float formula would cancel catastrophically even at 50 digits (1 − softmax(z)_y when
softmax(z)_y ≈ 1 − 1e−80, say) the oracle uses an algebraically equal form without the
cancellation, so the reference is right to the last float64 bit, not merely to 50 digits.

Conventions, matching the spec's docstrings:

* ``axis`` is moved last with :func:`numpy.moveaxis` and each slice is evaluated on its own;
  for the two-array equations (cross_entropy, kl_divergence, bayes_posterior) the inputs are
  broadcast first and ``axis`` indexes the broadcast shape.
* A NaN anywhere in a reduced slice (in either input) gives NaN for the whole slice.
* Infinities follow the arithmetic of the extended reals: a −∞ logit has probability exactly
  0; logsumexp of an all −∞ slice is −∞ and of a slice holding +∞ is +∞; softmax is
  exp(zᵢ − logsumexp(z)), so a +∞ logit gets ∞ − ∞ = NaN and the others exp(−∞) = 0, and an
  all −∞ slice is 0/0 = NaN; 0·log 0 = 0 (and 0·log q = 0 for every q); Q(x) = 0 where
  P(x) > 0 gives a cross-entropy of +∞.
* The oracles do not re-check the spec's argument validation; they raise ``ValueError`` only
  where the mathematics is undefined (log of a negative probability, temperature or std ≤ 0,
  base 1, an empty reduced axis, a label outside [0, K)).

The public API: ``ORACLES`` (equation name → oracle), :func:`ulp_error` and
:func:`scale_floor`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import NamedTuple

import mpmath
import numpy as np

__all__ = ["ORACLES", "scale_floor", "ulp_error"]

from .mp import at_dps as _at_dps
from .mp import f64 as _f64
from .mp import mp as _mp
from .precision import finfo, host_dtype

_NAN = mpmath.mpf("nan")
_INF = mpmath.mpf("inf")


def _axis(ndim: int, axis) -> int:
    axis = operator.index(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for {ndim} dimension(s)")
    return axis % ndim


def _moved(a, axis):
    """`a` as NumPy with `axis` moved last (and that axis, normalised); ValueError if 0-d/empty."""
    a = np.asarray(a)
    if a.ndim < 1:
        raise ValueError("the input must have at least 1 dimension")
    axis = _axis(a.ndim, axis)
    if a.shape[axis] == 0:
        raise ValueError(f"length 0 along axis {axis}")
    return np.moveaxis(a, axis, -1), axis


def _vals(row) -> list:
    return [_mp(x) for x in row]


def _has_nan(*rows) -> bool:
    return any(mpmath.isnan(x) for row in rows for x in row)


def _positive(value, name: str) -> mpmath.mpf:
    value = _mp(value)
    if not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value}")
    return value


def _check_nonnegative(row, name: str) -> None:
    if any(x < 0 for x in row):
        raise ValueError(f"{name} must be non-negative (its logarithm is taken)")


# ---------------------------------------------------------------------------------------------
# the log-sum-exp of one slice, in parts that let callers avoid cancellation
class _LSE(NamedTuple):
    kind: str  # "finite", "nan", "posinf" (a +∞ entry), "neginf" (all entries −∞)
    m: mpmath.mpf | None = None  # the max
    k: int = -1  # the first index of the max
    e: list | None = None  # e_j = exp(z_j − m), so e_k = 1
    total: mpmath.mpf | None = None  # S = Σ e_j = 1 + T
    rest: mpmath.mpf | None = None  # T = Σ_{j≠k} e_j, without the cancellation of S − 1

    @property
    def value(self) -> mpmath.mpf:
        """logsumexp of the slice: m + log1p(T), or its exact non-finite value."""
        if self.kind == "finite":
            return self.m + mpmath.log1p(self.rest)
        return {"nan": _NAN, "posinf": _INF, "neginf": -_INF}[self.kind]

    def one_minus(self, i: int) -> mpmath.mpf:
        """S − e_i = S·(1 − softmax_i), computed without cancellation."""
        # Only i = k can hold most of S (e_i ≤ e_k = 1 for every i); any other i has
        # S − e_i ≥ e_k ≥ e_i, so S − e_i loses at most one bit.
        return self.rest if i == self.k else self.total - self.e[i]


def _lse_parts(z: list) -> _LSE:
    if _has_nan(z):
        return _LSE("nan")
    if any(x == _INF for x in z):
        return _LSE("posinf")
    finite = [j for j, x in enumerate(z) if x != -_INF]
    if not finite:
        return _LSE("neginf")
    k = max(finite, key=lambda j: z[j])  # max() keeps the first of equal maxima
    m = z[k]
    e = [mpmath.exp(x - m) for x in z]  # exp(−∞) = 0 exactly
    rest = mpmath.fsum(e[j] for j in range(len(e)) if j != k)
    return _LSE("finite", m, k, e, 1 + rest, rest)


def _softmax_row(z: list, parts: _LSE) -> list:
    if parts.kind == "finite":
        return [ej / parts.total for ej in parts.e]
    lse = parts.value  # exp(z_i − lse): NaN at +∞ entries, 0 elsewhere; NaN if all −∞
    return [mpmath.exp(x - lse) for x in z]


def _out_like(moved):
    return np.empty(moved.shape, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# the oracles
@_at_dps
def softmax(z, /, *, axis=-1, temperature=1.0):
    moved, ax = _moved(z, axis)
    t = _positive(temperature, "temperature")
    out = _out_like(moved)
    for idx in np.ndindex(moved.shape[:-1]):
        row = [x / t for x in _vals(moved[idx])]
        out[idx] = [_f64(s) for s in _softmax_row(row, _lse_parts(row))]
    return np.moveaxis(out, -1, ax)


@_at_dps
def log_softmax(z, /, *, axis=-1):
    moved, ax = _moved(z, axis)
    out = _out_like(moved)
    for idx in np.ndindex(moved.shape[:-1]):
        row = _vals(moved[idx])
        p = _lse_parts(row)
        if p.kind == "finite":
            # (z_i − m) ≤ 0 and −log1p(T) ≤ 0: a sum of two non-positive terms, no cancellation
            # (the textbook z_i − lse cancels for the entry whose probability is ≈ 1).
            vals = [(x - p.m) - mpmath.log1p(p.rest) for x in row]
        else:
            vals = [x - p.value for x in row]
        out[idx] = [_f64(x) for x in vals]
    return np.moveaxis(out, -1, ax)


@_at_dps
def logsumexp(z, /, *, axis=-1, keepdims=False):
    moved, ax = _moved(z, axis)
    out = np.empty(moved.shape[:-1], dtype=np.float64)
    for idx in np.ndindex(moved.shape[:-1]):
        out[idx] = _f64(_lse_parts(_vals(moved[idx])).value)
    return np.expand_dims(out, ax) if keepdims else out


@_at_dps
def softmax_jacobian(z, /, *, axis=-1):
    moved, _ = _moved(z, axis)
    n = moved.shape[-1]
    out = np.empty((*moved.shape, n), dtype=np.float64)  # the axis moved last, then n × n
    for idx in np.ndindex(moved.shape[:-1]):
        row = _vals(moved[idx])
        p = _lse_parts(row)
        s = _softmax_row(row, p)
        for i in range(n):
            for j in range(n):
                if i != j:
                    v = -s[i] * s[j]
                elif p.kind == "finite":
                    v = s[i] * (p.one_minus(i) / p.total)  # s_i(1 − s_i), no cancellation
                else:
                    v = s[i] - s[i] * s[i]
                out[(*idx, i, j)] = _f64(v)
    return out


@_at_dps
def softmax_vjp(z, g, /, *, axis=-1):
    z, g = np.asarray(z), np.asarray(g)
    if z.shape != g.shape:
        raise ValueError(f"z and g must have the same shape, got {z.shape} and {g.shape}")
    mz, ax = _moved(z, axis)
    mg, _ = _moved(g, axis)
    out = _out_like(mz)
    for idx in np.ndindex(mz.shape[:-1]):
        zr, gr = _vals(mz[idx]), _vals(mg[idx])
        if _has_nan(zr, gr):
            out[idx] = math.nan
            continue
        p = _lse_parts(zr)
        s = _softmax_row(zr, p)
        if p.kind == "finite" and all(mpmath.isfinite(x) for x in gr):
            # J^T g is unchanged by g → g − c (Σ_i J_ij = 0); c = g_k, the gradient at the
            # largest probability, removes the cancellation g_k − <g, s> when s_k ≈ 1.
            gk = gr[p.k]
            gr = [x - gk for x in gr]
            dot = mpmath.fsum(ej * x for ej, x in zip(p.e, gr, strict=True)) / p.total
        else:
            dot = mpmath.fsum(si * x for si, x in zip(s, gr, strict=True))
        out[idx] = [_f64(si * (x - dot)) for si, x in zip(s, gr, strict=True)]
    return np.moveaxis(out, -1, ax)


def _xlogy(x, y) -> mpmath.mpf:
    """x·log y with 0·log y = 0 for every y (the caller has ruled out NaN)."""
    return mpmath.mpf(0) if x == 0 else x * mpmath.log(y)


@_at_dps
def entropy(p, /, *, axis=-1, base=None):
    moved, _ = _moved(p, axis)
    log_base = None
    if base is not None:
        b = _positive(base, "base")
        if b == 1:
            raise ValueError("base must not be 1 (log 1 = 0)")
        log_base = mpmath.log(b)
    out = np.empty(moved.shape[:-1], dtype=np.float64)
    for idx in np.ndindex(moved.shape[:-1]):
        row = _vals(moved[idx])
        if _has_nan(row):
            out[idx] = math.nan
            continue
        _check_nonnegative(row, "p")
        h = -mpmath.fsum(_xlogy(x, x) for x in row)
        out[idx] = _f64(h if log_base is None else h / log_base)
    return out


def _pair_slices(p, q, axis):
    """p and q broadcast, `axis` (of the broadcast shape) moved last: (moved p, moved q)."""
    p, q = np.broadcast_arrays(np.asarray(p), np.asarray(q))
    mp_, _ = _moved(p, axis)
    mq, _ = _moved(q, axis)
    return mp_, mq


@_at_dps
def cross_entropy(p, q, /, *, axis=-1):
    mp_, mq = _pair_slices(p, q, axis)
    out = np.empty(mp_.shape[:-1], dtype=np.float64)
    for idx in np.ndindex(mp_.shape[:-1]):
        pr, qr = _vals(mp_[idx]), _vals(mq[idx])
        if _has_nan(pr, qr):
            out[idx] = math.nan
            continue
        _check_nonnegative(pr, "p")
        _check_nonnegative(qr, "q")
        # log 0 = −∞, so Q(x) = 0 where P(x) > 0 contributes +∞
        out[idx] = _f64(-mpmath.fsum(_xlogy(a, b) for a, b in zip(pr, qr, strict=True)))
    return out


def _kl_term(a, b) -> mpmath.mpf:
    if a == 0:
        return mpmath.mpf(0)
    if mpmath.isfinite(a) and mpmath.isfinite(b) and b > 0:
        return a * mpmath.log(a / b)  # accurate when a ≈ b, where log a − log b would cancel
    return a * mpmath.log(a) - a * mpmath.log(b)  # the spec's form, for 0 and ∞


@_at_dps
def kl_divergence(p, q, /, *, axis=-1):
    mp_, mq = _pair_slices(p, q, axis)
    out = np.empty(mp_.shape[:-1], dtype=np.float64)
    for idx in np.ndindex(mp_.shape[:-1]):
        pr, qr = _vals(mp_[idx]), _vals(mq[idx])
        if _has_nan(pr, qr):
            out[idx] = math.nan
            continue
        _check_nonnegative(pr, "p")
        _check_nonnegative(qr, "q")
        out[idx] = _f64(mpmath.fsum(_kl_term(a, b) for a, b in zip(pr, qr, strict=True)))
    return out


@_at_dps
def perplexity(log_probs, /, *, axis=-1):
    moved, _ = _moved(log_probs, axis)
    n = moved.shape[-1]
    out = np.empty(moved.shape[:-1], dtype=np.float64)
    for idx in np.ndindex(moved.shape[:-1]):
        row = _vals(moved[idx])
        out[idx] = math.nan if _has_nan(row) else _f64(mpmath.exp(-mpmath.fsum(row) / n))
    return out


@_at_dps
def bayes_posterior(likelihood, prior, /, *, axis=-1):
    ml, mpr = _pair_slices(likelihood, prior, axis)
    ax = _axis(ml.ndim, axis)
    out = _out_like(ml)
    for idx in np.ndindex(ml.shape[:-1]):
        lr, pr = _vals(ml[idx]), _vals(mpr[idx])
        if _has_nan(lr, pr):
            out[idx] = math.nan
            continue
        joint = [a * b for a, b in zip(lr, pr, strict=True)]  # 53 × 53 bits: exact at 166
        total = mpmath.fsum(joint)
        if total == 0:  # every product 0: 0/0, undefined
            out[idx] = math.nan
            continue
        out[idx] = [_f64(x / total) for x in joint]  # ∞/∞ = NaN, finite/∞ = 0
    return np.moveaxis(out, -1, ax)


@_at_dps
def normal_pdf(x, /, *, mean=0.0, std=1.0):
    x = np.asarray(x)
    mu = _mp(mean)
    if not mpmath.isfinite(mu):
        raise ValueError(f"mean must be a finite real number, got {mean!r}")
    sigma = _positive(std, "std")
    peak = 1 / (sigma * mpmath.sqrt(2 * mpmath.pi))
    out = np.empty(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        u = (_mp(x[idx]) - mu) / sigma
        out[idx] = _f64(peak * mpmath.exp(-u * u / 2))  # x = ±∞: exp(−∞) = 0
    return out


def _labelled_slices(logits, labels, axis):
    moved, ax = _moved(logits, axis)
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must have an integer dtype, got {labels.dtype}")
    if labels.shape != moved.shape[:-1]:
        raise ValueError(
            f"labels must have the shape of logits without axis {ax}: expected "
            f"{moved.shape[:-1]}, got {labels.shape}"
        )
    k = moved.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"labels must be class indices in [0, {k})")
    return moved, ax, labels


_REDUCTIONS = ("mean", "sum", "none")


@_at_dps
def softmax_cross_entropy(logits, labels, /, *, axis=-1, reduction="mean"):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    moved, _, labels = _labelled_slices(logits, labels, axis)
    losses = {}
    for idx in np.ndindex(moved.shape[:-1]):
        row = _vals(moved[idx])
        y = int(labels[idx])
        p = _lse_parts(row)
        if p.kind == "finite":
            # (m − z_y) ≥ 0 and log1p(T) ≥ 0: no cancellation even when the loss is ≈ 0
            losses[idx] = (p.m - row[y]) + mpmath.log1p(p.rest)
        else:
            losses[idx] = p.value - row[y]
    if reduction == "none":
        out = np.empty(moved.shape[:-1], dtype=np.float64)
        for idx, loss in losses.items():
            out[idx] = _f64(loss)
        return out
    total = mpmath.fsum(losses.values())
    if reduction == "sum":
        return np.asarray(_f64(total), dtype=np.float64)
    return np.asarray(_f64(total / len(losses)) if losses else math.nan, dtype=np.float64)


@_at_dps
def softmax_cross_entropy_grad(logits, labels, /, *, axis=-1, reduction="none"):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    moved, ax, labels = _labelled_slices(logits, labels, axis)
    scale = max(1, labels.size) if reduction == "mean" else 1
    out = _out_like(moved)
    for idx in np.ndindex(moved.shape[:-1]):
        row = _vals(moved[idx])
        y = int(labels[idx])
        p = _lse_parts(row)
        g = _softmax_row(row, p)
        if p.kind == "finite":
            g[y] = -p.one_minus(y) / p.total  # s_y − 1 without cancellation
        else:
            g[y] = g[y] - 1
        out[idx] = [_f64(x / scale) for x in g]
    return np.moveaxis(out, -1, ax)


#: equation name → oracle, with the spec function's call convention on host NumPy arrays.
ORACLES: dict[str, Callable] = {
    f.__name__: f
    for f in (
        softmax,
        log_softmax,
        logsumexp,
        softmax_jacobian,
        softmax_vjp,
        entropy,
        cross_entropy,
        kl_divergence,
        perplexity,
        bayes_posterior,
        normal_pdf,
        softmax_cross_entropy,
        softmax_cross_entropy_grad,
    )
}


# ---------------------------------------------------------------------------------------------
# measuring an error
def _ulp(magnitude: np.ndarray, dtype) -> np.ndarray:
    """The spacing of `dtype` at each finite magnitude ≥ its smallest normal, as float64.

    Equal to ``np.spacing(np.asarray(m, dtype))`` for every m representable in `dtype`, but
    taken from m's binary exponent, so m is not first rounded to `dtype` (which could round
    up to the next power of two or overflow float32).
    """
    info = finfo(dtype)
    _, e = np.frexp(magnitude)  # m = f·2^e, 0.5 ≤ f < 1, so ulp(m) = 2^(e − p), p = nmant + 1
    return np.ldexp(1.0, e - (info.nmant + 1))


def ulp_error(actual, reference, dtype, *, floor=None) -> np.ndarray:
    """Elementwise |actual − reference| in units in the last place of `dtype`.

    The unit is the spacing of `dtype` (np.float32 or np.float64) at max(|reference|, floor),
    with magnitudes below the dtype's smallest normal taken as the smallest normal, so
    subnormal and zero references are judged against the smallest subnormal step.
    The caller chooses `floor` (an array or scalar broadcastable to `reference`; default 0):
    the largest probability in the slice gives a normwise measure for probability vectors,
    1.0 gives an absolute one for log-domain quantities (see :func:`scale_floor`). A NaN floor
    is ignored; an infinite floor accepts any finite pair.

    Non-finite values: both NaN, or the same infinity, is an error of 0; exactly one
    non-finite, or opposite infinities, is +inf. Returns float64 of the broadcast shape.
    """
    dtype = host_dtype(dtype) if isinstance(dtype, str) else np.dtype(dtype)
    a = np.asarray(actual, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    f = np.asarray(0.0 if floor is None else floor, dtype=np.float64)
    a, r, f = np.broadcast_arrays(a, r, f)
    mag = np.fmax(np.fmax(np.abs(r), f), float(finfo(dtype).tiny))
    finite = np.isfinite(a) & np.isfinite(r)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(finite, np.abs(a - r), 0.0)
        unit = _ulp(np.where(np.isfinite(mag), mag, 1.0), dtype)
        err = np.where(np.isfinite(mag), diff / unit, 0.0)
    same_nonfinite = (np.isnan(a) & np.isnan(r)) | (np.isinf(a) & (a == r))
    return np.where(finite, err, np.where(same_nonfinite, 0.0, np.inf))


def _slice_max(reference: np.ndarray, axes) -> np.ndarray:
    """The largest finite |reference| over `axes`, kept as size-1 dimensions (0 if none)."""
    a = np.abs(np.asarray(reference, dtype=np.float64))
    a = np.where(np.isfinite(a), a, 0.0)
    if a.size == 0:
        return np.zeros(a.shape, dtype=np.float64)
    return np.max(a, axis=axes, keepdims=True)


#: chapter oracle modules (conformance/oracles_<chapter>.py): each defines `ORACLES` and
#: `FLOORS` (name → function(reference, args, kwargs) giving the floor, as `scale_floor`)
CHAPTER_MODULES = ("oracles_linalg", "oracles_activations", "oracles_losses", "oracles_layers",
                   "oracles_optim", "oracles_normalization", "oracles_embeddings",
                   "oracles_attention", "oracles_transformer", "oracles_decoding",
                   "oracles_alignment", "oracles_diffusion", "oracles_scaling")
FLOORS: dict[str, Callable] = {}


def _load_chapters() -> None:
    import importlib

    for module_name in CHAPTER_MODULES:
        try:
            module = importlib.import_module(f"{__package__}.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{module_name}":
                raise
            continue
        ORACLES.update(module.ORACLES)
        FLOORS.update(getattr(module, "FLOORS", {}))


def scale_floor(name: str, reference, args, kwargs) -> np.ndarray | float:
    """The `floor` of :func:`ulp_error` for equation `name`, broadcastable to `reference`.

    `args` and `kwargs` are the call's arguments (the oracle's and the spec's).
    """
    if name in FLOORS:
        return FLOORS[name](np.asarray(reference, dtype=np.float64), args, kwargs)
    reference = np.asarray(reference, dtype=np.float64)
    axis = kwargs.get("axis", -1)
    if name in ("softmax", "bayes_posterior"):
        # normwise over the slice: exp's condition number |z_i − max| makes a tiny entry's
        # relative error unbounded, so it is judged relative to the slice's largest entry.
        return _slice_max(reference, _axis(reference.ndim, axis))
    if name in ("softmax_jacobian", "softmax_vjp", "softmax_cross_entropy_grad"):
        # differences of O(s_max) terms (s − s², s_y − 1, g − ⟨g, s⟩): judged relative to the
        # size of the terms, not of the difference, which cancels when one logit dominates.
        s = ORACLES["softmax"](args[0], axis=axis)
        s_max = _slice_max(s, _axis(s.ndim, axis))
        if name == "softmax_jacobian":
            return np.moveaxis(s_max, _axis(s.ndim, axis), -1)[..., None]
        if name == "softmax_vjp":
            g = np.abs(np.asarray(args[1], dtype=np.float64))
            return s_max * _slice_max(g, _axis(g.ndim, axis))
        return np.maximum(s_max, 1.0)  # the one-hot term has size 1
    if name in ("log_softmax", "logsumexp", "softmax_cross_entropy", "entropy",
                "cross_entropy", "kl_divergence"):
        # log-domain: an absolute error of a log is the relative error of the probability.
        return 1.0
    if name == "perplexity":
        # exp of a mean: relative error at the value's own magnitude.
        return np.abs(reference)
    if name == "normal_pdf":
        # normwise at the peak 1/(σ√(2π)): far in the tail the relative condition number is ~u².
        return 1.0 / (float(kwargs.get("std", 1.0)) * math.sqrt(2.0 * math.pi))
    raise KeyError(f"no scale floor for {name!r}")


_load_chapters()
