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

Low precision. float16 and bfloat16 are computed in float32 and rounded once, so a result
is within its float32 budget plus one rounding (≤ u·|y| ≤ u·scale) of the truth: the
derived budget `records.ulp_budget(name, "float16")` (1 + the float32 budget in the low
dtype's ulps, i.e. 2) at the same scale covers it, and u below is the dtype's own unit
roundoff, so a check that also rounds its inputs to the dtype (cx + d) charges that
rounding in the dtype's units. The properties whose identity survives those roundings opt
in with `dtypes=ALL_DTYPES`; the two that cannot say why beside them.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

import spec
from conformance import records
from conformance import strategies as cst
from conformance.precision import finfo
from conformance.properties import ALL_DTYPES, Example, prop


def _u(dtype) -> float:
    """The unit roundoff of `dtype` (half the machine epsilon; bfloat16's too)."""
    return float(finfo(dtype).eps) / 2


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


def _scale(x, eps, axes, *, centre=True, eps_outside=False, unbiased=False):
    """max|x|/√(σ² + ε) (or /(σ + ε), with the unbiased σ): the condition number of the
    normalisation, per slice; taken on x/max|x|, so huge and tiny slices get theirs too."""
    x = np.asarray(x, dtype=np.float64)
    big = np.max(np.abs(x), axis=axes, keepdims=True)
    s = np.where(big > 0, big, 1.0)
    xs = x / s
    n = np.prod([x.shape[a] for a in np.atleast_1d(axes)])
    mu = np.mean(xs, axis=axes, keepdims=True) if centre else 0.0
    var = np.sum((xs - mu) ** 2, axis=axes, keepdims=True) / (n - 1 if unbiased else n)
    sigma = np.sqrt(var) + eps / s if eps_outside else np.sqrt(var + eps / s / s)
    return (big / s) / sigma


def _budget_tol(name, dtype, scale, factor=1.0):
    """|error| allowed at `scale`: the equation's R budget (one ulp ≤ 2u·scale), times `factor`
    (the number of independently rounded evaluations compared), plus the smallest normal:
    a result below it may be flushed to zero (XLA on the CPU flushes subnormals,
    https://github.com/jax-ml/jax/issues/16200)."""
    return (factor * records.ulp_budget(name, dtype) * 2 * _u(dtype) * scale
            + float(finfo(dtype).tiny))


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


# float32 and float64 only (these two checks): float16 and bfloat16 cannot hold the
# distinguishing input. Rows offset by 1e4 round to steps of 8 (float16) or 64 (bfloat16),
# and their condition number max|x|/σ ≈ 1e4/σ widens the tolerance past the gaps between the
# forms. The variants are told apart in low precision by the `variants` properties below, on
# rows without the offset.
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


@prop("rms_norm", "eps_inside_root", draws=False, dtypes=ALL_DTYPES)
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


@prop("layer_norm", "affine_invariance", dtypes=ALL_DTYPES)
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


@prop("layer_norm", "standardised", dtypes=ALL_DTYPES)
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


@prop("rms_norm", "zero_mean_is_layer_norm", "unit_rms", dtypes=ALL_DTYPES, examples=(
    Example({"x": np.array([[-9.118967019999998, -9.0]]), "eps": 1e-6,
             "gamma": np.array([1.0, 1.0])}, dtype="float64",
            note="issue 17, thorough profile on torch float64: the centred row keeps a "
                 "residual mean of 1.8e-15 from the float64 mean of x ≈ −9, 30 times the "
                 "bound taken from the centred row's own size (≈ 0.06)"),
))
def rms_norm_zero_mean_is_layer_norm_and_unit_rms(impl, t):
    dtype = t.dtype
    x = t.draw(_rows(dtype), label="x")
    n = x.shape[-1]
    eps = t.draw(st.sampled_from([1e-6, 0.5]), label="eps")
    g = t.draw(cst.arrays(dtype, (n,), min_value=-3, max_value=3), label="gamma")
    x64 = x.astype(np.float64)
    centred = (x64 - np.mean(x64, axis=-1, keepdims=True)).astype(dtype)
    xb, gb, zb = t.on(centred, g, np.zeros(n, dtype=dtype))
    rms = t.np(impl(xb, gb, eps=eps))
    ln = t.np(spec.layer_norm(xb, gb, zb, eps=eps))
    size = np.abs(g.astype(np.float64)) * _scale(centred, eps, -1)
    # Both are within their budgets of their own value. The two values differ by the residual
    # mean μ_r of the centred row, which layer_norm removes and rms_norm keeps: by
    # |γ|·|μ_r|/√(σ² + ε) to first order. μ_r comes from three roundings: the float64 mean of
    # the *uncentred* x (≤ n·u₆₄·max|x|: n − 1 additions of terms ≤ max|x|, one division), the
    # subtraction (≤ u₆₄·|c|) and the cast to the dtype (≤ u·|c|). The first is set by max|x|,
    # not by the centred row's size max|c| (issue 17: x ≈ −9 with max|c| ≈ 0.06).
    big = np.max(np.abs(x64), axis=-1, keepdims=True)
    small = np.max(np.abs(centred.astype(np.float64)), axis=-1, keepdims=True)
    resid = n * _u("float64") * big + (_u("float64") + _u(dtype)) * small
    drift = size * resid / np.where(small > 0, small, 1.0)  # |γ|·μ_r/σ, as size = |γ|·max|c|/σ
    tol = _budget_tol("rms_norm", dtype, size) + _budget_tol("layer_norm", dtype, size) + drift
    assert np.all(np.abs(rms - ln) <= tol)
    ones = t.on(np.ones(n, dtype=dtype))
    unit = t.np(impl(t.on(x), ones, eps=eps))
    ms = np.mean(x.astype(np.float64) ** 2, axis=-1)
    budget = _budget_tol("rms_norm", dtype, 1.0)
    # y is relatively accurate to (n/2 + 4)·u (the derivation of the rms_norm budget, whose
    # terms are all positive), so y² and their float64 mean to twice that: 4 budgets hold it
    np.testing.assert_allclose(np.mean(unit * unit, axis=-1), ms / (ms + eps), rtol=4 * budget,
                               atol=0)


@prop("rms_norm", "scale_invariance", dtypes=ALL_DTYPES)
def rms_norm_scale_invariance(impl, t):
    """rms_norm(cx; c²ε) = rms_norm(x; ε); with c a power of two, cx and c²ε are exact."""
    x = t.draw(_rows(t.dtype), label="x")
    # cx stays finite and normal in the dtype, so that it is exact (float16 stops at 65504:
    # k ≤ 11 for |x| ≤ 16; its normal numbers at 6.1e-5: k ≥ −9 for entries ≥ 0.03)
    info = finfo(t.dtype)
    mags = np.abs(x.astype(np.float64))
    big, small = float(np.max(mags)), float(np.min(mags[mags > 0], initial=np.max(mags)))
    top = min(20, int(np.floor(np.log2(float(info.max)) - np.log2(big))) - 1)
    bottom = max(-20, int(np.ceil(np.log2(float(info.tiny)) - np.log2(small))))
    assume(bottom <= top)  # (a float16 row spanning 6e-8 to 10 leaves no such power)
    k = t.draw(st.integers(bottom, top), label="log2 c")
    eps = t.draw(st.sampled_from([1e-6, 0.5]), label="eps")
    c = 2.0**k
    g = np.ones(x.shape[-1], dtype=t.dtype)
    base = t.np(impl(*t.on(x, g), eps=eps))
    scaled = t.np(impl(*t.on((c * x).astype(t.dtype), g), eps=c * c * eps))
    tol = _budget_tol("rms_norm", t.dtype, _scale(x, eps, -1, centre=False), factor=2)
    assert np.all(np.abs(scaled - base) <= tol)


# ============================================================================ batch norm
_BATCH_AXES = [0, 1, (0, 1), (0, 2)]


@prop("batch_norm", "standardised", "is_layer_norm_transposed", dtypes=ALL_DTYPES)
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


@prop("batch_norm", "per_channel_affine", draws=False, dtypes=ALL_DTYPES)
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


# ============================================================================ no overflow
def _extreme_power(t, x, label="k"):
    """A power of two 2ᵏ that takes x (a slice of magnitude ≤ 10, nonzero entries ≥ its
    smallest normal) to where the squares of the dtype overflow (|2ᵏx| > √max) or underflow
    (|2ᵏx| < √tiny), while every entry of 2ᵏx stays a normal number: 2ᵏx is then exact."""
    info = finfo(t.dtype)
    top, bottom = np.log2(float(info.max)), np.log2(float(info.tiny))  # in log2: no overflow
    big = np.log2(float(np.max(np.abs(x.astype(np.float64)))))
    nonzero = np.abs(x.astype(np.float64))[x != 0]
    small = np.log2(float(np.min(nonzero))) if nonzero.size else big
    lo_ok = int(np.ceil(bottom - small))  # every entry stays normal
    hi_ok = int(np.floor(top - big)) - 1  # and finite
    over = int(np.ceil(top / 2 - big)) + 1  # the squares overflow
    under = int(np.floor(bottom / 2 - big)) - 1  # the squares underflow
    choices = [(over, hi_ok)] if over <= hi_ok else []
    if lo_ok <= under:
        choices.append((lo_ok, under))
    assume(choices)
    lo, hi = t.draw(st.sampled_from(choices), label=f"{label} range")
    return 2.0 ** t.draw(st.integers(lo, hi), label=label)


def _check_no_overflow(impl, t, name, x, params, axes, *, shaped=lambda p: p):
    """impl(2ᵏx; ε = 0) = impl(x; ε = 0): the same real number (the scale cancels), here
    where the squares of 2ᵏx overflow or underflow the dtype. `shaped` puts a parameter in
    the shape that broadcasts against x (batch_norm's features follow the batch axis)."""
    c = _extreme_power(t, x)
    moved = (x.astype(np.float64) * c).astype(t.dtype)  # exact: c is a power of two
    assert np.all(moved.astype(np.float64) == x.astype(np.float64) * c)
    base = t.np(impl(*t.on(x, *params), eps=0.0))
    got = t.np(impl(*t.on(moved, *params), eps=0.0))
    assert np.all(np.isfinite(got)), f"{name}(2ᵏx) is not finite for 2ᵏ = {c!r}"
    weight, *beta = (np.abs(shaped(p.astype(np.float64))) for p in params)
    size = weight * _scale(x, 0.0, axes, centre=name != "rms_norm") + sum(beta)
    # two evaluations, each within its budget of the same real number
    assert np.all(np.abs(got - base) <= _budget_tol(name, t.dtype, size, factor=2))


@prop("layer_norm", "no_overflow", dtypes=ALL_DTYPES)
def layer_norm_no_overflow(impl, t):
    x = t.draw(_rows(t.dtype), label="x")
    n = x.shape[-1]
    g = t.draw(cst.arrays(t.dtype, (n,), min_value=-3, max_value=3), label="gamma")
    b = t.draw(cst.arrays(t.dtype, (n,), min_value=-3, max_value=3), label="beta")
    _check_no_overflow(impl, t, "layer_norm", x, (g, b), -1)


@prop("rms_norm", "no_overflow", dtypes=ALL_DTYPES)
def rms_norm_no_overflow(impl, t):
    x = t.draw(_rows(t.dtype), label="x")
    g = t.draw(cst.arrays(t.dtype, (x.shape[-1],), min_value=-3, max_value=3), label="gamma")
    _check_no_overflow(impl, t, "rms_norm", x, (g,), -1)


@prop("batch_norm", "no_overflow", dtypes=ALL_DTYPES)
def batch_norm_no_overflow(impl, t):
    rows = t.draw(_rows(t.dtype), label="x")  # informative along the last axis
    x = np.ascontiguousarray(np.moveaxis(rows, -1, 0)) if rows.ndim > 1 else rows[:, None]
    features = x.shape[1:]
    g = t.draw(cst.arrays(t.dtype, features, min_value=-3, max_value=3), label="gamma")
    b = t.draw(cst.arrays(t.dtype, features, min_value=-3, max_value=3), label="beta")
    _check_no_overflow(impl, t, "batch_norm", x, (g, b), 0, shaped=lambda p: p[None, ...])


# ============================================================================ named variants
# Each variant against a float64 reference written here from its own definition, and told
# apart from the default. The distinguishing rows: in float32 and float64 offset by 1e4 with
# ε = 0.5 (the default's own check above); in float16 and bfloat16, which cannot hold those
# rows (see above), four features drawn around 0 with ε = 0.5, where ε after the root moves x̂
# by ~20 % and the unbiased variance by √(3/4) − 1 = −13 %.
_LN_FORMS = {
    "epsilon_after_root": ({"eps_form": "after_root"}, {"eps_outside": True}),
    "unbiased_variance": ({"correction": 1}, {"unbiased": True}),
    "both": ({"eps_form": "after_root", "correction": 1}, {"eps_outside": True,
                                                          "unbiased": True}),
}


def _distinguishing_rows(t, features):
    if t.low:
        return np.random.default_rng(5).normal(0.0, 1.0, (2, 4)).astype(t.dtype)
    return _OFFSET_ROWS[:, :features].astype(t.dtype)


def _check_variants(impl, t, name, x, g, b, eps, axes, *, distinguish):
    """Every form of `name` equals its float64 reference; on `distinguish` inputs every form
    is farther than the tolerances from every other."""
    weight = np.abs(g.astype(np.float64))
    outputs = {}
    for form, (options, flags) in {"default": ({}, {}), **_LN_FORMS}.items():
        got = t.np(impl(*t.on(x, g, b), eps=eps, **options))
        want = g.astype(np.float64) * _normalise(x, eps, axes, **flags) + b.astype(np.float64)
        size = weight * _scale(x, eps, axes, **flags) + np.abs(b.astype(np.float64))
        # ε after the root or a divisor n − 1 changes no operation count: the same budget
        tol = _budget_tol(name, t.dtype, size)
        assert np.all(np.abs(got - want) <= tol), f"{name} {form}: off its reference"
        outputs[form] = (got, tol)
    if distinguish:
        for one, (a, tol_a) in outputs.items():
            for other, (c, tol_c) in outputs.items():
                if one < other:
                    assert np.any(np.abs(a - c) > tol_a + tol_c), f"{name}: {one} = {other}"


@prop("layer_norm", "variants", dtypes=ALL_DTYPES)
def layer_norm_variants(impl, t):
    x = t.draw(_rows(t.dtype), label="x")
    n = x.shape[-1]
    g = t.draw(cst.arrays(t.dtype, (n,), min_value=-3, max_value=3), label="gamma")
    b = t.draw(cst.arrays(t.dtype, (n,), min_value=-3, max_value=3), label="beta")
    eps = t.draw(st.sampled_from([1e-5, 0.5]), label="eps")
    _check_variants(impl, t, "layer_norm", x, g, b, eps, -1, distinguish=False)
    rows = _distinguishing_rows(t, 8)
    ones, zeros = np.ones(rows.shape[-1], t.dtype), np.zeros(rows.shape[-1], t.dtype)
    _check_variants(impl, t, "layer_norm", rows, ones, zeros, 0.5, -1, distinguish=True)


@prop("batch_norm", "variants", dtypes=ALL_DTYPES)
def batch_norm_variants(impl, t):
    x = t.draw(_rows(t.dtype), label="x")  # informative along the last axis: made the batch
    x = np.ascontiguousarray(np.moveaxis(x, -1, 0)) if x.ndim > 1 else x[:, None]
    features = x.shape[1:]
    g = t.draw(cst.arrays(t.dtype, features, min_value=-3, max_value=3), label="gamma")
    b = t.draw(cst.arrays(t.dtype, features, min_value=-3, max_value=3), label="beta")
    eps = t.draw(st.sampled_from([1e-5, 0.5]), label="eps")
    _check_variants(impl, t, "batch_norm", x, g, b, eps, 0, distinguish=False)
    cols = np.ascontiguousarray(_distinguishing_rows(t, 8).T)
    ones, zeros = np.ones(cols.shape[1], t.dtype), np.zeros(cols.shape[1], t.dtype)
    _check_variants(impl, t, "batch_norm", cols, ones, zeros, 0.5, 0, distinguish=True)


def _rms_reference(x, g, eps, *, offset=0.0, eps_outside=False):
    """γx/√(mean x² + ε), with Gemma's weight γ + offset or the authors' x/(RMS + ε)."""
    x = np.asarray(x, dtype=np.float64)
    return (np.asarray(g, dtype=np.float64) + offset) * _normalise(
        x, eps, -1, centre=False, eps_outside=eps_outside)


_RMS_FORMS = {
    "gamma": ({}, {}),
    "one_plus_gamma": ({"gamma_offset": 1.0}, {"offset": 1.0}),
    "epsilon_after_root": ({"eps_form": "after_root"}, {"eps_outside": True}),
}


@prop("rms_norm", "variants", dtypes=ALL_DTYPES)
def rms_norm_variants(impl, t):
    """Each form equals its reference; with γ near 0 and ε = 0.5 they are told apart (Gemma's
    1 + γ weighs ≈ 1 where γ weighs ≈ 0; ε after the root divides by RMS + 0.5)."""
    def check(x, g, eps, *, distinguish):
        outputs = {}
        for form, (options, ref) in _RMS_FORMS.items():
            got = t.np(impl(*t.on(x, g), eps=eps, **options))
            want = _rms_reference(x, g, eps, **ref)
            size = np.abs(g.astype(np.float64) + ref.get("offset", 0.0)) * _scale(
                x, eps, -1, centre=False, eps_outside=ref.get("eps_outside", False))
            # Gemma's 1 + γ is one more rounding (≤ u relative): one ulp more than the budget
            extra = 2 * _u(t.dtype) * size if "offset" in ref else 0.0
            tol = _budget_tol("rms_norm", t.dtype, size) + extra
            assert np.all(np.abs(got - want) <= tol), f"rms_norm {form}: off its reference"
            outputs[form] = (got, tol)
        if distinguish:
            for one, (a, tol_a) in outputs.items():
                for other, (c, tol_c) in outputs.items():
                    if one < other:
                        assert np.any(np.abs(a - c) > tol_a + tol_c), f"{one} = {other}"

    x = t.draw(_rows(t.dtype), label="x")
    g = t.draw(cst.arrays(t.dtype, (x.shape[-1],), min_value=-3, max_value=3), label="gamma")
    eps = t.draw(st.sampled_from([1e-6, 0.5]), label="eps")
    check(x, g, eps, distinguish=False)
    rows = np.random.default_rng(5).normal(0.0, 1.0, (2, 4)).astype(t.dtype)
    near_zero = np.array([0.0, 0.125, -0.25, 0.0625], dtype=t.dtype)
    check(rows, near_zero, 0.5, distinguish=True)
