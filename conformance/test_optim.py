"""§6 Optimisation: tiers S, P and D (X, E and R of the single-array equations are generic,
in test_tiers.py).

The update rules are checked three ways: SymPy proves the code is the formula (tier S);
PyTorch's own optimizers (torch.optim.SGD, Adam, RMSprop and clip_grad_norm_) run the same
trajectories in float64 (tier P; skipped only where torch is not installed); and mpmath gives
the exact single update, measured in ulps (tier P for the rules that return state, whose
tuple outputs the generic tier R test does not take).
"""

from __future__ import annotations

import itertools
import math

import array_api_compat
import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import spec
from conformance import derivatives, oracles, symbolic, tolerances
from conformance import strategies as cst
from conformance.helpers import assert_close, to_backend
from conformance.tolerances import FINITE_DIFFERENCE, Tol, values

CATALOGUE = spec.catalogue()


def _np(backend, x):
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def _on(backend, *host_arrays):
    return [to_backend(backend, a) for a in host_arrays]


def _skip_if_limited(backend, name, tier):
    limit = CATALOGUE[name].limit(backend.id, tier)
    if limit is not None:
        pytest.skip(f"{limit.reason} ({limit.link})")


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is the reference optimizer here")


# ============================================================================ tier S
@pytest.mark.spec("sgd_step", tier="S")
def test_sgd_step_formula():
    theta, g = symbolic.symbols("theta", (3,)), symbolic.symbols("g", (3,))
    got = symbolic.exprs(spec.sgd_step(theta, g, lr=0.125))
    want = [t - gi / 8 for t, gi in zip(symbolic.flat(theta), symbolic.flat(g), strict=True)]
    symbolic.assert_equal(got, want, "θ − ηg")


@pytest.mark.spec("sgd_step", tier="S")
@pytest.mark.parametrize("lr", [0.125, 0.25, 0.375, 0.75])
def test_sgd_on_003_parabola_contracts_by_one_minus_two_eta(lr):
    """f(x) = (x − 3)², f'(x) = 2(x − 3) (003): x_t − 3 = (1 − 2η)ᵗ(x₀ − 3) for every x₀."""
    x0 = symbolic.symbols("x0", (1,))
    x = x0
    for t in range(1, 7):
        x = spec.sgd_step(x, 2.0 * (x - 3.0), lr=lr)
        want = (1 - 2 * sp.Rational(lr)) ** t * (symbolic.flat(x0)[0] - 3) + 3
        symbolic.assert_equal(symbolic.exprs(x), [want], f"x_{t}")


@pytest.mark.spec("momentum_step", tier="S")
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


@pytest.mark.spec("adam_step", tier="S")
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


@pytest.mark.spec("adam_step", tier="S")
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


@pytest.mark.spec("rmsprop_step", tier="S")
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


@pytest.mark.spec("warmup_cosine_lr", tier="S")
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


@pytest.mark.spec("clip_grad_norm", tier="S")
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


@pytest.mark.spec("minibatch_gradient", tier="S")
@pytest.mark.parametrize("b", [1, 2, 5])
def test_minibatch_gradient_is_the_mean(b):
    g = symbolic.symbols("g", (b, 2))
    rows = symbolic.exprs(g)
    symbolic.assert_equal(symbolic.exprs(spec.minibatch_gradient(g)),
                          [sp.Add(*rows[:, j]) / b for j in range(2)], "(1/b)Σgᵢ")


@pytest.mark.spec("numerical_gradient", tier="S")
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


@pytest.mark.spec("numerical_gradient", tier="S")
@pytest.mark.parametrize("h", [0.5, 0.25])
def test_central_difference_error_of_a_cubic_is_h_squared(h):
    """For f = Σ xᵢ³, (f(x+h) − f(x−h))/2h = 3xᵢ² + h²: the error is exactly h²f'''/6."""
    xp = symbolic.backend().xp
    x = symbolic.symbols("x", (2,))
    got = symbolic.exprs(spec.numerical_gradient(lambda y: xp.sum(y * y * y), x, h=h))
    want = [3 * e**2 + sp.Rational(h) ** 2 for e in symbolic.flat(x)]
    symbolic.assert_equal(got, want, "3x² + h²")


# ============================================================================ tier P: updates
def _ulps(name, got, args, kwargs, dtype):
    """Worst error in ulps of each output against the mpmath oracle (normwise per output at
    max(|output|, |θ|): an update cancels when θ ≈ the step)."""
    want = oracles.ORACLES[name](*args, **kwargs)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, (tuple, list)) else (got,)
    scale = np.abs(np.asarray(args[0], dtype=np.float64))
    worst = []
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        floor = np.maximum(np.abs(w), scale) if i == 0 else np.abs(w)
        worst.append(float(np.max(oracles.ulp_error(g, w, np.dtype(dtype), floor=floor))))
    return worst


@pytest.mark.spec("sgd_step", tier="P")
@given(x0=st.floats(-100, 100), lr=st.floats(0.01, 0.99), steps=st.integers(1, 60))
def test_sgd_converges_to_3_at_rate_one_minus_two_eta(backend, dtype, x0, lr, steps):
    x = to_backend(backend, np.array([x0], dtype=dtype))
    x0 = float(np.float64(np.array(x0, dtype=dtype)))
    lr_d = float(np.array(lr, dtype=dtype))  # the dtype's own η
    for _ in range(steps):
        x = spec.sgd_step(x, 2.0 * (x - 3.0), lr=lr)
    want = 3 + (1 - 2 * lr_d) ** steps * (x0 - 3)
    # each step rounds x − 3, 2(·), η·(·) and x − (·) (≤ 4 ε relative to |x| + 3); the errors
    # are contracted by |1 − 2η| < 1 afterwards, so they add up to at most 4εt(|x₀| + 6)
    bound = 4 * steps * np.finfo(dtype).eps * (abs(x0) + 6)
    assert abs(float(_np(backend, x)[0]) - want) <= bound
    rate = abs(1 - 2 * lr_d)
    assert abs(float(_np(backend, x)[0]) - 3) <= rate**steps * abs(x0 - 3) + bound


@pytest.mark.spec("sgd_step", tier="P")
@given(data=st.data())
def test_sgd_small_step_descends(backend, dtype, data):
    n = data.draw(st.integers(1, 6), label="n")
    a = data.draw(cst.arrays("float64", (n,), min_value=0.5, max_value=4.0), label="curvature")
    theta = data.draw(cst.arrays(dtype, (n,), min_value=-5, max_value=5), label="theta")
    grad = (a * theta.astype(np.float64)).astype(dtype)  # f = ½ Σ aᵢθᵢ²
    if not np.any(np.abs(grad) > 1e-2):
        return
    new = _np(backend, spec.sgd_step(*_on(backend, theta, grad), lr=0.1))

    def f(t):
        return 0.5 * np.sum(a * t.astype(np.float64) ** 2)

    assert f(new) < f(theta)


@pytest.mark.spec("sgd_step", tier="P")
def test_sgd_lr_zero_is_identity_and_inputs_untouched(backend, dtype):
    theta, grad = np.array([1.0, -2.0], dtype=dtype), np.array([3.0, 4.0], dtype=dtype)
    tb, gb = _on(backend, theta, grad)
    assert np.array_equal(_np(backend, spec.sgd_step(tb, gb, lr=0.0)), theta)
    spec.sgd_step(tb, gb, lr=0.5)
    assert np.array_equal(_np(backend, tb), theta) and np.array_equal(_np(backend, gb), grad)


def _quadratic(seed, n):
    """A symmetric positive definite A and b: f(θ) = ½θᵀAθ − bᵀθ, ∇f = Aθ − b."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    a = (q * rng.uniform(0.2, 3.0, n)) @ q.T
    return (a + a.T) / 2, rng.normal(size=n)


def _torch_trajectory(make_optimizer, a, b, theta0, steps):
    torch = _torch()
    p = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    opt = make_optimizer([p])
    at, bt = torch.tensor(a), torch.tensor(b)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        p.grad = (at @ p.detach() - bt).clone()
        opt.step()
        out.append(p.detach().numpy().copy())
    return np.array(out)


def _spec_trajectory(backend, step_fn, a, b, theta0, state, steps):
    theta = to_backend(backend, theta0)
    state = [to_backend(backend, s) for s in state]
    ab, bb = _on(backend, a, b)
    xp = backend.xp
    out = []
    for t in range(1, steps + 1):
        grad = xp.matmul(ab, theta) - bb
        theta, *state = step_fn(theta, *state, grad, t)
        out.append(_np(backend, theta))
    return np.array(out)


def _float64(backend):
    if "float64" not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no float64 for a reference trajectory")


# float64 trajectories of 50–100 steps on a well-conditioned quadratic: the two
# implementations round differently (lerp vs βm + (1−β)g, √(v/c) vs √v/√c), ~1e-16 per
# step, contracted by the iteration; 1e-12 relative leaves room and still catches a wrong
# bias correction, ε placement or momentum convention (all O(1e-3) or more here).
TRAJECTORY = Tol(rtol=1e-12, atol=1e-13)


@pytest.mark.spec("momentum_step", tier="P")
@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("seed", [0, 1])
def test_momentum_equals_torch_heavy_ball_with_lr_scaled(backend, beta, seed):
    """PyTorch's SGD(momentum=β, dampening=0) keeps b ← βb + g and steps θ −= lr·b. With
    b = v/(1 − β) and lr = η(1 − β) that is exactly this EMA form."""
    _float64(backend)
    torch = _torch()
    a, b = _quadratic(seed, 4)
    theta0 = np.random.default_rng(seed + 10).normal(size=4)
    eta = 0.05
    ref = _torch_trajectory(lambda p: torch.optim.SGD(p, lr=eta * (1 - beta), momentum=beta,
                                                      dampening=0.0), a, b, theta0, 50)
    got = _spec_trajectory(backend, lambda th, vel, g, t: spec.momentum_step(
        th, vel, g, lr=eta, beta=beta), a, b, theta0, [np.zeros(4)], 50)
    np.testing.assert_allclose(got, ref, rtol=TRAJECTORY.rtol, atol=TRAJECTORY.atol)
    # and the unscaled lr is a different optimizer: the relation is not vacuous
    other = _torch_trajectory(lambda p: torch.optim.SGD(p, lr=eta, momentum=beta), a, b,
                              theta0, 50)
    assert np.max(np.abs(other - got)) > 1e-3


@pytest.mark.spec("momentum_step", tier="P")
@given(data=st.data())
def test_momentum_beta_zero_is_sgd_and_constant_gradient(backend, dtype, data):
    theta = data.draw(cst.arrays(dtype, (3,)), label="theta")
    vel = data.draw(cst.arrays(dtype, (3,)), label="v")
    g = data.draw(cst.arrays(dtype, (3,)), label="g")
    lr = data.draw(st.floats(0.0, 1.0), label="lr")
    tb, vb, gb = _on(backend, theta, vel, g)
    new, _ = spec.momentum_step(tb, vb, gb, lr=lr, beta=0.0)
    assert np.array_equal(_np(backend, new), _np(backend, spec.sgd_step(tb, gb, lr=lr)))
    beta = data.draw(st.floats(0.0, 0.99), label="beta")
    v = to_backend(backend, np.zeros(3, dtype=dtype))
    for _ in range(10):
        _, v = spec.momentum_step(tb, v, gb, lr=lr, beta=beta)
    beta_d = float(np.array(beta, dtype=dtype))
    want = (1 - beta_d**10) * g.astype(np.float64)
    assert_close(backend, v, want, dtype, tol=Tol(values(dtype).rtol, 32 * np.finfo(dtype).eps
                                                  * float(np.max(np.abs(g)) + 1)),
                 what="v₁₀ = (1 − β¹⁰)g")


@pytest.mark.spec("adam_step", tier="P")
@pytest.mark.parametrize(("lr", "betas", "eps"), [(3e-4, (0.9, 0.999), 1e-8),
                                                  (1e-2, (0.8, 0.99), 1e-6),
                                                  (1e-2, (0.5, 0.9), 1e-2)])
def test_adam_matches_torch_over_100_steps(backend, lr, betas, eps):
    """100 steps that stay in the descent phase: near the minimum, where |g| ≈ ε, Adam's
    m̂/(√v̂ + ε) amplifies rounding (lr 5e-2 there drifts apart by 1e-8 in 80 steps), which
    would measure chaos, not the formula."""
    _float64(backend)
    torch = _torch()
    a, b = _quadratic(3, 5)
    theta0 = np.random.default_rng(4).normal(size=5)
    ref = _torch_trajectory(lambda p: torch.optim.Adam(p, lr=lr, betas=betas, eps=eps), a, b,
                            theta0, 100)
    got = _spec_trajectory(backend, lambda th, m, v, g, t: spec.adam_step(
        th, m, v, g, step=t, lr=lr, beta1=betas[0], beta2=betas[1], eps=eps), a, b, theta0,
        [np.zeros(5), np.zeros(5)], 100)
    np.testing.assert_allclose(got, ref, rtol=TRAJECTORY.rtol, atol=TRAJECTORY.atol)
    assert np.max(np.abs(got[-1] - theta0)) > 10 * lr  # it moved: the comparison is not vacuous


@pytest.mark.spec("adam_step", tier="P")
@given(data=st.data())
def test_adam_first_step_moves_by_eta_sign_g(backend, dtype, data):
    n = data.draw(st.integers(1, 8), label="n")
    theta = data.draw(cst.arrays(dtype, (n,)), label="theta")
    g = data.draw(cst.arrays(dtype, (n,), min_value=1e-3, max_value=1e3), label="|g|")
    sign = data.draw(cst.arrays("float64", (n,), min_value=-1, max_value=1), label="sign")
    g = np.where(sign < 0, -g, g).astype(dtype)
    zero = np.zeros(n, dtype=dtype)
    new, m, _ = spec.adam_step(*_on(backend, theta, zero, zero, g), step=1, lr=1e-3)
    moved = _np(backend, new) - theta.astype(np.float64)
    # exactly η·g/(|g| + ε); |g| ≥ 1e-3 ≫ ε = 1e-8 so within η·1e-5 of η·sign(g), plus the
    # rounding of θ − step at |θ| ≤ 10
    slack = 1e-3 * 1e-5 + 4 * np.finfo(dtype).eps * (np.abs(theta.astype(np.float64)) + 1e-3)
    assert np.all(np.abs(moved + 1e-3 * np.sign(g)) <= slack)
    assert_close(backend, m, 0.1 * g.astype(np.float64), dtype, what="m₁ = (1−β₁)g")


@pytest.mark.spec("adam_step", tier="P")
def test_adam_epsilon_outside_not_inside_the_root(backend, dtype):
    """002's summary table writes √(v̂+ε); the spec (and §3.2.3, PyTorch) √v̂ + ε. With
    g = 1e-3 and ε = 1e-2 the first steps are η·0.0909 and η·0.0100: told apart."""
    g, eps, lr = 1e-3, 1e-2, 1.0
    zero = np.zeros(1, dtype=dtype)
    new, _, _ = spec.adam_step(*_on(backend, zero, zero, zero, np.array([g], dtype=dtype)),
                               step=1, lr=lr, eps=eps)
    moved = -float(_np(backend, new)[0])
    outside = lr * g / (g + eps)
    inside = lr * g / math.sqrt(g * g + eps)
    assert abs(moved - outside) <= 1e-5 * outside
    assert abs(moved - inside) > 0.5 * outside


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.spec(n, tier="P"), id=n)
                                  for n in ("momentum_step", "adam_step", "rmsprop_step")])
def test_stateful_updates_within_budget_of_mpmath(backend, dtype, name):
    """The registered sample inputs against the exact update (mpmath, 50 digits), in ulps:
    the tier R measurement for rules whose outputs are tuples."""
    from conformance import records
    from conformance.helpers import build

    budget = tolerances.ULP_BUDGET[name][dtype]
    for case in build(records.get(name).samples, dtype):
        got = getattr(spec, name)(*_on(backend, *case.args), **case.kwargs)
        worst = _ulps(name, [_np(backend, x) for x in got], case.args, case.kwargs, dtype)
        assert max(worst) <= budget, f"{name} [{case.note}]: {worst} ulp > {budget}"


@pytest.mark.spec("rmsprop_step", tier="P")
@pytest.mark.parametrize("alpha", [0.9, 0.99])
def test_rmsprop_matches_torch_over_50_steps(backend, alpha):
    _float64(backend)
    torch = _torch()
    a, b = _quadratic(5, 4)
    theta0 = np.random.default_rng(6).normal(size=4)
    ref = _torch_trajectory(lambda p: torch.optim.RMSprop(p, lr=1e-2, alpha=alpha, eps=1e-8),
                            a, b, theta0, 50)
    got = _spec_trajectory(backend, lambda th, s, g, t: spec.rmsprop_step(
        th, s, g, lr=1e-2, alpha=alpha, eps=1e-8), a, b, theta0, [np.zeros(4)], 50)
    np.testing.assert_allclose(got, ref, rtol=TRAJECTORY.rtol, atol=TRAJECTORY.atol)


@pytest.mark.spec("rmsprop_step", tier="P")
@given(data=st.data())
def test_rmsprop_step_invariant_to_gradient_scale(backend, dtype, data):
    n = data.draw(st.integers(1, 6), label="n")
    theta = data.draw(cst.arrays(dtype, (n,)), label="theta")
    g = data.draw(cst.arrays(dtype, (n,), min_value=0.1, max_value=10), label="g")
    s = data.draw(cst.arrays(dtype, (n,), min_value=0.0, max_value=10), label="s")
    c = 2.0 ** data.draw(st.integers(-10, 10), label="log2 c")  # exact scaling in binary
    tb = to_backend(backend, theta)
    base, _ = spec.rmsprop_step(tb, *_on(backend, s, g), lr=0.1, eps=1e-8)
    scaled, _ = spec.rmsprop_step(tb, *_on(backend, (s * c * c).astype(dtype),
                                           (g * c).astype(dtype)), lr=0.1, eps=1e-8)
    step0 = _np(backend, base) - theta.astype(np.float64)
    step1 = _np(backend, scaled) - theta.astype(np.float64)
    # ε enters as ε/√s' vs ε/(c√s'); √s' ≥ 0.1·√(1 − α)·min|g| ≥ 1e-3, c ≥ 2⁻¹⁰: relative
    # difference ≤ 1e-8·1e3·1e3 = 1e-2·… bounded by ε/(c√s'); plus rounding of θ − step
    sq = np.sqrt(0.99 * s.astype(np.float64) + 0.01 * g.astype(np.float64) ** 2)
    rel = 1e-8 / (min(c, 1.0) * sq) + 8 * np.finfo(dtype).eps
    slack = rel * np.abs(step0) + 4 * np.finfo(dtype).eps * np.abs(theta.astype(np.float64))
    assert np.all(np.abs(step1 - step0) <= slack + 1e-300)


# ============================================================================ tier P: schedule
@st.composite
def _schedule(draw):
    warmup = draw(st.integers(0, 50), label="warmup")
    total = draw(st.integers(warmup + 1, warmup + 500), label="total")
    peak = draw(st.floats(1e-6, 10.0), label="peak")
    floor = draw(st.floats(0.0, 1.0), label="floor fraction") * peak
    return {"peak_lr": peak, "warmup_steps": warmup, "total_steps": total, "min_lr": floor}


@pytest.mark.spec("warmup_cosine_lr", tier="P")
@given(opts=_schedule())
def test_warmup_cosine_phases(opts):
    w, t, peak, floor = (opts["warmup_steps"], opts["total_steps"], opts["peak_lr"],
                         opts["min_lr"])
    rates = [spec.warmup_cosine_lr(s, **opts) for s in range(t + 20)]
    assert all(isinstance(r, float) for r in rates)
    tol = 4 * np.finfo(np.float64).eps * peak
    assert all(b >= a - tol for a, b in itertools.pairwise(rates[:w + 1])), "warmup ↑"
    assert all(b <= a + tol for a, b in itertools.pairwise(rates[w:])), "decay ↓"
    assert abs(rates[w] - peak) <= tol and abs(rates[t] - floor) <= tol
    assert all(abs(r - floor) <= tol for r in rates[t:]), "stays at min_lr after T"
    if w:
        assert rates[0] == 0.0
        below = spec.warmup_cosine_lr(w - 1e-9, **opts)
        above = spec.warmup_cosine_lr(w + 1e-9, **opts)
        assert abs(below - peak) <= peak * 1e-9 / w + tol and abs(above - peak) <= 1e-6 * peak
    assert all(floor - tol <= r <= peak + tol for r in rates[w:])


@pytest.mark.spec("warmup_cosine_lr", tier="P")
@given(opts=_schedule())
def test_warmup_cosine_arrays_match_numbers(backend, dtype, opts):
    steps = np.arange(0, opts["total_steps"] + 5, dtype=np.int64)
    want = np.array([spec.warmup_cosine_lr(int(s), **opts) for s in steps])
    got = spec.warmup_cosine_lr(to_backend(backend, steps.astype(dtype)), **opts)
    # the steps and the result are in the dtype: ~8 rounding steps of the schedule (see the
    # tier R budget), normwise at the peak
    assert_close(backend, got, want, dtype, tol=Tol(0, 8 * np.finfo(dtype).eps * opts["peak_lr"]),
                 what="array of steps")
    ints = spec.warmup_cosine_lr(to_backend(backend, steps), **opts)
    assert backend.xp.isdtype(ints.dtype, "real floating")
    eps = float(backend.xp.finfo(ints.dtype).eps)
    np.testing.assert_allclose(_np(backend, ints), want, rtol=0, atol=8 * eps * opts["peak_lr"])


# ============================================================================ tier P: clipping
@pytest.mark.spec("clip_grad_norm", tier="P")
@given(data=st.data())
def test_clip_grad_norm_bounded_direction_and_no_op(backend, dtype, data):
    k = data.draw(st.integers(1, 4), label="tensors")
    host = [data.draw(cst.arrays(dtype, data.draw(cst.shapes(max_dims=2), label=f"shape{i}")),
                      label=f"g{i}") for i in range(k)]
    gamma = data.draw(st.floats(0.01, 100.0), label="max_norm")
    total = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in host))
    out = [_np(backend, g) for g in spec.clip_grad_norm(_on(backend, *host), max_norm=gamma)]
    assert len(out) == k and all(o.shape == g.shape for o, g in zip(out, host, strict=True))
    new_total = math.sqrt(sum(float(np.sum(o**2)) for o in out))
    eps = np.finfo(dtype).eps
    assert new_total <= gamma * (1 + 8 * eps), "‖clip(g)‖ ≤ γ"
    factor = min(1.0, gamma / total) if total else 1.0
    for o, g in zip(out, host, strict=True):
        g64 = g.astype(np.float64)
        np.testing.assert_allclose(o, factor * g64, rtol=16 * eps, atol=16 * eps * gamma,
                                   err_msg="one common non-negative factor: direction kept")
    if total <= gamma * (1 - 8 * eps):
        for o, g in zip(out, host, strict=True):
            assert np.array_equal(o, g.astype(np.float64)), "no-op below γ"


@pytest.mark.spec("clip_grad_norm", tier="P")
@given(data=st.data())
def test_clip_grad_norm_matches_torch(backend, data):
    _float64(backend)
    torch = _torch()
    host = [data.draw(cst.arrays("float64", s, min_value=-100, max_value=100), label=f"g{i}")
            for i, s in enumerate([(3,), (2, 2), (1,)])]
    gamma = data.draw(st.floats(0.1, 50.0), label="max_norm")
    params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in host]
    for p, g in zip(params, host, strict=True):
        p.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_norm_(params, max_norm=gamma)
    out = spec.clip_grad_norm(_on(backend, *host), max_norm=gamma)
    for o, p in zip(out, params, strict=True):
        # PyTorch divides by ‖g‖ + 1e-6: a relative difference ≤ 1e-6/‖g‖ when clipping
        np.testing.assert_allclose(_np(backend, o), p.grad.numpy(), rtol=1e-6 / gamma + 1e-14,
                                   atol=1e-12)


@pytest.mark.spec("clip_grad_norm", tier="P")
def test_clip_grad_norm_zero_huge_and_nan(backend, dtype):
    big = 1e200 if dtype == "float64" else 1e30
    zero = [np.zeros(3, dtype=dtype)]
    assert np.array_equal(_np(backend, spec.clip_grad_norm(_on(backend, *zero),
                                                           max_norm=1.0)[0]), zero[0])
    huge = [np.array([big, big], dtype=dtype), np.array([-big], dtype=dtype)]
    out = [_np(backend, o) for o in spec.clip_grad_norm(_on(backend, *huge), max_norm=2.0)]
    np.testing.assert_allclose(np.concatenate(out), 2 / math.sqrt(3) * np.array([1, 1, -1]),
                               rtol=16 * np.finfo(dtype).eps)
    single = np.array([[3.0, 0.0], [0.0, -4.0]], dtype=dtype)  # one array, as PyTorch allows
    got = spec.clip_grad_norm(to_backend(backend, single), max_norm=1.0)
    assert tuple(got.shape) == (2, 2)
    np.testing.assert_allclose(_np(backend, got), single.astype(np.float64) / 5,
                               rtol=8 * np.finfo(dtype).eps)
    nan = [np.array([np.nan, 1.0], dtype=dtype)]
    assert np.all(np.isnan(_np(backend, spec.clip_grad_norm(_on(backend, *nan),
                                                            max_norm=1.0)[0])))


# ============================================================================ tier P: minibatches
@pytest.mark.spec("minibatch_gradient", tier="P")
@pytest.mark.parametrize(("n", "b"), [(5, 2), (6, 3), (7, 7)])
def test_minibatch_mean_over_all_batches_is_the_full_gradient(backend, dtype, n, b):
    """Unbiased, exactly: averaging g_B over every size-b subset gives the full mean."""
    population = np.random.default_rng(n * 10 + b).normal(size=(n, 3)).astype(dtype)
    batches = np.array([population[list(c)] for c in itertools.combinations(range(n), b)])
    means = _np(backend, spec.minibatch_gradient(to_backend(backend, np.moveaxis(batches, 0, 1))))
    assert means.shape == (len(batches), 3)
    assert_close(backend, np.mean(means, axis=0), np.mean(population.astype(np.float64), axis=0),
                 dtype, tol=Tol(values(dtype).rtol, 8 * b * np.finfo(dtype).eps * 3),
                 what="E[g_B] = ∇L")


@pytest.mark.spec("minibatch_gradient", tier="P")
@pytest.mark.parametrize("replace", [True, False], ids=["with replacement", "without"])
def test_minibatch_variance_with_and_without_replacement(backend, replace):
    """Var(g_B) is σ²/b with replacement and σ²/b·(N−b)/(N−1) without (002 §3.2.1 gives only
    the first). N = 20, b = 10: the two differ by a factor 19/10, and 20 000 draws estimate
    the variance to ±1.5 % (one standard error, from the draws' own fourth moment). The test
    allows 5 standard errors, a false-alarm rate below 1e-6 under the normal approximation
    (and a fixed seed, so it is deterministic)."""
    dtype = "float64" if "float64" in backend.float_dtypes else "float32"
    rng = np.random.default_rng(20260917)
    big_n, b, draws = 20, 10, 20_000
    population = rng.gamma(2.0, size=big_n)  # skewed, so the check is not a normal-only fact
    sigma2 = np.var(population)  # divisor N: the population variance
    if replace:
        idx = rng.integers(0, big_n, size=(draws, b))
    else:
        idx = np.argsort(rng.random((draws, big_n)), axis=1)[:, :b]
    batches = population[idx].T.astype(dtype)  # (b, draws): the batch axis leads
    means = _np(backend, spec.minibatch_gradient(to_backend(backend, batches)))
    assert abs(np.mean(means) - np.mean(population)) <= 5 * math.sqrt(sigma2 / b / draws) * 2
    var = np.var(means, ddof=1)
    centred = means - np.mean(means)
    se = math.sqrt((np.mean(centred**4) - var**2) / draws)
    with_r, without_r = sigma2 / b, sigma2 / b * (big_n - b) / (big_n - 1)
    want, other = (with_r, without_r) if replace else (without_r, with_r)
    assert abs(var - want) <= 5 * se, f"Var = {var:.5g}, expected {want:.5g} ± {5 * se:.2g}"
    assert abs(var - other) > 5 * se, "the two formulas must be told apart"


# ============================================================================ tier P: numerical
@pytest.mark.spec("numerical_gradient", tier="P")
@given(data=st.data())
def test_numerical_gradient_exact_for_quadratics(backend, dtype, data):
    n = data.draw(st.integers(1, 5), label="n")
    a = data.draw(cst.arrays(dtype, (n, n), min_value=-2, max_value=2), label="A")
    bvec = data.draw(cst.arrays(dtype, (n,), min_value=-2, max_value=2), label="b")
    x = data.draw(cst.arrays(dtype, (n,), min_value=-2, max_value=2), label="x")
    ab, bb, xb = _on(backend, a, bvec, x)
    xp = backend.xp

    def f(y):
        return xp.sum(y * xp.matmul(ab, y)) + xp.sum(bb * y)

    got = _np(backend, spec.numerical_gradient(f, xb))
    a64, x64 = a.astype(np.float64), x.astype(np.float64)
    want = (a64 + a64.T) @ x64 + bvec.astype(np.float64)
    # no truncation error; rounding: f is evaluated to ~n²ε·|A||x|², divided by 2h with
    # h = ε^{1/3}·max(1, |x|): error ≲ n²ε^{2/3}·(|A||x|² + |b||x|)
    eps = np.finfo(dtype).eps
    size = np.abs(a64).sum() * max(1.0, np.max(np.abs(x64))) ** 2 + np.abs(bvec).sum() + 1
    np.testing.assert_allclose(got, want, rtol=0, atol=4 * (n + 1) ** 2 * eps ** (2 / 3) * size)


@pytest.mark.spec("numerical_gradient", tier="P")
@pytest.mark.parametrize("h", [0.2, 0.1])
def test_halving_h_quarters_the_error(backend, dtype, h):
    xp = backend.xp
    x = np.array([0.3, -1.1, 2.0], dtype=dtype)

    def f(y):
        return xp.sum(xp.sin(y) + 0.5 * y * y * y)

    exact = np.cos(x.astype(np.float64)) + 1.5 * x.astype(np.float64) ** 2
    err1 = _np(backend, spec.numerical_gradient(f, to_backend(backend, x), h=h)) - exact
    err2 = _np(backend, spec.numerical_gradient(f, to_backend(backend, x), h=h / 2)) - exact
    # leading term h²f'''/6 with f''' = −cos x + 3: the ratio is 4 up to O(h²) and rounding
    # (ε/h ≈ 1e-6 in float32, far below the truncation error ≈ 1e-3)
    np.testing.assert_allclose(err1 / err2, 4.0, rtol=0.05)
    np.testing.assert_allclose(err1, h**2 * (3 - np.cos(x.astype(np.float64))) / 6, rtol=0.05)


# ============================================================================ tier P: Hessians
def _hessian_at_origin(expr):
    x, y = sp.symbols("x y", real=True)
    h = sp.hessian(expr(x, y), (x, y)).subs({x: 0, y: 0})
    return np.array(h.tolist(), dtype=np.float64)


@pytest.mark.spec("classify_critical_point", tier="P")
@pytest.mark.parametrize(("expr", "kind"), [
    (lambda x, y: x**2 + y**2, "minimum"),
    (lambda x, y: -(x**2) - y**2, "maximum"),
    (lambda x, y: x**2 - y**2, "saddle"),
    (lambda x, y: x * y, "saddle"),
    (lambda x, y: x**4 + y**2, "degenerate"),
    (lambda x, y: -(x**4) - y**2, "degenerate"),
    (lambda x, y: x**3 + y**3, "degenerate"),
], ids=["x²+y²", "−x²−y²", "x²−y²", "xy", "x⁴+y²", "−x⁴−y²", "x³+y³"])
def test_classify_textbook_critical_points(backend, dtype, expr, kind):
    _skip_if_limited(backend, "classify_critical_point", "P")
    h = _hessian_at_origin(expr).astype(dtype)
    assert spec.classify_critical_point(to_backend(backend, h)) == kind


@pytest.mark.spec("classify_critical_point", tier="P")
@given(data=st.data())
def test_classify_follows_eigenvalue_signs(backend, dtype, data):
    _skip_if_limited(backend, "classify_critical_point", "P")
    n = data.draw(st.integers(1, 5), label="n")
    signs = data.draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=n, max_size=n), "signs")
    mags = data.draw(st.lists(st.floats(0.1, 10.0), min_size=n, max_size=n), label="|λ|")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    lam = np.array(signs) * np.array(mags)
    h = (q * lam) @ q.T
    h = ((h + h.T) / 2).astype(dtype)
    h = (h + h.T) / 2  # symmetric in the dtype too
    got = spec.classify_critical_point(to_backend(backend, h))
    if 1 in signs and -1 in signs:
        want = "saddle"
    elif 0 in signs:
        want = "degenerate"
    else:
        want = "minimum" if signs[0] == 1 else "maximum"
    assert got == want, (signs, lam)


# ============================================================================ tier D
def _sgd(theta, grad):
    return spec.sgd_step(theta, grad, lr=0.3)


def _momentum(theta, velocity, grad):
    return spec.momentum_step(theta, velocity, grad, lr=0.3, beta=0.8)[0]


def _adam(theta, m, v, grad):
    return spec.adam_step(theta, m, v, grad, step=3, lr=0.1, eps=1e-3)[0]


def _rmsprop(theta, sq_avg, grad):
    return spec.rmsprop_step(theta, sq_avg, grad, lr=0.1, alpha=0.9, eps=1e-3)[0]


def _positive(seed, shape):
    return np.random.default_rng(seed).uniform(0.2, 2.0, shape)


# name → (function of arrays returning θ', number of arrays, argnum, closed form, assumptions)
# Adam and RMSprop take √ of their second-moment state: positive inputs for SymPy.
DERIVATIVES = {
    "sgd_step": (_sgd, 2, 1, lambda xp, a, c: -0.3 * c, {}),
    "momentum_step": (_momentum, 3, 2, lambda xp, a, c: -0.3 * 0.2 * c, {}),
    "adam_step": (_adam, 4, 3, None, {"positive": True}),
    "rmsprop_step": (_rmsprop, 3, 2, None, {"positive": True}),
}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.spec(n, tier="D"), id=n) for n in DERIVATIVES])
@pytest.mark.parametrize("seed", [0, 1])
def test_update_derivatives_agree(backend, name, seed):
    """∂θ'/∂g (the derivative a learned optimizer or a hypergradient needs) by SymPy on the
    traced update, autograd and central differences."""
    fn, count, argnum, closed, assumptions = DERIVATIVES[name]
    args = [_positive(seed * 10 + i, (3,)) for i in range(count)]
    derivatives.check_agreement(backend, name, fn, args, argnum, {}, closed, assumptions,
                                seed=seed)


@pytest.mark.spec("sgd_step", tier="D")
def test_sgd_derivative_in_theta_is_identity(backend):
    args = [_positive(3, (4,)), _positive(4, (4,))]
    derivatives.check_agreement(backend, "sgd_step", _sgd, args, 0, {},
                                lambda xp, a, c: c, {})


def _smooth(y):
    xp = array_api_compat.array_namespace(y)
    return xp.sum(xp.exp(0.5 * y) * y) + xp.sum(y[:-1] * y[1:])


@pytest.mark.spec("numerical_gradient", tier="D")
@pytest.mark.parametrize("seed", [0, 1])
def test_numerical_gradient_agrees_with_sympy_and_autograd(backend, seed):
    if "float64" not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no float64")
    x = np.random.default_rng(seed).uniform(-1.5, 1.5, 4)
    got = _np(backend, spec.numerical_gradient(_smooth, to_backend(backend, x)))
    sym = derivatives.sympy_lambdified(backend, _smooth, [x], 0, np.asarray(1.0))
    np.testing.assert_allclose(got, sym, rtol=FINITE_DIFFERENCE.rtol,
                               atol=FINITE_DIFFERENCE.atol, err_msg="vs SymPy")
    if backend.has_autograd:
        auto = derivatives.autograd(backend, _smooth, [x], 0, np.asarray(1.0))
        np.testing.assert_allclose(got, auto, rtol=FINITE_DIFFERENCE.rtol,
                                   atol=FINITE_DIFFERENCE.atol, err_msg="vs autograd")
