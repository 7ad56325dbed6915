"""Records of `spec/losses.py`: its sample, reference and error inputs.
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
from spec.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    empirical_risk,
    l2_penalty,
    mse,
    sequence_nll,
    softmax_cross_entropy,
    softmax_cross_entropy_grad,
)


def _ce_samples(xp, dtype, device):
    return [
        Sample((xp.asarray([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]], dtype=dtype, device=device),
                xp.asarray([0, 2], dtype=xp.int64, device=device)), {}, "batch of two"),
        Sample((xp.asarray([[2.0, 0.5], [1.0, 0.1], [0.0, 3.0]], dtype=dtype, device=device),
                xp.asarray([1, 0], dtype=xp.int64, device=device)), {"axis": 0},
               "classes along axis 0"),
    ]


samples(softmax_cross_entropy)(_ce_samples)


@references(softmax_cross_entropy)
def _(xp, dtype, device):
    return [
        Sample((xp.asarray([[1e4, -1e4, 0.0]], dtype=dtype, device=device),
                xp.asarray([1], dtype=xp.int64, device=device)), {"reduction": "none"},
               "±1e4 logits, wrong class: loss 2e4"),
        Sample((xp.asarray([[1e4, -1e4, 0.0]], dtype=dtype, device=device),
                xp.asarray([0], dtype=xp.int64, device=device)), {"reduction": "none"},
               "±1e4 logits, right class: loss 0"),
        Sample((xp.asarray([[-math.inf, 0.0]], dtype=dtype, device=device),
                xp.asarray([0], dtype=xp.int64, device=device)), {"reduction": "none"},
               "−∞ logit on the label: loss +∞"),
    ]


def _ce_errors(xp, dtype, device, reductions=True):
    z = xp.asarray([[2.0, 1.0, 0.1]], dtype=dtype, device=device)
    y = xp.asarray([0], dtype=xp.int64, device=device)
    cases = [
        ErrorCase((z, xp.asarray([0.0], dtype=dtype, device=device)), {}, TypeError,
                  "labels must have an integer dtype", "float labels"),
        ErrorCase((z, xp.asarray([3], dtype=xp.int64, device=device)), {}, ValueError,
                  r"class indices in \[0, 3\)", "label out of range"),
        ErrorCase((z, xp.asarray([-1], dtype=xp.int64, device=device)), {}, ValueError,
                  r"class indices in \[0, 3\)", "negative label"),
        ErrorCase((z, xp.asarray([0, 1], dtype=xp.int64, device=device)), {}, ValueError,
                  "labels must have the shape of logits without the class axis",
                  "labels of the wrong shape"),
        ErrorCase((xp.asarray([[1, 2]], dtype=xp.int64, device=device), y), {}, TypeError,
                  "logits must have a real floating dtype", "integer logits"),
    ]
    if reductions:
        cases.append(ErrorCase((z, y), {"reduction": "avg"}, ValueError,
                               "reduction must be one of", "unknown reduction"))
    return cases


errors(softmax_cross_entropy)(_ce_errors)


samples(softmax_cross_entropy_grad)(_ce_samples)


errors(softmax_cross_entropy_grad)(_ce_errors)


@references(softmax_cross_entropy_grad)
def _(xp, dtype, device):
    return [
        Sample((xp.asarray([[50.0, 0.0, 0.0]], dtype=dtype, device=device),
                xp.asarray([0], dtype=xp.int64, device=device)), {},
               "one dominant logit on the label: s_y − 1 cancels"),
        Sample((xp.asarray([[1e4, -1e4, 0.0]], dtype=dtype, device=device),
                xp.asarray([2], dtype=xp.int64, device=device)), {}, "±1e4 logits"),
    ]


def _other_float(xp, dtype):
    """The floating dtype that is not `dtype` (for dtype-mismatch error inputs)."""
    return xp.float64 if dtype == xp.float32 else xp.float32


@samples(mse)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, 2.0, 3.0], dtype, device), _a(xp, [1.5, 2.0, 2.0], dtype, device)),
               {}, "vector, mean"),
        Sample((_a(xp, [[0.5, -1.0], [2.0, 0.25]], dtype, device),
                _a(xp, [[0.0, 1.0], [2.0, -0.75]], dtype, device)), {"reduction": "sum"},
               "matrix, sum"),
        Sample((_a(xp, [[0.5, -1.0], [2.0, 0.25]], dtype, device),
                _a(xp, [[0.0, 1.0], [2.0, -0.75]], dtype, device)), {"reduction": "none"},
               "matrix, none"),
    ]


@references(mse)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1e15, -3e15], dtype, device), _a(xp, [-1e15, 1e15], dtype, device)),
               {}, "large values"),
        Sample((_a(xp, [1.0, 1.0 + 2.0**-20], dtype, device), _a(xp, [1.0, 1.0], dtype, device)),
               {"reduction": "none"}, "tiny differences"),
        Sample((_a(xp, [math.inf, 0.0], dtype, device), _a(xp, [0.0, 1.0], dtype, device)),
               {"reduction": "none"}, "an infinite prediction gives +∞"),
        Sample((_a(xp, [math.nan, 0.0], dtype, device), _a(xp, [0.0, 1.0], dtype, device)),
               {}, "NaN propagates"),
    ]


def _pair_errors(xp, dtype, device, first: str, second: str, good_first, good_second):
    return [
        ErrorCase((good_first, _a(xp, [[0.0], [1.0]], dtype, device)), {}, ValueError,
                  f"{first} and {second} must have the same shape", "shapes (2,) and (2, 1)"),
        ErrorCase((_a(xp, [1, 0], xp.int64, device), good_second), {}, TypeError,
                  f"{first} must have a real floating dtype", f"integer {first}"),
        ErrorCase((good_first, _a(xp, [1, 0], xp.int64, device)), {}, TypeError,
                  f"{second} must have a real floating dtype", f"integer {second}"),
        ErrorCase((good_first, _a(xp, [0.0, 1.0], _other_float(xp, dtype), device)), {},
                  TypeError, f"{first} and {second} must have the same dtype",
                  "float32 against float64"),
        ErrorCase((good_first, [0.0, 1.0]), {}, TypeError, f"{second} must be an array",
                  f"list {second}"),
    ]


@errors(mse)
def _(xp, dtype, device):
    y_hat, y = _a(xp, [1.0, 2.0], dtype, device), _a(xp, [1.0, 0.0], dtype, device)
    return [
        *_pair_errors(xp, dtype, device, "y_hat", "y", y_hat, y),
        ErrorCase((y_hat, y), {"reduction": "avg"}, ValueError, "reduction must be one of",
                  "unknown reduction"),
    ]


def _bce_samples(xp, dtype, device):
    return [
        Sample((_a(xp, [0.9, 0.2, 0.5], dtype, device), _a(xp, [1.0, 0.0, 1.0], dtype, device)),
               {}, "hard targets"),
        Sample((_a(xp, [[0.7, 0.1], [0.35, 0.999]], dtype, device),
                _a(xp, [[0.25, 0.5], [0.35, 1.0]], dtype, device)), {}, "soft targets"),
    ]


samples(binary_cross_entropy)(_bce_samples)


@references(binary_cross_entropy)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.0, 1.0, 0.0, 1.0], dtype, device),
                _a(xp, [0.0, 1.0, 1.0, 0.0], dtype, device)), {},
               "p ∈ {0, 1}: 0 when right, +∞ when wrong"),
        Sample((_a(xp, [1e-30, 1e-7, 1.0 - 2.0**-24], dtype, device),
                _a(xp, [0.0, 0.5, 1.0], dtype, device)), {}, "p near 0 and near 1"),
        Sample((_a(xp, [math.nan, 0.5], dtype, device), _a(xp, [1.0, 0.5], dtype, device)), {},
               "NaN propagates"),
    ]


@errors(binary_cross_entropy)
def _(xp, dtype, device):
    p, y = _a(xp, [0.5, 0.25], dtype, device), _a(xp, [1.0, 0.0], dtype, device)
    return [
        *_pair_errors(xp, dtype, device, "p", "y", p, y),
        ErrorCase((_a(xp, [1.5, 0.5], dtype, device), y), {}, ValueError,
                  r"p must hold probabilities in \[0, 1\]", "p above 1"),
        ErrorCase((_a(xp, [-0.1, 0.5], dtype, device), y), {}, ValueError,
                  r"p must hold probabilities in \[0, 1\]", "negative p"),
        ErrorCase((p, _a(xp, [2.0, 0.0], dtype, device)), {}, ValueError,
                  r"y must hold targets in \[0, 1\]", "target 2"),
    ]


@samples(binary_cross_entropy_with_logits)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [2.0, -1.0, 0.0], dtype, device), _a(xp, [1.0, 0.0, 1.0], dtype, device)),
               {}, "hard targets"),
        Sample((_a(xp, [[0.5, -3.0], [4.0, 0.25]], dtype, device),
                _a(xp, [[0.25, 0.5], [0.75, 1.0]], dtype, device)), {}, "soft targets"),
    ]


@references(binary_cross_entropy_with_logits)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1000.0, -1000.0, 1000.0, -1000.0], dtype, device),
                _a(xp, [1.0, 0.0, 0.0, 1.0], dtype, device)), {},
               "|z| = 1000: e^{-1000} when right, 1000 when wrong"),
        Sample((_a(xp, [1000.0, -1000.0, 30.0, -30.0], dtype, device),
                _a(xp, [0.5, 0.25, 1.0, 0.0], dtype, device)), {},
               "|z| = 1000 with soft targets; tiny losses at |z| = 30"),
        Sample((_a(xp, [math.inf, -math.inf, math.inf, math.nan], dtype, device),
                _a(xp, [1.0, 0.0, 0.5, 1.0], dtype, device)), {},
               "infinite logits: 0 when right, +∞ otherwise; NaN propagates"),
    ]


@errors(binary_cross_entropy_with_logits)
def _(xp, dtype, device):
    z, y = _a(xp, [0.5, -2.0], dtype, device), _a(xp, [1.0, 0.0], dtype, device)
    return [
        *_pair_errors(xp, dtype, device, "z", "y", z, y),
        ErrorCase((z, _a(xp, [1.0, -1.0], dtype, device)), {}, ValueError,
                  r"y must hold targets in \[0, 1\]", "target −1 (a ±1 label)"),
    ]


@samples(sequence_nll)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [[2.0, 0.5, -1.0], [0.0, 1.0, 3.0], [1.0, 1.0, 1.0], [-2.0, 0.0, 2.0]],
                   dtype, device), _a(xp, [0, 2, 1, 0], xp.int64, device)), {},
               "one sequence, T = 4, V = 3"),
        Sample((_a(xp, [[[0.5, -0.5], [1.5, 0.0]], [[0.0, 0.0], [-1.0, 2.0]]], dtype, device),
                _a(xp, [[1, 0], [0, 1]], xp.int64, device)), {}, "batch of two, T = 2, V = 2"),
    ]


@references(sequence_nll)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [[1e4, -1e4, 0.0], [1e4, -1e4, 0.0]], dtype, device),
                _a(xp, [0, 1], xp.int64, device)), {}, "±1e4 logits: 0 + 2e4"),
        Sample((_a(xp, [[[3.0, 1.0]]], dtype, device)[:, :0, :],
                _a(xp, [[1]], xp.int64, device)[:, :0]), {}, "T = 0: the empty product"),
    ]


@errors(sequence_nll)
def _(xp, dtype, device):
    z = _a(xp, [[2.0, 1.0, 0.1], [0.0, 1.0, 2.0]], dtype, device)
    t = _a(xp, [0, 2], xp.int64, device)
    return [
        ErrorCase((z, _a(xp, [0.0, 2.0], dtype, device)), {}, TypeError,
                  "tokens must have an integer dtype", "float tokens"),
        ErrorCase((z, _a(xp, [0, 3], xp.int64, device)), {}, ValueError,
                  r"token ids in \[0, 3\)", "token id out of range"),
        ErrorCase((z, _a(xp, [0, 1, 2], xp.int64, device)), {}, ValueError,
                  "tokens must have the shape of logits without the vocabulary axis",
                  "T of tokens differs"),
        ErrorCase((_a(xp, [2.0, 1.0, 0.1], dtype, device), t[:1]), {}, ValueError,
                  r"logits must have at least 2 dimension", "logits without a time axis"),
        ErrorCase((_a(xp, [[1, 2], [3, 4]], xp.int64, device), t), {}, TypeError,
                  "logits must have a real floating dtype", "integer logits"),
    ]


@samples(l2_penalty)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [[0.5, -1.0, 2.0], [0.0, 3.0, -0.25]], dtype, device),),
               {"weight": 0.01}, "one matrix"),
        Sample(([_a(xp, [[1.0, -2.0], [0.5, 0.0]], dtype, device),
                 _a(xp, [0.1, -0.3], dtype, device),
                 _a(xp, [[2.0, 1.0]], dtype, device)],), {"weight": 0.5},
               "two matrices and a bias vector"),
        Sample((_a(xp, [1.0, 2.0], dtype, device),), {"weight": 0.0}, "weight 0"),
    ]


@references(l2_penalty)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1e15, -2e15, 3.0], dtype, device),), {"weight": 1e-4},
               "large weights"),
        Sample((_a(xp, [[math.inf, 1.0]], dtype, device),), {"weight": 0.1},
               "an infinite weight gives +∞"),
    ]


@errors(l2_penalty)
def _(xp, dtype, device):
    w = _a(xp, [[1.0, 2.0]], dtype, device)
    return [
        ErrorCase(([],), {"weight": 0.1}, ValueError, "params must hold at least one array",
                  "empty list"),
        ErrorCase((w,), {"weight": -0.1}, ValueError,
                  "weight must be a non-negative finite number", "negative weight"),
        ErrorCase((w,), {"weight": "0.1"}, TypeError, "weight must be a real number",
                  "string weight"),
        ErrorCase(([w, _a(xp, [1, 2], xp.int64, device)],), {"weight": 0.1}, TypeError,
                  r"params\[1\] must have a real floating dtype", "integer array"),
        ErrorCase(([w, [1.0, 2.0]],), {"weight": 0.1}, TypeError,
                  r"params\[1\] must be an array", "a list among the arrays"),
        ErrorCase(([w, _a(xp, [1.0], _other_float(xp, dtype), device)],), {"weight": 0.1},
                  TypeError, r"params\[0\] and params\[1\] must have the same dtype",
                  "two dtypes"),
        ErrorCase(({"W": w},), {"weight": 0.1}, TypeError,
                  "params must be an array or a list/tuple of arrays", "a dict"),
    ]


@samples(empirical_risk)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.5, 1.25, 0.0, 2.0], dtype, device),), {}, "four losses"),
        Sample((_a(xp, [[0.1, 0.2, 0.3], [1.0, 2.0, 3.0]], dtype, device),), {},
               "a batch of sequences"),
    ]


@references(empirical_risk)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1e30, 1e30, 3e30], dtype, device),), {}, "large losses"),
        Sample((_a(xp, [0.1, math.inf], dtype, device),), {}, "an infinite loss gives +∞"),
    ]


@errors(empirical_risk)
def _(xp, dtype, device):
    return [
        ErrorCase((_a(xp, [1.0], dtype, device)[:0],), {}, ValueError,
                  "losses must hold at least one example", "no examples"),
        ErrorCase((_a(xp, [1, 2], xp.int64, device),), {}, TypeError,
                  "losses must have a real floating dtype", "integer losses"),
        ErrorCase(([0.5, 1.0],), {}, TypeError, "losses must be an array", "a list"),
    ]


# --------------------------------------------------------------------------------- tier D
def _sce_sum(z, y):
    return softmax_cross_entropy(z, y, reduction="sum")


derivative(
    DerivativeCase("softmax_cross_entropy", _sce_sum,
                   random_args(("logits", (2, 3)), ("labels", (2,), 3)),
                   closed=lambda xp, a, c: softmax_cross_entropy_grad(a[0], a[1]) * c),
    DerivativeCase("softmax_cross_entropy_grad", _sce_sum,
                   random_args(("logits", (3, 4)), ("labels", (3,), 4)),
                   closed=lambda xp, a, c: softmax_cross_entropy_grad(a[0], a[1]) * c),
)


# --------------------------------------------------------------------------------- tier R
# As for softmax (records/probability.py): a few exp/log roundings and a reduction over ≤ 64
# terms, normwise.
budget({
    "softmax_cross_entropy": {"float32": 8, "float64": 8},
    "softmax_cross_entropy_grad": {"float32": 8, "float64": 8},
})
