"""Records of `spec/optim.py`: sample, reference and error inputs, derivative cases and ulp
budgets.
"""

from __future__ import annotations

import math

import numpy as np

import spec
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
from spec.optim import (
    adam_step,
    classify_critical_point,
    clip_grad_norm,
    minibatch_gradient,
    momentum_step,
    numerical_gradient,
    rmsprop_step,
    sgd_step,
    warmup_cosine_lr,
)


@samples(sgd_step)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.0], dtype, device), _a(xp, [-6.0], dtype, device)), {"lr": 0.1},
               "003's first step on (x − 3)² from x = 0"),
        Sample((_a(xp, [[1.0, -2.0], [0.5, 3.0]], dtype, device),
                _a(xp, [[0.25, 1.0], [-4.0, 0.0]], dtype, device)), {"lr": 0.01}, "a matrix"),
    ]


@references(sgd_step)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, 2.0], dtype, device), _a(xp, [1e3, -1e3], dtype, device)),
               {"lr": 0.0}, "lr 0 is the identity"),
        Sample((_a(xp, [1.0, 1.0], dtype, device), _a(xp, [float("nan"), float("inf")], dtype,
                                                         device)), {"lr": 0.5},
               "NaN and ∞ gradients propagate"),
    ]


def _step_errors(xp, dtype, device, state=0, extra=None):
    """Errors shared by the update rules: `state` extra arrays sit between theta and grad."""
    extra = extra or {}
    theta = _a(xp, [1.0, 2.0], dtype, device)
    st = (_a(xp, [0.0, 0.0], dtype, device),) * state
    grad = _a(xp, [0.5, -0.5], dtype, device)
    ok = {"lr": 0.1, **extra}
    return [
        ErrorCase((theta, *st, grad), {**ok, "lr": -0.1}, ValueError,
                  "lr must be a non-negative finite number", "negative lr"),
        ErrorCase((theta, *st, grad), {**ok, "lr": math.nan}, ValueError, "lr must be finite",
                  "NaN lr"),
        ErrorCase((theta, *st, _a(xp, [0.5, -0.5, 1.0], dtype, device)), ok, ValueError,
                  "theta and grad must have the same shape", "grad of another shape"),
        ErrorCase((_a(xp, [1, 2], xp.int64, device), *st, grad), ok, TypeError,
                  "theta must have a real floating dtype", "integer theta"),
        ErrorCase((theta, *st, [0.5, -0.5]), ok, TypeError, "grad must be an array",
                  "a list for grad"),
    ]


@errors(sgd_step)
def _(xp, dtype, device):
    theta = _a(xp, [1.0, 2.0], dtype, device)
    return [*_step_errors(xp, dtype, device),
            ErrorCase((theta, theta), {"lr": "0.1"}, TypeError, "lr must be a real number",
                      "a string lr")]


@samples(momentum_step)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, -2.0], dtype, device), _a(xp, [0.0, 0.0], dtype, device),
                _a(xp, [0.5, 1.0], dtype, device)), {"lr": 0.1}, "first step from rest"),
        Sample((_a(xp, [[1.0], [2.0]], dtype, device), _a(xp, [[0.2], [-0.4]], dtype, device),
                _a(xp, [[1.0], [1.0]], dtype, device)), {"lr": 0.05, "beta": 0.5},
               "moving, β = 0.5"),
    ]


@errors(momentum_step)
def _(xp, dtype, device):
    theta = _a(xp, [1.0, 2.0], dtype, device)
    return [
        *_step_errors(xp, dtype, device, state=1),
        ErrorCase((theta, theta, theta), {"lr": 0.1, "beta": 1.0}, ValueError,
                  r"beta must be in \[0, 1\)", "β = 1"),
        ErrorCase((theta, theta, theta), {"lr": 0.1, "beta": -0.1}, ValueError,
                  r"beta must be in \[0, 1\)", "negative β"),
        ErrorCase((theta, _a(xp, [0.0], dtype, device), theta), {"lr": 0.1}, ValueError,
                  "theta and velocity must have the same shape", "velocity of another shape"),
    ]


@samples(adam_step)
def _(xp, dtype, device):
    zeros = _a(xp, [0.0, 0.0, 0.0], dtype, device)
    return [
        Sample((_a(xp, [1.0, -2.0, 0.5], dtype, device), zeros, zeros,
                _a(xp, [0.3, -4.0, 1e-3], dtype, device)), {"step": 1}, "first step"),
        Sample((_a(xp, [[1.0, 2.0]], dtype, device), _a(xp, [[0.1, -0.2]], dtype, device),
                _a(xp, [[0.01, 0.04]], dtype, device), _a(xp, [[0.5, -0.5]], dtype, device)),
               {"step": 10, "lr": 1e-2, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6},
               "step 10, all options"),
        # g² = 90,000 and v̂ = g² overflow float16 (largest 65,504): computed there, the step
        # was m̂/∞ = 0 and θ did not move
        Sample((_a(xp, [1.0, -1.0], dtype, device), _a(xp, [0.0, 0.0], dtype, device),
                _a(xp, [0.0, 0.0], dtype, device), _a(xp, [300.0, -300.0], dtype, device)),
               {"step": 1, "lr": 0.1}, "|g| = 300: g² past float16's range"),
    ]


@errors(adam_step)
def _(xp, dtype, device):
    theta = _a(xp, [1.0, 2.0], dtype, device)
    args = (theta, theta, theta, theta)
    return [
        *_step_errors(xp, dtype, device, state=2, extra={"step": 1}),
        ErrorCase(args, {"step": 0}, ValueError, "step must be an integer ≥ 1", "step 0"),
        ErrorCase(args, {"step": 1.0}, TypeError, "step must be an integer", "float step"),
        ErrorCase(args, {"step": 1, "beta1": 1.0}, ValueError, r"beta1 must be in \[0, 1\)",
                  "β₁ = 1"),
        ErrorCase(args, {"step": 1, "beta2": -0.5}, ValueError, r"beta2 must be in \[0, 1\)",
                  "negative β₂"),
        ErrorCase(args, {"step": 1, "eps": -1e-8}, ValueError,
                  "eps must be a non-negative finite number", "negative ε"),
        ErrorCase((theta, theta, _a(xp, [[1.0, 2.0]], dtype, device), theta), {"step": 1},
                  ValueError, "theta and v must have the same shape", "v of another shape"),
        ErrorCase((theta, _a(xp, [1.0, 2.0], xp.float64 if dtype == xp.float32 else xp.float32,
                             device), theta, theta), {"step": 1}, TypeError,
                  "theta and m must have the same dtype", "m of another dtype"),
    ]


@samples(rmsprop_step)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, -2.0], dtype, device), _a(xp, [0.0, 0.0], dtype, device),
                _a(xp, [0.5, 1e-3], dtype, device)), {"lr": 0.01}, "first step"),
        Sample((_a(xp, [[1.0], [2.0]], dtype, device), _a(xp, [[0.25], [4.0]], dtype, device),
                _a(xp, [[1.0], [-1.0]], dtype, device)), {"lr": 0.1, "alpha": 0.9, "eps": 0.0},
               "running average, ε = 0"),
    ]


@errors(rmsprop_step)
def _(xp, dtype, device):
    theta = _a(xp, [1.0, 2.0], dtype, device)
    return [
        *_step_errors(xp, dtype, device, state=1),
        ErrorCase((theta, theta, theta), {"lr": 0.1, "alpha": 1.5}, ValueError,
                  r"alpha must be in \[0, 1\)", "α > 1"),
        ErrorCase((theta, theta, theta), {"lr": 0.1, "eps": -1.0}, ValueError,
                  "eps must be a non-negative finite number", "negative ε"),
        ErrorCase((theta, _a(xp, [[1.0, 2.0]], dtype, device), theta), {"lr": 0.1}, ValueError,
                  "theta and sq_avg must have the same shape", "sq_avg of another shape"),
    ]


@samples(warmup_cosine_lr)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.0, 5.0, 10.0, 55.0, 100.0, 150.0], dtype, device),),
               {"peak_lr": 3e-4, "warmup_steps": 10, "total_steps": 100}, "both phases"),
        Sample((_a(xp, [[0.0, 1.0], [7.0, 20.0]], dtype, device),),
               {"peak_lr": 1.0, "warmup_steps": 0, "total_steps": 20, "min_lr": 0.1},
               "no warmup, a floor"),
    ]


@errors(warmup_cosine_lr)
def _(xp, dtype, device):
    ok = {"peak_lr": 1e-3, "warmup_steps": 10, "total_steps": 100}
    steps = _a(xp, [1.0, 2.0], dtype, device)
    return [
        ErrorCase((-1,), ok, ValueError, "step must be a non-negative", "negative step"),
        ErrorCase((_a(xp, [1.0, -2.0], dtype, device),), ok, ValueError, "step must be ≥ 0",
                  "a negative step in an array"),
        ErrorCase((steps,), {**ok, "total_steps": 10}, ValueError,
                  "total_steps must be greater than warmup_steps", "no decay phase"),
        ErrorCase((steps,), {**ok, "min_lr": 1.0}, ValueError, "min_lr must be ≤ peak_lr",
                  "floor above the peak"),
        ErrorCase((steps,), {**ok, "peak_lr": -1e-3}, ValueError,
                  "peak_lr must be a non-negative", "negative peak"),
        ErrorCase((steps,), {**ok, "warmup_steps": 2.5}, TypeError,
                  "warmup_steps must be an integer", "fractional warmup"),
        ErrorCase((xp.asarray([True], device=device),), ok, TypeError,
                  "step must have an integer or real floating dtype", "boolean steps"),
    ]


@samples(clip_grad_norm)
def _(xp, dtype, device):
    return [
        Sample(([_a(xp, [3.0, 0.0], dtype, device), _a(xp, [[0.0], [4.0]], dtype, device)],),
               {"max_norm": 1.0}, "norm 5 clipped to 1"),
        Sample(([_a(xp, [0.1, -0.2], dtype, device)],), {"max_norm": 1.0}, "below: unchanged"),
        Sample((_a(xp, [[6.0, -8.0], [0.0, 0.0]], dtype, device),), {"max_norm": 5.0},
               "a single array"),
    ]


@errors(clip_grad_norm)
def _(xp, dtype, device):
    g = _a(xp, [3.0, 4.0], dtype, device)
    return [
        ErrorCase(([],), {"max_norm": 1.0}, TypeError, "non-empty list or tuple of arrays",
                  "no gradients"),
        ErrorCase(({"w": g},), {"max_norm": 1.0}, TypeError, "grads must be an array",
                  "a dict"),
        ErrorCase(([g, _a(xp, [1.0], xp.float32 if dtype == xp.float64 else xp.float64,
                             device)],), {"max_norm": 1.0}, TypeError,
                  r"grads\[0\] and grads\[1\] must have the same dtype", "mixed dtypes"),
        ErrorCase(([g],), {"max_norm": 0.0}, ValueError, "max_norm must be a positive",
                  "zero max_norm"),
        ErrorCase(([g],), {"max_norm": -1.0}, ValueError, "max_norm must be a positive",
                  "negative max_norm"),
        ErrorCase(([g, _a(xp, [1, 2], xp.int64, device)],), {"max_norm": 1.0}, TypeError,
                  r"grads\[1\] must have a real floating dtype", "an integer array"),
        ErrorCase(([g, [1.0]],), {"max_norm": 1.0}, TypeError, r"grads\[1\] must be an array",
                  "a list inside"),
    ]


@samples(minibatch_gradient)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, 2.0, 4.0, -3.0], dtype, device),), {}, "four scalar gradients"),
        Sample((_a(xp, [[[1.0, 0.5]], [[-1.0, 2.5]], [[0.25, -0.5]]], dtype, device),), {},
               "three 1×2 gradients"),
    ]


@references(minibatch_gradient)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [[1.0, 2.0]], dtype, device),), {}, "a batch of one"),
        Sample((_a(xp, [1e4, 0.5, -1e4, 3.5], dtype, device),), {}, "cancelling gradients"),
        # a float16 sum of 1200 gradients of ±60 (72,000) passes its largest value, 65,504
        Sample((_a(xp, [[60.0, -60.0]] * 1200, dtype, device),), {},
               "1200 gradients of ±60: a float16 sum would overflow"),
    ]


@errors(minibatch_gradient)
def _(xp, dtype, device):
    return [
        ErrorCase((_a(xp, 1.0, dtype, device),), {}, ValueError, "at least 1 dimension",
                  "0-d input"),
        ErrorCase((_a(xp, [[1.0, 2.0]], dtype, device)[:0, :],), {}, ValueError,
                  "length 0 along axis 0", "empty batch"),
        ErrorCase((_a(xp, [1, 2], xp.int64, device),), {}, TypeError,
                  "per_example_grads must have a real floating dtype", "integer gradients"),
    ]


def _sample_quadratic(x):
    """3x₀² − x₀x₁ + 2x₁ + 1: a quadratic of two variables (for the sample inputs)."""
    return 3.0 * x[0] * x[0] - x[0] * x[1] + 2.0 * x[1] + 1.0


def _sample_cubic(x):
    """x₀³ + x₀x₁: not a quadratic, so central differences carry an h² error."""
    return x[0] * x[0] * x[0] + x[0] * x[1]


@samples(numerical_gradient)
def _(xp, dtype, device):
    return [
        Sample((_sample_quadratic, _a(xp, [0.5, -1.25], dtype, device)), {"h": 2.0**-6},
               "quadratic, dyadic step"),
        Sample((_sample_cubic, _a(xp, [0.75, 2.0], dtype, device)), {"h": 2.0**-8},
               "cubic, dyadic step"),
        Sample((_sample_quadratic, _a(xp, [2.0, 0.5], dtype, device)), {}, "default step"),
    ]


@errors(numerical_gradient)
def _(xp, dtype, device):
    x = _a(xp, [1.0, 2.0], dtype, device)
    return [
        ErrorCase(("x**2", x), {}, TypeError, "f must be a callable", "f not callable"),
        ErrorCase((_sample_quadratic, _a(xp, [1, 2], xp.int64, device)), {}, TypeError,
                  "x must have a real floating dtype", "integer x"),
        ErrorCase((_sample_quadratic, x), {"h": 0.0}, ValueError, "h must be a positive",
                  "zero step"),
        ErrorCase((_sample_quadratic, x), {"h": -1e-3}, ValueError, "h must be a positive",
                  "negative step"),
        ErrorCase((lambda a: a * 2.0, x), {}, ValueError, "f must return a scalar",
                  "f returns a vector"),
    ]


@samples(classify_critical_point)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [[2.0, 0.0], [0.0, 2.0]], dtype, device),), {}, "x² + y²"),
        Sample((_a(xp, [[2.0, 0.0], [0.0, -2.0]], dtype, device),), {}, "x² − y²"),
    ]


@errors(classify_critical_point)
def _(xp, dtype, device):
    return [
        ErrorCase((_a(xp, [2.0, 2.0], dtype, device),), {}, ValueError,
                  r"hessian must be a non-empty square matrix \(n, n\)", "a vector"),
        ErrorCase((_a(xp, [[2.0, 0.0, 1.0], [0.0, 2.0, 1.0]], dtype, device),), {}, ValueError,
                  r"hessian must be a non-empty square matrix", "not square"),
        ErrorCase((_a(xp, [[2, 0], [0, 2]], xp.int64, device),), {}, TypeError,
                  "hessian must have a real floating dtype", "integer Hessian"),
        ErrorCase((_a(xp, [[2.0, 1.0], [0.0, 2.0]], dtype, device),), {}, ValueError,
                  "hessian must be symmetric", "not symmetric"),
        ErrorCase((_a(xp, [[2.0, float("nan")], [float("nan"), 2.0]], dtype, device),), {},
                  ValueError, "hessian must be finite", "NaN entries"),
    ]


# --------------------------------------------------------------------------------- tier D
# ∂θ'/∂g (the derivative a learned optimizer or a hypergradient needs) by SymPy on the traced
# update, autograd and central differences. Each rule's θ' as a function of arrays only:
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


def _positive_args(count: int, shape=(3,)):
    """`make_args(seed)`: `count` arrays uniform in [0.2, 2), argument i from seed·10 + i.
    Adam and RMSprop take √ of their second-moment state: positive inputs for SymPy too."""
    return lambda seed: [_positive(seed * 10 + i, shape) for i in range(count)]


derivative(
    DerivativeCase("sgd_step", _sgd, _positive_args(2), argnum=1,
                   closed=lambda xp, a, c: -0.3 * c),
    # ∂θ'/∂θ = I, at one fixed input (the seed is not used)
    DerivativeCase("sgd_step", _sgd, lambda seed: [_positive(3, (4,)), _positive(4, (4,))],
                   argnum=0, closed=lambda xp, a, c: c, seeds=(0,), label="theta"),
    DerivativeCase("momentum_step", _momentum, _positive_args(3), argnum=2,
                   closed=lambda xp, a, c: -0.3 * 0.2 * c),
    DerivativeCase("adam_step", _adam, _positive_args(4), argnum=3,
                   assumptions={"positive": True}),
    DerivativeCase("rmsprop_step", _rmsprop, _positive_args(3), argnum=2,
                   assumptions={"positive": True}),
)


# --------------------------------------------------------------------------------- tier R
# Budgets from the operation counts, not from what was observed (the floors that set the
# scale of an ulp are beside the oracles, conformance/oracles_optim.py).
budget({
    # η rounded to the dtype (0.5), one product (0.5), one subtraction (0.5)
    "sgd_step": {"float32": 2, "float64": 2},
    # (t − W)/(T − W), ×π (π itself rounded), cos (≤ 1 ulp, |cos'| ≤ 1 scales input errors
    # by π), 1 + ·, ×(peak − min)/2, + min: ≈ 8 ulp of peak
    "warmup_cosine_lr": {"float32": 8, "float64": 8},
    # b − 1 ≤ 3 additions and one division, at mean |gᵢ|
    "minibatch_gradient": {"float32": 4, "float64": 4},
    # the stateful rules, measured by their `accuracy` property (conformance/properties/
    # optim.py, tier P): a handful of roundings each, and for Adam/RMSprop a square root and
    # a division (the state rounded as well)
    "momentum_step": {"float32": 4, "float64": 4},
    "adam_step": {"float32": 8, "float64": 8},
    "rmsprop_step": {"float32": 8, "float64": 8},
})
