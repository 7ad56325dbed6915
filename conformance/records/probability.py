"""Records of `spec/probability.py`: sample, reference and error inputs, derivative cases and
ulp budgets.
"""

from __future__ import annotations

import math

from conformance.derivatives import random_args
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
from spec.probability import (
    bayes_posterior,
    cross_entropy,
    entropy,
    kl_divergence,
    log_softmax,
    logsumexp,
    normal_pdf,
    perplexity,
    softmax,
    softmax_jacobian,
    softmax_vjp,
)


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
        Sample((_a(xp, [1e4, -1e4, 0.0], dtype, device),), {}, "±1e4 logits",
               proves=("extreme_logits",)),
        Sample((_a(xp, [-math.inf, 0.0, 1.0], dtype, device),), {}, "a −∞ logit",
               proves=("neg_inf_logit",)),
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


@samples(log_softmax)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, 2.0, 3.0], dtype, device),), {}, "vector"),
        Sample((_a(xp, [[0.5, -1.0], [2.0, 0.0]], dtype, device),), {"axis": 0}, "axis 0"),
    ]


@references(log_softmax)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1e4, -1e4, 0.0], dtype, device),), {}, "softmax underflows to 0",
               proves=("finite_where_softmax_underflows",)),
        Sample((_a(xp, [-math.inf, 0.0], dtype, device),), {}, "a −∞ logit gives −∞"),
    ]


@errors(log_softmax)
def _(xp, dtype, device):
    return [*_common_errors(xp, dtype, device),
            ErrorCase(([1.0],), {}, TypeError, "z must be an array", "a list")]


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


@samples(entropy)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.5, 0.5], dtype, device),), {"base": 2}, "fair coin, bits"),
        Sample((_a(xp, [[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]], dtype, device),), {}, "batch"),
    ]


@references(entropy)
def _(xp, dtype, device):
    return [Sample((_a(xp, [1.0, 0.0, 0.0], dtype, device),), {}, "one-hot: 0·log 0 = 0"),
            Sample((_a(xp, [1 / 6] * 6, dtype, device),), {"base": 2}, "fair die",
                   proves=("bits",))]


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


samples(kl_divergence)(_pq_samples)


errors(kl_divergence)(_pq_errors)


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


# --------------------------------------------------------------------------------- tier D
derivative(
    DerivativeCase("softmax", softmax, random_args(("logits", (2, 3))),
                   closed=lambda xp, a, c: softmax_vjp(a[0], c)),
    DerivativeCase("softmax_vjp", softmax, random_args(("logits", (4,))),
                   closed=lambda xp, a, c: softmax_vjp(a[0], c)),
    DerivativeCase("softmax_jacobian", softmax, random_args(("logits", (3,))),
                   closed=lambda xp, a, c: xp.sum(softmax_jacobian(a[0]) * c[:, None], axis=0)),
    DerivativeCase("log_softmax", log_softmax, random_args(("logits", (2, 3))),
                   closed=lambda xp, a, c: c - softmax(a[0]) * xp.sum(c, axis=-1, keepdims=True)),
    DerivativeCase("logsumexp", logsumexp, random_args(("logits", (2, 3))),
                   closed=lambda xp, a, c: softmax(a[0]) * c[..., None]),
    DerivativeCase("entropy", entropy, random_args(("positive", (2, 3))),
                   closed=lambda xp, a, c: -(xp.log(a[0]) + 1) * c[..., None],
                   assumptions={"positive": True}),
    DerivativeCase("cross_entropy", cross_entropy,
                   random_args(("positive", (3,)), ("positive", (3,))), argnum=1,
                   closed=lambda xp, a, c: -a[0] / a[1] * c, assumptions={"positive": True}),
    DerivativeCase("kl_divergence", kl_divergence,
                   random_args(("positive", (3,)), ("positive", (3,))), argnum=1,
                   closed=lambda xp, a, c: -a[0] / a[1] * c, assumptions={"positive": True}),
    DerivativeCase("perplexity", perplexity, random_args(("logprob", (4,))),
                   # d PPL/dℓᵢ = −PPL/N (N = 4 log-probabilities)
                   closed=lambda xp, a, c: -perplexity(a[0]) / 4 * c + 0 * a[0]),
    DerivativeCase("bayes_posterior", bayes_posterior,
                   random_args(("positive", (3,)), ("positive", (3,))),
                   assumptions={"positive": True}),
    DerivativeCase("normal_pdf", normal_pdf, random_args(("real", (4,))),
                   kwargs={"mean": 0.5, "std": 1.5},
                   closed=lambda xp, a, c: -(a[0] - 0.5) / 1.5**2
                   * normal_pdf(a[0], mean=0.5, std=1.5) * c),
)


# --------------------------------------------------------------------------------- tier R
# The largest error against mpmath, in units in the last place of the dtype at the scale the
# oracle chooses (normwise for probabilities, absolute for logs). float32 runs may evaluate
# exp/log in float32 with ~1 ulp each plus the reduction's rounding (≤ log2(n) ulp pairwise,
# ≤ n sequential); the budgets are what the formulas' operation counts allow with n ≤ 64, not
# what was observed.
budget({
    "softmax": {"float32": 8, "float64": 8},
    "log_softmax": {"float32": 8, "float64": 8},
    "logsumexp": {"float32": 8, "float64": 8},
    "softmax_jacobian": {"float32": 16, "float64": 16},
    "softmax_vjp": {"float32": 32, "float64": 32},
    "entropy": {"float32": 64, "float64": 64},
    "cross_entropy": {"float32": 64, "float64": 64},
    "kl_divergence": {"float32": 64, "float64": 64},
    "perplexity": {"float32": 64, "float64": 64},
    "bayes_posterior": {"float32": 8, "float64": 8},
    "normal_pdf": {"float32": 8, "float64": 8},
})
