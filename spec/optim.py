r"""Optimisation: functional update rules, a learning-rate schedule, gradient clipping,
minibatch and numerical gradients, and the second-derivative test.

Every update is a pure function: it returns new arrays (the parameters, then the optimizer
state in the order the state was passed in) and never modifies its inputs, so a training loop
reads ``theta, m, v = adam_step(theta, m, v, grad, step=t)``. Hyperparameters are Python
numbers, checked before any arithmetic.

Sources: 000 and 001 (gradient descent, Adam), 002 §3 (derivatives, the Hessian, SGD,
momentum, Adam, schedules), 002 §4.5 (gradient clipping), 003 (the (x − 3)² example, RMSprop,
momentum, clipping).
"""

from __future__ import annotations

import math
import numbers

from . import _validate as check
from ._registry import ALL_FLOATS, Identity, Limit, Variant, equation
from .linalg import _linalg, _scaled_norm

__all__ = [
    "adam_step",
    "classify_critical_point",
    "clip_grad_norm",
    "minibatch_gradient",
    "momentum_step",
    "numerical_gradient",
    "rmsprop_step",
    "sgd_step",
    "warmup_cosine_lr",
]


# --------------------------------------------------------------------------------------------
# checks of hyperparameters and of parameter/state arrays
def _real(value, name: str) -> float:
    """A finite real option (any real number type, NumPy's scalars too; never a bool)."""
    value = check.real_number(value, name)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def _nonnegative(value, name: str) -> float:
    value = _real(value, name)
    if value < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    return value


def _decay(value, name: str) -> float:
    value = _real(value, name)
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return value


def _count(value, name: str, low: int) -> int:
    value = check.integer_option(value, name)
    if value < low:
        raise ValueError(f"{name} must be an integer ≥ {low}, got {value}")
    return value


def _parameters(**arrays):
    """The namespace of theta and its gradient/state: floating, one dtype, theta's shape."""
    xp = check.namespace(**arrays)
    (first, theta), *rest = arrays.items()
    for name, x in arrays.items():
        check.floating(xp, x, name)
    for name, x in rest:
        check.same_dtype(theta, x, f"{first} and {name}")
        check.same_shape(theta, x, f"{first} and {name}")
    return xp


# --------------------------------------------------------------------------------------------
@equation(
    chapter="optim",
    dtypes=ALL_FLOATS,
    seeds=("000", "001", "002 §3.2.1", "003", "004"),
    oracle="mpmath",
    identities=(
        Identity("formula", "the code is θ − η g exactly", "S"),
        Identity("quadratic_rate", "on f(x) = (x − 3)² (003) the iterates satisfy "
                 "x_t − 3 = (1 − 2η)ᵗ (x₀ − 3) exactly: convergence to 3 for 0 < η < 1", "SP"),
        Identity("descent", "a small step along −∇f lowers a smooth f", "P"),
        Identity("lr_zero_is_identity", "lr = 0 returns θ bit for bit, and no step modifies "
                 "its inputs", "P"),
        Identity("gradient", "∂θ'/∂θ = I and ∂θ'/∂g = −ηI", "D"),
        Identity("accuracy", "within its ulp budget of the exact update", "R"),
    ),
)
def sgd_step(theta, grad, /, *, lr):
    r"""One step of (stochastic) gradient descent: move the parameters against the gradient.

    .. math:: \theta_{t+1} = \theta_t - \eta \, \nabla_\theta L(\theta_t)

    Shapes: theta and grad of the same shape → theta's shape; lr = η ≥ 0 (a number).
    Dtypes: float16 and bfloat16 are computed in float32 and rounded once.
    Source: 000, 001, 002 §3.2.1, 003 (worked example on (x − 3)²), 004.
    """
    xp = _parameters(theta=theta, grad=grad)
    lr = _nonnegative(lr, "lr")
    (theta, grad), dtype = check.widen(xp, theta, grad)
    return check.narrow(xp, theta - lr * grad, dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="optim",
    dtypes=ALL_FLOATS,
    seeds=("002 §3.2.2", "003"),
    tiers="SPDE",
    identities=(
        Identity("formula", "the code is the EMA form v' = βv + (1−β)g, θ' = θ − ηv'", "S"),
        Identity("beta_zero_is_sgd", "β = 0 is sgd_step (in both forms)", "SP"),
        Identity("heavy_ball", "equals PyTorch's heavy-ball SGD (torch.optim.SGD, momentum β, "
                 "dampening 0) run with lr η(1−β): its buffer b = v/(1−β); form='heavy_ball' "
                 "is that SGD itself, with lr η", "P"),
        Identity("average_of_gradients", "a constant gradient g gives v_t = (1 − βᵗ)g", "P"),
        Identity("accuracy", "θ' and v' within their ulp budget of the exact update (mpmath)",
                 "P"),
        Identity("gradient", "∂θ'/∂g = −η(1−β)I, by SymPy, autograd and differences", "D"),
    ),
    variants=(
        Variant("ema", {"form": "ema"}, "002 §3.2.2 (v as an average of the gradients)",
                "the velocity is an average: the first step from rest moves by η(1−β)g",
                default=True),
        Variant("heavy_ball", {"form": "heavy_ball"}, "torch.optim.SGD(momentum=β, "
                "dampening=0), optax.sgd(momentum=β) (Polyak's heavy ball)",
                "the velocity is a sum b ← βb + g: the first step from rest moves by ηg, "
                "1/(1−β) times the EMA form's (10× at β = 0.9)"),
    ),
)
def momentum_step(theta, velocity, grad, /, *, lr, beta=0.9, form="ema"):
    r"""One step of gradient descent with momentum, velocity as an average of past gradients.

    .. math:: v_{t+1} = \beta v_t + (1 - \beta)\, g_t, \qquad
              \theta_{t+1} = \theta_t - \eta\, v_{t+1}

    The exponential-moving-average form of 002 §3.2.2: v averages the gradients over about
    1/(1 − β) steps. PyTorch's ``SGD(momentum=β)`` keeps the unnormalised buffer
    b ← βb + g instead, which is v/(1 − β); the two give the same iterates when PyTorch's lr is
    η(1 − β). ``form="heavy_ball"`` computes that buffer form itself (v ← βv + g,
    θ ← θ − ηv, as ``torch.optim.SGD`` with dampening 0). Start with velocity = 0. Returns
    ``(theta, velocity)``, both new arrays.
    Shapes: theta, velocity, grad of one shape; lr ≥ 0, 0 ≤ β < 1. Dtypes: float16 and
    bfloat16 are computed in float32 and each output is rounded once. Source: 002 §3.2.2, 003.
    """
    xp = _parameters(theta=theta, velocity=velocity, grad=grad)
    lr = _nonnegative(lr, "lr")
    beta = _decay(beta, "beta")
    check.choice(form, ("ema", "heavy_ball"), "form")
    (theta, velocity, grad), dtype = check.widen(xp, theta, velocity, grad)
    if form == "ema":
        velocity = beta * velocity + (1.0 - beta) * grad
    else:
        velocity = beta * velocity + grad
    return check.narrow(xp, (theta - lr * velocity, velocity), dtype)


# --------------------------------------------------------------------------------------------
_EPS_FORMS = ("after_root", "hat", "inside_root")


@equation(
    chapter="optim",
    dtypes=ALL_FLOATS,
    seeds=("000", "002 §3.2.3", "003"),
    tiers="SPDE",
    errata=(
        "002's summary table ('Summary: Mathematical Building Blocks') writes the Adam update "
        "θ −= η·m̂/√(v̂+ε), with ε inside the square root; 002 §3.2.3 itself, Kingma & Ba "
        "(2015) and PyTorch put it outside, η·m̂/(√v̂ + ε), which is what the spec implements. "
        "They differ wherever v̂ is not ≫ ε: for a gradient of 1e-3 and ε = 1e-2 the first step "
        "is η·0.091 (outside) against η·0.0100 (inside).",
    ),
    identities=(
        Identity("formula", "the code equals the bias-corrected update with ε outside the "
                 "square root, exactly", "S"),
        Identity("first_step_sign", "the first step (m = v = 0, step = 1) moves each parameter "
                 "by η·g/(|g| + ε) ≈ η·sign(g)", "SP"),
        Identity("matches_pytorch", "a 100-step trajectory equals torch.optim.Adam's in "
                 "float64", "P"),
        Identity("epsilon_outside", "ε outside the square root, not inside (002's summary "
                 "table), told apart with ε = 1e-2", "P"),
        Identity("epsilon_forms", "eps_form='hat' is Kingma & Ba's ε̂ form (TensorFlow's) and "
                 "eps_form='inside_root' is √(v̂ + ε), each equal to an independent reference "
                 "of its form and told apart from the default at g = 1e-3, ε = 1e-2", "P"),
        Identity("accuracy", "θ', m and v within their ulp budget of the exact update "
                 "(mpmath)", "P"),
        Identity("gradient", "∂θ'/∂g by SymPy, autograd and differences agree", "D"),
    ),
    variants=(
        Variant("epsilon_after_root", {"eps_form": "after_root"},
                "Kingma & Ba (2015) Algorithm 1, torch.optim.Adam, optax.adam",
                "θ − η·m̂/(√v̂ + ε)", default=True),
        Variant("epsilon_hat", {"eps_form": "hat"},
                "Kingma & Ba (2015) §2's efficient form: tf.keras.optimizers.Adam, "
                "tf.compat.v1.train.AdamOptimizer (their epsilon is ε̂)",
                "θ − η_t·m/(√v + ε̂), η_t = η√(1−β₂ᵗ)/(1−β₁ᵗ): ε̂ = ε√(1−β₂ᵗ), so at "
                "step 1 (β₂ = 0.999) the same ε weighs 32× more; g = 1e-3, ε = 1e-2 moves "
                "η·0.0031 instead of η·0.091"),
        Variant("epsilon_inside_root", {"eps_form": "inside_root"},
                "002's summary table; optax.scale_by_adam's eps_root (with eps = 0)",
                "θ − η·m̂/√(v̂ + ε): g = 1e-3, ε = 1e-2 moves η·0.0100 instead of η·0.091"),
    ),
)
def adam_step(theta, m, v, grad, /, *, step, lr=3e-4, beta1=0.9, beta2=0.999, eps=1e-8,
              eps_form="after_root"):
    r"""One Adam update: bias-corrected moving averages of the gradient and its square.

    .. math:: m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
              v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2

    .. math:: \hat m_t = \frac{m_t}{1 - \beta_1^t}, \qquad
              \hat v_t = \frac{v_t}{1 - \beta_2^t}, \qquad
              \theta_t = \theta_{t-1} - \eta \, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}

    `step` is t, the number of this update counting from 1 (the bias corrections need it).
    Start with m = v = 0; the first step is η·g/(|g| + ε) ≈ η·sign(g) per parameter.
    Returns ``(theta, m, v)``, all new arrays. Shapes: theta, m, v, grad of one shape.

    Named variants (``eps_form``): ``"after_root"`` (the default, above); ``"hat"``, Kingma &
    Ba's efficient form that TensorFlow and Keras compute, θ − η_t·m/(√v + ε) with
    η_t = η√(1 − β₂ᵗ)/(1 − β₁ᵗ), whose ε is the paper's ε̂ = ε√(1 − β₂ᵗ); ``"inside_root"``,
    θ − η·m̂/√(v̂ + ε) (002's summary table; Optax's ``eps_root``). m and v are the same in
    all three.

    Erratum: 002's summary table writes θ −= η·m̂/√(v̂ + ε), with ε inside the square root;
    002 §3.2.3, Kingma & Ba (2015) and ``torch.optim.Adam`` use √v̂ + ε, as here. The two
    differ wherever v̂ is not much larger than ε.
    Dtypes: float16 and bfloat16 are computed in float32 (g² and v̂ overflow float16 past
    |g| = 256) and each output is rounded once; state kept in float16 underflows (v below
    6e-8 is 0), so low-precision training keeps m and v in float32.
    Source: 002 §3.2.3 (and 000, 003).
    """
    xp = _parameters(theta=theta, m=m, v=v, grad=grad)
    step = _count(step, "step", 1)
    lr = _nonnegative(lr, "lr")
    beta1 = _decay(beta1, "beta1")
    beta2 = _decay(beta2, "beta2")
    eps = _nonnegative(eps, "eps")
    check.choice(eps_form, _EPS_FORMS, "eps_form")
    (theta, m, v, grad), dtype = check.widen(xp, theta, m, v, grad)
    m = beta1 * m + (1.0 - beta1) * grad
    v = beta2 * v + (1.0 - beta2) * grad * grad
    if eps_form == "hat":
        # the bias corrections folded into the step size, as TensorFlow does
        lr_t = lr * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
        return check.narrow(xp, (theta - lr_t * m / (xp.sqrt(v) + eps), m, v), dtype)
    m_hat = m / (1.0 - beta1**step)
    v_hat = v / (1.0 - beta2**step)
    root = xp.sqrt(v_hat) + eps if eps_form == "after_root" else xp.sqrt(v_hat + eps)
    return check.narrow(xp, (theta - lr * m_hat / root, m, v), dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="optim",
    dtypes=ALL_FLOATS,
    seeds=("003",),
    tiers="SPDE",
    identities=(
        Identity("formula", "the code is the update above, exactly", "S"),
        Identity("scale_invariant", "scaling the gradients by c > 0 (and the running average "
                 "by c²) leaves the step unchanged; exactly when ε = 0", "SP"),
        Identity("matches_pytorch", "a 50-step trajectory equals torch.optim.RMSprop's in "
                 "float64", "P"),
        Identity("epsilon_forms", "eps_form='inside_root' is g/√(s + ε), equal to an "
                 "independent reference and told apart from the default at s = 0, g = 1e-3, "
                 "ε = 1e-2", "P"),
        Identity("accuracy", "θ' and s' within their ulp budget of the exact update (mpmath)",
                 "P"),
        Identity("gradient", "∂θ'/∂g by SymPy, autograd and differences agree", "D"),
    ),
    variants=(
        Variant("epsilon_after_root", {"eps_form": "after_root"},
                "torch.optim.RMSprop", "θ − η·g/(√s + ε)", default=True),
        Variant("epsilon_inside_root", {"eps_form": "inside_root"},
                "tf.keras.optimizers.RMSprop, tf.compat.v1.train.RMSPropOptimizer, "
                "optax.rmsprop (its scale_by_rms, eps_in_sqrt)",
                "θ − η·g/√(s + ε): the first step from s = 0 (α = 0.99) with g = 1e-3 and "
                "ε = 1e-2 moves η·0.0100 instead of η·0.099"),
    ),
)
def rmsprop_step(theta, sq_avg, grad, /, *, lr, alpha=0.99, eps=1e-8, eps_form="after_root"):
    r"""One RMSprop update: divide the gradient by a running root-mean-square of its history.

    .. math:: s_t = \alpha s_{t-1} + (1 - \alpha) g_t^2, \qquad
              \theta_t = \theta_{t-1} - \eta \, \frac{g_t}{\sqrt{s_t} + \epsilon}

    Each parameter gets its own step size η/√s, so the step does not depend on the scale of
    the gradients (up to ε). Start with sq_avg = 0. The same rule as ``torch.optim.RMSprop``
    (not centred, no momentum). ``eps_form="inside_root"`` is TensorFlow's, Keras' and
    Optax's form, θ − η·g/√(s + ε). Returns ``(theta, sq_avg)``, both new arrays.
    Shapes: theta, sq_avg, grad of one shape; lr ≥ 0, 0 ≤ α < 1, ε ≥ 0. Dtypes: float16 and
    bfloat16 are computed in float32 (g² overflows float16 past |g| = 256) and each output
    is rounded once. Source: 003 (named there as per-parameter adaptive learning rates).
    """
    xp = _parameters(theta=theta, sq_avg=sq_avg, grad=grad)
    lr = _nonnegative(lr, "lr")
    alpha = _decay(alpha, "alpha")
    eps = _nonnegative(eps, "eps")
    check.choice(eps_form, ("after_root", "inside_root"), "eps_form")
    (theta, sq_avg, grad), dtype = check.widen(xp, theta, sq_avg, grad)
    sq_avg = alpha * sq_avg + (1.0 - alpha) * grad * grad
    root = xp.sqrt(sq_avg) + eps if eps_form == "after_root" else xp.sqrt(sq_avg + eps)
    return check.narrow(xp, (theta - lr * grad / root, sq_avg), dtype)


# --------------------------------------------------------------------------------------------
def _schedule_options(peak_lr, warmup_steps, total_steps, min_lr):
    peak_lr = _nonnegative(peak_lr, "peak_lr")
    min_lr = _nonnegative(min_lr, "min_lr")
    if min_lr > peak_lr:
        raise ValueError(f"min_lr must be ≤ peak_lr, got min_lr={min_lr!r} > peak_lr={peak_lr!r}")
    warmup_steps = _count(warmup_steps, "warmup_steps", 0)
    total_steps = _count(total_steps, "total_steps", 1)
    if total_steps <= warmup_steps:
        raise ValueError(f"total_steps must be greater than warmup_steps, got total_steps="
                         f"{total_steps} and warmup_steps={warmup_steps}")
    return peak_lr, warmup_steps, total_steps, min_lr


@equation(
    chapter="optim",
    dtypes=ALL_FLOATS,
    seeds=("002 §3.2.4",),
    tiers="SPRXE",
    oracle="mpmath",
    identities=(
        Identity("continuous", "both phases tend to peak_lr at t = W (one-sided limits, "
                 "SymPy); numerically continuous there", "SP"),
        Identity("endpoints", "η(0) = 0 (with warmup), η(W) = peak_lr, η(T) = min_lr, and "
                 "min_lr after T", "SP"),
        Identity("monotone", "non-decreasing during warmup, non-increasing after it", "P"),
        Identity("arrays_match_numbers", "an array of steps gives what each number gives; "
                 "integer steps of any width (uint8 … int64) give the int64 steps' answer",
                 "P"),
        Identity("accuracy", "within its ulp budget of mpmath (normwise at peak_lr)", "R"),
    ),
)
def warmup_cosine_lr(step, /, *, peak_lr, warmup_steps, total_steps, min_lr=0.0):
    r"""Learning rate at a step: linear warmup to the peak, then cosine decay to a floor.

    .. math:: \eta(t) = \begin{cases}
              \eta_{\max}\, t / W & t < W \\
              \eta_{\min} + \tfrac12 (\eta_{\max} - \eta_{\min})
              \bigl(1 + \cos(\pi \min(1, \tfrac{t - W}{T - W}))\bigr) & t \ge W
              \end{cases}

    W = warmup_steps ≥ 0, T = total_steps > W, 0 ≤ min_lr ≤ peak_lr. The two phases meet at
    t = W (both give peak_lr); η(T) = min_lr and the rate stays there after T.
    `step` is a Python number t ≥ 0 (the result is a float), or an array of steps (integer
    of any width, signed or not, read as the values it holds; or floating); the result is
    floating: the steps' dtype, or the namespace's default floating dtype for integer steps.
    Dtypes: float16 and bfloat16 steps are computed in float32 and the rates rounded once.
    Source: 002 §3.2.4 (linear warmup + cosine decay).
    """
    peak_lr, warmup, total, min_lr = _schedule_options(peak_lr, warmup_steps, total_steps,
                                                       min_lr)
    if isinstance(step, bool):
        raise TypeError(f"step must be a number or an array, got {step!r}")
    if isinstance(step, numbers.Real):
        t = _nonnegative(step, "step")
        if t < warmup:
            return peak_lr * t / warmup
        progress = min(1.0, (t - warmup) / (total - warmup))
        return min_lr + 0.5 * (peak_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
    xp = check.namespace(step=step)
    if xp.isdtype(step.dtype, "integral"):
        # any width, as the values it holds (uint8 … uint64 too): int64 first, then floating
        step = check.indices(xp, step, "step")
        floating = xp.__array_namespace_info__().default_dtypes(device=check.device(step))
        step = xp.astype(step, floating["real floating"])
    elif not xp.isdtype(step.dtype, "real floating"):
        raise TypeError(f"step must have an integer or real floating dtype, got {step.dtype}")
    check.check_values(xp, step, lambda s: ~(s >= 0), "step must be ≥ 0 (and not NaN); it holds "
                       "negative or NaN values")
    step, dtype = check.widen(xp, step)
    warm = peak_lr * step / max(warmup, 1)
    progress = xp.clip((step - warmup) / (total - warmup), min=0.0, max=1.0)
    decay = min_lr + 0.5 * (peak_lr - min_lr) * (1.0 + xp.cos(progress * xp.pi))
    return check.narrow(xp, xp.where(step < warmup, warm, decay), dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="optim",
    dtypes=ALL_FLOATS,
    seeds=("002 §4.5", "003"),
    tiers="SPE",
    identities=(
        Identity("both_branches", "above γ the result is g·γ/‖g‖, of norm exactly γ; below "
                 "it is g itself (SymPy, each branch)", "S"),
        Identity("bounded", "the global norm of the result is ≤ γ (up to rounding)", "P"),
        Identity("direction", "the result is a non-negative multiple of g (every tensor by "
                 "the same factor)", "P"),
        Identity("no_op_below", "gradients with ‖g‖ ≤ γ come back unchanged", "P"),
        Identity("matches_pytorch", "equals torch.nn.utils.clip_grad_norm_ up to its 1e-6 in "
                 "the denominator, and with eps=1e-6 (its variant) to rounding", "P"),
    ),
    variants=(
        Variant("exact", {"eps": 0.0}, "optax.clip_by_global_norm, 002 §4.5",
                "g·γ/‖g‖ above γ", default=True),
        Variant("pytorch", {"eps": 1e-6}, "torch.nn.utils.clip_grad_norm_",
                "g·min(1, γ/(‖g‖ + 10⁻⁶)): a relative difference 10⁻⁶/‖g‖, 10 % for "
                "‖g‖ = 10⁻⁵ clipped to γ = 10⁻⁶ (and it scales down, by 1 − 10⁻⁶/γ, even "
                "gradients already at the norm γ)"),
    ),
)
def clip_grad_norm(grads, /, *, max_norm, eps=0.0):
    r"""Rescale gradient arrays together so that their global norm is at most γ.

    .. math:: g_i \leftarrow g_i \cdot \min\Bigl(1, \frac{\gamma}{\|g\|}\Bigr)
              = \frac{g_i}{\max(1, \|g\| / \gamma)},
              \qquad \|g\| = \sqrt{\textstyle\sum_i \|g_i\|_F^2}

    The norm is taken over all the arrays together (as ``torch.nn.utils.clip_grad_norm_``),
    so every array is scaled by the same factor and the direction of the whole gradient is
    kept. Written as a division by max(1, (‖g‖ + eps)/γ), which never divides by a zero norm
    and is exactly 1 below γ (the gradients come back bit for bit); the norms are the
    overflow-safe ones of `spec.norm`. ``eps=1e-6`` is PyTorch's variant, which adds 10⁻⁶ to
    the norm. Returns a new list in the input order or, for a single array (which PyTorch
    accepts too), a new array.
    Shapes: grads is a non-empty list or tuple of floating arrays of one dtype (any shapes), or
    one array; max_norm = γ > 0, eps ≥ 0. A NaN or ∞ in the gradients propagates.
    Dtypes: float16 and bfloat16 are computed in float32 (the norm of their squares) and
    rounded once. Source: 002 §4.5, 003.
    """
    single = not isinstance(grads, (list, tuple))
    arrays = [grads] if single else list(grads)
    if not arrays:
        raise TypeError("grads must be an array or a non-empty list or tuple of arrays, got an "
                        "empty one")
    names = ["grads"] if single else [f"grads[{i}]" for i in range(len(arrays))]
    xp = check.namespace(**dict(zip(names, arrays, strict=True)))
    for name, g in zip(names, arrays, strict=True):
        check.floating(xp, g, name)
        check.same_dtype(arrays[0], g, f"{names[0]} and {name}")
    max_norm = check.positive_number(max_norm, "max_norm")
    eps = _nonnegative(eps, "eps")
    wide, dtype = check.widen(xp, *arrays)
    wide = [wide] if len(arrays) == 1 else wide
    per_array = [_scaled_norm(xp, xp.reshape(g, (-1,)), 0, False) for g in wide]
    total = _scaled_norm(xp, xp.stack(per_array), 0, False)
    if eps:
        total = total + eps
    shrink = xp.clip(total / max_norm, min=1.0)  # max(1, ‖g‖/γ): exactly 1 below γ
    clipped = check.narrow(xp, [g / shrink for g in wide], dtype)
    return clipped[0] if single else clipped


# --------------------------------------------------------------------------------------------
@equation(
    chapter="optim",
    dtypes=ALL_FLOATS,
    seeds=("002 §3.2.1", "001", "003"),
    tiers="SPRXE",
    oracle="mpmath",
    errata=(
        "002 §3.2.1 gives Var(g_B) = σ²/b without saying how the batch is drawn. That holds "
        "for b examples drawn independently with replacement. A batch drawn without "
        "replacement from N examples (a shuffled epoch) has variance σ²/b·(N−b)/(N−1) (the "
        "finite-population correction, σ² the population variance with divisor N): smaller, "
        "and 0 for the full batch b = N. The conformance suite checks both.",
    ),
    identities=(
        Identity("mean", "equals (1/b)Σ gᵢ over the leading axis", "S"),
        Identity("unbiased", "the average over all batches equals the full gradient (exactly, "
                 "over every batch of a small population; statistically for random ones)",
                 "P"),
        Identity("variance", "variance σ²/b with replacement and σ²/b·(N−b)/(N−1) without "
                 "(statistical, fixed seed, stated false-alarm rate)", "P"),
        Identity("accuracy", "within its ulp budget of the exact mean", "R"),
    ),
)
def minibatch_gradient(per_example_grads, /):
    r"""Minibatch gradient: the mean of the per-example gradients over the leading axis.

    .. math:: g_B = \frac{1}{b} \sum_{i \in B} \nabla_\theta \ell(f(x_i; \theta), y_i)

    An unbiased estimate of the full gradient ∇L. Its variance is σ²/b for a batch of b
    examples drawn with replacement and σ²/b · (N − b)/(N − 1) for one drawn without
    replacement from N examples (002 states only the first; see the errata).
    Shapes: per_example_grads (b, ...) with b ≥ 1 → (...). Dtypes: float16 and bfloat16 are
    summed in float32 (a float16 sum of 1000 gradients of 100 overflows) and the mean rounded
    once. Source: 002 §3.2.1, 001, 003.
    """
    xp = check.namespace(per_example_grads=per_example_grads)
    check.floating(xp, per_example_grads, "per_example_grads")
    check.min_ndim(per_example_grads, 1, "per_example_grads")
    check.nonempty_axis(per_example_grads, 0, "per_example_grads")
    grads, dtype = check.widen(xp, per_example_grads)
    return check.narrow(xp, xp.mean(grads, axis=0), dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="optim",
    seeds=("002 §3.1", "002 §4.4"),
    tiers="SPDXE",
    identities=(
        Identity("exact_for_quadratics", "exact for every quadratic f and every h (SymPy); "
                 "to rounding numerically", "SP"),
        Identity("second_order", "the error is h²f'''/6 + O(h⁴) (SymPy, on a cubic); halving h "
                 "quarters it on a smooth f", "SP"),
        Identity("agrees_with_derivatives", "agrees with autograd and the SymPy derivative of f "
                 "within the finite-difference tolerance", "D"),
    ),
)
def numerical_gradient(f, x, /, *, h=None):
    r"""Gradient of a scalar function by central differences, one coordinate at a time.

    .. math:: \frac{\partial f}{\partial x_i} \approx
              \frac{f(x + h_i e_i) - f(x - h_i e_i)}{(x_i + h_i) - (x_i - h_i)}

    The limit definition of 002 §3.1 made symmetric: the error is O(h²) (h²f'''/6), and it
    is exact for quadratics. The default step hᵢ = ε^{1/3}·max(1, |xᵢ|) balances that
    truncation error against rounding (ε of x's dtype); the denominator is the step actually
    taken after rounding x ± h. Costs 2n calls of f — the O(n) forward passes per gradient
    that backpropagation avoids (002 §4.4). `f` maps an array of x's shape to a scalar (a
    0-d array or a number). Shapes: x (...) → (...).
    Dtypes: float32 and float64; float16 and bfloat16 are refused (TypeError): a central
    difference carries a relative error of about ε^{2/3}, 1 % in float16 and 4 % in bfloat16,
    and f, a black box, must see the dtype it was given. Source: 002 §3.1, 002 §4.4.
    """
    if not callable(f):
        raise TypeError(f"f must be a callable (array → scalar), got {type(f).__name__}")
    xp = check.namespace(x=x)
    check.floating(xp, x, "x")
    if check.working_dtype(xp, x.dtype) != x.dtype:
        raise TypeError(f"numerical_gradient does not take x of dtype {x.dtype}: central "
                        "differences in it carry a relative error of about ε^(2/3) (1 % in "
                        "float16, 4 % in bfloat16); pass x in float32 or float64")
    n, shape = math.prod(x.shape), tuple(x.shape)
    flat = xp.reshape(x, (n,))
    if h is None:
        cube_root_eps = float(xp.finfo(x.dtype).eps) ** (1.0 / 3.0)
        steps = cube_root_eps * xp.clip(xp.abs(flat), min=1.0)
    else:
        steps = check.positive_number(h, "h") * xp.ones_like(flat)
    positions = xp.arange(n, device=check.device(x))
    columns = []
    for i in range(n):
        e_i = xp.astype(positions == i, x.dtype)
        up, down = flat + steps * e_i, flat - steps * e_i
        f_up, f_down = _scalar(f(xp.reshape(up, shape))), _scalar(f(xp.reshape(down, shape)))
        columns.append((f_up - f_down) / (up[i] - down[i]))
    if not columns:
        return xp.zeros_like(x)
    return xp.reshape(xp.stack(columns), shape)


def _scalar(value):
    """f's value, checked to be a scalar (a number or a 0-d array)."""
    if not hasattr(value, "shape"):
        return value
    if value.ndim != 0:
        raise ValueError(f"f must return a scalar (a 0-d array), got shape {tuple(value.shape)}")
    return value


# --------------------------------------------------------------------------------------------
_EIGH_LIMIT = Limit("dask", "dask has no linalg.eigvalsh (no symmetric eigensolver)",
                    "https://github.com/dask/dask/issues/2618", tiers="P")


@equation(
    chapter="optim",
    dtypes=ALL_FLOATS,
    seeds=("002 §3.1.1",),
    tiers="PE",
    identities=(
        Identity("textbook_cases", "x² + y² is a minimum, −x² − y² a maximum, x² − y² a "
                 "saddle (Hessians from SymPy)", "P"),
        Identity("degenerate", "a semidefinite Hessian with a zero eigenvalue (x⁴ + y²) is "
                 "'degenerate': the second-derivative test is inconclusive", "P"),
        Identity("spectrum", "on H = Q diag(λ) Qᵀ the answer follows the signs of λ", "P"),
    ),
    limits=(_EIGH_LIMIT,
            Limit("jax", "the answer is a Python string chosen from the eigenvalues' values "
                  "(float() and bool() of array results), which jax.jit cannot trace: in a "
                  "trace arrays have no values",
                  "https://docs.jax.dev/en/latest/errors.html#jax.errors.ConcretizationTypeError",
                  tiers="P", compiled=True)),
)
def classify_critical_point(hessian, /):
    r"""Classify a critical point by the signs of its Hessian's eigenvalues.

    .. math:: \lambda_i(H) > 0\ \forall i \Rightarrow \text{minimum}, \quad
              \lambda_i(H) < 0\ \forall i \Rightarrow \text{maximum}, \quad
              \text{both signs} \Rightarrow \text{saddle}

    Returns one of the strings ``"minimum"`` (H positive definite), ``"maximum"`` (negative
    definite), ``"saddle"`` (indefinite: eigenvalues of both signs) or ``"degenerate"`` (H
    singular and semidefinite, e.g. x⁴ + y² or x³ at 0: the second-derivative test cannot
    decide). An eigenvalue counts as zero when |λ| ≤ n·ε·max|λ| (ε of the dtype), the
    tolerance numerical rank uses. Eigenvalues come from the namespace's ``linalg.eigvalsh``.
    Shapes: hessian (n, n), symmetric (to rounding), finite. Dtypes: float16 and bfloat16
    are decomposed in float32 (no library has an eigensolver for them), with ε of the
    Hessian's own dtype in both tolerances. Source: 002 §3.1.1.
    """
    xp = check.namespace(hessian=hessian)
    check.floating(xp, hessian, "hessian")
    if hessian.ndim != 2 or hessian.shape[0] != hessian.shape[1] or hessian.shape[0] == 0:
        raise ValueError(f"hessian must be a non-empty square matrix (n, n), got shape "
                         f"{tuple(hessian.shape)}")
    n = hessian.shape[0]
    eps = float(xp.finfo(hessian.dtype).eps)  # the precision the entries are known to
    hessian, _ = check.widen(xp, hessian)
    check.check_values(xp, hessian, lambda a: ~xp.isfinite(a),
                       "hessian must be finite; it holds NaN or ∞")
    check.check_values(
        xp, hessian,
        lambda a: xp.abs(a - xp.matrix_transpose(a)) > 16 * n * eps * xp.max(xp.abs(a)),
        "hessian must be symmetric (H = Hᵀ to rounding); it is not",
    )
    lam = _linalg(xp, "eigvalsh")(hessian)
    tol = n * eps * float(xp.max(xp.abs(lam)))
    positive, negative = bool(xp.any(lam > tol)), bool(xp.any(lam < -tol))
    if positive and negative:
        return "saddle"
    if bool(xp.all(lam > tol)):
        return "minimum"
    if bool(xp.all(lam < -tol)):
        return "maximum"
    return "degenerate"


