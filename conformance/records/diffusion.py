"""Records of `spec/diffusion.py`: its sample, reference and error inputs.
"""

from __future__ import annotations

from conformance.records import ErrorCase, Sample, errors, references, samples
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
               {"betas": (1e-4, 2e-4, 3e-4), "t": 1}, "small β at t = 1"),
    ]


@errors(ddpm_reverse_mean)
def _(xp, dtype, device):
    return _ddpm_errors(xp, dtype, device)
