r"""Losses: how wrong a prediction is, as one number to minimise.

This module holds, so far, the softmax cross-entropy and its gradient (§4 of EQUATIONS.md);
the other losses of the chapter join it with the learning-core chapters.
Sources: 000 (the softmax-CE gradient), 001 (cross-entropy), 002 §2.2.2, 004.
"""

from __future__ import annotations

import math

from . import _validate as v
from ._registry import ErrorCase, Identity, Sample, equation, errors, references, samples
from .probability import _shifted, softmax

__all__ = ["softmax_cross_entropy", "softmax_cross_entropy_grad"]

_REDUCTIONS = ("mean", "sum", "none")


def _logits_and_labels(logits, labels, axis):
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
    k = logits.shape[axis]
    v.check_values(xp, labels, lambda y: (y < 0) | (y >= k),
                   f"labels must be class indices in [0, {k}); some are out of range")
    return xp, axis


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
    latex=r"\mathcal L(z, y) = -\log\operatorname{softmax}(z)_y"
    r" = \operatorname{logsumexp}(z) - z_y",
    seeds=("000", "001", "002 §2.2.2", "004"),
    oracle="mpmath",
    identities=(
        Identity("is_cross_entropy", "equals cross_entropy(one_hot(y), softmax(z))", "SP"),
        Identity("extreme_logits", "finite and exact for logits ±1e4 in float32", "R"),
        Identity("random_init", "logits ≈ 0 over K classes give ≈ log K", "P"),
        Identity("gradient", "autograd through the loss equals softmax(z) − one_hot(y)", "D"),
    ),
)
def softmax_cross_entropy(logits, labels, /, *, axis=-1, reduction="mean"):
    r"""Cross-entropy of integer class labels under softmax(logits), from the logits directly.

    .. math:: \mathcal{L}(z, y) = -\log \operatorname{softmax}(z)_y
              = \log\sum_j e^{z_j - m} - (z_y - m)

    Fusing the log into the softmax avoids log(0) when softmax(z)_y underflows.
    Shapes: logits (..., K, ...) with K classes along `axis`; labels: integer class indices,
    the shape of logits without `axis`. reduction "mean" (default) and "sum" give a scalar,
    "none" the per-example losses. Source: 000, 001, 002 §2.2.2, 004.
    """
    v.choice(reduction, _REDUCTIONS, "reduction")
    xp, axis = _logits_and_labels(logits, labels, axis)
    shifted = _shifted(xp, logits, axis)
    mask = _one_hot_mask(xp, labels, logits.shape[axis], axis, logits.ndim)
    picked = xp.sum(xp.where(mask, shifted, xp.zeros_like(shifted)), axis=axis)
    lse = xp.log(xp.sum(xp.exp(shifted), axis=axis))
    return _reduce(xp, lse - picked, reduction)


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


@equation(
    chapter="losses",
    latex=r"\frac{\partial\mathcal L}{\partial z} = \operatorname{softmax}(z)"
    r" - \operatorname{onehot}(y)",
    seeds=("000", "002 §4.3"),
    oracle="mpmath",
    identities=(
        Identity("sympy_derivative",
                 "the SymPy derivative of the traced softmax_cross_entropy equals this", "S"),
        Identity("equals_autograd", "equals autograd and float64 central differences", "D"),
        Identity("rows_sum_to_zero", "each example's gradient sums to 0 over the classes", "SP"),
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
    `softmax_cross_entropy(..., reduction="mean")`. Source: 000.
    """
    v.choice(reduction, _REDUCTIONS, "reduction")
    xp, axis = _logits_and_labels(logits, labels, axis)
    mask = _one_hot_mask(xp, labels, logits.shape[axis], axis, logits.ndim)
    grad = softmax(logits, axis=axis) - xp.astype(mask, logits.dtype)
    if reduction == "mean":
        grad = grad / max(1, math.prod(labels.shape))
    return grad


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
