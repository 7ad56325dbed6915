"""Records of `spec/layers.py`: sample, reference and error inputs, derivative cases and ulp
budgets.
"""

from __future__ import annotations

import math

import numpy as np

from conformance.derivatives import held, like
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
from spec.activations import gelu_grad, relu_grad, tanh_grad
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
        # issue 12: options of any real number type (NumPy's scalars too)
        Sample((x, u), {"rate": np.float32(0.5)}, "a NumPy float32 rate"),
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
        ErrorCase((x, u), {"rate": True}, TypeError, "rate must be a real number",
                  "a bool rate"),
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
        # the normal equations gave a raw torch error and a silent NaN on JAX (issue 12)
        ErrorCase((_a(xp, [[1.0, 2.0], [2.0, 4.0], [3.0, 6.0], [4.0, 8.0]], dtype, device),
                   _a(xp, [1.0, 2.0, 3.0, 5.0], dtype, device)), {}, ValueError,
                  "X must have full column rank", "collinear columns"),
        ErrorCase((_a(xp, [[1.0, 3.0], [2.0, 3.0], [3.0, 3.0], [4.0, 3.0]], dtype, device),
                   _a(xp, [1.0, 2.0, 3.0, 5.0], dtype, device)), {}, ValueError,
                  "X must have full column rank", "a constant column (collinear with the bias)"),
        ErrorCase((_a(xp, [[0.1, 1.0], [0.2, 1.0], [0.3, 1.0], [0.7, 1.0]], dtype, device),
                   _a(xp, [1.0, 2.0, 3.0, 5.0], dtype, device)), {}, ValueError,
                  "X must have full column rank", "an inexact constant column"),
    ]


# --------------------------------------------------------------------------------- tier D
# SymPy (the traced code, lambdified to the backend), autograd and central differences agree
# with each other and with the closed form: the layer's stated gradient, or mlp_backward.
def _draws(seed: int) -> dict:
    """The host inputs of this chapter's derivative cases at `seed`, drawn from one generator
    in a fixed order (each seed gives the same inputs as when the cases were first written)."""
    r = np.random.default_rng(seed)
    x3, w3, b0 = r.normal(0, 1, (2, 3)), r.normal(0, 1, (3,)), np.asarray(r.normal())
    W43, b4 = r.normal(0, 1, (4, 3)), r.normal(0, 1, (4,))
    u = r.uniform(0, 1, (2, 3))
    W33 = r.normal(0, 0.5, (3, 3))
    xm = r.normal(0, 1, (2, 2))
    net = [r.normal(0, 1, (3, 2)), r.normal(0, 0.5, (3,)), r.normal(0, 1, (2, 3)),
           r.normal(0, 0.5, (2,))]
    return {"x3": x3, "w3": w3, "b0": b0, "W43": W43, "b4": b4, "u": u, "W33": W33, "xm": xm,
            "W1": net[0], "b1": net[1], "W2": net[2], "b2": net[3],
            # a branch output F of x's shape that does not depend on x
            "F": w3[None, :] + 0 * x3}


def _args(*names):
    """`make_args(seed)`: the named inputs of `_draws(seed)`."""
    def make_args(seed: int) -> list:
        d = _draws(seed)
        return [d[n] for n in names]

    return make_args


_ACT_GRAD = {"tanh": tanh_grad, "relu": relu_grad, "gelu": gelu_grad}


def _mlp2(act):
    def f(x, W1, b1, W2, b2):
        return mlp_forward(x, [(W1, b1), (W2, b2)], activation=act)[0]

    f.__name__ = f"mlp2_{act}"
    return f


def _mlp2_grad(act, k):
    """The closed form: mlp_backward's (dW, db) for parameter k ∈ 1..4, δ_L = cotangent."""
    def closed(xp, g, c):
        params = [(g[1], g[2]), (g[3], g[4])]
        _, cache = mlp_forward(g[0], params, activation=act)
        grads_ = mlp_backward(c, cache, params, activation=act)
        return grads_[(k - 1) // 2][(k - 1) % 2]

    return closed


def _activation_cases(act) -> list[DerivativeCase]:
    g = _ACT_GRAD[act]
    kw = {"activation": act}
    neuron_args, dense_args = _args("x3", "w3", "b0"), _args("x3", "W43", "b4")
    mlp_args, mlp = _args("xm", "W1", "b1", "W2", "b2"), _mlp2(act)

    def dz_neuron(xp, a, c):  # ∂⟨c, φ(z)⟩/∂z for z = x·w + b
        return c * g(a[0] @ a[1] + a[2])

    def dz_dense(xp, a, c):  # the same for z = x Wᵀ + b
        return c * g(a[0] @ xp.matrix_transpose(a[1]) + a[2])

    return [
        DerivativeCase("neuron", neuron, neuron_args, argnum=1, kwargs=kw, label=f"w,{act}",
                       closed=lambda xp, a, c: xp.sum(dz_neuron(xp, a, c)[:, None] * a[0],
                                                      axis=0)),
        DerivativeCase("neuron", neuron, neuron_args, argnum=2, kwargs=kw, label=f"b,{act}",
                       closed=lambda xp, a, c: xp.sum(dz_neuron(xp, a, c))),
        DerivativeCase("neuron", neuron, neuron_args, argnum=0, kwargs=kw, label=f"x,{act}",
                       closed=lambda xp, a, c: dz_neuron(xp, a, c)[:, None] * a[1]),
        DerivativeCase("dense", dense, dense_args, argnum=1, kwargs=kw, label=f"W,{act}",
                       closed=lambda xp, a, c: xp.matrix_transpose(dz_dense(xp, a, c)) @ a[0]),
        DerivativeCase("dense", dense, dense_args, argnum=2, kwargs=kw, label=f"b,{act}",
                       closed=lambda xp, a, c: xp.sum(dz_dense(xp, a, c), axis=0)),
        DerivativeCase("dense", dense, dense_args, argnum=0, kwargs=kw, label=f"x,{act}",
                       closed=lambda xp, a, c: dz_dense(xp, a, c) @ a[1]),
        *[DerivativeCase("mlp_backward", mlp, mlp_args, argnum=k, closed=_mlp2_grad(act, k),
                         label=f"{pname},{act}")
          for k, pname in enumerate(("W1", "b1", "W2", "b2"), 1)],
        DerivativeCase("mlp_forward", mlp, mlp_args, argnum=0, label=f"x,{act}"),
    ]


def _residual_branch(x, W):
    return residual(x, dense(x, W, activation="tanh"))


def _with_inputs_held(seed: int) -> list[DerivativeCase]:
    """The cases that hold an input fixed (numbers in the SymPy trace, so the code takes the
    numeric branches): their closed forms need it, so each seed has its own case."""
    d = _draws(seed)
    u, W = d["u"], d["W33"]
    return [
        DerivativeCase("dropout", held(dropout, {1: u}, rate=0.4), _args("x3"),
                       closed=lambda xp, a, c: c * like(a[0], (u >= 0.4) / 0.6),
                       seeds=(seed,), label="u held"),
        DerivativeCase("residual", held(_residual_branch, {1: W}), _args("x3"),
                       closed=lambda xp, a, c: c + (c * tanh_grad(
                           a[0] @ xp.matrix_transpose(like(a[0], W)))) @ like(a[0], W),
                       seeds=(seed,), label="x, F = tanh(xWᵀ)"),
    ]


derivative(
    *_activation_cases("tanh"),
    *_activation_cases("relu"),
    *_activation_cases("gelu"),
    *_with_inputs_held(0),
    *_with_inputs_held(1),
    DerivativeCase("residual", residual, _args("x3", "F"), argnum=0,
                   closed=lambda xp, a, c: c, label="x, F held"),
    DerivativeCase("residual", residual, _args("x3", "F"), argnum=1,
                   closed=lambda xp, a, c: c, label="F"),
)


# --------------------------------------------------------------------------------- tier R
# The scale of each measure is in oracles_layers.FLOORS.
# dense/neuron: a dot product of n ≤ 3 terms plus a bias (≤ (n + 1) ulp of the magnitude)
# and the activation's own error (≤ 8 ulp of its result for σ, tanh, GELU, SiLU in float32
# libraries), times its Lipschitz constant ≤ 1.13: 16. dropout: 1 − p rounded to the dtype,
# one division (≤ 1.5 ulp): 2. residual: one correctly rounded addition (≤ 0.5 ulp): 1.
budget({
    "dense": {"float32": 16, "float64": 16},
    "neuron": {"float32": 16, "float64": 16},
    "dropout": {"float32": 2, "float64": 2},
    "residual": {"float32": 1, "float64": 1},
})
