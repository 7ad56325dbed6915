r"""Tier R oracles for §3 Activations: exact values from mpmath at 50 digits.

Every equation of ``spec/activations.py`` with tier R is implemented here a second time,
independently of the spec (nothing from ``spec`` is imported): each input element is converted
exactly to an mpf, the function is evaluated at 50 significant digits in mpmath's
arbitrary-exponent arithmetic (so e^{−1000} or cosh(1000) neither underflow nor overflow), and
only the final value is rounded, correctly, to float64. Where the textbook formula cancels even
at 50 digits (1 + tanh(u) for u ≪ 0, 1 − σ(x) for x ≫ 0) an algebraically equal form without
the cancellation is used, so the reference is right to the last float64 bit.

Conventions, matching the spec's docstrings: NaN gives NaN; limits at ±∞ are the limits of
the mathematics (GELU(−∞) = 0, σ(±∞) = 1, 0, erf(±∞) = ±1, x·σ(βx) → 0 where βx → −∞); the
kinks take PyTorch's one-sided values (relu'(0) = 0, leaky_relu'(0) = α).

``ORACLES`` and ``FLOORS`` (the ulp scale of each equation, with its reason) are collected by
conformance/oracles.py; the ulp budgets are in conformance/records/activations.py. ``erf_sweep``
and ``sweep`` give whole-line inputs with their oracle values.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import mpmath
import numpy as np

from .mp import DPS
from .mp import f64 as _f64
from .precision import host_dtype

_GELU_CUBIC = mpmath.mpf("0.044715")  # the decimal constant of the tanh form (not its double)


def _elementwise(scalar: Callable) -> Callable:
    """Lift a function of one mpf (and the call's keyword options) to arrays, at DPS digits."""

    def oracle(x, /, **kwargs):
        x = np.asarray(x)
        out = np.empty(x.shape, dtype=np.float64)
        with mpmath.workdps(DPS):
            for idx in np.ndindex(x.shape):
                value = float(x[idx])
                out[idx] = math.nan if math.isnan(value) else _f64(scalar(mpmath.mpf(value),
                                                                          **kwargs))
        return out

    oracle.__name__ = scalar.__name__
    oracle.__doc__ = scalar.__doc__
    return oracle


def _inf(sign: int) -> mpmath.mpf:
    return mpmath.mpf("inf") if sign > 0 else mpmath.mpf("-inf")


def _sigma(z):
    """σ(z) = 1/(1 + e^{−z}) for every extended real z (e^{∓∞} = ∞, 0)."""
    return 1 / (1 + mpmath.exp(-z))


def _phi_cdf(x):
    """Φ(x) = erfc(−x/√2)/2: no cancellation in the left tail."""
    return mpmath.erfc(-x / mpmath.sqrt(2)) / 2


def _phi_pdf(x):
    return mpmath.exp(-x * x / 2) / mpmath.sqrt(2 * mpmath.pi)


def _gelu_w(x):
    """w = 2√(2/π)(x + 0.044715x³), so that ½(1 + tanh(w/2)) = σ(w)."""
    return 2 * mpmath.sqrt(2 / mpmath.pi) * (x + _GELU_CUBIC * x**3)


def _gelu_w_slope(x):
    return 2 * mpmath.sqrt(2 / mpmath.pi) * (1 + 3 * _GELU_CUBIC * x**2)


# ---------------------------------------------------------------------------------------------
@_elementwise
def relu(x):
    return x if x > 0 else mpmath.mpf(0)


@_elementwise
def relu_grad(x):
    return mpmath.mpf(1) if x > 0 else mpmath.mpf(0)


@_elementwise
def leaky_relu(x, *, negative_slope=0.01):
    return x if x >= 0 else mpmath.mpf(float(negative_slope)) * x


@_elementwise
def leaky_relu_grad(x, *, negative_slope=0.01):
    return mpmath.mpf(1) if x > 0 else mpmath.mpf(float(negative_slope))


@_elementwise
def sigmoid(x):
    return _sigma(x)


@_elementwise
def sigmoid_grad(x):
    if mpmath.isinf(x):
        return mpmath.mpf(0)
    return _sigma(x) * _sigma(-x)  # σ(1 − σ) with 1 − σ(x) = σ(−x): no cancellation


@_elementwise
def tanh(x):
    return mpmath.tanh(x)


@_elementwise
def tanh_grad(x):
    return mpmath.mpf(0) if mpmath.isinf(x) else mpmath.sech(x) ** 2


@_elementwise
def erf(x):
    if mpmath.isinf(x):
        return mpmath.mpf(1 if x > 0 else -1)
    return mpmath.erf(x)


@_elementwise
def erf_grad(x):
    if mpmath.isinf(x):
        return mpmath.mpf(0)
    return 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-x * x)


@_elementwise
def gelu(x, *, approximate="none"):
    if mpmath.isinf(x):
        return x if x > 0 else mpmath.mpf(0)
    if approximate == "tanh":
        # x·½(1 + tanh(w/2)) = x·σ(w): the textbook 1 + tanh(u) cancels for u ≪ 0
        return x * _sigma(_gelu_w(x))
    if approximate != "none":
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return x * _phi_cdf(x)


@_elementwise
def gelu_grad(x, *, approximate="none"):
    if mpmath.isinf(x):
        return mpmath.mpf(1 if x > 0 else 0)
    if approximate == "tanh":
        w = _gelu_w(x)
        return _sigma(w) + x * _gelu_w_slope(x) * _sigma(w) * _sigma(-w)
    if approximate != "none":
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return _phi_cdf(x) + x * _phi_pdf(x)


def _silu_scalar(x, beta):
    b = mpmath.mpf(float(beta))
    if b == 0:
        return x / 2
    if mpmath.isinf(x):
        return x if b * x > 0 else mpmath.mpf(0)
    return x * _sigma(b * x)


def _silu_grad_scalar(x, beta):
    b = mpmath.mpf(float(beta))
    if b == 0:
        return mpmath.mpf(1) / 2
    z = b * x
    if mpmath.isinf(z):
        return mpmath.mpf(1 if z > 0 else 0)
    return _sigma(z) * (1 + z * _sigma(-z))  # 1 − σ(z) = σ(−z): no cancellation


@_elementwise
def silu(x, *, beta=1.0):
    return _silu_scalar(x, beta)


@_elementwise
def silu_grad(x, *, beta=1.0):
    return _silu_grad_scalar(x, beta)


def swiglu(x, W, V, /):
    """silu(Σₖ xₖWⱼₖ)·Σₖ xₖVⱼₖ with exact sums (products of two doubles are exact at 50
    digits, and fsum adds them exactly enough)."""
    x, W, V = np.asarray(x), np.asarray(W), np.asarray(V)
    out = np.empty((*x.shape[:-1], W.shape[0]), dtype=np.float64)
    with mpmath.workdps(DPS):
        Wm = [[mpmath.mpf(float(w)) for w in row] for row in W]
        Vm = [[mpmath.mpf(float(w)) for w in row] for row in V]
        for idx in np.ndindex(x.shape[:-1]):
            row = [mpmath.mpf(float(t)) for t in x[idx]]
            if any(mpmath.isnan(t) or mpmath.isinf(t) for t in row):
                raise ValueError("the swiglu oracle takes finite inputs only")
            for j in range(W.shape[0]):
                a = mpmath.fsum(t * w for t, w in zip(row, Wm[j], strict=True))
                b = mpmath.fsum(t * w for t, w in zip(row, Vm[j], strict=True))
                out[(*idx, j)] = _f64(_silu_scalar(a, 1.0) * b)
    return out


ORACLES: dict[str, Callable] = {
    f.__name__: f
    for f in (relu, relu_grad, leaky_relu, leaky_relu_grad, sigmoid, sigmoid_grad, tanh,
              tanh_grad, erf, erf_grad, gelu, gelu_grad, silu, silu_grad, swiglu)
}


# ---------------------------------------------------------------------------------------------
# floors: the magnitude at which an error is measured in ulps (see oracles.ulp_error)
def _relative(reference, args, kwargs):
    """Relative error at the value's own magnitude: the function is evaluated from the exact
    input without amplification (exp of an exact −|x|, the split exp(−x²), exact products)."""
    return 0.0


def _np64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _tiny(args) -> float:
    """The smallest normal number of the call's dtype."""
    return float(np.finfo(np.asarray(args[0]).dtype).tiny)


def _subnormal(multiplier, args) -> np.ndarray:
    """|m|·tiny, for results formed as m times a factor that is already subnormal: that factor
    is rounded to the subnormal grid (½ step) and the product multiplies the rounding by |m|,
    which at the scale |m|·tiny is ½ ulp. (Above |m|·tiny the floor has no effect.)"""
    return np.nan_to_num(np.abs(multiplier), posinf=0.0) * _tiny(args)


def _w(x):
    with np.errstate(over="ignore", invalid="ignore"):
        return 2 * math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)


def _gelu_floor(reference, args, kwargs):
    """Exact form: relative (Φ comes from the exact x through the split exp(−x²/2), and x is
    multiplied in before the tiny exponential). Tanh form: σ(w) with w = 2√(2/π)(x + 0.044715x³)
    formed in the dtype (≈ 4 roundings, and the dtype's own copy of the constants); for w ≪ 0,
    d log σ(w)/d log w = −w·σ(−w) ≈ −w, so each relative rounding of w is amplified |w| times:
    the floor |ref|·max(1, |w|) is that condition number; and x·σ(w) multiplies a subnormal
    σ(w) by |x|."""
    if kwargs.get("approximate", "none") != "tanh":
        return 0.0
    x = _np64(args[0])
    with np.errstate(invalid="ignore"):
        cond = np.abs(reference) * np.fmax(1.0, np.nan_to_num(np.abs(_w(x)), posinf=0.0))
    return np.fmax(cond, _subnormal(x, args))


def _sig(z):
    """σ(z) in float64 without overflow (for the floors only: a few ulp is plenty)."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _gelu_grad_floor(reference, args, kwargs):
    """The size of the two terms Φ + xφ (resp. σ(w) + x·w'·σ(w)σ(−w)), which cancel near the
    derivative's zero at x ≈ −0.75; the tanh form also carries σ(w)'s condition number |w|;
    and the second term multiplies a subnormal exponential by |x|/√(2π) (resp. |x·w'|)."""
    x = _np64(args[0])
    with np.errstate(all="ignore"):
        if kwargs.get("approximate", "none") == "tanh":
            w = np.nan_to_num(_w(x), posinf=1e300, neginf=-1e300)
            slope = 2 * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x * x)
            terms = _sig(w) + np.abs(x * slope) * _sig(w) * _sig(-w)
            return np.fmax(np.nan_to_num(terms * np.fmax(1.0, np.abs(w))),
                           _subnormal(x * slope, args))
        pdf = np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
        cdf = 0.5 * np.vectorize(math.erfc, otypes=[float])(-x / math.sqrt(2))
        return np.fmax(np.nan_to_num(cdf + np.abs(x * pdf)),
                       _subnormal(x / math.sqrt(2 * math.pi), args))


def _silu_floor(reference, args, kwargs):
    """β = 1: relative (σ of the exact x). β ≠ 1: βx is rounded once, and for βx ≪ 0
    σ(βx) ≈ e^{βx} amplifies that relative rounding |βx| times: floor |ref|·max(1, |βx|).
    Both: x·σ(βx) multiplies a subnormal σ by |x|."""
    beta = float(kwargs.get("beta", 1.0))
    x = _np64(args[0])
    with np.errstate(all="ignore"):
        z = np.nan_to_num(np.abs(beta * x), posinf=0.0)
    cond = np.abs(reference) * (1.0 if beta == 1.0 else np.fmax(1.0, z))
    return np.fmax(cond, _subnormal(x, args))


def _silu_grad_floor(reference, args, kwargs):
    """The size of the terms σ(z) + z·σ(z)σ(−z), which cancel near the zero at z ≈ −1.28,
    times the condition number max(1, |z|) of the rounding of z = βx when β ≠ 1; and the
    factor 1 + z·σ(−z) multiplies a subnormal σ(z) by up to 1 + |z|."""
    beta = float(kwargs.get("beta", 1.0))
    with np.errstate(all="ignore"):
        z = np.nan_to_num(beta * _np64(args[0]), posinf=1e300, neginf=-1e300)
        terms = _sig(z) * (1 + np.abs(z) * _sig(-z))
        scale = 1.0 if beta == 1.0 else np.fmax(1.0, np.abs(z))
        return np.fmax(np.nan_to_num(terms * scale), _subnormal(1 + np.abs(z), args))


def _swiglu_floor(reference, args, kwargs):
    """Normwise over the products: a = xWᵀ and b = xVᵀ are sums whose rounding error is
    relative to Σ|xₖ||Wⱼₖ| (resp. |V|), not to |a|; it reaches the output through silu'(a)·b
    and silu(a). Floor: |silu'(a)|·|b|·(|x||W|ᵀ) + |silu(a)|·(|x||V|ᵀ) + |ref|, and |a·b|·tiny
    for a subnormal σ(a) multiplied by a·b."""
    x, W, V = (_np64(a) for a in args)
    with np.errstate(all="ignore"):
        a, b = x @ W.T, x @ V.T
        s = _sig(a)
        silu_a = a * s
        silu_grad_a = s * (1 + a * _sig(-a))
        floor = (np.abs(silu_grad_a * b) * (np.abs(x) @ np.abs(W).T)
                 + np.abs(silu_a) * (np.abs(x) @ np.abs(V).T) + np.abs(reference))
    return np.fmax(np.nan_to_num(floor), _subnormal(a * b, args))


FLOORS: dict[str, Callable] = {
    **{name: _relative for name in ("relu", "relu_grad", "leaky_relu", "leaky_relu_grad",
                                    "sigmoid", "sigmoid_grad", "tanh", "tanh_grad", "erf",
                                    "erf_grad")},
    "gelu": _gelu_floor,
    "gelu_grad": _gelu_grad_floor,
    "silu": _silu_floor,
    "silu_grad": _silu_grad_floor,
    "swiglu": _swiglu_floor,
}


# ---------------------------------------------------------------------------------------------
# whole-line sweeps: inputs over the whole real line and their oracle values, for the tier-R
# sweeps of conformance/test_activations.py and erf's native-agreement property (the budgets
# are in conformance/records/activations.py)
@functools.cache
def erf_sweep(dtype: str, n: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """10⁵ points: linear over [−6, 6], log-spaced magnitudes from 1e−30 to 6 (both signs),
    the tails out to ±30, and the special points; with the mpmath reference (read-only)."""
    x = np.concatenate([
        np.linspace(-6.0, 6.0, n // 2),
        np.logspace(-30, math.log10(6.0), n // 4),
        -np.logspace(-30, math.log10(6.0), n // 8),
        np.linspace(6.0, 30.0, n // 16), -np.linspace(6.0, 30.0, n // 16),
        [0.0, 0.46875, -0.46875, 4.0, -4.0, 5e-324, 1e-300, 1e-45],
    ]).astype(host_dtype(dtype))
    x.setflags(write=False)
    return x, erf(x.astype(np.float64))


@functools.cache
def sweep(name: str, kw_items: tuple, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Linear over [−40, 40] and log-spaced magnitudes 1e−20 … 800 (float32: … 110) of both
    signs, into the subnormal results of each dtype; with the mpmath reference of `name`
    called with the options `kw_items` (sorted (key, value) pairs)."""
    lin = np.linspace(-40.0, 40.0, 2001)
    mags = np.logspace(-20, math.log10(800.0 if dtype == "float64" else 110.0), 1000)
    x = np.concatenate([lin, mags, -mags]).astype(host_dtype(dtype))
    x.setflags(write=False)
    return x, ORACLES[name](x.astype(np.float64), **dict(kw_items))
