"""Records of `spec/diffusion.py`: sample, reference and error inputs, derivative cases and
ulp budgets.
"""

from __future__ import annotations

import math

import numpy as np

from conformance.records import (
    DerivativeCase,
    ErrorCase,
    Sample,
    budget,
    derivative,
    errors,
    references,
    samples,
)
from conformance.records import sample_array as _a
from spec.diffusion import (
    alpha_bar,
    ddpm_posterior_mean,
    ddpm_reverse_mean,
    diffusion_forward_step,
    diffusion_marginal,
    linear_beta_schedule,
)


@samples(diffusion_forward_step)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, -0.5, 2.0], dtype, device), _a(xp, [0.3, -1.2, 0.1], dtype,
                                                             device)), {"beta_t": 0.02},
               "β = 0.02"),
        Sample((_a(xp, [[1.0, 2.0], [0.5, -1.0]], dtype, device),
                _a(xp, [[0.5, 0.5], [-0.2, 0.7]], dtype, device)),
               {"beta_t": 0.5}, "β = 0.5"),
    ]


@references(diffusion_forward_step)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, -1.0], dtype, device), _a(xp, [0.25, 4.0], dtype, device)),
               {"beta_t": 1e-4}, "small β"),
        Sample((_a(xp, [3.0], dtype, device), _a(xp, [-0.5], dtype, device)),
               {"beta_t": 1.0}, "β = 1: pure noise"),
        Sample((_a(xp, [3.0], dtype, device), _a(xp, [-0.5], dtype, device)),
               {"beta_t": 0.0}, "β = 0: identity"),
    ]


def _pair_errors(xp, dtype, device, option: str, value):
    x = _a(xp, [1.0, 2.0], dtype, device)
    return [
        ErrorCase((x, _a(xp, [1.0, 2.0, 3.0], dtype, device)), {option: value}, ValueError,
                  "must have the same shape", "mismatched shapes"),
        ErrorCase((_a(xp, [1, 2], xp.int64, device), x), {option: value}, TypeError,
                  "must have a real floating dtype", "integer input"),
        ErrorCase((x, [1.0, 2.0]), {option: value}, TypeError, "must be an array", "a list"),
    ]


def _coefficient_errors(xp, dtype, device, option: str):
    # (array-valued options are checked in conformance/test_diffusion.py: the records' option
    # values stay on the host, so an array there would mix libraries on other backends)
    x = _a(xp, [1.0, 2.0], dtype, device)
    return [
        *_pair_errors(xp, dtype, device, option, 0.5),
        ErrorCase((x, x), {option: 1.5}, ValueError, rf"{option} must be in \[0, 1\]",
                  f"{option} > 1"),
        ErrorCase((x, x), {option: -0.1}, ValueError, rf"{option} must be in \[0, 1\]",
                  f"negative {option}"),
        ErrorCase((x, x), {option: True}, TypeError, "must be a real number or an array",
                  f"{option} as a bool"),
        ErrorCase((x, x), {option: "0.5"}, TypeError, "must be a real number or an array",
                  f"{option} as a string"),
    ]


@errors(diffusion_forward_step)
def _(xp, dtype, device):
    return _coefficient_errors(xp, dtype, device, "beta_t")


@samples(diffusion_marginal)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, -0.5, 2.0], dtype, device), _a(xp, [0.3, -1.2, 0.1], dtype,
                                                             device)), {"alpha_bar_t": 0.9},
               "ᾱ = 0.9"),
        Sample((_a(xp, [[1.0, 2.0], [0.5, -1.0]], dtype, device),
                _a(xp, [[0.5, 0.5], [-0.2, 0.7]], dtype, device)),
               {"alpha_bar_t": 0.1}, "ᾱ = 0.1, a batch"),
    ]


@references(diffusion_marginal)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [3.0, -1.0], dtype, device), _a(xp, [-0.5, 2.0], dtype, device)),
               {"alpha_bar_t": 1.0}, "ᾱ = 1: x₀"),
        Sample((_a(xp, [3.0, -1.0], dtype, device), _a(xp, [-0.5, 2.0], dtype, device)),
               {"alpha_bar_t": 4e-5}, "ᾱ ≈ 4e-5: almost noise"),
    ]


@errors(diffusion_marginal)
def _(xp, dtype, device):
    return _coefficient_errors(xp, dtype, device, "alpha_bar_t")


@samples(linear_beta_schedule)
def _(xp, dtype, device):
    like = _a(xp, [0.0], dtype, device)
    return [
        Sample((5,), {"beta_start": 0.1, "beta_end": 0.5, "like": like}, "five steps"),
        Sample((1000,), {"beta_start": 1e-4, "beta_end": 0.02, "like": like},
               "Ho et al.'s 1000 steps"),
        Sample((1,), {"beta_start": 0.3, "beta_end": 0.6, "like": like}, "one step"),
        Sample((xp.asarray(4, dtype=xp.int64, device=device),),
               {"beta_start": 0.1, "beta_end": 0.4, "like": like},
               "num_steps as a 0-d integer array"),
        Sample((1000,), {"beta_start": 0.00085, "beta_end": 0.012, "like": like,
                         "schedule": "scaled_linear"}, "Stable Diffusion's scaled_linear"),
    ]


@errors(linear_beta_schedule)
def _(xp, dtype, device):
    like = _a(xp, [0.0], dtype, device)
    return [
        ErrorCase((0,), {"beta_start": 0.1, "beta_end": 0.2, "like": like}, ValueError,
                  "num_steps must be ≥ 1", "no steps"),
        ErrorCase((10,), {"beta_start": 0.1, "beta_end": 1.0, "like": like}, ValueError,
                  r"beta_end must be in \[0, 1\)", "beta_end = 1"),
        ErrorCase((10,), {"beta_start": 0.1, "beta_end": 0.2, "like": [0.0]}, TypeError,
                  "like must be an array", "like a list"),
        ErrorCase((10,), {"beta_start": 0.1, "beta_end": 0.2,
                          "like": _a(xp, [0], xp.int64, device)}, TypeError,
                  "like must have a real floating dtype", "integer like"),
        ErrorCase((2.5,), {"beta_start": 0.1, "beta_end": 0.2, "like": like}, TypeError,
                  "num_steps must be an integer", "float num_steps"),
        ErrorCase((10,), {"beta_start": 0.1, "beta_end": 0.2, "like": like, "xp": xp},
                  TypeError, "give like= or xp=/dtype=/device=, not both", "like and xp"),
        ErrorCase((10,), {"beta_start": 0.1, "beta_end": 0.2, "like": like,
                          "schedule": "cosine"}, ValueError, "schedule must be one of",
                  "unknown schedule"),
        ErrorCase((10,), {"beta_start": 0.1, "beta_end": 0.2, "xp": xp, "dtype": xp.int64},
                  TypeError, "dtype must be a real floating dtype", "an integer dtype"),
        ErrorCase((10,), {"beta_start": True, "beta_end": 0.2, "like": like}, TypeError,
                  "beta_start must be a real number", "a bool beta_start"),
    ]


@samples(alpha_bar)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.1, 0.2, 0.3, 0.4], dtype, device),), {}, "four steps"),
        Sample((_a(xp, [[1e-4, 0.02], [0.5, 0.5]], dtype, device),), {}, "batch of schedules"),
    ]


@references(alpha_bar)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1e-4 + i * (0.02 - 1e-4) / 15 for i in range(16)], dtype, device),), {},
               "16-step linear schedule"),
        Sample((_a(xp, [0.3, 1.0, 0.2], dtype, device),), {}, "β = 1 zeroes the rest"),
    ]


@errors(alpha_bar)
def _(xp, dtype, device):
    return [
        ErrorCase((_a(xp, [0.1, 1.5], dtype, device),), {}, ValueError,
                  r"betas must be in \[0, 1\]", "β > 1"),
        ErrorCase((_a(xp, [0.1, -0.5], dtype, device),), {}, ValueError,
                  r"betas must be in \[0, 1\]", "negative β"),
        ErrorCase((_a(xp, [0, 1], xp.int64, device),), {}, TypeError,
                  "betas must have a real floating dtype", "integer betas"),
        ErrorCase((_a(xp, 0.5, dtype, device),), {}, ValueError, "at least 1 dimension",
                  "0-d betas"),
    ]


_SCHEDULE = (0.1, 0.2, 0.3, 0.4)


@samples(ddpm_posterior_mean)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.5, -1.0, 2.0], dtype, device), _a(xp, [1.0, 0.0, 1.5], dtype, device)),
               {"betas": _SCHEDULE, "t": 3}, "t = 3 of 4"),
        Sample((_a(xp, [[0.5, -1.0]], dtype, device), _a(xp, [[1.0, 0.0]], dtype, device)),
               {"betas": _SCHEDULE, "t": 1}, "t = 1: x₀"),
    ]


@references(ddpm_posterior_mean)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.5, -1.0], dtype, device), _a(xp, [1.0, 0.25], dtype, device)),
               {"betas": (1e-4, 2e-4, 3e-4), "t": 2}, "small β: 1 − ᾱ without cancellation"),
        Sample((_a(xp, [0.5, -1.0], dtype, device), _a(xp, [1.0, 0.25], dtype, device)),
               {"betas": (0.0, 0.1, 0.2), "t": 1}, "t = 1 with β₁ = 0: x₀, not 0/0",
               proves=("first_step",)),
        Sample((_a(xp, [0.5, -1.0], dtype, device), _a(xp, [1.0, 0.25], dtype, device)),
               {"betas": (0.0, 0.0, 0.2), "t": 2}, "β₁ = β₂ = 0 at t = 2: x₀, not 0/0"),
    ]


def _ddpm_errors(xp, dtype, device):
    x = _a(xp, [1.0, 2.0], dtype, device)
    return [
        ErrorCase((x, x), {"betas": _SCHEDULE, "t": 0}, ValueError,
                  r"t must be in \[1, 4\]", "t = 0"),
        ErrorCase((x, x), {"betas": _SCHEDULE, "t": 5}, ValueError,
                  r"t must be in \[1, 4\]", "t > T"),
        ErrorCase((x, x), {"betas": (0.1, 1.0), "t": 1}, ValueError,
                  r"betas must be in \[0, 1\)", "β = 1"),
        ErrorCase((x, x), {"betas": (), "t": 1}, TypeError, "non-empty sequence",
                  "empty betas"),
        ErrorCase((x, x), {"betas": _SCHEDULE, "t": 1.0}, TypeError,
                  "t must be an integer time step", "float t"),
        ErrorCase((x, _a(xp, [1.0], dtype, device)), {"betas": _SCHEDULE, "t": 1}, ValueError,
                  "must have the same shape", "mismatched shapes"),
    ]


@errors(ddpm_posterior_mean)
def _(xp, dtype, device):
    return _ddpm_errors(xp, dtype, device)


@samples(ddpm_reverse_mean)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.5, -1.0, 2.0], dtype, device), _a(xp, [0.3, -0.2, 1.1], dtype,
                                                             device)),
               {"betas": _SCHEDULE, "t": 3}, "t = 3 of 4"),
        Sample((_a(xp, [[0.5, -1.0]], dtype, device), _a(xp, [[1.0, 0.0]], dtype, device)),
               {"betas": _SCHEDULE, "t": 1}, "t = 1"),
    ]


@references(ddpm_reverse_mean)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.5, -1.0], dtype, device), _a(xp, [1.0, 0.25], dtype, device)),
               {"betas": (1e-4, 2e-4, 3e-4), "t": 1}, "small β at t = 1",
               proves=("first_step",)),
        Sample((_a(xp, [0.5, -1.0], dtype, device), _a(xp, [1.0, 0.25], dtype, device)),
               {"betas": (0.0, 0.1, 0.2), "t": 1}, "t = 1 with β₁ = 0: x₁, not 0/0",
               proves=("first_step",)),
        Sample((_a(xp, [0.5, -1.0], dtype, device), _a(xp, [1.0, 0.25], dtype, device)),
               {"betas": (0.0, 0.0, 0.2), "t": 2}, "β₁ = β₂ = 0 at t = 2: x₂, not 0/0"),
    ]


@errors(ddpm_reverse_mean)
def _(xp, dtype, device):
    return _ddpm_errors(xp, dtype, device)


# --------------------------------------------------------------------------------- tier D
def _uniform(seed, shape, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, shape)


def _fixed(*seeds_and_shapes):
    """`make_args` for inputs that do not depend on the case's seed (which then sets only the
    cotangent): one uniform(−2, 2) array per (seed, shape)."""
    return lambda seed: [_uniform(s, shape) for s, shape in seeds_and_shapes]


def _linear_case(name, fn, argnum, coefficient, make_args, kwargs, seed, label):
    """A map linear in its two arrays: the vector-Jacobian product is coefficient · c."""
    return DerivativeCase(name, fn, make_args, argnum=argnum, kwargs=kwargs,
                          closed=lambda xp, a, c: coefficient * c + 0 * a[argnum],
                          seeds=(seed,), label=label)


def _alpha_bar_closed(xp, a, c):
    # ∂⟨c, ᾱ⟩/∂βₛ = −Σ_{t≥s} c_t ᾱ_t / (1 − βₛ)
    weighted = c * alpha_bar(a[0])
    tail = xp.flip(xp.cumulative_sum(xp.flip(weighted, axis=-1), axis=-1), axis=-1)
    return -tail / (1 - a[0])


_BETAS = (0.1, 0.2, 0.3, 0.25)
_ALPHA_BARS = np.cumprod(1 - np.asarray(_BETAS))


def _posterior_coefficient(t: int, argnum: int) -> float:
    """The coefficient of x_t (argnum 0) or x₀ (argnum 1) in μ̃ₜ for the schedule _BETAS."""
    ab_prev = 1.0 if t == 1 else _ALPHA_BARS[t - 2]
    if argnum == 0:
        return math.sqrt(1 - _BETAS[t - 1]) * (1 - ab_prev) / (1 - _ALPHA_BARS[t - 1])
    return math.sqrt(ab_prev) * _BETAS[t - 1] / (1 - _ALPHA_BARS[t - 1])


def _reverse_coefficient(t: int, argnum: int) -> float:
    """The coefficient of x_t (argnum 0) or ε (argnum 1) in μ_θ for the schedule _BETAS."""
    beta = _BETAS[t - 1]
    if argnum == 0:
        return 1 / math.sqrt(1 - beta)
    return -beta / (math.sqrt(1 - beta) * math.sqrt(1 - _ALPHA_BARS[t - 1]))


derivative(
    # ∂xₜ/∂xₜ₋₁ = √(1 − β), ∂xₜ/∂ε = √β (β = 0.3); the case's seed is its argnum
    *(_linear_case("diffusion_forward_step", diffusion_forward_step, argnum, coefficient,
                   _fixed((1, (2, 3)), (2, (2, 3))), {"beta_t": 0.3}, argnum, label)
      for argnum, coefficient, label in ((0, math.sqrt(1 - 0.3), "x_prev"),
                                         (1, math.sqrt(0.3), "eps"))),
    # ∂xₜ/∂x₀ = √ᾱ, ∂xₜ/∂ε = √(1 − ᾱ) (ᾱ = 0.35)
    *(_linear_case("diffusion_marginal", diffusion_marginal, argnum, coefficient,
                   _fixed((3, (4,)), (4, (4,))), {"alpha_bar_t": 0.35}, argnum, label)
      for argnum, coefficient, label in ((0, math.sqrt(0.35), "x0"),
                                         (1, math.sqrt(1 - 0.35), "eps"))),
    DerivativeCase("alpha_bar", alpha_bar,
                   lambda seed: [np.random.default_rng(seed).uniform(0.05, 0.5, (2, 4))],
                   closed=_alpha_bar_closed, seeds=(0, 1)),
    # linear in x_t and x₀ (ε) with the coefficients of the formulas, at t = 1 (ᾱ₀ = 1) and
    # later steps of the schedule _BETAS; the case's seed is t
    *(_linear_case("ddpm_posterior_mean", ddpm_posterior_mean, argnum,
                   _posterior_coefficient(t, argnum), _fixed((5, (3,)), (6, (3,))),
                   {"betas": _BETAS, "t": t}, t, f"t={t},{label}")
      for t in (1, 3) for argnum, label in ((0, "x_t"), (1, "x0"))),
    *(_linear_case("ddpm_reverse_mean", ddpm_reverse_mean, argnum,
                   _reverse_coefficient(t, argnum), _fixed((7, (3,)), (8, (3,))),
                   {"betas": _BETAS, "t": t}, t, f"t={t},{label}")
      for t in (1, 4) for argnum, label in ((0, "x_t"), (1, "eps_pred"))),
)


# --------------------------------------------------------------------------------- tier R
# Budgets from the operation counts, in ulps at the scale of the oracle's floor
# (conformance/oracles_diffusion.py):
# - diffusion_forward_step, diffusion_marginal: the coefficient (1 − c and a square root, or
#   a square root: ≤ 1 ulp, plus ½ when a Python float is cast to float32), two products and
#   one sum (½ each): ≤ 3, budget 4;
# - alpha_bar: t factors 1 − βₛ and t − 1 products, one rounding each: ≤ 2t·½ = t ulp with
#   the records' t ≤ 16, budget 16;
# - ddpm_posterior_mean, ddpm_reverse_mean: ᾱ (≤ t ulp), 1 − ᾱ as −expm1(Σ log1p(−β)) (≤ t + 2
#   ulp: t log1p and the sum, expm1 with condition ≤ 1), a square root and ≤ 4 products or
#   quotients (≤ 2.5), the final sum ½: ≤ 2t + 5 with t ≤ 3, budget 12.
budget({
    "diffusion_forward_step": {"float32": 4, "float64": 4},
    "diffusion_marginal": {"float32": 4, "float64": 4},
    "alpha_bar": {"float32": 16, "float64": 16},
    "ddpm_posterior_mean": {"float32": 12, "float64": 12},
    "ddpm_reverse_mean": {"float32": 12, "float64": 12},
})
