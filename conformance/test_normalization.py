"""§7 Normalisation: tiers S, P and D (X, E and R are generic, in test_tiers.py).

Tier S runs the spec's own code on SymPy symbols. It proves the textbook formula, with ε
inside the root and the biased variance. It proves the invariances exactly with ε = 0:
LayerNorm under x → cx + d and RMSNorm under x → cx for c > 0. It also proves the
standardisation.

Tier P runs on the backend under test. There is one deterministic test with ε = 0.5 and
inputs offset by 1e4. In it the spec matches the correct float64 formula, and three wrong
variants, each computed in the test, miss it by more than the tolerance: ε outside the root,
the one-pass variance E[x²] − E[x]², and the unbiased variance.

The float tolerances are the R budgets of conformance/oracles_normalization.py applied at
that module's scale |γ|·max|x|/σ + |β|, for one reason. A normalisation layer has condition
number max|x|/σ: the rounding of an input to the dtype, u·|x|, moves the output by u·|x|/σ.
A tolerance relative to the output alone would be wrong for offset inputs in both
directions.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import spec
from conformance import derivatives, symbolic
from conformance import strategies as cst
from conformance.helpers import to_backend
from conformance.tolerances import ULP_BUDGET

SIZES = [2, 3, 4]


def _np(backend, x):
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def _on(backend, *host_arrays):
    return [to_backend(backend, a) for a in host_arrays]


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
    return factor * ULP_BUDGET[name][dtype] * 2 * _u(dtype) * scale + float(np.finfo(dtype).tiny)


# ============================================================================ tier S
def _textbook_layer(xs, gs, bs, eps):
    n = len(xs)
    mu = sp.Add(*xs) / n
    var = sp.Add(*[(x - mu) ** 2 for x in xs]) / n
    return [g * (x - mu) / sp.sqrt(var + eps) + b for x, g, b in zip(xs, gs, bs)]


@pytest.mark.spec("layer_norm", tier="S")
@pytest.mark.parametrize("n", SIZES)
def test_layer_norm_is_textbook_with_eps_inside_the_root(n):
    x, g, b = (symbolic.symbols(s, (n,)) for s in ("x", "g", "b"))
    got = symbolic.exprs(spec.layer_norm(x, g, b, eps=0.5))
    want = _textbook_layer(symbolic.flat(x), symbolic.flat(g), symbolic.flat(b), sp.S.Half)
    symbolic.assert_equal(got, want, "γ(x − μ)/√(σ² + ε) + β")


@pytest.mark.spec("layer_norm", tier="S")
@pytest.mark.parametrize("n", SIZES)
def test_layer_norm_affine_invariance_symbolic(n):
    """With ε = 0: layer_norm(cx + d) = layer_norm(x) for every c > 0 and every d."""
    x, g, b = (symbolic.symbols(s, (n,)) for s in ("x", "g", "b"))
    c, d = sp.Symbol("c", positive=True), sp.Symbol("d", real=True)
    moved = symbolic.exprs(spec.layer_norm(x * c + d, g, b, eps=0.0))
    plain = symbolic.exprs(spec.layer_norm(x, g, b, eps=0.0))
    symbolic.assert_equal(moved, plain, "layer_norm(cx + d) = layer_norm(x)")
    # and the proof has teeth: with ε > 0 the same substitution is not an identity
    leaky = symbolic.exprs(spec.layer_norm(x * c + d, g, b, eps=0.5))
    point = {s: v for s, v in zip([*symbolic.flat(x), *symbolic.flat(g), *symbolic.flat(b)],
                                  [*range(1, n + 1), *[1] * n, *[0] * n])}
    point.update({c: sp.Rational(1, 10), d: 3})
    at = [sp.N((e1 - e0).subs(point)) for e1, e0 in zip(leaky, plain)]
    assert max(abs(float(e)) for e in at) > 1e-3, "ε = 0.5 should break the invariance"


@pytest.mark.spec("layer_norm", tier="S")
@pytest.mark.parametrize("n", SIZES)
def test_layer_norm_standardised_symbolic(n):
    """Before the affine map: mean 0, and variance σ²/(σ² + ε) (so 1 with ε = 0)."""
    xp = symbolic.backend().xp
    x = symbolic.symbols("x", (n,))
    ones, zeros = xp.ones((n,), dtype=xp.float64), xp.zeros((n,), dtype=xp.float64)
    xs = symbolic.flat(x)
    mu = sp.Add(*xs) / n
    var = sp.Add(*[(e - mu) ** 2 for e in xs]) / n
    for eps, expected in ((0.0, sp.Integer(1)), (0.5, var / (var + sp.S.Half))):
        y = symbolic.flat(spec.layer_norm(x, ones, zeros, eps=eps))
        symbolic.assert_equal(sp.Add(*y) / n, 0, f"mean (ε = {eps})")
        symbolic.assert_equal(sp.Add(*[e**2 for e in y]) / n, expected, f"variance (ε = {eps})")


@pytest.mark.spec("rms_norm", tier="S")
@pytest.mark.parametrize("n", SIZES)
def test_rms_norm_textbook_and_scale_invariance_symbolic(n):
    x, g = symbolic.symbols("x", (n,)), symbolic.symbols("g", (n,))
    xs, gs = symbolic.flat(x), symbolic.flat(g)
    rms = sp.sqrt(sp.Add(*[e**2 for e in xs]) / n + sp.S.Half)
    symbolic.assert_equal(symbolic.exprs(spec.rms_norm(x, g, eps=0.5)),
                          [gi * xi / rms for xi, gi in zip(xs, gs)], "γ x/√(mean x² + ε)")
    c = sp.Symbol("c", positive=True)
    symbolic.assert_equal(symbolic.exprs(spec.rms_norm(x * c, g, eps=0.0)),
                          symbolic.exprs(spec.rms_norm(x, g, eps=0.0)), "rms_norm(cx)")


@pytest.mark.spec("rms_norm", tier="S")
@pytest.mark.parametrize("n", SIZES)
def test_rms_norm_is_layer_norm_for_zero_mean_input_symbolic(n):
    xp = symbolic.backend().xp
    free = symbolic.flat(symbolic.symbols("x", (n - 1,)))
    x = xp.asarray([*free, -sp.Add(*free)], dtype=xp.float64)  # Σ x = 0
    g = symbolic.symbols("g", (n,))
    zeros = xp.zeros((n,), dtype=xp.float64)
    symbolic.assert_equal(symbolic.exprs(spec.rms_norm(x, g, eps=0.5)),
                          symbolic.exprs(spec.layer_norm(x, g, zeros, eps=0.5)),
                          "rms_norm = layer_norm (β = 0) for Σx = 0")


@pytest.mark.spec("batch_norm", tier="S")
@pytest.mark.parametrize("m", SIZES)
def test_batch_norm_textbook_and_standardised_symbolic(m):
    xp = symbolic.backend().xp
    x = symbolic.symbols("x", (m, 2))
    g, b = symbolic.symbols("g", (2,)), symbolic.symbols("b", (2,))
    got = symbolic.exprs(spec.batch_norm(x, g, b, eps=0.5))
    cols = symbolic.exprs(x).T
    for j in range(2):
        want = _textbook_layer(list(cols[j]), [symbolic.flat(g)[j]] * m,
                               [symbolic.flat(b)[j]] * m, sp.S.Half)
        symbolic.assert_equal(got[:, j], want, f"feature {j}")
    plain = symbolic.exprs(spec.batch_norm(x, xp.ones((2,), dtype=xp.float64),
                                           xp.zeros((2,), dtype=xp.float64), eps=0.0))
    for j in range(2):
        symbolic.assert_equal(sp.Add(*plain[:, j]) / m, 0, "batch mean")
        symbolic.assert_equal(sp.Add(*[e**2 for e in plain[:, j]]) / m, 1, "batch variance")


@pytest.mark.spec("batch_norm", tier="S")
def test_batch_norm_is_layer_norm_of_the_transpose_symbolic():
    xp = symbolic.backend().xp
    x = symbolic.symbols("x", (3, 2))
    bn = symbolic.exprs(spec.batch_norm(x, xp.ones((2,), dtype=xp.float64),
                                        xp.zeros((2,), dtype=xp.float64), eps=0.5))
    ln = symbolic.exprs(spec.layer_norm(xp.permute_dims(x, (1, 0)),
                                        xp.ones((3,), dtype=xp.float64),
                                        xp.zeros((3,), dtype=xp.float64), eps=0.5))
    symbolic.assert_equal(bn, ln.T, "batch_norm(x) = layer_norm(xᵀ)ᵀ")


# ============================================================================ tier P
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
    """The spec is within `tol` of the right formula everywhere; each wrong variant is
    farther than `tol` from the spec somewhere (so the tolerance cannot hide it)."""
    tol = np.broadcast_to(tol, got.shape)
    err = np.abs(got - right)
    assert np.all(err <= tol), f"{name}: off the correct float64 formula by {err} > {tol}"
    for what, wrong in wrongs.items():
        gap = np.where(np.isfinite(wrong), np.abs(got - wrong), np.inf)
        assert np.any(gap > tol), f"{name}: cannot tell the spec from '{what}' ({gap})"


@pytest.mark.spec("layer_norm", tier="P")
def test_layer_norm_eps_inside_root_two_pass_biased(backend, dtype):
    x = _OFFSET_ROWS.astype(dtype)
    ones, zeros = np.ones(8, dtype=dtype), np.zeros(8, dtype=dtype)
    got = _np(backend, spec.layer_norm(*_on(backend, x, ones, zeros), eps=0.5))
    tol = _budget_tol("layer_norm", dtype, _scale(x, 0.5, -1))
    _assert_tells_apart("layer_norm", got, _normalise(x, 0.5, -1),
                        _wrong_variants(x, 0.5, -1, dtype), tol)


@pytest.mark.spec("batch_norm", tier="P")
def test_batch_norm_eps_inside_root_two_pass_biased(backend, dtype):
    x = _OFFSET_ROWS.T.astype(dtype)  # 8 examples, 2 features
    ones, zeros = np.ones(2, dtype=dtype), np.zeros(2, dtype=dtype)
    got = _np(backend, spec.batch_norm(*_on(backend, x, ones, zeros), eps=0.5))
    tol = _budget_tol("batch_norm", dtype, _scale(x, 0.5, 0))
    _assert_tells_apart("batch_norm", got, _normalise(x, 0.5, 0),
                        _wrong_variants(x, 0.5, 0, dtype), tol)


@pytest.mark.spec("rms_norm", tier="P")
def test_rms_norm_eps_inside_root(backend, dtype):
    x = np.array([[0.5, -1.25, 2.0, 0.75], [0.03, -0.02, 0.01, 0.0]], dtype=dtype)
    ones = np.ones(4, dtype=dtype)
    got = _np(backend, spec.rms_norm(*_on(backend, x, ones), eps=0.5))
    right = _normalise(x, 0.5, -1, centre=False)
    tol = _budget_tol("rms_norm", dtype, _scale(x, 0.5, -1, centre=False))
    wrong = {"ε outside the root": _normalise(x, 0.5, -1, centre=False, eps_outside=True)}
    _assert_tells_apart("rms_norm", got, right, wrong, tol)


@st.composite
def _rows(draw, dtype, *, min_side=2, max_side=8):
    shape = draw(cst.shapes(min_dims=1, max_dims=3, min_side=min_side, max_side=max_side),
                 label="shape")
    x = draw(cst.arrays(dtype, shape, min_value=-10, max_value=10), label="x")
    spread = np.ptp(x.astype(np.float64), axis=-1)
    # a near-constant row has an unbounded condition number; keep the rows informative
    x = np.where(spread[..., None] < 1e-2, x + np.arange(shape[-1], dtype=dtype), x)
    return x.astype(dtype)


@pytest.mark.spec("layer_norm", tier="P")
@given(data=st.data())
def test_layer_norm_affine_invariance(backend, dtype, data):
    x = data.draw(_rows(dtype), label="x")
    n = x.shape[-1]
    c = data.draw(cst.floats("float64", 0.1, 10.0), label="c")
    d = data.draw(cst.floats("float64", -100.0, 100.0), label="d")
    eps = data.draw(cst.floats("float64", 1e-6, 1.0), label="eps")
    g = data.draw(cst.arrays(dtype, (n,), min_value=-3, max_value=3), label="gamma")
    b = data.draw(cst.arrays(dtype, (n,), min_value=-3, max_value=3), label="beta")
    moved = (c * x.astype(np.float64) + d).astype(dtype)
    base = _np(backend, spec.layer_norm(*_on(backend, x, g, b), eps=eps))
    # exact with the ε scaled along: layer_norm(cx + d; c²ε) = layer_norm(x; ε)
    scaled = _np(backend, spec.layer_norm(*_on(backend, moved, g, b), eps=c * c * eps))
    size = np.abs(g.astype(np.float64)) * np.maximum(
        _scale(x, eps, -1), _scale(moved, c * c * eps, -1)) + np.abs(b.astype(np.float64))
    # two evaluations, plus the rounding of cx + d to the dtype (≤ 2 ulps at the same scale)
    tol = _budget_tol("layer_norm", dtype, size, factor=2) + 4 * _u(dtype) * size
    assert np.all(np.abs(scaled - base) <= tol)
    # with the same ε the outputs differ by at most the ε effect, |γ x̂|·|1 − √((σ²+ε)/(σ²+ε/c²))|
    same = _np(backend, spec.layer_norm(*_on(backend, moved, g, b), eps=eps))
    size = np.abs(g.astype(np.float64)) * np.maximum(
        _scale(x, eps, -1), _scale(moved, eps, -1)) + np.abs(b.astype(np.float64))
    tol = _budget_tol("layer_norm", dtype, size, factor=2) + 4 * _u(dtype) * size
    var = np.var(x.astype(np.float64), axis=-1, keepdims=True)
    effect = np.abs(1 - np.sqrt((var + eps) / (var + eps / (c * c))))
    xhat = np.abs(_normalise(x, eps, -1) * g.astype(np.float64))
    assert np.all(np.abs(same - base) <= xhat * effect + tol)


@pytest.mark.spec("layer_norm", tier="P")
@given(data=st.data())
def test_layer_norm_standardised(backend, dtype, data):
    x = data.draw(_rows(dtype), label="x")
    n = x.shape[-1]
    eps = data.draw(st.sampled_from([0.0, 1e-5, 0.5]), label="eps")
    ones, zeros = np.ones(n, dtype=dtype), np.zeros(n, dtype=dtype)
    y = _np(backend, spec.layer_norm(*_on(backend, x, ones, zeros), eps=eps))
    tol = _budget_tol("layer_norm", dtype, _scale(x, eps, -1))[..., 0]
    var = np.var(x.astype(np.float64), axis=-1)
    assert np.all(np.abs(np.mean(y, axis=-1)) <= tol)
    # y² is off by ≤ (2|y| + tol)·tol
    slack = (2 * np.max(np.abs(y), axis=-1) + tol) * tol
    assert np.all(np.abs(np.mean(y * y, axis=-1) - var / (var + eps)) <= slack)


@pytest.mark.spec("rms_norm", tier="P")
@given(data=st.data())
def test_rms_norm_zero_mean_is_layer_norm_and_unit_rms(backend, dtype, data):
    x = data.draw(_rows(dtype), label="x")
    n = x.shape[-1]
    eps = data.draw(st.sampled_from([1e-6, 0.5]), label="eps")
    g = data.draw(cst.arrays(dtype, (n,), min_value=-3, max_value=3), label="gamma")
    centred = (x.astype(np.float64) - np.mean(x.astype(np.float64), axis=-1, keepdims=True))
    centred = centred.astype(dtype)  # zero mean up to one rounding per element
    xb, gb, zb = _on(backend, centred, g, np.zeros(n, dtype=dtype))
    rms = _np(backend, spec.rms_norm(xb, gb, eps=eps))
    ln = _np(backend, spec.layer_norm(xb, gb, zb, eps=eps))
    size = np.abs(g.astype(np.float64)) * _scale(centred, eps, -1)
    # both within their budgets of the same value; the residual mean is ≤ n·u·max|x|
    tol = (_budget_tol("rms_norm", dtype, size) + _budget_tol("layer_norm", dtype, size)
           + 2 * n * _u(dtype) * size)
    assert np.all(np.abs(rms - ln) <= tol)
    ones = _on(backend, np.ones(n, dtype=dtype))[0]
    unit = _np(backend, spec.rms_norm(_on(backend, x)[0], ones, eps=eps))
    ms = np.mean(x.astype(np.float64) ** 2, axis=-1)
    budget = _budget_tol("rms_norm", dtype, 1.0)
    np.testing.assert_allclose(np.mean(unit * unit, axis=-1), ms / (ms + eps), rtol=4 * budget,
                               atol=0)


@pytest.mark.spec("rms_norm", tier="P")
@given(data=st.data())
def test_rms_norm_scale_invariance(backend, dtype, data):
    """rms_norm(cx; c²ε) = rms_norm(x; ε); with c a power of two, cx and c²ε are exact."""
    x = data.draw(_rows(dtype), label="x")
    k = data.draw(st.integers(-20, 20), label="log2 c")
    eps = data.draw(st.sampled_from([1e-6, 0.5]), label="eps")
    c = 2.0**k
    g = np.ones(x.shape[-1], dtype=dtype)
    base = _np(backend, spec.rms_norm(*_on(backend, x, g), eps=eps))
    scaled = _np(backend, spec.rms_norm(*_on(backend, (c * x).astype(dtype), g), eps=c * c * eps))
    tol = _budget_tol("rms_norm", dtype, _scale(x, eps, -1, centre=False), factor=2)
    assert np.all(np.abs(scaled - base) <= tol)


_BATCH_AXES = [0, 1, (0, 1), (0, 2)]


@pytest.mark.spec("batch_norm", tier="P")
@given(data=st.data())
def test_batch_norm_standardised_per_feature(backend, dtype, data):
    shape = data.draw(st.tuples(*[st.integers(2, 5)] * 3), label="shape")
    x = data.draw(cst.arrays(dtype, shape, min_value=-10, max_value=10), label="x")
    axis = data.draw(st.sampled_from(_BATCH_AXES), label="axis")
    axes = axis if isinstance(axis, tuple) else (axis,)
    x64 = x.astype(np.float64)
    spread = np.max(x64, axis=axes, keepdims=True) - np.min(x64, axis=axes, keepdims=True)
    x = np.where(spread < 1e-2, x + np.arange(shape[axes[0]]).reshape(
        [-1 if i == axes[0] else 1 for i in range(3)]), x).astype(dtype)
    eps = data.draw(st.sampled_from([0.0, 1e-5, 0.5]), label="eps")
    features = tuple(n for i, n in enumerate(shape) if i not in axes)
    ones, zeros = np.ones(features, dtype=dtype), np.zeros(features, dtype=dtype)
    y = _np(backend, spec.batch_norm(*_on(backend, x, ones, zeros), eps=eps, axis=axis))
    tol = _budget_tol("batch_norm", dtype, _scale(x, eps, axes))
    var = np.var(x.astype(np.float64), axis=axes, keepdims=True)
    assert np.all(np.abs(np.mean(y, axis=axes, keepdims=True)) <= tol)
    slack = (2 * np.max(np.abs(y), axis=axes, keepdims=True) + tol) * tol  # y² off by this
    assert np.all(np.abs(np.mean(y * y, axis=axes, keepdims=True) - var / (var + eps)) <= slack)
    # the same formula as layer_norm, over the batch instead of the features
    if axis == 0:
        flat = np.moveaxis(x, 0, -1)
        ln = _np(backend, spec.layer_norm(*_on(backend, flat, np.ones(shape[0], dtype=dtype),
                                                np.zeros(shape[0], dtype=dtype)), eps=eps))
        assert np.all(np.abs(np.moveaxis(ln, -1, 0) - y) <= 2 * tol)


@pytest.mark.spec("batch_norm", tier="P")
def test_batch_norm_affine_parameters_per_channel(backend, dtype):
    """Images (N, C, H, W) with statistics over (0, 2, 3): γ_c and β_c act per channel."""
    rng = np.random.default_rng(7)
    x = rng.normal(2.0, 3.0, (4, 3, 2, 2)).astype(dtype)
    g, b = np.array([1.0, -2.0, 0.5], dtype=dtype), np.array([0.0, 1.0, -3.0], dtype=dtype)
    y = _np(backend, spec.batch_norm(*_on(backend, x, g, b), axis=(0, 2, 3), eps=1e-5))
    xhat = _normalise(x, 1e-5, (0, 2, 3))
    want = g.astype(np.float64)[None, :, None, None] * xhat + b.astype(np.float64)[
        None, :, None, None]
    size = np.abs(g.astype(np.float64))[None, :, None, None] * _scale(x, 1e-5, (0, 2, 3)) + abs(
        b.astype(np.float64))[None, :, None, None]
    # 16 elements per channel: the budget 2n + 15 is 47 here; twice the records' 31 covers it
    assert np.all(np.abs(y - want) <= _budget_tol("batch_norm", dtype, size, factor=2))


# ============================================================================ tier D
def _rng(seed, shape, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, shape)


# name → (function, argument shapes, options, argnums to differentiate)
DERIVATIVES = {
    "batch_norm": (spec.batch_norm, [(4, 3), (3,), (3,)], {"eps": 1e-3}, [0, 1]),
    "layer_norm": (spec.layer_norm, [(2, 4), (4,), (4,)], {"eps": 1e-3}, [0, 1, 2]),
    "rms_norm": (spec.rms_norm, [(2, 4), (4,)], {"eps": 1e-3}, [0, 1]),
}


@pytest.mark.parametrize(
    ("name", "argnum"),
    [pytest.param(n, a, marks=pytest.mark.spec(n, tier="D"), id=f"{n}-arg{a}")
     for n, (_, _, _, argnums) in DERIVATIVES.items() for a in argnums],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_derivatives_agree(backend, name, argnum, seed):
    """SymPy (traced code, lambdified to the backend), autograd and central differences."""
    fn, shapes, kwargs, _ = DERIVATIVES[name]
    args = [_rng(seed + 10 * i, s) for i, s in enumerate(shapes)]
    derivatives.check_agreement(backend, name, fn, args, argnum, kwargs, seed=seed)
