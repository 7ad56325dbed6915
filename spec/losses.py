r"""Losses: how wrong a prediction is, as one number to minimise.

The chapter (§4 of EQUATIONS.md): the softmax cross-entropy and its gradient, the mean squared
error, binary cross-entropy (on probabilities and, stably, on logits), the sequence negative
log-likelihood of language modelling, the L2 penalty (a Gaussian prior) and the empirical risk.
Sources: 000 (MSE, the softmax-CE gradient, the weight penalty), 001 (cross-entropy),
002 §2.2.2, §2.3 and §10.1, 003 (MSE, BCE), 004 (MSE, the chain rule of probability, risk).
"""

from __future__ import annotations

import math

from . import _validate as v
from ._registry import (
    ALL_FLOATS,
    Identity,
    Limit,
    equation,
)
from .probability import _shifted, _xlogy, softmax

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "empirical_risk",
    "l2_penalty",
    "mse",
    "sequence_nll",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
]

_REDUCTIONS = ("mean", "sum", "none")


def _logits_and_labels(logits, labels, axis):
    """The namespace, the class axis, and the labels as int64 (of any integer width)."""
    xp = v.namespace(logits=logits, labels=labels)
    v.floating(xp, logits, "logits")
    v.integer(xp, labels, "labels")
    v.min_ndim(logits, 1, "logits")
    axis = v.axis_index(logits, axis, "logits")
    v.nonempty_axis(logits, axis, "logits")
    expected = tuple(logits.shape[:axis]) + tuple(logits.shape[axis + 1:])
    if tuple(labels.shape) != expected:
        raise ValueError(
            f"labels must have the shape of logits without the class axis {axis}: expected "
            f"{expected}, got {tuple(labels.shape)}"
        )
    # widened to int64 before anything compares with them: uint8 labels against 300 classes
    # would otherwise wrap the class numbers (or overflow the comparison with 300)
    labels = v.indices(xp, labels, "labels", upper=logits.shape[axis])
    return xp, axis, labels


def _one_hot_mask(xp, labels, k: int, axis: int, ndim: int):
    """Boolean mask, True at each row's label: labels expanded along `axis` against 0..k−1."""
    shape = [1] * ndim
    shape[axis] = k
    classes = xp.reshape(xp.arange(k, dtype=labels.dtype, device=v.device(labels)), tuple(shape))
    return xp.expand_dims(labels, axis=axis) == classes


def _reduce(xp, per_example, reduction: str):
    if reduction == "none":
        return per_example
    if reduction == "sum":
        return xp.sum(per_example)
    return xp.mean(per_example)


@equation(
    chapter="losses",
    dtypes=ALL_FLOATS,
    seeds=("000", "001", "002 §2.2.2", "004"),
    oracle="mpmath",
    identities=(
        Identity("is_cross_entropy", "equals cross_entropy(one_hot(y), softmax(z))", "SP"),
        Identity("extreme_logits", "finite and exact for logits ±1e4 in float32", "R"),
        Identity("random_init", "logits ≈ 0 over K classes give ≈ log K", "P"),
        Identity("gradient", "autograd through the loss equals softmax(z) − one_hot(y)", "D"),
        Identity("any_integer_width", "labels of every integer width (uint8 … int64, signed or "
                 "not) give the int64 labels' answer: uint8 labels [5, 100] of 300 classes are "
                 "classes 5 and 100", "PR"),
    ),
)
def softmax_cross_entropy(logits, labels, /, *, axis=-1, reduction="mean"):
    r"""Cross-entropy of integer class labels under softmax(logits), from the logits directly.

    .. math:: \mathcal{L}(z, y) = -\log \operatorname{softmax}(z)_y
              = \log\sum_j e^{z_j - m} - (z_y - m)

    Fusing the log into the softmax avoids log(0) when softmax(z)_y underflows.
    Shapes: logits (..., K, ...) with K classes along `axis`; labels: integer class indices,
    the shape of logits without `axis`. reduction "mean" (default) and "sum" give a scalar,
    "none" the per-example losses. Dtypes: labels of any integer width (uint8 … int64, signed
    or not) are read as int64, so their values are what they say; float16 and bfloat16 logits
    are computed in float32 (the sum of K exponentials and the mean over the batch) and the
    loss is rounded once to the logits' dtype. Source: 000, 001, 002 §2.2.2, 004.
    """
    v.choice(reduction, _REDUCTIONS, "reduction")
    xp, axis, labels = _logits_and_labels(logits, labels, axis)
    z, dtype = v.widen(xp, logits)
    shifted = _shifted(xp, z, axis)
    mask = _one_hot_mask(xp, labels, z.shape[axis], axis, z.ndim)
    picked = xp.sum(xp.where(mask, shifted, xp.zeros_like(shifted)), axis=axis)
    lse = xp.log(xp.sum(xp.exp(shifted), axis=axis))
    return v.narrow(xp, _reduce(xp, lse - picked, reduction), dtype)


@equation(
    chapter="losses",
    dtypes=ALL_FLOATS,
    seeds=("000", "002 §4.3"),
    oracle="mpmath",
    identities=(
        Identity("sympy_derivative",
                 "the SymPy derivative of the traced softmax_cross_entropy equals this", "S"),
        Identity("equals_autograd", "equals autograd and float64 central differences", "D"),
        Identity("rows_sum_to_zero", "each example's gradient sums to 0 over the classes", "SP"),
        Identity("any_integer_width", "labels of every integer width (uint8 … int64, signed or "
                 "not) give the int64 labels' answer", "PR"),
    ),
)
def softmax_cross_entropy_grad(logits, labels, /, *, axis=-1, reduction="none"):
    r"""Gradient of the softmax cross-entropy with respect to the logits.

    .. math:: \frac{\partial \mathcal{L}}{\partial z} = \operatorname{softmax}(z)
              - \operatorname{onehot}(y)

    The "miracle" of 000: the softmax Jacobian and the derivative of −log collapse into one
    subtraction. Shapes: as `softmax_cross_entropy`; returns the logits' shape.
    reduction "none" (default) and "sum" give each example's own gradient (the gradient of the
    summed loss); "mean" divides by the number of examples, matching
    `softmax_cross_entropy(..., reduction="mean")`. Dtypes: as `softmax_cross_entropy`
    (labels of any integer width; float16 and bfloat16 computed in float32, rounded once).
    Source: 000.
    """
    v.choice(reduction, _REDUCTIONS, "reduction")
    xp, axis, labels = _logits_and_labels(logits, labels, axis)
    z, dtype = v.widen(xp, logits)
    mask = _one_hot_mask(xp, labels, z.shape[axis], axis, z.ndim)
    grad = softmax(z, axis=axis) - xp.astype(mask, z.dtype)
    if reduction == "mean":
        grad = grad / max(1, math.prod(labels.shape))
    return v.narrow(xp, grad, dtype)


# ============================================================================================
# regression, binary classification, sequences, regularisation, risk


def _matched_pair(a, b, a_name: str, b_name: str):
    """The namespace of two floating arrays of one dtype and one shape (no broadcasting)."""
    xp = v.namespace(**{a_name: a, b_name: b})
    v.floating(xp, a, a_name)
    v.floating(xp, b, b_name)
    v.same_dtype(a, b, f"{a_name} and {b_name}")
    v.same_shape(a, b, f"{a_name} and {b_name}")
    return xp


def _unit_interval(xp, x, name: str, what: str) -> None:
    v.check_values(xp, x, lambda a: (a < 0) | (a > 1),
                   f"{name} must hold {what} in [0, 1]; some values are outside")


# --------------------------------------------------------------------------------------------
@equation(
    chapter="losses",
    dtypes=ALL_FLOATS,
    seeds=("000", "003", "004"),
    oracle="mpmath",
    identities=(
        Identity("textbook", "the traced code equals (1/n) Σ (ŷᵢ − yᵢ)²", "S"),
        Identity("nonnegative", "MSE ≥ 0, and = 0 exactly when ŷ = y", "P"),
        Identity("reductions", "mean = sum / n; 'none' gives the squared errors", "P"),
        Identity("gradient", "∂MSE/∂ŷ = 2(ŷ − y)/n, by SymPy, autograd and differences", "SD"),
        Identity("accuracy", "within its ulp budget of mpmath (a sum of squares: relative)", "R"),
    ),
)
def mse(y_hat, y, /, *, reduction="mean"):
    r"""Mean squared error between predictions and targets.

    .. math:: \operatorname{MSE}(\hat y, y) = \frac{1}{n}\sum_{i=1}^{n} (\hat y_i - y_i)^2,
              \qquad \frac{\partial\,\operatorname{MSE}}{\partial \hat y}
              = \frac{2}{n}(\hat y - y)

    Shapes: y_hat and y of one shape (not broadcast: a prediction of shape (n, 1) against
    targets of shape (n,) is a classic silent bug, refused here). n counts every element.
    reduction "mean" (default) and "sum" give a scalar, "none" the squared errors.
    Dtypes: float16 and bfloat16 are computed in float32 (a float16 square overflows past 256,
    and its sums stop counting past 2048 terms) and rounded once to the inputs' dtype.
    Source: 000 and 003 (regression loss), 004 (the squared error of linear regression).
    """
    v.choice(reduction, _REDUCTIONS, "reduction")
    xp = _matched_pair(y_hat, y, "y_hat", "y")
    (y_hat, y), dtype = v.widen(xp, y_hat, y)
    d = y_hat - y
    return v.narrow(xp, _reduce(xp, d * d, reduction), dtype)


# --------------------------------------------------------------------------------------------
def _xlog1py(xp, a, b):
    """a·log(1 + b) with the convention 0·log(1 + b) = 0 (for every b); NaN propagates."""
    zero = a == 0
    return xp.where(zero, xp.zeros_like(a), a * xp.log1p(xp.where(zero, xp.zeros_like(b), b)))


@equation(
    chapter="losses",
    dtypes=ALL_FLOATS,
    seeds=("003", "001"),
    oracle="mpmath",
    identities=(
        Identity("textbook", "the traced code equals −[y log p + (1 − y) log(1 − p)]", "S"),
        Identity("is_cross_entropy",
                 "equals cross_entropy([y, 1 − y], [p, 1 − p]) of §2; ≥ its entropy H(y)", "P"),
        Identity("minimum_at_target", "for y ∈ {0, 1}: 0 at p = y, +∞ at p = 1 − y", "PR"),
        Identity("gradient", "∂BCE/∂p = (p − y)/(p(1 − p)), by SymPy, autograd and differences",
                 "D"),
        Identity("accuracy", "within its ulp budget of mpmath (a sum of two non-negative terms)",
                 "R"),
    ),
)
def binary_cross_entropy(p, y, /):
    r"""Binary cross-entropy of targets y under predicted probabilities p, elementwise.

    .. math:: \operatorname{BCE}(p, y) = -\bigl[\,y \log p + (1 - y)\log(1 - p)\,\bigr],
              \qquad 0 \log 0 = 0

    log(1 − p) is computed as log1p(−p), exact where p is tiny. The convention 0·log 0 = 0
    makes a confident correct prediction (p = y ∈ {0, 1}) cost exactly 0 and a confident wrong
    one +∞. Shapes: p and y of one shape, p ∈ [0, 1] (probabilities), y ∈ [0, 1] (hard or soft
    targets, floating) → the same shape (average with `empirical_risk`). Prefer
    `binary_cross_entropy_with_logits` when the probabilities come from a sigmoid.
    Dtypes: float16 and bfloat16 are computed in float32 and rounded once.
    Source: 003 (BCE for a sigmoid output), 001 (sigmoid for binary classification).
    """
    xp = _matched_pair(p, y, "p", "y")
    _unit_interval(xp, p, "p", "probabilities")
    _unit_interval(xp, y, "y", "targets")
    (p, y), dtype = v.widen(xp, p, y)
    return v.narrow(xp, -(_xlogy(xp, y, p) + _xlog1py(xp, 1 - y, -p)), dtype)


# --------------------------------------------------------------------------------------------
def _softplus(xp, t):
    """log(1 + eᵗ) = max(t, 0) + log1p(e^{−|t|}): never overflows, exact tails."""
    return xp.maximum(t, xp.zeros_like(t)) + xp.log1p(xp.exp(-xp.abs(t)))


def _xmul(xp, a, b):
    """a·b with 0·b = 0 for every b (0·∞ = 0: a term with zero weight contributes nothing)."""
    zero = a == 0
    return xp.where(zero, xp.zeros_like(b), a * xp.where(zero, xp.zeros_like(b), b))


@equation(
    chapter="losses",
    dtypes=ALL_FLOATS,
    seeds=("003", "001"),
    oracle="mpmath",
    errata=(
        "003 computes the output gradient of a sigmoid unit trained with binary_cross_entropy "
        "as (ŷ − y)·ŷ·(1 − ŷ); that is the gradient of the squared error through a sigmoid. "
        "For BCE on σ(z) the factor σ'(z) = ŷ(1 − ŷ) cancels and ∂L/∂z = σ(z) − y.",
    ),
    identities=(
        Identity("is_bce_of_sigmoid", "equals binary_cross_entropy(σ(z), y) exactly (SymPy) "
                 "and numerically where σ(z) does not round to 0 or 1", "SP"),
        Identity("extreme_logits", "finite and exact for |z| = 1000 in float32 and float64",
                 "PR"),
        Identity("gradient", "∂L/∂z = σ(z) − y, by SymPy, autograd and differences; "
                 "autograd stays finite at |z| = 1000", "SD"),
        Identity("accuracy", "within its ulp budget of mpmath, relative (non-negative terms)",
                 "R"),
    ),
)
def binary_cross_entropy_with_logits(z, y, /):
    r"""Binary cross-entropy of targets y under σ(z), computed stably from the logits z.

    .. math:: \operatorname{BCE}(\sigma(z), y)
              = \max(z, 0) - z\,y + \log\!\bigl(1 + e^{-|z|}\bigr)
              = y\,\operatorname{softplus}(-z) + (1 - y)\,\operatorname{softplus}(z),
              \qquad \frac{\partial \mathcal L}{\partial z} = \sigma(z) - y

    with softplus(t) = log(1 + eᵗ) = max(t, 0) + log1p(e^{−|t|}). The second form is the one
    computed: both terms are non-negative, so nothing cancels (max(z, 0) − zy loses the
    relative accuracy of a small loss when y ≈ 1 and z ≫ 0), nothing overflows, and a term with
    weight 0 contributes exactly 0 even at z = ±∞ (so z = +∞, y = 1 costs 0, not ∞ − ∞).
    Shapes: z and y of one shape, y ∈ [0, 1] floating → the same shape. Dtypes: float16 and
    bfloat16 are computed in float32 and rounded once.
    Source: 003 (sigmoid output with BCE), 001. Erratum: 003's output gradient
    (ŷ − y)·ŷ(1 − ŷ) is that of the squared error through a sigmoid; with BCE it is σ(z) − y.
    """
    xp = _matched_pair(z, y, "z", "y")
    _unit_interval(xp, y, "y", "targets")
    (z, y), dtype = v.widen(xp, z, y)
    return v.narrow(xp, _xmul(xp, y, _softplus(xp, -z)) + _xmul(xp, 1 - y, _softplus(xp, z)),
                    dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="losses",
    dtypes=ALL_FLOATS,
    seeds=("004", "002 §10.1"),
    oracle="mpmath",
    limits=(
        Limit("dask", "dask's max raises on a zero-size chunk (a sequence of T = 0 steps)",
              "https://github.com/dask/dask/issues/3906", tiers="XR",
              note="T = 0: the empty product"),
    ),
    identities=(
        Identity("chain_rule", "exp(−NLL) equals the product of the per-step softmax "
                 "probabilities of the tokens (the chain rule of probability)", "SP"),
        Identity("sum_of_cross_entropies", "equals Σₜ softmax_cross_entropy(z_t, x_t)", "SP"),
        Identity("gradient", "∂NLL/∂z_t = softmax(z_t) − onehot(x_t), by SymPy, autograd and "
                 "differences", "D"),
        Identity("accuracy", "within its ulp budget of mpmath, also for logits ±1e4", "R"),
        Identity("any_integer_width", "token ids of every integer width (uint8 … int64, signed "
                 "or not; uint16 token streams) give the int64 ids' answer", "PR"),
    ),
)
def sequence_nll(logits, tokens, /):
    r"""Negative log-likelihood of a token sequence under next-token logits, summed over time.

    .. math:: \mathcal{L} = -\sum_{t=1}^{T} \log P(x_t \mid x_{<t})
              = \sum_{t=1}^{T} \operatorname{CE}\bigl(z_t, x_t\bigr),
              \qquad P(x_t \mid x_{<t}) = \operatorname{softmax}(z_t)_{x_t}

    The chain rule of probability turns the sequence's probability into the product of its
    next-token conditionals, so its negative log is this sum. logits[..., t, :] must already be
    the model's scores for token t given the tokens before it (a causal model's output at
    position t − 1: shift before calling). Shapes: logits (..., T, V), tokens (..., T) integer
    ids in [0, V) → (...) one NLL per sequence (T = 0 gives 0, the log of an empty product).
    Dtypes: token ids of any integer width (uint8 … int64, signed or not) are read as int64;
    float16 and bfloat16 logits are computed in float32 (per step and in the sum over time)
    and the NLL is rounded once.
    Source: 004 (chain rule of probability, next-token NLL), 002 §10.1 (the objective).
    """
    xp = v.namespace(logits=logits, tokens=tokens)
    v.floating(xp, logits, "logits")
    v.integer(xp, tokens, "tokens")
    v.min_ndim(logits, 2, "logits")
    v.nonempty_axis(logits, logits.ndim - 1, "logits")
    if tuple(tokens.shape) != tuple(logits.shape[:-1]):
        raise ValueError(
            f"tokens must have the shape of logits without the vocabulary axis: expected "
            f"{tuple(logits.shape[:-1])}, got {tuple(tokens.shape)}"
        )
    # token ids of any width (a uint16 token stream) as int64, values as written
    tokens = v.indices(xp, tokens, "tokens", upper=logits.shape[-1], what="token ids")
    z, dtype = v.widen(xp, logits)
    per_step = softmax_cross_entropy(z, tokens, axis=-1, reduction="none")
    return v.narrow(xp, xp.sum(per_step, axis=-1), dtype)


# --------------------------------------------------------------------------------------------
def _param_arrays(params):
    """`params` as a list of arrays: one array, or a non-empty list/tuple of arrays."""
    import array_api_compat

    if array_api_compat.is_array_api_obj(params):
        return [params]
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"params must be an array or a list/tuple of arrays, got "
                        f"{type(params).__name__}")
    if not params:
        raise ValueError("params must hold at least one array, got an empty sequence")
    return list(params)


def _weight(value) -> float:
    value = v.real_number(value, "weight")  # any real number type (np.float32 too), no bool
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"weight must be a non-negative finite number, got {value!r}")
    return float(value)


@equation(
    chapter="losses",
    dtypes=ALL_FLOATS,
    seeds=("000", "002 §1.4", "002 §2.3"),
    oracle="mpmath",
    identities=(
        Identity("textbook", "the traced code equals λ Σ_j Σ w², additive over the arrays",
                 "SP"),
        Identity("gradient", "∂Ω/∂W = 2λW, by SymPy, autograd and central differences", "SD"),
        Identity("gaussian_prior", "−Σ log N(w; 0, σ²) = Ω + const with λ = 1/(2σ²): MAP with "
                 "a Gaussian prior is MLE plus the L2 penalty", "SP"),
        Identity("homogeneous", "Ω(cW) = c² Ω(W); Ω ≥ 0", "P"),
        Identity("accuracy", "within its ulp budget of mpmath (a sum of squares: relative)", "R"),
    ),
)
def l2_penalty(params, /, *, weight):
    r"""L2 penalty (weight decay) on a list of parameter arrays: λ times their squared norms.

    .. math:: \Omega(W_1, \dots, W_k) = \lambda \sum_{j=1}^{k} \lVert W_j \rVert_F^2
              = \lambda \sum_j \sum_{i} (W_j)_i^2,
              \qquad \frac{\partial \Omega}{\partial W_j} = 2 \lambda W_j

    It is, up to an additive constant, the negative log of an independent Gaussian prior
    N(0, σ²) on every parameter with λ = 1/(2σ²), so minimising loss + Ω is MAP estimation.
    Shapes: params is one array or a list/tuple of arrays of any shapes (one library, one
    floating dtype); weight λ ≥ 0 → a 0-d array. Dtypes: float16 and bfloat16 are computed in
    float32 (squares and their sums) and rounded once. Source: 000 (weight penalty),
    002 §1.4 (λ‖W‖²_F, weight decay), 002 §2.3 (MAP = MLE + −log prior).
    """
    arrays = _param_arrays(params)
    weight = _weight(weight)
    xp = v.namespace(**{f"params[{i}]": w for i, w in enumerate(arrays)})
    for i, w in enumerate(arrays):
        v.floating(xp, w, f"params[{i}]")
        v.same_dtype(arrays[0], w, f"params[0] and params[{i}]")
    wide, dtype = v.widen(xp, *arrays)
    wide = [wide] if len(arrays) == 1 else wide
    total = xp.sum(wide[0] * wide[0])
    for w in wide[1:]:
        total = total + xp.sum(w * w)
    return v.narrow(xp, weight * total, dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="losses",
    dtypes=ALL_FLOATS,
    seeds=("004", "000"),
    oracle="mpmath",
    identities=(
        Identity("mean", "the traced code equals (1/N) Σ Lₙ", "S"),
        Identity("is_reduction", "of per-example softmax CE equals the 'mean' reduction; "
                 "lies between the smallest and the largest loss", "P"),
        Identity("estimates_expected_risk", "on 10⁵ samples it estimates the expected risk "
                 "within 5 standard errors (fixed seed)", "P"),
        Identity("gradient", "∂R̂/∂Lₙ = 1/N", "D"),
        Identity("accuracy", "within its ulp budget of mpmath", "R"),
    ),
)
def empirical_risk(losses, /):
    r"""Empirical risk: the mean of per-example losses, the estimate of the expected risk.

    .. math:: \hat R(\theta) = \frac{1}{N}\sum_{n=1}^{N}
              \mathcal{L}\bigl(f_\theta(x_n), y_n\bigr)
              \;\approx\; R(\theta) = \mathbb{E}_{(x, y)\sim p_{\text{data}}}
              \bigl[\mathcal{L}(f_\theta(x), y)\bigr]

    Shapes: losses of any shape with N ≥ 1 elements (each one example's loss) → a 0-d array.
    Dtypes: float16 and bfloat16 are averaged in float32 and rounded once.
    Source: 004 (expected risk and its estimate from data), 000 (the loss to minimise).
    """
    xp = v.namespace(losses=losses)
    v.floating(xp, losses, "losses")
    if math.prod(losses.shape) == 0:
        raise ValueError(f"losses must hold at least one example, got shape "
                         f"{tuple(losses.shape)}")
    losses, dtype = v.widen(xp, losses)
    return v.narrow(xp, xp.mean(losses), dtype)


