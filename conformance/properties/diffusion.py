"""Tier P properties of §13 Generative models (DDPM), as checks of an implementation.

`impl` is the implementation under test with the spec's signature; other equations a check
needs as references come from `spec`.
"""

from __future__ import annotations

import math
from fractions import Fraction

import array_api_compat
import mpmath
import numpy as np
import pytest
from hypothesis import strategies as st

import spec
from conformance import compiled
from conformance import strategies as cst
from conformance.properties import prop


@prop("diffusion_forward_step", "variance_preserving")
def forward_step_keeps_unit_variance_statistically(impl, t):
    """n = 400 000 standard normal x and ε (fixed seed): the sample variance of xₜ is within
    6 standard errors (SE = √(2/n) ≈ 0.0022) of 1 — a false-alarm rate below 1e-8 — while
    the non-preserving x + √β ε (no √(1−β)) misses by β, which it resolves for β ≥ 0.02."""
    beta = t.draw(st.sampled_from([1e-4, 0.02, 0.5, 0.999]), label="beta")
    rng = np.random.default_rng(7)
    n = 400_000
    x, e = rng.standard_normal(n).astype(t.dtype), rng.standard_normal(n).astype(t.dtype)
    out = t.np(impl(*t.on(x, e), beta_t=beta))
    tolerance = 6 * math.sqrt(2 / n)
    assert abs(np.var(out) - 1) < tolerance, np.var(out)
    if beta >= 0.02:
        wrong = x.astype(np.float64) + math.sqrt(beta) * e
        assert abs(np.var(wrong) - 1) > tolerance


def _per_example(impl, t, option: str) -> None:
    """An array-valued schedule value (one per example, shape (batch, 1)) gives each row what
    the row alone gives with its value as a Python number."""
    batch = t.draw(st.integers(1, 4), label="batch")
    x = t.draw(cst.arrays(t.dtype, (batch, 3)), label="x")
    e = t.draw(cst.arrays(t.dtype, (batch, 3)), label="eps")
    c = t.draw(cst.arrays(t.dtype, (batch, 1), min_value=0.0, max_value=1.0), label="coef")
    xb, eb, cb = t.on(x, e, c)
    rows = t.np(impl(xb, eb, **{option: cb}))
    for i in range(batch):
        one = t.np(impl(*t.on(x[i], e[i]), **{option: float(c[i, 0])}))
        t.close(rows[i], one, what=f"row {i}")


@prop("diffusion_forward_step", "per_example")
def forward_step_array_valued_beta_broadcasts_per_example(impl, t):
    _per_example(impl, t, "beta_t")


@prop("diffusion_marginal", "per_example")
def marginal_array_valued_alpha_bar_broadcasts_per_example(impl, t):
    _per_example(impl, t, "alpha_bar_t")


@prop("diffusion_marginal", "composition")
def marginal_equals_composed_steps_numerically(impl, t):
    """The composed map is linear in (x₀, ε₁ … εₜ): its coefficients, read off by feeding unit
    vectors through the spec's steps, are √ᾱₜ for x₀ and have squared sum 1 − ᾱₜ for the
    noise; the one-shot marginal has the same x₀ coefficient and noise variance."""
    steps = t.draw(st.sampled_from([1, 5, 50]), label="steps")
    betas = np.linspace(0.01, 0.3, steps).astype(t.dtype)
    basis = np.eye(steps + 1, dtype=t.dtype)  # column j: x₀ = δ_{0j}, εₛ = δ_{sj}
    x = t.on(basis[0])
    for s in range(steps):
        x = spec.diffusion_forward_step(x, t.on(basis[s + 1]), beta_t=float(betas[s]))
    coefficients = t.np(x)
    ab = float(t.np(spec.alpha_bar(t.on(betas)))[-1])
    tol = t.tol
    # each of the t steps (and each factor of ᾱₜ) rounds within the value tolerance
    np.testing.assert_allclose(coefficients[0], math.sqrt(ab), rtol=tol.rtol * steps)
    np.testing.assert_allclose(np.sum(coefficients[1:] ** 2), 1 - ab, rtol=tol.rtol * steps)
    x0, e = t.on(np.asarray([1.0, 0.0], dtype=t.dtype), np.asarray([0.0, 1.0], dtype=t.dtype))
    one_shot = t.np(impl(x0, e, alpha_bar_t=ab))
    # squaring doubles the relative error of √ᾱ (and of √(1 − ᾱ), with 1 − ᾱ rounded): 4×
    np.testing.assert_allclose(one_shot ** 2, [ab, 1 - ab], rtol=tol.rtol * 4, atol=tol.atol)


@prop("diffusion_marginal", "endpoints")
def marginal_endpoints(impl, t):
    x = t.draw(cst.arrays(t.dtype, (4,)), label="x0")
    e = t.draw(cst.arrays(t.dtype, (4,)), label="eps")
    xb, eb = t.on(x, e)
    np.testing.assert_array_equal(t.np(impl(xb, eb, alpha_bar_t=1.0)), x.astype(np.float64))
    np.testing.assert_array_equal(t.np(impl(xb, eb, alpha_bar_t=0.0)), e.astype(np.float64))


@prop("linear_beta_schedule", "endpoints", "linear", "namespace")
def linear_beta_schedule_is_exact_linear_and_monotone(impl, t):
    steps = t.draw(st.integers(1, 2000), label="T")
    start = t.draw(cst.floats(t.dtype, 0.0, 0.5), label="beta_start")  # no subnormals
    end = t.draw(cst.floats(t.dtype, 0.0, 0.999), label="beta_end")
    like = t.on(np.zeros(2, dtype=t.dtype))
    out = impl(steps, beta_start=start, beta_end=end, like=like)
    assert out.dtype == like.dtype and tuple(out.shape) == (steps,)
    assert array_api_compat.device(out) == array_api_compat.device(like)
    b = t.np(out)
    s32, e32 = (float(np.asarray(v, dtype=t.dtype)) for v in (start, end))
    assert b[0] == s32 and b[-1] == (e32 if steps > 1 else s32)
    # the exact rational schedule of the dtype-rounded endpoints, within 2 ulp of the larger
    # endpoint (the weighted form rounds each of its two terms at the endpoints' scale)
    fs, fe, n = Fraction(s32), Fraction(e32), max(steps - 1, 1)
    exact = np.asarray([float(fs + (fe - fs) * Fraction(i, n)) for i in range(steps)])
    ulp = float(np.spacing(np.asarray(max(s32, e32, 1e-30), dtype=t.dtype)))
    assert np.all(np.abs(b - exact) <= 2 * ulp)
    diffs = np.diff(b) * np.sign(e32 - s32)
    assert np.all(diffs >= -4 * ulp), "monotone up to rounding"


@prop("linear_beta_schedule", "linear", draws=False)
def linear_beta_schedule_of_ho_et_al(impl, t):
    """Ho et al.'s schedule, its size given as a 0-d integer array (anything with __index__)."""
    note = "num_steps as a 0-d integer array"
    # the limit is jax.jit's, so it applies only to compiled runs (Trial.skip_if_limited
    # looks at eager limits only)
    limit = spec.catalogue()["linear_beta_schedule"].limit(t.backend.id, "P", note,
                                                           compiled=compiled.active("P"))
    if limit:
        pytest.skip(f"{note}: {limit.reason} ({limit.link})")
    like = t.on(np.zeros(1, dtype=t.dtype))
    steps = t.on(np.asarray(1000, dtype=np.int64))  # a 0-d integer array
    b = t.np(impl(steps, beta_start=1e-4, beta_end=0.02, like=like))
    t.close(b[[0, 499, 999]], [1e-4, 1e-4 + 499 * (0.02 - 1e-4) / 999, 0.02],
            what="β₁, β₅₀₀, β₁₀₀₀")


@prop("alpha_bar", "decreasing_unit_interval")
def alpha_bar_decreasing_in_unit_interval(impl, t):
    shape = t.draw(cst.shapes(max_dims=2, max_side=20), label="shape")
    betas = t.draw(cst.arrays(t.dtype, shape, min_value=1e-4, max_value=0.5), label="betas")
    ab = t.np(impl(t.on(betas)))
    assert np.all(ab > 0) and np.all(ab <= 1)
    assert np.all(np.diff(ab, axis=-1) < 0), "strictly decreasing for 0 < β"
    t.close(ab[..., 0], 1 - betas[..., 0].astype(np.float64), what="ᾱ₁")


@prop("alpha_bar", "accuracy", draws=False)
def alpha_bar_of_a_thousand_steps_within_t_ulp(impl, t):
    """Ho et al.'s 1000-step schedule: relative error of ᾱₜ against mpmath ≤ t ulp (the bound
    of a running product: one rounding per factor and per product). Measured: a few ulp."""
    like = t.on(np.zeros(1, dtype=t.dtype))
    betas = spec.linear_beta_schedule(1000, beta_start=1e-4, beta_end=0.02, like=like)
    ab = t.np(impl(betas))
    host = t.np(betas)
    with mpmath.workdps(50):
        running, exact = mpmath.mpf(1), []
        for b in host:
            running *= 1 - mpmath.mpf(float(b))
            exact.append(float(running))
    exact = np.asarray(exact)
    steps = np.arange(1, 1001)
    assert np.all(np.abs(ab - exact) <= steps * t.eps * exact)
    assert 3e-5 < exact[-1] < 5e-5  # ᾱ_T ≈ 4.0e-5: x_T is almost pure noise


@prop("alpha_bar", "product", draws=False, spec_only=True)
def alpha_bar_log_space_fallback_agrees(impl, t):
    """The fallback for a library without cumulative_prod, exp(Σ log(1 − β)), on this backend
    and as the spec's own code runs it on a namespace without cumulative_prod."""
    betas = np.linspace(1e-4, 0.02, 200).astype(t.dtype)
    xp = t.xp
    b = t.on(betas)
    fallback = t.np(xp.exp(xp.cumulative_sum(xp.log(1.0 - b), axis=-1)))
    # the log form: each 1 − β, log and partial sum adds ≤ 1 ulp at the scale |Σ log| ≤ 2 to
    # the exponent, which exp turns into relative error: ≤ 4t ulp (t = 200 steps here)
    np.testing.assert_allclose(fallback, t.np(impl(b)), rtol=200 * 4 * t.eps)

    class _NoProd:  # the same namespace without cumulative_prod: the spec's own fallback
        def __getattr__(self, name):
            if name == "cumulative_prod":
                raise AttributeError(name)
            return getattr(xp, name)

    own = t.np(spec.diffusion._cumulative_prod(_NoProd(), 1.0 - b))
    np.testing.assert_allclose(own, fallback, rtol=0, atol=0)


def _means_on_true_noise(t, posterior, reverse):
    """μ̃ₜ(xₜ, x₀) and μ_θ(xₜ, ε) with xₜ = √ᾱₜ x₀ + √(1 − ᾱₜ) ε agree; returns μ̃ₜ, x₀, t."""
    steps = t.draw(st.integers(1, 50), label="T")
    step = t.draw(st.integers(1, steps), label="t")
    betas = t.draw(cst.arrays(t.dtype, (steps,), min_value=1e-4, max_value=0.3), label="betas")
    x0 = t.draw(cst.arrays(t.dtype, (3,), min_value=-3, max_value=3), label="x0")
    e = t.draw(cst.arrays(t.dtype, (3,), min_value=-3, max_value=3), label="eps")
    bb, xb, eb = t.on(betas, x0, e)
    ab_t = spec.alpha_bar(bb)[step - 1]
    x_t = spec.diffusion_marginal(xb, eb, alpha_bar_t=ab_t)
    mean_posterior = t.np(posterior(x_t, xb, betas=bb, t=step))
    mean_reverse = t.np(reverse(x_t, eb, betas=bb, t=step))
    # both are O(|x₀| + |ε|); the ε-form divides by √(1 − ᾱₜ) ≥ √β₁: slack for that
    # cancellation, and 4× the value tolerance per step (ᾱₜ and 1 − ᾱₜ carry ≤ t roundings)
    scale = (np.abs(x0) + np.abs(e)).astype(np.float64) / math.sqrt(float(betas[0]))
    np.testing.assert_allclose(mean_posterior, mean_reverse, rtol=0,
                               atol=float(t.tol.rtol) * 4 * float(np.max(scale)) * step)
    return mean_posterior, x0, step


@prop("ddpm_posterior_mean", "equals_reverse_mean", "first_step")
def posterior_mean_equals_reverse_mean_on_true_noise(impl, t):
    mean, x0, step = _means_on_true_noise(t, impl, spec.ddpm_reverse_mean)
    if step == 1:
        t.close(mean, x0, what="t = 1 gives x₀")


@prop("ddpm_reverse_mean", "equals_posterior_mean")
def reverse_mean_equals_posterior_mean_on_true_noise(impl, t):
    _means_on_true_noise(t, spec.ddpm_posterior_mean, impl)
