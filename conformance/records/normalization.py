"""Records of `spec/normalization.py`: sample, reference and error inputs, derivative cases
and ulp budgets.
"""

from __future__ import annotations

import math

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
from spec.normalization import (
    batch_norm,
    layer_norm,
    rms_norm,
)

_OFFSET = 1e4  # the offset of the references that catch one-pass variance formulas


@samples(batch_norm)
def _(xp, dtype, device):
    x = [[1.0, -2.0, 0.5], [3.0, 0.0, 0.25], [-1.0, 2.0, 1.0], [2.0, 4.0, -0.75]]
    return [
        Sample((_a(xp, x, dtype, device), _a(xp, [1.0, 2.0, 0.5], dtype, device),
                _a(xp, [0.0, -1.0, 0.25], dtype, device)), {}, "batch of 4, 3 features"),
        Sample((_a(xp, x, dtype, device), _a(xp, [1.5, 0.5, 1.0, 2.0], dtype, device),
                _a(xp, 0.5, dtype, device)), {"axis": 1, "eps": 0.1},
               "statistics along axis 1, scalar beta"),
        Sample((_a(xp, [[[1.0, 2.0], [3.0, -1.0]], [[0.5, 0.0], [-2.0, 4.0]],
                        [[2.5, 1.0], [1.0, 1.0]]], dtype, device),
                _a(xp, [1.0, -1.0], dtype, device), _a(xp, [0.0, 0.5], dtype, device)),
               {"axis": (0, 1)}, "statistics over axes (0, 1), per channel"),
    ]


@references(batch_norm)
def _(xp, dtype, device):
    offset = [[_OFFSET + a, _OFFSET - a] for a in (0.5, -1.25, 2.0, 0.75, -1.5, 0.25)]
    return [
        Sample((_a(xp, offset, dtype, device), _a(xp, [1.0, 1.0], dtype, device),
                _a(xp, [0.0, 0.0], dtype, device)), {"eps": 0.5},
               "offset 1e4, ε = 0.5: one-pass variance cancels"),
        Sample((_a(xp, [[3.0, 1.0], [3.0, 2.0], [3.0, 3.0]], dtype, device),
                _a(xp, [2.0, 1.0], dtype, device), _a(xp, [0.5, 0.0], dtype, device)), {},
               "a constant feature gives β"),
        Sample((_a(xp, [[1e-3, -2e-3], [3e-3, 1e-3]], dtype, device),
                _a(xp, [1.0, 1.0], dtype, device), _a(xp, [0.0, 0.0], dtype, device)),
               {"eps": 1e-5}, "variance comparable to ε"),
    ]


@errors(batch_norm)
def _(xp, dtype, device):
    x = _a(xp, [[1.0, 2.0], [3.0, 4.0]], dtype, device)
    g = _a(xp, [1.0, 1.0], dtype, device)
    return [
        ErrorCase((x, _a(xp, [1.0, 1.0, 1.0], dtype, device), g), {}, ValueError,
                  r"gamma must broadcast to the feature shape \(2,\)", "gamma of another shape"),
        ErrorCase((x, g, g), {"eps": -1e-5}, ValueError, "eps must be a non-negative",
                  "negative eps"),
        ErrorCase((x, g, g), {"axis": 2}, ValueError, "axis 2 is out of range", "bad axis"),
        ErrorCase((x, g, g), {"axis": (0, -2)}, ValueError, "names the same axis twice",
                  "repeated axis"),
        ErrorCase((x[:0, :], g, g), {}, ValueError, "length 0 along axis 0", "empty batch"),
        ErrorCase((_a(xp, [[1, 2]], xp.int64, device), g, g), {}, TypeError,
                  "x must have a real floating dtype", "integer x"),
        ErrorCase((x, g, g), {"eps": "1e-5"}, TypeError, "eps must be a real number",
                  "eps as a string"),
    ]


@samples(layer_norm)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [[1.0, -2.0, 0.5, 3.0], [0.0, 0.25, 2.0, -1.0]], dtype, device),
                _a(xp, [1.0, 2.0, 0.5, 1.5], dtype, device),
                _a(xp, [0.0, -1.0, 0.25, 0.5], dtype, device)), {}, "two examples of 4"),
        Sample((_a(xp, [[[2.0, 4.0, 6.0]], [[-1.0, 0.0, 3.0]]], dtype, device),
                _a(xp, 1.0, dtype, device), _a(xp, [0.5], dtype, device)), {"eps": 0.25},
               "batch × sequence, scalar gamma"),
    ]


@references(layer_norm)
def _(xp, dtype, device):
    row = [_OFFSET + a for a in (0.5, -1.25, 2.0, 0.75, -1.5, 0.25, 1.0, -0.5)]
    ones = _a(xp, [1.0] * 8, dtype, device)
    zeros = _a(xp, [0.0] * 8, dtype, device)
    return [
        Sample((_a(xp, [row], dtype, device), ones, zeros), {"eps": 0.5},
               "offset 1e4, ε = 0.5: one-pass variance cancels"),
        Sample((_a(xp, [[2.5] * 8], dtype, device), ones, _a(xp, [0.5] * 8, dtype, device)), {},
               "a constant example gives β"),
        Sample((_a(xp, [[1e-3, -2e-3, 0.0, 4e-3, 1e-3, -1e-3, 2e-3, 0.5e-3]], dtype, device),
                ones, zeros), {"eps": 1e-5}, "variance comparable to ε"),
        Sample((_a(xp, [[1.0, 2.0, 3.0, 4.0, -4.0, -3.0, -2.0, -1.0]], dtype, device), ones,
                zeros), {"eps": 0.0}, "ε = 0"),
    ]


def _last_axis_errors(xp, dtype, device, n_params: int) -> list[ErrorCase]:
    x = _a(xp, [[1.0, 2.0, 3.0]], dtype, device)
    p = _a(xp, [1.0, 1.0, 1.0], dtype, device)
    rest = (p,) * (n_params - 1)
    other = xp.float32 if dtype == xp.float64 else xp.float64
    return [
        ErrorCase((x, _a(xp, [1.0, 1.0], dtype, device), *rest), {}, ValueError,
                  r"gamma must broadcast to the feature shape \(3,\)", "gamma of another shape"),
        ErrorCase((x, p, *rest), {"eps": -1.0}, ValueError, "eps must be a non-negative",
                  "negative eps"),
        ErrorCase((x, p, *rest), {"eps": math.nan}, ValueError, "eps must be a non-negative",
                  "NaN eps"),
        ErrorCase((_a(xp, [[1, 2, 3]], xp.int64, device), p, *rest), {}, TypeError,
                  "x must have a real floating dtype", "integer x"),
        ErrorCase((x, _a(xp, [1.0, 1.0, 1.0], other, device), *rest), {}, TypeError,
                  "x and gamma must have the same dtype", "gamma of another dtype"),
        ErrorCase((x, _a(xp, [1, 1, 1], xp.int64, device), *rest), {}, TypeError,
                  "gamma must have a real floating dtype", "integer gamma"),
        ErrorCase((_a(xp, 1.0, dtype, device), p, *rest), {}, ValueError,
                  "x must have at least 1 dimension", "0-d x"),
        ErrorCase((x[:, :0], p[:0], *(r[:0] for r in rest)), {}, ValueError,
                  "length 0 along axis", "no features"),
    ]


@errors(layer_norm)
def _(xp, dtype, device):
    x = _a(xp, [[1.0, 2.0, 3.0]], dtype, device)
    p = _a(xp, [1.0, 1.0, 1.0], dtype, device)
    return [
        *_last_axis_errors(xp, dtype, device, 2),
        ErrorCase((x, p, _a(xp, [[0.0], [1.0]], dtype, device)), {}, ValueError,
                  r"beta must broadcast to the feature shape \(3,\)", "beta of another shape"),
    ]


@samples(rms_norm)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [[1.0, -2.0, 0.5, 3.0], [0.0, 0.25, 2.0, -1.0]], dtype, device),
                _a(xp, [1.0, 2.0, 0.5, 1.5], dtype, device)), {}, "two examples of 4"),
        Sample((_a(xp, [[[2.0, 4.0, 6.0]], [[-1.0, 0.0, 3.0]]], dtype, device),
                _a(xp, [0.5], dtype, device)), {"eps": 0.25}, "batch × sequence, ε = 0.25"),
    ]


@references(rms_norm)
def _(xp, dtype, device):
    ones = _a(xp, [1.0] * 8, dtype, device)
    return [
        Sample((_a(xp, [[_OFFSET + a for a in (0.5, -1.25, 2.0, 0.75, -1.5, 0.25, 1.0, -0.5)]],
                    dtype, device), ones), {"eps": 0.5}, "offset 1e4, ε = 0.5"),
        Sample((_a(xp, [[0.0] * 8], dtype, device), ones), {}, "all zeros give 0"),
        Sample((_a(xp, [[1e-3, -2e-3, 0.0, 4e-3, 1e-3, -1e-3, 2e-3, 0.5e-3]], dtype, device),
                ones), {"eps": 1e-6}, "mean square comparable to ε"),
        Sample((_a(xp, [[3.0, -4.0]], dtype, device), _a(xp, [1.0, 1.0], dtype, device)),
               {"eps": 0.0}, "ε = 0"),
    ]


@errors(rms_norm)
def _(xp, dtype, device):
    return _last_axis_errors(xp, dtype, device, 1)


# --------------------------------------------------------------------------------- tier D
def _uniform_args(*shapes):
    """`make_args(seed)`: one array per shape, uniform in [−2, 2), argument i from seed + 10i."""
    return lambda seed: [np.random.default_rng(seed + 10 * i).uniform(-2.0, 2.0, shape)
                         for i, shape in enumerate(shapes)]


# SymPy (traced code, lambdified to the backend), autograd and central differences, with
# respect to x and the affine parameters
derivative(*[
    DerivativeCase(fn.__name__, fn, _uniform_args(*shapes), argnum=argnum, kwargs={"eps": 1e-3},
                   label=f"arg{argnum}")
    for fn, shapes, argnums in [
        (batch_norm, [(4, 3), (3,), (3,)], [0, 1]),
        (layer_norm, [(2, 4), (4,), (4,)], [0, 1, 2]),
        (rms_norm, [(2, 4), (4,)], [0, 1]),
    ]
    for argnum in argnums
])


# --------------------------------------------------------------------------------- tier R
# Budgets from the operation counts, at the oracles' scale |γⱼ|·max_k|x_k|/σ + |βⱼ| (see
# conformance/oracles_normalization.py). n is the length of the reduced slice, at most
# N_MAX = 8 in every record; M = max|x|, u the unit roundoff; at that floor F one ulp is at
# least u·F.
#
# * LayerNorm and BatchNorm: the mean is off by δ ≤ n·u·M (an n-term sum in any order, then
#   a division); the deviation x − μ by (n + 2)·u·M, i.e. n + 2 ulps of x̂. The variance
#   (square, sum, division, and the deviations' own rounding) is off by (n + 4)·u relative,
#   + ε and the root make it (n + 5)/2 + 1, the division 1 more: on |x̂| ≤ 2M/σ that is
#   ≤ n + 9 ulps. The affine map adds ≤ 4: in all ≤ 2n + 15 = 31 ulps.
# * RMSNorm: every term is positive, so the mean square is relatively accurate to (n + 1)·u,
#   + ε makes it n + 2; the root halves it and adds 1; the division and γ add 2: the
#   relative error of y is ≤ (n/2 + 4)·u, i.e. ≤ 8 ulps at F ≥ |y|.
N_MAX = 8

budget({
    "batch_norm": {"float32": 2 * N_MAX + 15, "float64": 2 * N_MAX + 15},
    "layer_norm": {"float32": 2 * N_MAX + 15, "float64": 2 * N_MAX + 15},
    "rms_norm": {"float32": N_MAX // 2 + 4, "float64": N_MAX // 2 + 4},
})
