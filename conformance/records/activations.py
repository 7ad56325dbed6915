"""Records of `spec/activations.py`: sample, reference and error inputs, derivative cases and
ulp budgets.
"""

from __future__ import annotations

import functools
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
from spec.activations import (
    SUBNORMAL,
    erf,
    erf_grad,
    gelu,
    gelu_grad,
    leaky_relu,
    leaky_relu_grad,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    silu,
    silu_grad,
    swiglu,
    swiglu_vjp,
    tanh,
    tanh_grad,
)


def _elementwise_samples(xp, dtype, device):
    return [
        Sample((_a(xp, [-2.0, -0.5, 0.25, 1.0, 3.0], dtype, device),), {}, "vector"),
        Sample((_a(xp, [[0.1, -1.5, 2.0], [-3.0, 0.75, -0.25]], dtype, device),), {},
               "matrix"),
        Sample((_a(xp, 0.5, dtype, device),), {}, "0-d"),
    ]


_EXTREMES = [-1000.0, -5.0, -1e-30, 0.0, 1e-30, 5.0, 1000.0]


_TAILS = [-20.0, -8.0, 8.0, 20.0]


def _is32(xp, dtype) -> bool:
    return dtype == xp.float32


def _subnormal_inputs(xp, dtype):
    """Inputs whose results (or intermediates) reach the dtype's subnormal range."""
    if _is32(xp, dtype):
        return [-100.0, -90.0, -45.0, -14.0, -10.5, 10.5, 14.0, 45.0, 90.0, 100.0]
    return [-740.0, -720.0, -360.0, -38.0, -27.0, 27.0, 38.0, 360.0, 720.0, 740.0]


def _elementwise_references(xp, dtype, device, proves=()):
    """`proves`: the tier-R identities (besides `accuracy`) that the extremes and the special
    values are the evidence for: the value at |x| = 1000, at tiny x, at ±∞, NaN and −0,
    each within the budget of the exact mpmath value."""
    return [
        Sample((_a(xp, _EXTREMES, dtype, device),), {}, "|x| = 1000 and tiny", proves=proves),
        Sample((_a(xp, _TAILS, dtype, device),), {}, "tails"),
        Sample((_a(xp, _subnormal_inputs(xp, dtype), dtype, device),), {}, SUBNORMAL),
        Sample((_a(xp, [-math.inf, math.inf, math.nan, -0.0], dtype, device),), {},
               "±∞, NaN and −0", proves=proves),
        Sample((_a(xp, [[1.0, -2.0]], dtype, device)[:0, :],), {}, "zero rows"),
    ]


def _references_proving(*keys):
    """The elementwise reference inputs, their extremes naming the tier-R identities `keys`."""
    return functools.partial(_elementwise_references, proves=keys)


def _elementwise_errors(xp, dtype, device, **kwargs):
    return [
        ErrorCase((_a(xp, [1, -2, 3], xp.int64, device),), kwargs, TypeError,
                  "x must have a real floating dtype", "integer x"),
        ErrorCase((_a(xp, [True, False], xp.bool, device),), kwargs, TypeError,
                  "x must have a real floating dtype", "boolean x"),
        ErrorCase(([0.5, -1.0],), kwargs, TypeError, "x must be an array", "a list"),
        ErrorCase((1.5,), kwargs, TypeError, "x must be an array", "a Python float"),
    ]


def _slope_errors(xp, dtype, device, name: str):
    x = _a(xp, [1.0, -1.0], dtype, device)
    return [
        ErrorCase((x,), {name: "0.1"}, TypeError, f"{name} must be a real number",
                  f"{name} a string"),
        ErrorCase((x,), {name: math.nan}, ValueError, f"{name} must be a finite real",
                  f"{name} NaN"),
        ErrorCase((x,), {name: math.inf}, ValueError, f"{name} must be a finite real",
                  f"{name} infinite"),
        ErrorCase((x,), {name: True}, TypeError, f"{name} must be a real number",
                  f"{name} a bool"),
    ]


samples(relu)(_elementwise_samples)


references(relu)(_references_proving("nonnegative"))


errors(relu)(_elementwise_errors)


samples(relu_grad)(_elementwise_samples)


references(relu_grad)(_references_proving("zero_or_one"))


errors(relu_grad)(_elementwise_errors)


def _leaky_samples(xp, dtype, device):
    return [
        *_elementwise_samples(xp, dtype, device),
        Sample((_a(xp, [-2.0, 0.0, 2.0], dtype, device),), {"negative_slope": 0.2}, "α = 0.2"),
        Sample((_a(xp, [-2.0, 0.0, 2.0], dtype, device),), {"negative_slope": -0.5},
               "negative α"),
    ]


def _leaky_errors(xp, dtype, device):
    return [*_elementwise_errors(xp, dtype, device),
            *_slope_errors(xp, dtype, device, "negative_slope")]


samples(leaky_relu)(_leaky_samples)


references(leaky_relu)(_references_proving("extremes"))


errors(leaky_relu)(_leaky_errors)


samples(leaky_relu_grad)(_leaky_samples)


references(leaky_relu_grad)(_references_proving("two_values"))


errors(leaky_relu_grad)(_leaky_errors)


samples(sigmoid)(_elementwise_samples)


references(sigmoid)(_references_proving("extremes"))


errors(sigmoid)(_elementwise_errors)


samples(sigmoid_grad)(_elementwise_samples)


references(sigmoid_grad)(_elementwise_references)


errors(sigmoid_grad)(_elementwise_errors)


samples(tanh)(_elementwise_samples)


references(tanh)(_references_proving("extremes"))


errors(tanh)(_elementwise_errors)


samples(tanh_grad)(_elementwise_samples)


references(tanh_grad)(_elementwise_references)


errors(tanh_grad)(_elementwise_errors)


samples(erf)(_elementwise_samples)


@references(erf)
def _(xp, dtype, device):
    grid = [k / 8 for k in range(-48, 49)]  # every 1/8 over [−6, 6]: all three branches
    edges = [0.46875, -0.46875, 0.46875 * (1 + 2**-20), 4.0, -4.0, 4.0 * (1 + 2**-20), 9.0,
             10.0, 26.0, 27.0, 5.9, -5.9]
    return [
        *_elementwise_references(xp, dtype, device),
        Sample((_a(xp, grid, dtype, device),), {}, "grid over [−6, 6]"),
        Sample((_a(xp, edges, dtype, device),), {}, "branch edges and tails"),
        Sample((_a(xp, [1e-30, -1e-30, 1e-10, 2.0**-60, 1e-300], dtype, device),), {},
               "tiny: erf(x) ≈ 2x/√π"),
    ]


errors(erf)(_elementwise_errors)


samples(erf_grad)(_elementwise_samples)


references(erf_grad)(_elementwise_references)


errors(erf_grad)(_elementwise_errors)


def _gelu_samples(xp, dtype, device):
    return [
        *_elementwise_samples(xp, dtype, device),
        Sample((_a(xp, [-3.0, -0.7, 0.0, 0.7, 3.0], dtype, device),), {"approximate": "tanh"},
               "tanh form"),
    ]


def _gelu_references(xp, dtype, device):
    # tails whose results and intermediates stay normal in the dtype, and (for the tanh form)
    # inputs whose σ(w) is subnormal: Φ(x) and σ(w) leave float32's normal range near
    # x = −13 and x = −10, float64's near x = −37.5 and x = −20.5
    if _is32(xp, dtype):
        tail = [-12.0, -9.0, -5.0, -1.0, -0.6, 0.6, 5.0]
        tanh_tail = [-9.0, -8.0, -5.0, -1.0, 1.0, 5.0]
        tanh_subnormal = [-10.5, -11.0, -14.0]
    else:
        tail = [-35.0, -30.0, -20.0, -10.0, -5.0, -1.0, -0.6, 0.6, 5.0, 37.0]
        tanh_tail = [-19.0, -15.0, -10.0, -5.0, 5.0]
        tanh_subnormal = [-20.5, -21.2, -22.0]
    limits = ("limits",)  # gelu's and gelu_grad's: the values at ±1000, ±∞ and 0
    return [
        *_elementwise_references(xp, dtype, device, proves=limits),
        Sample((_a(xp, tail, dtype, device),), {}, "left tail"),
        Sample((_a(xp, [*_EXTREMES, -math.inf, math.inf, math.nan], dtype, device),),
               {"approximate": "tanh"}, "tanh form: extremes", proves=limits),
        Sample((_a(xp, tanh_tail, dtype, device),), {"approximate": "tanh"}, "tanh form: tails"),
        Sample((_a(xp, tanh_subnormal, dtype, device),), {"approximate": "tanh"},
               f"tanh form: {SUBNORMAL}"),
    ]


def _gelu_errors(xp, dtype, device):
    x = _a(xp, [1.0], dtype, device)
    return [
        *_elementwise_errors(xp, dtype, device),
        ErrorCase((x,), {"approximate": "exact"}, ValueError,
                  "approximate must be one of 'none', 'tanh'", "unknown approximate"),
        ErrorCase((x,), {"approximate": None}, ValueError,
                  "approximate must be one of 'none', 'tanh'", "approximate None"),
        ErrorCase((x,), {"approximate": True}, ValueError,
                  "approximate must be one of 'none', 'tanh'", "approximate a bool"),
    ]


samples(gelu)(_gelu_samples)


references(gelu)(_gelu_references)


errors(gelu)(_gelu_errors)


samples(gelu_grad)(_gelu_samples)


references(gelu_grad)(_gelu_references)


errors(gelu_grad)(_gelu_errors)


def _silu_samples(xp, dtype, device):
    return [
        *_elementwise_samples(xp, dtype, device),
        Sample((_a(xp, [-4.0, -1.0, 0.0, 1.0, 4.0], dtype, device),), {"beta": 1.702},
               "β = 1.702"),
        Sample((_a(xp, [-4.0, -1.0, 0.0, 1.0, 4.0], dtype, device),), {"beta": 0.0},
               "β = 0 is x/2"),
    ]


def _silu_references(xp, dtype, device, proves=()):
    return [
        *_elementwise_references(xp, dtype, device, proves=proves),
        Sample((_a(xp, [*_EXTREMES, *_TAILS, -math.inf, math.inf], dtype, device),),
               {"beta": -2.5}, "negative β at the extremes", proves=proves),
        Sample((_a(xp, [-1.5, -1.278, -1.0, 0.5, 20.0, -20.0, -80.0], dtype, device),),
               {"beta": 1.0}, "around the minimum and in the tails"),
    ]


def _silu_errors(xp, dtype, device):
    return [*_elementwise_errors(xp, dtype, device), *_slope_errors(xp, dtype, device, "beta")]


samples(silu)(_silu_samples)


references(silu)(_silu_references)


errors(silu)(_silu_errors)


samples(silu_grad)(_silu_samples)


@references(silu_grad)
def _(xp, dtype, device):
    limits = ("limits",)  # → 1, → 0 at βx → ±∞, 1/2 at 0, and the extrema
    return [
        *_silu_references(xp, dtype, device, proves=limits),
        # silu'' = 0 at x = ±2.399357280515467 (mpmath findroot): silu' is −0.0998393… and
        # 1.0998393… there
        Sample((_a(xp, [-2.399357280515467, 2.399357280515467], dtype, device),), {},
               "the extrema of silu' at βx ≈ ∓2.3994", proves=limits),
    ]


errors(silu_grad)(_silu_errors)


def _swiglu_samples(xp, dtype, device):
    x = _a(xp, [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype, device)
    W = _a(xp, [[0.2, -0.4, 0.1], [1.0, 0.5, -0.3], [-0.6, 0.8, 0.9], [0.0, 0.3, -1.2]],
           dtype, device)
    V = _a(xp, [[-0.5, 0.1, 0.7], [0.3, -0.9, 0.2], [1.1, 0.4, -0.2], [0.6, 0.6, 0.6]],
           dtype, device)
    return [
        Sample((x, W, V), {}, "batch of two"),
        Sample((x[0, :], W, V), {}, "one vector"),
        Sample((xp.reshape(xp.concat([x, -x], axis=0), (2, 2, 3)), W, V), {},
               "two batch dimensions"),
    ]


@references(swiglu)
def _(xp, dtype, device):
    W = _a(xp, [[1.0, 0.0], [0.0, 1.0], [30.0, -30.0]], dtype, device)
    V = _a(xp, [[1.0, 1.0], [-1.0, 2.0], [0.5, 0.5]], dtype, device)
    return [
        Sample((_a(xp, [[1000.0, -1000.0], [-30.0, 30.0], [1e-30, 0.0]], dtype, device), W, V),
               {}, "gates at ±1000, ±30, and tiny"),
        Sample((_a(xp, [[1.0, 2.0]], dtype, device)[:0, :], W, V), {}, "zero rows"),
    ]


def _swiglu_errors(xp, dtype, device, extra=()):
    x = _a(xp, [[1.0, 2.0, 3.0]], dtype, device)
    W = _a(xp, [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], dtype, device)
    return [
        ErrorCase((x, W, _a(xp, [[0.1, 0.2, 0.3]], dtype, device), *extra), {}, ValueError,
                  "W and V must have the same shape", "W and V of different shapes"),
        ErrorCase((_a(xp, [[1.0, 2.0]], dtype, device), W, W, *extra), {}, ValueError,
                  "have in = 3 columns but x has 2 features", "x of the wrong width"),
        ErrorCase((x, _a(xp, [0.1, 0.2, 0.3], dtype, device), W, *extra), {}, ValueError,
                  r"W must be a 2-D \(hidden, in\) matrix", "1-D W"),
        ErrorCase((_a(xp, [[1, 2, 3]], xp.int64, device), W, W, *extra), {}, TypeError,
                  "x must have a real floating dtype", "integer x"),
        ErrorCase((x, W, [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], *extra), {}, TypeError,
                  "V must be an array", "V a list"),
        ErrorCase((_a(xp, 1.0, dtype, device), W, W, *extra), {}, ValueError,
                  "x must have at least 1 dimension", "0-d x"),
    ]


samples(swiglu)(_swiglu_samples)


errors(swiglu)(_swiglu_errors)


@samples(swiglu_vjp)
def _(xp, dtype, device):
    out = []
    for case in _swiglu_samples(xp, dtype, device):
        x, W, _ = case.args
        hidden = W.shape[0]
        g = xp.reshape(xp.linspace(-1.0, 1.5, math.prod((*x.shape[:-1], hidden)), dtype=dtype,
                                   device=device), (*x.shape[:-1], hidden))
        out.append(Sample((*case.args, g), {}, case.note))
    return out


@errors(swiglu_vjp)
def _(xp, dtype, device):
    x = _a(xp, [[1.0, 2.0, 3.0]], dtype, device)
    W = _a(xp, [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], dtype, device)
    g = _a(xp, [[1.0, -1.0]], dtype, device)
    return [
        *_swiglu_errors(xp, dtype, device, extra=(g,)),
        ErrorCase((x, W, W, _a(xp, [[1.0, -1.0, 0.5]], dtype, device)), {}, ValueError,
                  r"g must have the output's shape \(1, 2\)", "g of the wrong shape"),
        ErrorCase((x, W, W, _a(xp, [[1, 2]], xp.int64, device)), {}, TypeError,
                  "g must have a real floating dtype", "integer g"),
    ]


# --------------------------------------------------------------------------------- tier D
# Functions that branch on the sign of x (with `where`) are traced on positive symbols: the
# x > 0 branch directly, the x < 0 branch as x ↦ f(−x) (its closed form −f'(−x)). Inputs of
# the branch cases are uniform in [0.2, 3] (away from the kink and the branch point at 0),
# of the others uniform in [−3, 3]; all of shape (2, 3). Each case proves both the
# equation's `derivative` and its `_grad`'s `is_derivative`, so it is filed under both.
def _uniform(low: float):
    def make_args(seed: int) -> list:
        return [np.random.default_rng(seed).uniform(low, 3.0, (2, 3))]

    return make_args


def _flip(f):
    """x ↦ f(−x): traced on positive symbols, it covers f's x < 0 branch."""

    @functools.wraps(f)
    def flipped(a, **kwargs):
        return f(-a, **kwargs)

    return flipped


def _elementwise_cases(f, grad, kwargs, sign, branch: bool, label: str):
    """The case of `f` and of its derivative `grad` (one traced function, two records)."""
    kwargs = dict(kwargs)
    if sign > 0:
        fn = f

        def closed(xp, a, c):
            return grad(a[0], **kwargs) * c
    else:
        fn = _flip(f)

        def closed(xp, a, c):  # d/dx f(−x) = −f'(−x)
            return -grad(-a[0], **kwargs) * c
    make_args = _uniform(0.2 if branch else -3.0)
    assumptions = {"positive": True} if branch else {}
    return [DerivativeCase(name, fn, make_args, kwargs=kwargs, closed=closed,
                           assumptions=assumptions, label=label)
            for name in (f.__name__, grad.__name__)]


for _case in [
    (relu, relu_grad, {}, 1, True, "pos"),
    (relu, relu_grad, {}, -1, True, "neg"),
    (leaky_relu, leaky_relu_grad, {"negative_slope": 0.2}, 1, True, "pos"),
    (leaky_relu, leaky_relu_grad, {"negative_slope": 0.2}, -1, True, "neg"),
    (sigmoid, sigmoid_grad, {}, 1, True, "pos"),
    (sigmoid, sigmoid_grad, {}, -1, True, "neg"),
    (tanh, tanh_grad, {}, 1, False, ""),
    (erf, erf_grad, {}, 1, False, ""),
    (gelu, gelu_grad, {}, 1, False, ""),
    (gelu, gelu_grad, {"approximate": "tanh"}, 1, True, "tanh-pos"),
    (gelu, gelu_grad, {"approximate": "tanh"}, -1, True, "tanh-neg"),
    (silu, silu_grad, {}, 1, True, "pos"),
    (silu, silu_grad, {}, -1, True, "neg"),
    (silu, silu_grad, {"beta": 1.702}, -1, True, "beta-neg"),
]:
    derivative(*_elementwise_cases(*_case))


def _swiglu_args(seed: int) -> list:
    """x, W, V positive: every gate xWᵀ has a known sign (negated with W for the x < 0
    branch of silu); one case per differentiated argument, its seed that argument's index."""
    rng = np.random.default_rng(7 + seed)
    return [rng.uniform(0.2, 1.5, (2, 3)), rng.uniform(0.2, 1.0, (4, 3)),
            rng.uniform(0.2, 1.0, (4, 3))]


def _swiglu_negative_gates(x, W, V):
    return swiglu(x, -W, V)


def _swiglu_cases(argnum: int, sign: int):
    fn = swiglu if sign > 0 else _swiglu_negative_gates

    def closed(xp, a, c):
        grads = swiglu_vjp(a[0], a[1] if sign > 0 else -a[1], a[2], c)
        return -grads[1] if argnum == 1 and sign < 0 else grads[argnum]

    label = f"{'xWV'[argnum]}-{'pos' if sign > 0 else 'neg'}"
    return [DerivativeCase(name, fn, _swiglu_args, argnum=argnum, closed=closed,
                           assumptions={"positive": True}, seeds=(argnum,), label=label)
            for name in ("swiglu", "swiglu_vjp")]


for _sign in (1, -1):
    for _argnum in (0, 1, 2):
        derivative(*_swiglu_cases(_argnum, _sign))


# --------------------------------------------------------------------------------- tier R
#: the largest error allowed against the oracles (conformance/oracles_activations.py), in ulps
#: of the dtype at the floor's scale. Each is an operation count, not an observation: ½ ulp
#: per correctly rounded operation, up to 3 ulp for a library's vectorised float32 exp or tanh
#: (1 in float64; the float32 count is used for both dtypes), ≈ 2 ulp for a Horner rational
#: function with positive coefficients.
budget({
    # max and where: exact
    "relu": {"float32": 0, "float64": 0},
    "relu_grad": {"float32": 0, "float64": 0},
    # α·x: α rounded to the dtype (½ ulp) and one product (½ ulp)
    "leaky_relu": {"float32": 1, "float64": 1},
    "leaky_relu_grad": {"float32": 1, "float64": 1},
    # exp (3), 1 + e (½), one division (½)
    "sigmoid": {"float32": 4, "float64": 4},
    # exp (3), (1 + e)² (1½: the rounding of 1 + e doubled by the square, and the product),
    # one division (½), ×4 exact for tanh_grad
    "sigmoid_grad": {"float32": 6, "float64": 6},
    "tanh_grad": {"float32": 6, "float64": 6},
    # the library's tanh (3)
    "tanh": {"float32": 4, "float64": 4},
    # |x| ≤ 0.47: x·A(x²)/B(x²): rational (2), ratio and product (1). Beyond: erfc = the split
    # exponential (two exps, 6, and a product) times C/D or the asymptotic form (2½), so
    # ≈ 4 ulp of erfc in practice; near |x| = 0.47 erf ≈ erfc ≈ ½ but erfc lies one binade
    # higher, so 1 − erfc carries twice erfc's ulps: 8
    "erf": {"float32": 8, "float64": 8},
    # the split exponential (two exps, 6; two products, 1) times a constant
    "erf_grad": {"float32": 8, "float64": 8},
    # x·Φ(x): the split exponential (7), the erfc rational (2½), the rounding of |x|/√2 (½),
    # ½ and x multiplied in (1): 11; the tanh form at its condition-number floor: σ (4), the
    # ≈ 5 roundings of w, the product with x
    "gelu": {"float32": 12, "float64": 12},
    # Φ (11) + xφ (split exponential 7, constant and x 1) at the terms' scale; tanh form:
    # σ(w) (4) + x·w'·σσ (6 + 3 products) at its floor
    "gelu_grad": {"float32": 14, "float64": 14},
    # x·σ(βx): σ (4) and one product (and βx at the floor's scale)
    "silu": {"float32": 6, "float64": 6},
    # σ(z) and σ(−z) from one exp (3 + 2), 1 + z·σ(−z) (1), the product (½), at the terms' scale
    "silu_grad": {"float32": 8, "float64": 8},
    # two length-n dot products (n ≤ 3 in the records: n ulp each at the normwise floor), silu
    # (6) and the gate product
    "swiglu": {"float32": 12, "float64": 12},
})
