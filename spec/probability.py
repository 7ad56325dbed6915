r"""Probability and information: softmax and its relatives, entropy, divergences, Bayes.

Sources: 000 (softmax derivative), 001 (softmax, temperature, the max trick), 002 §2 (softmax,
entropy, cross-entropy, KL, perplexity, Bayes), 003, 004 (softmax and cross-entropy).
"""

from __future__ import annotations

import math

from . import _validate as v
from ._registry import ErrorCase, Identity, Limit, Sample, equation, errors, references, samples
from ._registry import sample_array as _a

__all__ = [
    "bayes_posterior",
    "cross_entropy",
    "entropy",
    "kl_divergence",
    "log_softmax",
    "logsumexp",
    "normal_pdf",
    "perplexity",
    "softmax",
    "softmax_jacobian",
    "softmax_vjp",
]


def _float_input(z, name: str, axis: int):
    xp = v.namespace(**{name: z})
    v.floating(xp, z, name)
    v.min_ndim(z, 1, name)
    axis = v.axis_index(z, axis, name)
    v.nonempty_axis(z, axis, name)
    return xp, axis


def _shifted(xp, z, axis: int):
    """z − max(z) along `axis`, with a non-finite max (all −∞, or +∞) replaced by 0.

    Replacing an infinite max keeps exp(−∞ − (−∞)) = NaN out of rows that are entirely −∞,
    so logsumexp of such a row is log 0 = −∞ as the math says.
    """
    m = xp.max(z, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    return z - m


def _xlogy(xp, x, y):
    """x·log y with the convention 0·log y = 0 (for every y, 0 included); NaN propagates."""
    zero = x == 0
    return xp.where(zero, xp.zeros_like(x), x * xp.log(xp.where(zero, xp.ones_like(y), y)))



# --------------------------------------------------------------------------------------------
@equation(
    chapter="probability",
    latex=r"\operatorname{softmax}(z)_i = \frac{e^{z_i/T - m}}{\sum_j e^{z_j/T - m}},"
    r"\quad m = \max_j z_j/T",
    seeds=("000", "001", "002 §2.1.1", "003", "004"),
    oracle="mpmath",
    identities=(
        Identity("stable_equals_textbook", "the max-shifted code equals e^{z_i}/Σ_j e^{z_j}", "S"),
        Identity("shift_invariance", "softmax(z + c) = softmax(z) for every constant c", "SP"),
        Identity("sums_to_one", "Σ_i softmax(z)_i = 1", "SP"),
        Identity("positive", "softmax(z)_i > 0 for finite z", "P"),
        Identity("temperature_limits", "T → 0 tends to one-hot argmax; T → ∞ to uniform", "P"),
        Identity("extreme_logits", "finite and correct for logits ±1e4 in float32", "R"),
        Identity("neg_inf_logit", "a −∞ logit gets probability exactly 0", "PR"),
        Identity("autograd_is_vjp", "autograd through softmax equals softmax_vjp", "D"),
    ),
    limits=(
        Limit("dask", "dask's max raises on a zero-size chunk (a batch of zero rows)",
              "https://github.com/dask/dask/issues/3906", tiers="XR", note="zero rows"),
    ),
)
def softmax(z, /, *, axis=-1, temperature=1.0):
    r"""Softmax: logits to a probability distribution along `axis`.

    .. math:: \operatorname{softmax}(z)_i = \frac{e^{z_i/T - m}}{\sum_j e^{z_j/T - m}},
              \qquad m = \max_j z_j / T

    Subtracting the maximum changes nothing mathematically (the factor e^{−m} cancels) and
    keeps every exponent ≤ 0, so nothing overflows. Temperature T > 0 sharpens (T < 1) or
    flattens (T > 1) the distribution.

    Shapes: z (..., n, ...) → same shape; n = z.shape[axis] ≥ 1.
    Source: 002 §2.1.1 (definition and the max trick), 001 (temperature).
    """
    xp, axis = _float_input(z, "z", axis)
    temperature = v.positive_number(temperature, "temperature")
    if temperature != 1.0:
        z = z / temperature
    e = xp.exp(_shifted(xp, z, axis))
    return e / xp.sum(e, axis=axis, keepdims=True)


@samples(softmax)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, 2.0, 3.0], dtype, device),), {}, "vector"),
        Sample((_a(xp, [[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]], dtype, device),), {"axis": 0},
               "matrix, axis 0"),
        Sample((_a(xp, [[1.0, 2.0, 4.0]], dtype, device),), {"temperature": 0.5}, "T=0.5"),
    ]


@references(softmax)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1e4, -1e4, 0.0], dtype, device),), {}, "±1e4 logits"),
        Sample((_a(xp, [-math.inf, 0.0, 1.0], dtype, device),), {}, "a −∞ logit"),
        Sample((_a(xp, [[3.0, 3.0]] * 2, dtype, device)[:0, :],), {}, "zero rows"),
        Sample((_a(xp, [88.0, 89.0, 90.0], dtype, device),), {}, "exp would overflow float32"),
    ]


def _common_errors(xp, dtype, device, extra_args=()) -> list[ErrorCase]:
    good = _a(xp, [[1.0, 2.0]], dtype, device)
    return [
        ErrorCase((_a(xp, [1, 2, 3], xp.int64, device), *extra_args), {}, TypeError,
                  "real floating dtype", "integer logits"),
        ErrorCase((good, *extra_args), {"axis": 2}, ValueError, "axis 2 is out of range",
                  "axis out of range"),
        ErrorCase((_a(xp, 1.0, dtype, device), *extra_args), {}, ValueError,
                  "at least 1 dimension", "0-d input"),
        ErrorCase((_a(xp, [[1.0]], dtype, device)[:, :0], *extra_args), {}, ValueError,
                  "length 0 along axis", "empty axis"),
    ]


@errors(softmax)
def _(xp, dtype, device):
    z = _a(xp, [1.0, 2.0], dtype, device)
    return [
        *_common_errors(xp, dtype, device),
        ErrorCase((z,), {"temperature": 0.0}, ValueError, "temperature must be a positive",
                  "zero temperature"),
        ErrorCase((z,), {"temperature": -1.0}, ValueError, "temperature must be a positive",
                  "negative temperature"),
        ErrorCase(([1.0, 2.0],), {}, TypeError, "z must be an array", "a list"),
    ]


# --------------------------------------------------------------------------------------------
@equation(
    chapter="probability",
    latex=r"\log\operatorname{softmax}(z)_i = z_i - \operatorname{logsumexp}(z)",
    seeds=("001", "002 §2.1.1"),
    oracle="mpmath",
    identities=(
        Identity("exp_is_softmax", "exp(log_softmax(z)) = softmax(z)", "SP"),
        Identity("finite_where_softmax_underflows",
                 "finite where softmax underflows to 0 (logit gaps of 1e4)", "R"),
        Identity("autograd", "autograd equals the SymPy derivative and central differences", "D"),
    ),
)
def log_softmax(z, /, *, axis=-1):
    r"""Log-softmax, computed without forming the (possibly underflowing) softmax.

    .. math:: \log\operatorname{softmax}(z)_i = (z_i - m) - \log\sum_j e^{z_j - m}

    Shapes: z (..., n, ...) → same shape. Source: 001 (max trick), 002 §2.1.1.
    """
    xp, axis = _float_input(z, "z", axis)
    shifted = _shifted(xp, z, axis)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


@samples(log_softmax)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, 2.0, 3.0], dtype, device),), {}, "vector"),
        Sample((_a(xp, [[0.5, -1.0], [2.0, 0.0]], dtype, device),), {"axis": 0}, "axis 0"),
    ]


@references(log_softmax)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1e4, -1e4, 0.0], dtype, device),), {}, "softmax underflows to 0"),
        Sample((_a(xp, [-math.inf, 0.0], dtype, device),), {}, "a −∞ logit gives −∞"),
    ]


@errors(log_softmax)
def _(xp, dtype, device):
    return [*_common_errors(xp, dtype, device),
            ErrorCase(([1.0],), {}, TypeError, "z must be an array", "a list")]


# --------------------------------------------------------------------------------------------
@equation(
    chapter="probability",
    latex=r"\operatorname{logsumexp}(z) = m + \log\sum_i e^{z_i - m},\quad m = \max_i z_i",
    seeds=("001", "002 §2.1.1"),
    oracle="mpmath",
    identities=(
        Identity("equals_log_sum_exp", "the shifted code equals log Σ e^{z_i}", "S"),
        Identity("bounds", "max z ≤ logsumexp(z) ≤ max z + log n", "P"),
        Identity("gradient_is_softmax", "∇ logsumexp = softmax", "D"),
        Identity("accuracy", "within its ulp budget of mpmath; exact ±∞ handling", "R"),
    ),
)
def logsumexp(z, /, *, axis=-1, keepdims=False):
    r"""Log of a sum of exponentials, without overflow.

    .. math:: \operatorname{logsumexp}(z) = m + \log\sum_i e^{z_i - m}, \qquad m = \max_i z_i

    An all-(−∞) slice gives −∞ (log 0); a +∞ entry gives +∞.
    Shapes: z (..., n, ...) → z without `axis` (kept as size 1 when `keepdims`).
    Source: 001 and 002 §2.1.1 (the max trick).
    """
    xp, axis = _float_input(z, "z", axis)
    m = xp.max(z, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    out = m + xp.log(xp.sum(xp.exp(z - m), axis=axis, keepdims=True))
    return out if keepdims else xp.squeeze(out, axis=axis)


@samples(logsumexp)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, 2.0, 3.0], dtype, device),), {}, "vector"),
        Sample((_a(xp, [[0.5, -1.0], [2.0, 0.0]], dtype, device),), {"axis": 0, "keepdims": True},
               "axis 0, keepdims"),
    ]


@references(logsumexp)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1e4, 1e4], dtype, device),), {}, "would overflow unshifted"),
        Sample((_a(xp, [-math.inf, -math.inf], dtype, device),), {}, "all −∞ gives −∞"),
        Sample((_a(xp, [math.inf, 0.0], dtype, device),), {}, "+∞ gives +∞"),
        Sample((_a(xp, [-1e4, -1e4 - 1.0], dtype, device),), {}, "large negative"),
    ]


@errors(logsumexp)
def _(xp, dtype, device):
    return [*_common_errors(xp, dtype, device),
            ErrorCase((_a(xp, [1.0], dtype, device),), {"axis": 1.5}, TypeError,
                      "axis must be an integer", "float axis")]


# --------------------------------------------------------------------------------------------
@equation(
    chapter="probability",
    latex=r"J = \frac{\partial \operatorname{softmax}(z)}{\partial z}"
    r" = \operatorname{diag}(s) - s s^\top,\quad s = \operatorname{softmax}(z)",
    seeds=("000",),
    oracle="mpmath",
    identities=(
        Identity("is_sympy_jacobian", "equals the SymPy Jacobian of the traced softmax", "SD"),
        Identity("rows_sum_to_zero", "every row and column sums to 0", "P"),
        Identity("symmetric", "J = Jᵀ", "P"),
    ),
)
def softmax_jacobian(z, /, *, axis=-1):
    r"""The Jacobian of softmax: ∂sᵢ/∂zⱼ = sᵢ(δᵢⱼ − sⱼ).

    .. math:: J = \operatorname{diag}(s) - s s^\top

    Shapes: z (..., n, ...) → (..., n, n): the differentiated axis is moved last and expanded
    into an n × n matrix per batch element. Source: 000 (derivation of the softmax derivative).
    """
    xp, axis = _float_input(z, "z", axis)
    s = xp.moveaxis(softmax(z, axis=axis), axis, -1)
    n = s.shape[-1]
    eye = xp.eye(n, dtype=s.dtype, device=v.device(s))
    return s[..., :, None] * eye - s[..., :, None] * s[..., None, :]


@samples(softmax_jacobian)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, 2.0, 3.0], dtype, device),), {}, "vector"),
        Sample((_a(xp, [[0.5, -1.0], [2.0, 0.0]], dtype, device),), {"axis": 0}, "axis 0"),
    ]


@references(softmax_jacobian)
def _(xp, dtype, device):
    return [Sample((_a(xp, [50.0, 0.0, 0.0], dtype, device),), {}, "one dominant logit")]


@errors(softmax_jacobian)
def _(xp, dtype, device):
    return _common_errors(xp, dtype, device)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="probability",
    latex=r"J^\top g = s \odot (g - \langle g, s\rangle)",
    seeds=("000",),
    oracle="mpmath",
    identities=(
        Identity("equals_jacobian_product", "equals softmax_jacobian(z) @ g", "SP"),
        Identity("equals_autograd", "equals autograd's vector-Jacobian product of softmax", "D"),
        Identity("orthogonal_to_ones", "the result sums to 0 along the axis", "P"),
    ),
)
def softmax_vjp(z, g, /, *, axis=-1):
    r"""Vector-Jacobian product of softmax, without forming the n × n Jacobian.

    .. math:: \left(J^\top g\right)_i = s_i \bigl(g_i - \textstyle\sum_j g_j s_j\bigr)

    Shapes: z and g (..., n, ...) of the same shape → same shape. Source: 000.
    """
    xp, axis = _float_input(z, "z", axis)
    v.namespace(z=z, g=g)
    v.floating(xp, g, "g")
    v.same_shape(z, g, "z and g")
    s = softmax(z, axis=axis)
    return s * (g - xp.sum(g * s, axis=axis, keepdims=True))


@samples(softmax_vjp)
def _(xp, dtype, device):
    return [Sample((_a(xp, [1.0, 2.0, 3.0], dtype, device), _a(xp, [0.5, -1.0, 2.0], dtype,
                                                                   device)), {}, "vector")]


@references(softmax_vjp)
def _(xp, dtype, device):
    return [Sample((_a(xp, [50.0, 0.0, 0.0], dtype, device), _a(xp, [1.0, 2.0, 3.0], dtype,
                                                                    device)), {},
                   "one dominant logit: g − ⟨g, s⟩ cancels")]


@errors(softmax_vjp)
def _(xp, dtype, device):
    z = _a(xp, [1.0, 2.0, 3.0], dtype, device)
    return [
        ErrorCase((z, _a(xp, [1.0, 2.0], dtype, device)), {}, ValueError,
                  "z and g must have the same shape", "g of another shape"),
        ErrorCase((z, _a(xp, [1, 2, 3], xp.int64, device)), {}, TypeError,
                  "g must have a real floating dtype", "integer g"),
        ErrorCase((z, z), {"axis": 1}, ValueError, "axis 1 is out of range", "bad axis"),
        ErrorCase((z, [1.0, 2.0, 3.0]), {}, TypeError, "g must be an array", "list g"),
    ]


# --------------------------------------------------------------------------------------------
def _distribution(xp_name: str, p, axis):
    xp, axis = _float_input(p, xp_name, axis)
    v.nonnegative(xp, p, xp_name)
    return xp, axis


@equation(
    chapter="probability",
    latex=r"H(P) = -\sum_x P(x)\log P(x),\quad 0\log 0 = 0",
    seeds=("002 §2.2.1",),
    oracle="mpmath",
    identities=(
        Identity("one_hot_zero", "H = 0 for a one-hot distribution", "SP"),
        Identity("uniform_max", "H(uniform over n) = log n, the maximum over n outcomes", "SP"),
        Identity("bits", "base 2: a fair coin has 1 bit, a fair die log₂ 6 bits", "SR"),
        Identity("gradient", "∂H/∂pᵢ = −(log pᵢ + 1), by SymPy, autograd and differences", "D"),
    ),
)
def entropy(p, /, *, axis=-1, base=None):
    r"""Shannon entropy of a distribution along `axis` (nats; bits with base=2).

    .. math:: H(P) = -\sum_x P(x) \log P(x), \qquad 0 \log 0 = 0

    Shapes: p (..., n, ...) → p without `axis`. p must be non-negative (it is not required to
    sum to 1: the sum is taken as given). Source: 002 §2.2.1.
    """
    xp, axis = _distribution("p", p, axis)
    h = -xp.sum(_xlogy(xp, p, p), axis=axis)
    if base is not None:
        base = v.positive_number(base, "base")
        if base == 1.0:
            raise ValueError("base must not be 1 (log 1 = 0)")
        h = h / math.log(base)
    return h


@samples(entropy)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.5, 0.5], dtype, device),), {"base": 2}, "fair coin, bits"),
        Sample((_a(xp, [[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]], dtype, device),), {}, "batch"),
    ]


@references(entropy)
def _(xp, dtype, device):
    return [Sample((_a(xp, [1.0, 0.0, 0.0], dtype, device),), {}, "one-hot: 0·log 0 = 0"),
            Sample((_a(xp, [1 / 6] * 6, dtype, device),), {"base": 2}, "fair die")]


def _distribution_errors(xp, dtype, device, extra=()):
    bad = _a(xp, [0.5, -0.5, 1.0], dtype, device)
    good = _a(xp, [0.5, 0.5, 0.0], dtype, device)
    return [
        ErrorCase((bad, *extra), {}, ValueError, "must be non-negative", "negative probability"),
        ErrorCase((_a(xp, [1, 0, 0], xp.int64, device), *extra), {}, TypeError,
                  "real floating dtype", "integer probabilities"),
        ErrorCase((good, *extra), {"axis": -2}, ValueError, "axis -2 is out of range",
                  "axis out of range"),
    ]


@errors(entropy)
def _(xp, dtype, device):
    p = _a(xp, [0.5, 0.5], dtype, device)
    return [
        *_distribution_errors(xp, dtype, device),
        ErrorCase((p,), {"base": 1}, ValueError, "base must not be 1", "base 1"),
        ErrorCase((p,), {"base": -2.0}, ValueError, "base must be a positive", "negative base"),
    ]


# --------------------------------------------------------------------------------------------
def _two_distributions(p, q, axis):
    """Checks for a pair of distributions; `axis` counts in their broadcast shape."""
    xp = v.namespace(p=p, q=q)
    for name, x in (("p", p), ("q", q)):
        v.floating(xp, x, name)
        v.min_ndim(x, 1, name)
    v.same_dtype(p, q, "p and q")
    shape = v.broadcastable(p, q, "p and q")
    axis = v.axis_of_shape(shape, axis, "p and q (broadcast)")
    v.nonnegative(xp, p, "p")
    v.nonnegative(xp, q, "q")
    return xp, axis


@equation(
    chapter="probability",
    latex=r"H(P, Q) = -\sum_x P(x)\log Q(x)",
    seeds=("000", "002 §2.2.2", "004"),
    oracle="mpmath",
    identities=(
        Identity("gibbs", "H(P, Q) ≥ H(P)", "P"),
        Identity("one_hot", "a one-hot P at y gives −log Q(y)", "SP"),
        Identity("gradient", "∂H/∂Qᵢ = −Pᵢ/Qᵢ", "D"),
    ),
)
def cross_entropy(p, q, /, *, axis=-1):
    r"""Cross-entropy of Q relative to P: the expected code length coding P with Q's code.

    .. math:: H(P, Q) = -\sum_x P(x) \log Q(x), \qquad 0 \log Q = 0

    Shapes: p and q broadcastable, (..., n, ...) → broadcast shape without `axis`.
    Q(x) = 0 where P(x) > 0 gives +∞. Source: 002 §2.2.2.
    """
    xp, axis = _two_distributions(p, q, axis)
    return -xp.sum(_xlogy(xp, p, q), axis=axis)


def _pq_samples(xp, dtype, device):
    return [
        Sample((_a(xp, [0.5, 0.5], dtype, device), _a(xp, [0.9, 0.1], dtype, device)), {},
               "two coins"),
        Sample((_a(xp, [0.0, 1.0, 0.0], dtype, device),
                _a(xp, [[0.2, 0.3, 0.5], [0.1, 0.8, 0.1]], dtype, device)), {},
               "one-hot P broadcast over a batch of Q"),
    ]


samples(cross_entropy)(_pq_samples)


def _pq_errors(xp, dtype, device):
    p = _a(xp, [0.5, 0.5], dtype, device)
    return [
        *_distribution_errors(xp, dtype, device, extra=(_a(xp, [0.2, 0.3, 0.5], dtype, device),)),
        ErrorCase((p, _a(xp, [0.2, 0.3, 0.5], dtype, device)), {}, ValueError,
                  "broadcastable shapes", "mismatched lengths"),
        ErrorCase((p, _a(xp, [0.5, -0.5], dtype, device)), {}, ValueError,
                  "q must be non-negative", "negative q"),
    ]


errors(cross_entropy)(_pq_errors)


@equation(
    chapter="probability",
    latex=r"D_{\mathrm{KL}}(P\,\|\,Q) = \sum_x P(x)\log\frac{P(x)}{Q(x)}",
    seeds=("002 §2.2.2", "004"),
    oracle="mpmath",
    identities=(
        Identity("gibbs", "D_KL ≥ 0, and = 0 when P = Q", "P"),
        Identity("decomposition", "D_KL(P‖Q) = H(P, Q) − H(P)", "SP"),
        Identity("asymmetric", "D_KL(P‖Q) ≠ D_KL(Q‖P) for some pair (exhibited)", "P"),
        Identity("gradient", "∂D/∂Qᵢ = −Pᵢ/Qᵢ", "D"),
    ),
)
def kl_divergence(p, q, /, *, axis=-1):
    r"""Kullback–Leibler divergence of Q from P (relative entropy).

    .. math:: D_{\mathrm{KL}}(P \,\|\, Q) = \sum_x P(x) \bigl(\log P(x) - \log Q(x)\bigr)

    Written as a difference of logs, not log of a ratio, so P/Q cannot overflow.
    Shapes: as `cross_entropy`. Source: 002 §2.2.2.
    """
    xp, axis = _two_distributions(p, q, axis)
    return xp.sum(_xlogy(xp, p, p) - _xlogy(xp, p, q), axis=axis)


samples(kl_divergence)(_pq_samples)
errors(kl_divergence)(_pq_errors)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="probability",
    latex=r"\operatorname{PPL} = \exp\Bigl(-\frac1N\sum_{n=1}^N \log Q(t_n)\Bigr)",
    seeds=("002 §2.2.3",),
    oracle="mpmath",
    identities=(
        Identity("uniform_is_vocab", "a uniform model over V tokens has perplexity V", "SP"),
        Identity("exp_cross_entropy", "equals exp of the mean cross-entropy", "SP"),
        Identity("gradient", "autograd equals the SymPy derivative and central differences", "D"),
    ),
)
def perplexity(log_probs, /, *, axis=-1):
    r"""Perplexity: exp of the mean negative log-probability the model gave the observed tokens.

    .. math:: \operatorname{PPL} = \exp\Bigl(-\frac{1}{N}\sum_{n=1}^{N} \log Q(t_n)\Bigr)

    Shapes: log_probs (..., N, ...) (natural logs, each ≤ 0) → without `axis`.
    Source: 002 §2.2.3.
    """
    xp, axis = _float_input(log_probs, "log_probs", axis)
    v.check_values(xp, log_probs, lambda a: a > 0, "log_probs must be ≤ 0 (natural logs of "
                   "probabilities); it holds positive values")
    return xp.exp(-xp.mean(log_probs, axis=axis))


@samples(perplexity)
def _(xp, dtype, device):
    return [Sample((_a(xp, [math.log(0.5), math.log(0.25), math.log(0.125)], dtype, device),), {},
                   "three tokens")]


@errors(perplexity)
def _(xp, dtype, device):
    return [
        ErrorCase((_a(xp, [-1.0, 0.5], dtype, device),), {}, ValueError, "must be ≤ 0",
                  "a positive log-probability"),
        *_common_errors(xp, dtype, device)[:3],
    ]


# --------------------------------------------------------------------------------------------
@equation(
    chapter="probability",
    latex=r"P(\theta\mid D) = \frac{P(D\mid\theta)\,P(\theta)}{\sum_{\theta'}"
    r" P(D\mid\theta')\,P(\theta')}",
    seeds=("002 §2.3",),
    oracle="mpmath",
    identities=(
        Identity("sums_to_one", "the posterior sums to 1", "SP"),
        Identity("uniform_prior", "a uniform prior gives the normalised likelihood", "SP"),
        Identity("map", "argmax posterior = argmax (log L + log π)", "P"),
        Identity("gradient", "autograd equals the SymPy derivative and central differences", "D"),
    ),
)
def bayes_posterior(likelihood, prior, /, *, axis=-1):
    r"""Bayes' rule over a discrete set of hypotheses along `axis`.

    .. math:: P(\theta \mid D) = \frac{P(D \mid \theta) P(\theta)}
              {\sum_{\theta'} P(D \mid \theta') P(\theta')}

    Shapes: likelihood and prior broadcastable (..., n, ...) → broadcast shape.
    Both non-negative. If every product is 0 the posterior is undefined (NaN).
    Source: 002 §2.3.
    """
    xp = v.namespace(likelihood=likelihood, prior=prior)
    for name, x in (("likelihood", likelihood), ("prior", prior)):
        v.floating(xp, x, name)
        v.min_ndim(x, 1, name)
    v.same_dtype(likelihood, prior, "likelihood and prior")
    shape = v.broadcastable(likelihood, prior, "likelihood and prior")
    axis = v.axis_of_shape(shape, axis, "likelihood and prior (broadcast)")
    v.nonnegative(xp, likelihood, "likelihood")
    v.nonnegative(xp, prior, "prior")
    joint = likelihood * prior
    return joint / xp.sum(joint, axis=axis, keepdims=True)


@samples(bayes_posterior)
def _(xp, dtype, device):
    return [Sample((_a(xp, [[0.9, 0.2], [0.1, 0.8]], dtype, device),
                    _a(xp, [0.01, 0.99], dtype, device)), {}, "rare disease, two tests")]


@errors(bayes_posterior)
def _(xp, dtype, device):
    like = _a(xp, [0.9, 0.2], dtype, device)
    return [
        ErrorCase((like, _a(xp, [0.5, -0.5], dtype, device)), {}, ValueError,
                  "prior must be non-negative", "negative prior"),
        ErrorCase((like, _a(xp, [0.2, 0.3, 0.5], dtype, device)), {}, ValueError,
                  "broadcastable shapes", "mismatched lengths"),
        ErrorCase((_a(xp, [1, 0], xp.int64, device), like), {}, TypeError,
                  "real floating dtype", "integer likelihood"),
    ]


# --------------------------------------------------------------------------------------------
@equation(
    chapter="probability",
    latex=r"\mathcal N(x;\mu,\sigma) = \frac{1}{\sigma\sqrt{2\pi}}"
    r"\exp\Bigl(-\frac{(x-\mu)^2}{2\sigma^2}\Bigr)",
    seeds=("002 §2.3", "003"),
    oracle="mpmath",
    identities=(
        Identity("formula", "the code equals the textbook density", "S"),
        Identity("integrates_to_one", "∫ pdf dx ≈ 1 (trapezoid over ±12σ)", "P"),
        Identity("symmetric", "pdf(μ + d) = pdf(μ − d)", "SP"),
        Identity("gradient", "d pdf/dx = −(x−μ)/σ² · pdf", "D"),
    ),
)
def normal_pdf(x, /, *, mean=0.0, std=1.0):
    r"""The Gaussian (normal) probability density.

    .. math:: \mathcal{N}(x; \mu, \sigma) = \frac{1}{\sigma\sqrt{2\pi}}
              \exp\!\Bigl(-\frac{(x-\mu)^2}{2\sigma^2}\Bigr)

    Shapes: x any shape → same shape; `mean` and `std` are Python numbers (std > 0).
    Source: 002 §2.3 (Gaussian prior), 003 (distributions).
    """
    xp = v.namespace(x=x)
    v.floating(xp, x, "x")
    if isinstance(mean, bool) or not isinstance(mean, (int, float)) or not math.isfinite(mean):
        raise ValueError(f"mean must be a finite real number, got {mean!r}")
    std = v.positive_number(std, "std")
    u = (x - mean) / std
    return xp.exp(-0.5 * u * u) / (std * math.sqrt(2.0 * math.pi))


@samples(normal_pdf)
def _(xp, dtype, device):
    return [Sample((_a(xp, [-1.0, 0.0, 2.5], dtype, device),), {}, "standard"),
            Sample((_a(xp, [[1.0, 3.0]], dtype, device),), {"mean": 1.0, "std": 2.0}, "shifted")]


@errors(normal_pdf)
def _(xp, dtype, device):
    x = _a(xp, [0.0], dtype, device)
    return [
        ErrorCase((x,), {"std": 0.0}, ValueError, "std must be a positive", "zero std"),
        ErrorCase((x,), {"std": -1.0}, ValueError, "std must be a positive", "negative std"),
        ErrorCase((_a(xp, [0, 1], xp.int64, device),), {}, TypeError, "real floating dtype",
                  "integer x"),
        ErrorCase((x,), {"mean": math.nan}, ValueError, "mean must be a finite", "NaN mean"),
    ]
