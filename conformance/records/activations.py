"""Records of `spec/activations.py`: its sample, reference and error inputs.
"""

from __future__ import annotations

import math

from conformance.records import ErrorCase, Sample, errors, references, samples
from conformance.records import sample_array as _a
from spec.activations import (
    SUBNORMAL,
    erf,
    erf_grad,
    gelu,
    gelu_grad,
    leaky_relu,
    leaky_relu_grad,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    silu,
    silu_grad,
    swiglu,
    swiglu_vjp,
    tanh,
    tanh_grad,
)


def _elementwise_samples(xp, dtype, device):
    return [
        Sample((_a(xp, [-2.0, -0.5, 0.25, 1.0, 3.0], dtype, device),), {}, "vector"),
        Sample((_a(xp, [[0.1, -1.5, 2.0], [-3.0, 0.75, -0.25]], dtype, device),), {},
               "matrix"),
        Sample((_a(xp, 0.5, dtype, device),), {}, "0-d"),
    ]


_EXTREMES = [-1000.0, -5.0, -1e-30, 0.0, 1e-30, 5.0, 1000.0]


_TAILS = [-20.0, -8.0, 8.0, 20.0]


def _is32(xp, dtype) -> bool:
    return dtype == xp.float32


def _subnormal_inputs(xp, dtype):
    """Inputs whose results (or intermediates) reach the dtype's subnormal range."""
    if _is32(xp, dtype):
        return [-100.0, -90.0, -45.0, -14.0, -10.5, 10.5, 14.0, 45.0, 90.0, 100.0]
    return [-740.0, -720.0, -360.0, -38.0, -27.0, 27.0, 38.0, 360.0, 720.0, 740.0]


def _elementwise_references(xp, dtype, device):
    return [
        Sample((_a(xp, _EXTREMES, dtype, device),), {}, "|x| = 1000 and tiny"),
        Sample((_a(xp, _TAILS, dtype, device),), {}, "tails"),
        Sample((_a(xp, _subnormal_inputs(xp, dtype), dtype, device),), {}, SUBNORMAL),
        Sample((_a(xp, [-math.inf, math.inf, math.nan, -0.0], dtype, device),), {},
               "±∞, NaN and −0"),
        Sample((_a(xp, [[1.0, -2.0]], dtype, device)[:0, :],), {}, "zero rows"),
    ]


def _elementwise_errors(xp, dtype, device, **kwargs):
    return [
        ErrorCase((_a(xp, [1, -2, 3], xp.int64, device),), kwargs, TypeError,
                  "x must have a real floating dtype", "integer x"),
        ErrorCase((_a(xp, [True, False], xp.bool, device),), kwargs, TypeError,
                  "x must have a real floating dtype", "boolean x"),
        ErrorCase(([0.5, -1.0],), kwargs, TypeError, "x must be an array", "a list"),
        ErrorCase((1.5,), kwargs, TypeError, "x must be an array", "a Python float"),
    ]


def _slope_errors(xp, dtype, device, name: str):
    x = _a(xp, [1.0, -1.0], dtype, device)
    return [
        ErrorCase((x,), {name: "0.1"}, TypeError, f"{name} must be a real number",
                  f"{name} a string"),
        ErrorCase((x,), {name: math.nan}, ValueError, f"{name} must be a finite real",
                  f"{name} NaN"),
        ErrorCase((x,), {name: math.inf}, ValueError, f"{name} must be a finite real",
                  f"{name} infinite"),
        ErrorCase((x,), {name: True}, TypeError, f"{name} must be a real number",
                  f"{name} a bool"),
    ]


samples(relu)(_elementwise_samples)


references(relu)(_elementwise_references)


errors(relu)(_elementwise_errors)


samples(relu_grad)(_elementwise_samples)


references(relu_grad)(_elementwise_references)


errors(relu_grad)(_elementwise_errors)


def _leaky_samples(xp, dtype, device):
    return [
        *_elementwise_samples(xp, dtype, device),
        Sample((_a(xp, [-2.0, 0.0, 2.0], dtype, device),), {"negative_slope": 0.2}, "α = 0.2"),
        Sample((_a(xp, [-2.0, 0.0, 2.0], dtype, device),), {"negative_slope": -0.5},
               "negative α"),
    ]


def _leaky_errors(xp, dtype, device):
    return [*_elementwise_errors(xp, dtype, device),
            *_slope_errors(xp, dtype, device, "negative_slope")]


samples(leaky_relu)(_leaky_samples)


references(leaky_relu)(_elementwise_references)


errors(leaky_relu)(_leaky_errors)


samples(leaky_relu_grad)(_leaky_samples)


references(leaky_relu_grad)(_elementwise_references)


errors(leaky_relu_grad)(_leaky_errors)


samples(sigmoid)(_elementwise_samples)


references(sigmoid)(_elementwise_references)


errors(sigmoid)(_elementwise_errors)


samples(sigmoid_grad)(_elementwise_samples)


references(sigmoid_grad)(_elementwise_references)


errors(sigmoid_grad)(_elementwise_errors)


samples(tanh)(_elementwise_samples)


references(tanh)(_elementwise_references)


errors(tanh)(_elementwise_errors)


samples(tanh_grad)(_elementwise_samples)


references(tanh_grad)(_elementwise_references)


errors(tanh_grad)(_elementwise_errors)


samples(erf)(_elementwise_samples)


@references(erf)
def _(xp, dtype, device):
    grid = [k / 8 for k in range(-48, 49)]  # every 1/8 over [−6, 6]: all three branches
    edges = [0.46875, -0.46875, 0.46875 * (1 + 2**-20), 4.0, -4.0, 4.0 * (1 + 2**-20), 9.0,
             10.0, 26.0, 27.0, 5.9, -5.9]
    return [
        *_elementwise_references(xp, dtype, device),
        Sample((_a(xp, grid, dtype, device),), {}, "grid over [−6, 6]"),
        Sample((_a(xp, edges, dtype, device),), {}, "branch edges and tails"),
        Sample((_a(xp, [1e-30, -1e-30, 1e-10, 2.0**-60, 1e-300], dtype, device),), {},
               "tiny: erf(x) ≈ 2x/√π"),
    ]


errors(erf)(_elementwise_errors)


samples(erf_grad)(_elementwise_samples)


references(erf_grad)(_elementwise_references)


errors(erf_grad)(_elementwise_errors)


def _gelu_samples(xp, dtype, device):
    return [
        *_elementwise_samples(xp, dtype, device),
        Sample((_a(xp, [-3.0, -0.7, 0.0, 0.7, 3.0], dtype, device),), {"approximate": "tanh"},
               "tanh form"),
    ]


def _gelu_references(xp, dtype, device):
    # tails whose results and intermediates stay normal in the dtype, and (for the tanh form)
    # inputs whose σ(w) is subnormal: Φ(x) and σ(w) leave float32's normal range near
    # x = −13 and x = −10, float64's near x = −37.5 and x = −20.5
    if _is32(xp, dtype):
        tail = [-12.0, -9.0, -5.0, -1.0, -0.6, 0.6, 5.0]
        tanh_tail = [-9.0, -8.0, -5.0, -1.0, 1.0, 5.0]
        tanh_subnormal = [-10.5, -11.0, -14.0]
    else:
        tail = [-35.0, -30.0, -20.0, -10.0, -5.0, -1.0, -0.6, 0.6, 5.0, 37.0]
        tanh_tail = [-19.0, -15.0, -10.0, -5.0, 5.0]
        tanh_subnormal = [-20.5, -21.2, -22.0]
    return [
        *_elementwise_references(xp, dtype, device),
        Sample((_a(xp, tail, dtype, device),), {}, "left tail"),
        Sample((_a(xp, [*_EXTREMES, -math.inf, math.inf, math.nan], dtype, device),),
               {"approximate": "tanh"}, "tanh form: extremes"),
        Sample((_a(xp, tanh_tail, dtype, device),), {"approximate": "tanh"}, "tanh form: tails"),
        Sample((_a(xp, tanh_subnormal, dtype, device),), {"approximate": "tanh"},
               f"tanh form: {SUBNORMAL}"),
    ]


def _gelu_errors(xp, dtype, device):
    x = _a(xp, [1.0], dtype, device)
    return [
        *_elementwise_errors(xp, dtype, device),
        ErrorCase((x,), {"approximate": "exact"}, ValueError,
                  "approximate must be one of 'none', 'tanh'", "unknown approximate"),
        ErrorCase((x,), {"approximate": None}, ValueError,
                  "approximate must be one of 'none', 'tanh'", "approximate None"),
        ErrorCase((x,), {"approximate": True}, ValueError,
                  "approximate must be one of 'none', 'tanh'", "approximate a bool"),
    ]


samples(gelu)(_gelu_samples)


references(gelu)(_gelu_references)


errors(gelu)(_gelu_errors)


samples(gelu_grad)(_gelu_samples)


references(gelu_grad)(_gelu_references)


errors(gelu_grad)(_gelu_errors)


def _silu_samples(xp, dtype, device):
    return [
        *_elementwise_samples(xp, dtype, device),
        Sample((_a(xp, [-4.0, -1.0, 0.0, 1.0, 4.0], dtype, device),), {"beta": 1.702},
               "β = 1.702"),
        Sample((_a(xp, [-4.0, -1.0, 0.0, 1.0, 4.0], dtype, device),), {"beta": 0.0},
               "β = 0 is x/2"),
    ]


def _silu_references(xp, dtype, device):
    return [
        *_elementwise_references(xp, dtype, device),
        Sample((_a(xp, [*_EXTREMES, *_TAILS, -math.inf, math.inf], dtype, device),),
               {"beta": -2.5}, "negative β at the extremes"),
        Sample((_a(xp, [-1.5, -1.278, -1.0, 0.5, 20.0, -20.0, -80.0], dtype, device),),
               {"beta": 1.0}, "around the minimum and in the tails"),
    ]


def _silu_errors(xp, dtype, device):
    return [*_elementwise_errors(xp, dtype, device), *_slope_errors(xp, dtype, device, "beta")]


samples(silu)(_silu_samples)


references(silu)(_silu_references)


errors(silu)(_silu_errors)


samples(silu_grad)(_silu_samples)


references(silu_grad)(_silu_references)


errors(silu_grad)(_silu_errors)


def _swiglu_samples(xp, dtype, device):
    x = _a(xp, [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype, device)
    W = _a(xp, [[0.2, -0.4, 0.1], [1.0, 0.5, -0.3], [-0.6, 0.8, 0.9], [0.0, 0.3, -1.2]],
           dtype, device)
    V = _a(xp, [[-0.5, 0.1, 0.7], [0.3, -0.9, 0.2], [1.1, 0.4, -0.2], [0.6, 0.6, 0.6]],
           dtype, device)
    return [
        Sample((x, W, V), {}, "batch of two"),
        Sample((x[0, :], W, V), {}, "one vector"),
        Sample((xp.reshape(xp.concat([x, -x], axis=0), (2, 2, 3)), W, V), {},
               "two batch dimensions"),
    ]


@references(swiglu)
def _(xp, dtype, device):
    W = _a(xp, [[1.0, 0.0], [0.0, 1.0], [30.0, -30.0]], dtype, device)
    V = _a(xp, [[1.0, 1.0], [-1.0, 2.0], [0.5, 0.5]], dtype, device)
    return [
        Sample((_a(xp, [[1000.0, -1000.0], [-30.0, 30.0], [1e-30, 0.0]], dtype, device), W, V),
               {}, "gates at ±1000, ±30, and tiny"),
        Sample((_a(xp, [[1.0, 2.0]], dtype, device)[:0, :], W, V), {}, "zero rows"),
    ]


def _swiglu_errors(xp, dtype, device, extra=()):
    x = _a(xp, [[1.0, 2.0, 3.0]], dtype, device)
    W = _a(xp, [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], dtype, device)
    return [
        ErrorCase((x, W, _a(xp, [[0.1, 0.2, 0.3]], dtype, device), *extra), {}, ValueError,
                  "W and V must have the same shape", "W and V of different shapes"),
        ErrorCase((_a(xp, [[1.0, 2.0]], dtype, device), W, W, *extra), {}, ValueError,
                  "have in = 3 columns but x has 2 features", "x of the wrong width"),
        ErrorCase((x, _a(xp, [0.1, 0.2, 0.3], dtype, device), W, *extra), {}, ValueError,
                  r"W must be a 2-D \(hidden, in\) matrix", "1-D W"),
        ErrorCase((_a(xp, [[1, 2, 3]], xp.int64, device), W, W, *extra), {}, TypeError,
                  "x must have a real floating dtype", "integer x"),
        ErrorCase((x, W, [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], *extra), {}, TypeError,
                  "V must be an array", "V a list"),
        ErrorCase((_a(xp, 1.0, dtype, device), W, W, *extra), {}, ValueError,
                  "x must have at least 1 dimension", "0-d x"),
    ]


samples(swiglu)(_swiglu_samples)


errors(swiglu)(_swiglu_errors)


@samples(swiglu_vjp)
def _(xp, dtype, device):
    out = []
    for case in _swiglu_samples(xp, dtype, device):
        x, W, _ = case.args
        hidden = W.shape[0]
        g = xp.reshape(xp.linspace(-1.0, 1.5, math.prod((*x.shape[:-1], hidden)), dtype=dtype,
                                   device=device), (*x.shape[:-1], hidden))
        out.append(Sample((*case.args, g), {}, case.note))
    return out


@errors(swiglu_vjp)
def _(xp, dtype, device):
    x = _a(xp, [[1.0, 2.0, 3.0]], dtype, device)
    W = _a(xp, [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], dtype, device)
    g = _a(xp, [[1.0, -1.0]], dtype, device)
    return [
        *_swiglu_errors(xp, dtype, device, extra=(g,)),
        ErrorCase((x, W, W, _a(xp, [[1.0, -1.0, 0.5]], dtype, device)), {}, ValueError,
                  r"g must have the output's shape \(1, 2\)", "g of the wrong shape"),
        ErrorCase((x, W, W, _a(xp, [[1, 2]], xp.int64, device)), {}, TypeError,
                  "g must have a real floating dtype", "integer g"),
    ]
