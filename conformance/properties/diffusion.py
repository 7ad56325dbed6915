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
from conformance.precision import finfo, host_dtype, round_to
from conformance.properties import ALL_DTYPES, prop, within
from conformance.tolerances import Tol


@prop("diffusion_forward_step", "variance_preserving", dtypes=ALL_DTYPES)
def forward_step_keeps_unit_variance_statistically(impl, t):
    """n = 400 000 standard normal x and ε (fixed seed): the sample variance of xₜ is within
    6 standard errors (SE = √(2/n) ≈ 0.0022) of 1 — a false-alarm rate below 1e-8 — while
    the non-preserving x + √β ε (no √(1−β)) misses by β, which it resolves for β ≥ 0.02."""
    beta = t.draw(st.sampled_from([1e-4, 0.02, 0.5, 0.999]), label="beta")
    rng = np.random.default_rng(7)
    n = 400_000
    # (rounding each value to a low dtype, ≤ 2⁻⁹ relative, moves the variance by ~1e-6, far
    # below the standard error)
    h = host_dtype(t.dtype)
    x, e = rng.standard_normal(n).astype(h), rng.standard_normal(n).astype(h)
    out = t.np(impl(*t.on(x, e), beta_t=beta))
    tolerance = 6 * math.sqrt(2 / n)
    assert abs(np.var(out) - 1) < tolerance, np.var(out)
    if beta >= 0.02:
        wrong = x.astype(np.float64) + math.sqrt(beta) * e.astype(np.float64)
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


# (in float16 and bfloat16 each side is the float32 value rounded once, and the two float32
# values differ by the rounding of a Python √ against an array √: t.tol's one ulp covers it)
@prop("diffusion_forward_step", "per_example", dtypes=ALL_DTYPES)
def forward_step_array_valued_beta_broadcasts_per_example(impl, t):
    _per_example(impl, t, "beta_t")


@prop("diffusion_marginal", "per_example", dtypes=ALL_DTYPES)
def marginal_array_valued_alpha_bar_broadcasts_per_example(impl, t):
    _per_example(impl, t, "alpha_bar_t")


@prop("diffusion_marginal", "composition", dtypes=ALL_DTYPES)
def marginal_equals_composed_steps_numerically(impl, t):
    """The composed map is linear in (x₀, ε₁ … εₜ): its coefficients, read off by feeding unit
    vectors through the spec's steps, are √ᾱₜ for x₀ and have squared sum 1 − ᾱₜ for the
    noise; the one-shot marginal has the same x₀ coefficient and noise variance."""
    steps = t.draw(st.sampled_from([1, 5, 50]), label="steps")
    betas = np.linspace(0.01, 0.3, steps).astype(host_dtype(t.dtype))
    basis = np.eye(steps + 1, dtype=host_dtype(t.dtype))  # x₀ = δ_{0j}, εₛ = δ_{sj}
    x = t.on(basis[0])
    for s in range(steps):
        x = spec.diffusion_forward_step(x, t.on(basis[s + 1]), beta_t=float(betas[s]))
    coefficients = t.np(x)
    ab = float(t.np(spec.alpha_bar(t.on(betas)))[-1])
    tol = t.tol
    # each of the t steps (and each factor of ᾱₜ) rounds within the value tolerance (in
    # float16 and bfloat16 each step's result is rounded once, ε/2, within t.tol too)
    np.testing.assert_allclose(coefficients[0], math.sqrt(ab), rtol=tol.rtol * steps)
    # 1 − ᾱₜ is formed here from the returned ᾱₜ: in float16 and bfloat16 that ᾱₜ is rounded
    # once (ε/2·ᾱₜ absolute), an error 1 − ᾱₜ carries as is (2.4 % of 1 − ᾱ₁ at β₁ = 0.01)
    np.testing.assert_allclose(np.sum(coefficients[1:] ** 2), 1 - ab, rtol=tol.rtol * steps,
                               atol=t.eps / 2 * ab if t.low else 0.0)
    x0, e = t.on(np.asarray([1.0, 0.0], dtype=host_dtype(t.dtype)),
                 np.asarray([0.0, 1.0], dtype=host_dtype(t.dtype)))
    one_shot = t.np(impl(x0, e, alpha_bar_t=ab))
    # squaring doubles the relative error of √ᾱ (and of √(1 − ᾱ), with 1 − ᾱ rounded): 4×
    np.testing.assert_allclose(one_shot ** 2, [ab, 1 - ab], rtol=tol.rtol * 4, atol=tol.atol)


@prop("diffusion_marginal", "endpoints", dtypes=ALL_DTYPES)
def marginal_endpoints(impl, t):
    x = t.draw(cst.arrays(t.dtype, (4,)), label="x0")
    e = t.draw(cst.arrays(t.dtype, (4,)), label="eps")
    xb, eb = t.on(x, e)
    np.testing.assert_array_equal(t.np(impl(xb, eb, alpha_bar_t=1.0)), x.astype(np.float64))
    np.testing.assert_array_equal(t.np(impl(xb, eb, alpha_bar_t=0.0)), e.astype(np.float64))


def _ulp(value: float, dtype: str) -> float:
    """The spacing of `dtype` at |value| (its smallest normal's below that)."""
    info = finfo(dtype)
    mag = max(abs(value), float(info.tiny))
    return float(info.eps) * 2.0 ** math.floor(math.log2(mag))


@prop("linear_beta_schedule", "endpoints", "linear", "namespace", dtypes=ALL_DTYPES)
def linear_beta_schedule_is_exact_linear_and_monotone(impl, t):
    steps = t.draw(st.integers(1, 2000), label="T")
    start = t.draw(cst.floats(t.dtype, 0.0, 0.5), label="beta_start")  # no subnormals
    end = t.draw(cst.floats(t.dtype, 0.0, 0.999), label="beta_end")
    like = t.on(np.zeros(2, dtype=host_dtype(t.dtype)))
    out = impl(steps, beta_start=start, beta_end=end, like=like)
    assert out.dtype == like.dtype and tuple(out.shape) == (steps,)
    assert array_api_compat.device(out) == array_api_compat.device(like)
    b = t.np(out)
    s32, e32 = (float(round_to(v, t.dtype)) for v in (start, end))
    assert b[0] == s32 and b[-1] == (e32 if steps > 1 else s32)
    # the exact rational schedule of the dtype-rounded endpoints, within 2 ulp of the larger
    # endpoint (the weighted form rounds each of its two terms at the endpoints' scale; in
    # float16 and bfloat16 the float32 value, within 2 ulp of float32, rounded once: ½ ulp)
    fs, fe, n = Fraction(s32), Fraction(e32), max(steps - 1, 1)
    exact = np.asarray([float(fs + (fe - fs) * Fraction(i, n)) for i in range(steps)])
    ulp = _ulp(max(s32, e32, 1e-30), t.dtype)
    assert np.all(np.abs(b - exact) <= 2 * ulp)
    diffs = np.diff(b) * np.sign(e32 - s32)
    assert np.all(diffs >= -4 * ulp), "monotone up to rounding"


@prop("linear_beta_schedule", "namespace", dtypes=ALL_DTYPES, draws=False)
def linear_beta_schedule_without_like(impl, t):
    """Without `like`: NumPy and its default float64 when nothing is given (as SciPy's
    array-API functions default); xp=, dtype= and device= name the rest, and give what the
    same `like` gives, bit for bit."""
    numpy_default = impl(5, beta_start=0.1, beta_end=0.5)
    assert isinstance(numpy_default, np.ndarray) and numpy_default.dtype == np.float64
    np.testing.assert_array_equal(numpy_default, [0.1, 0.2, 0.3, 0.4, 0.5])
    like = t.on(np.zeros(1, dtype=host_dtype(t.dtype)))
    named = impl(1000, beta_start=1e-4, beta_end=0.02, xp=t.xp, dtype=like.dtype,
                 device=array_api_compat.device(like))
    assert named.dtype == like.dtype
    assert array_api_compat.device(named) == array_api_compat.device(like)
    np.testing.assert_array_equal(
        t.np(named), t.np(impl(1000, beta_start=1e-4, beta_end=0.02, like=like)))


@prop("linear_beta_schedule", "linear", dtypes=ALL_DTYPES, draws=False)
def linear_beta_schedule_of_ho_et_al(impl, t):
    """Ho et al.'s schedule, its size given as a 0-d integer array (anything with __index__),
    of any integer width that holds 1000."""
    note = "num_steps as a 0-d integer array"
    # the limit is jax.jit's, so it applies only to compiled runs (Trial.skip_if_limited
    # looks at eager limits only)
    limit = spec.catalogue()["linear_beta_schedule"].limit(t.backend.id, "P", note,
                                                           compiled=compiled.active("P"))
    if limit:
        pytest.skip(f"{note}: {limit.reason} ({limit.link})")
    like = t.on(np.zeros(1, dtype=host_dtype(t.dtype)))
    for width in ("int16", "uint16", "int32", "uint32", "int64", "uint64"):
        steps = t.on(np.asarray(1000, dtype=width))  # a 0-d integer array
        b = t.np(impl(steps, beta_start=1e-4, beta_end=0.02, like=like))
        t.close(b[[0, 499, 999]], [1e-4, 1e-4 + 499 * (0.02 - 1e-4) / 999, 0.02],
                what=f"β₁, β₅₀₀, β₁₀₀₀ ({width})")


def _scaled_linear(steps: int, start: float, end: float) -> np.ndarray:
    """Stable Diffusion's schedule as diffusers writes it: linspace(√β_start, √β_end, T)²
    (float64)."""
    return np.linspace(math.sqrt(start), math.sqrt(end), steps) ** 2


@prop("linear_beta_schedule", "scaled_linear", dtypes=ALL_DTYPES)
def linear_beta_schedule_scaled_linear_variant(impl, t):
    """schedule='scaled_linear' is the square of a linear schedule of roots, as diffusers
    computes it, with the same exact ends; at Stable Diffusion's 1000 steps from 0.00085 to
    0.012 (the distinguishing input) β₅₀₀ is 0.0048 where the linear schedule has 0.0064."""
    steps = t.draw(st.integers(2, 2000), label="T")
    start = t.draw(cst.floats(t.dtype, 0.0, 0.5), label="beta_start")
    end = t.draw(cst.floats(t.dtype, 0.0, 0.999), label="beta_end")
    like = t.on(np.zeros(1, dtype=host_dtype(t.dtype)))
    b = t.np(impl(steps, beta_start=start, beta_end=end, like=like, schedule="scaled_linear"))
    s_d, e_d = (float(round_to(v, t.dtype)) for v in (start, end))
    assert b[0] == s_d and b[-1] == e_d, "exact ends"
    # the root √s(1 − i/(T−1)) + √e·i/(T−1): two roots, the fraction and 1 − it (each ε/2,
    # absolute), two products and a sum, ≤ 3ε of the larger root absolute (1 − i/(T−1)
    # cancels near the end: relative to a small end value the error is not bounded); squared,
    # ≤ 6ε of the larger endpoint, and rounded (ε/2 of the value); linspace's own ≤ 3ε:
    # 10 ε of the larger endpoint, as the linear identity's 2 ulp of it, plus ½ ulp of a low
    # dtype (its ε/2 of the value)
    work_eps = float(finfo("float32" if t.low else t.dtype).eps)
    rtol = 10 * work_eps + (t.eps / 2 if t.low else 0.0)
    within(b[1:-1], _scaled_linear(steps, s_d, e_d)[1:-1],
            10 * work_eps * max(s_d, e_d) + float(finfo(t.dtype).smallest_subnormal),
            rtol=t.eps / 2 if t.low else 0.0, what="scaled_linear")
    sd = {name: t.np(impl(1000, beta_start=0.00085, beta_end=0.012, like=like, schedule=name))
          for name in ("linear", "scaled_linear")}
    t.close(sd["scaled_linear"][499], _scaled_linear(1000, 0.00085, 0.012)[499],
            tol=Tol(rtol, 0.0), what="β₅₀₀, scaled_linear")
    assert sd["linear"][499] > 1.2 * sd["scaled_linear"][499], "told apart mid-schedule"


@prop("alpha_bar", "decreasing_unit_interval", dtypes=ALL_DTYPES)
def alpha_bar_decreasing_in_unit_interval(impl, t):
    shape = t.draw(cst.shapes(max_dims=2, max_side=20), label="shape")
    # strictly decreasing after rounding needs each factor to move ᾱ by more than an ulp:
    # β > ε does (β ≥ 1e-4 in float32 and float64, 2ε in float16 and bfloat16); and float16's
    # ᾱ must stay above its smallest normal (6.1e-5), where the spacing is ε·ᾱ: 0.7²⁰ = 8e-4
    low = 2 * t.eps if t.low else 1e-4
    high = 0.3 if t.dtype == "float16" else 0.5
    betas = t.draw(cst.arrays(t.dtype, shape, min_value=low, max_value=high), label="betas")
    ab = t.np(impl(t.on(betas)))
    assert np.all(ab > 0) and np.all(ab <= 1)
    assert np.all(np.diff(ab, axis=-1) < 0), "strictly decreasing for 0 < β"
    t.close(ab[..., 0], 1 - betas[..., 0].astype(np.float64), what="ᾱ₁")


@prop("alpha_bar", "accuracy", dtypes=ALL_DTYPES, draws=False)
def alpha_bar_of_a_thousand_steps_within_t_ulp(impl, t):
    """Ho et al.'s 1000-step schedule: relative error of ᾱₜ against mpmath ≤ t ulp (the bound
    of a running product: one rounding per factor and per product). Measured: a few ulp. In
    float16 and bfloat16: float32's t ulp and one rounding (½ ulp, ≤ 1.5 ulp relative where
    float16's ᾱ is subnormal, below 6.1e-5), within t ulp of the low dtype for t ≥ 2; t = 1
    is 1 − β₁ rounded once."""
    like = t.on(np.zeros(1, dtype=host_dtype(t.dtype)))
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
    assert np.all(np.abs(ab - exact) <= np.maximum(steps, 2) * t.eps * exact)
    assert 3e-5 < exact[-1] < 5e-5  # ᾱ_T ≈ 4.0e-5: x_T is almost pure noise


# float32 and float64 only: it checks the fallback's own arithmetic in the dtype, which the
# spec never runs in float16 or bfloat16 (it widens to float32 first)
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
    if t.low:
        # xₜ from the exact ᾱₜ of the rounded schedule, rounded once to the dtype: ᾱₜ itself
        # rounded to float16 first would move xₜ by ᾱ/(2√(1 − ᾱ))·ε/2, unbounded as β → 0,
        # which the ε-form then divides by √(1 − ᾱₜ)
        ab_t = float(np.prod(1 - betas.astype(np.float64)[:step]))
        x_t = t.on(round_to(math.sqrt(ab_t) * x0.astype(np.float64)
                            + math.sqrt(1 - ab_t) * e.astype(np.float64),
                            t.dtype).astype(host_dtype(t.dtype)))
    else:
        ab_t = spec.alpha_bar(bb)[step - 1]
        x_t = spec.diffusion_marginal(xb, eb, alpha_bar_t=ab_t)
    mean_posterior = t.np(posterior(x_t, xb, betas=bb, t=step))
    mean_reverse = t.np(reverse(x_t, eb, betas=bb, t=step))
    # both are O(|x₀| + |ε|); the ε-form divides by √(1 − ᾱₜ) ≥ √β₁: slack for that
    # cancellation, and 4× the value tolerance per step (ᾱₜ and 1 − ᾱₜ carry ≤ t roundings;
    # in float16 and bfloat16 xₜ and each mean are rounded once, ε/2 of |x₀| + |ε| each)
    scale = (np.abs(x0) + np.abs(e)).astype(np.float64) / math.sqrt(float(betas[0]))
    np.testing.assert_allclose(mean_posterior, mean_reverse, rtol=0,
                               atol=float(t.tol.rtol) * 4 * float(np.max(scale)) * step)
    return mean_posterior, x0, step


@prop("ddpm_posterior_mean", "equals_reverse_mean", "first_step", dtypes=ALL_DTYPES)
def posterior_mean_equals_reverse_mean_on_true_noise(impl, t):
    mean, x0, step = _means_on_true_noise(t, impl, spec.ddpm_reverse_mean)
    if step == 1:
        np.testing.assert_array_equal(mean, x0.astype(np.float64), "t = 1 gives x₀ exactly")


@prop("ddpm_reverse_mean", "equals_posterior_mean", dtypes=ALL_DTYPES)
def reverse_mean_equals_posterior_mean_on_true_noise(impl, t):
    _means_on_true_noise(t, spec.ddpm_posterior_mean, impl)


def _first_step_inputs(t):
    x = t.draw(cst.arrays(t.dtype, (3,), min_value=-3, max_value=3), label="x")
    e = t.draw(cst.arrays(t.dtype, (3,), min_value=-3, max_value=3), label="eps")
    beta_1 = t.draw(st.sampled_from([0.0, 1e-4, 0.02, 0.5]), label="beta_1")
    rest = t.draw(st.lists(st.floats(1e-4, 0.3), max_size=3), label="later betas")
    return x, e, (beta_1, *rest)


@prop("ddpm_posterior_mean", "first_step", dtypes=ALL_DTYPES)
def posterior_mean_at_the_first_step_is_x0(impl, t):
    """t = 1 gives x₀ bit for bit, whatever β₁ (0 included, where the coefficients β₁/(1 − ᾱ₁)
    and (1 − ᾱ₀)/(1 − ᾱ₁) are 0/0), and a new array."""
    x_t, x0, betas = _first_step_inputs(t)
    xb, x0b = t.on(x_t, x0)
    got = impl(xb, x0b, betas=betas, t=1)
    assert got is not x0b
    np.testing.assert_array_equal(t.np(got), x0.astype(np.float64))


@prop("ddpm_reverse_mean", "first_step", dtypes=ALL_DTYPES)
def reverse_mean_at_the_first_step(impl, t):
    """t = 1, where 1 − ᾱ₁ = β₁: (x₁ − √β₁ ε)/√(1 − β₁), finite for β₁ = 0 (x₁ itself),
    against that formula in float64 (the betas are given as numbers: taken at the working
    precision, whose rounding of β₁ moves √β₁ by ε/2 relative)."""
    x, e, betas = _first_step_inputs(t)
    got = t.np(impl(*t.on(x, e), betas=betas, t=1))
    beta_1 = float(round_to(betas[0], "float32" if t.low else t.dtype))
    want = (x.astype(np.float64) - math.sqrt(beta_1) * e.astype(np.float64)) / math.sqrt(
        1 - beta_1)
    # a √, a product, a difference and a quotient at the scale |x| + √β₁|ε|: the value
    # tolerance (t.tol, one ulp more in a low precision)
    scale = (np.abs(x) + math.sqrt(beta_1) * np.abs(e)).astype(np.float64)
    within(got, want, t.tol.rtol * 2 * scale + t.tol.atol, what="t = 1")
    if betas[0] == 0.0:
        np.testing.assert_array_equal(got, x.astype(np.float64), "β₁ = 0: the mean is x₁")
