"""Records of `spec/linalg.py`: sample, reference and error inputs, derivative cases and ulp
budgets.
"""

from __future__ import annotations

import numpy as np

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
from spec.linalg import (
    cosine_similarity,
    dot,
    frobenius_norm,
    low_rank_approximation,
    norm,
    spectral_norm,
)

#: values whose squares overflow float16 (300² = 90,000 > 65,504), exact in every dtype; the
#: float32 and float64 extremes (1e200, 3e37) are infinite in float16
_F16_SQUARES = [300.0, 1.0, -2.0, 0.5]


@samples(dot)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, 2.0, 3.0], dtype, device), _a(xp, [4.0, -5.0, 6.0], dtype, device)),
               {}, "two vectors"),
        Sample((_a(xp, [[1.0, 0.5], [-2.0, 3.0], [0.25, 4.0]], dtype, device),
                _a(xp, [2.0, -1.0], dtype, device)), {}, "batch against one vector"),
        Sample((_a(xp, [[1.0, 0.5], [-2.0, 3.0]], dtype, device),
                _a(xp, [[2.0, 1.5], [0.5, -1.0]], dtype, device)), {"axis": 0}, "along axis 0"),
    ]


@references(dot)
def _(xp, dtype, device):
    big = 1e150 if dtype == xp.float64 else 1e18
    return [
        Sample((_a(xp, [1.0, 1e8, -1e8], dtype, device), _a(xp, [1.0, 1.0, 1.0], dtype, device)),
               {}, "cancellation to 1"),
        Sample((_a(xp, [big, -big], dtype, device), _a(xp, [big, big], dtype, device)), {},
               "huge products cancel to 0"),
        Sample((_a(xp, [float("inf"), 1.0], dtype, device), _a(xp, [1.0, 2.0], dtype, device)),
               {}, "an infinity propagates"),
        # 300² = 90,000 overflows float16 (largest 65,504); summed in float32 they cancel
        Sample((_a(xp, [300.0, 300.0, 0.5], dtype, device),
                _a(xp, [300.0, -300.0, 2.0], dtype, device)), {},
               "products overflow float16, cancel to 1"),
    ]


def _pair_errors(xp, dtype, device):
    x = _a(xp, [1.0, 2.0, 3.0], dtype, device)
    return [
        ErrorCase((x, _a(xp, [1.0, 2.0], dtype, device)), {}, ValueError,
                  "x and y must have broadcastable shapes", "mismatched lengths"),
        ErrorCase((_a(xp, [1, 2, 3], xp.int64, device), x), {}, TypeError,
                  "x must have a real floating dtype", "integer x"),
        ErrorCase((x, x), {"axis": 1}, ValueError, "axis 1 is out of range", "axis out of range"),
        ErrorCase((x, _a(xp, 1.0, dtype, device)), {}, ValueError,
                  "y must have at least 1 dimension", "0-d y"),
        ErrorCase((x, [1.0, 2.0, 3.0]), {}, TypeError, "y must be an array", "a list"),
    ]


errors(dot)(_pair_errors)


@samples(norm)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [3.0, -4.0], dtype, device),), {}, "3-4-5"),
        Sample((_a(xp, [[1.0, 2.0, 2.0], [0.5, -0.25, 1.5]], dtype, device),), {}, "batch"),
        Sample((_a(xp, [[1.0, 2.0], [2.0, -1.0], [0.0, 4.0]], dtype, device),),
               {"axis": 0, "keepdims": True}, "axis 0, keepdims"),
    ]


@references(norm)
def _(xp, dtype, device):
    f64 = dtype == xp.float64
    big, small = (1e200, 1e-200) if f64 else (3e37, 1e-30)
    return [
        Sample((_a(xp, [big, -big, big], dtype, device),), {}, "squares overflow",
               proves=("no_overflow",)),
        Sample((_a(xp, [small, small, -small, small], dtype, device),), {}, "squares underflow",
               proves=("no_overflow",)),
        Sample((_a(xp, [big, 1.0], dtype, device),), {}, "huge and tiny together",
               proves=("no_overflow",)),
        Sample((_a(xp, _F16_SQUARES, dtype, device),), {}, "squares overflow float16",
               proves=("no_overflow",)),
        Sample((_a(xp, [[0.0, 0.0], [0.0, 1.0]], dtype, device),), {}, "an all-zero row",
               proves=("special_values",)),
        Sample((_a(xp, [[float("inf"), 1.0], [float("nan"), 1.0]], dtype, device),), {},
               "∞ and NaN propagate", proves=("special_values",)),
        Sample((_a(xp, [[], []], dtype, device),), {}, "an empty axis gives 0",
               proves=("special_values",)),
    ]


@errors(norm)
def _(xp, dtype, device):
    x = _a(xp, [3.0, 4.0], dtype, device)
    return [
        ErrorCase((_a(xp, [3, 4], xp.int64, device),), {}, TypeError,
                  "x must have a real floating dtype", "integer x"),
        ErrorCase((x,), {"axis": -2}, ValueError, "axis -2 is out of range", "axis out of range"),
        ErrorCase((_a(xp, 3.0, dtype, device),), {}, ValueError, "at least 1 dimension",
                  "0-d x"),
        ErrorCase(([3.0, 4.0],), {}, TypeError, "x must be an array", "a list"),
    ]


@samples(cosine_similarity)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, 2.0, 3.0], dtype, device), _a(xp, [4.0, -5.0, 6.0], dtype, device)),
               {}, "two vectors"),
        Sample((_a(xp, [[1.0, 0.0], [1.0, 1.0], [-2.0, 0.5]], dtype, device),
                _a(xp, [1.0, 0.0], dtype, device)), {}, "batch against one query"),
        Sample((_a(xp, [[1.0, 0.5], [-2.0, 3.0]], dtype, device),
                _a(xp, [[2.0, 1.5], [0.5, -1.0]], dtype, device)), {"axis": 0}, "along axis 0"),
    ]


@references(cosine_similarity)
def _(xp, dtype, device):
    big = 1e200 if dtype == xp.float64 else 1e30
    return [
        Sample((_a(xp, [big, big], dtype, device), _a(xp, [big, -0.5 * big], dtype, device)), {},
               "‖x‖‖y‖ overflows", proves=("no_overflow",)),
        Sample((_a(xp, [0.0, 0.0], dtype, device), _a(xp, [1.0, 2.0], dtype, device)), {},
               "a zero vector gives 0"),
        Sample((_a(xp, [1.0, 2.0, -3.0], dtype, device), _a(xp, [2.0, 4.0, -6.0], dtype, device)),
               {}, "parallel vectors give 1"),
    ]


@errors(cosine_similarity)
def _(xp, dtype, device):
    x = _a(xp, [1.0, 2.0, 3.0], dtype, device)
    return [
        *_pair_errors(xp, dtype, device),
        ErrorCase((x, x), {"eps": 0.0}, ValueError, "eps must be a positive", "zero eps"),
        ErrorCase((x, x), {"eps": -1e-8}, ValueError, "eps must be a positive", "negative eps"),
    ]


@samples(frobenius_norm)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [[1.0, 2.0], [3.0, 4.0]], dtype, device),), {}, "2×2"),
        Sample((_a(xp, [[[1.0, -2.0, 2.0]], [[0.5, 0.25, -1.0]]], dtype, device),), {},
               "a stack of two 1×3"),
    ]


@references(frobenius_norm)
def _(xp, dtype, device):
    big = 1e200 if dtype == xp.float64 else 3e37
    return [
        Sample((_a(xp, [[big, big], [-big, big]], dtype, device),), {}, "squares overflow",
               proves=("no_overflow",)),
        Sample((_a(xp, [[0.0, 0.0], [0.0, 0.0]], dtype, device),), {}, "zero matrix"),
        Sample((_a(xp, [_F16_SQUARES[:2], _F16_SQUARES[2:]], dtype, device),), {},
               "squares overflow float16", proves=("no_overflow",)),
    ]


@errors(frobenius_norm)
def _(xp, dtype, device):
    return [
        ErrorCase((_a(xp, [1.0, 2.0], dtype, device),), {}, ValueError,
                  "W must have at least 2 dimension", "a vector"),
        ErrorCase((_a(xp, [[1, 2]], xp.int64, device),), {}, TypeError,
                  "W must have a real floating dtype", "integer W"),
        ErrorCase(([[1.0, 2.0]],), {}, TypeError, "W must be an array", "a list"),
    ]


@samples(low_rank_approximation)
def _(xp, dtype, device):
    w = [[4.0, 1.0, 0.5], [1.0, 3.0, -1.0], [0.5, -1.0, 2.0], [0.0, 1.0, 1.0]]
    return [
        Sample((_a(xp, w, dtype, device),), {"rank": 1}, "4×3, rank 1"),
        Sample((_a(xp, w, dtype, device),), {"rank": 2}, "4×3, rank 2"),
        Sample((_a(xp, [[[3.0, 0.0], [0.0, 1.0]], [[2.0, 1.0], [1.0, 2.0]]], dtype, device),),
               {"rank": 1}, "a stack of 2×2"),
    ]


_NAN, _INF = float("nan"), float("inf")


@references(low_rank_approximation)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype, device),), {"rank": 2},
               "full rank gives W back"),
        Sample((_a(xp, [[1.0, 2.0], [3.0, 4.0]], dtype, device),), {"rank": 0}, "rank 0 gives 0"),
        Sample((_a(xp, [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 1.0, 1.0]], dtype, device),),
               {"rank": 1}, "rank-2 matrix, rank 1"),
        # issue 12: NumPy raised LinAlgError and torch its _LinAlgError on these
        Sample((_a(xp, [[_NAN, 1.0], [2.0, 3.0], [0.0, 1.0]], dtype, device),), {"rank": 1},
               "a NaN entry gives NaN", proves=("special_values",)),
        Sample((_a(xp, [[_INF, 1.0], [2.0, 3.0]], dtype, device),), {"rank": 2},
               "an infinite entry gives NaN", proves=("special_values",)),
        Sample((_a(xp, [[[3.0, 0.0], [0.0, 1.0]], [[1.0, -_INF], [_NAN, 1.0]]], dtype, device),),
               {"rank": 1}, "a stack: only the non-finite matrix is NaN",
               proves=("special_values",)),
    ]


@errors(low_rank_approximation)
def _(xp, dtype, device):
    w = _a(xp, [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype, device)
    return [
        ErrorCase((w,), {"rank": 3}, ValueError, r"rank must be in \[0, min\(m, n\)\] = \[0, 2\]",
                  "rank above min(m, n)"),
        ErrorCase((w,), {"rank": -1}, ValueError, r"rank must be in \[0, min\(m, n\)\]",
                  "negative rank"),
        ErrorCase((w,), {"rank": 1.5}, TypeError, "rank must be an integer", "float rank"),
        ErrorCase((_a(xp, [1.0, 2.0], dtype, device),), {"rank": 1}, ValueError,
                  "W must have at least 2 dimension", "a vector"),
        ErrorCase((_a(xp, [[1, 2], [3, 4]], xp.int64, device),), {"rank": 1}, TypeError,
                  "W must have a real floating dtype", "integer W"),
        ErrorCase((w[:0, :],), {"rank": 0}, ValueError, "W must be a non-empty matrix",
                  "empty matrix"),
    ]


@samples(spectral_norm)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [[3.0], [4.0], [0.0]], dtype, device),), {}, "a column: its norm"),
        Sample((_a(xp, [[2.0, 1.0], [1.0, 2.0]], dtype, device),), {}, "2×2 chunked both ways"),
        Sample((_a(xp, [[[1.0, 2.0], [0.0, 1.0], [1.0, 0.0]],
                        [[0.5, 0.0], [0.0, 0.25], [0.0, 0.0]]], dtype, device),), {},
               "a stack of 3×2"),
    ]


@references(spectral_norm)
def _(xp, dtype, device):
    # issue 12: NumPy raised LinAlgError and torch its _LinAlgError on non-finite entries.
    # A column and a row: matrices dask's SVD takes (chunked along one axis only)
    return [
        Sample((_a(xp, [[_NAN], [1.0], [2.0]], dtype, device),), {}, "a NaN entry gives NaN",
               proves=("special_values",)),
        Sample((_a(xp, [[1.0, -_INF, 2.0]], dtype, device),), {}, "an infinite entry gives ∞",
               proves=("special_values",)),
        Sample((_a(xp, [[_INF, 1.0, _NAN]], dtype, device),), {}, "∞ and NaN give NaN",
               proves=("special_values",)),
        Sample((_a(xp, [[[3.0, 0.0], [0.0, 1.0]], [[_INF, 0.0], [0.0, 1.0]],
                        [[_NAN, 0.0], [0.0, 1.0]]], dtype, device),), {},
               "a stack with one ∞ and one NaN matrix", proves=("special_values",)),
    ]


@errors(spectral_norm)
def _(xp, dtype, device):
    return [
        ErrorCase((_a(xp, [1.0, 2.0], dtype, device),), {}, ValueError,
                  "W must have at least 2 dimension", "a vector"),
        ErrorCase((_a(xp, [[1, 2], [3, 4]], xp.int64, device),), {}, TypeError,
                  "W must have a real floating dtype", "integer W"),
        ErrorCase((_a(xp, [[1.0, 2.0]], dtype, device)[:, :0],), {}, ValueError,
                  "W must be a non-empty matrix", "empty matrix"),
    ]


# --------------------------------------------------------------------------------- tier D
def _uniform(*specs):
    """`make_args(seed)`: argument i uniform in [low, high) of its shape, from
    `default_rng(seed + 7·i)`, one `(low, high, shape)` spec per argument."""

    def make_args(seed: int) -> list:
        return [np.random.default_rng(seed + 7 * i).uniform(low, high, shape)
                for i, (low, high, shape) in enumerate(specs)]

    return make_args


_REAL = (-2.0, 2.0)
#: norms contain |xᵢ| and max|xᵢ|, which SymPy differentiates symbolically only with a known
#: sign: their inputs are positive (the formulas are sign-agnostic; the other tiers cover signs)
_POSITIVE = (0.2, 2.0)


def _cos_grad(xp, a, c):
    """∂cos/∂x = (ŷ − cos·x̂)/‖x‖, times the cotangent."""
    x, y = a
    nx, ny = norm(x, keepdims=True), norm(y, keepdims=True)
    cos = cosine_similarity(x, y)[..., None]
    return (y / ny - cos * x / nx) / nx * c[..., None]


derivative(
    DerivativeCase("dot", dot, _uniform((*_REAL, (2, 3)), (*_REAL, (2, 3))),
                   closed=lambda xp, a, c: a[1] * c[..., None]),
    DerivativeCase("norm", norm, _uniform((*_POSITIVE, (2, 3))),
                   closed=lambda xp, a, c: a[0] / norm(a[0], keepdims=True) * c[..., None],
                   assumptions={"positive": True}),
    DerivativeCase("cosine_similarity", cosine_similarity,
                   _uniform((*_POSITIVE, (2, 3)), (*_POSITIVE, (2, 3))), closed=_cos_grad,
                   assumptions={"positive": True}),
    DerivativeCase("frobenius_norm", frobenius_norm, _uniform((*_POSITIVE, (2, 3))),
                   closed=lambda xp, a, c: a[0] / frobenius_norm(a[0]) * c,
                   assumptions={"positive": True}),
)
# low_rank_approximation and spectral_norm go through an SVD, which SymPy cannot trace: their
# tier D (central differences and autograd against the closed form) is in test_linalg.py.


# --------------------------------------------------------------------------------- tier R
#: budgets from the operation counts of the registered inputs (n ≤ 4 elements per slice,
#: matrices ≤ 4×3), not from what was observed:
budget({
    # n products (exact in fma or 0.5 ulp each) and n − 1 additions, at Σ|xᵢyᵢ|: ≤ n ulp
    "dot": {"float32": 4, "float64": 4},
    # x/s, squares, n − 1 additions, √ (halves their relative error), ×s: ≈ (n + 5)/2 ulp
    "norm": {"float32": 8, "float64": 8},
    # two norms (≈ 4 ulp each, relative), two divisions, n products and additions, at 1
    "cosine_similarity": {"float32": 16, "float64": 16},
    # the norm of ≤ 6 entries
    "frobenius_norm": {"float32": 8, "float64": 8},
    # a backward-stable SVD has backward error ≈ max(m, n)·ε·σ₁ (≤ 4 ulp of σ₁ here); the
    # registered inputs have gaps σ_k − σ_{k+1} ≥ σ₁/4, which amplify the singular-vector
    # error at most 4×; k ≤ 2 rank-one terms are summed: 4·4·2 = 32
    "low_rank_approximation": {"float32": 32, "float64": 32},
    # singular values of a backward-stable SVD: |δσ| ≲ max(m, n)·ε·σ₁ (Weyl), m, n ≤ 3:
    # ≤ 3 ulp relative, ×2 for the ulp of a value just above a power of two
    "spectral_norm": {"float32": 8, "float64": 8},
})
