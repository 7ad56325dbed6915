"""Tier P properties of §6 Optimisation, as checks of an implementation.

`impl` is the implementation under test with the spec's signature; other equations a check
needs as references come from `spec`. The update rules are held to PyTorch's own optimizers
(torch.optim.SGD, Adam, RMSprop and clip_grad_norm_), which run the same trajectories in
float64 (skipped only where torch is not installed), and, for the rules that return state
(whose tuple outputs the generic tier R test does not take), to the exact single update of
mpmath, in ulps.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import strategies as st

import spec
from conformance import oracles, records
from conformance import strategies as cst
from conformance.helpers import build
from conformance.precision import finfo, host_dtype, round_to
from conformance.properties import ALL_DTYPES, prop
from conformance.tolerances import Tol

_EPS32 = float(np.finfo(np.float32).eps)


def _work(t) -> str:
    """The dtype the spec computes in for the trial's dtype (float16, bfloat16 → float32):
    Python-number hyperparameters are rounded to it, not to the low dtype."""
    return "float32" if t.low else t.dtype


def _rounded(value: float, dtype: str) -> float:
    """A Python number rounded once to `dtype` (bfloat16 included), as a float."""
    return float(round_to(value, dtype))


def _torch():
    return pytest.importorskip("torch", reason="PyTorch is the reference optimizer here")


# ============================================================================ SGD
@prop("sgd_step", "quadratic_rate", dtypes=ALL_DTYPES)
def sgd_converges_to_3_at_rate_one_minus_two_eta(impl, t):
    """f(x) = (x − 3)², f'(x) = 2(x − 3) (003): x_t − 3 = (1 − 2η)ᵗ(x₀ − 3)."""
    x0 = t.draw(st.floats(-100, 100), label="x0")
    lr = t.draw(st.floats(0.01, 0.99), label="lr")
    steps = t.draw(st.integers(1, 60), label="steps")
    x = t.on(np.array([x0], dtype=host_dtype(t.dtype)))
    x0 = _rounded(x0, t.dtype)
    lr_d = _rounded(lr, _work(t))  # the η the spec multiplies by (float32 for float16)
    for _ in range(steps):
        x = impl(x, 2.0 * (x - 3.0), lr=lr)
    want = 3 + (1 - 2 * lr_d) ** steps * (x0 - 3)
    # each step rounds x − 3, 2(·), η·(·) and x − (·) (≤ 4 ε relative to |x| + 3; in float16
    # and bfloat16 the gradient's x − 3 and the update rounded once each, ≤ 2 ε); the errors
    # are contracted by |1 − 2η| < 1 afterwards, so they add up to at most 4εt(|x₀| + 6)
    bound = 4 * steps * t.eps * (abs(x0) + 6)
    assert abs(float(t.np(x)[0]) - want) <= bound
    rate = abs(1 - 2 * lr_d)
    assert abs(float(t.np(x)[0]) - 3) <= rate**steps * abs(x0 - 3) + bound


# float32 and float64 only: a step of 0.1·|g| ≥ 1e-3 can be below half an ulp of |θ| ≤ 5 in
# float16 (2⁻⁹) and bfloat16 (2⁻⁶), where the rounded update is θ itself and f does not fall
@prop("sgd_step", "descent")
def sgd_small_step_descends(impl, t):
    n = t.draw(st.integers(1, 6), label="n")
    a = t.draw(cst.arrays("float64", (n,), min_value=0.5, max_value=4.0), label="curvature")
    theta = t.draw(cst.arrays(t.dtype, (n,), min_value=-5, max_value=5), label="theta")
    grad = (a * theta.astype(np.float64)).astype(t.dtype)  # f = ½ Σ aᵢθᵢ²
    if not np.any(np.abs(grad) > 1e-2):
        return
    new = t.np(impl(*t.on(theta, grad), lr=0.1))

    def f(x):
        return 0.5 * np.sum(a * x.astype(np.float64) ** 2)

    assert f(new) < f(theta)


@prop("sgd_step", "lr_zero_is_identity", dtypes=ALL_DTYPES, draws=False)
def sgd_lr_zero_is_identity_and_inputs_untouched(impl, t):
    dtype = host_dtype(t.dtype)
    theta, grad = np.array([1.0, -2.0], dtype=dtype), np.array([3.0, 4.0], dtype=dtype)
    tb, gb = t.on(theta, grad)
    assert np.array_equal(t.np(impl(tb, gb, lr=0.0)), theta.astype(np.float64))
    impl(tb, gb, lr=0.5)
    assert np.array_equal(t.np(tb), theta.astype(np.float64))
    assert np.array_equal(t.np(gb), grad.astype(np.float64))


# ============================================================================ trajectories
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


def _spec_trajectory(t, step_fn, a, b, theta0, state, steps):
    theta = t.on(theta0)
    state = [t.on(s) for s in state]
    ab, bb = t.on(a, b)
    out = []
    for k in range(1, steps + 1):
        grad = t.xp.matmul(ab, theta) - bb
        theta, *state = step_fn(theta, *state, grad, k)
        out.append(t.np(theta))
        # each step starts from the values just read (float64, as these trajectories are): on
        # a lazy backend (Dask) the graph would otherwise hold every earlier step, and reading
        # θ at each of n steps would compute O(n²) tasks (minutes on a busy machine)
        theta, state = t.on(out[-1]), [t.on(t.np(s)) for s in state]
    return np.array(out)


# float64 trajectories of 50–100 steps on a well-conditioned quadratic: the two
# implementations round differently (lerp vs βm + (1−β)g, √(v/c) vs √v/√c), ~1e-16 per
# step, contracted by the iteration; 1e-12 relative leaves room and still catches a wrong
# bias correction, ε placement or momentum convention (all O(1e-3) or more here).
TRAJECTORY = Tol(rtol=1e-12, atol=1e-13)


# ============================================================================ momentum
@prop("momentum_step", "heavy_ball", dtypes=("float64",), draws=False)
def momentum_equals_torch_heavy_ball_with_lr_scaled(impl, t):
    """PyTorch's SGD(momentum=β, dampening=0) keeps b ← βb + g and steps θ −= lr·b. With
    b = v/(1 − β) and lr = η(1 − β) that is exactly this EMA form."""
    torch = _torch()
    eta = 0.05
    for beta, seed in itertools.product((0.5, 0.9, 0.99), (0, 1)):
        a, b = _quadratic(seed, 4)
        theta0 = np.random.default_rng(seed + 10).normal(size=4)
        ref = _torch_trajectory(lambda p, beta=beta: torch.optim.SGD(
            p, lr=eta * (1 - beta), momentum=beta, dampening=0.0), a, b, theta0, 50)
        got = _spec_trajectory(t, lambda th, vel, g, k, beta=beta: impl(
            th, vel, g, lr=eta, beta=beta), a, b, theta0, [np.zeros(4)], 50)
        np.testing.assert_allclose(got, ref, rtol=TRAJECTORY.rtol, atol=TRAJECTORY.atol,
                                   err_msg=f"β = {beta}, seed {seed}")
        # and the unscaled lr is a different optimizer: the relation is not vacuous
        other = _torch_trajectory(lambda p, beta=beta: torch.optim.SGD(p, lr=eta, momentum=beta),
                                  a, b, theta0, 50)
        assert np.max(np.abs(other - got)) > 1e-3
        # the named variant form='heavy_ball' is that unscaled SGD itself, with lr η
        heavy = _spec_trajectory(t, lambda th, vel, g, k, beta=beta: impl(
            th, vel, g, lr=eta, beta=beta, form="heavy_ball"), a, b, theta0, [np.zeros(4)], 50)
        np.testing.assert_allclose(heavy, other, rtol=TRAJECTORY.rtol, atol=TRAJECTORY.atol,
                                   err_msg=f"heavy_ball, β = {beta}, seed {seed}")


@prop("momentum_step", "beta_zero_is_sgd", "average_of_gradients", dtypes=ALL_DTYPES)
def momentum_beta_zero_is_sgd_and_constant_gradient(impl, t):
    theta = t.draw(cst.arrays(t.dtype, (3,)), label="theta")
    vel = t.draw(cst.arrays(t.dtype, (3,)), label="v")
    g = t.draw(cst.arrays(t.dtype, (3,)), label="g")
    lr = t.draw(st.floats(0.0, 1.0), label="lr")
    tb, vb, gb = t.on(theta, vel, g)
    # βv + (1 − β)g with β = 0 is g exactly, in both forms, so θ' is sgd_step's bit for bit
    for form in ("ema", "heavy_ball"):
        new, _ = impl(tb, vb, gb, lr=lr, beta=0.0, form=form)
        assert np.array_equal(t.np(new), t.np(spec.sgd_step(tb, gb, lr=lr))), form
    beta = t.draw(st.floats(0.0, 0.99), label="beta")
    v = t.on(np.zeros(3, dtype=host_dtype(t.dtype)))
    for _ in range(10):
        _, v = impl(tb, v, gb, lr=lr, beta=beta)
    beta_d = _rounded(beta, _work(t))
    want = (1 - beta_d**10) * g.astype(np.float64)
    # ten steps of βv + (1 − β)g, each ≤ 3 roundings at the scale max|g| + 1 (in float16 and
    # bfloat16 one rounding of v per step, ≤ ε/2): 32 ε there
    t.close(v, want, tol=Tol(t.tol.rtol, 32 * t.eps * float(np.max(np.abs(g)) + 1)),
            what="v₁₀ = (1 − β¹⁰)g")


# ============================================================================ Adam
@prop("adam_step", "matches_pytorch", dtypes=("float64",), draws=False)
def adam_matches_torch_over_100_steps(impl, t):
    """100 steps that stay in the descent phase: near the minimum, where |g| ≈ ε, Adam's
    m̂/(√v̂ + ε) amplifies rounding (lr 5e-2 there drifts apart by 1e-8 in 80 steps), which
    would measure chaos, not the formula."""
    torch = _torch()
    a, b = _quadratic(3, 5)
    theta0 = np.random.default_rng(4).normal(size=5)
    for lr, betas, eps in [(3e-4, (0.9, 0.999), 1e-8), (1e-2, (0.8, 0.99), 1e-6),
                           (1e-2, (0.5, 0.9), 1e-2)]:
        ref = _torch_trajectory(lambda p, lr=lr, betas=betas, eps=eps: torch.optim.Adam(
            p, lr=lr, betas=betas, eps=eps), a, b, theta0, 100)
        got = _spec_trajectory(t, lambda th, m, v, g, k, lr=lr, betas=betas, eps=eps: impl(
            th, m, v, g, step=k, lr=lr, beta1=betas[0], beta2=betas[1], eps=eps), a, b, theta0,
            [np.zeros(5), np.zeros(5)], 100)
        np.testing.assert_allclose(got, ref, rtol=TRAJECTORY.rtol, atol=TRAJECTORY.atol,
                                   err_msg=f"lr {lr}, betas {betas}, eps {eps}")
        # it moved: the comparison is not vacuous
        assert np.max(np.abs(got[-1] - theta0)) > 10 * lr


@prop("adam_step", "first_step_sign", dtypes=ALL_DTYPES)
def adam_first_step_moves_by_eta_sign_g(impl, t):
    n = t.draw(st.integers(1, 8), label="n")
    theta = t.draw(cst.arrays(t.dtype, (n,)), label="theta")
    g = t.draw(cst.arrays(t.dtype, (n,), min_value=1e-3, max_value=1e3), label="|g|")
    sign = t.draw(cst.arrays("float64", (n,), min_value=-1, max_value=1), label="sign")
    g = np.where(sign < 0, -g, g).astype(host_dtype(t.dtype))
    zero = np.zeros(n, dtype=host_dtype(t.dtype))
    new, m, _ = impl(*t.on(theta, zero, zero, g), step=1, lr=1e-3)
    moved = t.np(new) - theta.astype(np.float64)
    # exactly η·g/(|g| + ε); |g| ≥ 1e-3 ≫ ε = 1e-8 so within η·1e-5 of η·sign(g), plus the
    # rounding of θ − step at |θ| ≤ 10 (in float16 and bfloat16 θ' is rounded once, ≤ ε/2)
    slack = 1e-3 * 1e-5 + 4 * t.eps * (np.abs(theta.astype(np.float64)) + 1e-3)
    assert np.all(np.abs(moved + 1e-3 * np.sign(g)) <= slack)
    t.close(m, 0.1 * g.astype(np.float64), what="m₁ = (1−β₁)g")


@prop("adam_step", "epsilon_outside", dtypes=ALL_DTYPES, draws=False)
def adam_epsilon_outside_not_inside_the_root(impl, t):
    """002's summary table writes √(v̂+ε); the spec (and §3.2.3, PyTorch) √v̂ + ε. With
    g = 1e-3 and ε = 1e-2 the first steps are η·0.0909 and η·0.0100: told apart."""
    eps, lr = 1e-2, 1.0
    g = _rounded(1e-3, t.dtype)  # the gradient as the dtype holds it
    zero = np.zeros(1, dtype=host_dtype(t.dtype))
    new, _, _ = impl(*t.on(zero, zero, zero, np.array([g], dtype=host_dtype(t.dtype))), step=1,
                     lr=lr, eps=eps)
    moved = -float(t.np(new)[0])
    outside = lr * g / (g + eps)
    inside = lr * g / math.sqrt(g * g + eps)
    # the first step is ~8 roundings (two EMAs, two bias corrections, √, + ε, ÷, ×η) and ε
    # rounded to the working dtype: well within the dtype's value tolerance (64 ε relative;
    # in float16 and bfloat16 one rounding of the float32 value, within t.tol's one ulp)
    assert abs(moved - outside) <= t.tol.rtol * outside
    assert abs(moved - inside) > 0.5 * outside


def _first_step_forms(g: float, eps: float, lr: float, beta1: float, beta2: float) -> dict:
    """The first Adam step from m = v = 0 in each ε form, written from the papers (float64):
    m = (1−β₁)g, v = (1−β₂)g²; m̂ = g, v̂ = g²."""
    m, v = (1 - beta1) * g, (1 - beta2) * g * g
    m_hat, v_hat = m / (1 - beta1), v / (1 - beta2)
    lr_t = lr * math.sqrt(1 - beta2) / (1 - beta1)  # Kingma & Ba §2, TensorFlow
    return {"after_root": lr * m_hat / (math.sqrt(v_hat) + eps),
            "hat": lr_t * m / (math.sqrt(v) + eps),
            "inside_root": lr * m_hat / math.sqrt(v_hat + eps)}


@prop("adam_step", "epsilon_forms", dtypes=ALL_DTYPES)
def adam_epsilon_forms_equal_their_references_and_differ(impl, t):
    """Each eps_form's first step equals the step written from its source (Kingma & Ba's
    Algorithm 1, their §2 ε̂ form as TensorFlow computes it, 002's summary table), and at
    g = 1e-3, ε = 1e-2 (the distinguishing input) the three are far apart."""
    g = _rounded(t.draw(st.floats(1e-4, 10.0), label="|g|"), t.dtype)
    eps = t.draw(st.sampled_from([1e-8, 1e-4, 1e-2]), label="eps")
    zero = np.zeros(1, dtype=host_dtype(t.dtype))
    args = t.on(zero, zero, zero, np.array([g], dtype=host_dtype(t.dtype)))
    want = _first_step_forms(g, eps, 1.0, 0.9, 0.999)
    for form, step in want.items():
        moved = -float(t.np(impl(*args, step=1, lr=1.0, eps=eps, eps_form=form)[0])[0])
        # ~8 roundings of the working dtype (≤ 64 ε of it, the value tolerance), then rounded
        # once to a low dtype: t.tol
        assert abs(moved - step) <= t.tol.rtol * step, (form, moved, step)
    apart = _first_step_forms(1e-3, 1e-2, 1.0, 0.9, 0.999)
    got = {form: -float(t.np(impl(*t.on(zero, zero, zero, np.array(
        [_rounded(1e-3, t.dtype)], dtype=host_dtype(t.dtype))), step=1, lr=1.0, eps=1e-2,
        eps_form=form)[0])[0]) for form in apart}
    for form, step in got.items():
        others = [v for f, v in apart.items() if f != form]
        assert all(abs(step - o) > 0.5 * min(step, o) for o in others), (form, got)


#: the named variants' options of the rules that return state: the accuracy property measures
#: each form against the mpmath oracle of that form (conformance/oracles_optim.py)
_VARIANT_OPTIONS = {name: [v.options for v in spec.catalogue()[name].variants]
                    for name in ("momentum_step", "adam_step", "rmsprop_step")}


def _within_budget_of_mpmath(name: str):
    """The accuracy property of a rule that returns state: the record's sample inputs against
    the exact update (mpmath, 50 digits), in ulps (the tier R measurement for tuple outputs),
    in every named variant of the rule. In float16 and bfloat16 the error is measured from
    the correctly rounded value, within the budget derived from float32's (records)."""

    @prop(name, "accuracy", dtypes=ALL_DTYPES, draws=False)
    def stateful_update_within_budget_of_mpmath(impl, t):
        budget = records.ulp_budget(name, t.dtype)
        for case in build(records.get(name).samples, t.dtype):
            for options in _VARIANT_OPTIONS[name]:
                kwargs = {**case.kwargs, **options}
                got = impl(*t.on(*case.args), **kwargs)
                worst = _ulps(name, [t.np(x) for x in got], case.args, kwargs, t.dtype)
                assert max(worst) <= budget, (
                    f"{name} [{case.note}, {options}]: {worst} ulp > {budget}")

    return stateful_update_within_budget_of_mpmath


def _ulps(name, got, args, kwargs, dtype):
    """Worst error in ulps of each output against the mpmath oracle (normwise per output at
    max(|output|, |θ|): an update cancels when θ ≈ the step); a low precision's from the
    correctly rounded value."""
    exact = [np.asarray(a, dtype=np.float64) for a in args]  # low precisions held exactly
    want = oracles.ORACLES[name](*exact, **kwargs)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, (tuple, list)) else (got,)
    scale = np.abs(exact[0])
    worst = []
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        floor = np.maximum(np.abs(w), scale) if i == 0 else np.abs(w)
        if dtype in ("float16", "bfloat16"):
            w = round_to(w, dtype)
        worst.append(float(np.max(oracles.ulp_error(g, w, dtype, floor=floor))))
    return worst


for _name in ("momentum_step", "adam_step", "rmsprop_step"):
    _within_budget_of_mpmath(_name)


# ============================================================================ RMSprop
@prop("rmsprop_step", "matches_pytorch", dtypes=("float64",), draws=False)
def rmsprop_matches_torch_over_50_steps(impl, t):
    torch = _torch()
    a, b = _quadratic(5, 4)
    theta0 = np.random.default_rng(6).normal(size=4)
    for alpha in (0.9, 0.99):
        ref = _torch_trajectory(lambda p, alpha=alpha: torch.optim.RMSprop(
            p, lr=1e-2, alpha=alpha, eps=1e-8), a, b, theta0, 50)
        got = _spec_trajectory(t, lambda th, s, g, k, alpha=alpha: impl(
            th, s, g, lr=1e-2, alpha=alpha, eps=1e-8), a, b, theta0, [np.zeros(4)], 50)
        np.testing.assert_allclose(got, ref, rtol=TRAJECTORY.rtol, atol=TRAJECTORY.atol,
                                   err_msg=f"α = {alpha}")


@prop("rmsprop_step", "epsilon_forms", dtypes=ALL_DTYPES)
def rmsprop_epsilon_forms_equal_their_references_and_differ(impl, t):
    """eps_form='inside_root' (TensorFlow's, Keras') is θ − ηg/√(s' + ε), the default
    θ − ηg/(√s' + ε) (PyTorch's), each written here from its source in float64; from s = 0
    with g = 1e-3, ε = 1e-2 (α = 0.99) they move η·0.0100 and η·0.099: told apart."""
    g = _rounded(t.draw(st.floats(1e-4, 10.0), label="|g|"), t.dtype)
    s0 = _rounded(t.draw(st.floats(0.0, 10.0), label="s"), t.dtype)
    eps = t.draw(st.sampled_from([1e-8, 1e-4, 1e-2]), label="eps")
    h = host_dtype(t.dtype)
    args = t.on(np.zeros(1, dtype=h), np.array([s0], dtype=h), np.array([g], dtype=h))
    s1 = 0.99 * s0 + 0.01 * g * g
    want = {"after_root": g / (math.sqrt(s1) + eps), "inside_root": g / math.sqrt(s1 + eps)}
    for form, step in want.items():
        moved = -float(t.np(impl(*args, lr=1.0, eps=eps, eps_form=form)[0])[0])
        # ~6 roundings of the working dtype (the value tolerance, 64 ε), rounded once to a low
        # dtype: t.tol
        assert abs(moved - step) <= t.tol.rtol * step, (form, moved, step)
    g0 = _rounded(1e-3, t.dtype)
    zero = np.zeros(1, dtype=h)
    moved = {form: -float(t.np(impl(*t.on(zero, zero, np.array([g0], dtype=h)), lr=1.0,
                                    eps=1e-2, eps_form=form)[0])[0])
             for form in want}
    assert moved["after_root"] > 5 * moved["inside_root"], moved


# float32 and float64 only: the scaled running average c²s reaches 10·2²⁰, past float16's
# largest value (65,504), where the two calls no longer see the same (scaled) inputs
@prop("rmsprop_step", "scale_invariant")
def rmsprop_step_invariant_to_gradient_scale(impl, t):
    n = t.draw(st.integers(1, 6), label="n")
    theta = t.draw(cst.arrays(t.dtype, (n,)), label="theta")
    g = t.draw(cst.arrays(t.dtype, (n,), min_value=0.1, max_value=10), label="g")
    s = t.draw(cst.arrays(t.dtype, (n,), min_value=0.0, max_value=10), label="s")
    c = 2.0 ** t.draw(st.integers(-10, 10), label="log2 c")  # exact scaling in binary
    tb = t.on(theta)
    base, _ = impl(tb, *t.on(s, g), lr=0.1, eps=1e-8)
    scaled, _ = impl(tb, *t.on((s * c * c).astype(t.dtype), (g * c).astype(t.dtype)), lr=0.1,
                     eps=1e-8)
    step0 = t.np(base) - theta.astype(np.float64)
    step1 = t.np(scaled) - theta.astype(np.float64)
    # ε enters as ε/√s' vs ε/(c√s'); √s' ≥ 0.1·√(1 − α)·min|g| ≥ 1e-3, c ≥ 2⁻¹⁰: relative
    # difference ≤ 1e-8·1e3·1e3 = 1e-2·… bounded by ε/(c√s'); plus rounding of θ − step
    sq = np.sqrt(0.99 * s.astype(np.float64) + 0.01 * g.astype(np.float64) ** 2)
    rel = 1e-8 / (min(c, 1.0) * sq) + 8 * t.eps
    slack = rel * np.abs(step0) + 4 * t.eps * np.abs(theta.astype(np.float64))
    assert np.all(np.abs(step1 - step0) <= slack + 1e-300)


# ============================================================================ schedule
@st.composite
def _schedule(draw):
    warmup = draw(st.integers(0, 50), label="warmup")
    total = draw(st.integers(warmup + 1, warmup + 500), label="total")
    peak = draw(st.floats(1e-6, 10.0), label="peak")
    floor = draw(st.floats(0.0, 1.0), label="floor fraction") * peak
    return {"peak_lr": peak, "warmup_steps": warmup, "total_steps": total, "min_lr": floor}


# Python numbers in, a float out: the check does not depend on the dtype, so it runs once
@prop("warmup_cosine_lr", "continuous", "endpoints", "monotone", dtypes=("float64",))
def warmup_cosine_phases(impl, t):
    opts = t.draw(_schedule(), label="opts")
    w, total, peak, floor = (opts["warmup_steps"], opts["total_steps"], opts["peak_lr"],
                             opts["min_lr"])
    rates = [impl(s, **opts) for s in range(total + 20)]
    assert all(isinstance(r, float) for r in rates)
    tol = 4 * float(np.finfo(np.float64).eps) * peak  # Python floats are doubles
    assert all(b >= a - tol for a, b in itertools.pairwise(rates[:w + 1])), "warmup ↑"
    assert all(b <= a + tol for a, b in itertools.pairwise(rates[w:])), "decay ↓"
    assert abs(rates[w] - peak) <= tol and abs(rates[total] - floor) <= tol
    assert all(abs(r - floor) <= tol for r in rates[total:]), "stays at min_lr after T"
    if w:
        assert rates[0] == 0.0
        below = impl(w - 1e-9, **opts)
        above = impl(w + 1e-9, **opts)
        assert abs(below - peak) <= peak * 1e-9 / w + tol and abs(above - peak) <= 1e-6 * peak
    assert all(floor - tol <= r <= peak + tol for r in rates[w:])


@prop("warmup_cosine_lr", "arrays_match_numbers", dtypes=ALL_DTYPES)
def warmup_cosine_arrays_match_numbers(impl, t):
    opts = t.draw(_schedule(), label="opts")
    steps = np.arange(0, opts["total_steps"] + 5, dtype=np.int64)
    # the steps as the dtype holds them (bfloat16 rounds integers above 256)
    held = steps.astype(host_dtype(t.dtype))
    want = np.array([impl(float(s), **opts) for s in held.astype(np.float64)])
    got = impl(t.on(held), **opts)
    # the result is in the dtype: ~8 rounding steps of the schedule (see the tier R budget),
    # normwise at the peak; in float16 and bfloat16 the float32 rate (8 ε₃₂) rounded once:
    # ε/2 of the peak at most, or half the subnormal spacing below the normal range (a peak
    # of 1e-6 is subnormal in float16)
    if t.low:
        atol = (t.eps / 2 + 8 * _EPS32) * opts["peak_lr"] + float(
            finfo(t.dtype).smallest_subnormal) / 2
    else:
        atol = 8 * t.eps * opts["peak_lr"]
    t.close(got, want, tol=Tol(0, atol), what="array of steps")
    want = np.array([impl(int(s), **opts) for s in steps])
    ints = impl(t.on(steps), **opts)
    assert t.xp.isdtype(ints.dtype, "real floating")
    eps = float(t.xp.finfo(ints.dtype).eps)
    np.testing.assert_allclose(t.np(ints), want, rtol=0, atol=8 * eps * opts["peak_lr"])


_INTEGER_DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")


@prop("warmup_cosine_lr", "arrays_match_numbers", dtypes=("float64",), draws=False)
def warmup_cosine_integer_steps_of_any_width(impl, t):
    """Integer steps of every width, signed or not, give what the same int64 steps give, bit
    for bit (they are read as the values they hold: uint8 200 is step 200, never wrapped);
    on torch, uint16 … uint64 too (its 'barebones' unsigned types)."""
    opts = {"peak_lr": 1.0, "warmup_steps": 10, "total_steps": 300}
    steps = np.array([0, 5, 10, 100, 127, 200, 255], dtype=np.int64)
    want = t.np(impl(t.on(steps), **opts))
    for name in _INTEGER_DTYPES:
        fits = steps[steps <= np.iinfo(name).max]
        got = t.np(impl(t.on(fits.astype(name)), **opts))
        assert np.array_equal(got, want[:fits.size]), (name, got)


# ============================================================================ clipping
@prop("clip_grad_norm", "bounded", "direction", "no_op_below", dtypes=ALL_DTYPES)
def clip_grad_norm_bounded_direction_and_no_op(impl, t):
    k = t.draw(st.integers(1, 4), label="tensors")
    host = [t.draw(cst.arrays(t.dtype, t.draw(cst.shapes(max_dims=2), label=f"shape{i}")),
                   label=f"g{i}") for i in range(k)]
    gamma = t.draw(st.floats(0.01, 100.0), label="max_norm")
    total = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in host))
    out = [t.np(g) for g in impl(t.on(host), max_norm=gamma)]
    assert len(out) == k and all(o.shape == g.shape for o, g in zip(out, host, strict=True))
    new_total = math.sqrt(sum(float(np.sum(o**2)) for o in out))
    # (in float16 and bfloat16 each element is the float32 value rounded once: ≤ ε/2 relative)
    assert new_total <= gamma * (1 + 8 * t.eps), "‖clip(g)‖ ≤ γ"
    factor = min(1.0, gamma / total) if total else 1.0
    for o, g in zip(out, host, strict=True):
        # the norms and one division, a few roundings each: 16 ε relative (at γ absolutely)
        np.testing.assert_allclose(o, factor * g.astype(np.float64), rtol=16 * t.eps,
                                   atol=16 * t.eps * gamma,
                                   err_msg="one common non-negative factor: direction kept")
    if total <= gamma * (1 - 8 * t.eps):
        for o, g in zip(out, host, strict=True):
            assert np.array_equal(o, g.astype(np.float64)), "no-op below γ"


@prop("clip_grad_norm", "matches_pytorch", dtypes=("float64",))
def clip_grad_norm_matches_torch(impl, t):
    """Within PyTorch's 1e-6 of it by default, and to rounding with eps=1e-6 (the variant
    that adds it); the distinguishing input, a norm of 1e-5 clipped to γ = 1e-6, gives
    norms γ (the default) and γ·10⁻⁵/(10⁻⁵ + 10⁻⁶) = 0.909γ (PyTorch's)."""
    torch = _torch()
    host = [t.draw(cst.arrays("float64", s, min_value=-100, max_value=100), label=f"g{i}")
            for i, s in enumerate([(3,), (2, 2), (1,)])]
    gamma = t.draw(st.floats(0.1, 50.0), label="max_norm")
    params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in host]
    for p, g in zip(params, host, strict=True):
        p.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_norm_(params, max_norm=gamma)
    out = impl(t.on(host), max_norm=gamma)
    for o, p in zip(out, params, strict=True):
        # PyTorch divides by ‖g‖ + 1e-6: a relative difference ≤ 1e-6/‖g‖ when clipping; the
        # two norms of 8 elements (each ~10 roundings, in another order) and the division
        # differ by far less than 45 ε relative (≈ 1e-14), i.e. 45 ε·100 absolutely on
        # |g| ≤ 100
        np.testing.assert_allclose(t.np(o), p.grad.numpy(), rtol=1e-6 / gamma + 45 * t.eps,
                                   atol=45 * t.eps * 100)
    # the variant eps=1e-6 is PyTorch's formula: the same two norms and one division
    for o, p in zip(impl(t.on(host), max_norm=gamma, eps=1e-6), params, strict=True):
        np.testing.assert_allclose(t.np(o), p.grad.numpy(), rtol=45 * t.eps,
                                   atol=45 * t.eps * 100)
    tiny = [np.array([6e-6, 8e-6])]  # ‖g‖ = 1e-5
    exact = math.sqrt(float(np.sum(t.np(impl(t.on(tiny), max_norm=1e-6)[0]) ** 2)))
    torchish = math.sqrt(float(np.sum(t.np(impl(t.on(tiny), max_norm=1e-6, eps=1e-6)[0]) ** 2)))
    assert abs(exact - 1e-6) <= 8 * t.eps * 1e-6
    assert abs(torchish - 1e-6 * 1e-5 / (1e-5 + 1e-6)) <= 8 * t.eps * 1e-6


@prop("clip_grad_norm", "bounded", "direction", "no_op_below", dtypes=ALL_DTYPES,
      draws=False)
def clip_grad_norm_zero_huge_and_nan(impl, t):
    # values whose squares overflow the dtype: float16's 6e4 (its largest is 65,504, its
    # squares' limit 256), bfloat16's and float32's 1e30, float64's 1e200
    big = {"float64": 1e200, "float16": 6e4}.get(t.dtype, 1e30)
    h = host_dtype(t.dtype)
    zero = [np.zeros(3, dtype=h)]
    assert np.array_equal(t.np(impl(t.on(zero), max_norm=1.0)[0]), zero[0].astype(np.float64))
    huge = [np.array([big, big], dtype=h), np.array([-big], dtype=h)]
    out = [t.np(o) for o in impl(t.on(huge), max_norm=2.0)]
    # the overflow-safe norm (a scaled sum of squares) and one division: 16 ε relative
    np.testing.assert_allclose(np.concatenate(out), 2 / math.sqrt(3) * np.array([1, 1, -1]),
                               rtol=16 * t.eps)
    single = np.array([[3.0, 0.0], [0.0, -4.0]], dtype=h)  # one array, as PyTorch allows
    got = impl(t.on(single), max_norm=1.0)
    assert tuple(got.shape) == (2, 2)
    # ‖g‖ = 5 of two exact squares: a root and a division, 8 ε relative
    np.testing.assert_allclose(t.np(got), single.astype(np.float64) / 5, rtol=8 * t.eps)
    nan = [np.array([np.nan, 1.0], dtype=h)]
    assert np.all(np.isnan(t.np(impl(t.on(nan), max_norm=1.0)[0])))


# ============================================================================ minibatches
@prop("minibatch_gradient", "unbiased", dtypes=ALL_DTYPES, draws=False)
def minibatch_mean_over_all_batches_is_the_full_gradient(impl, t):
    """Unbiased, exactly: averaging g_B over every size-b subset gives the full mean."""
    for n, b in [(5, 2), (6, 3), (7, 7)]:
        population = np.random.default_rng(n * 10 + b).normal(size=(n, 3)).astype(
            host_dtype(t.dtype))
        batches = np.array([population[list(c)] for c in itertools.combinations(range(n), b)])
        means = t.np(impl(t.on(np.moveaxis(batches, 0, 1))))
        assert means.shape == (len(batches), 3)
        # each batch mean rounds b terms (≤ b ε at |g| ≤ 3, hence 8·b·ε·3 absolutely; in
        # float16 and bfloat16 the float32 mean rounded once, ≤ ε/2), and the average over
        # batches is taken in float64
        t.close(np.mean(means, axis=0), np.mean(population.astype(np.float64), axis=0),
                tol=Tol(t.tol.rtol, 8 * b * t.eps * 3), what=f"E[g_B] = ∇L (N = {n}, b = {b})")


# float32 and float64 only: the bounds are derived for the population as drawn, and
# bfloat16's rounding of each value (up to 0.4 %) is not far enough below the standard error
# (1.5 %) to leave the 5-standard-error test its stated false-alarm rate
@prop("minibatch_gradient", "variance", draws=False)
def minibatch_variance_with_and_without_replacement(impl, t):
    """Var(g_B) is σ²/b with replacement and σ²/b·(N−b)/(N−1) without (002 §3.2.1 gives only
    the first). N = 20, b = 10: the two differ by a factor 19/10, and 20 000 draws estimate
    the variance to ±1.5 % (one standard error, from the draws' own fourth moment). The check
    allows 5 standard errors, a false-alarm rate below 1e-6 under the normal approximation
    (and a fixed seed, so it is deterministic). The dtype's rounding (≤ 1e-7 relative in
    float32) is far below the standard error."""
    for replace in (True, False):
        rng = np.random.default_rng(20260917)
        big_n, b, draws = 20, 10, 20_000
        population = rng.gamma(2.0, size=big_n)  # skewed: not a normal-only fact
        sigma2 = np.var(population)  # divisor N: the population variance
        if replace:
            idx = rng.integers(0, big_n, size=(draws, b))
        else:
            idx = np.argsort(rng.random((draws, big_n)), axis=1)[:, :b]
        batches = population[idx].T.astype(t.dtype)  # (b, draws): the batch axis leads
        means = t.np(impl(t.on(batches)))
        assert abs(np.mean(means) - np.mean(population)) <= 5 * math.sqrt(sigma2 / b / draws) * 2
        var = np.var(means, ddof=1)
        centred = means - np.mean(means)
        se = math.sqrt((np.mean(centred**4) - var**2) / draws)
        with_r, without_r = sigma2 / b, sigma2 / b * (big_n - b) / (big_n - 1)
        want, other = (with_r, without_r) if replace else (without_r, with_r)
        how = "with replacement" if replace else "without"
        assert abs(var - want) <= 5 * se, (
            f"{how}: Var = {var:.5g}, expected {want:.5g} ± {5 * se:.2g}")
        assert abs(var - other) > 5 * se, f"{how}: the two formulas must be told apart"


# ============================================================================ numerical
@prop("numerical_gradient", "exact_for_quadratics")
def numerical_gradient_exact_for_quadratics(impl, t):
    n = t.draw(st.integers(1, 5), label="n")
    a = t.draw(cst.arrays(t.dtype, (n, n), min_value=-2, max_value=2), label="A")
    bvec = t.draw(cst.arrays(t.dtype, (n,), min_value=-2, max_value=2), label="b")
    x = t.draw(cst.arrays(t.dtype, (n,), min_value=-2, max_value=2), label="x")
    ab, bb, xb = t.on(a, bvec, x)
    xp = t.xp

    def f(y):
        return xp.sum(y * xp.matmul(ab, y)) + xp.sum(bb * y)

    got = t.np(impl(f, xb))
    a64, x64 = a.astype(np.float64), x.astype(np.float64)
    want = (a64 + a64.T) @ x64 + bvec.astype(np.float64)
    # no truncation error; rounding: f is evaluated to ~n²ε·|A||x|², divided by 2h with
    # h = ε^{1/3}·max(1, |x|): error ≲ n²ε^{2/3}·(|A||x|² + |b||x|)
    size = np.abs(a64).sum() * max(1.0, np.max(np.abs(x64))) ** 2 + np.abs(bvec).sum() + 1
    np.testing.assert_allclose(got, want, rtol=0, atol=4 * (n + 1) ** 2 * t.eps ** (2 / 3) * size)


@prop("numerical_gradient", "second_order", draws=False)
def halving_h_quarters_the_error(impl, t):
    xp = t.xp
    x = np.array([0.3, -1.1, 2.0], dtype=t.dtype)

    def f(y):
        return xp.sum(xp.sin(y) + 0.5 * y * y * y)

    exact = np.cos(x.astype(np.float64)) + 1.5 * x.astype(np.float64) ** 2
    for h in (0.2, 0.1):
        err1 = t.np(impl(f, t.on(x), h=h)) - exact
        err2 = t.np(impl(f, t.on(x), h=h / 2)) - exact
        # leading term h²f'''/6 with f''' = −cos x + 3: the ratio is 4 up to O(h²) (the next
        # term, h⁴f⁽⁵⁾/120, is ≤ 1 % of it for h ≤ 0.2) and rounding (ε/h ≈ 1e-6 in float32,
        # far below the truncation error ≈ 1e-3): 5 % is a truncation bound, not a dtype one
        np.testing.assert_allclose(err1 / err2, 4.0, rtol=0.05, err_msg=f"h = {h}")
        np.testing.assert_allclose(err1, h**2 * (3 - np.cos(x.astype(np.float64))) / 6,
                                   rtol=0.05, err_msg=f"h = {h}")


# ============================================================================ Hessians
def _hessian_at_origin(expr):
    x, y = sp.symbols("x y", real=True)
    h = sp.hessian(expr(x, y), (x, y)).subs({x: 0, y: 0})
    return np.array(h.tolist(), dtype=np.float64)


_TEXTBOOK = [
    ("x²+y²", lambda x, y: x**2 + y**2, "minimum"),
    ("−x²−y²", lambda x, y: -(x**2) - y**2, "maximum"),
    ("x²−y²", lambda x, y: x**2 - y**2, "saddle"),
    ("xy", lambda x, y: x * y, "saddle"),
    ("x⁴+y²", lambda x, y: x**4 + y**2, "degenerate"),
    ("−x⁴−y²", lambda x, y: -(x**4) - y**2, "degenerate"),
    ("x³+y³", lambda x, y: x**3 + y**3, "degenerate"),
]


@prop("classify_critical_point", "textbook_cases", "degenerate", dtypes=ALL_DTYPES,
      draws=False)
def classify_textbook_critical_points(impl, t):
    t.skip_if_limited()
    for label, expr, kind in _TEXTBOOK:
        h = _hessian_at_origin(expr).astype(host_dtype(t.dtype))  # small integers: exact
        got = impl(t.on(h))
        assert got == kind, f"{label}: {got!r}, expected {kind!r}"


@prop("classify_critical_point", "spectrum", dtypes=ALL_DTYPES)
def classify_follows_eigenvalue_signs(impl, t):
    t.skip_if_limited()
    n = t.draw(st.integers(1, 5), label="n")
    signs = t.draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=n, max_size=n), label="signs")
    # rounding H's entries to the dtype moves its eigenvalues by ≤ n·ε/2·max|λ| and the spec
    # counts |λ| ≤ n·ε·max|λ| as zero: a non-zero eigenvalue must clear both, 1.5·n·ε·10;
    # 2nε·10 (0.1 in every dtype but bfloat16, 0.78 there) does
    low = max(0.1, 2 * n * t.eps * 10)
    mags = t.draw(st.lists(st.floats(low, 10.0), min_size=n, max_size=n), label="|λ|")
    seed = t.draw(st.integers(0, 2**32 - 1), label="seed")
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    lam = np.array(signs) * np.array(mags)
    h = (q * lam) @ q.T
    h = ((h + h.T) / 2).astype(host_dtype(t.dtype))
    h = (h + h.T) / 2  # symmetric in the dtype too
    got = impl(t.on(h))
    if 1 in signs and -1 in signs:
        want = "saddle"
    elif 0 in signs:
        want = "degenerate"
    else:
        want = "minimum" if signs[0] == 1 else "maximum"
    assert got == want, (signs, lam)
