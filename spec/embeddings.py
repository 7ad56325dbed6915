r"""Embeddings and positions: token lookup, weight tying, positional encodings, similarity.

Conventions. An embedding table E has shape (V, d): one row per token of a vocabulary of V.
Token ids are integer arrays with values in [0, V). A position encoding is built for a
sequence axis of length seq_len, with positions 0, 1, … unless given explicitly. The
rotary embedding rotates pairs of features by angles p·θᵢ with θᵢ = base^(−2i/d). Two
layouts pair the features differently: "interleaved" pairs (2i, 2i+1), as in RoFormer and
Meta's LLaMA code; "half" pairs (i, i + d/2), as in GPT-NeoX and Hugging Face's
``rotate_half``. Both apply the same rotation, with the features stored in a different
order.

The frequencies θᵢ are computed once in Python, correctly rounded to float64 with the
standard library's ``decimal``, and converted to the working dtype. Every backend therefore
uses the same frequencies, and the angle p·θᵢ is one multiplication in the working dtype.
In float32 that angle carries a relative rounding error of about 6e-8. At position 1e4 the
absolute error is then about 6e-4 rad, which is inherent to float32 angles. Pass float64
inputs for long contexts where that matters.

Dtypes: float16 and bfloat16 are computed in float32 (angles, sines and cosines, products
and sums; the positions are never rounded to the low dtype, whose integers stop at 2048 in
float16 and 256 in bfloat16) and the result is rounded once; float32 and float64 are
computed in their own precision. Integer token ids, labels and positions of any width
(uint8 … int64, signed or not) mean what their values say: they are widened to int64
before anything compares or indexes with them.

Sources: 002 §6.1 (token embeddings, weight tying), 002 §6.2.1 (sinusoidal encoding),
002 §6.2.2 (RoPE), 003 (one-hot vectors, king − man + woman ≈ queen), 004 (embeddings,
retrieval by cosine similarity).
"""

from __future__ import annotations

import decimal
import math

from . import _validate as v
from ._registry import (
    ALL_FLOATS,
    Identity,
    Limit,
    Variant,
    equation,
    jit_size_limit,
)
from .linalg import cosine_similarity

__all__ = [
    "analogy",
    "cosine_top_k",
    "embedding",
    "one_hot",
    "rope",
    "sinusoidal_positions",
    "tied_logits",
]

_LAYOUTS = ("interleaved", "half")


def _count(value, name: str, *, minimum: int) -> int:
    """A non-negative integer option as a Python int (ints and 0-d integer arrays accepted)."""
    n = v.integer_option(value, name)
    if n < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {n}")
    return n


def _table(xp, table) -> None:
    v.floating(xp, table, "table")
    if table.ndim != 2:
        raise ValueError(f"table must be a matrix (V, d) with one row per token, got shape "
                         f"{tuple(table.shape)}")


def _ids(xp, ids, name: str, vocab: int):
    """Integer token ids of any width in [0, vocab), as int64: TypeError for another dtype,
    ValueError if outside."""
    return v.indices(xp, ids, name, upper=vocab, what="token ids")


def _inverse_frequencies(xp, dim: int, base: float, dtype, device, scaling=None):
    r"""θᵢ = base^(−2i/dim), i = 0 … dim/2 − 1, as an array of `dtype` (the same on every
    backend), rescaled by `scaling` (see :func:`_scaled`) when given.

    Decimal's power is correctly rounded and its exponent −2i/dim is exact to 40 digits, so
    each θᵢ is float64's nearest value (a float64 exponent −2i/dim would first be rounded,
    costing up to |ln base|·u ≈ 9 units of rounding for base 1e4).
    """
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        b = decimal.Decimal(base)
        theta = [float(b ** (decimal.Decimal(-2 * i) / dim)) for i in range(dim // 2)]
    if scaling is not None:
        theta = _scaled(theta, scaling)
    return xp.asarray(theta, dtype=dtype, device=device)


#: the keys of a RoPE scaling mapping (Hugging Face's ``rope_scaling`` / ``rope_parameters``)
_SCALING_KEYS = {"linear": ("factor",),
                 "llama3": ("factor", "low_freq_factor", "high_freq_factor",
                            "original_max_position_embeddings")}


def _rope_scaling(scaling, base: float, name: str = "scaling", base_name: str = "base"):
    """A RoPE scaling mapping checked: None for none (or rope_type "default"), else
    (rope_type, {key: float}). Hugging Face's dict is taken as it is: "rope_type" (or the
    older "type"), the type's keys, and "rope_theta", which must then equal `base`. Errors
    name the option `name` and the base `base_name`, as the caller calls them."""
    if scaling is None:
        return None
    if not hasattr(scaling, "keys") or not hasattr(scaling, "__getitem__"):
        raise TypeError(f"{name} must be None or a mapping such as {{'rope_type': 'linear', "
                        f"'factor': 2.0}}, got {type(scaling).__name__}")
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind in (None, "default"):
        kind = "default"
    elif kind not in _SCALING_KEYS:
        raise ValueError(f"{name}['rope_type'] must be one of 'default', "
                         f"{', '.join(map(repr, _SCALING_KEYS))}, got {kind!r}")
    if "rope_theta" in scaling and float(scaling["rope_theta"]) != base:
        raise ValueError(f"{name}['rope_theta'] = {scaling['rope_theta']!r} differs from "
                         f"{base_name} = {base!r}")
    wanted = _SCALING_KEYS.get(kind, ())
    extra = sorted(set(scaling) - {"rope_type", "type", "rope_theta", *wanted})
    if extra:
        raise ValueError(f"{name} of rope_type {kind!r} takes the keys {list(wanted)}; "
                         f"unknown: {extra}")
    missing = [k for k in wanted if k not in scaling]
    if missing:
        raise ValueError(f"{name} of rope_type {kind!r} needs the keys {missing}")
    if kind == "default":
        return None
    values = {k: v.positive_number(scaling[k], f"{name}[{k!r}]") for k in wanted}
    if kind == "llama3" and not values["high_freq_factor"] > values["low_freq_factor"]:
        raise ValueError(f"{name}['high_freq_factor'] = {values['high_freq_factor']} must "
                         f"exceed {name}['low_freq_factor'] = {values['low_freq_factor']}")
    return kind, values


def _scaled(theta: list, scaling) -> list:
    r"""The frequencies of a scaled RoPE (Python floats, float64).

    "linear" (position interpolation): θᵢ / s. "llama3" (Meta's Llama 3.1): with wavelength
    λᵢ = 2π/θᵢ, original context L, factors l < h and γᵢ = (L/λᵢ − l)/(h − l),

    .. math:: \theta_i' = \begin{cases} \theta_i & \lambda_i < L/h \\
              \theta_i / s & \lambda_i > L/l \\
              (1 - \gamma_i)\,\theta_i / s + \gamma_i \theta_i & \text{otherwise}
              \end{cases}

    so the fast pairs (local order) keep their angles and the slow ones are interpolated.
    """
    kind, p = scaling
    s = p["factor"]
    if kind == "linear":
        return [t / s for t in theta]
    context, low, high = (p["original_max_position_embeddings"], p["low_freq_factor"],
                          p["high_freq_factor"])
    out = []
    for t in theta:
        wavelength = 2 * math.pi / t
        if wavelength < context / high:
            out.append(t)
        elif wavelength > context / low:
            out.append(t / s)
        else:
            gamma = (context / wavelength - low) / (high - low)
            out.append((1 - gamma) * t / s + gamma * t)
    return out


# --------------------------------------------------------------------------------------------
@equation(
    chapter="embeddings",
    seeds=("002 §6.1", "003", "004"),
    oracle="exact",
    dtypes=ALL_FLOATS,
    identities=(
        Identity("is_one_hot_matmul", "embedding(E, t) = one_hot(t) @ E", "SP"),
        Identity("integer_widths", "token ids of every integer width (uint8 … int64) give "
                 "the rows of their values", "P"),
        Identity("variants", "scale_by_sqrt_d=True is √d·E[t] (Vaswani et al. §3.4, Gemma), "
                 "equal to an independent reference and told apart from the default", "P"),
        Identity("gradient", "the gradient with respect to E adds each upstream row into the "
                 "row of its token (SymPy, autograd, differences)", "D"),
        Identity("exact", "a copy of the rows: bitwise equal to the table's rows", "R"),
    ),
    variants=(
        Variant("lookup", {"scale_by_sqrt_d": False}, "GPT-2, LLaMA, T5, BERT, "
                "torch.nn.Embedding", "the rows as stored", default=True),
        Variant("scaled_by_sqrt_d", {"scale_by_sqrt_d": True},
                "Vaswani et al. (2017) §3.4, Gemma (Hugging Face's embedding normaliser "
                "√hidden_size), fairseq's Transformer (embed_scale)",
                "every row times √d: 16× the stored row for d = 256"),
    ),
    limits=(
        Limit("dask", "dask's reshape cannot split a 0-length axis that has several chunks "
              "(no tokens: (0,) rows back to (0, 2, d))",
              "https://github.com/dask/dask/issues/2561", tiers="PXR", note="no tokens"),
    ),
)
def embedding(table, tokens, /, *, scale_by_sqrt_d=False):
    r"""Token embedding: look up the row of the embedding table for every token id.

    .. math:: e_t = E[t] = \operatorname{onehot}(t)\, E, \qquad E \in \mathbb{R}^{|V| \times d}

    Variant: ``scale_by_sqrt_d=True`` multiplies every row by √d, as the original
    Transformer (§3.4) and Gemma do before adding positions.
    Shapes: table (V, d), tokens integer of any width (...) with values in [0, V) →
    (..., d). Dtypes: every floating dtype, copied exactly (the √d variant is computed in
    float32 for float16 and bfloat16 and rounded once).
    Source: 002 §6.1 (e_t = E[t]), 003 (from one-hot to dense vectors), 004 (e = E(x)).
    """
    xp = v.namespace(table=table, tokens=tokens)
    _table(xp, table)
    if not isinstance(scale_by_sqrt_d, bool):
        raise TypeError(f"scale_by_sqrt_d must be True or False, got "
                        f"{type(scale_by_sqrt_d).__name__}")
    tokens = _ids(xp, tokens, "tokens", table.shape[0])
    rows = xp.take(table, xp.reshape(tokens, (-1,)), axis=0)
    rows = xp.reshape(rows, (*tokens.shape, table.shape[1]))
    if not scale_by_sqrt_d:
        return rows  # a copy: exact in every dtype
    rows, dtype = v.widen(xp, rows)
    return v.narrow(xp, rows * math.sqrt(table.shape[1]), dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="embeddings",
    seeds=("003",),
    tiers="SPRXE",
    oracle="exact",
    identities=(
        Identity("rows_sum_to_one", "each row holds one 1 and K − 1 zeros, so it sums to 1",
                 "SP"),
        Identity("argmax_inverts", "argmax(one_hot(y)) = y", "P"),
        Identity("dtype", "the default is the namespace's default floating dtype; dtype= an "
                 "integer, bool, float16 or bfloat16 dtype gives exact 0/1 of that kind", "P"),
        Identity("integer_widths", "labels of every integer width (uint8 … int64) give the "
                 "int64 labels' rows: uint8 [5, 100] with 300 classes has one 1 per row", "P"),
        Identity("exact", "exactly 0 and 1", "R"),
    ),
)
def one_hot(labels, num_classes, /, *, dtype=None):
    r"""One-hot encoding: the indicator vector of each label among `num_classes` classes.

    .. math:: \operatorname{onehot}(y)_k = [y = k] =
              \begin{cases} 1 & k = y \\ 0 & k \ne y \end{cases}, \qquad k = 0, \dots, K - 1

    `dtype` is the output dtype: a floating, integer or bool dtype of the labels' namespace;
    None (the default) means the namespace's default floating dtype on the labels' device
    (float64 for NumPy, JAX with x64, Dask and array-api-strict; float32 for PyTorch).
    Shapes: labels integer of any width (...) with values in [0, K), num_classes K ≥ 1 (an
    int) → (..., K). Dtypes: 0 and 1 are exact in every dtype, float16 and bfloat16 included
    (it takes no floating input; the output dtype is the `dtype` option).
    Source: 003 (one-hot encoding of words).
    """
    xp = v.namespace(labels=labels)
    v.integer(xp, labels, "labels")
    k = _count(num_classes, "num_classes", minimum=1)
    device = v.device(labels)
    dtype = v.dtype_option(xp, dtype, device, ("real floating", "integral", "bool"))
    labels = v.indices(xp, labels, "labels", upper=k)
    classes = xp.arange(k, dtype=labels.dtype, device=device)
    return xp.astype(xp.expand_dims(labels, axis=-1) == classes, dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="embeddings",
    seeds=("002 §6.1",),
    dtypes=ALL_FLOATS,
    oracle="mpmath",
    identities=(
        Identity("is_dot_with_rows", "logit v is the dot product of h with row v of E "
                 "(SymPy: h Eᵀ entry by entry)", "SP"),
        Identity("shape", "(…, d) and (V, d) give (…, V)", "P"),
        Identity("gradient_reaches_table", "the gradient with respect to E is gᵀh (SymPy, "
                 "autograd, differences), so the output layer trains the embedding", "D"),
        Identity("accuracy", "within its ulp budget of mpmath, normwise at Σⱼ|hⱼEᵥⱼ|", "R"),
    ),
)
def tied_logits(h, table, /):
    r"""Output logits with weight tying: the embedding table is reused as the output layer.

    .. math:: \operatorname{logits} = h\,E^\top, \qquad
              \operatorname{logits}_v = \langle h, E_v \rangle = \sum_{j=1}^{d} h_j E_{vj}

    Sharing W_out = E saves |V|·d parameters; the gradient of the loss reaches E from both
    ends. Shapes: h (..., d), table (V, d) → (..., V). Dtypes: float16 and bfloat16 are
    computed in float32 (the products and their sums) and rounded once.
    Source: 002 §6.1 (weight tying).
    """
    xp = v.namespace(h=h, table=table)
    v.floating(xp, h, "h")
    _table(xp, table)
    v.same_dtype(h, table, "h and table")
    v.min_ndim(h, 1, "h")
    if h.shape[-1] != table.shape[1]:
        raise ValueError(f"h must have the table's width d = {table.shape[1]} as its last "
                         f"axis, got h of shape {tuple(h.shape)} and table of shape "
                         f"{tuple(table.shape)}")
    (h, table), dtype = v.widen(xp, h, table)
    return v.narrow(xp, h @ table.T, dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="embeddings",
    seeds=("002 §6.2.1", "003"),
    # no generic tier R: it takes no array, so the harness (which moves positional arrays
    # only) would call it with the host's namespace; its accuracy against mpmath is checked
    # with each backend's namespace, dtype and device by a tier-P property
    # (conformance/properties/embeddings.py)
    tiers="SPXE",
    oracle="mpmath",
    limits=(jit_size_limit("num_positions as a 0-d integer array", tiers="X"),),
    identities=(
        Identity("is_textbook", "the code gives sin(p·base^(−2i/d)) and cos(…) exactly "
                 "(SymPy)", "S"),
        Identity("relative_offset_linear", "PE(p + k) = M_k PE(p) with one block-diagonal "
                 "rotation M_k for every p: exactly for d = 2, 4 (SymPy); by solving for M_k "
                 "from several p and checking it is the same (Hypothesis)", "SP"),
        Identity("bounded", "every value lies in [−1, 1]; each (sin, cos) pair has norm 1",
                 "P"),
        Identity("accuracy", "within its ulp budget of mpmath, at the scale max(1, |p·θᵢ|) "
                 "of the float angle, with the backend's namespace, dtype and device "
                 "(positions to 1e4 in float32)", "P"),
        Identity("cross_backend", "the backend's namespace, dtype and device give NumPy's "
                 "values", "X"),
        Identity("default_namespace", "without xp= it builds NumPy arrays (array-api-compat's "
                 "NumPy namespace), the same as xp=array_api_compat.numpy", "P"),
        Identity("low_precision", "dtype=float16 or bfloat16 is float32's result rounded "
                 "once: within float32's budget plus half an ulp of the dtype, positions to "
                 "1e4 (float16 stops holding integers at 2048)", "P"),
    ),
)
def sinusoidal_positions(num_positions, dim, /, *, base=10000.0, xp=None, dtype=None,
                         device=None):
    r"""Sinusoidal positional encoding: sines and cosines of the position at geometric frequencies.

    .. math:: PE(p, 2i) = \sin(p\,\theta_i), \qquad PE(p, 2i+1) = \cos(p\,\theta_i), \qquad
              \theta_i = \mathrm{base}^{-2i/d} = \frac{1}{10000^{2i/d}}

    For every offset k there is one block-diagonal rotation M_k with
    PE(p + k) = M_k PE(p) for every p, so a linear map can read relative positions.

    This function takes no array to learn the namespace from: ``xp=`` names the array
    namespace (``array_api_compat.numpy``, ``array_api_compat.torch``, ``jax.numpy``, …) and
    defaults to NumPy (through array-api-compat) when not given. ``dtype`` defaults to the
    namespace's default floating dtype and ``device`` to its default device.
    `num_positions` and `dim` are integers (NumPy integers and 0-d integer arrays too).
    Shapes: → (num_positions, dim), positions 0 … num_positions − 1, dim even ≥ 2.
    Dtypes: ``dtype=`` float16 or bfloat16 is computed in float32 (positions, angles, sines
    and cosines) and rounded once.
    Source: 002 §6.2.1, 003 (sinusoidal encodings let the model learn relative positions).
    """
    xp = v.namespace_or_numpy(xp)
    n = _count(num_positions, "num_positions", minimum=0)
    dim = _count(dim, "dim", minimum=2)
    if dim % 2:
        raise ValueError(f"dim must be even (a sine and a cosine per frequency), got {dim}")
    base = v.positive_number(base, "base")
    dtype = v.dtype_option(xp, dtype, device, ("real floating",))
    return _sinusoidal_at(xp, xp.arange(n, dtype=xp.int64, device=device), dim, base, dtype)


def _sinusoidal_at(xp, positions, dim: int, base: float, dtype):
    """PE at integer positions of any shape (...) → (..., dim), in `dtype` (computed in its
    working dtype and rounded once): the rows of sinusoidal_positions at those positions."""
    work = v.working_dtype(xp, dtype)
    device = v.device(positions)
    angle = xp.astype(positions, work)[..., None] * _inverse_frequencies(xp, dim, base, work,
                                                                          device)
    pe = xp.reshape(xp.stack([xp.sin(angle), xp.cos(angle)], axis=-1), (*positions.shape, dim))
    return pe if work == dtype else xp.astype(pe, dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="embeddings",
    seeds=("002 §6.2.2",),
    dtypes=ALL_FLOATS,
    oracle="mpmath",
    identities=(
        Identity("relative_invariance", "⟨rope(q, m), rope(k, n)⟩ depends only on m − n: "
                 "unchanged by m, n → m + c, n + c (SymPy for d = 2 and 4, both layouts; "
                 "Hypothesis for any even d and positions)", "SP"),
        Identity("norm_preserving", "‖rope(x, p)‖ = ‖x‖ for every token", "SP"),
        Identity("position_zero_identity", "rope(x, 0) = x", "SP"),
        Identity("layouts", "interleaved matches a complex-number reference (RoFormer/LLaMA); "
                 "half matches an explicit rotate_half reference (GPT-NeoX/HF); the two are "
                 "one feature permutation apart", "P"),
        Identity("gradient", "SymPy, autograd and central differences agree (x, and float "
                 "positions)", "D"),
        Identity("integer_widths", "positions of every integer width (uint8 … int64) "
                 "rotate by the angles of their values", "P"),
        Identity("angles_in_working_precision", "positions and angles are never rounded to "
                 "float16 or bfloat16: positions 1001 and 70000 stay within the budget there "
                 "(a bfloat16 angle was off by whole radians, a float16 position 70000 was ∞)",
                 "PR"),
        Identity("accuracy", "within its ulp budget of mpmath, at the scale "
                 "(|x_a| + |x_b|)·max(1, |p·θᵢ|) (positions to 1e4 in float32)", "R"),
        Identity("positions_per_row", "positions (..., seq_len), one row per sequence, rotate "
                 "each sequence as rope on that sequence alone with its row", "P"),
        Identity("scaling", "linear scaling by s is rope at positions p/s; llama3 scaling "
                 "equals an independent transcription of Meta's apply_scaling (fast pairs "
                 "unchanged, slow pairs at p/s, a smooth blend between) and Hugging Face's "
                 "llama3 rope_type", "P"),
    ),
    variants=(
        Variant("interleaved", {"layout": "interleaved"},
                "RoFormer, Meta's LLaMA reference code (view_as_complex), GPT-J",
                "pairs (2i, 2i + 1)", default=True),
        Variant("half", {"layout": "half"},
                "GPT-NeoX, Hugging Face's rotate_half (LlamaForCausalLM, Mistral, Qwen), "
                "vLLM's is_neox_style",
                "pairs (i, i + d/2): the same rotation of a permuted feature order; for d ≥ 4 "
                "and a position ≠ 0 the outputs differ"),
    ),
)
def rope(x, positions, /, *, base=10000.0, layout="interleaved", scaling=None):
    r"""Rotary position embedding: rotate each feature pair by an angle proportional to position.

    .. math:: \begin{pmatrix} y_a \\ y_b \end{pmatrix} =
              \begin{pmatrix} \cos p\theta_i & -\sin p\theta_i \\
                              \sin p\theta_i & \cos p\theta_i \end{pmatrix}
              \begin{pmatrix} x_a \\ x_b \end{pmatrix}, \qquad
              \theta_i = \mathrm{base}^{-2i/d}, \quad i = 0, \dots, d/2 - 1

    Pair i is (a, b) = (2i, 2i + 1) for ``layout="interleaved"`` (RoFormer, Meta's LLaMA)
    and (i, i + d/2) for ``layout="half"`` (GPT-NeoX, Hugging Face ``rotate_half``). With
    R_p the block rotation, (R_m q)ᵀ(R_n k) = qᵀ R_{n−m} k depends on m − n only.
    Positions are converted to x's working dtype (float32 for float16, bfloat16 and float32
    inputs; float64 for float64), never to a low precision.

    ``scaling`` stretches the context by changing the frequencies θᵢ, given as Hugging Face's
    ``rope_scaling`` mapping (``config.rope_parameters`` in transformers ≥ 5, whose
    ``rope_theta`` must then equal ``base``): ``{"rope_type": "linear", "factor": s}`` is
    position interpolation, θᵢ/s (the angle of position p/s); ``{"rope_type": "llama3",
    "factor": s, "low_freq_factor": l, "high_freq_factor": h,
    "original_max_position_embeddings": L}`` is Llama 3.1's: the pairs of wavelength
    2π/θᵢ < L/h keep θᵢ, those above L/l take θᵢ/s, and those between interpolate smoothly,
    θᵢ' = (1 − γ)θᵢ/s + γθᵢ with γ = (L·θᵢ/2π − l)/(h − l).

    Shapes: x (..., seq_len, d) with d even ≥ 2; positions (seq_len,), or one row per sequence
    (..., seq_len) whose leading axes broadcast to x's (x.shape[:-2]; for x of shape
    (batch, heads, seq_len, d), positions (batch, 1, seq_len)), integer of any width or
    floating → x's shape. Dtypes: float16 and bfloat16 are computed in float32 (angles,
    rotations) and rounded once. Source: 002 §6.2.2; Chen et al. 2023 (position
    interpolation); Meta's Llama 3.1 reference code (llama3 scaling).
    """
    xp = v.namespace(x=x, positions=positions)
    v.floating(xp, x, "x")
    v.choice(layout, _LAYOUTS, "layout")
    v.min_ndim(x, 2, "x")
    seq_len, dim = x.shape[-2], x.shape[-1]
    if dim < 2 or dim % 2:
        raise ValueError(f"x must have an even feature dimension d ≥ 2 (features are rotated "
                         f"in pairs), got d = {dim} (x of shape {tuple(x.shape)})")
    if not xp.isdtype(positions.dtype, ("integral", "real floating")):
        raise TypeError(f"positions must have an integer or real floating dtype, got "
                        f"{positions.dtype}")
    lead = tuple(x.shape[:-2])
    if not v.rows_fit(tuple(positions.shape), lead, seq_len):
        raise ValueError(f"positions must have shape (seq_len,) = ({seq_len},), or (..., "
                         f"{seq_len}) with leading axes that broadcast to {lead}, for x of "
                         f"shape {tuple(x.shape)}; got {tuple(positions.shape)}")
    base = v.positive_number(base, "base")
    scaling = _rope_scaling(scaling, base)
    if xp.isdtype(positions.dtype, "integral"):
        unsigned = xp.isdtype(positions.dtype, "unsigned integer")
        positions = v.indices(xp, positions, "positions")  # int64, values as written
        if unsigned:  # a uint64 value ≥ 2⁶³ would have wrapped to a negative int64
            v.check_values(xp, positions, lambda p: p < 0,
                           "positions must be below 2**63; some uint64 positions are not")

    x, dtype = v.widen(xp, x)
    theta = _inverse_frequencies(xp, dim, base, x.dtype, v.device(x), scaling)
    angle = xp.astype(positions, x.dtype)[..., None] * theta  # (..., seq_len, d/2)
    cos, sin = xp.cos(angle), xp.sin(angle)
    if layout == "interleaved":
        xa, xb = x[..., 0::2], x[..., 1::2]
        pairs = xp.stack([xa * cos - xb * sin, xa * sin + xb * cos], axis=-1)
        return v.narrow(xp, xp.reshape(pairs, x.shape), dtype)
    xa, xb = x[..., : dim // 2], x[..., dim // 2 :]
    return v.narrow(xp, xp.concat([xa * cos - xb * sin, xa * sin + xb * cos], axis=-1), dtype)


# --------------------------------------------------------------------------------------------
def _similarities(query, rows):
    """cos(query, rowᵥ) for every row: (..., d) and (V, d) → (..., V)."""
    return cosine_similarity(query[..., None, :], rows)


@equation(
    chapter="embeddings",
    seeds=("002 §6.1", "003"),
    tiers="SPRXE",
    dtypes=ALL_FLOATS,
    oracle="mpmath",
    errata=(
        "003 (and 002 §6.1) state king − man + woman ≈ queen without saying that the three "
        "query words are left out of the search; the standard evaluation (word2vec's "
        "analogy test) excludes them, since the nearest vector is often b itself. The spec "
        "excludes a, b and c.",
    ),
    identities=(
        Identity("king_queen", "king − man + woman → queen on a constructed table (003)", "SP"),
        Identity("brute_force", "equals the arg max of cosine_similarity over the rows other "
                 "than a, b, c, ties to the lower index; never returns a, b or c", "P"),
        Identity("scale_invariant", "unchanged when the whole table is scaled by c > 0", "P"),
        Identity("integer_widths", "a, b and c of every integer width (uint8 … int64) give "
                 "the int64 ids' answer", "P"),
        Identity("exact", "the index of the mpmath arg max on inputs with clear margins", "R"),
    ),
)
def analogy(table, a, b, c, /):
    r"""Word analogy: the token whose embedding is nearest, by cosine, to E[b] − E[a] + E[c].

    .. math:: \hat v = \operatorname*{arg\,max}_{v \notin \{a, b, c\}}
              \cos\bigl(E_b - E_a + E_c,\ E_v\bigr)

    "a is to b as c is to v̂": with a = man, b = king, c = woman the answer is queen. The
    three query tokens are excluded. Ties go to the lower index, and a zero target vector
    has cosine 0 with every row (`cosine_similarity`'s ε), so it gives the first row not
    excluded. Shapes: table (V, d) with V ≥ 4; a, b, c integer arrays of any width and of
    one shape (...) with values in [0, V) → integer indices (...) (the namespace's default
    index dtype). Dtypes: a float16 or bfloat16 table is searched in float32.
    Source: 002 §6.1, 003 (king − man + woman ≈ queen).
    """
    xp = v.namespace(table=table, a=a, b=b, c=c)
    _table(xp, table)
    vocab = table.shape[0]
    if vocab < 4:
        raise ValueError(f"table must have at least 4 rows (a, b and c are excluded from the "
                         f"search), got shape {tuple(table.shape)}")
    a, b, c = (_ids(xp, ids, name, vocab) for name, ids in (("a", a), ("b", b), ("c", c)))
    v.same_shape(a, b, "a and b")
    v.same_shape(a, c, "a and c")

    table, _ = v.widen(xp, table)  # an index comes back: nothing to round
    target = embedding(table, b) - embedding(table, a) + embedding(table, c)  # (..., d)
    sims = _similarities(target, table)  # (..., V)
    ids = xp.arange(vocab, dtype=a.dtype, device=v.device(table))
    excluded = ((ids == xp.expand_dims(a, axis=-1)) | (ids == xp.expand_dims(b, axis=-1))
                | (ids == xp.expand_dims(c, axis=-1)))
    sims = xp.where(excluded, xp.asarray(-math.inf, dtype=sims.dtype, device=v.device(sims)),
                    sims)
    return xp.argmax(sims, axis=-1)


#: a constructed table (003): dimensions royalty, maleness, femaleness, and a "fruit" axis
_WORDS = ["king", "queen", "man", "woman", "apple", "prince", "princess"]


# --------------------------------------------------------------------------------------------
@equation(
    chapter="embeddings",
    seeds=("004",),
    tiers="PRXE",
    dtypes=ALL_FLOATS,
    oracle="mpmath",
    identities=(
        Identity("sorted_by_cosine", "the indices are those of `cosine_similarity` sorted in "
                 "decreasing order, ties to the lower index", "P"),
        Identity("scale_invariant", "unchanged when the query or a document is scaled by "
                 "c > 0 (away from ties)", "P"),
        Identity("exact", "the mpmath ranking on inputs with clear margins", "R"),
    ),
)
def cosine_top_k(query, docs, /, *, k):
    r"""Retrieval by cosine similarity: the indices of the k documents most aligned with the query.

    .. math:: \operatorname{sim}(q, d_i) = \frac{q \cdot d_i}{\|q\|\,\|d_i\|}, \qquad
              \text{result} = (i_1, \dots, i_k),\
              \operatorname{sim}(q, d_{i_1}) \ge \dots \ge \operatorname{sim}(q, d_{i_k})

    The similarities are `cosine_similarity` (a zero vector has similarity 0 with
    everything). The order is a stable sort, so equal similarities are listed in increasing
    index order; NaN similarities are placed wherever the backend's sort puts NaN.
    Shapes: query (..., d), docs (N, d), 1 ≤ k ≤ N (an int) → integer indices (..., k)
    (the namespace's default index dtype); the scores are
    ``cosine_similarity(query[..., None, :], docs)`` taken at those indices.
    Dtypes: float16 and bfloat16 queries and documents are compared in float32.
    Source: 004 (retrieval: sim(q, dᵢ) = q·dᵢ/(‖q‖‖dᵢ‖)).
    """
    xp = v.namespace(query=query, docs=docs)
    v.floating(xp, query, "query")
    v.floating(xp, docs, "docs")
    v.same_dtype(query, docs, "query and docs")
    v.min_ndim(query, 1, "query")
    if docs.ndim != 2:
        raise ValueError(f"docs must be a matrix (N, d) with one document per row, got shape "
                         f"{tuple(docs.shape)}")
    if query.shape[-1] != docs.shape[1]:
        raise ValueError(f"query must have the documents' width d = {docs.shape[1]} as its last "
                         f"axis, got query of shape {tuple(query.shape)}")
    k = _count(k, "k", minimum=1)
    if k > docs.shape[0]:
        raise ValueError(f"k must be at most the number of documents N = {docs.shape[0]}, "
                         f"got k = {k}")
    (query, docs), _ = v.widen(xp, query, docs)  # indices come back: nothing to round
    sims = _similarities(query, docs)  # (..., N)
    return xp.argsort(-sims, axis=-1, stable=True)[..., :k]


