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
#: float16 values whose squares overflow float16 (300² = 90000 > 65504): issue 12's example
_F16_SQUARES = [300.0, 1.0, -2.0, 0.5]


def _extremes(xp, dtype):
    """(huge, tiny): magnitudes whose squares overflow / underflow the dtype (1e200 and
    1e-200 in float64; 1e30 and 1e-30 in float32, which bfloat16 holds too). float16's cases
    are float32's rounded (conformance.precision.low_precision), so there these two become
    ±∞ and 0 (NaN propagation); float16's own extremes are `_F16_EXTREMES`."""
    return (1e200, 1e-200) if dtype == xp.float64 else (1e30, 1e-30)


#: magnitudes whose squares overflow float16 (1e4: squares to 1.6e9 > 65504) or fall below
#: its normal range (1e-3: squares 6e-8 … 1.6e-5 < 6.1e-5) while the values themselves are
#: normal float16 numbers (2.5e-4 … 4e4); ordinary values in every other dtype
_F16_EXTREMES = (1e4, 1e-3)


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
        *_no_overflow(xp, dtype, device, lambda rows: [list(c) for c in zip(*rows)],
                      (_a(xp, [1.0, 2.0], dtype, device), _a(xp, [0.0, 0.5], dtype, device))),
        Sample((_a(xp, offset, dtype, device), _a(xp, [1.0, 1.0], dtype, device),
                _a(xp, [0.0, 0.0], dtype, device)), {"eps": 0.5, "eps_form": "after_root"},
               "variant: ε after the root"),
        Sample((_a(xp, offset, dtype, device), _a(xp, [1.0, 1.0], dtype, device),
                _a(xp, [0.0, 0.0], dtype, device)), {"eps": 0.5, "correction": 1},
               "variant: unbiased variance"),
    ]


def _no_overflow(xp, dtype, device, layout, params, **kwargs):
    """References of the no_overflow identity: two slices laid out by `layout` (rows → the
    equation's x) with the affine parameters `params`."""
    rows = [_F16_SQUARES, [0.5, -2.0, 1.0, 300.0]]
    scaled = [[1.0, -2.0, 3.0, 0.5], [-1.0, 4.0, 0.25, 2.0]]
    out = [Sample((_a(xp, layout(rows), dtype, device), *params), dict(kwargs),
                  "[300, 1, −2, 0.5]: squares overflow float16", proves=("no_overflow",))]
    for (huge, tiny), which in ((_extremes(xp, dtype), "the dtype"), (_F16_EXTREMES, "float16")):
        out += [
            Sample((_a(xp, layout([[huge * t for t in r] for r in scaled]), dtype, device),
                    *params), dict(kwargs), f"values whose squares overflow {which}",
                   proves=("no_overflow",)),
            Sample((_a(xp, layout([[tiny * t for t in r] for r in scaled]), dtype, device),
                    *params), {**kwargs, "eps": 0.0},
                   f"values whose squares underflow {which}, ε = 0", proves=("no_overflow",)),
        ]
    return out


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
        ErrorCase((x, g, g), {"eps": True}, TypeError, "eps must be a real number, got bool",
                  "eps as a bool"),
        ErrorCase((x, g, g), {"eps_form": "outside"}, ValueError, "eps_form must be one of",
                  "unknown eps_form"),
        ErrorCase((x, g, g), {"correction": 2}, ValueError, "correction=2 leaves no degrees",
                  "correction = batch size"),
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
        Sample((_a(xp, [[1.0, -2.0, 0.5, 3.0]], dtype, device),
                _a(xp, [1.0, 2.0, 0.5, 1.5], dtype, device),
                _a(xp, [0.0, -1.0, 0.25, 0.5], dtype, device)), {"eps": np.float32(0.25)},
               "ε a NumPy float32 scalar"),
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
        *_no_overflow(xp, dtype, device, lambda rows: rows,
                      (_a(xp, [1.0, 2.0, 0.5, -1.0], dtype, device),
                       _a(xp, [0.0, 0.5, 0.0, -0.25], dtype, device))),
        Sample((_a(xp, [row], dtype, device), ones, zeros), {"eps": 0.5, "eps_form": "after_root"},
               "variant: ε after the root"),
        Sample((_a(xp, [row], dtype, device), ones, zeros), {"eps": 0.5, "correction": 1},
               "variant: unbiased variance"),
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
        ErrorCase((x, p, *rest), {"eps": True}, TypeError, "eps must be a real number, got bool",
                  "eps as a bool"),
        ErrorCase((x, p, *rest), {"eps_form": "outside"}, ValueError, "eps_form must be one of",
                  "unknown eps_form"),
    ]


@errors(layer_norm)
def _(xp, dtype, device):
    x = _a(xp, [[1.0, 2.0, 3.0]], dtype, device)
    p = _a(xp, [1.0, 1.0, 1.0], dtype, device)
    return [
        *_last_axis_errors(xp, dtype, device, 2),
        ErrorCase((x, p, _a(xp, [[0.0], [1.0]], dtype, device)), {}, ValueError,
                  r"beta must broadcast to the feature shape \(3,\)", "beta of another shape"),
        ErrorCase((x, p, p), {"correction": 3}, ValueError, "correction=3 leaves no degrees",
                  "correction = H"),
        ErrorCase((x, p, p), {"correction": -1}, ValueError, "correction must be a non-negative",
                  "negative correction"),
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
        *_no_overflow(xp, dtype, device, lambda rows: rows,
                      (_a(xp, [1.0, 2.0, 0.5, -1.0], dtype, device),)),
        Sample((_a(xp, [[0.5, -1.25, 2.0, 0.75], [1.5, 0.25, -1.0, 0.0]], dtype, device),
                _a(xp, [0.0, 0.25, -0.5, 0.125], dtype, device)), {"gamma_offset": 1.0},
               "variant: Gemma's 1 + γ, γ near 0"),
        Sample((_a(xp, [[0.5, -1.25, 2.0, 0.75], [1.5, 0.25, -1.0, 0.0]], dtype, device),
                _a(xp, [1.0, 0.25, -0.5, 2.0], dtype, device)),
               {"eps": 0.5, "eps_form": "after_root"}, "variant: ε after the root"),
    ]


@errors(rms_norm)
def _(xp, dtype, device):
    x = _a(xp, [[1.0, 2.0, 3.0]], dtype, device)
    p = _a(xp, [1.0, 1.0, 1.0], dtype, device)
    return [
        *_last_axis_errors(xp, dtype, device, 1),
        ErrorCase((x, p), {"gamma_offset": "1"}, TypeError,
                  "gamma_offset must be a real number", "gamma_offset as a string"),
        ErrorCase((x, p), {"gamma_offset": math.inf}, ValueError,
                  "gamma_offset must be a finite number", "infinite gamma_offset"),
    ]


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
