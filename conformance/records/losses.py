"""Records of `spec/losses.py`: sample, reference and error inputs, derivative cases and ulp
budgets.
"""

from __future__ import annotations

import math

import numpy as np

from conformance.derivatives import held, like, random_args
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
               "±1e4 logits, wrong class: loss 2e4", proves=("extreme_logits",)),
        Sample((xp.asarray([[1e4, -1e4, 0.0]], dtype=dtype, device=device),
                xp.asarray([0], dtype=xp.int64, device=device)), {"reduction": "none"},
               "±1e4 logits, right class: loss 0", proves=("extreme_logits",)),
        Sample((xp.asarray([[-math.inf, 0.0]], dtype=dtype, device=device),
                xp.asarray([0], dtype=xp.int64, device=device)), {"reduction": "none"},
               "−∞ logit on the label: loss +∞"),
        *_narrow_label_samples(xp, dtype, device),
    ]


def _spread(k: int, rows: int = 2) -> list:
    """`rows` rows of k distinct logits in [−4, 4) (multiples of 1/4: exact in every dtype)."""
    return [[((31 * i + 7 * r) % 32) / 4 - 4 for i in range(k)] for r in range(rows)]


def _narrow_label_samples(xp, dtype, device):
    """Labels stored in narrow integer dtypes against more classes than the dtype's own
    comparison with K can hold: read as int64, they mean the classes they say (uint8 labels
    [5, 100] of 300 classes once gave 8.10 instead of the int64 answer on NumPy and Dask, a
    false "out of range" on torch and JAX, and an OverflowError on array-api-strict)."""
    z = xp.asarray(_spread(300), dtype=dtype, device=device)
    return [
        Sample((z, xp.asarray([5, 100], dtype=xp.uint8, device=device)), {"reduction": "none"},
               "uint8 labels [5, 100] of 300 classes", proves=("any_integer_width",)),
        Sample((z, xp.asarray([299, 127], dtype=xp.int16, device=device)), {},
               "int16 labels of 300 classes", proves=("any_integer_width",)),
        Sample((z, xp.asarray([299, 256], dtype=xp.uint16, device=device)), {"reduction": "sum"},
               "uint16 labels of 300 classes", proves=("any_integer_width",)),
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
        ErrorCase((z, xp.asarray([3], dtype=xp.uint8, device=device)), {}, ValueError,
                  r"class indices in \[0, 3\)", "uint8 label out of range"),
        ErrorCase((z, xp.asarray([-1], dtype=xp.int8, device=device)), {}, ValueError,
                  r"class indices in \[0, 3\)", "negative int8 label"),
        ErrorCase((z, xp.asarray([0], dtype=xp.bool, device=device)), {}, TypeError,
                  "labels must have an integer dtype", "boolean labels"),
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
        *_narrow_label_samples(xp, dtype, device),
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
        # 300² overflows float16 (65,504): squared in float32, the mean 22,501 is finite
        Sample((_a(xp, [300.0, 1.0, -2.0, 0.5], dtype, device),
                _a(xp, [0.0, 0.0, 0.0, 0.0], dtype, device)), {}, "squares past float16's range"),
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
               "p ∈ {0, 1}: 0 when right, +∞ when wrong", proves=("minimum_at_target",)),
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
               "|z| = 1000: e^{-1000} when right, 1000 when wrong",
               proves=("extreme_logits",)),
        Sample((_a(xp, [1000.0, -1000.0, 30.0, -30.0], dtype, device),
                _a(xp, [0.5, 0.25, 1.0, 0.0], dtype, device)), {},
               "|z| = 1000 with soft targets; tiny losses at |z| = 30",
               proves=("extreme_logits",)),
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
        # token ids as stored on disk (uint16 token streams), against a vocabulary larger than
        # a uint8 can count: read as int64, they are the tokens they say
        Sample((_a(xp, _spread(300, rows=3), dtype, device),
                _a(xp, [299, 256, 7], xp.uint16, device)), {}, "uint16 token ids, V = 300",
               proves=("any_integer_width",)),
        Sample((_a(xp, _spread(300, rows=3), dtype, device),
                _a(xp, [255, 100, 5], xp.uint8, device)), {}, "uint8 token ids, V = 300",
               proves=("any_integer_width",)),
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
        ErrorCase((z, _a(xp, [0, 3], xp.uint8, device)), {}, ValueError,
                  r"token ids in \[0, 3\)", "uint8 token id out of range"),
        ErrorCase((z, _a(xp, [0, -1], xp.int8, device)), {}, ValueError,
                  r"token ids in \[0, 3\)", "negative int8 token id"),
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
        # issue 12: options of any real number type (NumPy's scalars too)
        Sample((_a(xp, [1.0, -2.0], dtype, device),), {"weight": np.float32(0.5)},
               "a NumPy float32 weight"),
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
        ErrorCase((w,), {"weight": True}, TypeError, "weight must be a real number",
                  "a bool weight"),
        ErrorCase((w,), {"weight": np.True_}, TypeError, "weight must be a real number",
                  "a NumPy bool weight"),
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


def _draws(seed: int) -> dict:
    """The host inputs of this chapter's derivative cases at `seed`, drawn from one generator
    in a fixed order (each seed gives the same inputs as when the cases were first written)."""
    r = np.random.default_rng(seed)
    yh, y = r.normal(0, 2, (2, 3)), r.normal(0, 2, (2, 3))
    p, t = r.uniform(0.1, 0.9, (4,)), r.uniform(0, 1, (4,))
    t[0], t[1] = 0.0, 1.0  # hard targets take the 0·log branch
    a = r.uniform(0.2, 4.0, (4,))
    logits, tokens = r.normal(0, 2, (2, 3, 4)), r.integers(0, 4, (2, 3))
    A, B = r.normal(0, 1, (2, 3)), r.normal(0, 1, (3,))
    losses = r.normal(1, 1, (2, 3))
    return {"yh": yh, "y": y, "p": p, "t": t, "a": a, "logits": logits, "tokens": tokens,
            "A": A, "B": B, "losses": losses}


def _args(*names):
    """`make_args(seed)`: the named inputs of `_draws(seed)`."""
    def make_args(seed: int) -> list:
        d = _draws(seed)
        return [d[n] for n in names]

    return make_args


def _sigmoid_xp(xp, z):
    return 1 / (1 + xp.exp(-z))


def _bce_logits_neg(u, w):
    return binary_cross_entropy_with_logits(-u, w)


def _with_targets_held(seed: int) -> list[DerivativeCase]:
    """The cases that hold the targets y fixed (numbers in the SymPy trace, so the hard
    targets 0 and 1 take the code's 0·log branches): their closed forms need y, so each seed
    has its own case."""
    t = _draws(seed)["t"]
    return [
        DerivativeCase("binary_cross_entropy", held(binary_cross_entropy, {1: t}), _args("p"),
                       closed=lambda xp, g, c: (g[0] - like(g[0], t)) / (g[0] * (1 - g[0])) * c,
                       assumptions={"positive": True}, seeds=(seed,), label="y held"),
        DerivativeCase("binary_cross_entropy_with_logits",
                       held(binary_cross_entropy_with_logits, {1: t}), _args("a"),
                       closed=lambda xp, g, c: (_sigmoid_xp(xp, g[0]) - like(g[0], t)) * c,
                       assumptions={"positive": True}, seeds=(seed,), label="z>0, y held"),
        DerivativeCase("binary_cross_entropy_with_logits", held(_bce_logits_neg, {1: t}),
                       _args("a"),
                       closed=lambda xp, g, c: -(_sigmoid_xp(xp, -g[0]) - like(g[0], t)) * c,
                       assumptions={"positive": True}, seeds=(seed,), label="z<0, y held"),
    ]


_LAMBDA = 0.3


def _l2_list(u, w):
    return l2_penalty([u, w], weight=_LAMBDA)


def _l2_tuple(u, w):
    return l2_penalty((u, w), weight=_LAMBDA)


derivative(
    DerivativeCase("softmax_cross_entropy", _sce_sum,
                   random_args(("logits", (2, 3)), ("labels", (2,), 3)),
                   closed=lambda xp, a, c: softmax_cross_entropy_grad(a[0], a[1]) * c),
    DerivativeCase("softmax_cross_entropy_grad", _sce_sum,
                   random_args(("logits", (3, 4)), ("labels", (3,), 4)),
                   closed=lambda xp, a, c: softmax_cross_entropy_grad(a[0], a[1]) * c),
    DerivativeCase("mse", mse, _args("yh", "y"), argnum=0,
                   closed=lambda xp, g, c: 2 * (g[0] - g[1]) / 6 * c, label="y_hat"),
    DerivativeCase("mse", mse, _args("yh", "y"), argnum=1,
                   closed=lambda xp, g, c: -2 * (g[0] - g[1]) / 6 * c, label="y"),
    DerivativeCase("mse", mse, _args("yh", "y"), kwargs={"reduction": "none"},
                   closed=lambda xp, g, c: 2 * (g[0] - g[1]) * c, label="none"),
    *_with_targets_held(0),
    *_with_targets_held(1),
    DerivativeCase("sequence_nll", sequence_nll, _args("logits", "tokens"),
                   closed=lambda xp, g, c: softmax_cross_entropy_grad(g[0], g[1])
                   * c[:, None, None]),
    DerivativeCase("l2_penalty", _l2_list, _args("A", "B"), argnum=0,
                   closed=lambda xp, g, c: 2 * _LAMBDA * g[0] * c, label="W"),
    DerivativeCase("l2_penalty", _l2_tuple, _args("A", "B"), argnum=1,
                   closed=lambda xp, g, c: 2 * _LAMBDA * g[1] * c, label="b"),
    DerivativeCase("empirical_risk", empirical_risk, _args("losses"),
                   closed=lambda xp, g, c: xp.ones_like(g[0]) / 6 * c),
)


# --------------------------------------------------------------------------------- tier R
# As for softmax (records/probability.py): a few exp/log roundings and a reduction over ≤ 64
# terms, normwise.
budget({
    "softmax_cross_entropy": {"float32": 8, "float64": 8},
    "softmax_cross_entropy_grad": {"float32": 8, "float64": 8},
})

# The other losses, from the operation counts of the samples (n ≤ 8 elements per reduction;
# the scale of each measure is in oracles_losses.FLOORS):
# mse — subtraction, square (≤ 1.5 ulp relative per term), a sum of ≤ 8 non-negative terms
# (≤ 7 ulp sequential) and the division: 16. BCE — log/log1p (≤ 2 ulp each in float32
# libraries), 1 − y, two products and a sum of non-negative terms: 8. with-logits — |z|, exp,
# log1p, max + sum, two products, 1 − y and a sum, all on non-negative terms: 8.
# sequence_nll — T per-step cross-entropies (8 ulp of 1 each, absolute) summed: 8·T with
# T ≤ 4, so 32. l2_penalty — squares and sums of ≤ 6 terms and λ·: 16. empirical_risk — a
# mean of ≤ 6 terms, normwise: 8.
budget({
    "mse": {"float32": 16, "float64": 16},
    "binary_cross_entropy": {"float32": 8, "float64": 8},
    "binary_cross_entropy_with_logits": {"float32": 8, "float64": 8},
    "sequence_nll": {"float32": 32, "float64": 32},
    "l2_penalty": {"float32": 16, "float64": 16},
    "empirical_risk": {"float32": 8, "float64": 8},
})
