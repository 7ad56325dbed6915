r"""Attention: softmax-weighted averages of values, keyed by query–key similarity.

Conventions (§9 of EQUATIONS.md, the contract):

* ``q`` is ``(..., heads, q_len, d_k)``, ``k`` is ``(..., heads, k_len, d_k)``, ``v`` is
  ``(..., heads, k_len, d_v)``; the leading dimensions (heads and any batch) are optional and
  broadcast against each other as in ``matmul``.
* ``mask`` is boolean (True = may attend, as in PyTorch's ``scaled_dot_product_attention``; the
  opposite of ``key_padding_mask`` and of ``nn.MultiheadAttention``'s boolean ``attn_mask``) or
  an additive float mask (0 or −∞, any finite bias works too), broadcastable to
  ``(..., q_len, k_len)`` without enlarging it.
* ``scale`` defaults to 1/√d_k.
* A query row whose keys are all masked out gets all-zero weights and a zero output, never
  NaN (PyTorch 2.13 returns the same zeros, for boolean and for −∞ additive masks).
* A query never reads the values of the keys it does not attend (weight exactly 0): an ∞ or
  NaN in a masked-out value row reaches only the queries that attend that key.
* ``is_causal`` aligns the triangle to the *end* (bottom-right): query i may attend key j iff
  j ≤ i + (k_len − q_len), so one decoding step (q_len = 1) attends to the whole cache. PyTorch's
  ``is_causal=True`` aligns top-left instead (its ``causal_lower_right`` bias is ours); the two
  agree when q_len = k_len. ``causal_alignment="upper_left"`` computes PyTorch's form (the named
  variants of the records). ``mask`` and ``is_causal`` together combine (both must allow).
* Dtypes: float16 and bfloat16 are computed in float32 (the scores, the softmax's sum of
  exponentials, which would overflow float16 past 65,504 keys, and the weighted sums of the
  values) and returned rounded once; float32 and float64 as they are.

Sources: 000 (attention, multi-head), 002 §7.1–§7.4 (SDPA, multi-head, causal mask, cost),
002 §10.3 (KV cache), 003 (Q, K, V), 004 (self-attention).
"""

from __future__ import annotations

import math

from . import _validate as check
from ._registry import ALL_FLOATS, Identity, Variant, equation
from .probability import _shifted

__all__ = [
    "attention_cost",
    "attention_weights",
    "causal_mask",
    "kv_cache_attention",
    "multi_head_attention",
    "scaled_dot_product_attention",
]


# --------------------------------------------------------------------------------------------
# checks and shared pieces
def _broadcast_shapes(a: tuple, b: tuple, names: str) -> tuple:
    """The broadcast of two shapes, or ValueError naming both."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            raise ValueError(f"{names} must have broadcastable leading (batch, head) dimensions, "
                             f"got {a} and {b}")
        out.append(y if x == 1 else x)
    return tuple(out)


def _flag(value, name: str) -> bool:
    """A boolean option: True or False (NumPy's bool scalars too)."""
    kind = type(value)
    if isinstance(value, bool) or (kind.__module__ == "numpy" and kind.__name__ in ("bool",
                                                                                  "bool_")):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


def _scale(scale, d_k: int) -> float:
    """The score scale: 1/√d_k by default, else any finite real number (NumPy scalars too)."""
    if scale is None:
        if d_k == 0:
            raise ValueError("q and k have d_k = 0: the default scale 1/√d_k is undefined")
        return 1.0 / math.sqrt(d_k)
    scale = check.real_number(scale, "scale")
    if not math.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale!r}")
    return scale


#: where the causal triangle sits when k_len ≠ q_len (the names of PyTorch's CausalVariant)
ALIGNMENTS = ("lower_right", "upper_left")

#: the named forms of causal attention (Variant records of attention_weights,
#: scaled_dot_product_attention and causal_mask)
_CAUSAL_VARIANTS = (
    Variant("lower_right", {"causal_alignment": "lower_right"},
            "the spec; PyTorch's causal_lower_right bias (CausalVariant.LOWER_RIGHT); "
            "FlashAttention ≥ 2.1's causal=True; every KV-cache decoding step",
            "k_len > q_len with is_causal: query i sees keys j ≤ i + (k_len − q_len), so one "
            "decoding step (q_len = 1) sees the whole cache", default=True),
    Variant("upper_left", {"causal_alignment": "upper_left"},
            "PyTorch's is_causal=True and causal_upper_left bias (CausalVariant.UPPER_LEFT); "
            "FlashAttention < 2.1",
            "k_len > q_len with is_causal: query i sees keys j ≤ i, so one decoding step "
            "(q_len = 1) sees only the first key; the forms agree when q_len = k_len"),
)


def _alignment(value) -> str:
    check.choice(value, ALIGNMENTS, "causal_alignment")
    return value


def _check_qk(q, k, mask, others=None):
    """Namespace, dtypes and shapes of q, k (and mask); returns xp and the scores' shape.

    `others` (name → array) join the namespace check, so that arrays from two libraries are
    refused before anything else is looked at.
    """
    arrays = {"q": q, "k": k, **(others or {})}
    if mask is not None:
        arrays["mask"] = mask
    xp = check.namespace(**arrays)
    check.floating(xp, q, "q")
    check.floating(xp, k, "k")
    check.same_dtype(q, k, "q and k")
    check.min_ndim(q, 2, "q")
    check.min_ndim(k, 2, "k")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must have the same last dimension d_k, got q {tuple(q.shape)} "
                         f"and k {tuple(k.shape)}")
    batch = _broadcast_shapes(tuple(q.shape[:-2]), tuple(k.shape[:-2]), "q and k")
    scores_shape = (*batch, q.shape[-2], k.shape[-2])
    if mask is not None:
        if mask.dtype != xp.bool:
            if not xp.isdtype(mask.dtype, "real floating"):
                raise TypeError(f"mask must be boolean (True = may attend) or a real floating "
                                f"additive mask (0 or −∞), got dtype {mask.dtype}")
            if mask.dtype != q.dtype:
                raise TypeError(f"an additive float mask must have q's dtype {q.dtype}, "
                                f"got {mask.dtype}")
        shape = tuple(mask.shape)
        padded = (1,) * (len(scores_shape) - len(shape)) + shape
        if len(shape) > len(scores_shape) or any(
            m not in (1, s) for m, s in zip(padded, scores_shape)
        ):
            raise ValueError(f"mask must be broadcastable to the scores' shape (..., q_len, "
                             f"k_len) = {scores_shape}, got {shape}")
    return xp, scores_shape


def _causal_allowed(xp, q_len: int, k_len: int, device, alignment: str = "lower_right"):
    """Boolean (q_len, k_len): True where key j ≤ i + (k_len − q_len) (bottom-right aligned),
    or j ≤ i (top-left, alignment "upper_left")."""
    i = xp.arange(q_len, dtype=xp.int64, device=device)
    j = xp.arange(k_len, dtype=xp.int64, device=device)
    offset = k_len - q_len if alignment == "lower_right" else 0
    return j[None, :] <= i[:, None] + offset


def _masked_softmax(xp, s, allowed):
    """Softmax along the last axis with disallowed entries at exactly 0; a row with nothing
    allowed (every entry disallowed or −∞) gives 0 everywhere instead of 0/0 = NaN."""
    if allowed is not None:
        s = xp.where(allowed, s, xp.full_like(s, -math.inf))
    e = xp.exp(_shifted(xp, s, -1))  # the max of an all −∞ row is replaced by 0: e = 0
    total = xp.sum(e, axis=-1, keepdims=True)  # ≥ 1 unless the row is fully masked
    return e / xp.where(total == 0, xp.ones_like(total), total)


def _attend(xp, w, v):
    """w @ v, where a value a query does not attend (weight exactly 0) never reaches it.

    In IEEE arithmetic 0·∞ = NaN, so a plain product would let an ∞ (or NaN) in one value row
    turn into NaN every query that masks its key out: a fully masked row, the earlier rows of a
    causal attention. When v's values can be read, one reduction (is every value finite?)
    keeps the plain product for the usual case. Otherwise (a non-finite value; or values not
    known yet, in a trace or a lazy graph) the product is taken over the finite values, and
    the attended non-finite ones are put back by counting, per query and column, the attended
    values that are +∞ or NaN and those that are −∞ or NaN, in one more product of the
    weights' support: +∞ or −∞ where only one kind is attended, NaN where both are (∞ − ∞, or
    a NaN), as the sum Σ_j w_ij v_jc over the attended keys gives.
    """
    if check.values_known(v) and not bool(xp.any(~xp.isfinite(v))):
        return w @ v
    finite = xp.isfinite(v)
    out = w @ xp.where(finite, v, xp.zeros_like(v))
    seen = xp.astype(w > 0, w.dtype)
    nan = xp.isnan(v)
    up = xp.astype((v == math.inf) | nan, w.dtype)
    down = xp.astype((v == -math.inf) | nan, w.dtype)
    counts = seen @ xp.concat([up, down], axis=-1)
    d_v = v.shape[-1]
    hi, lo = counts[..., :d_v] > 0, counts[..., d_v:] > 0
    out = xp.where(hi, xp.full_like(out, math.inf), out)
    out = xp.where(lo, xp.full_like(out, -math.inf), out)
    return xp.where(hi & lo, xp.full_like(out, math.nan), out)


def _weights(q, k, mask, is_causal, scale, v=None, alignment="lower_right"):
    """(xp, weights, v, dtype): every check (v's too, when given) runs before any arithmetic;
    the weights (and v) come in the working precision (float32 for float16 and bfloat16), to be
    rounded once to `dtype` by the caller."""
    xp, scores_shape = _check_qk(q, k, mask, None if v is None else {"v": v})
    if v is not None:
        check.floating(xp, v, "v")
        check.same_dtype(q, v, "q and v")
        check.min_ndim(v, 2, "v")
        if v.shape[-2] != k.shape[-2]:
            raise ValueError(f"v must have one row per key (k_len = {k.shape[-2]}), got v "
                             f"{tuple(v.shape)} and k {tuple(k.shape)}")
        _broadcast_shapes(scores_shape[:-2], tuple(v.shape[:-2]), "the scores and v")
    is_causal = _flag(is_causal, "is_causal")
    alignment = _alignment(alignment)
    scale = _scale(scale, q.shape[-1])
    arrays = [q, k] + ([] if v is None else [v]) + ([] if mask is None else [mask])
    arrays, dtype = check.widen(xp, *arrays)
    q, k = arrays[0], arrays[1]
    if v is not None:
        v = arrays[2]
    if mask is not None:
        mask = arrays[-1]
    if scores_shape[-1] == 0:  # no keys at all: every row is fully masked
        return xp, xp.zeros(scores_shape, dtype=q.dtype, device=check.device(q)), v, dtype
    s = (q @ xp.matrix_transpose(k)) * scale
    allowed = None
    if mask is not None and mask.dtype == xp.bool:
        allowed = mask
    elif mask is not None:
        s = s + mask
    if is_causal:
        causal = _causal_allowed(xp, q.shape[-2], k.shape[-2], check.device(q), alignment)
        allowed = causal if allowed is None else (allowed & causal)
    return xp, _masked_softmax(xp, s, allowed), v, dtype


# --------------------------------------------------------------------------------------------
@equation(
    chapter="attention",
    seeds=("000", "002 §7.1", "002 §7.3", "003", "004"),
    oracle="mpmath",
    identities=(
        Identity("textbook", "A_ij = exp(s_ij)/Σ_j exp(s_ij) with s = q·k/√d_k (max freed)", "S"),
        Identity("rows_sum_to_one", "every row sums to 1 (0 for a fully masked row)", "SP"),
        Identity("causal_lower_triangular",
                 "causal weights are 0 exactly where j > i + (k_len − q_len) (bottom-right)",
                 "SP"),
        Identity("fully_masked_row_zero", "a row with every key masked is all 0, never NaN",
                 "SPR"),
        Identity("bool_equals_additive", "a boolean mask and its 0/−∞ additive twin agree", "P"),
        Identity("many_keys", "rows of more than 65,504 keys in float16 and bfloat16 (the "
                 "softmax's sum in float32): 70,000 equal scores get 1/70,000 each", "P"),
        Identity("causal_variants", "causal_alignment='upper_left' is PyTorch's top-left "
                 "is_causal=True; it differs from the default exactly when k_len > q_len", "P"),
        Identity("accuracy", "within its ulp budget of mpmath, normwise per row", "R"),
        Identity("gradient", "autograd equals the SymPy derivative and central differences", "D"),
    ),
    dtypes=ALL_FLOATS,
    variants=_CAUSAL_VARIANTS,
)
def attention_weights(q, k, /, *, mask=None, is_causal=False, scale=None,
                      causal_alignment="lower_right"):
    r"""Attention weights: the softmax over keys of the scaled query–key dot products.

    .. math:: A = \operatorname{softmax}\Bigl(\frac{Q K^\top}{\sqrt{d_k}} + M\Bigr),
              \qquad A_{ij} = \frac{e^{s_{ij}}}{\sum_{j'} e^{s_{ij'}}}

    Masked keys (boolean False, additive −∞, or j > i + (k_len − q_len) under ``is_causal``)
    get weight exactly 0; a query with every key masked gets a row of zeros, not NaN.
    Dividing by √d_k keeps the scores' variance independent of d_k, so softmax does not
    saturate (002 §7.1). ``causal_alignment="upper_left"`` puts the causal triangle top-left
    (j ≤ i), as PyTorch's ``is_causal=True`` does; the default is bottom-right.

    Shapes: q (..., q_len, d_k), k (..., k_len, d_k) → (..., q_len, k_len), the leading
    dimensions broadcast. Dtypes: float16 and bfloat16 computed in float32 (scores, the sum of
    exponentials) and rounded once. Source: 002 §7.1, §7.3; 000; 003; 004.
    """
    xp, w, _, dtype = _weights(q, k, mask, is_causal, scale, alignment=causal_alignment)
    return check.narrow(xp, w, dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="attention",
    seeds=("000", "002 §7.1", "002 §7.3", "003", "004"),
    oracle="mpmath",
    identities=(
        Identity("textbook", "o_i = Σ_j A_ij v_j with the textbook softmax weights", "S"),
        Identity("query_permutation_equivariant",
                 "permuting the queries permutes the output rows the same way", "SP"),
        Identity("key_value_permutation_invariant",
                 "a joint permutation of keys and values leaves the output unchanged", "SP"),
        Identity("convex_hull", "each output coordinate lies between the min and max of V's", "P"),
        Identity("causal_no_future",
                 "causal output at i does not depend on keys and values after i", "SP"),
        Identity("bool_equals_additive", "a boolean mask and its 0/−∞ additive twin agree", "P"),
        Identity("fully_masked_row_zero", "a fully masked query gets a zero output, not NaN",
                 "PR"),
        Identity("masked_values_unread", "a query never reads the values of keys it does not "
                 "attend: an ∞ or NaN in a masked-out value row leaves a fully masked row 0 and "
                 "the earlier rows of a causal attention finite", "PR"),
        Identity("many_keys", "rows of more than 65,504 keys in float16 and bfloat16 (the "
                 "softmax's sum in float32): 70,000 keys average their values", "P"),
        Identity("causal_variants", "causal_alignment='upper_left' equals torch's "
                 "is_causal=True (top-left); it differs from the default exactly when k_len > "
                 "q_len", "P"),
        Identity("matches_torch",
                 "equals torch's scaled_dot_product_attention (boolean and additive masks, "
                 "is_causal at q_len = k_len, causal_lower_right when k_len > q_len, a fully "
                 "masked row)", "P"),
        Identity("accuracy", "within its ulp budget of mpmath", "R"),
        Identity("gradient", "∂/∂q, ∂/∂k, ∂/∂v: SymPy, autograd and differences agree", "D"),
        Identity("grouped_query", "k and v with h/g heads equal each K/V head repeated g times; "
                 "equals torch's enable_gqa=True", "P"),
    ),
    dtypes=ALL_FLOATS,
    variants=_CAUSAL_VARIANTS,
)
def scaled_dot_product_attention(q, k, v, /, *, mask=None, is_causal=False, scale=None,
                                 causal_alignment="lower_right"):
    r"""Scaled dot-product attention: each query's softmax-weighted average of the values.

    .. math:: \operatorname{Attention}(Q, K, V) = \operatorname{softmax}
              \Bigl(\frac{Q K^\top}{\sqrt{d_k}} + M\Bigr) V,
              \qquad o_i = \sum_j A_{ij} v_j

    The weights are :func:`attention_weights` (same mask, causal, scale and alignment
    conventions); a fully masked query gets o_i = 0. The sum runs over the attended keys only:
    the value of a key a query does not attend never reaches it, so an ∞ or NaN in a masked-out
    value row cannot turn 0·∞ into NaN (one reduction over v finds whether it holds one).

    Grouped-query attention: with heads on axis −3, k and v may have h_kv heads where q has
    h = g·h_kv (multi-query attention: h_kv = 1); K/V head j then serves query heads
    j·g … (j+1)·g − 1, as if each were repeated g times (002 §7.4).

    Shapes: q (..., q_len, d_k), k (..., k_len, d_k), v (..., k_len, d_v) → (..., q_len, d_v);
    with heads, q (..., h, q_len, d_k), k (..., h_kv, k_len, d_k), v (..., h_kv, k_len, d_v).
    Dtypes: float16 and bfloat16 computed in float32 (scores, softmax, the weighted sum) and
    rounded once. Source: 002 §7.1, §7.3, §7.4; 000; 003; 004.
    """
    groups = _groups(q, k, v, heads_required=False)
    if groups > 1:  # grouped-query attention: K/V head j serves query heads j·g … (j+1)·g − 1
        xp = check.namespace(q=q, k=k, v=v)
        k, v = _repeat_kv(xp, k, groups), _repeat_kv(xp, v, groups)
    xp, w, v, dtype = _weights(q, k, mask, is_causal, scale, v, causal_alignment)
    return check.narrow(xp, _attend(xp, w, v), dtype)


# --------------------------------------------------------------------------------------------
def _length(value, name: str) -> int:
    value = check.integer_option(value, name)
    if value < 0:
        raise ValueError(f"{name} must be ≥ 0, got {value}")
    return value


@equation(
    chapter="attention",
    seeds=("002 §7.3", "002 §10.3"),
    tiers="SPXE",
    errata=(
        "002 §7.3 defines M_ij = 0 iff j ≤ i, which is the causal mask only when q_len = k_len; "
        "with a KV cache (k_len > q_len) the queries are the last q_len positions and the "
        "condition is j ≤ i + (k_len − q_len). PyTorch's is_causal=True keeps j ≤ i (top-left), "
        "which would let one decoding step see only the first key.",
    ),
    identities=(
        Identity("values", "0 exactly where j ≤ i + (k_len − q_len), −∞ elsewhere; the boolean "
                 "dtype gives True at the zeros", "SP"),
        Identity("decoding_step", "q_len = 1 gives a row of zeros: one step sees the whole cache",
                 "SP"),
        Identity("equals_is_causal", "attention with this mask equals is_causal=True", "P"),
        Identity("causal_variants", "causal_alignment='upper_left' is torch's top-left "
                 "causal_upper_left mask (0 iff j ≤ i)", "P"),
        Identity("low_precision", "float16 and bfloat16 masks hold exactly 0 and −∞", "P"),
    ),
    variants=_CAUSAL_VARIANTS,
)
def causal_mask(q_len, k_len, /, *, dtype=None, xp=None, device=None,
                causal_alignment="lower_right"):
    r"""The additive causal mask, aligned to the end: query i sees keys up to i + (k_len − q_len).

    .. math:: M_{ij} = \begin{cases} 0 & j \le i + (k_\text{len} - q_\text{len}) \\
              -\infty & \text{otherwise} \end{cases}

    With q_len = k_len this is 002 §7.3's lower-triangular mask (M_ij = 0 iff j ≤ i). With
    k_len > q_len the queries are the *last* q_len positions (new tokens after a KV cache of
    k_len − q_len), so a single decoding step (q_len = 1) sees every key. With q_len > k_len
    the first q_len − k_len rows are fully masked.

    ``causal_alignment="upper_left"`` gives PyTorch's top-left mask instead (0 iff j ≤ i).

    The mask takes no array to learn the namespace from: ``xp=`` names the array namespace to
    build it with, NumPy (through array-api-compat) when not given, as SciPy's array-API
    functions default; ``device`` defaults to its default device and ``dtype`` to its
    default floating dtype. A real floating dtype gives the additive 0/−∞ mask; the
    namespace's ``bool`` gives the boolean mask (True = may attend).
    Shapes: → (q_len, k_len). Dtypes: any real floating dtype of the namespace, float16 and
    bfloat16 included (0 and −∞ are exact in each); nothing is computed in it.
    Source: 002 §7.3 (causal mask), 002 §10.3 (decoding).
    """
    q_len = _length(q_len, "q_len")
    k_len = _length(k_len, "k_len")
    alignment = _alignment(causal_alignment)
    xp = check.namespace_or_numpy(xp)
    if dtype is None:
        info = getattr(xp, "__array_namespace_info__", None)
        dtype = xp.float64 if info is None else info().default_dtypes(device=device)[
            "real floating"]
    try:
        is_bool = dtype == xp.bool
        floating = not is_bool and xp.isdtype(dtype, "real floating")
    except (TypeError, ValueError, AttributeError):
        is_bool = floating = False
    if not (is_bool or floating):
        raise TypeError(f"causal_mask's dtype must be a real floating dtype (additive mask) or "
                        f"the namespace's bool, got {dtype!r}")
    allowed = _causal_allowed(xp, q_len, k_len, device, alignment)
    if is_bool:
        return allowed
    zeros = xp.zeros((q_len, k_len), dtype=dtype, device=device)
    return xp.where(allowed, zeros, xp.full_like(zeros, -math.inf))


# --------------------------------------------------------------------------------------------
def _count(value, name: str) -> int:
    """A positive integer option (a head count)."""
    value = check.integer_option(value, name, what="a positive integer")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return value


def _split_heads(xp, x, heads: int):
    """(..., len, heads·d) → (..., heads, len, d)."""
    x = xp.reshape(x, (*x.shape[:-1], heads, x.shape[-1] // heads))
    return xp.moveaxis(x, -2, -3)


def _merge_heads(xp, x):
    """(..., heads, len, d) → (..., len, heads·d): Concat(head₁, …, head_h)."""
    x = xp.moveaxis(x, -3, -2)
    return xp.reshape(x, (*x.shape[:-2], x.shape[-2] * x.shape[-1]))


def _groups(q, k, v, names=("q", "k and v"), heads_required=True) -> int:
    """g, the query heads per K/V head (axis −3): 1 unless k has fewer heads than q, not 1.
    Where axis −3 need not be heads (`heads_required` False: SDPA, whose leading axes may be
    any batch), a count that does not divide q's is left to the broadcasting error."""
    if q.ndim < 3 or k.ndim < 3 or k.shape[-3] in (1, q.shape[-3]):
        return 1
    h, h_kv = q.shape[-3], k.shape[-3]
    if h % h_kv and not heads_required:
        return 1
    if h % h_kv:
        raise ValueError(f"{names[0]} has {h} heads, not a multiple of the {h_kv} K/V heads of "
                         f"{names[1]} (grouped-query attention; shapes {tuple(q.shape)} and "
                         f"{tuple(k.shape)})")
    if v.ndim < 3 or v.shape[-3] != h_kv:
        raise ValueError(f"v must have the {h_kv} K/V heads of k (axis −3), got shapes "
                         f"{tuple(k.shape)} and {tuple(v.shape)}")
    return h // h_kv


def _repeat_kv(xp, x, groups: int):
    """K/V heads (..., h_kv, len, d) → (..., h_kv·groups, len, d): head j serves query heads
    j·groups … (j+1)·groups − 1 (grouped-query attention)."""
    return x if groups == 1 else xp.repeat(x, groups, axis=-3)


def _check_mha(x_q, x_kv, w_q, w_k, w_v, w_o, num_heads, num_kv_heads):
    xp = check.namespace(x_q=x_q, x_kv=x_kv, w_q=w_q, w_k=w_k, w_v=w_v, w_o=w_o)
    for name, a in (("x_q", x_q), ("x_kv", x_kv), ("w_q", w_q), ("w_k", w_k), ("w_v", w_v),
                    ("w_o", w_o)):
        check.floating(xp, a, name)
        check.same_dtype(x_q, a, f"x_q and {name}")
    check.min_ndim(x_q, 2, "x_q")
    check.min_ndim(x_kv, 2, "x_kv")
    for name, w in (("w_q", w_q), ("w_k", w_k), ("w_v", w_v), ("w_o", w_o)):
        if w.ndim != 2:
            raise ValueError(f"{name} must be a matrix (out, in), got shape {tuple(w.shape)}")
    num_heads = _count(num_heads, "num_heads")
    num_kv_heads = num_heads if num_kv_heads is None else _count(num_kv_heads, "num_kv_heads")
    if num_heads % num_kv_heads:
        raise ValueError(f"num_heads = {num_heads} must be a multiple of num_kv_heads = "
                         f"{num_kv_heads} (each K/V head serves a whole group of query heads)")
    d_model = x_q.shape[-1]
    if x_kv.shape[-1] != d_model:
        raise ValueError(f"x_q and x_kv must have the same d_model, got {tuple(x_q.shape)} and "
                         f"{tuple(x_kv.shape)}")
    if w_q.shape[0] % num_heads:
        raise ValueError(f"w_q has {w_q.shape[0]} rows, not divisible by num_heads = "
                         f"{num_heads}: w_q must be (num_heads·d_head, d_model)")
    d_head = w_q.shape[0] // num_heads
    expected = {"w_q": (num_heads * d_head, d_model), "w_k": (num_kv_heads * d_head, d_model),
                "w_v": (num_kv_heads * d_head, d_model), "w_o": (d_model, num_heads * d_head)}
    for name, w in (("w_q", w_q), ("w_k", w_k), ("w_v", w_v), ("w_o", w_o)):
        if tuple(w.shape) != expected[name]:
            raise ValueError(f"{name} must have shape {expected[name]} for d_model = {d_model}, "
                             f"num_heads = {num_heads}, num_kv_heads = {num_kv_heads}, "
                             f"d_head = {d_head}; got {tuple(w.shape)}")
    return xp, num_heads, num_kv_heads


@equation(
    chapter="attention",
    seeds=("000", "002 §7.2", "002 §7.4", "003"),
    tiers="SPDXE",
    identities=(
        Identity("single_head_identity_is_sdpa",
                 "h = 1 with identity projections equals scaled_dot_product_attention", "SP"),
        Identity("gqa_equals_repeated_mha",
                 "GQA equals MHA with each K/V head's weights repeated over its group", "SP"),
        Identity("matches_torch",
                 "equals torch's multi_head_attention_forward with in_proj_weight = "
                 "concat(w_q, w_k, w_v), out_proj = w_o, no biases, its (L, N, E) layout and "
                 "its inverted boolean mask", "P"),
        Identity("causal_no_future", "with is_causal, output at i ignores x_kv after i", "P"),
        Identity("gradient", "∂/∂x_q, ∂/∂w_k: SymPy, autograd and differences agree", "D"),
    ),
    dtypes=ALL_FLOATS,
)
def multi_head_attention(x_q, x_kv, w_q, w_k, w_v, w_o, /, *, num_heads, num_kv_heads=None,
                         mask=None, is_causal=False):
    r"""Multi-head attention: h attentions in d_head-dimensional subspaces, concatenated, mixed.

    .. math:: \operatorname{MultiHead}(X_q, X_{kv}) = \operatorname{Concat}(\text{head}_1,
              \dots, \text{head}_h)\, W_O^\top, \qquad
              \text{head}_i = \operatorname{Attention}(X_q W_{Q,i}^\top,
              X_{kv} W_{K,g(i)}^\top, X_{kv} W_{V,g(i)}^\top)

    Weights follow the (out, in) convention: w_q (num_heads·d_head, d_model), w_k and w_v
    (num_kv_heads·d_head, d_model), w_o (d_model, num_heads·d_head); rows i·d_head …
    (i+1)·d_head − 1 belong to head i. With num_kv_heads < num_heads (grouped-query attention;
    1 is multi-query attention) query head i uses K/V head g(i) = ⌊i / (num_heads /
    num_kv_heads)⌋, which shrinks the KV cache by that factor (002 §7.4). ``mask`` and
    ``is_causal`` are as in :func:`scaled_dot_product_attention`; a mask may carry a heads axis
    (..., num_heads, q_len, k_len). No biases (add them to the projections if wanted).

    Shapes: x_q (..., q_len, d_model), x_kv (..., k_len, d_model) → (..., q_len, d_model).
    Self-attention is x_q = x_kv. Dtypes: float16 and bfloat16 computed in float32 (the four
    projections and the attention) and rounded once.
    Source: 002 §7.2, 000, 003 (multi-head attention).
    """
    xp, num_heads, num_kv_heads = _check_mha(x_q, x_kv, w_q, w_k, w_v, w_o, num_heads,
                                             num_kv_heads)
    (x_q, x_kv, w_q, w_k, w_v, w_o), dtype = check.widen(xp, x_q, x_kv, w_q, w_k, w_v, w_o)
    if mask is not None and getattr(mask, "dtype", None) == dtype and x_q.dtype != dtype:
        mask = xp.astype(mask, x_q.dtype)  # an additive mask in the caller's low precision
    q = _split_heads(xp, x_q @ xp.matrix_transpose(w_q), num_heads)
    k = _split_heads(xp, x_kv @ xp.matrix_transpose(w_k), num_kv_heads)
    v = _split_heads(xp, x_kv @ xp.matrix_transpose(w_v), num_kv_heads)
    groups = num_heads // num_kv_heads
    heads = scaled_dot_product_attention(q, _repeat_kv(xp, k, groups), _repeat_kv(xp, v, groups),
                                         mask=mask, is_causal=is_causal)
    return check.narrow(xp, _merge_heads(xp, heads) @ xp.matrix_transpose(w_o), dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="attention",
    seeds=("002 §10.3", "002 §7.4"),
    tiers="SPXE",
    identities=(
        Identity("kv_cache_identity",
                 "decoding token by token through the cache equals causal attention over the "
                 "whole sequence", "SP"),
        Identity("cache_appends", "the new caches are the old ones with k_t, v_t appended", "P"),
        Identity("empty_cache_is_causal_sdpa",
                 "with empty caches it is causal SDPA over the chunk", "P"),
        Identity("grouped_query", "q_t with g× the cache's heads equals repeating the K/V heads",
                 "P"),
    ),
    dtypes=ALL_FLOATS,
)
def kv_cache_attention(q_t, k_t, v_t, cache_k, cache_v, /):
    r"""One decoding step with a KV cache: append the new keys and values, then attend causally.

    .. math:: K = [K_\text{cache}; k_t], \quad V = [V_\text{cache}; v_t], \quad
              o_t = \operatorname{softmax}\Bigl(\frac{q_t K^\top}{\sqrt{d_k}} + M\Bigr) V

    M is the end-aligned causal mask: new query i (absolute position t_past + i) sees the
    whole cache and the new tokens up to itself, so one token per call (t_new = 1) and a whole
    prompt at once (prefill, empty cache) give the same result as causal attention over the
    full sequence. An empty cache is an array with a zero-length time axis, e.g.
    (..., heads, 0, d_k). Grouped-query attention: q_t may have g times the cache's heads
    (axis −3); K/V head j then serves query heads j·g … (j+1)·g − 1, and the cache keeps only
    the K/V heads.

    Shapes: q_t (..., h, t_new, d_k), k_t (..., h_kv, t_new, d_k), v_t (..., h_kv, t_new, d_v),
    cache_k (..., h_kv, t_past, d_k), cache_v (..., h_kv, t_past, d_v) → (output
    (..., h, t_new, d_v), new_cache_k (..., h_kv, t_past + t_new, d_k), new_cache_v
    (..., h_kv, t_past + t_new, d_v)). Dtypes: float16 and bfloat16 attend in float32 (as
    :func:`scaled_dot_product_attention`), the output rounded once; the caches stay in the
    inputs' dtype, exactly. Source: 002 §10.3 (generate_step), 002 §7.4 (MQA).
    """
    xp = check.namespace(q_t=q_t, k_t=k_t, v_t=v_t, cache_k=cache_k, cache_v=cache_v)
    for name, a in (("q_t", q_t), ("k_t", k_t), ("v_t", v_t), ("cache_k", cache_k),
                    ("cache_v", cache_v)):
        check.floating(xp, a, name)
        check.same_dtype(q_t, a, f"q_t and {name}")
        check.min_ndim(a, 2, name)
    if q_t.shape[-2] != k_t.shape[-2] or v_t.shape[-2] != k_t.shape[-2]:
        raise ValueError(f"q_t, k_t and v_t must hold the same number of new tokens (axis −2), "
                         f"got {tuple(q_t.shape)}, {tuple(k_t.shape)} and {tuple(v_t.shape)}")
    for new, cache, name in ((k_t, cache_k, "cache_k"), (v_t, cache_v, "cache_v")):
        if (cache.ndim != new.ndim or tuple(cache.shape[:-2]) != tuple(new.shape[:-2])
                or cache.shape[-1] != new.shape[-1]):
            raise ValueError(f"{name} must be (..., heads, t_past, d) like the new entries "
                             f"{tuple(new.shape)} except along time, got {tuple(cache.shape)}")
    if cache_k.shape[-2] != cache_v.shape[-2]:
        raise ValueError(f"cache_k and cache_v must hold the same number of past tokens, got "
                         f"{tuple(cache_k.shape)} and {tuple(cache_v.shape)}")
    if q_t.shape[-1] != k_t.shape[-1]:
        raise ValueError(f"q_t and k_t must have the same last dimension d_k, got "
                         f"{tuple(q_t.shape)} and {tuple(k_t.shape)}")
    groups = _groups(q_t, k_t, v_t, names=("q_t", "k_t and the cache"))
    new_k = xp.concat([cache_k, k_t], axis=-2)
    new_v = xp.concat([cache_v, v_t], axis=-2)
    out = scaled_dot_product_attention(q_t, _repeat_kv(xp, new_k, groups),
                                       _repeat_kv(xp, new_v, groups), is_causal=True)
    return out, new_k, new_v


# --------------------------------------------------------------------------------------------
@equation(
    chapter="attention",
    seeds=("002 §7.4",),
    tiers="PE",
    identities=(
        Identity("counts", "4s²d = 2·(2 s·s·d) multiply-adds of QKᵀ and AV; h·s² scores", "P"),
        Identity("quadratic", "doubling s quadruples both; FLOPs linear in d", "P"),
    ),
)
def attention_cost(seq_len, dim, /, *, num_heads=1):
    r"""The cost of the attention core: FLOPs of QKᵀ and AV, and the number of scores held.

    .. math:: \text{FLOPs} = 2 \cdot s \cdot s \cdot d + 2 \cdot s \cdot s \cdot d = 4 s^2 d,
              \qquad \text{memory} = h \, s^2

    Counted: the two matrix products of self-attention over s tokens, QKᵀ (s×d by d×s) and
    AV (s×s by s×d), summed over the h heads (d = h·d_head, so the total does not depend on
    h), one multiply-add = 2 FLOPs. Not counted: the Q, K, V, O projections (8sd²), the
    scaling, the mask and the softmax (O(h s²) elementwise work). memory is the number of
    attention-score *elements* materialised at once (one s×s matrix per head), not bytes.
    Pure Python integers (any integer type, NumPy's too; bools refused): seq_len ≥ 0, dim ≥ 1,
    num_heads ≥ 1 dividing dim. Dtypes: none (no arrays; exact integer arithmetic).
    Returns ``{"flops": 4·s²·d, "memory": h·s²}``. Source: 002 §7.4 (O(s²d) time, O(s²) memory).
    """
    s = _length(seq_len, "seq_len")
    d = _count(dim, "dim")
    h = _count(num_heads, "num_heads")
    if d % h:
        raise ValueError(f"dim = {d} must be divisible by num_heads = {h} (heads split d)")
    return {"flops": 4 * s * s * d, "memory": h * s * s}


