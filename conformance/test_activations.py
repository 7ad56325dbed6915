"""§3 Activations: tier S, and the whole-line accuracy sweeps of tier R.

Tier S runs the spec's own code on SymPy symbols. Functions that branch on the sign of x (with
``where``) are traced twice: on positive symbols x, and on −y with y positive, so each branch
is proven; SymPy then differentiates the traced code and the result must equal the traced
``_grad`` and the textbook derivative. Tier P lives in conformance/properties/activations.py
(test_properties.py runs it), tier D in the chapter's records (test_derivatives.py), tiers X,
E and R on the record inputs in test_tiers.py; the sweeps here add R over the whole real line.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp

import spec
from conformance import oracles, records, settings, symbolic
from conformance import oracles_activations as oa
from conformance.helpers import np64, on, skip_if_limited
from conformance.precision import round_to
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
@pytest.mark.spec("relu", tier="S", identities=("piecewise", "odd_part", "idempotent"))
def test_relu_piecewise_odd_part_idempotent():
    for x, xs, label in _branches():
        r = _exprs(spec.relu(x))
        _same(r, [v if v.is_positive else 0 for v in xs], f"relu branch {label}")
        _same(np.array(r) - np.array(_exprs(spec.relu(-x))), xs, f"relu(x) − relu(−x) {label}")
        _same(_exprs(spec.relu(spec.relu(x))), r, f"relu idempotent {label}")


@pytest.mark.spec("relu_grad", tier="S", identity="is_derivative")
def test_relu_grad_is_sympy_derivative():
    for x, xs, label in _branches():
        d = _diff(_exprs(spec.relu(x)), xs)
        _same(_exprs(spec.relu_grad(x)), d, f"relu' {label}")
        _same(d, [1 if v.is_positive else 0 for v in xs], f"textbook relu' {label}")


@pytest.mark.spec("leaky_relu", tier="S", identities=("piecewise", "slope_below_zero"))
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


@pytest.mark.spec("leaky_relu_grad", tier="S", identity="is_derivative")
def test_leaky_relu_grad_is_sympy_derivative():
    for x, xs, label in _branches():
        out = _exprs(spec.leaky_relu(x, negative_slope=0.2))
        _same(_exprs(spec.leaky_relu_grad(x, negative_slope=0.2)), _diff(out, xs),
              f"leaky' {label}")


@pytest.mark.spec("sigmoid", tier="S", identities=("textbook", "symmetry"))
def test_sigmoid_both_branches_are_textbook_and_symmetric():
    for x, xs, label in _branches():
        s = _exprs(spec.sigmoid(x))
        _same(s, [_sigma(v) for v in xs], f"σ = 1/(1 + e^−x) {label}")
        _same(_exprs(spec.sigmoid(-x)), [1 - e for e in s], f"σ(−x) = 1 − σ(x) {label}")


@pytest.mark.spec("sigmoid_grad", tier="S", identity="is_derivative")
def test_sigmoid_grad_is_sympy_derivative_and_sigma_one_minus_sigma():
    for x, xs, label in _branches():
        s = _exprs(spec.sigmoid(x))
        grad = _exprs(spec.sigmoid_grad(x))
        _same(grad, _diff(s, xs), f"σ' = d/dx traced σ {label}")
        _same(grad, [e * (1 - e) for e in s], f"σ' = σ(1 − σ) {label}")
        _same(grad, [_sigma(v) * (1 - _sigma(v)) for v in xs], f"textbook σ' {label}")


@pytest.mark.spec("tanh", tier="S", identities=("textbook", "via_sigmoid"))
def test_tanh_is_textbook_and_two_sigmoid_two_x_minus_one():
    for x, xs, label in _branches():
        t = _exprs(spec.tanh(x))
        _same_exp(t, [(sp.exp(v) - sp.exp(-v)) / (sp.exp(v) + sp.exp(-v)) for v in xs],
                  f"tanh textbook {label}")
        via = _exprs(2 * spec.sigmoid(2 * x) - 1)
        _same_exp(t, via, f"tanh(x) = 2σ(2x) − 1 {label}")


@pytest.mark.spec("tanh_grad", tier="S", identity="is_derivative")
def test_tanh_grad_is_sympy_derivative_and_one_minus_tanh_squared():
    for x, xs, label in _branches():
        t = _exprs(spec.tanh(x))
        grad = _exprs(spec.tanh_grad(x))
        _same_exp(grad, _diff(t, xs), f"tanh' = d/dx traced tanh {label}")
        _same_exp(grad, [1 - e**2 for e in t], f"tanh' = 1 − tanh² {label}")


@pytest.mark.spec("erf", tier="S", identity="symbolic_is_erf")
def test_erf_on_exact_arithmetic_is_the_error_function():
    x = symbolic.symbols("x", (3,))  # no sign assumption: nothing branches
    _same(_exprs(spec.erf(x)), [sp.erf(v) for v in _exprs(x)], "erf")
    t = sp.Symbol("t", real=True)
    for v in _exprs(x):
        assert sp.erf(v) == sp.Integral(2 / sp.sqrt(sp.pi) * sp.exp(-t**2), (t, 0, v)).doit()
    _same(_exprs(spec.erf(-x)), [-sp.erf(v) for v in _exprs(x)], "odd")


@pytest.mark.spec("erf_grad", tier="S", identity="is_derivative")
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


@pytest.mark.spec("gelu", tier="S", identity="textbook")
def test_gelu_exact_form_is_x_phi():
    for x, xs, label in _branches():
        _same(_exprs(spec.gelu(x)), [v * _Phi(v) for v in xs], f"x·Φ(x) {label}")


@pytest.mark.spec("gelu_grad", tier="S", identity="is_derivative")
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


@pytest.mark.spec("gelu", tier="S", identity="textbook")
def test_gelu_tanh_form_is_textbook(symbolic_gelu_constants):
    c, k = symbolic_gelu_constants
    for x, xs, label in _branches(2):
        got = _exprs(spec.gelu(x, approximate="tanh"))
        want = [v / 2 * (1 + sp.tanh(c * (v + k * v**3))) for v in xs]
        _same_exp(got, want, f"tanh form {label}")


@pytest.mark.spec("gelu_grad", tier="S", identity="is_derivative")
def test_gelu_grad_tanh_is_sympy_derivative(symbolic_gelu_constants):
    c, k = symbolic_gelu_constants
    for x, xs, label in _branches(2):
        grad = _exprs(spec.gelu_grad(x, approximate="tanh"))
        _same_exp(grad, _diff(_exprs(spec.gelu(x, approximate="tanh")), xs),
                  f"tanh-GELU' = d/dx traced {label}")
        textbook = _diff([v / 2 * (1 + sp.tanh(c * (v + k * v**3))) for v in xs], xs)
        _same_exp(grad, textbook, f"derivative of the tanh form {label}")


@pytest.mark.spec("gelu", tier="S", identity="textbook")
def test_gelu_constants_are_the_documented_numbers():
    """Companion of the symbolic proofs: the code's constants are √(2/π), 0.044715 and the
    other constants it writes as decimals, each the double nearest its exact value."""
    with mpmath.workdps(30):
        assert act_module._SQRT_2_OVER_PI == float(mpmath.sqrt(2 / mpmath.pi))
        assert act_module._INV_SQRT_PI == float(1 / mpmath.sqrt(mpmath.pi))
        assert act_module._TWO_OVER_SQRT_PI == float(2 / mpmath.sqrt(mpmath.pi))
        assert act_module._INV_SQRT_2PI == float(1 / mpmath.sqrt(2 * mpmath.pi))
    assert act_module._GELU_CUBIC == 0.044715


@pytest.mark.spec("silu", tier="S", identities=("textbook", "limits"))
@pytest.mark.parametrize("beta", [1.0, 2.0, 0.5])
def test_silu_textbook_limits_and_odd_part(beta):
    b = sp.sympify(beta)
    for x, xs, label in _branches():
        out = _exprs(spec.silu(x, beta=beta))
        _same(out, [v / (1 + sp.exp(-b * v)) for v in xs], f"x·σ(βx) {label}")
        if beta == 1.0:
            diff = np.array(out) - np.array(_exprs(spec.silu(-x)))
            _same(diff, xs, f"silu(x) − silu(−x) = x {label}")
        # β > 0: on the branch x > 0, βx → ∞ and silu(x) − x → 0; on x = −y < 0, βx → −∞
        # and silu → 0 (SymPy's limit of the traced code, in the branch's positive symbol)
        e, v = out[0], xs[0]
        (s,) = v.free_symbols
        assert sp.limit(e - v if v.is_positive else e, s, sp.oo) == 0, f"limit {label}"
    x = symbolic.symbols("x", (3,))  # β = 0 does not branch
    _same(_exprs(spec.silu(x, beta=0.0)), [v / 2 for v in _exprs(x)], "β = 0 gives x/2")


@pytest.mark.spec("silu_grad", tier="S", identity="is_derivative")
@pytest.mark.parametrize("beta", [1.0, 2.0, 0.5])
def test_silu_grad_is_sympy_derivative_and_textbook(beta):
    b = sp.sympify(beta)
    for x, xs, label in _branches():
        grad = _exprs(spec.silu_grad(x, beta=beta))
        _same(grad, _diff(_exprs(spec.silu(x, beta=beta)), xs), f"silu' traced {label}")
        textbook = [_sigma(b * v) * (1 + b * v * (1 - _sigma(b * v))) for v in xs]
        _same(grad, textbook, f"σ(βx)(1 + βx(1 − σ(βx))) {label}")


@pytest.mark.spec("swiglu", tier="S", identity="identity_weights")
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


@pytest.mark.spec("swiglu", tier="S", identity="textbook")
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


@pytest.mark.spec("swiglu_vjp", tier="S", identity="is_sympy_gradient")
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


# ============================================================================ tier R sweeps
@pytest.mark.spec("erf", tier="R", identity="accuracy")
def test_erf_whole_line_sweep(backend, dtype):
    """10⁵ points over the whole real line against mpmath (measured maximum: ≈ 4 ulp)."""
    x, want = oa.erf_sweep(dtype)
    (xb,) = on(backend, np.array(x))
    got = np64(backend, spec.erf(xb))
    err = oracles.ulp_error(got, want, np.dtype(dtype))
    budget = records.ulp_budget("erf", dtype)
    assert err.max() <= budget, f"erf: {err.max()} ulp at x = {x[np.argmax(err)]!r}"


#: (equation, options, the tier-R identity the sweep is evidence for: `accuracy`, or for the
#: equations without one the identity that states their accuracy over the line)
_SWEPT = [
    ("sigmoid", {}, "extremes"), ("sigmoid_grad", {}, "accuracy"), ("tanh", {}, "extremes"),
    ("tanh_grad", {}, "accuracy"), ("erf_grad", {}, "accuracy"), ("gelu", {}, "accuracy"),
    ("gelu", {"approximate": "tanh"}, "accuracy"), ("gelu_grad", {}, "accuracy"),
    ("gelu_grad", {"approximate": "tanh"}, "accuracy"), ("silu", {}, "accuracy"),
    ("silu", {"beta": 1.702}, "accuracy"), ("silu_grad", {}, "accuracy"),
    ("silu_grad", {"beta": -0.7}, "accuracy"), ("leaky_relu", {"negative_slope": 0.1}, "extremes"),
]


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [pytest.param(n, k, marks=pytest.mark.spec(n, tier="R", identity=key), id=f"{n}{k or ''}")
     for n, k, key in _SWEPT],
)
def test_elementwise_sweep_against_mpmath(backend, dtype, name, kwargs):
    rec = spec.catalogue()[name]
    skip_if_limited(backend, name, "R", "whole-line sweep")
    x, want = oa.sweep(name, tuple(sorted(kwargs.items())), dtype)
    (xb,) = on(backend, np.array(x))
    got = np64(backend, getattr(spec, name)(xb, **kwargs))
    floor = oracles.scale_floor(name, want, (x,), kwargs)
    err = oracles.ulp_error(got, want, np.dtype(dtype), floor=floor)
    if rec.limit(backend.id, "R", act_module.SUBNORMAL):
        # a backend that flushes subnormals to zero (a documented limit of the record) is
        # measured only where no result or intermediate can be subnormal: |ref| ≥ tiny/eps
        info = np.finfo(dtype)
        err = np.where(np.abs(want) >= float(info.tiny) / float(info.eps), err, 0.0)
    budget = records.ulp_budget(name, dtype)
    i = int(np.argmax(err))
    assert err[i] <= budget, f"{name}{kwargs}: {err[i]} ulp at x = {x[i]!r}: {got[i]!r} vs " \
                             f"{want[i]!r}"


# ============================================================================ low precision
@pytest.fixture(params=settings.LOW_DTYPES)
def low(request, backend):
    """float16 and bfloat16 (not `dtype`, the fixture the plugin gives float32 and float64)."""
    if request.param not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no {request.param}")
    return request.param


def _low_error(backend, name, want, got, dtype, floor=None):
    """ulps of `dtype` from the correctly rounded value (the low-precision budgets' measure);
    a backend that flushes subnormals (a documented limit of the record) is measured only
    where no float32 intermediate (the working precision) can be subnormal."""
    err = oracles.ulp_error(got, round_to(want, dtype), dtype, floor=floor)
    if spec.catalogue()[name].limit(backend.id, "R", act_module.SUBNORMAL):
        info = np.finfo("float32")
        err = np.where(np.abs(want) >= float(info.tiny) / float(info.eps), err, 0.0)
    return err


@pytest.mark.spec("erf", tier="R", identity="accuracy")
def test_erf_whole_line_sweep_in_low_precision(backend, low):
    x, want = oa.erf_sweep(low)
    got = np64(backend, spec.erf(on(backend, np.array(x))[0]))
    err = _low_error(backend, "erf", want, got, low)
    i = int(np.argmax(err))
    assert err[i] <= records.ulp_budget("erf", low), f"erf: {err[i]} ulp at x = {x[i]!r}"


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [pytest.param(n, k, marks=pytest.mark.spec(n, tier="R", identity=key), id=f"{n}{k or ''}")
     for n, k, key in _SWEPT],
)
def test_elementwise_sweep_in_low_precision(backend, low, name, kwargs):
    """float16 and bfloat16 over the whole line: computed in float32 and rounded once, each
    within its low-precision budget (records.ulp_budget) of the correctly rounded value."""
    skip_if_limited(backend, name, "R", "whole-line sweep")
    x, want = oa.sweep(name, tuple(sorted(kwargs.items())), low)
    got = np64(backend, getattr(spec, name)(on(backend, np.array(x))[0], **kwargs))
    floor = oracles.scale_floor(name, want, (x.astype(np.float64),), kwargs)
    err = _low_error(backend, name, want, got, low, floor)
    i = int(np.argmax(err))
    assert err[i] <= records.ulp_budget(name, low), \
        f"{name}{kwargs} {low}: {err[i]} ulp at x = {x[i]!r}: {got[i]!r} vs {want[i]!r}"


_EVERY_FLOAT16 = np.arange(2**16, dtype=np.uint16).view(np.float16)


@pytest.mark.spec("silu", tier="R", identity="accuracy")
@pytest.mark.parametrize("beta", [0.1, -0.1, 0.01, 1e-3, -1e-30])
def test_silu_float16_with_small_beta(backend, beta):
    """Issue 12: float16 silu with |β| < 0.15 ended in a raw torch RuntimeError (the clipping
    bound 10⁴/|β| does not fit in float16) and gave NaN at x = ∓∞ on NumPy, Dask and JAX.
    Now computed in float32: within the float16 budget of mpmath at the extremes, the limits
    at ±∞, and a number for every one of float16's values (NaN only for NaN)."""
    if "float16" not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no float16")
    x = np.array([-65504.0, -1000.0, -4.0, -0.5, 0.0, 1e-3, 4.0, 1000.0, 65504.0], np.float16)
    got = np64(backend, spec.silu(on(backend, x)[0], beta=beta))
    want = oa.ORACLES["silu"](x.astype(np.float64), beta=beta)
    floor = oracles.scale_floor("silu", want, (x.astype(np.float64),), {"beta": beta})
    err = oracles.ulp_error(got, round_to(want, "float16"), "float16", floor=floor)
    i = int(np.argmax(err))
    assert err[i] <= records.ulp_budget("silu", "float16"), \
        f"silu β = {beta}: {err[i]} ulp at x = {x[i]!r}: {got[i]!r} vs {want[i]!r}"
    ends = np64(backend, spec.silu(on(backend, np.array([-np.inf, np.inf], np.float16))[0],
                                   beta=beta))
    # x·σ(βx) at x = ∓∞: 0 on the side where βx → −∞, ±∞ on the other
    np.testing.assert_array_equal(ends, [-np.inf, 0.0] if beta < 0 else [0.0, np.inf])
    y = np64(backend, spec.silu(on(backend, _EVERY_FLOAT16)[0], beta=beta))
    assert np.array_equal(np.isnan(y), np.isnan(_EVERY_FLOAT16))
