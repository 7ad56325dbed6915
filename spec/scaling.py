r"""Scaling and training at scale: scaling laws, FLOP counts and memory budgets.

These are formulas on counts. Each takes Python numbers (ints stay exact where the formula
is a product of ints) or floating arrays of one library (a sweep over model sizes, context
lengths, …); arrays go through operators only, so the same code serves both.

Dtypes: float32 and float64 arrays. float16 and bfloat16 arrays are refused (TypeError naming
the dtype): the counts pass float16's largest value (65,504) — 7e10 parameters is ∞ there —
and bfloat16 keeps 8 significant bits, so a count is off by up to 0.4 % before any formula.

Sources: 002 §1.2.1 (cost of a matrix product), §9.2 (Chinchilla scaling law), §9.4 (memory of
a 70 B model; ZeRO), §10.3 (KV-cache size). Figures reproduced from Hoffmann et al. (2022),
"Training Compute-Optimal Large Language Models", and Rajbhandari et al. (2020), "ZeRO: Memory
Optimizations Toward Training Trillion Parameter Models".
"""

from __future__ import annotations

import math

from . import _validate as v
from ._registry import Identity, equation

__all__ = [
    "chinchilla_loss",
    "compute_optimal_allocation",
    "kv_cache_bytes",
    "matmul_flops",
    "training_flops",
    "training_memory_bytes",
]

#: Hoffmann et al. (2022), eq. 10: the fitted parametric loss (Approach 3), rounded as
#: published in the text: E = 1.69, A = 406.4, B = 410.7, α = 0.34, β = 0.28.
_CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def _is_array(value) -> bool:
    try:
        v.namespace(value=value)
    except TypeError:
        return False
    return True


def _is_symbolic_real(value) -> bool:
    """SymPy-style real expressions (``is_real`` True), so tier S can trace the formulas."""
    return getattr(value, "is_real", None) is True and not _is_array(value)


def _positive(value, name: str):
    """A positive count: a Python int/float > 0, a real symbol, or a floating array > 0."""
    if _is_array(value):
        xp = v.namespace(**{name: value})
        v.floating(xp, value, name)
        if v.working_dtype(xp, value.dtype) != value.dtype:
            raise TypeError(f"{name} of dtype {value.dtype} is refused: counts of parameters, "
                            "tokens, FLOPs and bytes pass float16's largest value (65,504) and "
                            "bfloat16 keeps 8 significant bits; pass float32 or float64")
        v.check_values(xp, value, lambda a: ~(a > 0),
                       f"{name} must be positive; it holds values ≤ 0 or NaN")
        return value
    if isinstance(value, bool) or not (isinstance(value, (int, float))
                                       or _is_symbolic_real(value)):
        raise TypeError(f"{name} must be a positive number or a floating array, got "
                        f"{type(value).__name__}")
    if isinstance(value, (int, float)) and not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if not isinstance(value, (int, float)) and not bool(value > 0):
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _counts(**values):
    """Check each value with `_positive`; arrays among them must share one library."""
    checked = {name: _positive(x, name) for name, x in values.items()}
    arrays = {n: x for n, x in checked.items() if _is_array(x)}
    if len(arrays) > 1:
        v.namespace(**arrays)
        first, *rest = arrays.items()
        for name, x in rest:
            v.same_dtype(first[1], x, f"{first[0]} and {name}")
            v.broadcastable(first[1], x, f"{first[0]} and {name}")
    return checked


def _constants(**constants):
    for name, c in constants.items():
        _positive(c, name)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="scaling",
    seeds=("002 §9.2",),
    tiers="SPRXE",
    oracle="mpmath",
    errata=(
        "002 §9.2 gives α ≈ β ≈ 0.34; Hoffmann et al.'s fit (eq. 10) has α = 0.34, β = 0.28 "
        "(0.3392, 0.2849 unrounded). α = β would make N_opt ∝ C^0.5 exactly, which is what 002 "
        "quotes from Approaches 1–2; the fitted law gives N_opt ∝ C^0.45.",
    ),
    identities=(
        Identity("decreasing", "∂L/∂N < 0 and ∂L/∂D < 0 for all N, D > 0", "SP"),
        Identity("floor", "L → E as N, D → ∞; L > E always", "P"),
        Identity("accuracy", "within its ulp budget of the exact value", "R"),
    ),
)
def chinchilla_loss(n_params, n_tokens, /, *, E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28):
    r"""The Chinchilla parametric scaling law: loss of N parameters trained on D tokens.

    .. math:: L(N, D) = E + \frac{A}{N^{\alpha}} + \frac{B}{D^{\beta}}

    E is the irreducible loss (nats per token); A/N^α the shortfall of a finite model, B/D^β
    of finite data. Defaults: Hoffmann et al. (2022) eq. 10, E = 1.69, A = 406.4, B = 410.7,
    α = 0.34, β = 0.28.

    Erratum: 002 §9.2 writes α ≈ β ≈ 0.34; the fit has β = 0.28.

    Shapes: Python numbers → a float; floating arrays (broadcastable) → their broadcast shape.
    Dtypes: float32 and float64 arrays (float16 and bfloat16 refused, TypeError). Source: 002 §9.2.
    """
    values = _counts(n_params=n_params, n_tokens=n_tokens)
    _constants(A=A, B=B, alpha=alpha, beta=beta)
    if isinstance(E, bool) or not (isinstance(E, (int, float)) or _is_symbolic_real(E)):
        raise TypeError(f"E must be a real number, got {type(E).__name__}")
    return E + A / values["n_params"] ** alpha + B / values["n_tokens"] ** beta


# --------------------------------------------------------------------------------------------
@equation(
    chapter="scaling",
    seeds=("002 §9.2",),
    tiers="PXE",
    identities=(
        Identity("six_nd", "6 FLOPs per parameter per token (2 forward, 4 backward); Python "
                 "ints stay exact", "P"),
        Identity("chinchilla_budget", "70 B parameters × 1.4 T tokens ≈ 5.9e23 FLOPs, Gopher's "
                 "budget 5.76e23 to 3 %", "P"),
    ),
)
def training_flops(n_params, n_tokens, /):
    r"""Training compute of a dense transformer: about 6 FLOPs per parameter per token.

    .. math:: C \approx 6\,N\,D

    2ND for the forward pass (a multiply and an add per parameter per token) and 4ND for the
    backward pass (gradients with respect to activations and to weights). Attention's s²
    term is left out, as in Kaplan et al. (2020) and Hoffmann et al. (2022).
    Shapes: numbers → a number (ints exact); floating arrays → broadcast shape.
    Dtypes: float32 and float64 arrays (float16 and bfloat16 refused, TypeError).
    Source: 002 §9.2 ("fixed compute C = 6ND").
    """
    values = _counts(n_params=n_params, n_tokens=n_tokens)
    return 6 * values["n_params"] * values["n_tokens"]


# --------------------------------------------------------------------------------------------
def _optimum(flops, A, B, alpha, beta):
    g = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    n_opt = g * (flops / 6) ** (beta / (alpha + beta))
    return n_opt, (flops / 6) / n_opt


@equation(
    chapter="scaling",
    seeds=("002 §9.2",),
    tiers="SPE",
    identities=(
        Identity("stationary", "d/dN L(N, C/(6N)) = 0 at N_opt (SymPy, symbolic A, B, α, β, C)",
                 "S"),
        Identity("constrained_minimum", "perturbing N along 6ND = C raises L", "P"),
        Identity("exponent", "N_opt ∝ C^{β/(α+β)}, D_opt ∝ C^{α/(α+β)}", "SP"),
        Identity("gopher_budget", "at 5.76e23 FLOPs: 3.2e10 parameters, 3.0e12 tokens with the "
                 "rounded constants (4.0e10 with 0.3392, 0.2849; the paper's Approach 3 gives "
                 "~40 B; Chinchilla itself is 70 B on 1.4 T)", "P"),
    ),
)
def compute_optimal_allocation(flops, /, *, A=406.4, B=410.7, alpha=0.34, beta=0.28):
    r"""Compute-optimal model size and data: argmin of the Chinchilla loss subject to 6ND = C.

    .. math:: N_{opt} = G\Bigl(\frac{C}{6}\Bigr)^{\beta/(\alpha+\beta)}, \quad
              G = \Bigl(\frac{\alpha A}{\beta B}\Bigr)^{1/(\alpha+\beta)}, \quad
              D_{opt} = \frac{C}{6\,N_{opt}}

    On the constraint D = C/(6N), L(N) = E + A N^{−α} + B (C/6)^{−β} N^{β}; setting dL/dN = 0
    gives α A N^{−α} = β B (C/6)^{−β} N^{β}, whose one positive root is N_opt (L is convex in
    log N there, so it is the minimum). E does not move the optimum.

    Worked figure: Gopher's budget C = 5.76e23 FLOPs gives N_opt = 3.2e10 parameters and
    D_opt = 3.0e12 tokens with the published rounded constants (α = 0.34, β = 0.28), and
    N_opt = 4.0e10, D_opt = 2.4e12 with the unrounded α = 0.3392, β = 0.2849 — the "≈ 40 B"
    of the paper's Approach 3. Chinchilla itself (70 B parameters, 1.4 T tokens) sits at the
    Approach 1–2 optimum for that budget. Same order of magnitude, not the same number: the
    exponents are sensitive to the third digit.

    Returns (N_opt, D_opt): floats for a number, arrays for a floating array of budgets.
    Dtypes: float32 and float64 arrays (float16 and bfloat16 refused, TypeError).
    Source: 002 §9.2 (N_opt ∝ C^0.5 with α = β; see the erratum of :func:`chinchilla_loss`).
    """
    values = _counts(flops=flops)
    _constants(A=A, B=B, alpha=alpha, beta=beta)
    return _optimum(values["flops"], A, B, alpha, beta)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="scaling",
    seeds=("002 §1.2.1",),
    tiers="PXE",
    identities=(
        Identity("two_mnp", "one multiply and one add per term of each of the mp dot products",
                 "P"),
        Identity("transformer_example", "002's 2048 × 4096 × 4096 product: mnp = 34.4 billion "
                 "multiply-adds, 68.7 GFLOPs", "P"),
    ),
)
def matmul_flops(m, n, p, /):
    r"""Floating-point operations of an (m × n)(n × p) matrix product.

    .. math:: \mathrm{FLOPs} = 2mnp

    Each of the m·p outputs is a dot product of length n: n multiplies and n − 1 adds, counted
    as 2n (a fused multiply-add is two FLOPs). 002 §1.2.1 counts 2048 × 4096 × 4096 ≈ 34
    billion "operations": that is mnp, the multiply-adds; in FLOPs it is 2mnp ≈ 68.7 billion.
    Shapes: numbers → a number (ints exact); floating arrays → broadcast shape.
    Dtypes: float32 and float64 arrays (float16 and bfloat16 refused, TypeError).
    Source: 002 §1.2.1.
    """
    values = _counts(m=m, n=n, p=p)
    return 2 * values["m"] * values["n"] * values["p"]


# --------------------------------------------------------------------------------------------
@equation(
    chapter="scaling",
    seeds=("002 §10.3",),
    tiers="PXE",
    errata=(
        "002 §10.3 quotes ~320 GB of float16 KV cache for a 70 B model without a context "
        "length: 2·80·131072·8192·2 bytes = 320 GiB (343.6 GB) at 128 K tokens, and only for "
        "full multi-head K/V; with 8 grouped K/V heads (Llama-2-70B) it is 40 GiB.",
    ),
    identities=(
        Identity("formula", "two tensors (K, V) × layers × positions × width × bytes × batch",
                 "P"),
        Identity("seventy_b", "L = 80, d = 8192, s = 131072, fp16: 320 GiB (002's ~320 GB)",
                 "P"),
    ),
)
def kv_cache_bytes(num_layers, seq_len, dim, /, *, bytes_per_element=2, batch=1):
    r"""Memory of the key-value cache of a decoder: K and V for every layer and position.

    .. math:: M_{KV} = 2 \cdot L \cdot s \cdot d \cdot \text{bytes} \cdot \text{batch}

    d is the width of the cached keys (= values) per layer: d_model for multi-head attention,
    num_kv_heads·d_head for grouped-query attention (8× smaller for Llama-2-70B).
    002 §10.3's "~320 GB for a 70 B model in float16" is L = 80, d = 8192 at s = 131072 tokens:
    2·80·131072·8192·2 B = 320 GiB (343.6 GB), with full multi-head K/V.
    Shapes: numbers → a number (ints exact); floating arrays → broadcast shape.
    Dtypes: float32 and float64 arrays (float16 and bfloat16 refused, TypeError).
    Source: 002 §10.3 (O(2Lsd) memory).
    """
    values = _counts(num_layers=num_layers, seq_len=seq_len, dim=dim,
                     bytes_per_element=bytes_per_element, batch=batch)
    return (2 * values["num_layers"] * values["seq_len"] * values["dim"]
            * values["bytes_per_element"] * values["batch"])


# --------------------------------------------------------------------------------------------
_ZERO_STAGES = (0, 1, 2, 3)
_COMPONENTS = ("weights", "gradients", "optimizer_states")


@equation(
    chapter="scaling",
    seeds=("002 §9.4",),
    tiers="PXE",
    identities=(
        Identity("zero_paper", "Ψ = 7.5 B on 64 devices: 120 GB, 31.4 GB, 16.6 GB, 1.88 GB "
                 "(ZeRO, Rajbhandari et al. 2020, Figure 1)", "P"),
        Identity("weights_70b", "the 16-bit weights of a 70 B model are 140 GB (002 §9.4)", "P"),
        Identity("stages_order", "each stage needs no more memory than the one before", "P"),
    ),
)
def training_memory_bytes(n_params, /, *, num_devices=1, zero_stage=0,
                          optimizer_bytes_per_param=12, components=_COMPONENTS):
    r"""Per-device memory of mixed-precision Adam training, with ZeRO partitioning.

    .. math:: M_0 = (2 + 2 + K)\Psi, \quad M_1 = 4\Psi + \frac{K\Psi}{N_d}, \quad
              M_2 = 2\Psi + \frac{(2 + K)\Psi}{N_d}, \quad M_3 = \frac{(4 + K)\Psi}{N_d}

    Ψ parameters: 2Ψ bytes of fp16 weights, 2Ψ of fp16 gradients and KΨ = 12Ψ of optimizer
    state (fp32 master weights, momentum and variance: 4 + 4 + 4). ZeRO stage 1 partitions the
    optimizer state over N_d devices, stage 2 also the gradients, stage 3 also the weights.
    Activations and buffers are not counted; ``components`` picks a subset of the three
    (``("weights",)`` alone: 2Ψ, 140 GB for 70 B parameters). For Ψ = 7.5e9 and N_d = 64
    this gives 120 GB, 31.4 GB, 16.6 GB and 1.88 GB (decimal GB), ZeRO's Figure 1.
    Shapes: numbers → a number (a float where N_d divides); floating arrays → same shape.
    Dtypes: float32 and float64 arrays (float16 and bfloat16 refused, TypeError).
    Source: 002 §9.4 (ZeRO; 140 GB for a 70 B model's 16-bit weights).
    """
    values = _counts(n_params=n_params)
    if isinstance(num_devices, bool) or not isinstance(num_devices, int):
        raise TypeError(f"num_devices must be an integer, got {type(num_devices).__name__}")
    if num_devices < 1:
        raise ValueError(f"num_devices must be ≥ 1, got {num_devices}")
    v.choice(zero_stage, _ZERO_STAGES, "zero_stage")
    _constants(optimizer_bytes_per_param=optimizer_bytes_per_param)
    if (isinstance(components, str) or not components
            or any(c not in _COMPONENTS for c in components)):
        raise ValueError(f"components must be a non-empty subset of {_COMPONENTS}, got "
                         f"{components!r}")
    psi, k, n_d = values["n_params"], optimizer_bytes_per_param, num_devices
    weights, grads, states = 2 * psi, 2 * psi, k * psi
    if zero_stage >= 1:
        states = states / n_d
    if zero_stage >= 2:
        grads = grads / n_d
    if zero_stage >= 3:
        weights = weights / n_d
    parts = {"weights": weights, "gradients": grads, "optimizer_states": states}
    total = 0
    for name in _COMPONENTS:
        if name in components:
            total = total + parts[name]
    return total


