"""§6 Optimisation: what is specific to the chapter, tiers S and D.

Tier S: SymPy proves the code is the formula. Tier P (PyTorch's own optimizers, mpmath for the
rules that return state) is in conformance/properties/optim.py, tier D's cases in
conformance/records/optim.py; X, E and R are generic (test_tiers.py). What stays here: the
symbolic proofs, the derivative of `numerical_gradient`, which is itself a derivative
(its output is checked against SymPy and autograd, not differentiated), and what the rules
accept and refuse (options of any real number type; low precisions for numerical_gradient).
"""

from __future__ import annotations

import array_api_compat
import numpy as np
import pytest
import sympy as sp

import spec
from conformance import derivatives, symbolic
from conformance.helpers import np64, on, to_backend
from conformance.precision import host_dtype
from conformance.tolerances import FINITE_DIFFERENCE


# ============================================================================ tier S
@pytest.mark.spec("sgd_step", tier="S", identity="formula")
def test_sgd_step_formula():
    theta, g = symbolic.symbols("theta", (3,)), symbolic.symbols("g", (3,))
    got = symbolic.exprs(spec.sgd_step(theta, g, lr=0.125))
    want = [t - gi / 8 for t, gi in zip(symbolic.flat(theta), symbolic.flat(g), strict=True)]
    symbolic.assert_equal(got, want, "θ − ηg")


@pytest.mark.spec("sgd_step", tier="S", identity="quadratic_rate")
@pytest.mark.parametrize("lr", [0.125, 0.25, 0.375, 0.75])
def test_sgd_on_003_parabola_contracts_by_one_minus_two_eta(lr):
    """f(x) = (x − 3)², f'(x) = 2(x − 3) (003): x_t − 3 = (1 − 2η)ᵗ(x₀ − 3) for every x₀."""
    x0 = symbolic.symbols("x0", (1,))
    x = x0
    for t in range(1, 7):
        x = spec.sgd_step(x, 2.0 * (x - 3.0), lr=lr)
        want = (1 - 2 * sp.Rational(lr)) ** t * (symbolic.flat(x0)[0] - 3) + 3
        symbolic.assert_equal(symbolic.exprs(x), [want], f"x_{t}")


@pytest.mark.spec("momentum_step", tier="S", identities=("formula", "beta_zero_is_sgd"))
def test_momentum_formula_and_beta_zero():
    theta, vel, g = (symbolic.symbols(s, (2,)) for s in ("theta", "v", "g"))
    new_theta, new_vel = spec.momentum_step(theta, vel, g, lr=0.5, beta=0.75)
    t, v0, gs = symbolic.flat(theta), symbolic.flat(vel), symbolic.flat(g)
    v1 = [sp.Rational(3, 4) * a + sp.Rational(1, 4) * b for a, b in zip(v0, gs, strict=True)]
    symbolic.assert_equal(symbolic.exprs(new_vel), v1, "v' = βv + (1−β)g")
    symbolic.assert_equal(symbolic.exprs(new_theta),
                          [a - b / 2 for a, b in zip(t, v1, strict=True)], "θ' = θ − ηv'")
    plain, _ = spec.momentum_step(theta, vel, g, lr=0.5, beta=0.0)
    symbolic.assert_equal(symbolic.exprs(plain), symbolic.exprs(spec.sgd_step(theta, g, lr=0.5)),
                          "β = 0 is SGD")


@pytest.mark.spec("adam_step", tier="S", identity="formula")
@pytest.mark.parametrize("step", [1, 3])
def test_adam_formula_with_epsilon_outside_the_root(step):
    theta, m, g = (symbolic.symbols(s, (2,)) for s in ("theta", "m", "g"))
    v = symbolic.symbols("v", (2,), positive=True)
    b1, b2, eta, eps = sp.Rational(1, 2), sp.Rational(3, 4), sp.Rational(1, 2), sp.Rational(1, 8)
    new = spec.adam_step(theta, m, v, g, step=step, lr=0.5, beta1=0.5, beta2=0.75, eps=0.125)
    t, m0, v0, gs = (symbolic.flat(a) for a in (theta, m, v, g))
    m1 = [b1 * a + (1 - b1) * b for a, b in zip(m0, gs, strict=True)]
    v1 = [b2 * a + (1 - b2) * b**2 for a, b in zip(v0, gs, strict=True)]
    want = [ti - eta * (mi / (1 - b1**step)) / (sp.sqrt(vi / (1 - b2**step)) + eps)
            for ti, mi, vi in zip(t, m1, v1, strict=True)]
    symbolic.assert_equal(symbolic.exprs(new[1]), m1, "m")
    symbolic.assert_equal(symbolic.exprs(new[2]), v1, "v")
    symbolic.assert_equal(symbolic.exprs(new[0]), want, "θ − η m̂/(√v̂ + ε)")


@pytest.mark.spec("adam_step", tier="S", identity="first_step_sign")
def test_adam_first_step_is_eta_g_over_abs_g_plus_eps():
    xp = symbolic.backend().xp
    theta = symbolic.symbols("theta", (2,))
    p = symbolic.flat(symbolic.symbols("p", (2,), positive=True))
    g = xp.asarray([p[0], -p[1]], dtype=xp.float64)  # one positive, one negative gradient
    zero = xp.zeros((2,), dtype=xp.float64)
    eps = sp.Rational(1, 8)
    new, _, _ = spec.adam_step(theta, zero, zero, g, step=1, lr=0.5, eps=0.125)
    t = symbolic.flat(theta)
    want = [t[0] - sp.Rational(1, 2) * p[0] / (p[0] + eps),
            t[1] + sp.Rational(1, 2) * p[1] / (p[1] + eps)]
    symbolic.assert_equal(symbolic.exprs(new), want, "η·g/(|g| + ε)")


@pytest.mark.spec("rmsprop_step", tier="S", identities=("formula", "scale_invariant"))
def test_rmsprop_formula_and_exact_scale_invariance():
    theta, g = symbolic.symbols("theta", (2,)), symbolic.symbols("g", (2,))
    s = symbolic.symbols("s", (2,), positive=True)
    c = sp.Symbol("c", positive=True)
    new, s1 = spec.rmsprop_step(theta, s, g, lr=0.5, alpha=0.75, eps=0.125)
    t, s0, gs = (symbolic.flat(a) for a in (theta, s, g))
    avg = [sp.Rational(3, 4) * a + sp.Rational(1, 4) * b**2 for a, b in zip(s0, gs, strict=True)]
    symbolic.assert_equal(symbolic.exprs(s1), avg, "s' = αs + (1−α)g²")
    symbolic.assert_equal(symbolic.exprs(new), [ti - gi / 2 / (sp.sqrt(a) + sp.Rational(1, 8))
                                                for ti, gi, a in zip(t, gs, avg, strict=True)],
                          "θ − ηg/(√s' + ε)")
    plain, _ = spec.rmsprop_step(theta, s, g, lr=0.5, alpha=0.75, eps=0.0)
    scaled, _ = spec.rmsprop_step(theta, s * c**2, g * c, lr=0.5, alpha=0.75, eps=0.0)
    symbolic.assert_equal(symbolic.exprs(scaled), symbolic.exprs(plain),
                          "step(cg, c²s) = step(g, s) with ε = 0")


@pytest.mark.spec("warmup_cosine_lr", tier="S", identities=("continuous", "endpoints"))
def test_warmup_cosine_continuous_and_endpoints():
    xp = symbolic.backend().xp
    d = sp.Symbol("delta", positive=True)
    opts = {"peak_lr": 2.0, "warmup_steps": 10, "total_steps": 110, "min_lr": 0.5}
    around = symbolic.exprs(spec.warmup_cosine_lr(xp.asarray([10 - d, 10 + d],
                                                             dtype=xp.float64), **opts))
    left, right = (sp.limit(e, d, 0, "+") for e in around)
    symbolic.assert_equal([left, right], [2, 2], "both one-sided limits at t = W are peak_lr")
    steps = xp.asarray([0, 5, 10, 60, 110, 200], dtype=xp.float64)
    got = symbolic.exprs(spec.warmup_cosine_lr(steps, **opts))
    symbolic.assert_equal(got, [0, 1, 2, sp.Rational(5, 4), sp.Rational(1, 2),
                                sp.Rational(1, 2)], "η(0), η(W/2), η(W), midpoint, η(T), after T")


def _clip_max(e):
    """The max(1, ‖g‖/γ) of clip_grad_norm: the Max with the number 1 among its arguments."""
    return [m for m in sp.sympify(e).atoms(sp.Max) if sp.S.One in m.args]


@pytest.mark.spec("clip_grad_norm", tier="S", identity="both_branches")
@pytest.mark.parametrize("gamma", [1.0, 3.0, 0.5])
def test_clip_grad_norm_both_branches(gamma):
    xp = symbolic.backend().xp
    p = symbolic.flat(symbolic.symbols("p", (3,), positive=True))
    grads = [xp.asarray([p[0], -p[1]], dtype=xp.float64), xp.asarray([[p[2]]], dtype=xp.float64)]
    out = [symbolic.exprs(a).reshape(-1) for a in spec.clip_grad_norm(grads, max_norm=gamma)]
    flat_in = [p[0], -p[1], p[2]]
    flat_out = [e for a in out for e in a]
    total = sp.sqrt(sum(e**2 for e in flat_in))
    g = sp.nsimplify(gamma)
    (clip,) = {m for e in flat_out for m in _clip_max(e)}
    ratio = next(a for a in clip.args if a != 1)
    symbolic.assert_equal([ratio], [total / g], "the ratio compared with 1 is ‖g‖/γ (global)")
    above = [sp.sympify(e).xreplace({clip: ratio}) for e in flat_out]
    symbolic.assert_equal(above, [e * g / total for e in flat_in], "g·γ/‖g‖ above γ")
    symbolic.assert_equal([sp.Add(*[e**2 for e in above])], [g**2], "norm γ above γ")
    below = [sp.sympify(e).xreplace({clip: sp.S.One}) for e in flat_out]
    symbolic.assert_equal(below, flat_in, "unchanged below γ")


@pytest.mark.spec("minibatch_gradient", tier="S", identity="mean")
@pytest.mark.parametrize("b", [1, 2, 5])
def test_minibatch_gradient_is_the_mean(b):
    g = symbolic.symbols("g", (b, 2))
    rows = symbolic.exprs(g)
    symbolic.assert_equal(symbolic.exprs(spec.minibatch_gradient(g)),
                          [sp.Add(*rows[:, j]) / b for j in range(2)], "(1/b)Σgᵢ")


@pytest.mark.spec("numerical_gradient", tier="S", identity="exact_for_quadratics")
@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("h", [0.5, 0.125])
def test_central_differences_exact_for_every_quadratic(n, h):
    xp = symbolic.backend().xp
    a, b = symbolic.symbols("A", (n, n)), symbolic.symbols("b", (n,))
    c = sp.Symbol("c", real=True)
    x = symbolic.symbols("x", (n,))

    def f(y):
        return xp.sum(y * xp.matmul(a, y)) + xp.sum(b * y) + c

    got = symbolic.exprs(spec.numerical_gradient(f, x, h=h))
    am, xs = sp.Matrix(symbolic.exprs(a).tolist()), sp.Matrix(symbolic.flat(x))
    want = list((am + am.T) * xs + sp.Matrix(symbolic.flat(b)))
    symbolic.assert_equal(got, want, "∇(xᵀAx + bᵀx + c) = (A + Aᵀ)x + b")


@pytest.mark.spec("numerical_gradient", tier="S", identity="second_order")
@pytest.mark.parametrize("h", [0.5, 0.25])
def test_central_difference_error_of_a_cubic_is_h_squared(h):
    """For f = Σ xᵢ³, (f(x+h) − f(x−h))/2h = 3xᵢ² + h²: the error is exactly h²f'''/6."""
    xp = symbolic.backend().xp
    x = symbolic.symbols("x", (2,))
    got = symbolic.exprs(spec.numerical_gradient(lambda y: xp.sum(y * y * y), x, h=h))
    want = [3 * e**2 + sp.Rational(h) ** 2 for e in symbolic.flat(x)]
    symbolic.assert_equal(got, want, "3x² + h²")


# ============================================================================ tier D
def _smooth(y):
    xp = array_api_compat.array_namespace(y)
    return xp.sum(xp.exp(0.5 * y) * y) + xp.sum(y[:-1] * y[1:])


@pytest.mark.spec("numerical_gradient", tier="D", identity="agrees_with_derivatives")
@pytest.mark.parametrize("seed", [0, 1])
def test_numerical_gradient_agrees_with_sympy_and_autograd(backend, seed):
    if "float64" not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no float64")
    x = np.random.default_rng(seed).uniform(-1.5, 1.5, 4)
    got = np64(backend, spec.numerical_gradient(_smooth, to_backend(backend, x)))
    sym = derivatives.sympy_lambdified(backend, _smooth, [x], 0, np.asarray(1.0))
    np.testing.assert_allclose(got, sym, rtol=FINITE_DIFFERENCE.rtol,
                               atol=FINITE_DIFFERENCE.atol, err_msg="vs SymPy")
    if backend.has_autograd:
        auto = derivatives.autograd(backend, _smooth, [x], 0, np.asarray(1.0))
        np.testing.assert_allclose(got, auto, rtol=FINITE_DIFFERENCE.rtol,
                                   atol=FINITE_DIFFERENCE.atol, err_msg="vs autograd")


# ============================================================================ tier E
# What the update rules accept and refuse, the same on every backend: options of any real
# number type (NumPy's scalars too: a lr read from a config as np.float32), never a bool;
# numerical_gradient refuses the low precisions it cannot serve.
_EXACT = {"np.float32": np.float32, "np.float64": np.float64}


@pytest.mark.spec("sgd_step", "momentum_step", "adam_step", "rmsprop_step", "clip_grad_norm",
                  "warmup_cosine_lr", tier="E")
@pytest.mark.parametrize("kind", list(_EXACT))
def test_options_take_numpy_scalars_and_refuse_bools(backend, dtype, kind):
    real = _EXACT[kind]
    theta, g = on(backend, np.array([1.0, -2.0], dtype=dtype), np.array([0.5, 4.0], dtype=dtype))
    calls = [  # (function, python options, the same values as NumPy scalars); binary values
        (lambda **o: spec.sgd_step(theta, g, **o), {"lr": 0.25}, {"lr": real(0.25)}),
        (lambda **o: spec.momentum_step(theta, g, g, **o)[0], {"lr": 0.5, "beta": 0.75},
         {"lr": real(0.5), "beta": real(0.75)}),
        (lambda **o: spec.adam_step(theta, g, g * g, g, **o)[0],
         {"step": 3, "lr": 0.5, "beta1": 0.5, "beta2": 0.75, "eps": 0.125},
         {"step": np.int64(3), "lr": real(0.5), "beta1": real(0.5), "beta2": real(0.75),
          "eps": real(0.125)}),
        (lambda **o: spec.rmsprop_step(theta, g * g, g, **o)[0],
         {"lr": 0.5, "alpha": 0.75, "eps": 0.125},
         {"lr": real(0.5), "alpha": real(0.75), "eps": real(0.125)}),
        (lambda **o: spec.clip_grad_norm([g], **o)[0], {"max_norm": 2.0},
         {"max_norm": real(2.0)}),
        (lambda **o: spec.warmup_cosine_lr(real(7.0), **o),
         {"peak_lr": 1.0, "warmup_steps": 10, "total_steps": 20, "min_lr": 0.25},
         {"peak_lr": real(1.0), "warmup_steps": np.int64(10), "total_steps": np.uint16(20),
          "min_lr": real(0.25)}),
    ]
    for fn, python, numpy_scalars in calls:
        np.testing.assert_array_equal(np64(backend, fn(**numpy_scalars)),
                                      np64(backend, fn(**python)))
        key = next(iter(python))
        with pytest.raises(TypeError, match=f"{key} must be"):
            fn(**{**python, key: np.bool_(True)})
        with pytest.raises(TypeError, match=f"{key} must be"):
            fn(**{**python, key: True})


@pytest.mark.spec("numerical_gradient", tier="E")
@pytest.mark.parametrize("low", ["float16", "bfloat16"])
def test_numerical_gradient_refuses_low_precision(backend, low):
    """Central differences in float16 (bfloat16) carry ≈ 1 % (4 %) relative error: refused
    with a TypeError naming the dtype, on every backend that has it."""
    if low not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no {low}")
    (x,) = on(backend, np.array([1.0, 2.0], dtype=host_dtype(low)))
    with pytest.raises(TypeError, match=f"numerical_gradient does not take x of dtype .*{low}"):
        spec.numerical_gradient(lambda y: y[0] * y[1], x)
