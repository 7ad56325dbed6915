r"""Generative models: the Gaussian diffusion (DDPM) forward process and its reverse mean.

Time is 1-based as in Ho et al. (2020): the schedule β₁ … β_T is the array ``betas`` with
``betas[t-1] = β_t``; αₜ = 1 − βₜ, ᾱₜ = Π_{s≤t} αₛ and ᾱ₀ = 1. The noise ε is an argument
(randomness is explicit), so every function is deterministic.

A schedule value (``beta_t``, ``alpha_bar_t``) is a real number (any real number type, NumPy's
scalars too) or an array of the inputs' library and dtype broadcastable against them (one value
per example, say). ``betas`` is a 1-D array of the inputs' library or a sequence of real numbers.

Dtypes: float16 and bfloat16 are computed in float32 (the square roots, the cumulative product
ᾱ and 1 − ᾱ) and each result is rounded once to the input dtype; a schedule given as numbers is
taken at that working precision, not first rounded to the low dtype.

Accuracy: ᾱₜ is a cumulative product (``xp.cumulative_prod``, 2024.12; where a library lacks
it, exp of the cumulative sum of log1p(−β)), relative error ≤ t ulp; 1 − ᾱₜ, which cancels
catastrophically as 1 − Π(1 − βₛ) when β is small (t = 1, β = 10⁻⁴ loses 4 of float32's 7
digits), is computed as −expm1(Σ log1p(−βₛ)), also relative error ≈ t ulp.

Source: 004 (the forward process q(xₜ | xₜ₋₁) and the learned reverse p_θ(xₜ₋₁ | xₜ));
the formulas are those of Ho et al. (2020), "Denoising Diffusion Probabilistic Models".
"""

from __future__ import annotations

import math

from . import _validate as v
from ._registry import (
    ALL_FLOATS,
    Identity,
    Variant,
    equation,
    jit_size_limit,
)

__all__ = [
    "alpha_bar",
    "ddpm_posterior_mean",
    "ddpm_reverse_mean",
    "diffusion_forward_step",
    "diffusion_marginal",
    "linear_beta_schedule",
]


def _pair(names: str, x, y):
    """Two arrays of one library and floating dtype with the same shape."""
    first, second = names.split(" and ")
    xp = v.namespace(**{first: x, second: y})
    v.floating(xp, x, first)
    v.floating(xp, y, second)
    v.same_dtype(x, y, names)
    v.same_shape(x, y, names)
    return xp


def _schedule_value(xp, value, name: str, like):
    """A coefficient in [0, 1]: a real number, or an array broadcastable against `like`."""
    if v.is_bool(value):
        raise TypeError(f"{name} must be a real number or an array, got {value!r}")
    if v.is_real_number(value):
        value = float(value)
        if not 0 <= value <= 1:  # NaN fails too
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        return value
    try:
        v.namespace(**{name: value, "x": like})
    except TypeError as exc:
        raise TypeError(f"{name} must be a real number or an array of the inputs' library "
                        f"({exc})") from None
    v.floating(xp, value, name)
    v.same_dtype(like, value, f"{name} and the inputs")
    shape = v.broadcastable(like, value, f"the inputs and {name}")
    if shape != tuple(like.shape):
        raise ValueError(f"{name} of shape {tuple(value.shape)} must broadcast to the inputs' "
                         f"shape {tuple(like.shape)}")
    v.check_values(xp, value, lambda b: (b < 0) | (b > 1),
                   f"{name} must be in [0, 1]; some values are outside")
    return value


def _sqrt(xp, a):
    return math.sqrt(a) if isinstance(a, float) else xp.sqrt(a)


def _cumulative_prod(xp, a):
    """Π along the last axis: the 2024.12 cumulative_prod, else exp(Σ log a) (a > 0)."""
    if hasattr(xp, "cumulative_prod"):
        return xp.cumulative_prod(a, axis=-1)
    return xp.exp(xp.cumulative_sum(xp.log(a), axis=-1))


def _one_minus_alpha_bar(xp, betas):
    """1 − ᾱₜ for every t, without the cancellation of 1 − Π(1 − βₛ)."""
    return -xp.expm1(xp.cumulative_sum(xp.log1p(-betas), axis=-1))


def _betas_for(xp, betas, like):
    """`betas` as a 1-D array on `like`'s device in `like`'s working dtype (float32 for float16
    and bfloat16), checked to lie in [0, 1): an array must have `like`'s dtype; a sequence of
    numbers is taken at the working precision directly."""
    work = v.working_dtype(xp, like.dtype)
    if isinstance(betas, (list, tuple)):
        if not betas or not all(v.is_real_number(b) for b in betas):
            raise TypeError("betas must be a 1-D array or a non-empty sequence of real numbers")
        betas = xp.asarray([float(b) for b in betas], dtype=work, device=v.device(like))
    else:
        try:
            v.namespace(betas=betas, x=like)
        except TypeError as exc:
            raise TypeError(f"betas must be a 1-D array of the inputs' library or a sequence of "
                            f"numbers ({exc})") from None
        v.floating(xp, betas, "betas")
        v.same_dtype(like, betas, "betas and the inputs")
    if betas.ndim != 1 or betas.shape[0] == 0:
        raise ValueError(f"betas must be a non-empty 1-D schedule, got shape {tuple(betas.shape)}")
    v.check_values(xp, betas, lambda b: (b < 0) | (b >= 1) | xp.isnan(b),
                   "betas must be in [0, 1); some values are outside")
    betas, _ = v.widen(xp, betas)
    return betas


def _step(t, num_steps: int) -> int:
    t = v.integer_option(t, "t", what="an integer time step")
    if not 1 <= t <= num_steps:
        raise ValueError(f"t must be in [1, {num_steps}] (1-based, T = len(betas)), got {t}")
    return t


def _ddpm_terms(xp, betas, t: int):
    """βₜ, √αₜ, √ᾱₜ₋₁, 1 − ᾱₜ₋₁, 1 − ᾱₜ and whether 1 − ᾱₜ = 0, at the 1-based step t > 1.

    1 − ᾱₜ is 0 only when β₁ … βₜ are all 0 (no noise added yet: xₜ = x₀), where the means'
    coefficients are 0/0; there it is returned as 1, a safe divisor, and the flag says so."""
    alpha_bars = alpha_bar(betas)
    complements = _one_minus_alpha_bar(xp, betas)
    beta_t = betas[t - 1]
    sqrt_ab_prev, one_minus_ab_prev = xp.sqrt(alpha_bars[t - 2]), complements[t - 2]
    one_minus_ab = complements[t - 1]
    # decided from the βs, not from the rounded 1 − ᾱₜ: the two agree (−expm1(Σ log1p(−β)) is
    # at least the smallest nonzero β, never 0 after one), and a symbolic schedule of positive
    # βs decides βₛ = 0 where it cannot decide 1 − Π(1 − βₛ) = 0
    noiseless = xp.all(betas[:t] == 0)
    safe = xp.where(noiseless, xp.ones_like(one_minus_ab), one_minus_ab)
    return beta_t, xp.sqrt(1.0 - beta_t), sqrt_ab_prev, one_minus_ab_prev, safe, noiseless


# --------------------------------------------------------------------------------------------
@equation(
    chapter="diffusion",
    dtypes=ALL_FLOATS,
    seeds=("004",),
    oracle="mpmath",
    identities=(
        Identity("variance_preserving", "the coefficients satisfy (√(1−β))² + (√β)² = 1, so "
                 "unit-variance data stays unit-variance", "SP"),
        Identity("composition", "t steps compose to the marginal: x₀ coefficient Π√(1−βₛ) = "
                 "√ᾱₜ, noise variance 1 − ᾱₜ", "S"),
        Identity("per_example", "an array β (one per example, broadcastable against x_prev) "
                 "gives each example what its own β as a number gives", "P"),
        Identity("gradient", "∂xₜ/∂xₜ₋₁ = √(1−β), ∂xₜ/∂ε = √β", "D"),
        Identity("accuracy", "within its ulp budget of the exact value", "R"),
    ),
)
def diffusion_forward_step(x_prev, eps, /, *, beta_t):
    r"""One step of the forward (noising) process q(xₜ | xₜ₋₁) of a diffusion model.

    .. math:: x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\varepsilon

    With ε ~ N(0, I) independent of xₜ₋₁, Var xₜ = (1 − βₜ) Var xₜ₋₁ + βₜ: unit-variance data
    stays unit-variance (the "variance-preserving" process). βₜ ∈ [0, 1], a Python number or
    an array broadcastable against x_prev (one β per example).
    Shapes: x_prev and eps of one shape → that shape. Dtypes: float16 and bfloat16 are
    computed in float32 and rounded once. Source: 004 (q(xₜ | xₜ₋₁)); Ho et al. (2020) eq. 2.
    """
    xp = _pair("x_prev and eps", x_prev, eps)
    beta_t = _schedule_value(xp, beta_t, "beta_t", x_prev)
    if isinstance(beta_t, float):
        (x_prev, eps), dtype = v.widen(xp, x_prev, eps)
    else:
        (x_prev, eps, beta_t), dtype = v.widen(xp, x_prev, eps, beta_t)
    return v.narrow(xp, _sqrt(xp, 1.0 - beta_t) * x_prev + _sqrt(xp, beta_t) * eps, dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="diffusion",
    dtypes=ALL_FLOATS,
    seeds=("004",),
    oracle="mpmath",
    identities=(
        Identity("composition", "equals t composed forward steps in distribution (same x₀ "
                 "coefficient and noise variance)", "SP"),
        Identity("endpoints", "ᾱ = 1 gives x₀; ᾱ = 0 gives ε", "P"),
        Identity("per_example", "an array ᾱ (one per example, broadcastable against x0) gives "
                 "each example what its own ᾱ as a number gives", "P"),
        Identity("gradient", "∂xₜ/∂x₀ = √ᾱₜ", "D"),
        Identity("accuracy", "within its ulp budget of the exact value", "R"),
    ),
)
def diffusion_marginal(x0, eps, /, *, alpha_bar_t):
    r"""Jump straight to step t of the forward process: the marginal q(xₜ | x₀).

    .. math:: x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,
              \qquad \bar\alpha_t = \prod_{s=1}^{t}(1-\beta_s)

    Composing t forward steps gives x₀ the coefficient Π√(1−βₛ) = √ᾱₜ and a sum of independent
    Gaussian noises of total variance 1 − ᾱₜ, hence this one-shot form (the reason DDPM
    training can sample any t directly). ᾱₜ ∈ [0, 1]: a Python number or an array
    broadcastable against x0. Shapes: x0 and eps of one shape → that shape. Dtypes: float16
    and bfloat16 are computed in float32 and rounded once. Source: 004; Ho et al. (2020) eq. 4.
    """
    xp = _pair("x0 and eps", x0, eps)
    alpha_bar_t = _schedule_value(xp, alpha_bar_t, "alpha_bar_t", x0)
    if isinstance(alpha_bar_t, float):
        (x0, eps), dtype = v.widen(xp, x0, eps)
    else:
        (x0, eps, alpha_bar_t), dtype = v.widen(xp, x0, eps, alpha_bar_t)
    return v.narrow(xp, _sqrt(xp, alpha_bar_t) * x0 + _sqrt(xp, 1.0 - alpha_bar_t) * eps, dtype)


# --------------------------------------------------------------------------------------------
_SCHEDULES = ("linear", "scaled_linear")


@equation(
    chapter="diffusion",
    dtypes=ALL_FLOATS,
    seeds=("004",),
    tiers="PE",
    limits=(jit_size_limit("num_steps as a 0-d integer array", tiers="P"),),
    identities=(
        Identity("endpoints", "starts at β_start and ends at β_end exactly", "P"),
        Identity("linear", "within 2 ulp (of the larger endpoint) of the exact rational "
                 "schedule; monotone up to rounding", "P"),
        Identity("namespace", "dtype and device follow `like`, or `xp`, `dtype` and `device`; "
                 "NumPy (float64) when neither is given; on every backend", "P"),
        Identity("scaled_linear", "schedule='scaled_linear' is the square of the linear "
                 "schedule of √β_start … √β_end (Stable Diffusion's), equal to an independent "
                 "reference of that form and told apart from the default mid-schedule", "P"),
    ),
    variants=(
        Variant("linear", {"schedule": "linear"}, "Ho et al. (2020); diffusers' "
                "beta_schedule='linear'", "β linear in the step", default=True),
        Variant("scaled_linear", {"schedule": "scaled_linear"},
                "Stable Diffusion (Rombach et al., 2022); diffusers' "
                "beta_schedule='scaled_linear'",
                "√β linear in the step: the same ends, a smaller middle (1000 steps from "
                "0.00085 to 0.012: β₅₀₀ = 0.0048 against 0.0064)"),
    ),
)
def linear_beta_schedule(num_steps, /, *, beta_start, beta_end, like=None,
                         schedule="linear", xp=None, dtype=None, device=None):
    r"""The linear noise schedule of DDPM: T values from β_start to β_end.

    .. math:: \beta_i = \beta_{start}\Bigl(1 - \frac{i}{T-1}\Bigr)
              + \beta_{end}\,\frac{i}{T-1}, \qquad i = 0, \dots, T - 1

    It takes no array, so the caller names where to build it: ``like=x`` (any floating array:
    its library, dtype and device), or ``xp=``, ``dtype=`` and ``device=`` (NumPy, its default
    floating dtype and device when not given, as SciPy's array-API functions default):
    ``linear_beta_schedule(1000, beta_start=1e-4, beta_end=0.02)`` is Ho et al.'s schedule
    in NumPy float64. Both ends are exact: β_start at i = 0 and β_end at i = T − 1 are set to
    the endpoints rounded once to the dtype (a library may divide by T − 1 inexactly, as XLA
    does). T = 1 gives [β_start], as ``linspace`` does. 0 ≤ β < 1 at both ends (any real
    number type). num_steps is a Python int or anything with ``__index__`` (a 0-d integer
    array). ``schedule="scaled_linear"`` is Stable Diffusion's variant, the square of the
    linear schedule from √β_start to √β_end. Shapes: → (T,).
    Dtypes: float16 and bfloat16 are computed in float32 and rounded once.
    Source: 004; Ho et al. (2020) §4.
    """
    num_steps = v.integer_option(num_steps, "num_steps")
    if num_steps < 1:
        raise ValueError(f"num_steps must be ≥ 1, got {num_steps}")
    for name, b in (("beta_start", beta_start), ("beta_end", beta_end)):
        if not v.is_real_number(b):
            raise TypeError(f"{name} must be a real number, got {type(b).__name__}")
        if not 0 <= b < 1:
            raise ValueError(f"{name} must be in [0, 1), got {b!r}")
    beta_start, beta_end = float(beta_start), float(beta_end)
    v.choice(schedule, _SCHEDULES, "schedule")
    if like is not None:
        if xp is not None or dtype is not None or device is not None:
            raise TypeError("give like= or xp=/dtype=/device=, not both: like names the "
                            "library, dtype and device itself")
        xp = v.namespace(like=like)
        v.floating(xp, like, "like")
        dtype, device = like.dtype, v.device(like)
    else:
        xp = v.namespace_or_numpy(xp)
        dtype = v.dtype_option(xp, dtype, device)
    work = v.working_dtype(xp, dtype)
    steps = xp.arange(num_steps, dtype=work, device=device)
    frac = steps / max(num_steps - 1, 1)
    if schedule == "linear":
        betas = beta_start * (1.0 - frac) + beta_end * frac
    else:
        roots = math.sqrt(beta_start) * (1.0 - frac) + math.sqrt(beta_end) * frac
        betas = roots * roots
    betas = v.narrow(xp, betas, dtype)
    # the ends rounded once from the Python numbers: XLA divides by a constant as a product
    # with its rounded reciprocal, so i/(T−1) can miss 1 at i = T−1
    # (https://github.com/tensorflow/tensorflow/issues/24061), the scaled form squares a
    # rounded root, and a low precision would round β_start twice (to float32, then down)
    betas = xp.where(steps == 0, xp.full_like(betas, beta_start), betas)
    if num_steps == 1:
        return betas  # [β_start], as linspace gives
    return xp.where(steps == num_steps - 1, xp.full_like(betas, beta_end), betas)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="diffusion",
    dtypes=ALL_FLOATS,
    seeds=("004",),
    oracle="mpmath",
    identities=(
        Identity("product", "the code is Π_{s≤t}(1 − βₛ); where a library lacks "
                 "cumulative_prod, its fallback exp(Σ log(1 − βₛ)) is that product within "
                 "4t ulp", "SP"),
        Identity("decreasing_unit_interval", "ᾱ is decreasing and in (0, 1] for 0 < β < 1", "P"),
        Identity("gradient", "∂ᾱₜ/∂βₛ = −ᾱₜ/(1 − βₛ) for s ≤ t, else 0", "D"),
        Identity("accuracy", "relative error ≤ t ulp (the 1000-step schedule included)", "PR"),
    ),
)
def alpha_bar(betas, /):
    r"""The cumulative signal fraction ᾱₜ of a noise schedule: Π_{s≤t}(1 − βₛ).

    .. math:: \bar\alpha_t = \prod_{s=1}^{t} (1 - \beta_s)

    A cumulative product (the standard's ``cumulative_prod``, 2024.12; the fallback for a
    library without it is exp(cumulative_sum(log1p(−β)))): each factor and each product is
    one rounding, so ᾱₜ has relative error ≤ t ulp (≈ √t typically); the log form loses about
    |log ᾱₜ|·t ulp instead. β ∈ [0, 1]; β = 1 makes every later ᾱ exactly 0.
    Shapes: betas (..., T) → (..., T). Dtypes: float16 and bfloat16 are multiplied in float32
    (ᾱ₁₀₀₀ ≈ 4e-5 of Ho et al.'s schedule is below float16's normal range) and rounded once.
    Source: 004; Ho et al. (2020) §2.
    """
    xp = v.namespace(betas=betas)
    v.floating(xp, betas, "betas")
    v.min_ndim(betas, 1, "betas")
    v.nonempty_axis(betas, betas.ndim - 1, "betas")
    v.check_values(xp, betas, lambda b: (b < 0) | (b > 1),
                   "betas must be in [0, 1]; some values are outside")
    betas, dtype = v.widen(xp, betas)
    return v.narrow(xp, _cumulative_prod(xp, 1.0 - betas), dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="diffusion",
    dtypes=ALL_FLOATS,
    seeds=("004",),
    oracle="mpmath",
    identities=(
        Identity("equals_reverse_mean", "equals ddpm_reverse_mean(xₜ, ε) when xₜ = "
                 "√ᾱₜ x₀ + √(1−ᾱₜ) ε", "SP"),
        Identity("first_step", "at t = 1 the posterior mean is x₀ exactly, for every β₁ "
                 "(β₁ = 0 included, where the formula is 0/0)", "SPR"),
        Identity("gradient", "linear in x₀ and xₜ with the stated coefficients", "D"),
        Identity("accuracy", "within its ulp budget of the exact value", "R"),
    ),
)
def ddpm_posterior_mean(x_t, x0, /, *, betas, t):
    r"""Mean of the forward-process posterior q(xₜ₋₁ | xₜ, x₀), the target of DDPM's reverse step.

    .. math:: \tilde\mu_t(x_t, x_0) = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}
              \,x_0 + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t

    t is 1-based (1 ≤ t ≤ T = len(betas)) with ᾱ₀ = 1, so at t = 1 the mean is x₀ exactly:
    the coefficients are β₁/β₁ and 0, and x₀ is returned (a new array) without forming them,
    so β₁ = 0 (no noise at the first step, where they are 0/0) gives x₀ too; at a later t
    with β₁ … βₜ all 0 (1 − ᾱₜ = 0: xₜ is x₀) the coefficients are their limits 1 and 0.
    ``betas``: a 1-D array of x_t's library and dtype, or a sequence of numbers, in [0, 1).
    Shapes: x_t and x0 of one shape → that shape. Dtypes: float16 and bfloat16 are computed
    in float32 and rounded once. Source: 004 (p_θ(xₜ₋₁ | xₜ)); Ho et al. (2020) eq. 7.
    """
    xp = _pair("x_t and x0", x_t, x0)
    betas = _betas_for(xp, betas, x_t)
    t = _step(t, betas.shape[0])
    (x_t, x0), dtype = v.widen(xp, x_t, x0)
    if t == 1:  # q(x₀ | x₁, x₀) is x₀ itself: no 0/0 when β₁ = 0
        return v.narrow(xp, 1.0 * x0, dtype)
    beta_t, sqrt_alpha_t, sqrt_ab_prev, one_minus_ab_prev, one_minus_ab, noiseless = (
        _ddpm_terms(xp, betas, t))
    # where β₁ … βₜ are all 0 the coefficients are 0/0, their limit 1 and 0 (xₜ = x₀): the
    # x_t coefficient is 0 by itself there (1 − ᾱₜ₋₁ = 0), the x₀ coefficient is set to 1
    c_x0 = xp.where(noiseless, xp.ones_like(beta_t), sqrt_ab_prev * beta_t / one_minus_ab)
    return v.narrow(xp, c_x0 * x0 + (sqrt_alpha_t * one_minus_ab_prev / one_minus_ab) * x_t,
                    dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="diffusion",
    dtypes=ALL_FLOATS,
    seeds=("004",),
    oracle="mpmath",
    identities=(
        Identity("equals_posterior_mean", "equals ddpm_posterior_mean(xₜ, x₀) when ε is the "
                 "noise that made xₜ from x₀", "SP"),
        Identity("first_step", "at t = 1 (1 − ᾱ₁ = β₁) the mean is (x₁ − √β₁ ε)/√(1 − β₁): "
                 "finite for β₁ = 0, where it is x₁", "PR"),
        Identity("gradient", "∂μ/∂ε = −βₜ/(√αₜ √(1−ᾱₜ))", "D"),
        Identity("accuracy", "within its ulp budget of the exact value", "R"),
    ),
)
def ddpm_reverse_mean(x_t, eps_pred, /, *, betas, t):
    r"""Mean of the learned reverse step p_θ(xₜ₋₁ | xₜ) in DDPM's ε-parameterisation.

    .. math:: \mu_\theta(x_t, t) = \frac{1}{\sqrt{\alpha_t}}\Bigl(x_t
              - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\varepsilon_\theta(x_t, t)\Bigr)

    A network predicts the noise ε_θ; substituting x₀ = (xₜ − √(1−ᾱₜ) ε)/√ᾱₜ into the
    posterior mean gives this form, so the two agree exactly when the prediction is the true
    noise. t is 1-based; ``betas`` as in :func:`ddpm_posterior_mean`. At t = 1, where
    1 − ᾱ₁ = β₁, the noise coefficient β₁/√(1 − ᾱ₁) is computed as √β₁: one rounding, and no
    0/0 when β₁ = 0 (the mean is then x₁); at a later t with β₁ … βₜ all 0 the noise
    coefficient is its limit 0 (it is ≤ √βₜ) and the mean xₜ.
    Shapes: x_t and eps_pred of one shape → that shape. Dtypes: float16 and bfloat16 are
    computed in float32 and rounded once. Source: 004; Ho et al. (2020) eq. 11.
    """
    xp = _pair("x_t and eps_pred", x_t, eps_pred)
    betas = _betas_for(xp, betas, x_t)
    t = _step(t, betas.shape[0])
    (x_t, eps_pred), dtype = v.widen(xp, x_t, eps_pred)
    if t == 1:  # 1 − ᾱ₁ = β₁: β₁/√(1 − ᾱ₁) = √β₁, without 0/0 at β₁ = 0
        beta_1 = betas[0]
        return v.narrow(xp, (x_t - xp.sqrt(beta_1) * eps_pred) / xp.sqrt(1.0 - beta_1), dtype)
    # where β₁ … βₜ are all 0 (1 − ᾱₜ = 0, returned as 1) the noise coefficient is βₜ = 0,
    # its limit, not 0/0: the mean is xₜ
    beta_t, sqrt_alpha_t, _, _, one_minus_ab, _ = _ddpm_terms(xp, betas, t)
    return v.narrow(xp, (x_t - (beta_t / xp.sqrt(one_minus_ab)) * eps_pred) / sqrt_alpha_t,
                    dtype)


