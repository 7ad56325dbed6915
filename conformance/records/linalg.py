"""Records of `spec/linalg.py`: its sample, reference and error inputs.
"""

from __future__ import annotations

from conformance.records import ErrorCase, Sample, errors, references, samples
from conformance.records import sample_array as _a
from spec.linalg import (
    cosine_similarity,
    dot,
    frobenius_norm,
    low_rank_approximation,
    norm,
    spectral_norm,
)


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
        Sample((_a(xp, [big, -big, big], dtype, device),), {}, "squares overflow"),
        Sample((_a(xp, [small, small, -small, small], dtype, device),), {}, "squares underflow"),
        Sample((_a(xp, [big, 1.0], dtype, device),), {}, "huge and tiny together"),
        Sample((_a(xp, [[0.0, 0.0], [0.0, 1.0]], dtype, device),), {}, "an all-zero row"),
        Sample((_a(xp, [[float("inf"), 1.0], [float("nan"), 1.0]], dtype, device),), {},
               "∞ and NaN propagate"),
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
               "‖x‖‖y‖ overflows"),
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
        Sample((_a(xp, [[big, big], [-big, big]], dtype, device),), {}, "squares overflow"),
        Sample((_a(xp, [[0.0, 0.0], [0.0, 0.0]], dtype, device),), {}, "zero matrix"),
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


@references(low_rank_approximation)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype, device),), {"rank": 2},
               "full rank gives W back"),
        Sample((_a(xp, [[1.0, 2.0], [3.0, 4.0]], dtype, device),), {"rank": 0}, "rank 0 gives 0"),
        Sample((_a(xp, [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 1.0, 1.0]], dtype, device),),
               {"rank": 1}, "rank-2 matrix, rank 1"),
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
