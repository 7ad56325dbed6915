"""§13 Generative models (DDPM): tiers S, P and D.

Tier S runs the spec's own code on SymPy expressions with a symbolic schedule βₛ = 1 − aₛ
(aₛ > 0), so the proofs hold for every schedule, not for sampled numbers. Tiers P and D run on
every selected backend and dtype. Tiers X, E and R live in test_tiers.py.
"""

from __future__ import annotations

import math
from fractions import Fraction

import array_api_compat
import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import spec
from conformance import compiled, derivatives, symbolic
from conformance import strategies as cst
from conformance.helpers import assert_close, to_backend
from conformance.tolerances import values


def _np(backend, x):
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def _schedule(steps):
    """A symbolic schedule βₛ = 1 − aₛ, aₛ > 0, and the a's."""
    a = symbolic.symbols("a", (steps,), positive=True)
    return 1 - a, symbolic.flat(a)


def _linear_coefficients(expr, variables):
    """The coefficient of each variable in an expression linear in them (and no constant)."""
    coefficients = [sp.diff(expr, x) for x in variables]
    rest = expr - sp.Add(*[c * x for c, x in zip(coefficients, variables)])
    assert symbolic.is_zero(sp.expand(rest)), f"not linear without a constant: {expr}"
    return coefficients


# ============================================================================ tier S
@pytest.mark.spec("diffusion_forward_step", tier="S")
def test_forward_step_preserves_unit_variance_symbolic():
    betas, (a,) = _schedule(1)
    x, e = symbolic.symbols("x", (1,)), symbolic.symbols("e", (1,))
    out = symbolic.exprs(spec.diffusion_forward_step(x, e, beta_t=betas[0]))[0]
    cx, ce = _linear_coefficients(out, symbolic.flat(x) + symbolic.flat(e))
    symbolic.assert_equal(cx, sp.sqrt(a), "√(1 − β)")
    symbolic.assert_equal(cx ** 2 + ce ** 2, 1, "Var = (1 − β)·1 + β·1 = 1")


@pytest.mark.spec("diffusion_forward_step", "diffusion_marginal", tier="S")
@pytest.mark.parametrize("steps", [1, 2, 3, 4])
def test_composed_steps_have_the_marginal_coefficients(steps):
    """t forward steps, each with its own noise εₛ, give x₀ the coefficient Π√(1 − βₛ) = √ᾱₜ
    (ᾱ from spec.alpha_bar) and independent noises of total variance 1 − ᾱₜ — the x₀
    coefficient and noise variance of diffusion_marginal(x₀, ε, alpha_bar_t=ᾱₜ)."""
    betas, a = _schedule(steps)
    x0 = symbolic.symbols("x", (1,))
    eps = symbolic.symbols("e", (steps,))
    x = x0
    for s in range(steps):
        x = spec.diffusion_forward_step(x, eps[s:s + 1], beta_t=betas[s])
    composed = symbolic.exprs(x)[0]
    coefficients = _linear_coefficients(composed, symbolic.flat(x0) + symbolic.flat(eps))
    alpha_bar_t = spec.alpha_bar(betas)[steps - 1]
    symbolic.assert_equal(symbolic.exprs(alpha_bar_t), sp.Mul(*a), "ᾱ = Π(1 − β)")
    one_shot = symbolic.exprs(spec.diffusion_marginal(x0, eps[:1], alpha_bar_t=alpha_bar_t))[0]
    m_x0, m_eps = _linear_coefficients(one_shot, symbolic.flat(x0) + symbolic.flat(eps)[:1])
    symbolic.assert_equal(coefficients[0], m_x0, "x₀ coefficient: Π√(1 − βₛ) = √ᾱₜ")
    noise_variance = sp.Add(*[c ** 2 for c in coefficients[1:]])
    symbolic.assert_equal(noise_variance, m_eps ** 2, "noise variance Σ = 1 − ᾱₜ")
    symbolic.assert_equal(noise_variance, 1 - sp.Mul(*a), "1 − ᾱₜ")


@pytest.mark.spec("alpha_bar", tier="S")
@pytest.mark.parametrize("steps", [1, 2, 4])
def test_alpha_bar_is_the_cumulative_product(steps):
    b = symbolic.symbols("b", (steps,))
    ab = symbolic.exprs(spec.alpha_bar(b))
    bs = symbolic.flat(b)
    symbolic.assert_equal(ab, [sp.Mul(*[1 - x for x in bs[:t + 1]]) for t in range(steps)],
                          "Π_{s≤t}(1 − βₛ)")


@pytest.mark.spec("ddpm_posterior_mean", "ddpm_reverse_mean", tier="S")
@pytest.mark.parametrize(("steps", "t"), [(1, 1), (2, 1), (2, 2), (3, 2), (3, 3), (4, 4)])
def test_posterior_mean_equals_eps_parameterised_mean(steps, t):
    """With xₜ = √ᾱₜ x₀ + √(1 − ᾱₜ) ε (diffusion_marginal), μ̃ₜ(xₜ, x₀) = μ_θ(xₜ, ε): the
    ε-parameterisation is exact when the predicted noise is the true noise. The 1 − ᾱ terms
    come from the spec's −expm1(Σ log1p(−β)), so that form is proven equal too."""
    betas, _ = _schedule(steps)
    x0, eps = symbolic.symbols("x", (2,)), symbolic.symbols("e", (2,))
    x_t = spec.diffusion_marginal(x0, eps, alpha_bar_t=spec.alpha_bar(betas)[t - 1])
    posterior = symbolic.exprs(spec.ddpm_posterior_mean(x_t, x0, betas=betas, t=t))
    reverse = symbolic.exprs(spec.ddpm_reverse_mean(x_t, eps, betas=betas, t=t))
    symbolic.assert_equal(posterior, reverse, f"μ̃ = μ_θ at t = {t}")
    if t == 1:
        symbolic.assert_equal(posterior, symbolic.flat(x0), "t = 1: the mean is x₀")


# ============================================================================ tier P
@pytest.mark.spec("diffusion_forward_step", tier="P")
@pytest.mark.parametrize("beta", [1e-4, 0.02, 0.5, 0.999])
def test_forward_step_keeps_unit_variance_statistically(backend, dtype, beta):
    """n = 400 000 standard normal x and ε (fixed seed): the sample variance of xₜ is within
    6 standard errors (SE = √(2/n) ≈ 0.0022) of 1 — a false-alarm rate below 1e-8 — while
    the non-preserving x + √β ε (no √(1−β)) misses by β, which it resolves for β ≥ 0.02."""
    rng = np.random.default_rng(7)
    n = 400_000
    x, e = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    out = _np(backend, spec.diffusion_forward_step(to_backend(backend, x), to_backend(backend, e),
                                                   beta_t=beta))
    tolerance = 6 * math.sqrt(2 / n)
    assert abs(np.var(out) - 1) < tolerance, np.var(out)
    if beta >= 0.02:
        wrong = x.astype(np.float64) + math.sqrt(beta) * e
        assert abs(np.var(wrong) - 1) > tolerance


@pytest.mark.spec("diffusion_forward_step", "diffusion_marginal", tier="P")
@given(data=st.data())
def test_array_valued_schedules_broadcast_per_example(backend, dtype, data):
    batch = data.draw(st.integers(1, 4), label="batch")
    x = data.draw(cst.arrays(dtype, (batch, 3)), label="x")
    e = data.draw(cst.arrays(dtype, (batch, 3)), label="eps")
    c = data.draw(cst.arrays(dtype, (batch, 1), min_value=0.0, max_value=1.0), label="coef")
    xb, eb, cb = (to_backend(backend, a) for a in (x, e, c))
    for fn, name in ((spec.diffusion_forward_step, "beta_t"),
                     (spec.diffusion_marginal, "alpha_bar_t")):
        rows = _np(backend, fn(xb, eb, **{name: cb}))
        for i in range(batch):
            one = _np(backend, fn(to_backend(backend, x[i]), to_backend(backend, e[i]),
                                  **{name: float(c[i, 0])}))
            assert_close(backend, rows[i], one, dtype, what=f"{fn.__name__} row {i}")


@pytest.mark.spec("diffusion_forward_step", "diffusion_marginal", tier="E")
def test_array_valued_schedules_are_checked(backend, dtype):
    """(Tier E: errors are not properties, and a compiled run does not check values.)"""
    xb, eb = (to_backend(backend, np.zeros((2, 3), dtype=dtype)) for _ in range(2))
    bad = to_backend(backend, np.asarray([[0.5], [-0.1]], dtype=dtype))
    with pytest.raises(ValueError, match=r"beta_t must be in \[0, 1\]"):
        spec.diffusion_forward_step(xb, eb, beta_t=bad)
    with pytest.raises(ValueError, match=r"broadcastable shapes|must broadcast"):
        spec.diffusion_marginal(xb, eb, alpha_bar_t=to_backend(backend, np.zeros((2, 3, 2),
                                                                                  dtype=dtype)))


@pytest.mark.spec("diffusion_marginal", tier="P")
@pytest.mark.parametrize("steps", [1, 5, 50])
def test_marginal_equals_composed_steps_numerically(backend, dtype, steps):
    """The composed map is linear in (x₀, ε₁ … εₜ): its coefficients, read off by feeding unit
    vectors through the spec's steps, are √ᾱₜ for x₀ and have squared sum 1 − ᾱₜ for the noise."""
    betas = np.linspace(0.01, 0.3, steps).astype(dtype)
    basis = np.eye(steps + 1, dtype=dtype)  # column j: x₀ = δ_{0j}, εₛ = δ_{sj}
    x = to_backend(backend, basis[0])
    for s in range(steps):
        x = spec.diffusion_forward_step(x, to_backend(backend, basis[s + 1]),
                                        beta_t=float(betas[s]))
    coefficients = _np(backend, x)
    ab = float(_np(backend, spec.alpha_bar(to_backend(backend, betas)))[-1])
    tol = values(dtype)
    np.testing.assert_allclose(coefficients[0], math.sqrt(ab), rtol=tol.rtol * steps)
    np.testing.assert_allclose(np.sum(coefficients[1:] ** 2), 1 - ab, rtol=tol.rtol * steps)
    x0 = to_backend(backend, np.asarray([1.0, 0.0], dtype=dtype))
    e = to_backend(backend, np.asarray([0.0, 1.0], dtype=dtype))
    one_shot = _np(backend, spec.diffusion_marginal(x0, e, alpha_bar_t=ab))
    np.testing.assert_allclose(one_shot ** 2, [ab, 1 - ab], rtol=tol.rtol * 4, atol=tol.atol)


@pytest.mark.spec("diffusion_marginal", tier="P")
@given(data=st.data())
def test_marginal_endpoints(backend, dtype, data):
    x = data.draw(cst.arrays(dtype, (4,)), label="x0")
    e = data.draw(cst.arrays(dtype, (4,)), label="eps")
    xb, eb = to_backend(backend, x), to_backend(backend, e)
    np.testing.assert_array_equal(_np(backend, spec.diffusion_marginal(xb, eb, alpha_bar_t=1.0)),
                                  x.astype(np.float64))
    np.testing.assert_array_equal(_np(backend, spec.diffusion_marginal(xb, eb, alpha_bar_t=0.0)),
                                  e.astype(np.float64))


@pytest.mark.spec("linear_beta_schedule", tier="P")
@given(data=st.data())
def test_linear_beta_schedule_is_exact_linear_and_monotone(backend, dtype, data):
    steps = data.draw(st.integers(1, 2000), label="T")
    start = data.draw(cst.floats(dtype, 0.0, 0.5), label="beta_start")  # no subnormals
    end = data.draw(cst.floats(dtype, 0.0, 0.999), label="beta_end")
    like = to_backend(backend, np.zeros(2, dtype=dtype))
    out = spec.linear_beta_schedule(steps, beta_start=start, beta_end=end, like=like)
    assert out.dtype == like.dtype and tuple(out.shape) == (steps,)
    assert array_api_compat.device(out) == array_api_compat.device(like)
    b = _np(backend, out)
    s32, e32 = (float(np.asarray(v, dtype=dtype)) for v in (start, end))
    assert b[0] == s32 and b[-1] == (e32 if steps > 1 else s32)
    # the exact rational schedule of the dtype-rounded endpoints, within 2 ulp of the larger
    # endpoint (the weighted form rounds each of its two terms at the endpoints' scale)
    fs, fe, n = Fraction(s32), Fraction(e32), max(steps - 1, 1)
    exact = np.asarray([float(fs + (fe - fs) * Fraction(i, n)) for i in range(steps)])
    ulp = float(np.spacing(np.asarray(max(s32, e32, 1e-30), dtype=dtype)))
    assert np.all(np.abs(b - exact) <= 2 * ulp)
    diffs = np.diff(b) * np.sign(e32 - s32)
    assert np.all(diffs >= -4 * ulp), "monotone up to rounding"


@pytest.mark.spec("linear_beta_schedule", tier="P")
def test_linear_beta_schedule_of_ho_et_al(backend, dtype):
    note = "num_steps as a 0-d integer array"
    limit = spec.catalogue()["linear_beta_schedule"].limit(backend.id, "P", note,
                                                           compiled=compiled.active("P"))
    if limit:
        pytest.skip(f"{note}: {limit.reason} ({limit.link})")
    like = to_backend(backend, np.zeros(1, dtype=dtype))
    steps = to_backend(backend, np.asarray(1000, dtype=np.int64))  # a 0-d integer array
    b = _np(backend, spec.linear_beta_schedule(steps, beta_start=1e-4, beta_end=0.02, like=like))
    assert_close(backend, b[[0, 499, 999]], [1e-4, 1e-4 + 499 * (0.02 - 1e-4) / 999, 0.02],
                 dtype, what="β₁, β₅₀₀, β₁₀₀₀")


@pytest.mark.spec("alpha_bar", tier="P")
@given(data=st.data())
def test_alpha_bar_decreasing_in_unit_interval(backend, dtype, data):
    shape = data.draw(cst.shapes(max_dims=2, max_side=20), label="shape")
    betas = data.draw(cst.arrays(dtype, shape, min_value=1e-4, max_value=0.5), label="betas")
    ab = _np(backend, spec.alpha_bar(to_backend(backend, betas)))
    assert np.all(ab > 0) and np.all(ab <= 1)
    assert np.all(np.diff(ab, axis=-1) < 0), "strictly decreasing for 0 < β"
    assert_close(backend, ab[..., 0], 1 - betas[..., 0].astype(np.float64), dtype, what="ᾱ₁")


@pytest.mark.spec("alpha_bar", tier="P")
def test_alpha_bar_of_a_thousand_steps_within_t_ulp(backend, dtype):
    """Ho et al.'s 1000-step schedule: relative error of ᾱₜ against mpmath ≤ t ulp (the bound
    of a running product: one rounding per factor and per product). Measured: a few ulp."""
    like = to_backend(backend, np.zeros(1, dtype=dtype))
    betas = spec.linear_beta_schedule(1000, beta_start=1e-4, beta_end=0.02, like=like)
    ab = _np(backend, spec.alpha_bar(betas))
    host = _np(backend, betas)
    with mpmath.workdps(50):
        running, exact = mpmath.mpf(1), []
        for b in host:
            running *= 1 - mpmath.mpf(float(b))
            exact.append(float(running))
    exact = np.asarray(exact)
    eps = float(np.finfo(dtype).eps)
    t = np.arange(1, 1001)
    assert np.all(np.abs(ab - exact) <= t * eps * exact)
    assert 3e-5 < exact[-1] < 5e-5  # ᾱ_T ≈ 4.0e-5: x_T is almost pure noise


@pytest.mark.spec("alpha_bar", tier="P")
def test_alpha_bar_log_space_fallback_agrees(backend, dtype):
    """The fallback for a library without cumulative_prod, exp(Σ log(1 − β)), on this backend."""
    betas = np.linspace(1e-4, 0.02, 200).astype(dtype)
    xp = backend.xp
    b = to_backend(backend, betas)
    fallback = _np(backend, xp.exp(xp.cumulative_sum(xp.log(1.0 - b), axis=-1)))
    np.testing.assert_allclose(fallback, _np(backend, spec.alpha_bar(b)),
                               rtol=200 * 4 * float(np.finfo(dtype).eps))

    class _NoProd:  # the same namespace without cumulative_prod: the spec's own fallback
        def __getattr__(self, name):
            if name == "cumulative_prod":
                raise AttributeError(name)
            return getattr(xp, name)

    own = _np(backend, spec.diffusion._cumulative_prod(_NoProd(), 1.0 - b))
    np.testing.assert_allclose(own, fallback, rtol=0, atol=0)


@pytest.mark.spec("ddpm_posterior_mean", "ddpm_reverse_mean", tier="P")
@given(data=st.data())
def test_posterior_and_reverse_means_agree_on_true_noise(backend, dtype, data):
    steps = data.draw(st.integers(1, 50), label="T")
    t = data.draw(st.integers(1, steps), label="t")
    betas = data.draw(cst.arrays(dtype, (steps,), min_value=1e-4, max_value=0.3), label="betas")
    x0 = data.draw(cst.arrays(dtype, (3,), min_value=-3, max_value=3), label="x0")
    e = data.draw(cst.arrays(dtype, (3,), min_value=-3, max_value=3), label="eps")
    bb, xb, eb = (to_backend(backend, a) for a in (betas, x0, e))
    ab_t = spec.alpha_bar(bb)[t - 1]
    x_t = spec.diffusion_marginal(xb, eb, alpha_bar_t=ab_t)
    posterior = _np(backend, spec.ddpm_posterior_mean(x_t, xb, betas=bb, t=t))
    reverse = _np(backend, spec.ddpm_reverse_mean(x_t, eb, betas=bb, t=t))
    # both are O(|x₀| + |ε|); the ε-form divides by √(1 − ᾱₜ) ≥ √β₁: slack for that cancellation
    scale = (np.abs(x0) + np.abs(e)).astype(np.float64) / math.sqrt(float(betas[0]))
    np.testing.assert_allclose(posterior, reverse, rtol=0,
                               atol=float(values(dtype).rtol) * 4 * float(np.max(scale)) * t)
    if t == 1:
        assert_close(backend, posterior, x0, dtype, what="t = 1 gives x₀")


@pytest.mark.spec("ddpm_posterior_mean", "ddpm_reverse_mean", tier="E")
def test_ddpm_means_refuse_bad_schedules(backend, dtype):
    """Bad schedules are refused (tier E: errors are not properties, and a compiled run does
    not check values)."""
    x = to_backend(backend, np.zeros(3, dtype=dtype))
    for fn in (spec.ddpm_posterior_mean, spec.ddpm_reverse_mean):
        with pytest.raises(ValueError, match=r"betas must be in \[0, 1\)"):
            fn(x, x, betas=to_backend(backend, np.asarray([0.1, 1.0], dtype=dtype)), t=1)
        with pytest.raises(ValueError, match="non-empty 1-D schedule"):
            fn(x, x, betas=to_backend(backend, np.full((2, 2), 0.1, dtype=dtype)), t=1)
        other = "float64" if dtype == "float32" else "float32"
        if other in backend.float_dtypes:
            with pytest.raises(TypeError, match="same dtype"):
                fn(x, x, betas=to_backend(backend, np.asarray([0.1], dtype=other)), t=1)


# ============================================================================ tier D
def _rng(seed, shape, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, shape)


@pytest.mark.spec("diffusion_forward_step", tier="D")
@pytest.mark.parametrize("argnum", [0, 1])
def test_forward_step_derivatives(backend, argnum):
    beta = 0.3
    coef = math.sqrt(1 - beta) if argnum == 0 else math.sqrt(beta)
    derivatives.check_agreement(
        backend, "diffusion_forward_step", spec.diffusion_forward_step,
        [_rng(1, (2, 3)), _rng(2, (2, 3))], argnum, {"beta_t": beta},
        lambda xp, a, c: coef * c + 0 * a[argnum], seed=argnum)


@pytest.mark.spec("diffusion_marginal", tier="D")
@pytest.mark.parametrize("argnum", [0, 1])
def test_marginal_derivatives(backend, argnum):
    ab = 0.35
    coef = math.sqrt(ab) if argnum == 0 else math.sqrt(1 - ab)
    derivatives.check_agreement(
        backend, "diffusion_marginal", spec.diffusion_marginal,
        [_rng(3, (4,)), _rng(4, (4,))], argnum, {"alpha_bar_t": ab},
        lambda xp, a, c: coef * c + 0 * a[argnum], seed=argnum)


@pytest.mark.spec("alpha_bar", tier="D")
@pytest.mark.parametrize("seed", [0, 1])
def test_alpha_bar_derivative(backend, seed):
    betas = np.random.default_rng(seed).uniform(0.05, 0.5, (2, 4))

    def closed(xp, a, c):
        # ∂⟨c, ᾱ⟩/∂βₛ = −Σ_{t≥s} c_t ᾱ_t / (1 − βₛ)
        weighted = c * spec.alpha_bar(a[0])
        tail = xp.flip(xp.cumulative_sum(xp.flip(weighted, axis=-1), axis=-1), axis=-1)
        return -tail / (1 - a[0])

    derivatives.check_agreement(backend, "alpha_bar", spec.alpha_bar, [betas], 0, {}, closed,
                                seed=seed)


_BETAS = (0.1, 0.2, 0.3, 0.25)


@pytest.mark.spec("ddpm_posterior_mean", tier="D")
@pytest.mark.parametrize("t", [1, 3])
@pytest.mark.parametrize("argnum", [0, 1])
def test_posterior_mean_derivatives(backend, t, argnum):
    ab = np.cumprod(1 - np.asarray(_BETAS))
    ab_prev = 1.0 if t == 1 else ab[t - 2]
    c_x0 = math.sqrt(ab_prev) * _BETAS[t - 1] / (1 - ab[t - 1])
    c_xt = math.sqrt(1 - _BETAS[t - 1]) * (1 - ab_prev) / (1 - ab[t - 1])
    coef = c_xt if argnum == 0 else c_x0
    derivatives.check_agreement(
        backend, "ddpm_posterior_mean", spec.ddpm_posterior_mean, [_rng(5, (3,)), _rng(6, (3,))],
        argnum, {"betas": _BETAS, "t": t}, lambda xp, a, c: coef * c + 0 * a[argnum], seed=t)


@pytest.mark.spec("ddpm_reverse_mean", tier="D")
@pytest.mark.parametrize("t", [1, 4])
@pytest.mark.parametrize("argnum", [0, 1])
def test_reverse_mean_derivatives(backend, t, argnum):
    ab = np.cumprod(1 - np.asarray(_BETAS))
    beta = _BETAS[t - 1]
    coef = (1 / math.sqrt(1 - beta) if argnum == 0
            else -beta / (math.sqrt(1 - beta) * math.sqrt(1 - ab[t - 1])))
    derivatives.check_agreement(
        backend, "ddpm_reverse_mean", spec.ddpm_reverse_mean, [_rng(7, (3,)), _rng(8, (3,))],
        argnum, {"betas": _BETAS, "t": t}, lambda xp, a, c: coef * c + 0 * a[argnum], seed=t)
