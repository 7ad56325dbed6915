"""Records of `spec/layers.py`: its sample, reference and error inputs.
"""

from __future__ import annotations

import math

from conformance.records import ErrorCase, Sample, errors, references, samples
from conformance.records import sample_array as _a
from spec.layers import (
    MLPCache,
    count_parameters,
    dense,
    dropout,
    he_normal_std,
    linear_regression_fit,
    mlp_backward,
    mlp_forward,
    neuron,
    residual,
    xavier_std,
    xor_network,
)


@samples(neuron)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, -2.0, 0.5], dtype, device), _a(xp, [0.25, 0.5, -1.0], dtype, device),
                _a(xp, 0.75, dtype, device)), {"activation": "sigmoid"}, "one input, sigmoid"),
        Sample((_a(xp, [[1.0, 2.0], [-1.0, 0.5], [0.0, 0.0]], dtype, device),
                _a(xp, [0.5, -1.5], dtype, device), _a(xp, 0.25, dtype, device)),
               {"activation": "relu"}, "a batch, relu"),
        Sample((_a(xp, [[1.0, 2.0], [-1.0, 0.5]], dtype, device),
                _a(xp, [0.5, -1.5], dtype, device), _a(xp, -0.5, dtype, device)),
               {"activation": None}, "a batch, no activation"),
    ]


@references(neuron)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1e3, 1e3, -2e3], dtype, device), _a(xp, [1.0, 1.0, 1.0], dtype, device),
                _a(xp, 0.5, dtype, device)), {"activation": "tanh"},
               "cancelling dot product, tanh"),
        Sample((_a(xp, [[30.0, 20.0]], dtype, device), _a(xp, [-1.0, -1.0], dtype, device),
                _a(xp, 0.0, dtype, device)), {"activation": "sigmoid"},
               "saturated sigmoid: σ(−50)"),
    ]


@errors(neuron)
def _(xp, dtype, device):
    x, w, b = _a(xp, [1.0, 2.0], dtype, device), _a(xp, [0.5, 0.5], dtype, device), \
        _a(xp, 0.0, dtype, device)
    return [
        ErrorCase((x, _a(xp, [0.5, 0.5, 0.5], dtype, device), b), {"activation": "relu"},
                  ValueError, "x has 2 inputs along its last axis but w has 3", "w too long"),
        ErrorCase((x, w, _a(xp, [0.0], dtype, device)), {"activation": "relu"}, ValueError,
                  "b must be a 0-d array", "b of shape (1,)"),
        ErrorCase((x, w, b), {"activation": "softmax"}, ValueError,
                  "activation must be one of", "unknown activation"),
        ErrorCase((_a(xp, [1, 2], xp.int64, device), w, b), {"activation": "relu"}, TypeError,
                  "x must have a real floating dtype", "integer x"),
        ErrorCase((x, _a(xp, [[0.5, 0.5]], dtype, device), b), {"activation": "relu"},
                  ValueError, "w must be a vector", "w as a matrix"),
    ]


@samples(dense)
def _(xp, dtype, device):
    W = _a(xp, [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], dtype, device)
    return [
        Sample((_a(xp, [1.0, 2.0, -1.0], dtype, device), W, _a(xp, [0.1, -0.2], dtype, device)),
               {}, "one input, no activation"),
        Sample((_a(xp, [[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]], dtype, device), W,
                _a(xp, [0.1, -0.2], dtype, device)), {"activation": "relu"}, "a batch, relu"),
        Sample((_a(xp, [[[1.0, 2.0, -1.0]], [[0.5, 0.0, 3.0]]], dtype, device), W),
               {"activation": "tanh"}, "two batch dimensions, no bias, tanh"),
        Sample((_a(xp, [[1.0, -2.0, 0.5]], dtype, device), W, _a(xp, [0.0, 1.0], dtype, device)),
               {"activation": "gelu"}, "gelu"),
    ]


@references(dense)
def _(xp, dtype, device):
    W = _a(xp, [[1.0, 1.0, 1.0], [1.0, -1.0, 0.0]], dtype, device)
    return [
        Sample((_a(xp, [1e4, 1e4, -2e4], dtype, device), W, _a(xp, [0.5, 0.0], dtype, device)),
               {"activation": "silu"}, "cancelling dot products, silu"),
        Sample((_a(xp, [[1.0, 2.0, 3.0]], dtype, device)[:0], W), {"activation": "sigmoid"},
               "zero rows"),
        Sample((_a(xp, [[-3.0, 1.0, 0.5]], dtype, device), W, _a(xp, [0.0, 0.25], dtype, device)),
               {"activation": "leaky_relu"}, "leaky relu, negative pre-activation"),
    ]


@errors(dense)
def _(xp, dtype, device):
    x = _a(xp, [[1.0, 2.0, 3.0]], dtype, device)
    W = _a(xp, [[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]], dtype, device)
    return [
        ErrorCase((x, xp.matrix_transpose(W)), {}, ValueError,
                  r"x has 3 features along its last axis but W of shape \(out, in\) = \(3, 2\)",
                  "W given as (in, out)"),
        ErrorCase((x, W, _a(xp, [0.0, 0.0, 0.0], dtype, device)), {}, ValueError,
                  r"b must have shape \(out,\) = \(2,\)", "b of the wrong length"),
        ErrorCase((x, W[0]), {}, ValueError, "W must be a matrix", "W as a vector"),
        ErrorCase((x, W), {"activation": "Relu"}, ValueError, "activation must be one of",
                  "misspelt activation"),
        ErrorCase((x, _a(xp, [[1, 0, 1]], xp.int64, device)), {}, TypeError,
                  "W must have a real floating dtype", "integer W"),
        ErrorCase((x, _a(xp, [[1.0, 0.0, 1.0]], _other_float(xp, dtype), device)), {},
                  TypeError, "x and W must have the same dtype", "float32 and float64"),
    ]


def _other_float(xp, dtype):
    return xp.float64 if dtype == xp.float32 else xp.float32


def _mlp_params(xp, dtype, device):
    return [
        (_a(xp, [[0.5, -1.0], [1.0, 0.25], [-0.5, 0.75]], dtype, device),
         _a(xp, [0.1, -0.2, 0.0], dtype, device)),
        (_a(xp, [[1.0, -0.5, 0.25], [0.5, 0.5, -1.0]], dtype, device),
         _a(xp, [0.0, 0.3], dtype, device)),
    ]


@samples(mlp_forward)
def _(xp, dtype, device):
    params = _mlp_params(xp, dtype, device)
    return [
        Sample((_a(xp, [[1.0, 2.0], [-1.0, 0.5]], dtype, device), params), {},
               "2-3-2, relu, logits out"),
        Sample((_a(xp, [0.5, -1.5], dtype, device), params),
               {"activation": "tanh", "output": "sigmoid"}, "one input, tanh, sigmoid out"),
    ]


def _mlp_structure_errors(xp, dtype, device, call):
    """Bad params found before any arithmetic; `call(params, **kw)` builds the ErrorCase args."""
    (W1, b1), (W2, b2) = _mlp_params(xp, dtype, device)
    return [
        ErrorCase(*call([(W1, b1), (xp.matrix_transpose(W2), b2)]), ValueError,
                  r"W of layer 2 has shape \(3, 2\) but layer 1 has 3 outputs",
                  "a transposed weight matrix"),
        ErrorCase(*call([(W1, b1), (W2, b1)]), ValueError,
                  r"b of layer 2 must have shape \(out,\) = \(2,\)", "a bias of the wrong size"),
        ErrorCase(*call([]), ValueError, "params must hold at least one", "no layers"),
        ErrorCase(*call([(W1, b1, b1)]), TypeError, r"params\[0\] must be a \(W, b\) pair",
                  "a triple"),
        ErrorCase(*call(W1), TypeError, r"params must be a list of \(W, b\) pairs",
                  "an array for params"),
        ErrorCase(*call([(W1, b1), (W2, b2)], activation="softplus"), ValueError,
                  "activation must be one of", "unknown activation"),
    ]


@errors(mlp_forward)
def _(xp, dtype, device):
    x = _a(xp, [[1.0, 2.0]], dtype, device)
    params = _mlp_params(xp, dtype, device)

    def call(p, **kw):
        return (x, p), kw

    return [
        *_mlp_structure_errors(xp, dtype, device, call),
        ErrorCase((_a(xp, [[1.0, 2.0, 3.0]], dtype, device), params), {}, ValueError,
                  "x has 3 features along its last axis but W of layer 1", "x too wide"),
        ErrorCase((x, params), {"output": "argmax"}, ValueError, "output must be one of",
                  "unknown output activation"),
        ErrorCase((_a(xp, [[1, 2]], xp.int64, device), params), {}, TypeError,
                  "x must have a real floating dtype", "integer x"),
    ]


def _mlp_backward_args(xp, dtype, device):
    """delta_out, the cache of mlp_forward(x, _mlp_params, activation="relu") written out, and
    the params (z₁ = xW₁ᵀ + b₁, h₁ = relu(z₁), z₂ = h₁W₂ᵀ + b₂ = h₂)."""
    x = _a(xp, [[1.0, 2.0], [-1.0, 0.5]], dtype, device)
    z1 = _a(xp, [[-1.4, 1.3, 1.0], [-0.9, -1.075, 0.875]], dtype, device)
    h1 = _a(xp, [[0.0, 1.3, 1.0], [0.0, 0.0, 0.875]], dtype, device)
    z2 = _a(xp, [[-0.4, -0.05], [0.21875, -0.575]], dtype, device)
    delta = _a(xp, [[0.5, -0.5], [0.25, 1.0]], dtype, device)
    return delta, MLPCache((x, h1, z2), (z1, z2)), _mlp_params(xp, dtype, device)


@samples(mlp_backward)
def _(xp, dtype, device):
    return [Sample(_mlp_backward_args(xp, dtype, device), {}, "2-3-2 relu, a batch of two")]


@errors(mlp_backward)
def _(xp, dtype, device):
    delta, cache, params = _mlp_backward_args(xp, dtype, device)

    def call(p, **kw):
        return (delta, cache, p), kw

    return [
        *_mlp_structure_errors(xp, dtype, device, call),
        ErrorCase((delta[:, :1], cache, params), {}, ValueError,
                  r"delta_out must have the shape of the last pre-activation z_L \(2, 2\)",
                  "delta_out of the wrong width"),
        ErrorCase((delta, MLPCache(cache.h[:2], cache.z), params), {}, ValueError,
                  "cache does not match params: 2 layers need 3 activations",
                  "a cache of another depth"),
        ErrorCase((delta, {"h": cache.h, "z": cache.z}, params), {}, TypeError,
                  r"cache must be the MLPCache \(h, z\)", "a dict for the cache"),
        ErrorCase((delta, MLPCache(cache.h, (cache.z[0][:1], cache.z[1])), params), {},
                  ValueError, r"cache.z\[0\] has shape \(1, 3\), expected \(2, 3\)",
                  "a pre-activation of the wrong batch size"),
    ]


@samples(count_parameters)
def _(xp, dtype, device):
    return [
        Sample(([784, 128, 10],), {}, "MNIST 784-128-10"),
        Sample(((2, 2, 1),), {}, "XOR 2-2-1 as a tuple"),
        Sample((xp.asarray([3, 5, 4, 2], dtype=xp.int64, device=device),), {},
               "sizes as an integer array"),
    ]


@errors(count_parameters)
def _(xp, dtype, device):
    return [
        ErrorCase(([784],), {}, ValueError, "needs an input width and at least one layer",
                  "one size"),
        ErrorCase(([784, 0, 10],), {}, ValueError, r"layer_sizes\[1\] must be a positive",
                  "a zero width"),
        ErrorCase(([784, 128.0, 10],), {}, TypeError, r"layer_sizes\[1\] must be an integer",
                  "a float width"),
        ErrorCase((784,), {}, TypeError, "layer_sizes must be a sequence of integers",
                  "one integer"),
        ErrorCase(([2, True],), {}, TypeError, "must be an integer, got a bool", "a bool"),
    ]


@samples(dropout)
def _(xp, dtype, device):
    x = _a(xp, [[1.0, -2.0, 3.0], [0.5, 4.0, -1.5]], dtype, device)
    u = _a(xp, [[0.1, 0.7, 0.5], [0.95, 0.3, 0.49]], dtype, device)
    return [
        Sample((x, u), {"rate": 0.5}, "rate 0.5"),
        Sample((x, u), {"rate": 0.1}, "rate 0.1"),
        Sample((x, u), {"rate": 0.0}, "rate 0: identity"),
    ]


@references(dropout)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [3.0, -7.0, 1e30], dtype, device), _a(xp, [0.75, 0.875, 0.9], dtype,
                                                               device)),
               {"rate": 0.875}, "rate 7/8: survivors ×8"),
        Sample((_a(xp, [math.nan, math.inf, 2.0], dtype, device),
                _a(xp, [0.1, 0.2, 0.0], dtype, device)), {"rate": 0.3},
               "dropped NaN and ∞ stay NaN; u = 0 drops"),
    ]


@errors(dropout)
def _(xp, dtype, device):
    x = _a(xp, [1.0, 2.0], dtype, device)
    u = _a(xp, [0.2, 0.8], dtype, device)
    return [
        ErrorCase((x, u), {"rate": 1.0}, ValueError, r"rate must be in \[0, 1\)", "rate 1"),
        ErrorCase((x, u), {"rate": -0.1}, ValueError, r"rate must be in \[0, 1\)",
                  "negative rate"),
        ErrorCase((x, u), {"rate": "0.5"}, TypeError, "rate must be a real number",
                  "string rate"),
        ErrorCase((x, _a(xp, [0.2, 1.0], dtype, device)), {"rate": 0.5}, ValueError,
                  r"u must hold uniform samples in \[0, 1\)", "u = 1"),
        ErrorCase((x, u[:1]), {"rate": 0.5}, ValueError, "x and u must have the same shape",
                  "u of another shape"),
        ErrorCase((x, _a(xp, [0, 1], xp.int64, device)), {"rate": 0.5}, TypeError,
                  "u must have a real floating dtype", "integer u"),
    ]


def _fan_errors(call):
    return [
        ErrorCase(*call(0), ValueError, "must be a positive integer, got 0", "fan 0"),
        ErrorCase(*call(-3), ValueError, "must be a positive integer, got -3", "negative fan"),
        ErrorCase(*call(2.5), TypeError, "must be an integer, got float", "a float fan"),
        ErrorCase(*call(True), TypeError, "must be an integer, got a bool", "a bool fan"),
    ]


@samples(he_normal_std)
def _(xp, dtype, device):
    return [
        Sample((784,), {}, "MNIST input width"),
        Sample((xp.asarray(128, dtype=xp.int64, device=device),), {},
               "fan_in as a 0-d integer array"),
    ]


@errors(he_normal_std)
def _(xp, dtype, device):
    return _fan_errors(lambda n: ((n,), {}))


@samples(xavier_std)
def _(xp, dtype, device):
    return [
        Sample((784, 128), {}, "784 → 128"),
        Sample((xp.asarray(128, dtype=xp.int64, device=device), 10), {},
               "fan_in as a 0-d integer array"),
    ]


@errors(xavier_std)
def _(xp, dtype, device):
    return [*_fan_errors(lambda n: ((n, 10), {})),
            ErrorCase((10, 0), {}, ValueError, "fan_out must be a positive integer",
                      "fan_out 0")]


@samples(residual)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [[1.0, -2.0, 0.5]], dtype, device),
                _a(xp, [[0.25, 0.5, -0.5]], dtype, device)), {}, "one row"),
        Sample((_a(xp, [[[1.0], [2.0]], [[3.0], [-4.0]]], dtype, device),
                _a(xp, [[[0.1], [0.2]], [[-3.0], [4.0]]], dtype, device)), {},
               "a batch of sequences"),
    ]


@references(residual)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, 1e30, -1e-30], dtype, device), _a(xp, [-1.0 + 2.0**-20, 1.0, 3.0],
                                                                  dtype, device)), {},
               "cancellation and absorption"),
        Sample((_a(xp, [math.inf, math.nan, 1.0], dtype, device),
                _a(xp, [1.0, 0.0, -math.inf], dtype, device)), {}, "∞ and NaN propagate"),
    ]


@errors(residual)
def _(xp, dtype, device):
    x = _a(xp, [[1.0, 2.0]], dtype, device)
    return [
        ErrorCase((x, _a(xp, [1.0, 2.0], dtype, device)), {}, ValueError,
                  "x and fx must have the same shape", "fx of another shape"),
        ErrorCase((x, _a(xp, [[1, 2]], xp.int64, device)), {}, TypeError,
                  "fx must have a real floating dtype", "integer fx"),
        ErrorCase((x, _a(xp, [[1.0, 2.0]], _other_float(xp, dtype), device)), {}, TypeError,
                  "x and fx must have the same dtype", "two dtypes"),
        ErrorCase((x, [[1.0, 2.0]]), {}, TypeError, "fx must be an array", "a list"),
    ]


@samples(xor_network)
def _(xp, dtype, device):
    return [
        Sample((), {"xp": xp, "dtype": dtype, "device": device}, "arrays of the namespace"),
        Sample((), {}, "Python numbers"),
    ]


@errors(xor_network)
def _(xp, dtype, device):
    return [
        ErrorCase((), {"xp": xp, "dtype": xp.int64}, TypeError,
                  "dtype must be a real floating dtype", "integer dtype"),
        ErrorCase((), {"xp": "numpy"}, TypeError, "xp must be an Array API namespace",
                  "a string for xp"),
        ErrorCase((), {"dtype": dtype}, ValueError, "dtype and device need xp",
                  "dtype without xp"),
    ]


@samples(linear_regression_fit)
def _(xp, dtype, device):
    # centred, orthogonal feature columns: AᵀA is diagonal, so every backend's solve is
    # accurate to a few ulp (the normal equations square the condition number otherwise)
    X = _a(xp, [[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0], [0.0, 0.0]], dtype, device)
    return [
        Sample((X, _a(xp, [1.0, -2.0, 3.0, 0.0, 0.5], dtype, device)), {},
               "noiseless: w = (−1, 1.5), b = 0.5"),
        Sample((_a(xp, [[-1.5], [-0.5], [0.5], [1.5]], dtype, device),
                _a(xp, [2.1, 3.9, 6.2, 7.8], dtype, device)), {}, "one feature, noisy"),
    ]


@errors(linear_regression_fit)
def _(xp, dtype, device):
    X = _a(xp, [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype, device)
    y = _a(xp, [1.0, 2.0, 3.0], dtype, device)
    return [
        ErrorCase((X[:2], y[:2]), {}, ValueError, r"needs at least d \+ 1 = 3 examples, got 2",
                  "too few examples"),
        ErrorCase((X, y[:2]), {}, ValueError, r"y must have shape \(n,\) = \(3,\)",
                  "y of another length"),
        ErrorCase((X[:, 0], y), {}, ValueError, r"X must be a matrix of shape \(n, d\)",
                  "X as a vector"),
        ErrorCase((X, _a(xp, [1, 2, 3], xp.int64, device)), {}, TypeError,
                  "y must have a real floating dtype", "integer y"),
    ]
