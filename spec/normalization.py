r"""Normalisation layers: batch, layer and RMS normalisation.

Each one rescales activations by statistics of the activations themselves. They differ in
which elements share the statistics: BatchNorm one feature over the batch, LayerNorm and
RMSNorm one example over its features. All three put ε *inside* the square root,
√(σ² + ε), and use the biased ("population", 1/n) variance computed in two passes: the mean
first, then the mean of the squared deviations. This is what PyTorch, JAX/Flax and the
original papers compute. It also avoids the cancellation of the one-pass form E[x²] − E[x]²
when the values are large compared with their spread.

No rescaling guards the squares. In float32 a deviation |x − μ| (or, for RMSNorm, |x|)
beyond about 1.8e19 overflows its square, as in PyTorch's own kernels; in float64 the limit
is about 1.3e154.

Sources: 002 §5.1 (BatchNorm), §5.2 (LayerNorm), §5.3 (RMSNorm), and the summary table of
002.
"""

from __future__ import annotations

import math

from . import _validate as v
from ._registry import Identity, equation

__all__ = ["batch_norm", "layer_norm", "rms_norm"]


def _eps(value) -> float:
    """ε as a Python float: a real number ≥ 0 (0 is allowed; then a constant slice is 0/0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"eps must be a real number, got {type(value).__name__}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"eps must be a non-negative finite number, got {value!r}")
    return float(value)


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


@equation(
    chapter="normalization",
    seeds=("002 §5.1",),
    oracle="mpmath",
    identities=(
        Identity("textbook", "the code is γ(x − μ_B)/√(σ_B² + ε) + β with the biased variance, "
                 "exactly (SymPy, ε = 1/2)", "S"),
        Identity("per_channel_affine", "over (0, 2, 3) of (N, C, H, W), γ_c and β_c act per "
                 "channel", "P"),
        Identity("standardised", "before the affine map each feature has batch mean 0 and "
                 "variance σ²/(σ² + ε) (1 with ε = 0)", "SP"),
        Identity("eps_inside_root", "ε inside the root, two-pass biased variance: differs "
                 "from ε outside, one-pass E[x²]−E[x]² and the unbiased variance (ε = 0.5, "
                 "offset 1e4)", "P"),
        Identity("is_layer_norm_transposed", "equals layer_norm of the transposed batch (the "
                 "same formula over the other axis)", "SP"),
        Identity("gradient", "SymPy, autograd and central differences agree (x and γ)", "D"),
        Identity("accuracy", "within its ulp budget of mpmath, normwise at |γ|·max|x|/σ "
                 "(offset 1e4 in float32 included)", "R"),
    ),
)
def batch_norm(x, gamma, beta, /, *, eps=1e-5, axis=0):
    r"""Batch normalisation: standardise each feature with the statistics of the batch.

    .. math:: \mu_B = \frac{1}{m}\sum_{i=1}^{m} x_i, \qquad
              \sigma_B^2 = \frac{1}{m}\sum_{i=1}^{m} (x_i - \mu_B)^2, \qquad
              y_i = \gamma \, \frac{x_i - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}} + \beta

    The statistics are taken over `axis` (an int or a tuple of ints; the batch axis 0 by
    default, ``(0, 2, 3)`` for images in (N, C, H, W)), separately for every position of the
    other axes. This is training-mode BatchNorm. The running averages used at inference are
    state, which a pure function leaves to the caller. The variance is the biased (1/m)
    one; ε ≥ 0 sits inside the root.

    Shapes: x (...) with m = the product of the lengths along `axis` ≥ 1; gamma and beta
    broadcast to the shape of x without `axis` (the feature shape, e.g. (C,)) → x's shape.
    Source: 002 §5.1.
    """
    xp = _inputs(x, {"gamma": gamma, "beta": beta})
    eps = _eps(eps)
    axes = _batch_axes(x, axis)
    features = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    kept = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    for name, p in (("gamma", gamma), ("beta", beta)):
        _broadcasts_to(p, features, name)
    gamma = xp.reshape(xp.broadcast_to(gamma, features), kept)
    beta = xp.reshape(xp.broadcast_to(beta, features), kept)

    mu = xp.mean(x, axis=axes, keepdims=True)
    d = x - mu
    var = xp.mean(d * d, axis=axes, keepdims=True)
    return gamma * (d / xp.sqrt(var + eps)) + beta


# --------------------------------------------------------------------------------------------
@equation(
    chapter="normalization",
    seeds=("002 §5.2",),
    oracle="mpmath",
    errata=(
        "002's summary table writes LayerNorm as (x−μ)/σ·γ + β, without ε; 002 §5.2 (and "
        "every implementation) divides by √(σ² + ε). The spec follows §5.2.",
    ),
    identities=(
        Identity("textbook", "the code is γ(x − μ)/√(σ² + ε) + β with the biased variance, "
                 "exactly (SymPy, ε = 1/2)", "S"),
        Identity("affine_invariance", "layer_norm(cx + d) = layer_norm(x) for c > 0 with ε = 0 "
                 "(SymPy, n ≤ 4); with ε > 0, layer_norm(cx + d; c²ε) = layer_norm(x; ε) and "
                 "small ε changes it by at most the ε effect", "SP"),
        Identity("standardised", "before the affine map each example has mean 0 and variance "
                 "σ²/(σ² + ε) (1 with ε = 0)", "SP"),
        Identity("eps_inside_root", "ε inside the root, two-pass biased variance: differs "
                 "from ε outside, one-pass E[x²]−E[x]² and the unbiased variance (ε = 0.5, "
                 "offset 1e4)", "P"),
        Identity("gradient", "SymPy, autograd and central differences agree (x, γ and β)", "D"),
        Identity("accuracy", "within its ulp budget of mpmath, normwise at |γ|·max|x|/σ "
                 "(offset 1e4 in float32 included)", "R"),
    ),
)
def layer_norm(x, gamma, beta, /, *, eps=1e-5):
    r"""Layer normalisation: standardise each example over its own features.

    .. math:: \mu = \frac{1}{H}\sum_{j=1}^{H} x_j, \qquad
              \sigma^2 = \frac{1}{H}\sum_{j=1}^{H} (x_j - \mu)^2, \qquad
              y_j = \gamma_j \, \frac{x_j - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta_j

    The statistics are per example, over the last axis, so they do not depend on the batch
    and are the same at training and inference time. The variance is the biased (1/H) one;
    ε ≥ 0 sits inside the root.

    Shapes: x (..., H) with H ≥ 1; gamma and beta (H,) (or anything broadcasting to it) →
    (..., H). Source: 002 §5.2. Erratum: 002's summary table writes (x − μ)/σ·γ + β without
    ε.
    """
    xp = _last_axis(x, {"gamma": gamma, "beta": beta})
    eps = _eps(eps)
    mu = xp.mean(x, axis=-1, keepdims=True)
    d = x - mu
    var = xp.mean(d * d, axis=-1, keepdims=True)
    return gamma * (d / xp.sqrt(var + eps)) + beta


# --------------------------------------------------------------------------------------------
@equation(
    chapter="normalization",
    seeds=("002 §5.3",),
    oracle="mpmath",
    errata=(
        "002 §5.3 writes RMS(x) = √(1/H Σ x²) without ε, so an all-zero input would be 0/0; "
        "RMSNorm (Zhang & Sennrich 2019) and LLaMA's code divide by √(mean x² + ε). The spec "
        "does too (default ε = 1e-6, as in LLaMA).",
    ),
    identities=(
        Identity("textbook", "the code is γx/√(mean x² + ε), exactly (SymPy, ε = 1/2)", "S"),
        Identity("eps_inside_root", "ε inside the root: differs from x/(RMS + ε) (ε = 0.5)",
                 "P"),
        Identity("scale_invariance", "rms_norm(cx) = rms_norm(x) for c > 0 with ε = 0 (SymPy); "
                 "rms_norm(cx; c²ε) = rms_norm(x; ε)", "SP"),
        Identity("zero_mean_is_layer_norm", "equals layer_norm (β = 0, the same ε) for "
                 "zero-mean input", "SP"),
        Identity("unit_rms", "before γ each example has root mean square √(ms/(ms + ε))", "P"),
        Identity("gradient", "SymPy, autograd and central differences agree (x and γ)", "D"),
        Identity("accuracy", "within its ulp budget of mpmath, normwise at |γ|·max|x|/rms",
                 "R"),
    ),
)
def rms_norm(x, gamma, /, *, eps=1e-6):
    r"""RMS normalisation: divide each example by its root mean square, then scale by γ.

    .. math:: \operatorname{RMSNorm}(x)_j = \gamma_j \, \frac{x_j}{\operatorname{RMS}(x)},
              \qquad \operatorname{RMS}(x) = \sqrt{\frac{1}{H}\sum_{k=1}^{H} x_k^2 + \epsilon}

    LayerNorm without the re-centring (no mean, no β), as in LLaMA, Mistral and Gemma.
    ε ≥ 0 sits inside the root.
    Shapes: x (..., H) with H ≥ 1; gamma (H,) (or anything broadcasting to it) → (..., H).
    Source: 002 §5.3. Erratum: 002 §5.3 writes RMS(x) without ε.
    """
    xp = _last_axis(x, {"gamma": gamma})
    eps = _eps(eps)
    ms = xp.mean(x * x, axis=-1, keepdims=True)
    return gamma * (x / xp.sqrt(ms + eps))


