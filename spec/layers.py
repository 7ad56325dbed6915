r"""Layers and networks: neurons, dense layers, MLPs and backpropagation, initialisation.

Conventions (EQUATIONS.md): a weight matrix W has shape (out, in), inputs are rows and a layer
computes z = x Wᵀ + b, so any number of leading batch dimensions pass through. Activations are
chosen by name (`ACTIVATIONS`) and come from `spec.activations`, with their derivatives.
Sources: 000 (layers, composition), 001 (the neuron, XOR, linear collapse, 784-128-10),
002 §4 (feedforward layer, MLP, backpropagation, He initialisation), 003 (forward and backward
passes), 004 (layers, linear regression).
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

from . import _validate as v
from ._registry import (
    ALL_FLOATS,
    Identity,
    equation,
    jit_size_limit,
)

__all__ = [
    "count_parameters",
    "dense",
    "dropout",
    "he_normal_std",
    "linear_regression_fit",
    "mlp_backward",
    "mlp_forward",
    "neuron",
    "residual",
    "xavier_std",
    "xor_network",
]

#: the activation names accepted by `activation=` / `output=` (None means "identity")
ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh", "gelu", "silu")


def _activation_name(name, param: str = "activation") -> str:
    if name is None:
        return "identity"
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"{param} must be one of {', '.join(map(repr, ACTIVATIONS))} or None; "
                         f"got {name!r}")
    return name


def _phi(name: str, z):
    """The activation `name` applied to z (looked up in spec.activations when called)."""
    if name == "identity":
        return z
    from . import activations

    return getattr(activations, name)(z)


def _phi_grad(xp, name: str, z):
    """φ'(z) for the activation `name`."""
    if name == "identity":
        return xp.ones_like(z)
    from . import activations

    return getattr(activations, f"{name}_grad")(z)


def _shape(x) -> tuple:
    return tuple(x.shape)


def _is_array(x) -> bool:
    import array_api_compat

    return array_api_compat.is_array_api_obj(x)


def _floating_same_dtype(xp, named: dict) -> None:
    items = list(named.items())
    for name, x in items:
        v.floating(xp, x, name)
    first_name, first = items[0]
    for name, x in items[1:]:
        v.same_dtype(first, x, f"{first_name} and {name}")


# --------------------------------------------------------------------------------------------
@equation(
    chapter="layers",
    dtypes=ALL_FLOATS,
    seeds=("001", "003"),
    oracle="mpmath",
    identities=(
        Identity("textbook", "the traced code equals φ(Σᵢ wᵢxᵢ + b)", "S"),
        Identity("is_dense_row", "equals dense(x, w[None, :], b[None]) without its unit axis",
                 "SP"),
        Identity("gradient", "∂a/∂w = φ'(z) x, ∂a/∂b = φ'(z), by SymPy, autograd and "
                 "differences", "D"),
        Identity("accuracy", "within its ulp budget of an exact mpmath dot product", "R"),
    ),
)
def neuron(x, w, b, /, *, activation):
    r"""One neuron: the dot product of inputs and weights, plus a bias, through an activation.

    .. math:: a = \varphi\Bigl(\sum_{i=1}^{n} w_i x_i + b\Bigr)

    Shapes: x (..., n), w (n,), b a 0-d array → (...). activation: a name in `ACTIVATIONS`
    or None (identity). Dtypes: float16 and bfloat16 are computed in float32 (the dot
    product and the activation) and rounded once. Source: 001 (the neuron), 003 (the
    perceptron).
    """
    act = _activation_name(activation)
    xp = v.namespace(x=x, w=w, b=b)
    _floating_same_dtype(xp, {"x": x, "w": w, "b": b})
    v.min_ndim(x, 1, "x")
    if w.ndim != 1:
        raise ValueError(f"w must be a vector of shape (n,), got shape {_shape(w)}")
    if x.shape[-1] != w.shape[0]:
        raise ValueError(f"x has {x.shape[-1]} inputs along its last axis but w has "
                         f"{w.shape[0]} weights")
    if b.ndim != 0:
        raise ValueError(f"b must be a 0-d array (one bias), got shape {_shape(b)}")
    (x, w, b), dtype = v.widen(xp, x, w, b)
    return v.narrow(xp, _phi(act, x @ w + b), dtype)


# --------------------------------------------------------------------------------------------
def _check_dense(x, W, b, x_name: str = "x", layer: str = "") -> None:
    """Shape checks of z = x Wᵀ + b (structural: no namespace needed)."""
    v.min_ndim(x, 1, x_name)
    if W.ndim != 2:
        raise ValueError(f"W{layer} must be a matrix of shape (out, in), got shape {_shape(W)}")
    if x.shape[-1] != W.shape[1]:
        raise ValueError(f"{x_name} has {x.shape[-1]} features along its last axis but "
                         f"W{layer} of shape (out, in) = {_shape(W)} expects {W.shape[1]}")
    if b is not None and _shape(b) != (W.shape[0],):
        raise ValueError(f"b{layer} must have shape (out,) = ({W.shape[0]},), got {_shape(b)}")


@equation(
    chapter="layers",
    dtypes=ALL_FLOATS,
    seeds=("000", "001", "002 §4.1", "004"),
    oracle="mpmath",
    identities=(
        Identity("textbook", "the traced code equals φ(Wx + b) with W (out, in) row by row", "S"),
        Identity("linear_collapse", "without activations two stacked layers are one: "
                 "dense(dense(x, W₁, b₁), W₂, b₂) = dense(x, W₂W₁, W₂b₁ + b₂)", "SP"),
        Identity("batch_rows", "a batch gives, row by row, the results of single inputs", "P"),
        Identity("gradient", "∂/∂W = (g⊙φ'(z))ᵀx, ∂/∂b = Σ g⊙φ'(z), ∂/∂x = (g⊙φ'(z))W, by "
                 "SymPy, autograd and differences", "D"),
        Identity("accuracy", "within its ulp budget of exact mpmath dot products", "R"),
    ),
)
def dense(x, W, b=None, /, *, activation=None):
    r"""A dense (fully connected) layer: an affine map of row inputs, then an activation.

    .. math:: h = \varphi\bigl(x W^\top + b\bigr), \qquad
              h_j = \varphi\Bigl(\sum_i W_{ji} x_i + b_j\Bigr)

    The articles write h = φ(Wx + b) for a column vector x; with inputs as rows it is the same
    map. Shapes: x (..., in), W (out, in), b (out,) or None → (..., out). activation: a name in
    `ACTIVATIONS` or None (identity, the default). Dtypes: float16 and bfloat16 are computed
    in float32 (the dot products, the bias and the activation) and rounded once.
    Source: 000, 001 (stacking linear maps collapses to one), 002 §4.1 (h = σ(Wx + b)), 004.
    """
    act = _activation_name(activation)
    named = {"x": x, "W": W} if b is None else {"x": x, "W": W, "b": b}
    xp = v.namespace(**named)
    _floating_same_dtype(xp, named)
    _check_dense(x, W, b)
    (x, W), dtype = v.widen(xp, x, W)
    z = x @ xp.matrix_transpose(W)
    if b is not None:
        z = z + v.widen(xp, b)[0]
    return v.narrow(xp, _phi(act, z), dtype)


# --------------------------------------------------------------------------------------------
class MLPCache(NamedTuple):
    """What `mlp_forward` keeps for `mlp_backward`, indexed as in 002 §4.4.

    h: the activations (h₀, h₁, …, h_L): h[0] is the input x, h[l] = φ(z_l) for 0 < l < L and
    h[L] the network's output. z: the pre-activations (z₁, …, z_L): z[l − 1] = z_l =
    h_{l−1} W_lᵀ + b_l (a Python list index is one less than the layer number).
    """

    h: tuple
    z: tuple


def _layers(params) -> list:
    """`params` as a list of (W, b) array pairs whose shapes chain (structural checks only)."""
    if _is_array(params) or not isinstance(params, (list, tuple)):
        raise TypeError(f"params must be a list of (W, b) pairs, got {type(params).__name__}")
    if not params:
        raise ValueError("params must hold at least one (W, b) layer, got none")
    layers = []
    for l, pair in enumerate(params, 1):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise TypeError(f"params[{l - 1}] must be a (W, b) pair")
        W, b = pair
        for name, a in (("W", W), ("b", b)):
            if not _is_array(a):
                raise TypeError(f"{name} of layer {l} must be an array, got {type(a).__name__}")
        if W.ndim != 2:
            raise ValueError(f"W of layer {l} must be a matrix of shape (out, in), got shape "
                             f"{_shape(W)}")
        if layers and W.shape[1] != layers[-1][0].shape[0]:
            raise ValueError(f"W of layer {l} has shape {_shape(W)} but layer {l - 1} has "
                             f"{layers[-1][0].shape[0]} outputs: expected ({W.shape[0]}, "
                             f"{layers[-1][0].shape[0]})")
        if _shape(b) != (W.shape[0],):
            raise ValueError(f"b of layer {l} must have shape (out,) = ({W.shape[0]},), got "
                             f"{_shape(b)}")
        layers.append((W, b))
    return layers


def _namespace_of_layers(arrays: dict, layers: list):
    named = dict(arrays)
    for l, (W, b) in enumerate(layers, 1):
        named[f"W{l}"], named[f"b{l}"] = W, b
    xp = v.namespace(**named)
    _floating_same_dtype(xp, named)
    return xp


@equation(
    chapter="layers",
    dtypes=ALL_FLOATS,
    seeds=("000", "002 §4.3", "003"),
    tiers="SPDXE",
    identities=(
        Identity("composition", "equals the textbook nested formula φ_out(W₂φ(W₁x + b₁) + b₂)",
                 "S"),
        Identity("chain_of_dense", "equals dense layers applied in turn; the cache holds every "
                 "hₗ and zₗ with the documented shapes", "P"),
        Identity("gradient", "autograd through mlp_forward equals the SymPy derivative and "
                 "central differences", "D"),
    ),
)
def mlp_forward(x, params, /, *, activation="relu", output=None):
    r"""Forward pass of a multilayer perceptron, keeping what backpropagation needs.

    .. math:: h_0 = x, \qquad z_l = h_{l-1} W_l^\top + b_l, \qquad
              h_l = \varphi(z_l)\ \ (1 \le l < L), \qquad h_L = \varphi_{\text{out}}(z_L)

    params: a list of (W_l, b_l) pairs, W_l (n_l, n_{l−1}), b_l (n_l,). activation φ is applied
    after every layer but the last; output φ_out after the last (None: identity, so the
    output is the logits z_L). Shapes: x (..., n_0) → output (..., n_L).
    Returns (output, cache) with cache an `MLPCache`: cache.h = (h₀ = x, h₁, …, h_L) and
    cache.z = (z₁, …, z_L) (so cache.z[l − 1] is z_l). Dtypes: float16 and bfloat16 are
    computed in float32 from layer to layer, and each hₗ and zₗ is rounded once to x's dtype
    (the network is float32's, rounded). Source: 002 §4.3 (the L-layer MLP),
    000 (the forward pass as composition), 003 (forward pass step by step).
    """
    hidden = _activation_name(activation)
    out_act = _activation_name(output, "output")
    layers = _layers(params)
    v.floating(v.namespace(x=x), x, "x")
    _check_dense(x, *layers[0], layer=" of layer 1")
    xp = _namespace_of_layers({"x": x}, layers)
    dtype = x.dtype
    wide = v.widen(xp, x, *(a for pair in layers for a in pair))[0]
    h, layers = wide[0], list(zip(wide[1::2], wide[2::2]))
    hs, zs = [x], []
    for l, (W, b) in enumerate(layers, 1):
        z = dense(h, W, b)
        h = _phi(out_act if l == len(layers) else hidden, z)
        zs.append(v.narrow(xp, z, dtype))
        hs.append(v.narrow(xp, h, dtype))
    return hs[-1], MLPCache(tuple(hs), tuple(zs))


# --------------------------------------------------------------------------------------------
def _cache_parts(cache, n_layers: int):
    """(h, z) of an MLPCache (or an (h, z) pair of sequences), with their lengths checked."""
    if not isinstance(cache, (list, tuple)) or len(cache) != 2 or _is_array(cache):
        raise TypeError("cache must be the MLPCache (h, z) returned by mlp_forward")
    hs, zs = cache
    if not isinstance(hs, (list, tuple)) or not isinstance(zs, (list, tuple)):
        raise TypeError("cache must be the MLPCache (h, z) returned by mlp_forward")
    if len(hs) != n_layers + 1 or len(zs) != n_layers:
        raise ValueError(f"cache does not match params: {n_layers} layers need "
                         f"{n_layers + 1} activations and {n_layers} pre-activations, got "
                         f"{len(hs)} and {len(zs)}")
    for name, seq in (("h", hs), ("z", zs)):
        for i, a in enumerate(seq):
            if not _is_array(a):
                raise TypeError(f"cache.{name}[{i}] must be an array, got {type(a).__name__}")
    return list(hs), list(zs)


@equation(
    chapter="layers",
    dtypes=ALL_FLOATS,
    seeds=("000", "001", "002 §4.4", "003"),
    tiers="SPDXE",
    identities=(
        Identity("sympy_gradient", "equals SymPy's gradient of the traced loss on an explicit "
                 "2-3-2 network with symbolic weights, inputs and targets", "S"),
        Identity("backprop_recurrence", "equals autograd (torch, and the backend's own) and "
                 "float64 central differences on random MLPs of depth 1–4 and random widths, "
                 "for every activation", "D"),
        Identity("linear_in_delta", "the gradients are linear in delta_out and match the "
                 "params' shapes; the inputs are not modified", "P"),
    ),
)
def mlp_backward(delta_out, cache, params, /, *, activation="relu"):
    r"""Backpropagation through an MLP: every layer's weight and bias gradients in one pass.

    .. math:: \delta_L = \frac{\partial \mathcal{L}}{\partial z_L}, \qquad
              \delta_l = \bigl(\delta_{l+1} W_{l+1}\bigr) \odot \varphi'(z_l), \qquad
              \frac{\partial \mathcal{L}}{\partial W_l} = \delta_l^\top h_{l-1}, \qquad
              \frac{\partial \mathcal{L}}{\partial b_l} = \sum_{\text{batch}} \delta_l

    This is 002 §4.4's recurrence δₗ = (W_{l+1}ᵀ δ_{l+1}) ⊙ σ'(zₗ), ∂L/∂Wₗ = δₗ h_{l−1}ᵀ for
    column vectors, written for row inputs: the batch is summed by the matrix product δₗᵀh_{l−1}.
    delta_out is ∂L/∂z_L, the gradient with respect to the last *pre*-activation (for softmax
    cross-entropy on the logits, `softmax_cross_entropy_grad(z_L, y, reduction="mean")`); the
    output activation's derivative is therefore the caller's, and `activation` must be the one
    given to `mlp_forward`. cache is the `MLPCache` that `mlp_forward` returned.
    Shapes: delta_out like z_L (..., n_L) → a list [(dW_1, db_1), …, (dW_L, db_L)] with the
    shapes of params. Dtypes: float16 and bfloat16 are computed in float32 (every δₗ and the
    batch sums of the products) and each gradient is rounded once.
    Source: 002 §4.4 (the recurrence, and why it costs one pass), 000
    (backpropagation as the chain rule), 001 (one backward pass for all 101,770 gradients),
    003 (simplified backprop).
    """
    hidden = _activation_name(activation)
    layers = _layers(params)
    hs, zs = _cache_parts(cache, len(layers))
    for l, (W, _) in enumerate(layers, 1):
        _check_dense(hs[l - 1], W, None, x_name=f"cache.h[{l - 1}]", layer=f" of layer {l}")
        expected = (*_shape(hs[l - 1])[:-1], W.shape[0])
        if _shape(zs[l - 1]) != expected:
            raise ValueError(f"cache.z[{l - 1}] has shape {_shape(zs[l - 1])}, expected "
                             f"{expected} for layer {l}")
    if not _is_array(delta_out):
        raise TypeError(f"delta_out must be an array, got {type(delta_out).__name__}")
    if _shape(delta_out) != _shape(zs[-1]):
        raise ValueError(f"delta_out must have the shape of the last pre-activation z_L "
                         f"{_shape(zs[-1])}, got {_shape(delta_out)}")
    arrays = {"delta_out": delta_out}
    arrays.update({f"cache.h[{i}]": a for i, a in enumerate(hs)})
    arrays.update({f"cache.z[{i}]": a for i, a in enumerate(zs)})
    xp = _namespace_of_layers(arrays, layers)
    dtype = delta_out.dtype
    wide = v.widen(xp, delta_out, *hs, *zs, *(a for pair in layers for a in pair))[0]
    delta_out, wide = wide[0], wide[1:]
    hs, zs, wide = wide[:len(hs)], wide[len(hs):len(hs) + len(zs)], wide[len(hs) + len(zs):]
    layers = list(zip(wide[0::2], wide[1::2]))

    grads = [None] * len(layers)
    delta = delta_out
    for l in range(len(layers), 0, -1):
        W, _ = layers[l - 1]
        h_prev = hs[l - 1]
        rows = math.prod(_shape(delta)[:-1])
        d2 = xp.reshape(delta, (rows, W.shape[0]))
        h2 = xp.reshape(h_prev, (rows, W.shape[1]))
        grads[l - 1] = (xp.matrix_transpose(d2) @ h2, xp.sum(d2, axis=0))
        if l > 1:
            delta = (delta @ W) * _phi_grad(xp, hidden, zs[l - 2])
    return v.narrow(xp, grads, dtype)


# --------------------------------------------------------------------------------------------
def _positive_int(value, name: str) -> int:
    n = v.integer_option(value, name)
    if n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n}")
    return n


@equation(
    chapter="layers",
    seeds=("001", "002 §8.2"),
    tiers="PXE",
    limits=(jit_size_limit("sizes as an integer array", tiers="X"),),
    identities=(
        Identity("mnist", "784-128-10 has 101,770 parameters (001)", "P"),
        Identity("counts_arrays", "equals the total size of the (W, b) arrays of an MLP with "
                 "those layer sizes", "P"),
    ),
)
def count_parameters(layer_sizes, /):
    r"""Number of weights and biases of an MLP with the given layer sizes.

    .. math:: P = \sum_{l=1}^{L} \bigl(n_{l-1}\, n_l + n_l\bigr)

    layer_sizes: (n_0, n_1, …, n_L), the input width then each layer's width — a list or
    tuple of positive integers, or a 1-d integer array. Returns a Python int (plain
    arithmetic: no array is made). Source: 001 (the 784-128-10 MNIST model has 101,770).
    """
    if isinstance(layer_sizes, (str, bytes)) or getattr(layer_sizes, "ndim", 1) != 1:
        raise TypeError("layer_sizes must be a sequence of integers (n_0, …, n_L)")
    try:
        items = list(layer_sizes)
    except TypeError:
        raise TypeError("layer_sizes must be a sequence of integers (n_0, …, n_L)") from None
    sizes = [_positive_int(n, f"layer_sizes[{i}]") for i, n in enumerate(items)]
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs an input width and at least one layer, got "
                         f"{len(sizes)} size(s)")
    return sum(n_in * n_out + n_out for n_in, n_out in itertools.pairwise(sizes))


# --------------------------------------------------------------------------------------------
def _rate(rate) -> float:
    rate = v.real_number(rate, "rate")  # any real number type (np.float32 too), no bool
    if not 0 <= rate < 1:
        raise ValueError(f"rate must be in [0, 1) (the probability of dropping a unit), "
                         f"got {rate!r}")
    return float(rate)


@equation(
    chapter="layers",
    dtypes=ALL_FLOATS,
    seeds=("000",),
    oracle="mpmath",
    identities=(
        Identity("two_values", "each output is x/(1 − p) or 0; rate 0 is the identity", "SP"),
        Identity("expectation", "averaging over the uniforms gives x: exactly over a uniform "
                 "grid of u (SymPy), and within 5 standard errors over 20,000 random draws",
                 "SP"),
        Identity("gradient", "∂/∂x = 𝟙[u ≥ p]/(1 − p), by SymPy, autograd and differences",
                 "D"),
        Identity("accuracy", "within its ulp budget of mpmath", "R"),
    ),
)
def dropout(x, u, /, *, rate):
    r"""Inverted dropout with supplied uniform samples: drop units, rescale the survivors.

    .. math:: \operatorname{dropout}(x, u)_i = \frac{x_i\, \mathbb{1}[u_i \ge p]}{1 - p},
              \qquad \mathbb{E}_{u \sim U[0,1)}\bigl[\operatorname{dropout}(x, u)\bigr] = x

    Each unit survives with probability 1 − p and is scaled by 1/(1 − p), so the expectation
    is unchanged and nothing needs rescaling at inference (call it with rate=0, or not at all).
    The randomness is the argument u (one uniform sample in [0, 1) per unit), so the function is
    deterministic. A dropped unit is multiplied by 0, so NaN and ±∞ still give NaN.
    Shapes: x and u of one shape and floating dtype → x's shape; rate p ∈ [0, 1).
    Dtypes: float16 and bfloat16 are compared with p and scaled in float32, and rounded once
    (x/(1 − p) rounded once, as for the other dtypes).
    Source: 000 (expectation-preserving dropout).
    """
    rate = _rate(rate)
    xp = v.namespace(x=x, u=u)
    _floating_same_dtype(xp, {"x": x, "u": u})
    v.same_shape(x, u, "x and u")
    v.check_values(xp, u, lambda a: (a < 0) | (a >= 1),
                   "u must hold uniform samples in [0, 1); some values are outside")
    # u is compared with p in float32 at least: in float16 a rate of 0.1 would round to
    # 0.09998 and keep the units whose u lies between the two
    (x, u), dtype = v.widen(xp, x, u)
    keep = xp.astype(u >= rate, x.dtype)
    return v.narrow(xp, x * keep / (1.0 - rate), dtype)


# --------------------------------------------------------------------------------------------


@equation(
    chapter="layers",
    seeds=("002 §4.5", "003"),
    tiers="SPXE",
    limits=(jit_size_limit("fan_in as a 0-d integer array", tiers="X"),),
    identities=(
        Identity("fixed_point", "E[relu(Z)²] = s²/2 for Z ~ N(0, s²) (SymPy integral), so "
                 "the second moment is preserved exactly when n_in σ_W²/2 = 1", "S"),
        Identity("preserves_second_moment", "a ReLU layer with W ~ N(0, σ_W²) keeps "
                 "E[z²] of the next pre-activation ≈ E[x²] (statistical, fixed seed)", "P"),
    ),
)
def he_normal_std(fan_in, /):
    r"""He (Kaiming) initialisation: the standard deviation of weights feeding a ReLU.

    .. math:: W_{ji} \sim \mathcal{N}\!\left(0,\ \sigma_W^2\right), \qquad
              \sigma_W = \sqrt{\frac{2}{n_{\text{in}}}}

    With z = W·relu(x) and E[relu(x)²] = E[x²]/2 for symmetric x, E[z²] = n_in σ_W² E[x²]/2,
    which equals E[x²] exactly for this σ_W: depth neither shrinks nor grows the signal.
    fan_in: a positive integer (a 0-d integer array is accepted) → a Python float.
    Source: 002 §4.5 (He initialisation W ~ N(0, 2/n_in)), 003 (careful initialisation).
    """
    return math.sqrt(2.0 / _positive_int(fan_in, "fan_in"))


@equation(
    chapter="layers",
    seeds=("003",),
    tiers="SPXE",
    limits=(jit_size_limit("fan_in as a 0-d integer array", tiers="X"),),
    identities=(
        Identity("compromise", "1/σ_W² is the mean of the forward (n_in) and backward (n_out) "
                 "variance-preserving requirements (SymPy)", "S"),
        Identity("gains", "in a linear layer the forward and backward variance gains "
                 "n_in σ² and n_out σ² average to 1 (statistical, fixed seed)", "P"),
    ),
)
def xavier_std(fan_in, fan_out, /):
    r"""Xavier (Glorot) initialisation: the weight standard deviation for tanh-like layers.

    .. math:: W_{ji} \sim \mathcal{N}\!\left(0,\ \sigma_W^2\right), \qquad
              \sigma_W = \sqrt{\frac{2}{n_{\text{in}} + n_{\text{out}}}}

    Keeping activations' variance needs n_in σ² = 1, keeping gradients' variance needs
    n_out σ² = 1; this σ² is the compromise whose two gains average to 1.
    fan_in, fan_out: positive integers (0-d integer arrays accepted) → a Python float.
    Source: 003 (Xavier and He initialisation for gradient flow).
    """
    n_in = _positive_int(fan_in, "fan_in")
    n_out = _positive_int(fan_out, "fan_out")
    return math.sqrt(2.0 / (n_in + n_out))


# --------------------------------------------------------------------------------------------
@equation(
    chapter="layers",
    dtypes=ALL_FLOATS,
    seeds=("002 §4.5", "002 §8.3", "003"),
    oracle="mpmath",
    identities=(
        Identity("identity_path", "∂h/∂x = I + ∂F/∂x: the identity path carries the gradient "
                 "unchanged (SymPy on a traced F, and with F held fixed)", "SD"),
        Identity("sum", "equals x + F(x) elementwise, exactly rounded", "P"),
        Identity("accuracy", "one correctly rounded addition", "R"),
    ),
)
def residual(x, fx, /):
    r"""Residual (skip) connection: add a sublayer's output to its input.

    .. math:: h = x + F(x), \qquad
              \frac{\partial h}{\partial x} = I + \frac{\partial F}{\partial x}

    The identity term passes gradients back undiminished however small ∂F/∂x becomes, which
    is why residual networks train at depth. Shapes: x and fx = F(x) of one shape and dtype
    (no broadcasting: a residual stream keeps its shape) → the same shape. Dtypes: float16
    and bfloat16 are added in their own dtype: one correctly rounded addition, which is what
    an addition in float32 rounded once gives too (float32 has more than twice their digits).
    Source: 002 §4.5 (h = F(x) + x against vanishing gradients), 002 §8.3 (the residual
    stream), 003 (skip connections).
    """
    xp = v.namespace(x=x, fx=fx)
    _floating_same_dtype(xp, {"x": x, "fx": fx})
    v.same_shape(x, fx, "x and fx")
    return x + fx


# --------------------------------------------------------------------------------------------
_XOR = ([[1.0, 1.0], [1.0, 1.0]], [0.0, -1.0], [[1.0, -2.0]], [0.0])


@equation(
    chapter="layers",
    dtypes=ALL_FLOATS,
    seeds=("001", "003"),
    tiers="SPE",
    identities=(
        Identity("solves_xor", "mlp_forward with relu hidden units and no output activation "
                 "gives exactly 0, 1, 1, 0 on the four inputs", "SP"),
        Identity("no_single_neuron", "no single neuron can: the four threshold inequalities "
                 "are infeasible (algebra), and an exhaustive grid of (w₁, w₂, b) misclassifies "
                 "at least one point", "P"),
    ),
)
def xor_network(*, xp=None, dtype=None, device=None):
    r"""Fixed 2-2-1 weights of a ReLU network that computes XOR exactly.

    .. math:: \operatorname{XOR}(x) = W_2\,\operatorname{relu}(W_1 x + b_1) + b_2, \quad
              W_1 = \begin{pmatrix}1 & 1\\ 1 & 1\end{pmatrix},\
              b_1 = \begin{pmatrix}0\\ -1\end{pmatrix},\
              W_2 = \begin{pmatrix}1 & -2\end{pmatrix},\ b_2 = 0

    The hidden units compute s = x₁ + x₂ and relu(s − 1); the output s − 2·relu(s − 1) is
    0, 1, 1, 0 on (0,0), (0,1), (1,0), (1,1), exactly in floating point (every value is a
    small integer). Use it as ``mlp_forward(x, xor_network(xp=xp), activation="relu")``
    (output=None: no output activation). The hidden layer builds a representation in which
    XOR is linear, which no single neuron can do: a neuron φ(w·x + b) with a monotone φ and a
    threshold would need b < 0 (for (0,0)), w₂ + b > 0, w₁ + b > 0 and w₁ + w₂ + b < 0;
    adding the middle two gives w₁ + w₂ + 2b > 0, and with b < 0 that contradicts the last.
    Returns [(W₁, b₁), (W₂, b₂)]: arrays made with `xp` (dtype default float64 where the
    namespace has it, device default the namespace's), or nested Python lists when xp is None.
    Dtypes: every real floating dtype, float16 and bfloat16 included, holds these weights and
    the network's values exactly.
    Source: 001 (XOR needs two layers), 003 (the perceptron's limit).
    """
    if xp is None:
        if dtype is not None or device is not None:
            raise ValueError("dtype and device need xp (the namespace to make arrays in)")
        W1, b1, W2, b2 = _XOR
        return [([row[:] for row in W1], b1[:]), ([row[:] for row in W2], b2[:])]
    if not all(hasattr(xp, f) for f in ("asarray", "isdtype", "float64")):
        raise TypeError(f"xp must be an Array API namespace, got {type(xp).__name__}")
    if dtype is None:
        dtype = xp.float64
    elif not xp.isdtype(dtype, "real floating"):
        raise TypeError(f"dtype must be a real floating dtype, got {dtype}")
    W1, b1, W2, b2 = (xp.asarray(a, dtype=dtype, device=device) for a in _XOR)
    return [(W1, b1), (W2, b2)]


# --------------------------------------------------------------------------------------------
@equation(
    chapter="layers",
    seeds=("004", "003"),
    tiers="PXE",
    dtypes=ALL_FLOATS,
    identities=(
        Identity("recovers", "recovers w and b from noiseless data y = Xw + b", "P"),
        Identity("zero_gradient", "the MSE gradient 2Aᵀ(Aθ − y)/n vanishes at the fit, and "
                 "the fit agrees with NumPy's least squares on noisy data", "P"),
    ),
)
def linear_regression_fit(X, y, /):
    r"""Least-squares fit of a linear model ŷ = Xw + b, by a QR factorisation.

    .. math:: \begin{pmatrix} w \\ b \end{pmatrix}
              = \operatorname*{arg\,min}_{w,\,b} \lVert Xw + b\mathbf{1} - y \rVert^2:
              \quad \bigl(\mathbf{1} \;\; X - \mathbf{1}\bar x^\top\bigr) = QR, \quad
              R \begin{pmatrix} c \\ w \end{pmatrix} = Q^\top y, \quad b = c - \bar x^\top w

    The minimiser of the MSE: its gradient (2/n) Aᵀ(Aθ − y), A = [X 1], is zero there. The
    features are centred (x̄ their column means) and the matrix with the ones column is
    factorised as QR, so the error grows with the condition number of that matrix, not with
    its square as through the normal equations AᵀA θ = Aᵀy (features
    offset by 1e6 would lose every digit of b there). Shapes: X (n, d), y (n,) with
    n ≥ d + 1 → (w (d,), b 0-d). Errors: a constant column, or columns that are linearly
    dependent (collinear features), leave the fit undetermined: ValueError (a value check,
    skipped inside a trace). Dtypes: float16 and bfloat16 are fitted in float32 and w and b
    rounded once. Source: 004 (linear regression ŷ = wᵀx + b with the squared error),
    003 (MSE for regression).
    """
    xp = v.namespace(X=X, y=y)
    _floating_same_dtype(xp, {"X": X, "y": y})
    if X.ndim != 2:
        raise ValueError(f"X must be a matrix of shape (n, d), got shape {_shape(X)}")
    if _shape(y) != (X.shape[0],):
        raise ValueError(f"y must have shape (n,) = ({X.shape[0]},) to match X, got "
                         f"{_shape(y)}")
    n, d = X.shape
    if n < d + 1:
        raise ValueError(f"linear regression with a bias needs at least d + 1 = {d + 1} "
                         f"examples, got {n}")
    (X, y), dtype = v.widen(xp, X, y)
    # centring first keeps the columns' scale (and the rank test) about the features' spread,
    # not their offset; the ones column is kept in the QR, so the small mean a rounded x̄
    # leaves in X − x̄ is fitted exactly rather than ignored
    x_mean = xp.mean(X, axis=0)
    columns = [xp.ones_like(y)] + [X[:, j] - x_mean[j] for j in range(d)]
    q, r = _gram_schmidt(xp, columns, n)
    qty = [xp.sum(qj * y) for qj in q]
    theta = [None] * (d + 1)
    for j in range(d, -1, -1):  # back substitution R θ = Qᵀy, θ = (b + x̄·w, w)
        acc = qty[j]
        for k in range(j + 1, d + 1):
            acc = acc - r[j][k] * theta[k]
        theta[j] = acc / r[j][j]
    w = xp.stack(theta[1:])
    return v.narrow(xp, (w, theta[0] - xp.sum(x_mean * w)), dtype)


def _gram_schmidt(xp, columns: list, n: int):
    """Q (a list of columns) and R (nested lists of 0-d arrays) with [c₁ … c_m] = QR, by
    modified Gram–Schmidt with every column orthogonalised twice ("twice is enough": Q is
    orthogonal to the working precision, as with Householder's QR). Only products and sums,
    so it runs on every backend, lazy Dask chunks and traced JAX arrays included. ValueError
    if a column keeps no more than max(n, m)·eps of its norm: it is (numerically) a
    combination of the columns before it (a constant feature is one of the ones column)."""
    d = len(columns)
    tol = max(n, d) * float(xp.finfo(columns[0].dtype).eps)
    q, r = [], [[None] * d for _ in range(d)]
    for j, a in enumerate(columns):
        norm = xp.sqrt(xp.sum(a * a))
        for i in range(j):
            r[i][j] = xp.zeros_like(norm)
        for _ in range(2):
            for i, qi in enumerate(q):
                c = xp.sum(qi * a)
                a = a - c * qi
                r[i][j] = r[i][j] + c
        r[j][j] = xp.sqrt(xp.sum(a * a))
        v.check_values(xp, r[j][j], lambda kept, norm=norm: kept <= tol * norm,
                       "X must have full column rank: a column of X is constant or a linear "
                       "combination of the others (collinear features), so the least-squares "
                       "fit is not unique")
        q.append(a / r[j][j])
    return q, r


