"""§3 Activations: tiers S, P and D (and the whole-line accuracy sweeps of tier R).

Tier S runs the spec's own code on SymPy symbols. Functions that branch on the sign of x (with
``where``) are traced twice: on positive symbols x, and on −y with y positive, so each branch
is proven; SymPy then differentiates the traced code and the result must equal the traced
``_grad`` and the textbook derivative. Tiers P and D run on every selected backend and dtype.
Tiers X, E and R (record inputs) live in test_tiers.py; the sweeps here add R over the whole
real line.
"""

from __future__ import annotations

import functools
import math
import warnings

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import spec
from conformance import derivatives, oracles, symbolic, tolerances
from conformance import oracles_activations as oa
from conformance import strategies as cst
from conformance.helpers import assert_close, to_backend
from conformance.tolerances import values
from spec import activations as act_module


def _exprs(a):
    return list(symbolic.exprs(a).reshape(-1))


def _pos(n=3, name="x"):
    return symbolic.symbols(name, (n,), positive=True)


def _sigma(z):
    return 1 / (1 + sp.exp(-z))


def _same(lhs, rhs, what):
    """Element-by-element exact equality, with tanh and erf left as they are."""
    symbolic.assert_equal(np.asarray(lhs, dtype=object), np.asarray(rhs, dtype=object), what)


def _same_exp(lhs, rhs, what):
    """Exact equality after rewriting tanh in exponentials."""
    lhs = [sp.sympify(e).rewrite(sp.exp) for e in lhs]
    rhs = [sp.sympify(e).rewrite(sp.exp) for e in rhs]
    _same(lhs, rhs, what)


def _branches(n=3):
    """(traced input, list of the underlying real values as SymPy expressions, label)."""
    x = _pos(n, "x")
    y = _pos(n, "y")
    return [(x, _exprs(x), "x > 0"), (-y, [-e for e in _exprs(y)], "x < 0")]


def _diff(traced, inputs):
    """d traced_i / d input_i elementwise; inputs are the symbols or −y (differentiate in y
    and apply the chain rule: d/dx = −d/dy)."""
    out = []
    for e, v in zip(traced, inputs, strict=True):
        if v.could_extract_minus_sign():
            (y,) = v.free_symbols
            out.append(-sp.diff(e, y))
        else:
            out.append(sp.diff(e, v))
    return out


# ============================================================================ tier S
@pytest.mark.spec("relu", tier="S")
def test_relu_piecewise_odd_part_idempotent():
    for x, xs, label in _branches():
        r = _exprs(spec.relu(x))
        _same(r, [v if v.is_positive else 0 for v in xs], f"relu branch {label}")
        _same(np.array(r) - np.array(_exprs(spec.relu(-x))), xs, f"relu(x) − relu(−x) {label}")
        _same(_exprs(spec.relu(spec.relu(x))), r, f"relu idempotent {label}")


@pytest.mark.spec("relu_grad", tier="S")
def test_relu_grad_is_sympy_derivative():
    for x, xs, label in _branches():
        d = _diff(_exprs(spec.relu(x)), xs)
        _same(_exprs(spec.relu_grad(x)), d, f"relu' {label}")
        _same(d, [1 if v.is_positive else 0 for v in xs], f"textbook relu' {label}")


@pytest.mark.spec("leaky_relu", tier="S")
@pytest.mark.parametrize("alpha", [0.01, 0.25, 0.0])
def test_leaky_relu_branches_and_slope(alpha):
    a = sp.sympify(alpha)
    for x, xs, label in _branches():
        out = _exprs(spec.leaky_relu(x, negative_slope=alpha))
        _same(out, [v if v.is_positive else a * v for v in xs], f"leaky branch {label}")
        slope = _diff(out, xs)
        _same(slope, [1 if v.is_positive else a for v in xs], f"slope α below 0 {label}")
        if alpha == 0.0:
            _same(out, _exprs(spec.relu(x)), "α = 0 is relu")


@pytest.mark.spec("leaky_relu_grad", tier="S")
def test_leaky_relu_grad_is_sympy_derivative():
    for x, xs, label in _branches():
        out = _exprs(spec.leaky_relu(x, negative_slope=0.2))
        _same(_exprs(spec.leaky_relu_grad(x, negative_slope=0.2)), _diff(out, xs),
              f"leaky' {label}")


@pytest.mark.spec("sigmoid", tier="S")
def test_sigmoid_both_branches_are_textbook_and_symmetric():
    for x, xs, label in _branches():
        s = _exprs(spec.sigmoid(x))
        _same(s, [_sigma(v) for v in xs], f"σ = 1/(1 + e^−x) {label}")
        _same(_exprs(spec.sigmoid(-x)), [1 - e for e in s], f"σ(−x) = 1 − σ(x) {label}")


@pytest.mark.spec("sigmoid_grad", tier="S")
def test_sigmoid_grad_is_sympy_derivative_and_sigma_one_minus_sigma():
    for x, xs, label in _branches():
        s = _exprs(spec.sigmoid(x))
        grad = _exprs(spec.sigmoid_grad(x))
        _same(grad, _diff(s, xs), f"σ' = d/dx traced σ {label}")
        _same(grad, [e * (1 - e) for e in s], f"σ' = σ(1 − σ) {label}")
        _same(grad, [_sigma(v) * (1 - _sigma(v)) for v in xs], f"textbook σ' {label}")


@pytest.mark.spec("tanh", tier="S")
def test_tanh_is_textbook_and_two_sigmoid_two_x_minus_one():
    for x, xs, label in _branches():
        t = _exprs(spec.tanh(x))
        _same_exp(t, [(sp.exp(v) - sp.exp(-v)) / (sp.exp(v) + sp.exp(-v)) for v in xs],
                  f"tanh textbook {label}")
        via = _exprs(2 * spec.sigmoid(2 * x) - 1)
        _same_exp(t, via, f"tanh(x) = 2σ(2x) − 1 {label}")


@pytest.mark.spec("tanh_grad", tier="S")
def test_tanh_grad_is_sympy_derivative_and_one_minus_tanh_squared():
    for x, xs, label in _branches():
        t = _exprs(spec.tanh(x))
        grad = _exprs(spec.tanh_grad(x))
        _same_exp(grad, _diff(t, xs), f"tanh' = d/dx traced tanh {label}")
        _same_exp(grad, [1 - e**2 for e in t], f"tanh' = 1 − tanh² {label}")


@pytest.mark.spec("erf", tier="S")
def test_erf_on_exact_arithmetic_is_the_error_function():
    x = symbolic.symbols("x", (3,))  # no sign assumption: nothing branches
    _same(_exprs(spec.erf(x)), [sp.erf(v) for v in _exprs(x)], "erf")
    t = sp.Symbol("t", real=True)
    for v in _exprs(x):
        assert sp.erf(v) == sp.Integral(2 / sp.sqrt(sp.pi) * sp.exp(-t**2), (t, 0, v)).doit()
    _same(_exprs(spec.erf(-x)), [-sp.erf(v) for v in _exprs(x)], "odd")


@pytest.mark.spec("erf_grad", tier="S")
def test_erf_grad_is_sympy_derivative():
    x = symbolic.symbols("x", (3,))
    xs = _exprs(x)
    grad = _exprs(spec.erf_grad(x))
    _same(grad, _diff(_exprs(spec.erf(x)), xs), "erf' = d/dx traced erf")
    _same(grad, [2 / sp.sqrt(sp.pi) * sp.exp(-v**2) for v in xs], "2/√π e^{−x²}")


def _Phi(v):
    return (1 + sp.erf(v / sp.sqrt(2))) / 2


def _phi(v):
    return sp.exp(-v**2 / 2) / sp.sqrt(2 * sp.pi)


@pytest.mark.spec("gelu", tier="S")
def test_gelu_exact_form_is_x_phi():
    for x, xs, label in _branches():
        _same(_exprs(spec.gelu(x)), [v * _Phi(v) for v in xs], f"x·Φ(x) {label}")


@pytest.mark.spec("gelu_grad", tier="S")
def test_gelu_grad_exact_is_phi_plus_x_density():
    for x, xs, label in _branches():
        grad = _exprs(spec.gelu_grad(x))
        _same(grad, _diff(_exprs(spec.gelu(x)), xs), f"GELU' = d/dx traced GELU {label}")
        _same(grad, [_Phi(v) + v * _phi(v) for v in xs], f"Φ + xφ {label}")


@pytest.fixture
def symbolic_gelu_constants(monkeypatch):
    """Trace the tanh form with its two constants as symbols c = √(2/π) and k = 0.044715, so
    the identities are proven for the constants as they appear in the code (whose values are
    checked separately against √(2/π) and 0.044715)."""
    xp = symbolic.backend().xp
    c = sp.Symbol("c", positive=True)
    k = sp.Symbol("k", positive=True)
    # as 0-d symbolic arrays, so that `constant * array` dispatches to the symbolic namespace
    monkeypatch.setattr(act_module, "_SQRT_2_OVER_PI", xp.asarray(c))
    monkeypatch.setattr(act_module, "_GELU_CUBIC", xp.asarray(k))
    return c, k


@pytest.mark.spec("gelu", tier="S")
def test_gelu_tanh_form_is_textbook(symbolic_gelu_constants):
    c, k = symbolic_gelu_constants
    for x, xs, label in _branches(2):
        got = _exprs(spec.gelu(x, approximate="tanh"))
        want = [v / 2 * (1 + sp.tanh(c * (v + k * v**3))) for v in xs]
        _same_exp(got, want, f"tanh form {label}")


@pytest.mark.spec("gelu_grad", tier="S")
def test_gelu_grad_tanh_is_sympy_derivative(symbolic_gelu_constants):
    c, k = symbolic_gelu_constants
    for x, xs, label in _branches(2):
        grad = _exprs(spec.gelu_grad(x, approximate="tanh"))
        _same_exp(grad, _diff(_exprs(spec.gelu(x, approximate="tanh")), xs),
                  f"tanh-GELU' = d/dx traced {label}")
        textbook = _diff([v / 2 * (1 + sp.tanh(c * (v + k * v**3))) for v in xs], xs)
        _same_exp(grad, textbook, f"derivative of the tanh form {label}")


@pytest.mark.spec("gelu", tier="S")
def test_gelu_constants_are_the_documented_numbers():
    """Companion of the symbolic proofs: the code's constants are √(2/π), 0.044715 and the
    other constants it writes as decimals, each the double nearest its exact value."""
    with mpmath.workdps(30):
        assert act_module._SQRT_2_OVER_PI == float(mpmath.sqrt(2 / mpmath.pi))
        assert act_module._INV_SQRT_PI == float(1 / mpmath.sqrt(mpmath.pi))
        assert act_module._TWO_OVER_SQRT_PI == float(2 / mpmath.sqrt(mpmath.pi))
        assert act_module._INV_SQRT_2PI == float(1 / mpmath.sqrt(2 * mpmath.pi))
    assert act_module._GELU_CUBIC == 0.044715


@pytest.mark.spec("silu", tier="S")
@pytest.mark.parametrize("beta", [1.0, 2.0, 0.5])
def test_silu_textbook_and_odd_part(beta):
    b = sp.sympify(beta)
    for x, xs, label in _branches():
        out = _exprs(spec.silu(x, beta=beta))
        _same(out, [v / (1 + sp.exp(-b * v)) for v in xs], f"x·σ(βx) {label}")
        if beta == 1.0:
            diff = np.array(out) - np.array(_exprs(spec.silu(-x)))
            _same(diff, xs, f"silu(x) − silu(−x) = x {label}")
    x = symbolic.symbols("x", (3,))  # β = 0 does not branch
    _same(_exprs(spec.silu(x, beta=0.0)), [v / 2 for v in _exprs(x)], "β = 0 gives x/2")


@pytest.mark.spec("silu_grad", tier="S")
@pytest.mark.parametrize("beta", [1.0, 2.0, 0.5])
def test_silu_grad_is_sympy_derivative_and_textbook(beta):
    b = sp.sympify(beta)
    for x, xs, label in _branches():
        grad = _exprs(spec.silu_grad(x, beta=beta))
        _same(grad, _diff(_exprs(spec.silu(x, beta=beta)), xs), f"silu' traced {label}")
        textbook = [_sigma(b * v) * (1 + b * v * (1 - _sigma(b * v))) for v in xs]
        _same(grad, textbook, f"σ(βx)(1 + βx(1 − σ(βx))) {label}")


@pytest.mark.spec("swiglu", tier="S")
@pytest.mark.parametrize("n", [2, 3])
def test_swiglu_with_identity_weights_is_silu_times_x(n):
    xp = symbolic.backend().xp
    eye = xp.eye(n, dtype=xp.float64)
    for x, xs, label in _branches(n):
        got = _exprs(spec.swiglu(x, eye, eye))
        _same(got, [v * _sigma(v) * v for v in xs], f"W = V = I {label}")
        _same(got, list(np.array(_exprs(spec.silu(x))) * np.array(xs)), f"silu(x)·x {label}")


def _swiglu_symbols(sign):
    """x, W positive (or W negated): every gate xWᵀ has a known sign; V has none."""
    x = symbolic.symbols("x", (2, 3), positive=True)
    W = symbolic.symbols("W", (2, 3), positive=True)
    V = symbolic.symbols("V", (2, 3))
    return x, (W if sign > 0 else -W), V


@pytest.mark.spec("swiglu", tier="S")
@pytest.mark.parametrize("sign", [1, -1])
def test_swiglu_is_gated_products(sign):
    x, W, V = _swiglu_symbols(sign)
    X, Wm, Vm = (np.asarray(symbolic.exprs(a)) for a in (x, W, V))
    got = symbolic.exprs(spec.swiglu(x, W, V))
    for i in range(2):
        for j in range(2):
            a = sum(X[i, k] * Wm[j, k] for k in range(3))
            b = sum(X[i, k] * Vm[j, k] for k in range(3))
            _same([got[i, j]], [a * _sigma(a) * b], f"swiglu[{i},{j}]")


@pytest.mark.spec("swiglu_vjp", tier="S")
@pytest.mark.parametrize("sign", [1, -1])
def test_swiglu_vjp_is_sympy_gradient(sign):
    x, W, V = _swiglu_symbols(sign)
    g = symbolic.symbols("g", (2, 2))
    loss = sp.Add(*[gi * yi for gi, yi in zip(_exprs(g), _exprs(spec.swiglu(x, W, V)),
                                              strict=True)])
    grads = spec.swiglu_vjp(x, W, V, g)
    for name, arg, got in zip("xWV", (x, W, V), grads, strict=True):
        targets = _exprs(arg)
        _same(_exprs(got), _diff([loss] * len(targets), targets), f"∂⟨g, swiglu⟩/∂{name}")


# ============================================================================ tier P
def _on(backend, *arrays):
    return [to_backend(backend, a) for a in arrays]


def _np(backend, x):
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def _values(dtype, lo=-30.0, hi=30.0, **kw):
    return cst.arrays(dtype, cst.shapes(max_dims=2), min_value=lo, max_value=hi, **kw)


def _eps(dtype):
    return float(np.finfo(dtype).eps)


@pytest.mark.spec("relu", tier="P")
@given(data=st.data())
def test_relu_properties(backend, dtype, data):
    x = data.draw(_values(dtype, -1e3, 1e3), label="x")
    (xb,) = _on(backend, x)
    r = _np(backend, spec.relu(xb))
    assert np.all(r >= 0)
    np.testing.assert_array_equal(r, np.maximum(x, 0))
    np.testing.assert_array_equal(r - _np(backend, spec.relu(-xb)), x.astype(np.float64))
    np.testing.assert_array_equal(_np(backend, spec.relu(spec.relu(xb))), r)
    assert np.isnan(_np(backend, spec.relu(*_on(backend, np.array([np.nan], dtype=dtype))))[0])


@pytest.mark.spec("relu_grad", tier="P")
@given(data=st.data())
def test_relu_grad_is_zero_or_one(backend, dtype, data):
    x = data.draw(_values(dtype), label="x")
    (xb,) = _on(backend, x)
    np.testing.assert_array_equal(_np(backend, spec.relu_grad(xb)), (x > 0).astype(float))
    special = np.array([0.0, -0.0, np.nan], dtype=dtype)
    got = _np(backend, spec.relu_grad(*_on(backend, special)))
    assert got[0] == 0 and got[1] == 0 and np.isnan(got[2])


@pytest.mark.spec("leaky_relu", tier="P")
@given(data=st.data(), alpha=st.sampled_from([0.01, 0.2, 0.0, -0.5]))
def test_leaky_relu_slope_alpha_below_zero(backend, dtype, data, alpha):
    x = data.draw(_values(dtype), label="x")
    (xb,) = _on(backend, x)
    got = _np(backend, spec.leaky_relu(xb, negative_slope=alpha))
    expected = np.where(x < 0, np.asarray(alpha, dtype=dtype) * x, x).astype(np.float64)
    assert_close(backend, got, expected, dtype, what="leaky_relu")
    np.testing.assert_array_equal(got[x >= 0], x[x >= 0])
    if alpha == 0.0:
        np.testing.assert_array_equal(got, _np(backend, spec.relu(xb)))
    grad = _np(backend, spec.leaky_relu_grad(xb, negative_slope=alpha))
    np.testing.assert_array_equal(grad, np.where(x > 0, 1.0, np.float64(np.float32(alpha))
                                                 if dtype == "float32" else alpha))


@pytest.mark.spec("leaky_relu_grad", tier="P")
def test_leaky_relu_grad_two_values(backend, dtype):
    x = np.array([-3.0, -0.0, 0.0, 1e-30, 5.0, np.nan], dtype=dtype)
    got = _np(backend, spec.leaky_relu_grad(*_on(backend, x), negative_slope=0.25))
    np.testing.assert_array_equal(got[:5], [0.25, 0.25, 0.25, 1.0, 1.0])
    assert np.isnan(got[5])


@pytest.mark.spec("sigmoid", tier="P")
@given(data=st.data())
def test_sigmoid_symmetry_range_monotone(backend, dtype, data):
    x = data.draw(_values(dtype, -60, 60), label="x")
    (xb,) = _on(backend, x)
    s = _np(backend, spec.sigmoid(xb))
    assert np.all((s >= 0) & (s <= 1))
    np.testing.assert_allclose(_np(backend, spec.sigmoid(-xb)), 1 - s, rtol=0,
                               atol=2 * _eps(dtype))
    order = np.argsort(x.reshape(-1), kind="stable")
    assert np.all(np.diff(s.reshape(-1)[order]) >= 0)


@pytest.mark.spec("sigmoid", tier="P")
def test_sigmoid_at_plus_minus_1000_no_overflow_no_nan(backend, dtype):
    x = np.array([-1000.0, -100.0, -88.7, 88.7, 100.0, 1000.0, -np.inf, np.inf], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        s = _np(backend, spec.sigmoid(*_on(backend, x)))
    assert not np.any(np.isnan(s))
    assert s[0] == 0 and s[5] == 1 and s[6] == 0 and s[7] == 1
    assert 0 <= s[1] < 1e-40  # e^{−100}: subnormal in float32 (0 where subnormals flush)
    assert s[1] > 0 or dtype == "float32"


@pytest.mark.spec("sigmoid_grad", tier="P")
@given(data=st.data())
def test_sigmoid_grad_bounds_even_peak(backend, dtype, data):
    x = data.draw(_values(dtype, -60, 60), label="x")
    (xb,) = _on(backend, x)
    g = _np(backend, spec.sigmoid_grad(xb))
    assert np.all((g >= 0) & (g <= 0.25))
    np.testing.assert_array_equal(g, _np(backend, spec.sigmoid_grad(-xb)))
    s = _np(backend, spec.sigmoid(xb))
    np.testing.assert_allclose(g, s * (1 - s), rtol=values(dtype).rtol, atol=2 * _eps(dtype))
    assert _np(backend, spec.sigmoid_grad(*_on(backend, np.zeros(1, dtype))))[0] == 0.25


@pytest.mark.spec("tanh", tier="P")
@given(data=st.data())
def test_tanh_is_two_sigmoid_minus_one_odd_bounded(backend, dtype, data):
    x = data.draw(_values(dtype), label="x")
    (xb,) = _on(backend, x)
    t = _np(backend, spec.tanh(xb))
    assert np.all(np.abs(t) <= 1)
    np.testing.assert_array_equal(_np(backend, spec.tanh(-xb)), -t)
    via = 2 * _np(backend, spec.sigmoid(2 * xb)) - 1
    # 2σ(2x) − 1 cancels near 0: its error is absolute, a few eps
    np.testing.assert_allclose(t, via, rtol=values(dtype).rtol, atol=4 * _eps(dtype))


@pytest.mark.spec("tanh_grad", tier="P")
@given(data=st.data())
def test_tanh_grad_bounds_and_relation_to_sigmoid_grad(backend, dtype, data):
    x = data.draw(_values(dtype), label="x")
    (xb,) = _on(backend, x)
    g = _np(backend, spec.tanh_grad(xb))
    assert np.all((g >= 0) & (g <= 1))
    np.testing.assert_array_equal(g, _np(backend, spec.tanh_grad(-xb)))
    assert_close(backend, g, 4 * _np(backend, spec.sigmoid_grad(2 * xb)), dtype,
                 what="tanh' = 4σ'(2x)")
    t = _np(backend, spec.tanh(xb))
    # 1 − t² near |t| = 1 carries 2|δt| absolutely: the library's tanh within its 4-ulp budget
    # (ulps of size eps/2 there) gives 4 eps, and the square and the subtraction round too
    np.testing.assert_allclose(g, 1 - t * t, rtol=values(dtype).rtol, atol=8 * _eps(dtype))


@pytest.mark.spec("erf", tier="P")
@given(data=st.data())
def test_erf_odd_bounded_monotone(backend, dtype, data):
    x = data.draw(_values(dtype, -10, 10), label="x")
    (xb,) = _on(backend, x)
    e = _np(backend, spec.erf(xb))
    assert np.all(np.abs(e) <= 1)
    np.testing.assert_array_equal(_np(backend, spec.erf(-xb)), -e)
    order = np.argsort(x.reshape(-1), kind="stable")
    assert np.all(np.diff(e.reshape(-1)[order]) >= 0)


@pytest.mark.spec("erf", tier="P")
def test_erf_special_values(backend, dtype):
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-30, 30.0, -30.0], dtype=dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        e = _np(backend, spec.erf(*_on(backend, x)))
    assert e[0] == 1 and e[1] == -1 and np.isnan(e[2]) and e[3] == 0 and e[4] == 0
    assert e[6] == 1 and e[7] == -1
    np.testing.assert_allclose(e[5], 2e-30 / math.sqrt(math.pi), rtol=4 * _eps(dtype))


def _native_erf(backend):
    """The backend's own erf (host array in, host array out), or None when it has none.
    NumPy, array-api-strict and Dask (NumPy underneath) have SciPy's."""
    if backend.id in ("numpy", "array_api_strict", "dask"):
        special = pytest.importorskip("scipy.special")
        return special.erf
    if backend.id.startswith("cupy"):
        cupy = pytest.importorskip("cupy")
        special = pytest.importorskip("cupyx.scipy.special")
        return lambda host: cupy.asnumpy(special.erf(cupy.asarray(host)))
    if backend.id.startswith("torch"):
        import torch

        return lambda host: torch.special.erf(torch.asarray(host)).numpy()
    if backend.id.startswith("jax"):
        import jax.numpy as jnp
        import jax.scipy.special as jss

        return lambda host: np.asarray(jss.erf(jnp.asarray(host)))
    return None


@functools.cache
def _erf_sweep(dtype: str, n: int = 100_000):
    """10⁵ points: linear over [−6, 6], log-spaced magnitudes from 1e−30 to 6 (both signs),
    the tails out to ±30, and the special points; with the mpmath reference."""
    x = np.concatenate([
        np.linspace(-6.0, 6.0, n // 2),
        np.logspace(-30, math.log10(6.0), n // 4),
        -np.logspace(-30, math.log10(6.0), n // 8),
        np.linspace(6.0, 30.0, n // 16), -np.linspace(6.0, 30.0, n // 16),
        [0.0, 0.46875, -0.46875, 4.0, -4.0, 5e-324, 1e-300, 1e-45],
    ]).astype(dtype)
    x.setflags(write=False)
    return x, oa.erf(x)


@pytest.mark.spec("erf", tier="P")
def test_erf_agrees_with_each_backends_native_erf(backend, dtype):
    """The proof that would allow a backend to swap in its native erf: on the 10⁵-point sweep
    the native erf is itself within erf's ulp budget of mpmath (so the swap passes tier R) and
    within that budget of ours."""
    native = _native_erf(backend)
    if native is None:
        pytest.skip(f"{backend.id} has no native erf to compare with")
    x, want = _erf_sweep(dtype)
    budget = tolerances.ULP_BUDGET["erf"][dtype]
    theirs = np.asarray(native(np.array(x)), dtype=np.float64)
    ours = _np(backend, spec.erf(to_backend(backend, np.array(x))))
    native_error = oracles.ulp_error(theirs, want, np.dtype(dtype)).max()
    assert native_error <= budget, f"native erf is {native_error} ulp from mpmath"
    difference = oracles.ulp_error(ours, theirs, np.dtype(dtype)).max()
    assert difference <= budget, f"ours and native differ by {difference} ulp"


@pytest.mark.spec("erf_grad", tier="P")
@given(data=st.data())
def test_erf_grad_bounds_even(backend, dtype, data):
    x = data.draw(_values(dtype, -10, 10), label="x")
    (xb,) = _on(backend, x)
    g = _np(backend, spec.erf_grad(xb))
    assert np.all((g >= 0) & (g <= 2 / math.sqrt(math.pi) * (1 + 4 * _eps(dtype))))
    np.testing.assert_array_equal(g, _np(backend, spec.erf_grad(-xb)))
    assert_close(backend, spec.erf_grad(*_on(backend, np.zeros(1, dtype))),
                 [2 / math.sqrt(math.pi)], dtype, what="erf'(0)")


@pytest.mark.spec("gelu", tier="P")
@given(data=st.data())
def test_gelu_forms_differ_by_less_than_1e_3(backend, dtype, data):
    x = data.draw(_values(dtype, -1e4, 1e4), label="x")
    (xb,) = _on(backend, x)
    exact = _np(backend, spec.gelu(xb))
    approx = _np(backend, spec.gelu(xb, approximate="tanh"))
    assert np.all(np.abs(exact - approx) < 1e-3)


@pytest.mark.spec("gelu", tier="P")
def test_gelu_forms_largest_difference_located(backend, dtype):
    """Dense grid over [−10, 10] (beyond, both forms are x or 0 to far below 1e−3): the
    largest |GELU − GELU_tanh| is 4.73e−4 at |x| ≈ 2.70 — below 1e−3, and not 0 (the option
    really selects a different function)."""
    x = np.linspace(-10.0, 10.0, 400_001).astype(dtype)
    (xb,) = _on(backend, x)
    diff = np.abs(_np(backend, spec.gelu(xb)) - _np(backend, spec.gelu(xb,
                                                                       approximate="tanh")))
    i = int(np.argmax(diff))
    assert 4.6e-4 < diff[i] < 4.8e-4 and abs(abs(float(x[i])) - 2.70) < 0.02, (x[i], diff[i])


@pytest.mark.spec("gelu", tier="P")
@given(data=st.data(), approximate=st.sampled_from(["none", "tanh"]))
def test_gelu_limits_and_minimum(backend, dtype, data, approximate):
    x = data.draw(_values(dtype, -50, 50), label="x")
    (xb,) = _on(backend, x)
    y = _np(backend, spec.gelu(xb, approximate=approximate))
    # each form's global minimum, from mpmath (findroot of the derivative at 30 digits): the
    # exact form −0.1699712… at x ≈ −0.7518, the tanh form −0.1700408… at x ≈ −0.7525
    minimum = {"none": -0.16997120747990366, "tanh": -0.17004075057125405}[approximate]
    assert np.all(y >= minimum * (1 + 4 * _eps(dtype)))
    big = x.astype(np.float64) > 10
    np.testing.assert_array_equal(y[big], x[big])
    assert np.all(np.abs(y[x < -10]) < 1e-20)
    ends = np.array([-np.inf, np.inf, np.nan], dtype=dtype)
    e = _np(backend, spec.gelu(*_on(backend, ends), approximate=approximate))
    assert e[0] == 0 and e[1] == np.inf and np.isnan(e[2])


@pytest.mark.spec("gelu_grad", tier="P")
@given(data=st.data(), approximate=st.sampled_from(["none", "tanh"]))
def test_gelu_grad_limits(backend, dtype, data, approximate):
    x = data.draw(_values(dtype, -50, 50), label="x")
    (xb,) = _on(backend, x)
    g = _np(backend, spec.gelu_grad(xb, approximate=approximate))
    assert np.all((g > -0.13) & (g < 1.13))
    np.testing.assert_allclose(g[x > 10], 1.0, rtol=0, atol=_eps(dtype))
    assert np.all(np.abs(g[x < -10]) < 1e-18)
    ends = np.array([-np.inf, 0.0, np.inf, np.nan], dtype=dtype)
    e = _np(backend, spec.gelu_grad(*_on(backend, ends), approximate=approximate))
    assert e[0] == 0 and e[1] == 0.5 and e[2] == 1 and np.isnan(e[3])


@pytest.mark.spec("silu", tier="P")
@given(data=st.data(), beta=st.sampled_from([1.0, 1.702, 0.5, -2.0]))
def test_silu_limits_and_odd_part(backend, dtype, data, beta):
    x = data.draw(_values(dtype, -60, 60), label="x")
    (xb,) = _on(backend, x)
    y = _np(backend, spec.silu(xb, beta=beta))
    z = beta * x.astype(np.float64)
    np.testing.assert_allclose(y[z > 40], x[z > 40], rtol=_eps(dtype))
    assert np.all(np.abs(y[z < -40]) < 1e-15)
    if beta == 1.0:
        np.testing.assert_allclose(y - _np(backend, spec.silu(-xb)), x, rtol=values(dtype).rtol,
                                   atol=4 * _eps(dtype))
        assert np.all(y >= -0.2785)
    half = _np(backend, spec.silu(xb, beta=0.0))
    np.testing.assert_array_equal(half, x.astype(np.float64) / 2)


@pytest.mark.spec("silu_grad", tier="P")
@given(data=st.data())
def test_silu_grad_limits_and_extrema(backend, dtype, data):
    x = data.draw(_values(dtype, -60, 60), label="x")
    (xb,) = _on(backend, x)
    g = _np(backend, spec.silu_grad(xb))
    assert np.all((g >= -0.0999) & (g <= 1.0999))
    np.testing.assert_allclose(g[x > 40], 1.0, atol=_eps(dtype))
    assert np.all(np.abs(g[x < -40]) < 1e-15)
    ends = np.array([-np.inf, 0.0, np.inf, np.nan], dtype=dtype)
    e = _np(backend, spec.silu_grad(*_on(backend, ends)))
    assert e[0] == 0 and e[1] == 0.5 and e[2] == 1 and np.isnan(e[3])
    extrema = np.array([-2.399357280515467, 2.399357280515467], dtype=dtype)
    m = _np(backend, spec.silu_grad(*_on(backend, extrema)))
    np.testing.assert_allclose(m, [-0.09983932, 1.09983932], rtol=1e-6)


def _weights(data, dtype, n_in, hidden, label):
    return data.draw(cst.arrays(dtype, (hidden, n_in), min_value=-2, max_value=2), label=label)


@pytest.mark.spec("swiglu", tier="P")
@given(data=st.data())
def test_swiglu_identity_weights_and_linear_in_v(backend, dtype, data):
    n = data.draw(st.integers(1, 5), label="n")
    hidden = data.draw(st.integers(1, 5), label="hidden")
    x = data.draw(cst.arrays(dtype, (3, n), min_value=-4, max_value=4), label="x")
    eye = np.eye(n, dtype=dtype)
    xb, eb = _on(backend, x, eye)
    assert_close(backend, spec.swiglu(xb, eb, eb), _np(backend, spec.silu(xb)) * x, dtype,
                 what="W = V = I")
    W = _weights(data, dtype, n, hidden, "W")
    V1, V2 = _weights(data, dtype, n, hidden, "V1"), _weights(data, dtype, n, hidden, "V2")
    Wb, V1b, V2b = _on(backend, W, V1, V2)
    combined = _np(backend, spec.swiglu(xb, Wb, *_on(backend, (2 * V1.astype(np.float64)
                                                              - V2).astype(dtype))))
    parts = 2 * _np(backend, spec.swiglu(xb, Wb, V1b)) - _np(backend, spec.swiglu(xb, Wb, V2b))
    # both sides round the products xVᵀ (terms of size ≤ 4·2·n) and the gate silu(xWᵀ)
    gate = np.abs(x.astype(np.float64) @ W.T.astype(np.float64))
    scale = (np.max(gate, initial=0) + 1) * (1 + 8 * n)
    np.testing.assert_allclose(combined, parts, rtol=values(dtype).rtol,
                               atol=64 * _eps(dtype) * scale)
    assert combined.shape == (3, hidden)


@pytest.mark.spec("swiglu_vjp", tier="P")
@given(data=st.data())
def test_swiglu_vjp_linear_in_g_and_shapes(backend, dtype, data):
    n = data.draw(st.integers(1, 4), label="n")
    hidden = data.draw(st.integers(1, 4), label="hidden")
    batch = data.draw(cst.shapes(min_dims=0, max_dims=2, max_side=3), label="batch")
    x = data.draw(cst.arrays(dtype, (*batch, n), min_value=-3, max_value=3), label="x")
    W, V = _weights(data, dtype, n, hidden, "W"), _weights(data, dtype, n, hidden, "V")
    g = data.draw(cst.arrays(dtype, (*batch, hidden), min_value=-2, max_value=2), label="g")
    xb, Wb, Vb, gb = _on(backend, x, W, V, g)
    one = [_np(backend, a) for a in spec.swiglu_vjp(xb, Wb, Vb, gb)]
    assert [a.shape for a in one] == [x.shape, W.shape, V.shape]
    three = [_np(backend, a) for a in spec.swiglu_vjp(xb, Wb, Vb, 3 * gb)]
    for a, b in zip(one, three, strict=True):
        np.testing.assert_allclose(b, 3 * a, rtol=values(dtype).rtol,
                                   atol=values(dtype).atol * (1 + np.max(np.abs(b), initial=0)))
    zero = spec.swiglu_vjp(xb, Wb, Vb, 0 * gb)
    assert all(np.all(_np(backend, a) == 0) for a in zero)


# ============================================================================ tier R sweeps
@pytest.mark.spec("erf", tier="R")
def test_erf_whole_line_sweep(backend, dtype):
    """10⁵ points over the whole real line against mpmath (measured maximum: ≈ 4 ulp)."""
    x, want = _erf_sweep(dtype)
    got = _np(backend, spec.erf(to_backend(backend, np.array(x))))
    err = oracles.ulp_error(got, want, np.dtype(dtype))
    budget = tolerances.ULP_BUDGET["erf"][dtype]
    assert err.max() <= budget, f"erf: {err.max()} ulp at x = {x[np.argmax(err)]!r}"


_SWEPT = [
    ("sigmoid", {}), ("sigmoid_grad", {}), ("tanh", {}), ("tanh_grad", {}), ("erf_grad", {}),
    ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("gelu_grad", {}),
    ("gelu_grad", {"approximate": "tanh"}), ("silu", {}), ("silu", {"beta": 1.702}),
    ("silu_grad", {}), ("silu_grad", {"beta": -0.7}), ("leaky_relu", {"negative_slope": 0.1}),
]


@functools.cache
def _sweep(name: str, kw_items: tuple, dtype: str):
    """Linear over [−40, 40] and log-spaced magnitudes 1e−20 … 800 of both signs, into the
    subnormal results of each dtype; with the mpmath reference."""
    lin = np.linspace(-40.0, 40.0, 2001)
    mags = np.logspace(-20, math.log10(800.0 if dtype == "float64" else 110.0), 1000)
    x = np.concatenate([lin, mags, -mags]).astype(dtype)
    x.setflags(write=False)
    return x, oa.ORACLES[name](x, **dict(kw_items))


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [pytest.param(n, k, marks=pytest.mark.spec(n, tier="R"), id=f"{n}{k or ''}")
     for n, k in _SWEPT],
)
def test_elementwise_sweep_against_mpmath(backend, dtype, name, kwargs):
    rec = spec.catalogue()[name]
    if limit := rec.limit(backend.id, "R", "whole-line sweep"):
        pytest.skip(f"{limit.reason} ({limit.link})")
    x, want = _sweep(name, tuple(sorted(kwargs.items())), dtype)
    got = _np(backend, getattr(spec, name)(to_backend(backend, np.array(x)), **kwargs))
    floor = oracles.scale_floor(name, want, (x,), kwargs)
    err = oracles.ulp_error(got, want, np.dtype(dtype), floor=floor)
    if rec.limit(backend.id, "R", act_module.SUBNORMAL):
        # a backend that flushes subnormals to zero (a documented limit of the record) is
        # measured only where no result or intermediate can be subnormal: |ref| ≥ tiny/eps
        info = np.finfo(dtype)
        err = np.where(np.abs(want) >= float(info.tiny) / float(info.eps), err, 0.0)
    budget = tolerances.ULP_BUDGET[name][dtype]
    i = int(np.argmax(err))
    assert err[i] <= budget, f"{name}{kwargs}: {err[i]} ulp at x = {x[i]!r}: {got[i]!r} vs " \
                             f"{want[i]!r}"


# ============================================================================ tier D
def _inputs(seed, kind, shape):
    rng = np.random.default_rng(seed)
    if kind == "positive":  # away from the kink and the where-branch point at 0
        return rng.uniform(0.2, 3.0, shape)
    return rng.uniform(-3.0, 3.0, shape)


def _flip(f):
    """x ↦ f(−x): traced on positive symbols, it covers f's x < 0 branch."""

    @functools.wraps(f)
    def flipped(a, **kwargs):
        return f(-a, **kwargs)

    return flipped


def _unary(f_name, grad_name, kwargs=None, sign=1, assume=True):
    """(fn, makers, closed, assumptions) for an elementwise f and its _grad."""
    f, grad = getattr(spec, f_name), getattr(spec, grad_name)
    kwargs = kwargs or {}
    if sign > 0:
        fn = functools.partial(f, **kwargs)

        def closed(xp, a, c):
            return grad(a[0], **kwargs) * c
    else:
        fn = functools.partial(_flip(f), **kwargs)

        def closed(xp, a, c):  # d/dx f(−x) = −f'(−x)
            return -grad(-a[0], **kwargs) * c
    return fn, "positive" if assume else "real", closed, {"positive": True} if assume else {}


DERIVATIVES = {
    "relu+": ("relu", "relu_grad", {}, 1, True),
    "relu-": ("relu", "relu_grad", {}, -1, True),
    "leaky_relu+": ("leaky_relu", "leaky_relu_grad", {"negative_slope": 0.2}, 1, True),
    "leaky_relu-": ("leaky_relu", "leaky_relu_grad", {"negative_slope": 0.2}, -1, True),
    "sigmoid+": ("sigmoid", "sigmoid_grad", {}, 1, True),
    "sigmoid-": ("sigmoid", "sigmoid_grad", {}, -1, True),
    "tanh": ("tanh", "tanh_grad", {}, 1, False),
    "erf": ("erf", "erf_grad", {}, 1, False),
    "gelu": ("gelu", "gelu_grad", {}, 1, False),
    "gelu_tanh+": ("gelu", "gelu_grad", {"approximate": "tanh"}, 1, True),
    "gelu_tanh-": ("gelu", "gelu_grad", {"approximate": "tanh"}, -1, True),
    "silu+": ("silu", "silu_grad", {}, 1, True),
    "silu-": ("silu", "silu_grad", {}, -1, True),
    "silu_beta-": ("silu", "silu_grad", {"beta": 1.702}, -1, True),
}


@pytest.mark.parametrize(
    "case",
    [pytest.param(k, marks=pytest.mark.spec(v[0], v[1], tier="D"), id=k)
     for k, v in DERIVATIVES.items()],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_derivatives_agree(backend, case, seed):
    """SymPy (the traced code, lambdified to the backend), autograd and central differences
    agree, and so does the spec's `_grad` as the closed form."""
    f_name, grad_name, kwargs, sign, assume = DERIVATIVES[case]
    fn, kind, closed, assumptions = _unary(f_name, grad_name, kwargs, sign, assume)
    x = _inputs(seed, kind, (2, 3))
    derivatives.check_agreement(backend, case, fn, [x], 0, {}, closed, assumptions, seed=seed)


def _swiglu_negative_gates(x, W, V):
    return spec.swiglu(x, -W, V)


@pytest.mark.spec("swiglu", "swiglu_vjp", tier="D")
@pytest.mark.parametrize("argnum", [0, 1, 2])
@pytest.mark.parametrize("sign", [1, -1])
def test_swiglu_derivatives_agree(backend, argnum, sign):
    rng = np.random.default_rng(7 + argnum)
    x, W, V = rng.uniform(0.2, 1.5, (2, 3)), rng.uniform(0.2, 1.0, (4, 3)), \
        rng.uniform(0.2, 1.0, (4, 3))
    fn = spec.swiglu if sign > 0 else _swiglu_negative_gates

    def closed(xp, a, c):
        Wa = a[1] if sign > 0 else -a[1]
        grads = spec.swiglu_vjp(a[0], Wa, a[2], c)
        return grads[argnum] if not (argnum == 1 and sign < 0) else -grads[1]

    derivatives.check_agreement(backend, f"swiglu[{argnum}]", fn, [x, W, V], argnum, {},
                                closed, {"positive": True}, seed=argnum)
