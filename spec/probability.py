r"""Probability and information: softmax and its relatives, entropy, divergences, Bayes.

Sources: 000 (softmax derivative), 001 (softmax, temperature, the max trick), 002 §2 (softmax,
entropy, cross-entropy, KL, perplexity, Bayes), 003, 004 (softmax and cross-entropy).
"""

from __future__ import annotations

import math

from . import _validate as v
from ._registry import ALL_FLOATS, Identity, Limit, equation

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
    dtypes=ALL_FLOATS,
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

    .. math:: \operatorname{softmax}(z)_i = \frac{e^{(z_i - m)/T}}{\sum_j e^{(z_j - m)/T}},
              \qquad m = \max_j z_j

    Subtracting the maximum changes nothing mathematically (the factor e^{−m/T} cancels) and
    keeps every exponent ≤ 0, so nothing overflows; the maximum is subtracted before dividing
    by T, so a small temperature cannot overflow z/T first. Temperature T > 0 sharpens (T < 1)
    or flattens (T > 1) the distribution.

    Shapes: z (..., n, ...) → same shape; n = z.shape[axis] ≥ 1. Dtypes: float16 and bfloat16
    are computed in float32 (the sum of n exponentials would overflow float16 past 65,504
    terms) and returned rounded once.
    Source: 002 §2.1.1 (definition and the max trick), 001 (temperature).
    """
    xp, axis = _float_input(z, "z", axis)
    temperature = v.positive_number(temperature, "temperature")
    z, dtype = v.widen(xp, z)
    shifted = _shifted(xp, z, axis)
    if temperature != 1.0:
        shifted = shifted / temperature
    e = xp.exp(shifted)
    return v.narrow(xp, e / xp.sum(e, axis=axis, keepdims=True), dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="probability",
    dtypes=ALL_FLOATS,
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
    z, dtype = v.widen(xp, z)
    shifted = _shifted(xp, z, axis)
    out = shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))
    return v.narrow(xp, out, dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="probability",
    dtypes=ALL_FLOATS,
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
    z, dtype = v.widen(xp, z)
    m = xp.max(z, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    out = m + xp.log(xp.sum(xp.exp(z - m), axis=axis, keepdims=True))
    return v.narrow(xp, out if keepdims else xp.squeeze(out, axis=axis), dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="probability",
    dtypes=ALL_FLOATS,
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
    z, dtype = v.widen(xp, z)
    s = xp.moveaxis(softmax(z, axis=axis), axis, -1)
    n = s.shape[-1]
    eye = xp.eye(n, dtype=s.dtype, device=v.device(s))
    return v.narrow(xp, s[..., :, None] * eye - s[..., :, None] * s[..., None, :], dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="probability",
    dtypes=ALL_FLOATS,
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
    v.same_dtype(z, g, "z and g")
    (z, g), dtype = v.widen(xp, z, g)
    s = softmax(z, axis=axis)
    return v.narrow(xp, s * (g - xp.sum(g * s, axis=axis, keepdims=True)), dtype)


# --------------------------------------------------------------------------------------------
def _distribution(xp_name: str, p, axis):
    xp, axis = _float_input(p, xp_name, axis)
    v.nonnegative(xp, p, xp_name)
    return xp, axis


@equation(
    chapter="probability",
    dtypes=ALL_FLOATS,
    seeds=("002 §2.2.1",),
    oracle="mpmath",
    identities=(
        Identity("one_hot_zero", "H = 0 for a one-hot distribution", "SP"),
        Identity("uniform_max", "H(uniform over n) = log n, the maximum over n outcomes", "SP"),
        Identity("bits", "base 2: a fair coin has 1 bit, a fair die log₂ 6 bits", "SPR"),
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
    if base is not None:
        base = v.positive_number(base, "base")
        if base == 1.0:
            raise ValueError("base must not be 1 (log 1 = 0)")
    p, dtype = v.widen(xp, p)
    h = -xp.sum(_xlogy(xp, p, p), axis=axis)
    if base is not None:
        h = h / math.log(base)
    return v.narrow(xp, h, dtype)


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
    dtypes=ALL_FLOATS,
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
    (p, q), dtype = v.widen(xp, p, q)
    return v.narrow(xp, -xp.sum(_xlogy(xp, p, q), axis=axis), dtype)


@equation(
    chapter="probability",
    dtypes=ALL_FLOATS,
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
    (p, q), dtype = v.widen(xp, p, q)
    return v.narrow(xp, xp.sum(_xlogy(xp, p, p) - _xlogy(xp, p, q), axis=axis), dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="probability",
    dtypes=ALL_FLOATS,
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
    log_probs, dtype = v.widen(xp, log_probs)
    return v.narrow(xp, xp.exp(-xp.mean(log_probs, axis=axis)), dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="probability",
    dtypes=ALL_FLOATS,
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
    Each factor is divided by its largest value first (the factors cancel in the ratio), so
    products of small likelihoods and priors (1e-23 · 1e-23 in float32) cannot underflow to
    0/0. Source: 002 §2.3.
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
    (likelihood, prior), dtype = v.widen(xp, likelihood, prior)
    axis = axis - len(shape)  # counted from the end, so it names the axis in both arrays
    joint = _scaled(xp, likelihood, axis) * _scaled(xp, prior, axis)
    return v.narrow(xp, joint / xp.sum(joint, axis=axis, keepdims=True), dtype)


def _scaled(xp, x, axis: int):
    """x divided by its largest value along `axis` (a negative index); an array too short to
    have that axis is constant along it and is divided by itself. A zero maximum is left as
    it is (its slice is all 0, so the posterior is 0/0 = NaN there, as the math says)."""
    if x.ndim < -axis:
        m = x
    else:
        m = xp.max(x, axis=axis, keepdims=True)
    return x / xp.where(m == 0, xp.ones_like(m), m)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="probability",
    dtypes=ALL_FLOATS,
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
    mean = v.real_number(mean, "mean")
    if not math.isfinite(mean):
        raise ValueError(f"mean must be a finite real number, got {mean!r}")
    std = v.positive_number(std, "std")
    x, dtype = v.widen(xp, x)
    u = (x - mean) / std
    return v.narrow(xp, xp.exp(-0.5 * u * u) / (std * math.sqrt(2.0 * math.pi)), dtype)


