"""Tier P properties of §7 Normalisation, as checks of an implementation.

`impl` is the implementation under test with the spec's signature; other equations a check
needs as references come from `spec`.

One deterministic check per layer uses ε = 0.5 and inputs offset by 1e4. In it the
implementation matches the correct float64 formula, and three wrong variants, each computed
here, miss it by more than the tolerance: ε outside the root, the one-pass variance
E[x²] − E[x]², and the unbiased variance.

The float tolerances are the tier R budgets of the records (conformance/records/
normalization.py) applied at the oracles' scale |γ|·max|x|/σ + |β|, for one reason. A
normalisation layer has condition number max|x|/σ: the rounding of an input to the dtype,
u·|x|, moves the output by u·|x|/σ. A tolerance relative to the output alone would be wrong
for offset inputs in both directions.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import spec
from conformance import records
from conformance import strategies as cst
from conformance.properties import prop


def _u(dtype) -> float:
    """The unit roundoff of `dtype` (half the machine epsilon)."""
    return float(np.finfo(dtype).eps) / 2


# ---------------------------------------------------------------------------------------------
# float64 references on the host, written from 002 §5 (never from the spec)
def _normalise(x, eps, axes, *, centre=True, eps_outside=False, one_pass=False, unbiased=False):
    """(x − μ)/√(σ² + ε) (or x/√(mean x² + ε) without centring), with optional wrong variants."""
    x = np.asarray(x, dtype=np.float64)
    n = np.prod([x.shape[a] for a in np.atleast_1d(axes)])
    mu = np.mean(x, axis=axes, keepdims=True) if centre else 0.0
    if one_pass:
        var = np.mean(x * x, axis=axes, keepdims=True) - mu * mu
    else:
        var = np.mean((x - mu) ** 2, axis=axes, keepdims=True)
    if unbiased:
        var = var * n / (n - 1)
    if eps_outside:
        return (x - mu) / (np.sqrt(var) + eps)
    return (x - mu) / np.sqrt(var + eps)


def _scale(x, eps, axes, *, centre=True):
    """max|x|/√(σ² + ε): the condition number of the normalisation, per slice."""
    x = np.asarray(x, dtype=np.float64)
    mu = np.mean(x, axis=axes, keepdims=True) if centre else 0.0
    sigma = np.sqrt(np.mean((x - mu) ** 2, axis=axes, keepdims=True) + eps)
    return np.max(np.abs(x), axis=axes, keepdims=True) / sigma


def _budget_tol(name, dtype, scale, factor=1.0):
    """|error| allowed at `scale`: the equation's R budget (one ulp ≤ 2u·scale), times `factor`
    (the number of independently rounded evaluations compared), plus the smallest normal:
    a result below it may be flushed to zero (XLA on the CPU flushes subnormals,
    https://github.com/jax-ml/jax/issues/16200)."""
    return (factor * records.ulp_budget(name, dtype) * 2 * _u(dtype) * scale
            + float(np.finfo(dtype).tiny))


# ============================================================================ ε inside the root
# ε = 0.5 and an offset of 1e4: values whose spread is small next to their size, with full
# mantissas (so that x² is rounded in float64 too: with few bits the one-pass form is exact)
_OFFSET_ROWS = 1e4 + np.random.default_rng(2024).normal(0.0, 1.0, (2, 8))


def _wrong_variants(x, eps, axes, dtype):
    """The three classic mistakes. The one-pass variance is evaluated in the dtype under test,
    as an implementation of it would be; the other two in float64."""
    lowp = np.asarray(x, dtype=dtype)
    mu = np.mean(lowp, axis=axes, keepdims=True)
    var = np.mean(lowp * lowp, axis=axes, keepdims=True) - mu * mu
    with np.errstate(invalid="ignore", divide="ignore"):
        one_pass = ((lowp - mu) / np.sqrt(var + np.asarray(eps, dtype=dtype))).astype(np.float64)
    return {
        "ε outside the root": _normalise(x, eps, axes, eps_outside=True),
        "one-pass variance E[x²] − E[x]²": one_pass,
        "unbiased variance": _normalise(x, eps, axes, unbiased=True),
    }


def _assert_tells_apart(name, got, right, wrongs, tol):
    """The result is within `tol` of the right formula everywhere; each wrong variant is
    farther than `tol` from it somewhere (so the tolerance cannot hide it)."""
    tol = np.broadcast_to(tol, got.shape)
    err = np.abs(got - right)
    assert np.all(err <= tol), f"{name}: off the correct float64 formula by {err} > {tol}"
    for what, wrong in wrongs.items():
        gap = np.where(np.isfinite(wrong), np.abs(got - wrong), np.inf)
        assert np.any(gap > tol), f"{name}: cannot tell the result from '{what}' ({gap})"


@prop("layer_norm", "eps_inside_root", draws=False)
def layer_norm_eps_inside_root_two_pass_biased(impl, t):
    x = _OFFSET_ROWS.astype(t.dtype)
    ones, zeros = np.ones(8, dtype=t.dtype), np.zeros(8, dtype=t.dtype)
    got = t.np(impl(*t.on(x, ones, zeros), eps=0.5))
    tol = _budget_tol("layer_norm", t.dtype, _scale(x, 0.5, -1))
    _assert_tells_apart("layer_norm", got, _normalise(x, 0.5, -1),
                        _wrong_variants(x, 0.5, -1, t.dtype), tol)


@prop("batch_norm", "eps_inside_root", draws=False)
def batch_norm_eps_inside_root_two_pass_biased(impl, t):
    x = _OFFSET_ROWS.T.astype(t.dtype)  # 8 examples, 2 features
    ones, zeros = np.ones(2, dtype=t.dtype), np.zeros(2, dtype=t.dtype)
    got = t.np(impl(*t.on(x, ones, zeros), eps=0.5))
    tol = _budget_tol("batch_norm", t.dtype, _scale(x, 0.5, 0))
    _assert_tells_apart("batch_norm", got, _normalise(x, 0.5, 0),
                        _wrong_variants(x, 0.5, 0, t.dtype), tol)


@prop("rms_norm", "eps_inside_root", draws=False)
def rms_norm_eps_inside_root(impl, t):
    x = np.array([[0.5, -1.25, 2.0, 0.75], [0.03, -0.02, 0.01, 0.0]], dtype=t.dtype)
    ones = np.ones(4, dtype=t.dtype)
    got = t.np(impl(*t.on(x, ones), eps=0.5))
    right = _normalise(x, 0.5, -1, centre=False)
    tol = _budget_tol("rms_norm", t.dtype, _scale(x, 0.5, -1, centre=False))
    wrong = {"ε outside the root": _normalise(x, 0.5, -1, centre=False, eps_outside=True)}
    _assert_tells_apart("rms_norm", got, right, wrong, tol)


# ============================================================================ invariances
@st.composite
def _rows(draw, dtype, *, min_side=2, max_side=8):
    shape = draw(cst.shapes(min_dims=1, max_dims=3, min_side=min_side, max_side=max_side),
                 label="shape")
    x = draw(cst.arrays(dtype, shape, min_value=-10, max_value=10), label="x")
    spread = np.ptp(x.astype(np.float64), axis=-1)
    # a near-constant row has an unbounded condition number; keep the rows informative
    x = np.where(spread[..., None] < 1e-2, x + np.arange(shape[-1], dtype=dtype), x)
    return x.astype(dtype)


@prop("layer_norm", "affine_invariance")
def layer_norm_affine_invariance(impl, t):
    dtype = t.dtype
    x = t.draw(_rows(dtype), label="x")
    n = x.shape[-1]
    c = t.draw(cst.floats("float64", 0.1, 10.0), label="c")
    d = t.draw(cst.floats("float64", -100.0, 100.0), label="d")
    eps = t.draw(cst.floats("float64", 1e-6, 1.0), label="eps")
    g = t.draw(cst.arrays(dtype, (n,), min_value=-3, max_value=3), label="gamma")
    b = t.draw(cst.arrays(dtype, (n,), min_value=-3, max_value=3), label="beta")
    moved = (c * x.astype(np.float64) + d).astype(dtype)
    base = t.np(impl(*t.on(x, g, b), eps=eps))
    # exact with the ε scaled along: layer_norm(cx + d; c²ε) = layer_norm(x; ε)
    scaled = t.np(impl(*t.on(moved, g, b), eps=c * c * eps))
    size = np.abs(g.astype(np.float64)) * np.maximum(
        _scale(x, eps, -1), _scale(moved, c * c * eps, -1)) + np.abs(b.astype(np.float64))
    # two evaluations, plus the rounding of cx + d to the dtype (≤ 2 ulps at the same scale)
    tol = _budget_tol("layer_norm", dtype, size, factor=2) + 4 * _u(dtype) * size
    assert np.all(np.abs(scaled - base) <= tol)
    # with the same ε the outputs differ by at most the ε effect, |γ x̂|·|1 − √((σ²+ε)/(σ²+ε/c²))|
    same = t.np(impl(*t.on(moved, g, b), eps=eps))
    size = np.abs(g.astype(np.float64)) * np.maximum(
        _scale(x, eps, -1), _scale(moved, eps, -1)) + np.abs(b.astype(np.float64))
    tol = _budget_tol("layer_norm", dtype, size, factor=2) + 4 * _u(dtype) * size
    var = np.var(x.astype(np.float64), axis=-1, keepdims=True)
    effect = np.abs(1 - np.sqrt((var + eps) / (var + eps / (c * c))))
    xhat = np.abs(_normalise(x, eps, -1) * g.astype(np.float64))
    assert np.all(np.abs(same - base) <= xhat * effect + tol)


@prop("layer_norm", "standardised")
def layer_norm_standardised(impl, t):
    x = t.draw(_rows(t.dtype), label="x")
    n = x.shape[-1]
    eps = t.draw(st.sampled_from([0.0, 1e-5, 0.5]), label="eps")
    ones, zeros = np.ones(n, dtype=t.dtype), np.zeros(n, dtype=t.dtype)
    y = t.np(impl(*t.on(x, ones, zeros), eps=eps))
    tol = _budget_tol("layer_norm", t.dtype, _scale(x, eps, -1))[..., 0]
    var = np.var(x.astype(np.float64), axis=-1)
    assert np.all(np.abs(np.mean(y, axis=-1)) <= tol)
    # y² is off by ≤ (2|y| + tol)·tol
    slack = (2 * np.max(np.abs(y), axis=-1) + tol) * tol
    assert np.all(np.abs(np.mean(y * y, axis=-1) - var / (var + eps)) <= slack)


@prop("rms_norm", "zero_mean_is_layer_norm", "unit_rms")
def rms_norm_zero_mean_is_layer_norm_and_unit_rms(impl, t):
    dtype = t.dtype
    x = t.draw(_rows(dtype), label="x")
    n = x.shape[-1]
    eps = t.draw(st.sampled_from([1e-6, 0.5]), label="eps")
    g = t.draw(cst.arrays(dtype, (n,), min_value=-3, max_value=3), label="gamma")
    centred = (x.astype(np.float64) - np.mean(x.astype(np.float64), axis=-1, keepdims=True))
    centred = centred.astype(dtype)  # zero mean up to one rounding per element
    xb, gb, zb = t.on(centred, g, np.zeros(n, dtype=dtype))
    rms = t.np(impl(xb, gb, eps=eps))
    ln = t.np(spec.layer_norm(xb, gb, zb, eps=eps))
    size = np.abs(g.astype(np.float64)) * _scale(centred, eps, -1)
    # both within their budgets of the same value; the residual mean is ≤ n·u·max|x|
    tol = (_budget_tol("rms_norm", dtype, size) + _budget_tol("layer_norm", dtype, size)
           + 2 * n * _u(dtype) * size)
    assert np.all(np.abs(rms - ln) <= tol)
    ones = t.on(np.ones(n, dtype=dtype))
    unit = t.np(impl(t.on(x), ones, eps=eps))
    ms = np.mean(x.astype(np.float64) ** 2, axis=-1)
    budget = _budget_tol("rms_norm", dtype, 1.0)
    # y is relatively accurate to (n/2 + 4)·u (the derivation of the rms_norm budget, whose
    # terms are all positive), so y² and their float64 mean to twice that: 4 budgets hold it
    np.testing.assert_allclose(np.mean(unit * unit, axis=-1), ms / (ms + eps), rtol=4 * budget,
                               atol=0)


@prop("rms_norm", "scale_invariance")
def rms_norm_scale_invariance(impl, t):
    """rms_norm(cx; c²ε) = rms_norm(x; ε); with c a power of two, cx and c²ε are exact."""
    x = t.draw(_rows(t.dtype), label="x")
    k = t.draw(st.integers(-20, 20), label="log2 c")
    eps = t.draw(st.sampled_from([1e-6, 0.5]), label="eps")
    c = 2.0**k
    g = np.ones(x.shape[-1], dtype=t.dtype)
    base = t.np(impl(*t.on(x, g), eps=eps))
    scaled = t.np(impl(*t.on((c * x).astype(t.dtype), g), eps=c * c * eps))
    tol = _budget_tol("rms_norm", t.dtype, _scale(x, eps, -1, centre=False), factor=2)
    assert np.all(np.abs(scaled - base) <= tol)


# ============================================================================ batch norm
_BATCH_AXES = [0, 1, (0, 1), (0, 2)]


@prop("batch_norm", "standardised", "is_layer_norm_transposed")
def batch_norm_standardised_per_feature(impl, t):
    dtype = t.dtype
    shape = t.draw(st.tuples(*[st.integers(2, 5)] * 3), label="shape")
    x = t.draw(cst.arrays(dtype, shape, min_value=-10, max_value=10), label="x")
    axis = t.draw(st.sampled_from(_BATCH_AXES), label="axis")
    axes = axis if isinstance(axis, tuple) else (axis,)
    x64 = x.astype(np.float64)
    spread = np.max(x64, axis=axes, keepdims=True) - np.min(x64, axis=axes, keepdims=True)
    x = np.where(spread < 1e-2, x + np.arange(shape[axes[0]]).reshape(
        [-1 if i == axes[0] else 1 for i in range(3)]), x).astype(dtype)
    eps = t.draw(st.sampled_from([0.0, 1e-5, 0.5]), label="eps")
    features = tuple(n for i, n in enumerate(shape) if i not in axes)
    ones, zeros = np.ones(features, dtype=dtype), np.zeros(features, dtype=dtype)
    y = t.np(impl(*t.on(x, ones, zeros), eps=eps, axis=axis))
    tol = _budget_tol("batch_norm", dtype, _scale(x, eps, axes))
    var = np.var(x.astype(np.float64), axis=axes, keepdims=True)
    assert np.all(np.abs(np.mean(y, axis=axes, keepdims=True)) <= tol)
    slack = (2 * np.max(np.abs(y), axis=axes, keepdims=True) + tol) * tol  # y² off by this
    assert np.all(np.abs(np.mean(y * y, axis=axes, keepdims=True) - var / (var + eps)) <= slack)
    # the same formula as layer_norm, over the batch instead of the features
    if axis == 0:
        flat = np.moveaxis(x, 0, -1)
        ln = t.np(spec.layer_norm(*t.on(flat, np.ones(shape[0], dtype=dtype),
                                        np.zeros(shape[0], dtype=dtype)), eps=eps))
        assert np.all(np.abs(np.moveaxis(ln, -1, 0) - y) <= 2 * tol)


@prop("batch_norm", "per_channel_affine", draws=False)
def batch_norm_affine_parameters_per_channel(impl, t):
    """Images (N, C, H, W) with statistics over (0, 2, 3): γ_c and β_c act per channel."""
    dtype = t.dtype
    rng = np.random.default_rng(7)
    x = rng.normal(2.0, 3.0, (4, 3, 2, 2)).astype(dtype)
    g, b = np.array([1.0, -2.0, 0.5], dtype=dtype), np.array([0.0, 1.0, -3.0], dtype=dtype)
    y = t.np(impl(*t.on(x, g, b), axis=(0, 2, 3), eps=1e-5))
    xhat = _normalise(x, 1e-5, (0, 2, 3))
    want = g.astype(np.float64)[None, :, None, None] * xhat + b.astype(np.float64)[
        None, :, None, None]
    size = np.abs(g.astype(np.float64))[None, :, None, None] * _scale(x, 1e-5, (0, 2, 3)) + abs(
        b.astype(np.float64))[None, :, None, None]
    # 16 elements per channel: the budget 2n + 15 is 47 here; twice the records' 31 covers it
    assert np.all(np.abs(y - want) <= _budget_tol("batch_norm", dtype, size, factor=2))
