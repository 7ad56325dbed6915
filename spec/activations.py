r"""Activations: the elementwise non-linearities, their derivatives, and the SwiGLU gate.

Sources: 001 (ReLU, sigmoid, tanh, leaky ReLU, GELU), 002 §4.2 (ReLU and variants, GELU as
x·Φ(x), SwiGLU, sigmoid and tanh with σ' = σ(1−σ)), 003 (sigmoid, ReLU), 004 (ReLU).

Every function is elementwise (any shape, 0-d included) and returns the input's floating dtype;
each has a ``<name>_grad`` companion (its derivative) or, for SwiGLU, ``swiglu_vjp``.

Floating-point care, and how it meets exact arithmetic. ``erf`` is not in the Array API
standard: it is written here with the standard's functions alone (W. J. Cody's rational
approximations, Math. Comp. 23 (1969) 631–638, in the arrangement of his SPECFUN routine
CALERF), and the Gaussian tail that GELU needs is computed from Cody's erfc form, so GELU stays
accurate where 1 + erf(x/√2) would cancel. Those devices (rational approximations, the split
exponential exp(−a²) = exp(−h²)·exp(−(a−h)(a+h)), clipping an argument where the result has
already saturated so that no intermediate overflows to ∞·0) exist only because floats round
and overflow. On the symbolic namespace (exact real arithmetic, tier S) they are replaced by
the exact expressions they approximate — the namespace's own ``erf``, ``exp(−a²)``, no clipping
— so the proofs are about the mathematics and tier R measures the approximations against mpmath.
"""

from __future__ import annotations

import math

from . import _special
from . import _validate as v
from ._registry import ALL_FLOATS, Identity, Limit, equation

__all__ = [
    "erf",
    "erf_grad",
    "gelu",
    "gelu_grad",
    "leaky_relu",
    "leaky_relu_grad",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "silu",
    "silu_grad",
    "swiglu",
    "swiglu_vjp",
    "tanh",
    "tanh_grad",
]

_SQRT_HALF = math.sqrt(0.5)  # 1/√2
_INV_SQRT_PI = 0.56418958354775628695  # 1/√π
_TWO_OVER_SQRT_PI = 1.1283791670955125739  # 2/√π
_INV_SQRT_2PI = 0.39894228040143267794  # 1/√(2π)
_SQRT_2_OVER_PI = 0.79788456080286535588  # √(2/π)
_GELU_CUBIC = 0.044715
_GELU_MODES = ("none", "tanh")

# ---------------------------------------------------------------------------------------------
# Cody's coefficients (SPECFUN CALERF, double precision).
#: erf(x) = x·A(x²)/B(x²) on |x| ≤ 0.46875
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)
#: erfc(t) = exp(−t²)·C(t)/D(t) on 0.46875 < t ≤ 4
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)
#: erfc(t) = exp(−t²)/t·(1/√π − t⁻²·P(t⁻²)/Q(t⁻²)) on t > 4
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)
_THRESH = 0.46875
#: erfc(t) < 1e−400 for t ≥ 30.5, below every float's smallest subnormal: the tail saturates.
_T_CAP = 32.0


def _exact(x) -> bool:
    """True on the symbolic namespace, whose arithmetic is exact (SymPy expressions)."""
    return getattr(x, "device", None) == "sympy"


def _float_x(x, name: str = "x"):
    xp = v.namespace(**{name: x})
    v.floating(xp, x, name)
    return xp


def _widened(x):
    """(xp, x in its working precision, x's dtype): float16 and bfloat16 are computed in
    float32 (their own exponentials, Cody's polynomials and clipping bounds would overflow or
    lose every digit: float16's erf is NaN for |x| in [3.8, 5.7]); end with ``v.narrow``."""
    xp = _float_x(x)
    x, dtype = v.widen(xp, x)
    return xp, x, dtype


def _real_option(value, name: str) -> float:
    """A finite Python real number (any sign), else TypeError / ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def _clip(xp, x, bound: float):
    """x clipped to [−bound, bound] (NaN stays NaN); the identity on exact arithmetic.

    Used only where the result has saturated to its limit (in every float dtype) beyond the
    bound, so that no intermediate overflows into ∞·0 = NaN."""
    return x if _exact(x) else xp.clip(x, -bound, bound)


def _without_neg_inf(xp, z, x):
    """x with 0 where z = −∞: there the factor multiplying x is 0 and the limit of the
    product is 0, where IEEE arithmetic would give ±∞·0 = NaN."""
    return xp.where(z == -math.inf, xp.zeros_like(x), x)


def _neg_abs(xp, x):
    """−|x| in one pass (copysign(x, −1); NaN stays NaN), or −abs(x) on exact arithmetic."""
    return -xp.abs(x) if _exact(x) else xp.copysign(x, -1.0)


def _exp_neg_abs(xp, x):
    """e = exp(−|x|) ≤ 1: the one exponential of the sigmoid family, which cannot overflow."""
    return xp.exp(_neg_abs(xp, x))


def _sigmoid(xp, x):
    """σ(x) = (1 if x ≥ 0 else e)/(1 + e), e = exp(−|x|) ≤ 1: nothing overflows.

    Six elementwise passes (copysign, exp, the comparison, where, 1 + e, the division): the
    two branches 1/(1 + e) and e/(1 + e) share their denominator, so only the numerator is
    chosen."""
    e = _exp_neg_abs(xp, x)
    return xp.where(x >= 0, 1.0, e) / (1 + e)


def _sigmoid_product(xp, x):
    """σ(x)·σ(−x) = e/(1 + e)², e = exp(−|x|): accurate to the last bits for every x.

    Computed as (e/(1 + e))/(1 + e): five passes and one more for the cap. Near x = 0 the
    rounding of 1 + e can put the quotient one ulp above the true maximum 1/4 (float32 at
    x ≈ 6e−5): the result is capped there, which only moves it closer to the exact value.
    """
    e = _exp_neg_abs(xp, x)
    d = 1 + e
    q = e / d / d
    return q if _exact(x) else xp.clip(q, max=0.25)


def _exp_neg_square(xp, a, scale: float = 1.0, factor=None):
    """factor·exp(−scale·a²) for a ≥ 0, without the error of rounding a².

    Cody's split: a = h + (a − h) with h = ⌊64a⌋/64, so that h² is exact (in float32 too, for
    a ≤ 64) and a² = h² + (a − h)(a + h) with (a − h)(a + h) ≤ a/32; an error in a² would be
    multiplied by a² in the exponential. The factor (of normal size) is applied before the
    possibly subnormal e^{−scale·h²}, so a subnormal result is rounded once, not amplified.
    """
    if _exact(a):
        e = xp.exp(-scale * (a * a))
        return e if factor is None else factor * e
    a = xp.clip(a, 0.0, 2 * _T_CAP)  # exp(−a²/2) < 1e−800 beyond: saturated
    h = xp.floor(a * 64.0) / 64.0
    rest = xp.exp(-scale * ((a - h) * (a + h)))
    if factor is not None:
        rest = rest * factor
    return xp.exp(-scale * (h * h)) * rest


def _erf_small(xp, x):
    """erf(x) on |x| ≤ 0.46875: x·A(x²)/B(x²) (x is clipped to that interval)."""
    x = xp.clip(x, -_THRESH, _THRESH)
    y = x * x
    num, den = _A[4] * y, y
    for a, b in zip(_A[:3], _B[:3], strict=True):
        num = (num + a) * y
        den = (den + b) * y
    return x * ((num + _A[3]) / (den + _B[3]))


def _erfcx(xp, t):
    """exp(t²)·erfc(t) for t ≥ 0.46875: C(t)/D(t) up to 4, the asymptotic form beyond."""
    t2 = xp.clip(t, _THRESH, 4.0)
    num, den = _C[8] * t2, t2
    for c, d in zip(_C[:7], _D[:7], strict=True):
        num = (num + c) * t2
        den = (den + d) * t2
    mid = (num + _C[7]) / (den + _D[7])
    t3 = xp.clip(t, 4.0, _T_CAP)
    z = 1 / (t3 * t3)
    num, den = _P[5] * z, z
    for p, q in zip(_P[:4], _Q[:4], strict=True):
        num = (num + p) * z
        den = (den + q) * z
    far = (_INV_SQRT_PI - z * ((num + _P[4]) / (den + _Q[4]))) / t3
    return xp.where(t <= 4.0, mid, far)


def _sqrt_exact(xp, x, value):
    """√value as an exact symbolic number (symbolic namespace only)."""
    return xp.sqrt(xp.asarray(value, dtype=x.dtype))


def _normal_cdf(xp, x, factor=None):
    """factor·Φ(x), Φ(x) = (1 + erf(x/√2))/2, accurate in both tails (factor defaults to 1).

    For x < 0 the left tail is Φ(x) = erfc(|x|/√2)/2 = exp(−x²/2)·erfcx(|x|/√2)/2, with
    exp(−x²/2) split on the exact x, so Φ keeps its relative accuracy down to underflow; the
    factor (x, for GELU) is applied before the tiny exponential.
    """
    if _exact(x):
        phi = (1 + xp.erf(x / _sqrt_exact(xp, x, 2))) / 2
        return phi if factor is None else factor * phi
    one = xp.ones_like(x) if factor is None else factor
    a = xp.abs(x)
    t = a * _SQRT_HALF
    half_erfcx = 0.5 * _erfcx(xp, t)
    centre = one * (0.5 + 0.5 * _erf_small(xp, x * _SQRT_HALF))
    lower = _exp_neg_square(xp, a, 0.5, one * half_erfcx)  # factor·Φ(x) for x < 0
    upper = one * (1 - _exp_neg_square(xp, a, 0.5, half_erfcx))  # factor·(1 − Φ(−x))
    return xp.where(t <= _THRESH, centre, xp.where(x < 0, lower, upper))


def _in_dtype(xp, y, x):
    """A library's result in x's dtype (SciPy computes float16 in float32)."""
    return y if y.dtype == x.dtype else xp.astype(y, x.dtype)


#: x·Φ(x) is 0 in every float dtype below x = −40 (Φ(−40) ≈ 4e−350)
_GELU_ZERO_BELOW = -40.0


def _gelu_by_erfc(xp, x, erfc, wide):
    """x·Φ(x) = (x/2)·erfc(−x/√2) with the namespace's own erfc, evaluated in `wide`.

    erfc's condition number is 2t² at t = −x/√2: the rounding of t in x's own dtype would be
    amplified ≈ 160 ulp in float32's left tail (x ≈ −13). In the wider dtype (float64 for a
    float32 x) t is rounded 2²⁹ times more finely, and the library's erfc (a few float64 ulp)
    arrives within ½ float32 ulp of x·Φ(x), subnormal results included. x is clipped at −40,
    where the product has underflowed, so that x = −∞ gives −0, not −∞·0 = NaN.
    Seven passes: clip, two casts, two products, erfc and the final product.
    """
    w = xp.astype(xp.clip(x, min=_GELU_ZERO_BELOW), wide)
    half = 0.5 * w  # exact
    return xp.astype(half * erfc(half * -math.sqrt(2.0)), x.dtype)


def _x_normal_pdf(xp, x):
    """x·φ(x) = x·exp(−x²/2)/√(2π) (x is clipped at ±64, where it has underflowed to 0)."""
    if _exact(x):
        return x * xp.exp(-(x * x) / 2) / _sqrt_exact(xp, x, 2 * xp.pi)
    x = xp.clip(x, -2 * _T_CAP, 2 * _T_CAP)
    return _exp_neg_square(xp, xp.abs(x), 0.5, _INV_SQRT_2PI * x)


SUBNORMAL = "subnormal range"


def _ftz(note: str = SUBNORMAL) -> Limit:
    return Limit(
        "jax", "XLA on the CPU flushes subnormal results and operands to zero (FTZ/DAZ), so "
        "values that are or pass through subnormals come out 0",
        "https://github.com/jax-ml/jax/issues/16200", tiers="R", note=note)


# ============================================================================ ReLU
@equation(
    chapter="activations",
    dtypes=ALL_FLOATS,
    seeds=("001", "002 §4.2.1", "003", "004"),
    oracle="exact",
    identities=(
        Identity("piecewise", "the code is x for x > 0 and 0 for x < 0 (both branches)", "S"),
        Identity("odd_part", "relu(x) − relu(−x) = x", "SP"),
        Identity("idempotent", "relu(relu(x)) = relu(x)", "SP"),
        Identity("nonnegative", "relu(x) ≥ 0; NaN propagates", "PR"),
        Identity("derivative", "d relu/dx = relu_grad, by SymPy, autograd and differences "
                               "(away from the kink at 0)", "D"),
    ),
)
def relu(x, /):
    r"""Rectified linear unit: the positive part of x.

    .. math:: \operatorname{ReLU}(x) = \max(0, x) = x \cdot \mathbb{1}[x > 0]

    Shapes: x any shape → same shape. NaN propagates. Dtypes: exact in every floating dtype,
    float16 and bfloat16 included (nothing is rounded). Source: 002 §4.2.1, 001, 003, 004.
    """
    xp = _float_x(x)
    return xp.maximum(x, xp.zeros_like(x))


@equation(
    chapter="activations",
    dtypes=ALL_FLOATS,
    seeds=("001", "002 §4.2.1"),
    oracle="exact",
    identities=(
        Identity("is_derivative", "equals the SymPy derivative of the traced relu on each "
                                  "branch", "SD"),
        Identity("zero_or_one", "values are 0 or 1 (0 at the kink x = 0, as in PyTorch)", "PR"),
    ),
)
def relu_grad(x, /):
    r"""Derivative of ReLU: 1 where x > 0, else 0 (the subgradient 0 is taken at x = 0).

    .. math:: \operatorname{ReLU}'(x) = \mathbb{1}[x > 0]

    Shapes: x any shape → same shape. NaN propagates. Dtypes: exact in every floating dtype
    (nothing is rounded). Source: 002 §4.2.1 ("gradient is either 0 or 1"), 001.
    """
    xp = _float_x(x)
    step = xp.where(x > 0, xp.ones_like(x), xp.zeros_like(x))
    return xp.where(xp.isnan(x), x, step)


# ============================================================================ leaky ReLU
@equation(
    chapter="activations",
    dtypes=ALL_FLOATS,
    seeds=("001", "003"),
    oracle="exact",
    identities=(
        Identity("piecewise", "the code is x for x > 0 and αx for x < 0 (both branches)", "S"),
        Identity("slope_below_zero", "slope α below 0, 1 above; α = 0 gives relu", "SP"),
        Identity("extremes", "exact at ±∞ and tiny x; NaN propagates", "R"),
        Identity("derivative", "d/dx = leaky_relu_grad by SymPy, autograd and differences", "D"),
    ),
)
def leaky_relu(x, /, *, negative_slope=0.01):
    r"""Leaky ReLU: identity for positive x, slope α below zero.

    .. math:: \operatorname{LeakyReLU}_\alpha(x) = \begin{cases} x & x \ge 0 \\
              \alpha x & x < 0 \end{cases}

    Shapes: x any shape → same shape; α = `negative_slope`, a finite real number.
    NaN propagates. Dtypes: float16 and bfloat16 are computed in float32 (α·x) and rounded
    once to x's dtype. Source: 001 and 003 (the "dying ReLU" fix).
    """
    xp, x, dtype = _widened(x)
    alpha = _real_option(negative_slope, "negative_slope")
    return v.narrow(xp, xp.where(x < 0, alpha * x, x), dtype)


@equation(
    chapter="activations",
    dtypes=ALL_FLOATS,
    seeds=("001",),
    oracle="exact",
    identities=(
        Identity("is_derivative", "equals the SymPy derivative of the traced leaky_relu on "
                                  "each branch", "SD"),
        Identity("two_values", "values are 1 or α (α at x = 0, as in PyTorch)", "PR"),
    ),
)
def leaky_relu_grad(x, /, *, negative_slope=0.01):
    r"""Derivative of leaky ReLU: 1 where x > 0, α elsewhere (α is taken at the kink x = 0).

    .. math:: \operatorname{LeakyReLU}_\alpha'(x) = \begin{cases} 1 & x > 0 \\
              \alpha & x \le 0 \end{cases}

    Shapes: x any shape → same shape. NaN propagates. Dtypes: every floating dtype, α rounded
    once to x's (nothing else is rounded). Source: 001.
    """
    xp = _float_x(x)
    alpha = _real_option(negative_slope, "negative_slope")
    step = xp.where(x > 0, xp.ones_like(x), xp.full_like(x, alpha))
    return xp.where(xp.isnan(x), x, step)


# ============================================================================ sigmoid
@equation(
    chapter="activations",
    dtypes=ALL_FLOATS,
    seeds=("001", "002 §4.2.2", "003"),
    oracle="mpmath",
    limits=(_ftz(),),
    identities=(
        Identity("textbook", "both branches of the stable code equal 1/(1 + e^{−x})", "S"),
        Identity("symmetry", "σ(−x) = 1 − σ(x)", "SP"),
        Identity("range", "0 ≤ σ(x) ≤ 1, monotone", "P"),
        Identity("extremes", "no overflow warning and no NaN at x = ±1000 (float32 and "
                             "float64); σ(±∞) = 1, 0; accurate to a few ulp", "PR"),
        Identity("derivative", "d σ/dx = sigmoid_grad by SymPy, autograd and differences", "D"),
    ),
)
def sigmoid(x, /):
    r"""Logistic sigmoid, computed without overflow for every x.

    .. math:: \sigma(x) = \frac{1}{1 + e^{-x}} = \begin{cases} \dfrac{1}{1 + e^{-|x|}} &
              x \ge 0 \\[1ex] \dfrac{e^{-|x|}}{1 + e^{-|x|}} & x < 0 \end{cases}

    Both branches exponentiate −|x| ≤ 0, so e^{−|x|} ≤ 1 never overflows (the textbook
    e^{−x} overflows for x < −88 in float32), and σ(x) for x ≪ 0 keeps its relative accuracy
    instead of losing it in 1 − something.
    Shapes: x any shape → same shape.
    Dtypes: float16 and bfloat16 are computed in float32 and rounded once to the input's dtype.
    Source: 002 §4.2.2, 001, 003.
    """
    xp, x, dtype = _widened(x)
    return v.narrow(xp, _sigmoid(xp, x), dtype)


@equation(
    chapter="activations",
    dtypes=ALL_FLOATS,
    seeds=("002 §4.2.2", "003"),
    oracle="mpmath",
    limits=(_ftz(),),
    identities=(
        Identity("is_derivative", "equals σ(1 − σ) and the SymPy derivative of the traced "
                                  "sigmoid, on both branches", "SD"),
        Identity("bounds", "0 ≤ σ' ≤ 1/4 with the maximum at 0; even", "P"),
        Identity("accuracy", "a few ulp everywhere, also where 1 − σ(x) rounds to 0", "R"),
    ),
)
def sigmoid_grad(x, /):
    r"""Derivative of the sigmoid, σ(1 − σ), in a form that keeps its accuracy for |x| ≫ 1.

    .. math:: \sigma'(x) = \sigma(x)\bigl(1 - \sigma(x)\bigr) = \sigma(x)\,\sigma(-x)
              = \frac{e^{-|x|}}{\bigl(1 + e^{-|x|}\bigr)^2}

    (σ(x)(1 − σ(x)) computed literally is 0 for x > 37 in float64, where the true value is
    ≈ e^{−x}.) Shapes: x any shape → same shape.
    Dtypes: float16 and bfloat16 are computed in float32 and rounded once to the input's dtype.
    Source: 002 §4.2.2 (vanishing gradients).
    """
    xp, x, dtype = _widened(x)
    return v.narrow(xp, _sigmoid_product(xp, x), dtype)


# ============================================================================ tanh
@equation(
    chapter="activations",
    dtypes=ALL_FLOATS,
    seeds=("001", "002 §4.2.2"),
    oracle="mpmath",
    limits=(Limit("jax", "XLA's float64 tanh is up to 6 ulp from the correctly rounded value near "
              "saturation (|x| ≈ 19), beyond this equation's 4-ulp budget for a library tanh",
              "https://github.com/pearu/functional_algorithms/issues/55", tiers="R",
              note="whole-line sweep"),),
    identities=(
        Identity("textbook", "the code equals (eˣ − e⁻ˣ)/(eˣ + e⁻ˣ)", "S"),
        Identity("via_sigmoid", "tanh(x) = 2σ(2x) − 1", "SP"),
        Identity("odd_and_bounded", "odd; |tanh| ≤ 1", "P"),
        Identity("extremes", "±1 at ±1000 and ±∞; tanh(x) ≈ x for tiny x", "R"),
        Identity("derivative", "d tanh/dx = tanh_grad by SymPy, autograd and differences", "D"),
    ),
)
def tanh(x, /):
    r"""Hyperbolic tangent: a zero-centred sigmoid with range (−1, 1).

    .. math:: \tanh(x) = \frac{e^{x} - e^{-x}}{e^{x} + e^{-x}} = 2\sigma(2x) - 1

    The standard's ``tanh`` is used: 2σ(2x) − 1 is the same function but loses all relative
    accuracy for small |x| (it cancels to 0 at x = 1e−30, where tanh(x) = x).
    Shapes: x any shape → same shape.
    Dtypes: float16 and bfloat16 are computed in float32 and rounded once to the input's dtype.
    Source: 002 §4.2.2, 001.
    """
    xp, x, dtype = _widened(x)
    return v.narrow(xp, xp.tanh(x), dtype)


@equation(
    chapter="activations",
    dtypes=ALL_FLOATS,
    seeds=("002 §4.2.2",),
    oracle="mpmath",
    limits=(_ftz(),),
    identities=(
        Identity("is_derivative", "equals 1 − tanh² and the SymPy derivative of the traced "
                                  "tanh, on both branches", "SD"),
        Identity("bounds", "0 ≤ tanh' ≤ 1 with the maximum at 0; even; = 4σ'(2x)", "P"),
        Identity("accuracy", "a few ulp everywhere, also where 1 − tanh² rounds to 0", "R"),
    ),
)
def tanh_grad(x, /):
    r"""Derivative of tanh, 1 − tanh², in a form that keeps its accuracy for |x| ≫ 1.

    .. math:: \tanh'(x) = 1 - \tanh^2(x) = \operatorname{sech}^2(x)
              = \frac{4 e^{-2|x|}}{\bigl(1 + e^{-2|x|}\bigr)^2}

    (1 − tanh² computed literally is 0 for |x| > 19.1 in float64, where the true value is
    ≈ 4e^{−2|x|}.) Shapes: x any shape → same shape.
    Dtypes: float16 and bfloat16 are computed in float32 and rounded once to the input's dtype.
    Source: 002 §4.2.2.
    """
    xp, x, dtype = _widened(x)
    return v.narrow(xp, 4 * _sigmoid_product(xp, 2 * x), dtype)


# ============================================================================ erf
@equation(
    chapter="activations",
    dtypes=ALL_FLOATS,
    seeds=("001", "002 §4.2.1"),
    oracle="mpmath",
    identities=(
        Identity("odd_and_saturating", "erf(−x) = −erf(x); |erf| ≤ 1; erf(±∞) = ±1; monotone",
                 "P"),
        Identity("symbolic_is_erf", "on exact arithmetic the function is the error function",
                 "S"),
        Identity("accuracy", "a few ulp of mpmath over the whole real line in float32 and "
                             "float64 (10⁵-point sweep), relative accuracy at 1e−30; NaN → NaN",
                 "R"),
        Identity("native_agreement", "agrees with each backend's native erf (scipy, torch, "
                                     "jax) within the float budget, so a native swap is safe",
                 "P"),
        Identity("derivative", "d erf/dx = erf_grad by SymPy, autograd and differences", "D"),
    ),
)
def erf(x, /):
    r"""The error function, written with the Array API standard's functions alone.

    .. math:: \operatorname{erf}(x) = \frac{2}{\sqrt{\pi}} \int_0^x e^{-t^2}\,dt

    The standard has no ``erf``. W. J. Cody's rational approximations (Math. Comp. 23 (1969)
    631–638; the SPECFUN routine CALERF) give it to a few ulp in float64 and float32:
    erf(x) = x·A(x²)/B(x²) for |x| ≤ 0.46875, and erf(x) = ±(1 − erfc(|x|)) beyond, with
    erfc(t) = e^{−t²}·C(t)/D(t) for t ≤ 4 and e^{−t²}/t·(1/√π − t^{−2}P(t^{−2})/Q(t^{−2}))
    above; e^{−t²} is evaluated as e^{−h²}·e^{−(t−h)(t+h)} with h = ⌊64t⌋/64 so that the
    rounding of t² is not amplified. Every branch is evaluated on its own interval (arguments
    clipped) and the result chosen with ``where``, so no intermediate overflows; the input
    dtype is kept throughout for float32 and float64 (float32 is evaluated in float32); float16
    and bfloat16 are computed in float32 and rounded once to the input's dtype (in their own
    precision e^{−h²} and the polynomials overflow: float16's erf(4) would be NaN). Odd by
    construction; erf(±∞) = ±1; NaN propagates.

    That is the pure-standard path, taken on array-api-strict, Dask and any namespace without
    an erf of its own. Where the namespace has one (``torch.special.erf``,
    ``jax.scipy.special.erf``, ``scipy.special.erf`` for NumPy when SciPy is installed,
    ``cupyx.scipy.special.erf``) it is used instead, through the one dispatch point
    `spec/_special.py` (which imports no framework; ``native_special(False)`` turns it off).
    Both are held to the same ulp budget against mpmath, and to that budget of each other.

    On the symbolic namespace (exact arithmetic) this is that namespace's exact ``erf``.
    Shapes: x any shape → same shape. Source: the standard normal CDF Φ(x) = (1 + erf(x/√2))/2
    of GELU (002 §4.2.1, 001).
    """
    xp, x, dtype = _widened(x)
    if _exact(x):
        return xp.erf(x)
    special = _special.functions(xp)
    if special is not None:  # the namespace's own erf (spec/_special.py): one pass
        return v.narrow(xp, _in_dtype(xp, special.erf(x), x), dtype)
    a = xp.abs(x)
    complement = _exp_neg_square(xp, a) * _erfcx(xp, a)  # erfc(|x|)
    return v.narrow(xp, xp.where(a <= _THRESH, _erf_small(xp, x),
                                 xp.where(x < 0, complement - 1, 1 - complement)), dtype)


@equation(
    chapter="activations",
    dtypes=ALL_FLOATS,
    seeds=("002 §4.2.1",),
    oracle="mpmath",
    limits=(_ftz(),),
    identities=(
        Identity("is_derivative", "equals the SymPy derivative of erf", "SD"),
        Identity("bounds", "0 ≤ erf' ≤ 2/√π, even, maximum at 0", "P"),
        Identity("accuracy", "a few ulp to underflow (the split exponential)", "R"),
    ),
)
def erf_grad(x, /):
    r"""Derivative of the error function, a scaled Gaussian.

    .. math:: \operatorname{erf}'(x) = \frac{2}{\sqrt{\pi}} e^{-x^2}

    e^{−x²} is split as in `erf` so the rounding of x² is not amplified for large |x|.
    Shapes: x any shape → same shape.
    Dtypes: float16 and bfloat16 are computed in float32 and rounded once to the input's dtype.
    Source: 002 §4.2.1 (GELU's Φ' = φ).
    """
    xp, x, dtype = _widened(x)
    if _exact(x):
        return 2 * xp.exp(-(x * x)) / _sqrt_exact(xp, x, xp.pi)
    return v.narrow(xp, _exp_neg_square(xp, xp.abs(x), 1.0, xp.full_like(x, _TWO_OVER_SQRT_PI)),
                    dtype)


# ============================================================================ GELU
def _gelu_mode(approximate):
    v.choice(approximate, _GELU_MODES, "approximate")
    return approximate


def _gelu_tanh_argument(x):
    """w = 2u = 2√(2/π)(x + 0.044715x³), so that ½(1 + tanh u) = σ(w)."""
    return (2 * _SQRT_2_OVER_PI) * (x + _GELU_CUBIC * (x * x * x))


@equation(
    chapter="activations",
    dtypes=ALL_FLOATS,
    seeds=("001", "002 §4.2.1", "002 §8.1"),
    oracle="mpmath",
    limits=(_ftz(), _ftz(f"tanh form: {SUBNORMAL}")),
    identities=(
        Identity("textbook", "the exact form is x·(1 + erf(x/√2))/2 and the tanh form "
                             "x·(1 + tanh(√(2/π)(x + 0.044715x³)))/2", "S"),
        Identity("forms_close", "the two forms differ by < 1e−3 everywhere (maximum located)",
                 "P"),
        Identity("limits", "GELU(x) → x for x → ∞, → 0 for x → −∞; GELU(x) ≥ −0.17", "PR"),
        Identity("accuracy", "a few ulp of mpmath, relative, down to underflow in the left "
                             "tail where 1 + erf(x/√2) would cancel", "R"),
        Identity("derivative", "d GELU/dx = gelu_grad by SymPy, autograd and differences "
                               "(both forms)", "D"),
    ),
)
def gelu(x, /, *, approximate="none"):
    r"""Gaussian error linear unit: x weighted by the standard normal probability below it.

    .. math:: \operatorname{GELU}(x) = x\,\Phi(x)
              = \frac{x}{2}\Bigl(1 + \operatorname{erf}\bigl(x/\sqrt{2}\bigr)\Bigr)

    ``approximate="tanh"`` gives the tanh form used by GPT-2 (and PyTorch's option of that
    name), computed as x·σ(2u) — the same function, since ½(1 + tanh u) = σ(2u), without the
    cancellation of 1 + tanh u for x ≪ 0:

    .. math:: \operatorname{GELU}_{\tanh}(x) = \frac{x}{2}\bigl(1 + \tanh u\bigr) = x\,\sigma(2u),
              \qquad u = \sqrt{2/\pi}\,\bigl(x + 0.044715\,x^3\bigr)

    The exact form uses this module's `erf` arithmetic (Cody's approximations); for x < 0
    Φ(x) = erfc(|x|/√2)/2 comes from Cody's erfc form, so GELU keeps its relative accuracy in
    the left tail. Where the namespace has its own erfc (torch, JAX, NumPy with SciPy, CuPy;
    see `spec/_special.py`) and a dtype wider than x's (float64 for float32, float32 for
    float16 and bfloat16), it is (x/2)·erfc(−x/√2) with that erfc, in the wider dtype, rounded
    once: as accurate, in seven passes instead of some forty. A float64 x keeps Cody's form
    (no wider dtype would protect erfc's argument). GELU(−∞) = 0, GELU(+∞) = +∞.
    Dtypes: float16 and bfloat16 are computed in float32 (both forms, either erfc) and rounded
    once to the input's dtype; in float16's own arithmetic Cody's erfc overflows and GELU(±4)
    would be NaN.
    Shapes: x any shape → same shape. Source: 002 §4.2.1 (x·Φ(x)), 002 §8.1 (the MLP), 001.
    """
    xp = _float_x(x)
    mode = _gelu_mode(approximate)
    special = None if mode == "tanh" or _exact(x) else _special.functions(xp)
    wide = None if special is None else _special.wider(xp, x)
    if wide is not None:  # the namespace's own erfc, in a wider dtype (spec/_special.py)
        return _gelu_by_erfc(xp, x, special.erfc, wide)
    x, dtype = v.widen(xp, x)
    finite = _without_neg_inf(xp, x, x)  # GELU(−∞) = 0, where IEEE gives −∞·0 = NaN
    if mode == "tanh":  # beyond |x| = 32, σ(w) is 0 or 1 in every float dtype: no x³ overflow
        out = finite * _sigmoid(xp, _gelu_tanh_argument(_clip(xp, x, 32.0)))
    else:
        out = _normal_cdf(xp, x, finite)
    return v.narrow(xp, out, dtype)


@equation(
    chapter="activations",
    dtypes=ALL_FLOATS,
    seeds=("002 §4.2.1",),
    oracle="mpmath",
    limits=(_ftz(), _ftz(f"tanh form: {SUBNORMAL}")),
    identities=(
        Identity("is_derivative", "equals Φ + xφ and the SymPy derivative of the traced gelu "
                                  "(both forms)", "SD"),
        Identity("limits", "→ 1 for x → ∞, → 0 for x → −∞; 1/2 at 0", "PR"),
        Identity("accuracy", "a few ulp of mpmath (scaled by the terms' size near its zero)",
                 "R"),
    ),
)
def gelu_grad(x, /, *, approximate="none"):
    r"""Derivative of GELU: the normal CDF plus x times the normal density.

    .. math:: \operatorname{GELU}'(x) = \Phi(x) + x\,\varphi(x),
              \qquad \varphi(x) = \frac{e^{-x^2/2}}{\sqrt{2\pi}}

    With ``approximate="tanh"``, the derivative of x·σ(w), w = 2u:

    .. math:: \operatorname{GELU}_{\tanh}'(x) = \sigma(w) + x\,w'\,\sigma(w)\,\sigma(-w),
              \qquad w' = 2\sqrt{2/\pi}\,\bigl(1 + 3 \cdot 0.044715\,x^2\bigr)

    Shapes: x any shape → same shape.
    Dtypes: float16 and bfloat16 are computed in float32 and rounded once to the input's dtype.
    Source: 002 §4.2.1.
    """
    xp, x, dtype = _widened(x)
    if _gelu_mode(approximate) == "tanh":
        xc = _clip(xp, x, 32.0)  # beyond |x| = 32, σ(−|w|) < 1e−1000: the derivative is 0 or 1
        w = _gelu_tanh_argument(xc)
        slope = (2 * _SQRT_2_OVER_PI) * (1 + (3 * _GELU_CUBIC) * (xc * xc))
        out = _sigmoid(xp, w) + xc * slope * _sigmoid_product(xp, w)
    else:
        out = _normal_cdf(xp, x) + _x_normal_pdf(xp, x)
    return v.narrow(xp, out, dtype)


# ============================================================================ SiLU / Swish
def _silu_argument(xp, x, beta: float):
    """z = βx, with x clipped where σ(z) has saturated (|z| ≥ 10⁴: σ(−10⁴) = 0 in every float
    dtype), so that βx never overflows and an infinite x gives a finite z. (The cap 10³⁸ on
    the bound, inside float32's range, matters only for |β| < 10⁻³⁴.)"""
    bound = min(1e4 / abs(beta), 1e38) if beta != 0 else 1e38
    xc = _clip(xp, x, bound)
    return xc if beta == 1.0 else beta * xc


def _silu_grad(xp, z):
    """d/dx x·σ(βx) = σ(z) + z·σ(z)σ(−z) at z = βx, with σ(−z) formed without 1 − σ(z).

    From one e = exp(−|z|): p = σ(|z|) = 1/(1 + e) and q = σ(−|z|) = e·p, so σ(z) is p or q
    by the sign of z and σ(z)σ(−z) = p·q whatever the sign (ten passes in all)."""
    e = _exp_neg_abs(xp, z)
    p = 1 / (1 + e)
    q = e * p
    return xp.where(z >= 0, p, q) + z * (p * q)


def _silu(xp, x, beta: float):
    if beta == 0:
        return x / 2  # σ(0) = 1/2
    # x is clipped only on the side where σ(βx) saturates to 0 (beyond |βx| = 10⁴): there
    # the product is ±0, where x = ∓∞ would give ∞·0 = NaN; on the other side x·σ(βx) → x
    # and x is kept as it is. β = 1: eight passes (clip, σ, the product).
    if beta == 1.0:
        xs = x if _exact(x) else xp.clip(x, min=-1e4)
        return xs * _sigmoid(xp, xs)
    bound = min(1e4 / abs(beta), 1e38)
    xs = x if _exact(x) else xp.clip(x, min=-bound) if beta > 0 else xp.clip(x, max=bound)
    return xs * _sigmoid(xp, _silu_argument(xp, x, beta))


@equation(
    chapter="activations",
    dtypes=ALL_FLOATS,
    seeds=("002 §4.2.1",),
    oracle="mpmath",
    limits=(_ftz(),),
    identities=(
        Identity("textbook", "the code equals x/(1 + e^{−βx}) on both branches", "S"),
        Identity("limits", "→ x for βx → ∞, → 0 for βx → −∞; β = 0 gives x/2; "
                           "silu(x) − silu(−x) = x (β = 1)", "SP"),
        Identity("accuracy", "a few ulp of mpmath; finite at ±1000; silu(−∞) = 0", "R"),
        Identity("derivative", "d/dx = silu_grad by SymPy, autograd and differences", "D"),
    ),
)
def silu(x, /, *, beta=1.0):
    r"""Sigmoid linear unit (Swish): x gated by its own sigmoid.

    .. math:: \operatorname{SiLU}_\beta(x) = x\,\sigma(\beta x) = \frac{x}{1 + e^{-\beta x}}

    β = 1 is SiLU (PyTorch's ``silu``); β is any finite real number (β → ∞ tends to ReLU).
    Uses the overflow-free `sigmoid`; the limit 0 is returned where βx = −∞.
    Shapes: x any shape → same shape. Dtypes: float16 and bfloat16 are computed in float32 and
    rounded once to the input's dtype (float16 cannot even hold the clipping bound 10⁴/|β| for
    |β| < 0.15). Source: 002 §4.2.1 (Swish, the gate of SwiGLU).
    """
    xp, x, dtype = _widened(x)
    beta = _real_option(beta, "beta")
    return v.narrow(xp, _silu(xp, x, beta), dtype)


@equation(
    chapter="activations",
    dtypes=ALL_FLOATS,
    seeds=("002 §4.2.1",),
    oracle="mpmath",
    limits=(_ftz(),),
    identities=(
        Identity("is_derivative", "equals σ(βx)(1 + βx(1 − σ(βx))) and the SymPy derivative "
                                  "of the traced silu, on both branches", "SD"),
        Identity("limits", "→ 1 for βx → ∞, → 0 for βx → −∞; 1/2 at 0; minimum ≈ −0.0998 at "
                           "βx ≈ −2.3994 (β = 1)", "PR"),
        Identity("accuracy", "a few ulp of mpmath (scaled by the terms' size near its zero)",
                 "R"),
    ),
)
def silu_grad(x, /, *, beta=1.0):
    r"""Derivative of SiLU (Swish) with respect to x.

    .. math:: \operatorname{SiLU}_\beta'(x) = \sigma(\beta x)\bigl(1 + \beta x\,(1 -
              \sigma(\beta x))\bigr) = \sigma(\beta x)\bigl(1 + \beta x\,\sigma(-\beta x)\bigr)

    1 − σ(βx) is computed as σ(−βx) (no cancellation).
    Shapes: x any shape → same shape.
    Dtypes: float16 and bfloat16 are computed in float32 and rounded once to the input's dtype.
    Source: 002 §4.2.1.
    """
    xp, x, dtype = _widened(x)
    beta = _real_option(beta, "beta")
    return v.narrow(xp, _silu_grad(xp, _silu_argument(xp, x, beta)), dtype)


# ============================================================================ SwiGLU
def _swiglu_inputs(x, W, V):
    xp = v.namespace(x=x, W=W, V=V)
    for name, a in (("x", x), ("W", W), ("V", V)):
        v.floating(xp, a, name)
    v.same_dtype(x, W, "x and W")
    v.same_dtype(x, V, "x and V")
    v.min_ndim(x, 1, "x")
    for name, a in (("W", W), ("V", V)):
        if a.ndim != 2:
            raise ValueError(f"{name} must be a 2-D (hidden, in) matrix, got shape "
                             f"{tuple(a.shape)}")
    v.same_shape(W, V, "W and V")
    if W.shape[1] != x.shape[-1]:
        raise ValueError(
            f"W and V have in = {W.shape[1]} columns but x has {x.shape[-1]} features "
            f"(its last axis): shapes {tuple(W.shape)} and {tuple(x.shape)}"
        )
    return xp


@equation(
    chapter="activations",
    dtypes=ALL_FLOATS,
    seeds=("002 §4.2.1", "002 §8.2"),
    oracle="mpmath",
    identities=(
        Identity("identity_weights", "with W = V = I it is silu(x)·x", "SP"),
        Identity("textbook", "each output is silu(Σₖ xₖWⱼₖ)·Σₖ xₖVⱼₖ", "S"),
        Identity("linear_in_V", "linear in V: swiglu(x, W, aV₁ + bV₂) = a·… + b·…", "P"),
        Identity("accuracy", "a few ulp of mpmath, normwise over the products' terms", "R"),
        Identity("derivative", "its vjp equals swiglu_vjp by SymPy, autograd and differences",
                 "D"),
    ),
)
def swiglu(x, W, V, /):
    r"""SwiGLU: a Swish-gated linear unit, in the (out, in) weight convention.

    .. math:: \operatorname{SwiGLU}(x, W, V) = \operatorname{Swish}\bigl(x W^\top\bigr)
              \odot \bigl(x V^\top\bigr), \qquad \operatorname{Swish} = \operatorname{SiLU}_1

    Shapes: x (..., in), W and V (hidden, in) → (..., hidden). 002 §4.2.1 writes
    Swish(xW) ⊙ (xV) with W of shape (in, hidden); this is the same map with W stored
    (out, in), as everywhere in the spec. Dtypes: float16 and bfloat16 are computed in float32
    (the products' sums accumulate there) and rounded once to the inputs' dtype.
    Source: 002 §4.2.1, 002 §8.2 (its 12d² MLP).
    """
    xp = _swiglu_inputs(x, W, V)
    (x, W, V), dtype = v.widen(xp, x, W, V)
    gate = xp.matmul(x, xp.matrix_transpose(W))
    return v.narrow(xp, _silu(xp, gate, 1.0) * xp.matmul(x, xp.matrix_transpose(V)), dtype)


@equation(
    chapter="activations",
    dtypes=ALL_FLOATS,
    seeds=("002 §4.2.1",),
    tiers="SPDE",
    identities=(
        Identity("is_sympy_gradient", "equals the SymPy gradient of ⟨g, swiglu(x, W, V)⟩ "
                                      "traced, for x, W and V", "SD"),
        Identity("linear_in_g", "linear in g; g = 0 gives zeros; shapes of x, W, V", "P"),
    ),
)
def swiglu_vjp(x, W, V, g, /):
    r"""Vector-Jacobian product of SwiGLU: the gradients of ⟨g, swiglu(x, W, V)⟩ for x, W, V.

    .. math:: a = xW^\top,\quad b = xV^\top,\quad
              \delta_a = g \odot b \odot \operatorname{SiLU}'(a),\quad
              \delta_b = g \odot \operatorname{SiLU}(a)

    .. math:: \bar{x} = \delta_a W + \delta_b V, \qquad
              \bar{W} = \textstyle\sum_{\text{batch}} \delta_a^\top x, \qquad
              \bar{V} = \textstyle\sum_{\text{batch}} \delta_b^\top x

    Shapes: x (..., in), W and V (hidden, in), g (..., hidden) → a tuple (x̄ of x's shape,
    W̄ and V̄ of W's shape); the batch dimensions are summed for W̄ and V̄.
    Tiers X and R are not declared: the generic harness compares one array per call, and this
    returns three; the D tier (SymPy, autograd, differences) covers it on every backend.
    Dtypes: float16 and bfloat16 are computed in float32 and each gradient is rounded once to
    the inputs' dtype. Source: 002 §4.2.1.
    """
    xp = _swiglu_inputs(x, W, V)
    v.namespace(x=x, W=W, V=V, g=g)
    v.floating(xp, g, "g")
    v.same_dtype(x, g, "x and g")
    expected = (*tuple(x.shape[:-1]), W.shape[0])
    if tuple(g.shape) != expected:
        raise ValueError(f"g must have the output's shape {expected} (x's batch dimensions, "
                         f"then hidden = {W.shape[0]}), got {tuple(g.shape)}")
    (x, W, V, g), dtype = v.widen(xp, x, W, V, g)
    a = xp.matmul(x, xp.matrix_transpose(W))
    b = xp.matmul(x, xp.matrix_transpose(V))
    silu_a = _silu(xp, a, 1.0)
    delta_a = g * b * _silu_grad(xp, _silu_argument(xp, a, 1.0))
    delta_b = g * silu_a
    batch = list(range(x.ndim - 1))
    grad_x = xp.matmul(delta_a, W) + xp.matmul(delta_b, V)
    grad_w = xp.tensordot(delta_a, x, axes=(batch, batch))
    grad_v = xp.tensordot(delta_b, x, axes=(batch, batch))
    return v.narrow(xp, (grad_x, grad_w, grad_v), dtype)


