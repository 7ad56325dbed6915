r"""Normalisation layers: batch, layer and RMS normalisation.

Each one rescales activations by statistics of the activations themselves. They differ in
which elements share the statistics: BatchNorm one feature over the batch, LayerNorm and
RMSNorm one example over its features. All three put ε *inside* the square root,
√(σ² + ε), and use the biased ("population", 1/n) variance computed in two passes: the mean
first, then the mean of the squared deviations. This is what PyTorch, JAX/Flax and the
original papers compute. It also avoids the cancellation of the one-pass form E[x²] − E[x]²
when the values are large compared with their spread. The forms other code uses (ε after
the root, σ + ε; the unbiased variance; Gemma's RMSNorm weight 1 + γ) are named variants,
computed through keyword options (`eps_form`, `correction`, `gamma_offset`).

The squares cannot overflow or underflow: each slice is first multiplied by 1/s, where s is
the power of two at or below max(max|x|, √ε) (so every scaled value is at most 2 in
magnitude and the scaled ε at most 4), and ε is scaled by 1/s² with it. Scaling by a power
of two is exact, so wherever the plain formula neither overflows nor underflows the result
is bitwise the same; float64 values near 1e200 (whose squares overflow) and tiny values with
ε = 0 (whose squares underflow to 0, making 0/0) get the right answer too. On the symbolic
namespace (exact arithmetic, tier S) there is nothing to guard and s = 1; a tier-S test
proves that the scaled code equals the textbook formula for every scale s > 0.

Dtypes: float16 and bfloat16 are computed in float32 (the statistics, squares and roots)
and the result is rounded once to the input's dtype; float32 and float64 are computed in
their own precision.

Sources: 002 §5.1 (BatchNorm), §5.2 (LayerNorm), §5.3 (RMSNorm), and the summary table of
002.
"""

from __future__ import annotations

import math

from . import _validate as v
from ._registry import ALL_FLOATS, Identity, Variant, equation

__all__ = ["batch_norm", "layer_norm", "rms_norm"]


_EPS_FORMS = ("inside_root", "after_root")


def _eps(value) -> float:
    """ε as a Python float: any real number type ≥ 0 (NumPy scalars too, never a bool; 0 is
    allowed, then a constant slice is 0/0)."""
    value = v.real_number(value, "eps")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"eps must be a non-negative finite number, got {value!r}")
    return value


def _correction(value, n: int) -> float:
    """The variance's divisor is n − correction (0: biased, 1: Bessel's unbiased); it must
    leave a positive divisor for the n values each statistic is taken over."""
    given = value
    value = v.real_number(value, "correction")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"correction must be a non-negative finite number, got {given!r}")
    if not n - value > 0:
        raise ValueError(f"correction={given!r} leaves no degrees of freedom: the statistics "
                         f"are taken over {n} value(s), so correction must be below {n}")
    return value


def _exact(x) -> bool:
    """True on the symbolic namespace, whose arithmetic is exact (SymPy expressions)."""
    return getattr(x, "device", None) == "sympy"


def _inverse_scale(xp, x, axes, eps: float):
    """1/s per slice, s the power of two at or below max(max|x|, √ε) (None on the symbolic
    namespace, where nothing overflows).

    The exponent is clipped to the dtype's normal range, so 1/s and s are normal numbers (a
    backend that flushes subnormals to zero cannot turn them into 0 or ∞). A slice whose
    maximum is 0, ∞ or NaN gets s = 1, so it propagates as the plain formula says.
    """
    if _exact(x):
        return None
    m = xp.max(xp.abs(x), axis=axes, keepdims=True)
    if eps > 0:
        m = xp.clip(m, min=math.sqrt(eps))  # NaN stays NaN
    ok = (m > 0) & xp.isfinite(m)
    k = xp.floor(xp.log2(xp.where(ok, m, xp.ones_like(m))))
    top = 126 if xp.finfo(x.dtype).bits == 32 else 1022  # the normal range, both ways
    return 2.0 ** (-xp.clip(k, min=-top, max=top))


def _standardise(xp, x, axes, eps: float, eps_form: str, correction: float, inv, *,
                 centre: bool = True):
    """(x − μ)/√(σ² + ε) (or x/√(mean x² + ε) without centring, or the root + ε with
    eps_form="after_root") over `axes`, computed on x/s with ε/s²: the same number, since s
    cancels (`inv` = 1/s, a power of two; None for s = 1)."""
    if inv is not None:
        x = x * inv  # exact: a power of two
    # a list, not a generator: on a generator torch.compile falls back to eager here
    n = math.prod([x.shape[a] for a in axes])
    if centre:
        x = x - xp.mean(x, axis=axes, keepdims=True)
    if correction == 0:
        var = xp.mean(x * x, axis=axes, keepdims=True)
    else:
        var = xp.sum(x * x, axis=axes, keepdims=True) / (n - correction)
    if eps_form == "after_root":
        # σ + ε = s(σ/s + ε/s)
        return x / (xp.sqrt(var) + (eps if inv is None else eps * inv))
    # σ² + ε = s²(σ²/s² + ε/s²); (ε/s)/s cannot overflow: s ≥ √ε/2
    return x / xp.sqrt(var + (eps if inv is None else eps * inv * inv))


def _inputs(x, params: dict):
    """Checks shared by the three layers: namespace, float dtypes, one dtype, x at least 1-D."""
    xp = v.namespace(x=x, **params)
    v.floating(xp, x, "x")
    for name, p in params.items():
        v.floating(xp, p, name)
        v.same_dtype(x, p, f"x and {name}")
    v.min_ndim(x, 1, "x")
    return xp


def _broadcasts_to(p, target: tuple, name: str) -> None:
    """ValueError unless `p` broadcasts to `target` (the shape of one example's features)."""
    shape = tuple(p.shape)
    ok = len(shape) <= len(target) and all(
        a in (1, b) for a, b in zip(reversed(shape), reversed(target))
    )
    if not ok:
        raise ValueError(f"{name} must broadcast to the feature shape {target}, got shape {shape}")


def _last_axis(x, params: dict):
    xp = _inputs(x, params)
    v.nonempty_axis(x, x.ndim - 1, "x")
    for name, p in params.items():
        _broadcasts_to(p, (x.shape[-1],), name)
    return xp


# --------------------------------------------------------------------------------------------
def _batch_axes(x, axis) -> tuple[int, ...]:
    axes = axis if isinstance(axis, tuple) else (axis,)
    if not axes:
        raise ValueError("axis must name at least one axis to take the batch statistics over")
    for a in axes:
        if isinstance(a, bool):
            raise TypeError(f"axis must be an integer or a tuple of integers, got {axis!r}")
    out = tuple(v.axis_index(x, a, "x") for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"axis {axis!r} names the same axis twice")
    for a in out:
        v.nonempty_axis(x, a, "x")
    return tuple(sorted(out))


_NO_OVERFLOW = Identity(
    "no_overflow", "no square overflows or underflows: float64 values near 1e200, float32 "
    "near 1e30, float16 [300, 1, −2, 0.5] (whose squares overflow float16) and tiny values "
    "with ε = 0 give the result of the same input scaled to order 1 (f(2ᵏx) = f(x) for ε = 0)",
    "PR")


def _eps_variants(who: str) -> tuple[Variant, ...]:
    """The ε placements and variances of LayerNorm and BatchNorm."""
    return (
        Variant("epsilon_inside_root", {"eps_form": "inside_root", "correction": 0},
                f"{who}, the papers (Ioffe & Szegedy 2015; Ba et al. 2016)",
                "(x − μ)/√(σ² + ε) with the biased (1/n) variance", default=True),
        Variant("epsilon_after_root", {"eps_form": "after_root"},
                "(x − μ)/(σ + ε): The Annotated Transformer's LayerNorm and many from-scratch "
                "implementations",
                "ε is added to σ instead of σ²: rows offset by 1e4 with σ ≈ 1 and ε = 0.5 give "
                "x̂ = (x − μ)/1.5 instead of (x − μ)/1.22"),
        Variant("unbiased_variance", {"correction": 1},
                "code that takes torch.var or Tensor.std with their default unbiased "
                "correction (The Annotated Transformer's x.std(-1), with ε after the root)",
                "σ² with 1/(n − 1): x̂ is √((n − 1)/n) times the default's, −6.5 % for n = 8"),
    )


@equation(
    chapter="normalization",
    dtypes=ALL_FLOATS,
    seeds=("002 §5.1",),
    oracle="mpmath",
    identities=(
        Identity("textbook", "the code is γ(x − μ_B)/√(σ_B² + ε) + β with the biased variance, "
                 "exactly (SymPy, ε = 1/2), and its power-of-two scaling cancels for every "
                 "scale s > 0", "S"),
        Identity("per_channel_affine", "over (0, 2, 3) of (N, C, H, W), γ_c and β_c act per "
                 "channel", "P"),
        Identity("standardised", "before the affine map each feature has batch mean 0 and "
                 "variance σ²/(σ² + ε) (1 with ε = 0)", "SP"),
        Identity("eps_inside_root", "ε inside the root, two-pass biased variance: differs "
                 "from ε outside, one-pass E[x²]−E[x]² and the unbiased variance (ε = 0.5, "
                 "offset 1e4)", "P"),
        Identity("variants", "eps_form='after_root' is (x − μ)/(σ + ε) and correction=1 the "
                 "unbiased variance, each equal to an independent reference of its form and "
                 "told apart from the default (ε = 0.5, offset 1e4)", "P"),
        Identity("is_layer_norm_transposed", "equals layer_norm of the transposed batch (the "
                 "same formula over the other axis)", "SP"),
        _NO_OVERFLOW,
        Identity("gradient", "SymPy, autograd and central differences agree (x and γ)", "D"),
        Identity("accuracy", "within its ulp budget of mpmath, normwise at |γ|·max|x|/σ "
                 "(offset 1e4 in float32 included)", "R"),
    ),
    variants=_eps_variants("PyTorch's BatchNorm (training mode), Keras, Flax"),
)
def batch_norm(x, gamma, beta, /, *, eps=1e-5, axis=0, eps_form="inside_root", correction=0):
    r"""Batch normalisation: standardise each feature with the statistics of the batch.

    .. math:: \mu_B = \frac{1}{m}\sum_{i=1}^{m} x_i, \qquad
              \sigma_B^2 = \frac{1}{m}\sum_{i=1}^{m} (x_i - \mu_B)^2, \qquad
              y_i = \gamma \, \frac{x_i - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}} + \beta

    The statistics are taken over `axis` (an int or a tuple of ints; the batch axis 0 by
    default, ``(0, 2, 3)`` for images in (N, C, H, W)), separately for every position of the
    other axes. This is training-mode BatchNorm. The running averages used at inference are
    state, which a pure function leaves to the caller. The variance is the biased (1/m)
    one; ε ≥ 0 sits inside the root.

    Variants: ``eps_form="after_root"`` divides by σ_B + ε instead; ``correction=1`` takes
    the unbiased variance Σ(x − μ)²/(m − 1) (any real 0 ≤ correction < m, as the standard's
    ``var``).
    Shapes: x (...) with m = the product of the lengths along `axis` ≥ 1; gamma and beta
    broadcast to the shape of x without `axis` (the feature shape, e.g. (C,)) → x's shape.
    Dtypes: float16 and bfloat16 are computed in float32 and rounded once.
    Source: 002 §5.1.
    """
    xp = _inputs(x, {"gamma": gamma, "beta": beta})
    eps = _eps(eps)
    v.choice(eps_form, _EPS_FORMS, "eps_form")
    axes = _batch_axes(x, axis)
    correction = _correction(correction, math.prod([x.shape[a] for a in axes]))
    features = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    kept = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    for name, p in (("gamma", gamma), ("beta", beta)):
        _broadcasts_to(p, features, name)
    (x, gamma, beta), dtype = v.widen(xp, x, gamma, beta)
    gamma = xp.reshape(xp.broadcast_to(gamma, features), kept)
    beta = xp.reshape(xp.broadcast_to(beta, features), kept)

    xhat = _standardise(xp, x, axes, eps, eps_form, correction,
                        _inverse_scale(xp, x, axes, eps))
    return v.narrow(xp, gamma * xhat + beta, dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="normalization",
    dtypes=ALL_FLOATS,
    seeds=("002 §5.2",),
    oracle="mpmath",
    errata=(
        "002's summary table writes LayerNorm as (x−μ)/σ·γ + β, without ε; 002 §5.2 (and "
        "every implementation) divides by √(σ² + ε). The spec follows §5.2.",
    ),
    identities=(
        Identity("textbook", "the code is γ(x − μ)/√(σ² + ε) + β with the biased variance, "
                 "exactly (SymPy, ε = 1/2), and its power-of-two scaling cancels for every "
                 "scale s > 0", "S"),
        Identity("affine_invariance", "layer_norm(cx + d) = layer_norm(x) for c > 0 with ε = 0 "
                 "(SymPy, n ≤ 4); with ε > 0, layer_norm(cx + d; c²ε) = layer_norm(x; ε) and "
                 "small ε changes it by at most the ε effect", "SP"),
        Identity("standardised", "before the affine map each example has mean 0 and variance "
                 "σ²/(σ² + ε) (1 with ε = 0)", "SP"),
        Identity("eps_inside_root", "ε inside the root, two-pass biased variance: differs "
                 "from ε outside, one-pass E[x²]−E[x]² and the unbiased variance (ε = 0.5, "
                 "offset 1e4)", "P"),
        Identity("variants", "eps_form='after_root' is (x − μ)/(σ + ε) and correction=1 the "
                 "unbiased variance, each equal to an independent reference of its form and "
                 "told apart from the default (ε = 0.5, offset 1e4)", "P"),
        _NO_OVERFLOW,
        Identity("gradient", "SymPy, autograd and central differences agree (x, γ and β)", "D"),
        Identity("accuracy", "within its ulp budget of mpmath, normwise at |γ|·max|x|/σ "
                 "(offset 1e4 in float32 included)", "R"),
    ),
    variants=_eps_variants("PyTorch's F.layer_norm, JAX/Flax, Hugging Face"),
)
def layer_norm(x, gamma, beta, /, *, eps=1e-5, eps_form="inside_root", correction=0):
    r"""Layer normalisation: standardise each example over its own features.

    .. math:: \mu = \frac{1}{H}\sum_{j=1}^{H} x_j, \qquad
              \sigma^2 = \frac{1}{H}\sum_{j=1}^{H} (x_j - \mu)^2, \qquad
              y_j = \gamma_j \, \frac{x_j - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta_j

    The statistics are per example, over the last axis, so they do not depend on the batch
    and are the same at training and inference time. The variance is the biased (1/H) one;
    ε ≥ 0 sits inside the root.

    Variants: ``eps_form="after_root"`` divides by σ + ε instead (The Annotated
    Transformer); ``correction=1`` takes the unbiased variance Σ(x − μ)²/(H − 1) (any real
    0 ≤ correction < H, as the standard's ``var``).
    Shapes: x (..., H) with H ≥ 1; gamma and beta (H,) (or anything broadcasting to it) →
    (..., H). Dtypes: float16 and bfloat16 are computed in float32 and rounded once.
    Source: 002 §5.2. Erratum: 002's summary table writes (x − μ)/σ·γ + β without ε.
    """
    xp = _last_axis(x, {"gamma": gamma, "beta": beta})
    eps = _eps(eps)
    v.choice(eps_form, _EPS_FORMS, "eps_form")
    correction = _correction(correction, x.shape[-1])
    (x, gamma, beta), dtype = v.widen(xp, x, gamma, beta)
    axes = (x.ndim - 1,)
    xhat = _standardise(xp, x, axes, eps, eps_form, correction,
                        _inverse_scale(xp, x, axes, eps))
    return v.narrow(xp, gamma * xhat + beta, dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="normalization",
    dtypes=ALL_FLOATS,
    seeds=("002 §5.3",),
    oracle="mpmath",
    errata=(
        "002 §5.3 writes RMS(x) = √(1/H Σ x²) without ε, so an all-zero input would be 0/0; "
        "RMSNorm (Zhang & Sennrich 2019) and LLaMA's code divide by √(mean x² + ε). The spec "
        "does too (default ε = 1e-6, as in LLaMA).",
    ),
    identities=(
        Identity("textbook", "the code is γx/√(mean x² + ε), exactly (SymPy, ε = 1/2), and its "
                 "power-of-two scaling cancels for every scale s > 0", "S"),
        Identity("eps_inside_root", "ε inside the root: differs from x/(RMS + ε) (ε = 0.5)",
                 "P"),
        Identity("scale_invariance", "rms_norm(cx) = rms_norm(x) for c > 0 with ε = 0 (SymPy); "
                 "rms_norm(cx; c²ε) = rms_norm(x; ε)", "SP"),
        Identity("zero_mean_is_layer_norm", "equals layer_norm (β = 0, the same ε) for "
                 "zero-mean input", "SP"),
        Identity("unit_rms", "before γ each example has root mean square √(ms/(ms + ε))", "P"),
        Identity("variants", "gamma_offset=1 is Gemma's (1 + γ)x/RMS and eps_form='after_root' "
                 "the RMSNorm authors' γx/(√(mean x²) + ε), each equal to an independent "
                 "reference of its form and told apart from the default (γ near 0, ε = 0.5)",
                 "P"),
        _NO_OVERFLOW,
        Identity("gradient", "SymPy, autograd and central differences agree (x and γ)", "D"),
        Identity("accuracy", "within its ulp budget of mpmath, normwise at |γ|·max|x|/rms",
                 "R"),
    ),
    variants=(
        Variant("gamma", {"gamma_offset": 0.0, "eps_form": "inside_root"},
                "Zhang & Sennrich (2019), LLaMA, Mistral, T5 (Hugging Face LlamaRMSNorm, "
                "torch.nn.RMSNorm)", "γ·x/√(mean x² + ε)", default=True),
        Variant("one_plus_gamma", {"gamma_offset": 1.0},
                "Gemma (google-deepmind/gemma, Hugging Face GemmaRMSNorm: x·(1 + w), w "
                "initialised to 0)",
                "(1 + γ)·x/√(mean x² + ε): the same stored weights give a different layer; "
                "at γ = 0 the default gives 0 and Gemma's x/RMS"),
        Variant("epsilon_after_root", {"eps_form": "after_root"},
                "the RMSNorm authors' reference code (bzhangGo/rmsnorm: x/(‖x‖/√d + ε))",
                "γ·x/(√(mean x²) + ε): with ε = 0.5 and mean x² = 1, x/1.5 instead of "
                "x/1.22"),
    ),
)
def rms_norm(x, gamma, /, *, eps=1e-6, gamma_offset=0.0, eps_form="inside_root"):
    r"""RMS normalisation: divide each example by its root mean square, then scale by γ.

    .. math:: \operatorname{RMSNorm}(x)_j = \gamma_j \, \frac{x_j}{\operatorname{RMS}(x)},
              \qquad \operatorname{RMS}(x) = \sqrt{\frac{1}{H}\sum_{k=1}^{H} x_k^2 + \epsilon}

    LayerNorm without the re-centring (no mean, no β), as in LLaMA, Mistral and Gemma.
    ε ≥ 0 sits inside the root; with ε = 0 an all-zero example is 0/0 (NaN).

    Variants: ``gamma_offset=1.0`` multiplies by 1 + γ instead of γ (Gemma stores the weight
    as an offset from 1); ``eps_form="after_root"`` divides by √(mean x²) + ε (the RMSNorm
    authors' code).
    Shapes: x (..., H) with H ≥ 1; gamma (H,) (or anything broadcasting to it) → (..., H).
    Dtypes: float16 and bfloat16 are computed in float32 (1 + γ included) and rounded once.
    Source: 002 §5.3. Erratum: 002 §5.3 writes RMS(x) without ε.
    """
    xp = _last_axis(x, {"gamma": gamma})
    eps = _eps(eps)
    gamma_offset = v.real_number(gamma_offset, "gamma_offset")
    if not math.isfinite(gamma_offset):
        raise ValueError(f"gamma_offset must be a finite number, got {gamma_offset!r}")
    v.choice(eps_form, _EPS_FORMS, "eps_form")
    (x, gamma), dtype = v.widen(xp, x, gamma)
    if gamma_offset != 0:
        gamma = gamma + gamma_offset
    axes = (x.ndim - 1,)
    xhat = _standardise(xp, x, axes, eps, eps_form, 0, _inverse_scale(xp, x, axes, eps),
                        centre=False)
    return v.narrow(xp, gamma * xhat, dtype)
