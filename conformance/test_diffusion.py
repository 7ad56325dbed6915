"""§13 Generative models (DDPM): tier S, and the errors of array-valued schedules.

Tier S runs the spec's own code on SymPy expressions with a symbolic schedule βₛ = 1 − aₛ
(aₛ > 0), so the proofs hold for every schedule, not for sampled numbers. Tier P lives in
properties/diffusion.py (run by test_properties.py), the derivative cases of tier D in
records/diffusion.py (run by test_derivatives.py); tiers X, E and R in test_tiers.py, except
the bad array-valued schedules below (the records' options stay on the host, so an array
there would mix libraries on other backends) and what the options accept (NumPy scalars,
0-d integer arrays of any width) and refuse (bools).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import spec
from conformance import symbolic
from conformance.helpers import np64, on


def _schedule(steps):
    """A symbolic schedule βₛ = 1 − aₛ, aₛ > 0, and the a's."""
    a = symbolic.symbols("a", (steps,), positive=True)
    return 1 - a, symbolic.flat(a)


def _open_schedule(steps):
    """A symbolic schedule 0 < βₛ < 1, as βₛ = bₛ > 0 and the substitution bₛ → 1 − aₛ with
    aₛ > 0. The DDPM means branch on β₁ … βₜ all 0 (no noise yet, where their coefficients
    are 0/0), which SymPy decides from bₛ > 0; their algebra (square roots and logs of
    1 − βₛ) simplifies in terms of aₛ = 1 − βₛ > 0, after the substitution."""
    b = symbolic.symbols("b", (steps,), positive=True)
    a = symbolic.symbols("a", (steps,), positive=True)
    return b, {bs: 1 - as_ for bs, as_ in zip(symbolic.flat(b), symbolic.flat(a))}


def _linear_coefficients(expr, variables):
    """The coefficient of each variable in an expression linear in them (and no constant)."""
    coefficients = [sp.diff(expr, x) for x in variables]
    rest = expr - sp.Add(*[c * x for c, x in zip(coefficients, variables)])
    assert symbolic.is_zero(sp.expand(rest)), f"not linear without a constant: {expr}"
    return coefficients


# ============================================================================ tier S
@pytest.mark.spec("diffusion_forward_step", tier="S", identity="variance_preserving")
def test_forward_step_preserves_unit_variance_symbolic():
    betas, (a,) = _schedule(1)
    x, e = symbolic.symbols("x", (1,)), symbolic.symbols("e", (1,))
    out = symbolic.exprs(spec.diffusion_forward_step(x, e, beta_t=betas[0]))[0]
    cx, ce = _linear_coefficients(out, symbolic.flat(x) + symbolic.flat(e))
    symbolic.assert_equal(cx, sp.sqrt(a), "√(1 − β)")
    symbolic.assert_equal(cx ** 2 + ce ** 2, 1, "Var = (1 − β)·1 + β·1 = 1")


@pytest.mark.spec("diffusion_forward_step", "diffusion_marginal", tier="S",
                  identity="composition")
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


@pytest.mark.spec("alpha_bar", tier="S", identity="product")
@pytest.mark.parametrize("steps", [1, 2, 4])
def test_alpha_bar_is_the_cumulative_product(steps):
    b = symbolic.symbols("b", (steps,))
    ab = symbolic.exprs(spec.alpha_bar(b))
    bs = symbolic.flat(b)
    symbolic.assert_equal(ab, [sp.Mul(*[1 - x for x in bs[:t + 1]]) for t in range(steps)],
                          "Π_{s≤t}(1 − βₛ)")


@pytest.mark.spec("ddpm_posterior_mean", "ddpm_reverse_mean", tier="S",
                  identities=("equals_reverse_mean", "equals_posterior_mean", "first_step"))
@pytest.mark.parametrize(("steps", "t"), [(1, 1), (2, 1), (2, 2), (3, 2), (3, 3), (4, 4)])
def test_posterior_mean_equals_eps_parameterised_mean(steps, t):
    """With xₜ = √ᾱₜ x₀ + √(1 − ᾱₜ) ε (diffusion_marginal), μ̃ₜ(xₜ, x₀) = μ_θ(xₜ, ε): the
    ε-parameterisation is exact when the predicted noise is the true noise. The 1 − ᾱ terms
    come from the spec's −expm1(Σ log1p(−β)), so that form is proven equal too."""
    betas, open_ = _open_schedule(steps)
    x0, eps = symbolic.symbols("x", (2,)), symbolic.symbols("e", (2,))
    x_t = spec.diffusion_marginal(x0, eps, alpha_bar_t=spec.alpha_bar(betas)[t - 1])
    posterior = [e.subs(open_) for e in symbolic.flat(
        spec.ddpm_posterior_mean(x_t, x0, betas=betas, t=t))]
    reverse = [e.subs(open_) for e in symbolic.flat(
        spec.ddpm_reverse_mean(x_t, eps, betas=betas, t=t))]
    symbolic.assert_equal(posterior, reverse, f"μ̃ = μ_θ at t = {t}")
    if t == 1:
        symbolic.assert_equal(posterior, symbolic.flat(x0), "t = 1: the mean is x₀")


# ============================================================================ tier E
@pytest.mark.spec("diffusion_forward_step", "diffusion_marginal", tier="E")
def test_array_valued_schedules_are_checked(backend, dtype):
    """(Tier E: errors are not properties, and a compiled run does not check values.)"""
    xb, eb, bad, wide = on(backend, np.zeros((2, 3), dtype=dtype), np.zeros((2, 3), dtype=dtype),
                           np.asarray([[0.5], [-0.1]], dtype=dtype),
                           np.zeros((2, 3, 2), dtype=dtype))
    with pytest.raises(ValueError, match=r"beta_t must be in \[0, 1\]"):
        spec.diffusion_forward_step(xb, eb, beta_t=bad)
    with pytest.raises(ValueError, match=r"broadcastable shapes|must broadcast"):
        spec.diffusion_marginal(xb, eb, alpha_bar_t=wide)


@pytest.mark.spec("ddpm_posterior_mean", "ddpm_reverse_mean", tier="E")
def test_ddpm_means_refuse_bad_schedules(backend, dtype):
    """Bad schedules are refused (tier E: errors are not properties, and a compiled run does
    not check values)."""
    x, above, square = on(backend, np.zeros(3, dtype=dtype),
                          np.asarray([0.1, 1.0], dtype=dtype), np.full((2, 2), 0.1, dtype=dtype))
    for fn in (spec.ddpm_posterior_mean, spec.ddpm_reverse_mean):
        with pytest.raises(ValueError, match=r"betas must be in \[0, 1\)"):
            fn(x, x, betas=above, t=1)
        with pytest.raises(ValueError, match="non-empty 1-D schedule"):
            fn(x, x, betas=square, t=1)
        other = "float64" if dtype == "float32" else "float32"
        if other in backend.float_dtypes:
            (mixed,) = on(backend, np.asarray([0.1], dtype=other))
            with pytest.raises(TypeError, match="same dtype"):
                fn(x, x, betas=mixed, t=1)


@pytest.mark.spec("diffusion_forward_step", "diffusion_marginal", "linear_beta_schedule",
                  "ddpm_posterior_mean", "ddpm_reverse_mean", tier="E")
@pytest.mark.parametrize("real", [np.float32, np.float64], ids=["np.float32", "np.float64"])
def test_options_take_numpy_scalars_and_integers_of_any_width(backend, dtype, real):
    """Schedule values of any real number type (a NumPy scalar beside torch inputs is a
    number, not an array of another library), steps t of any integer type (NumPy's, 0-d
    arrays of every width), never a bool."""
    x, e = on(backend, np.array([1.0, -2.0], dtype=dtype), np.array([0.5, 0.25], dtype=dtype))
    for fn, key in ((spec.diffusion_forward_step, "beta_t"),
                    (spec.diffusion_marginal, "alpha_bar_t")):
        np.testing.assert_array_equal(np64(backend, fn(x, e, **{key: real(0.25)})),
                                      np64(backend, fn(x, e, **{key: 0.25})))
        for flag in (True, np.bool_(True)):
            with pytest.raises(TypeError, match=f"{key} must be a real number or an array"):
                fn(x, e, **{key: flag})
    like = on(backend, np.zeros(1, dtype=dtype))[0]
    np.testing.assert_array_equal(
        np64(backend, spec.linear_beta_schedule(np.int64(5), beta_start=real(0.125),
                                                beta_end=real(0.5), like=like)),
        np64(backend, spec.linear_beta_schedule(5, beta_start=0.125, beta_end=0.5, like=like)))
    for fn in (spec.ddpm_posterior_mean, spec.ddpm_reverse_mean):
        want = np64(backend, fn(x, e, betas=(0.125, 0.25), t=2))
        got = fn(x, e, betas=[real(0.125), real(0.25)], t=np.int64(2))
        np.testing.assert_array_equal(np64(backend, got), want)
        for width in ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"):
            (t,) = on(backend, np.asarray(2, dtype=width))
            np.testing.assert_array_equal(np64(backend, fn(x, e, betas=(0.125, 0.25), t=t)),
                                          want, err_msg=width)
        with pytest.raises(TypeError, match="betas must be a 1-D array or a non-empty sequence"):
            fn(x, e, betas=(0.125, np.bool_(True)), t=1)
        with pytest.raises(TypeError, match="t must be an integer time step"):
            fn(x, e, betas=(0.125, 0.25), t=np.bool_(True))
