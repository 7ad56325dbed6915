r"""The transformer: pre-LN blocks, a decoder-only language model, generation with a KV cache.

Parameters are plain mappings of arrays (no classes), documented once here:

**Block parameters** (``transformer_block``; one mapping per layer), for width d, num_heads
query heads of d_head = d/num_heads, num_kv_heads K/V heads and hidden width d_ff:

================  ==========================================  ===============================
key               shape                                       role
================  ==========================================  ===============================
``ln1_gamma``     (d,)                                        norm before attention
``ln1_beta``      (d,); optional (LayerNorm only)              its shift (absent: none)
``w_q``           (num_heads·d_head, d)                       query projection (out, in)
``w_k``, ``w_v``  (num_kv_heads·d_head, d)                    key and value projections
``w_o``           (d, num_heads·d_head)                       output projection
``b_q``           (num_heads·d_head,); optional               query bias (GPT-2)
``b_k``, ``b_v``  (num_kv_heads·d_head,); optional            key and value biases
``b_o``           (d,); optional                              output-projection bias
``ln2_gamma``     (d,)                                        norm before the MLP
``ln2_beta``      (d,); optional (LayerNorm only)
``w1``            (d_ff, d); (2·d_ff, d) for SwiGLU            first MLP layer
``b1``            (d_ff,); (2·d_ff,) for SwiGLU; None/absent
``w2``            (d, d_ff)                                   second MLP layer
``b2``            (d,); None or absent
================  ==========================================  ===============================

An optional key may be absent or None (no such term). With ``norm="rms_norm"`` the norms are
RMSNorm (LLaMA) and the β keys must be absent or None.

**Decoder parameters** (``decoder_forward``, ``generate``): ``embedding`` (V, d), the token
table, also the output layer (weight tying) unless ``unembedding`` (V, d) is given (an untied
output layer, as LLaMA's ``lm_head``); ``blocks``, a list or tuple of block mappings;
``ln_f_gamma`` and, for LayerNorm, optionally ``ln_f_beta`` (d,), the final norm;
``position_embedding`` (P, d), a learned position table (GPT-2's ``wpe``), required with
``positional="learned"`` and refused otherwise. Positions (``positional``): "sinusoidal" (the
default; fixed, no parameters, d even), "learned" (row p of the table added at position p < P),
"rope" (no additive positions; queries and keys rotated inside every attention by
:func:`~spec.rope` at their absolute positions, base ``rope_base``, layout ``rope_layout``:
"half" is Hugging Face's ``rotate_half``, "interleaved" RoFormer's pairs; ``rope_scaling``:
Hugging Face's "linear" or Llama 3's "llama3" mapping), or "none".

**Batches of unequal lengths**: ``attention_mask`` (bool (..., T), True = a real token) masks
each row's padding keys in every attention, and positions count each row's real tokens, so a
padded row computes what it computes alone; ``positions`` (integer (..., T)) sets them per row
explicitly.

Sources: 002 §8.1 (the block), §8.2 (parameter count), §8.3 (the residual stream), §10.3 (the
KV cache), §6 (embeddings, weight tying); 003 (the architecture); 004 (next-token prediction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from . import _validate as check
from ._registry import Identity, equation
from .activations import gelu, relu, silu
from .attention import (
    _check_mha,
    _flag,
    _merge_heads,
    _split_heads,
    kv_cache_attention,
    multi_head_attention,
    scaled_dot_product_attention,
)
from .embeddings import (
    _rope_scaling,
    _sinusoidal_at,
    embedding,
    rope,
    sinusoidal_positions,
    tied_logits,
)
from .normalization import layer_norm, rms_norm

__all__ = [
    "decoder_forward",
    "feed_forward",
    "generate",
    "transformer_block",
    "transformer_parameter_count",
]

_ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "silu", "swiglu")
_NORMS = ("layer_norm", "rms_norm")
_POSITIONALS = ("sinusoidal", "learned", "rope", "none")
_BLOCK_POSITIONALS = ("none", "rope")
_ROPE_LAYOUTS = ("half", "interleaved")
_BLOCK_KEYS = ("ln1_gamma", "w_q", "w_k", "w_v", "w_o", "ln2_gamma", "w1", "w2")
_BIASES = ("b_q", "b_k", "b_v", "b_o")
_BLOCK_OPTIONAL = ("ln1_beta", "ln2_beta", *_BIASES, "b1", "b2")
_DECODER_KEYS = ("embedding", "blocks", "ln_f_gamma")
_DECODER_OPTIONAL = ("ln_f_beta", "position_embedding", "unembedding")


def _keys(params, expected: tuple, name: str, optional: tuple = ()) -> dict:
    """The mapping with every optional key present (None where absent); errors name the keys."""
    if not isinstance(params, Mapping):
        raise TypeError(f"{name} must be a mapping (dict) of arrays with keys "
                        f"{', '.join(expected)}; got {type(params).__name__}")
    missing = [k for k in expected if k not in params]
    unknown = sorted(str(k) for k in params if k not in expected and k not in optional)
    if missing or unknown:
        also = f" (optional: {', '.join(optional)})" if optional else ""
        raise ValueError(f"{name} must have exactly the keys {', '.join(expected)}{also}; "
                         f"missing {missing or 'none'}, unknown {unknown or 'none'}")
    return {**{k: None for k in optional}, **params}


def _options(norm, positional, rope_base, rope_layout, rope_scaling=None,
             allowed=_POSITIONALS):
    """The norm and position options, checked; RoPE as (base, layout, scaling) or None."""
    check.choice(norm, _NORMS, "norm")
    check.choice(positional, allowed, "positional")
    check.choice(rope_layout, _ROPE_LAYOUTS, "rope_layout")
    base = check.positive_number(rope_base, "rope_base")
    _rope_scaling(rope_scaling, base, "rope_scaling", "rope_base")
    if rope_scaling is not None and positional != "rope":
        raise ValueError(f"rope_scaling is used only with positional='rope' (got "
                         f"positional={positional!r})")
    return (base, rope_layout, rope_scaling) if positional == "rope" else None


def _padding(xp, attention_mask, batch: tuple, length: int):
    """The padding mask checked: bool (..., T), leading axes broadcasting to `batch`."""
    if attention_mask is None:
        return None
    check.namespace(attention_mask=attention_mask)
    if attention_mask.dtype != xp.bool:
        raise TypeError(f"attention_mask must be a boolean array (True = a real token, "
                        f"False = padding), got dtype {attention_mask.dtype}")
    _row_shape(attention_mask, batch, length, "attention_mask")
    return attention_mask


def _row_shape(a, batch: tuple, length: int, name: str) -> None:
    """`a` is (..., length) with leading axes that broadcast to `batch` without enlarging it."""
    if not check.rows_fit(tuple(a.shape), batch, length):
        raise ValueError(f"{name} must have shape (..., {length}), one row per sequence with "
                         f"leading axes that broadcast to {batch}; got {tuple(a.shape)}")


def _positions(xp, positions, attention_mask, batch: tuple, length: int, positional: str,
               table_rows=None):
    """The positions of the tokens, int64 (..., T), or None for 0 … T − 1 (the default
    without a padding mask). With a padding mask and no positions, each row counts its real
    tokens: p = (number of real tokens up to and including t) − 1, clipped at 0 (Hugging
    Face's position_ids in generate), so a left-padded row is positioned as if unpadded."""
    if positions is None:
        if attention_mask is None:
            return None
        count = xp.cumulative_sum(xp.astype(attention_mask, xp.int64), axis=-1)
        return xp.clip(count - 1, min=0)
    if positional == "none":
        raise ValueError("positions are used only with positional='rope', 'learned' or "
                         "'sinusoidal' (got positional='none')")
    check.namespace(positions=positions)
    check.integer(xp, positions, "positions")
    _row_shape(positions, batch, length, "positions")
    unsigned = xp.isdtype(positions.dtype, "unsigned integer")
    positions = check.indices(xp, positions, "positions", what="positions")
    check.check_values(xp, positions, lambda p: p < 0,
                       "positions must be ≥ 0" + (" and below 2**63" if unsigned else ""))
    if table_rows is not None:
        check.check_values(xp, positions, lambda p: p >= table_rows,
                           f"positions must be below the {table_rows} rows of "
                           f"params['position_embedding']")
    return positions


def _norm_params(xp, params, gamma: str, beta: str, d: int, norm: str, name: str) -> None:
    check.floating(xp, params[gamma], f"{name}[{gamma!r}]")
    _shape(params[gamma], (d,), f"{name}[{gamma!r}]")
    if params[beta] is None:
        return
    if norm == "rms_norm":
        raise ValueError(f"{name}[{beta!r}] must be absent or None with norm='rms_norm' "
                         f"(RMSNorm has no shift β)")
    check.floating(xp, params[beta], f"{name}[{beta!r}]")
    _shape(params[beta], (d,), f"{name}[{beta!r}]")


def _normalise(xp, x, gamma, beta, norm: str, eps):
    """LayerNorm (β absent: a zero shift, exact) or RMSNorm, ε inside the root."""
    if norm == "rms_norm":
        return rms_norm(x, gamma, eps=eps)
    if beta is None:
        beta = xp.zeros_like(gamma)
    return layer_norm(x, gamma, beta, eps=eps)


def _shape(a, expected: tuple, name: str) -> None:
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {tuple(a.shape)}")


def _int_option(value, name: str, minimum: int) -> int:
    value = check.integer_option(value, name)
    if value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value}")
    return value


# --------------------------------------------------------------------------------------------
def _check_ffn(x, w1, b1, w2, b2, activation):
    check.choice(activation, _ACTIVATIONS, "activation")
    arrays = {"x": x, "w1": w1, "w2": w2}
    arrays.update({n: b for n, b in (("b1", b1), ("b2", b2)) if b is not None})
    xp = check.namespace(**arrays)
    for name, a in arrays.items():
        check.floating(xp, a, name)
        check.same_dtype(x, a, f"x and {name}")
    check.min_ndim(x, 1, "x")
    for name, w in (("w1", w1), ("w2", w2)):
        if w.ndim != 2:
            raise ValueError(f"{name} must be a matrix (out, in), got shape {tuple(w.shape)}")
    if w1.shape[1] != x.shape[-1]:
        raise ValueError(f"w1 must have d_model = {x.shape[-1]} columns (x's last axis), got "
                         f"shape {tuple(w1.shape)}")
    hidden = w1.shape[0]
    if activation == "swiglu":
        if hidden % 2:
            raise ValueError(f"for swiglu, w1 stacks the gate and up projections (2·d_ff, d): "
                             f"its {hidden} rows are odd")
        hidden //= 2
    if b1 is not None:
        _shape(b1, (w1.shape[0],), "b1")
    if w2.shape[1] != hidden:
        raise ValueError(f"w2 must have d_ff = {hidden} columns, got shape {tuple(w2.shape)}")
    if b2 is not None:
        _shape(b2, (w2.shape[0],), "b2")
    return xp


@equation(
    chapter="transformer",
    seeds=("002 §8.1", "002 §8.2", "003"),
    oracle="mpmath",
    identities=(
        Identity("textbook", "equals W₂φ(W₁x + b₁) + b₂ with φ = GELU = x(1 + erf(x/√2))/2, "
                 "and the SwiGLU form", "S"),
        Identity("shapes_4d", "d → 4d → d: output shape = input shape; 8d² + 5d parameters",
                 "P"),
        Identity("swiglu_variant", "activation='swiglu' equals activations.swiglu on the two "
                 "halves of w1, then W₂", "P"),
        Identity("matches_torch", "equals torch linear → gelu/relu/silu → linear", "P"),
        Identity("accuracy", "within its ulp budget of mpmath at the rounding-analysis floor "
                 "(large pre-activations in both GELU tails included)", "R"),
        Identity("gradient", "∂/∂x and ∂/∂w1: SymPy, autograd and differences agree", "D"),
    ),
)
def feed_forward(x, w1, b1, w2, b2, /, *, activation="gelu"):
    r"""The position-wise MLP of a transformer block: widen, apply φ, project back.

    .. math:: \operatorname{MLP}(x) = W_2\,\varphi(W_1 x + b_1) + b_2
              = \varphi(x W_1^\top + b_1)\, W_2^\top + b_2

    In row convention (inputs are rows, weights (out, in)). ``activation``: "gelu" (exact,
    erf form; 002 §8.1), "gelu_tanh" (GPT-2's tanh approximation), "relu", "silu", or
    "swiglu": then ``w1`` stacks the gate and up projections, rows 0…d_ff−1 = W_g and
    d_ff…2d_ff−1 = W_u (and ``b1`` their biases), and the hidden layer is
    SiLU(xW_gᵀ + b_g) ⊙ (xW_uᵀ + b_u) (LLaMA, PaLM; 002 §8.2's 12d² MLP for d_ff = 4d).
    ``b1`` and ``b2`` may be None (no bias).

    Shapes: x (..., d), w1 (d_ff, d) [(2·d_ff, d) for swiglu], b1 (d_ff,) [(2·d_ff,)],
    w2 (d_out, d_ff), b2 (d_out,) → (..., d_out); a transformer uses d_ff = 4d, d_out = d.
    Source: 002 §8.1 (MLP(x) = W₂·GELU(W₁x + b₁) + b₂), 002 §8.2 (SwiGLU), 003.
    """
    xp = _check_ffn(x, w1, b1, w2, b2, activation)
    z = x @ xp.matrix_transpose(w1)
    if b1 is not None:
        z = z + b1
    if activation == "swiglu":
        d_ff = w1.shape[0] // 2
        hidden = silu(z[..., :d_ff]) * z[..., d_ff:]
    elif activation == "gelu":
        hidden = gelu(z)
    elif activation == "gelu_tanh":
        hidden = gelu(z, approximate="tanh")
    elif activation == "relu":
        hidden = relu(z)
    else:
        hidden = silu(z)
    out = hidden @ xp.matrix_transpose(w2)
    return out if b2 is None else out + b2


# --------------------------------------------------------------------------------------------
def _check_block(x, params, num_heads, num_kv_heads, activation, norm="layer_norm",
                 rope_=None, name="params"):
    """All checks of one block (keys, namespace, dtypes, shapes) before any arithmetic: the
    namespace and the mapping with its absent optional keys as None."""
    params = _keys(params, _BLOCK_KEYS, name, _BLOCK_OPTIONAL)
    check.min_ndim(x, 2, "x")
    arrays = {k: a for k, a in params.items() if a is not None}
    xp = check.namespace(x=x, **arrays)
    d = x.shape[-1]
    for key in ("ln1", "ln2"):
        _norm_params(xp, params, f"{key}_gamma", f"{key}_beta", d, norm, name)
    _, num_heads, num_kv_heads = _check_mha(x, x, params["w_q"], params["w_k"], params["w_v"],
                                            params["w_o"], num_heads, num_kv_heads)
    rows = {"b_q": params["w_q"].shape[0], "b_k": params["w_k"].shape[0],
            "b_v": params["w_v"].shape[0], "b_o": d}
    for key, n in rows.items():
        if params[key] is not None:
            check.floating(xp, params[key], f"{name}[{key!r}]")
            check.same_dtype(x, params[key], f"x and {name}[{key!r}]")
            _shape(params[key], (n,), f"{name}[{key!r}]")
    d_head = params["w_q"].shape[0] // num_heads
    if rope_ is not None and d_head % 2:
        raise ValueError(f"positional='rope' rotates feature pairs: d_head = {d_head} must be "
                         f"even")
    _check_ffn(x, params["w1"], params["b1"], params["w2"], params["b2"], activation)
    if params["w2"].shape[0] != d:
        raise ValueError(f"{name}['w2'] must map back to d_model = {d}: got shape "
                         f"{tuple(params['w2'].shape)}")
    return xp, params


def _project(xp, h, p, num_heads, num_kv_heads, rope_, start: int, positions=None):
    """Queries, keys and values (..., heads, T, d_head): h Wᵀ + b split into heads, then, with
    RoPE, q and k rotated at their absolute positions: `positions` (..., T) when given, else
    start … start + T − 1."""
    qkv = []
    for w, b, heads in (("w_q", "b_q", num_heads), ("w_k", "b_k", num_kv_heads),
                        ("w_v", "b_v", num_kv_heads)):
        z = h @ xp.matrix_transpose(p[w])
        qkv.append(_split_heads(xp, z if p[b] is None else z + p[b], heads))
    q, k, v = qkv
    if rope_ is not None:
        base, layout, scaling = rope_
        if positions is None:
            positions = xp.arange(start, start + h.shape[-2], dtype=xp.int64,
                                  device=check.device(h))
        else:  # (..., T) → (..., 1, T): the same positions for every head
            positions = positions[..., None, :]
        q = rope(q, positions, base=base, layout=layout, scaling=scaling)
        k = rope(k, positions, base=base, layout=layout, scaling=scaling)
    return q, k, v


def _output(xp, heads, p):
    """Concat(head₁, …, head_h) W_Oᵀ + b_O."""
    out = _merge_heads(xp, heads) @ xp.matrix_transpose(p["w_o"])
    return out if p["b_o"] is None else out + p["b_o"]


def _key_mask(attention_mask):
    """A padding mask (..., T_k) as an attention mask over (..., heads, T_q, T_k)."""
    return None if attention_mask is None else attention_mask[..., None, None, :]


def _attention(xp, h, p, *, num_heads, num_kv_heads, is_causal, rope_, positions=None,
               attention_mask=None):
    """Self-attention of the block: multi_head_attention itself when there are no biases, no
    RoPE and no padding; else the same steps with the biases added, q and k rotated and the
    padded keys masked, float16 and bfloat16 computed in float32 and rounded once (as
    multi_head_attention does)."""
    if rope_ is None and attention_mask is None and all(p[b] is None for b in _BIASES):
        return multi_head_attention(h, h, p["w_q"], p["w_k"], p["w_v"], p["w_o"],
                                    num_heads=num_heads, num_kv_heads=num_kv_heads,
                                    is_causal=is_causal)
    kv_heads = num_heads if num_kv_heads is None else num_kv_heads
    names = [k for k in ("w_q", "w_k", "w_v", "w_o", *_BIASES) if p[k] is not None]
    (h, *wide), dtype = check.widen(xp, h, *(p[k] for k in names))
    p = {**p, **dict(zip(names, wide))}
    q, k, v = _project(xp, h, p, int(num_heads), int(kv_heads), rope_, 0, positions)
    # grouped-query attention: K/V head j serves query heads j·g … (j+1)·g − 1
    heads = scaled_dot_product_attention(q, k, v, mask=_key_mask(attention_mask),
                                         is_causal=is_causal)
    return check.narrow(xp, _output(xp, heads, p), dtype)


def _block(xp, x, p, *, num_heads, num_kv_heads, is_causal, activation, eps, norm="layer_norm",
           rope_=None, positions=None, attention_mask=None):
    h = _normalise(xp, x, p["ln1_gamma"], p["ln1_beta"], norm, eps)
    x = x + _attention(xp, h, p, num_heads=num_heads, num_kv_heads=num_kv_heads,
                       is_causal=is_causal, rope_=rope_, positions=positions,
                       attention_mask=attention_mask)
    h = _normalise(xp, x, p["ln2_gamma"], p["ln2_beta"], norm, eps)
    return x + feed_forward(h, p["w1"], p["b1"], p["w2"], p["b2"], activation=activation)


@equation(
    chapter="transformer",
    seeds=("002 §8.1", "002 §8.3", "003"),
    tiers="SPDXE",
    identities=(
        Identity("residual_identity", "with w_o = 0 and w2 = 0, b2 = 0 the block is the "
                 "identity (both sublayers only add to the residual stream)", "SP"),
        Identity("one_sublayer_off", "w_o = 0 leaves x + MLP(LN(x)); w2 = b2 = 0 leaves "
                 "x + MHA(LN(x))", "P"),
        Identity("causal", "is_causal: output at t unchanged when x after t changes", "P"),
        Identity("padding", "a left-padded, masked row's outputs at its real tokens equal the "
                 "row's alone (with RoPE at positions given per row)", "P"),
        Identity("matches_torch", "equals the block built from torch's layer_norm, "
                 "multi_head_attention_forward, linear and gelu", "P"),
        Identity("gradient", "∂/∂x: SymPy, autograd and differences agree", "D"),
    ),
)
def transformer_block(x, params, /, *, num_heads, is_causal=True, num_kv_heads=None,
                      activation="gelu", eps=1e-5, norm="layer_norm", positional="none",
                      rope_base=10000.0, rope_layout="half", rope_scaling=None,
                      attention_mask=None, positions=None):
    r"""One pre-LN transformer block: attention then MLP, each added to the residual stream.

    .. math:: x' = x + \operatorname{MultiHead}\bigl(\operatorname{LN}_1(x)\bigr), \qquad
              x'' = x' + \operatorname{MLP}\bigl(\operatorname{LN}_2(x')\bigr)

    Self-attention (queries, keys and values all from LN₁(x)) by
    :func:`~spec.multi_head_attention` (causal by default, as in a decoder; ``num_kv_heads``
    for grouped-query attention, each K/V head repeated for its group of query heads), the MLP
    by :func:`feed_forward` (``activation``). ``norm``: "layer_norm" (the default; β optional)
    or "rms_norm" (LLaMA), with ``eps`` inside the root. ``positional="rope"`` rotates the
    queries and keys of every head at positions 0 … T − 1 (:func:`~spec.rope`, base
    ``rope_base``, layout ``rope_layout``: "half" = Hugging Face's ``rotate_half``,
    ``rope_scaling``: Hugging Face's linear or llama3 mapping), or at ``positions`` (..., T),
    one row per sequence; the default "none" adds no positions. ``attention_mask`` (bool
    (..., T), True = a real token) keeps every query from the padded keys of its row (left
    padding included); a padded query that sees no key at all gets a zero attention output.
    ``params`` is the block mapping documented in this module
    (optional attention biases b_q, b_k, b_v, b_o: qWᵀ + b, as GPT-2's ``c_attn``).
    Each sublayer writes an additive update into the residual stream (002 §8.3), so zeroing
    its output projection (and b_o) removes it exactly.

    Shapes: x (..., T, d); attention_mask and positions (..., T), leading axes broadcasting
    to x's → (..., T, d). Source: 002 §8.1 (the block), §8.3, 003.
    """
    rope_ = _options(norm, positional, rope_base, rope_layout, rope_scaling,
                     _BLOCK_POSITIONALS)
    xp, params = _check_block(x, params, num_heads, num_kv_heads, activation, norm, rope_)
    _flag(is_causal, "is_causal")
    batch, length = tuple(x.shape[:-2]), x.shape[-2]
    attention_mask = _padding(xp, attention_mask, batch, length)
    if positions is not None and positional != "rope":
        raise ValueError(f"positions are used only with positional='rope' in a block (got "
                         f"positional={positional!r})")
    positions = _positions(xp, positions, None, batch, length, positional)
    return _block(xp, x, params, num_heads=num_heads, num_kv_heads=num_kv_heads,
                  is_causal=is_causal, activation=activation, eps=eps, norm=norm, rope_=rope_,
                  positions=positions, attention_mask=attention_mask)


# --------------------------------------------------------------------------------------------
def _check_decoder(tokens, params, num_heads, num_kv_heads, activation, norm="layer_norm",
                   positional="sinusoidal", rope_=None, length=None):
    """All checks of a decoder (for `length` positions, default T): the namespace and the
    mapping with its optional keys as None and its blocks' too."""
    params = _keys(params, _DECODER_KEYS, "params", _DECODER_OPTIONAL)
    blocks = params["blocks"]
    if not isinstance(blocks, Sequence) or isinstance(blocks, (str, bytes)):
        raise TypeError(f"params['blocks'] must be a list or tuple of block mappings, got "
                        f"{type(blocks).__name__}")
    table = params["embedding"]
    others = {k: params[k] for k in ("ln_f_gamma", *_DECODER_OPTIONAL) if params[k] is not None}
    xp = check.namespace(tokens=tokens, embedding=table, **others)
    check.integer(xp, tokens, "tokens")
    check.min_ndim(tokens, 1, "tokens")
    if tokens.shape[-1] == 0:
        raise ValueError(f"tokens must hold at least one token along the last axis, got shape "
                         f"{tuple(tokens.shape)}")
    check.floating(xp, table, "params['embedding']")
    if table.ndim != 2:
        raise ValueError(f"params['embedding'] must be a (V, d) table, got shape "
                         f"{tuple(table.shape)}")
    vocab, d = table.shape
    if positional == "sinusoidal" and d % 2:
        raise ValueError(f"the embedding width d = {d} must be even (sinusoidal positions pair "
                         f"a sine with a cosine)")
    _norm_params(xp, params, "ln_f_gamma", "ln_f_beta", d, norm, "params")
    for key in others:
        check.floating(xp, params[key], f"params[{key!r}]")
        check.same_dtype(table, params[key], f"params['embedding'] and params[{key!r}]")
    if params["unembedding"] is not None:
        _shape(params["unembedding"], (vocab, d), "params['unembedding']")
    length = tokens.shape[-1] if length is None else length
    pos = params["position_embedding"]
    if positional == "learned":
        if pos is None:
            raise ValueError("positional='learned' needs params['position_embedding'], a (P, d) "
                             "table of learned positions")
        if pos.ndim != 2 or pos.shape[1] != d:
            raise ValueError(f"params['position_embedding'] must be a (P, {d}) table, got "
                             f"shape {tuple(pos.shape)}")
        if length > pos.shape[0]:
            raise ValueError(f"params['position_embedding'] has {pos.shape[0]} positions; "
                             f"{length} are needed")
    elif pos is not None:
        raise ValueError(f"params['position_embedding'] is used only with "
                         f"positional='learned' (got positional={positional!r})")
    check.check_values(xp, tokens, lambda t: (t < 0) | (t >= vocab),
                       f"tokens must be ids in [0, {vocab}); some are out of range")
    probe = xp.zeros((1, d), dtype=table.dtype, device=check.device(table))
    filled = []
    for i, block in enumerate(blocks):
        _, block = _check_block(probe, block, num_heads, num_kv_heads, activation, norm, rope_,
                                name=f"blocks[{i}]")
        check.same_dtype(table, block["w_q"], f"params['embedding'] and blocks[{i}]['w_q']")
        filled.append(block)
    return xp, {**params, "blocks": filled}


def _embed(xp, params, tokens, start: int, positional: str, positions=None):
    """E[t] + PE(p) for the tokens at `positions` (..., T), or start … start + T − 1 (only E[t]
    for RoPE, which rotates inside attention, and for no positions)."""
    table = params["embedding"]
    t = tokens.shape[-1]
    x = embedding(table, tokens)
    if positions is not None and positional == "learned":
        return x + embedding(params["position_embedding"], positions)
    if positions is not None and positional == "sinusoidal":
        return x + _sinusoidal_at(xp, positions, table.shape[1], 10000.0, table.dtype)
    if positional == "learned":
        return x + params["position_embedding"][start:start + t, :]
    if positional == "sinusoidal":
        pe = sinusoidal_positions(start + t, table.shape[1], xp=xp, dtype=table.dtype,
                                  device=check.device(table))
        return x + pe[start:, :]
    return x


def _unembed(xp, params, x, eps, norm="layer_norm"):
    out = params["unembedding"]
    out = params["embedding"] if out is None else out
    return tied_logits(_normalise(xp, x, params["ln_f_gamma"], params["ln_f_beta"], norm, eps),
                       out)


@equation(
    chapter="transformer",
    seeds=("002 §8.3", "002 §6.1", "002 §6.2", "004"),
    tiers="PDXE",
    identities=(
        Identity("causal", "logits at t unchanged when tokens after t change", "P"),
        Identity("matches_torch", "equals the same decoder written with torch.nn.functional", "P"),
        Identity("shape", "tokens (..., T) give logits (..., T, V)", "P"),
        Identity("gradient_reaches_table", "∂/∂E through the embedding and the tied output "
                 "layer: SymPy, autograd and differences agree", "D"),
        Identity("matches_hf_gpt2", "a GPT-2 checkpoint mapped by spec.checkpoints gives "
                 "Hugging Face's GPT2LMHeadModel logits (float64, 1e-10 relative; tied and "
                 "untied)", "P"),
        Identity("matches_hf_llama", "a LLaMA checkpoint mapped by spec.checkpoints gives "
                 "Hugging Face's LlamaForCausalLM logits at float32 accuracy (GQA, rope_theta "
                 "500000, Llama 3 RoPE scaling, tied and untied)", "P"),
        Identity("matches_hf_padded", "a left-padded batch with its attention_mask: at the "
                 "real tokens, Hugging Face's logits (GPT-2 and LLaMA) and those of each row "
                 "run alone", "P"),
        Identity("padding", "a padded row's logits at its real tokens equal the row's alone, "
                 "whatever the pads hold, with padding on either side", "P"),
    ),
)
def decoder_forward(tokens, params, /, *, num_heads, num_kv_heads=None, activation="gelu",
                    eps=1e-5, norm="layer_norm", positional="sinusoidal", rope_base=10000.0,
                    rope_layout="half", rope_scaling=None, attention_mask=None, positions=None):
    r"""A decoder-only transformer: embed and position the tokens, run the blocks, read out logits.

    .. math:: x_0 = E[t] + PE, \qquad x_\ell = \operatorname{Block}_\ell(x_{\ell-1}), \qquad
              \operatorname{logits} = \operatorname{LN}_f(x_L)\, E^\top

    Token embedding plus the positional encoding (``positional``: "sinusoidal" by default,
    "learned" from ``params['position_embedding']``, "rope" rotating q and k inside every
    attention, or "none"), then causal pre-LN :func:`transformer_block` s (the residual
    stream, 002 §8.3), a final norm (``norm``: "layer_norm" or "rms_norm") and the output
    layer: the tied unembedding E (002 §6.1), or ``params['unembedding']`` when given.
    ``params`` is the decoder mapping documented in this module; every block takes the same
    ``num_heads``, ``num_kv_heads``, ``activation``, ``eps``, ``norm`` and RoPE options.
    GPT-2 is ``activation="gelu_tanh", positional="learned"`` with attention biases; LLaMA is
    ``norm="rms_norm", positional="rope", activation="swiglu"`` without biases, untied
    (:mod:`spec.checkpoints` maps their Hugging Face checkpoints).
    Causal: the logits at position t see only tokens 0…t, so they predict token t + 1.

    Batches of unequal lengths: ``attention_mask`` (bool (..., T), True = a real token, False
    = padding, on either side) keeps every query from its row's padded keys, and without
    ``positions`` each real token is placed by the real tokens before it (p = their count, as
    Hugging Face's generate sets position_ids), so a padded row's logits at its real tokens
    equal those of the row alone. ``positions`` (integer (..., T), one row per sequence) sets
    every token's position explicitly (the learned table's row, the sinusoid's or RoPE's
    angle). The logits at padded positions are defined (finite) but carry no meaning.

    Shapes: tokens integer (..., T), T ≥ 1, ids in [0, V); attention_mask and positions
    (..., T), leading axes broadcasting to the tokens' → logits (..., T, V).
    Source: 002 §8.3 (Embed + PE → blocks → Unembed(LN(x_L))), §6.1, §6.2.1, 004.
    """
    rope_ = _options(norm, positional, rope_base, rope_layout, rope_scaling)
    xp, params = _check_decoder(tokens, params, num_heads, num_kv_heads, activation, norm,
                                positional, rope_)
    batch, length = tuple(tokens.shape[:-1]), tokens.shape[-1]
    attention_mask = _padding(xp, attention_mask, batch, length)
    pos = params["position_embedding"]
    positions = _positions(xp, positions, attention_mask, batch, length, positional,
                           None if pos is None else pos.shape[0])
    x = _embed(xp, params, tokens, 0, positional, positions)
    for block in params["blocks"]:
        x = _block(xp, x, block, num_heads=num_heads, num_kv_heads=num_kv_heads,
                   is_causal=True, activation=activation, eps=eps, norm=norm, rope_=rope_,
                   positions=positions, attention_mask=attention_mask)
    return _unembed(xp, params, x, eps, norm)


# --------------------------------------------------------------------------------------------
def _cached_forward(xp, params, tokens, caches, start, *, num_heads, num_kv_heads, activation,
                    eps, norm="layer_norm", positional="sinusoidal", rope_=None,
                    positions=None, key_mask=None):
    """decoder_forward for new tokens at positions start… (or `positions` (..., T)), with each
    block's attention through kv_cache_attention (keys rotated at their absolute positions
    before they are cached), or, with a padding mask over the cached and new keys
    (`key_mask` (..., start + T)), through SDPA over the cache with that mask and the
    end-aligned causal mask: (logits of the new tokens, the blocks' new (K, V) caches)."""
    num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
    x = _embed(xp, params, tokens, start, positional, positions)
    new_caches = []
    for p, (cache_k, cache_v) in zip(params["blocks"], caches):
        h = _normalise(xp, x, p["ln1_gamma"], p["ln1_beta"], norm, eps)
        q, k, v = _project(xp, h, p, num_heads, num_kv_heads, rope_, start, positions)
        if key_mask is None:
            heads, cache_k, cache_v = kv_cache_attention(q, k, v, cache_k, cache_v)
        else:
            cache_k, cache_v = xp.concat([cache_k, k], axis=-2), xp.concat([cache_v, v], axis=-2)
            heads = scaled_dot_product_attention(q, cache_k, cache_v, mask=_key_mask(key_mask),
                                                 is_causal=True)
        x = x + _output(xp, heads, p)
        h = _normalise(xp, x, p["ln2_gamma"], p["ln2_beta"], norm, eps)
        x = x + feed_forward(h, p["w1"], p["b1"], p["w2"], p["b2"], activation=activation)
        new_caches.append((cache_k, cache_v))
    return _unembed(xp, params, x, eps, norm), new_caches


def _empty_caches(xp, params, batch: tuple, num_heads, num_kv_heads):
    num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
    table = params["embedding"]
    caches = []
    for p in params["blocks"]:
        d_head = p["w_k"].shape[0] // num_kv_heads
        shape = (*batch, num_kv_heads, 0, d_head)
        empty = xp.zeros(shape, dtype=table.dtype, device=check.device(table))
        caches.append((empty, empty))
    return caches


@equation(
    chapter="transformer",
    seeds=("002 §10.1", "002 §10.3", "004"),
    tiers="PXE",
    identities=(
        Identity("cache_equals_recompute",
                 "with the KV cache equals recomputing decoder_forward on the whole prefix at "
                 "every step: greedy gives the same tokens, the logits agree", "P"),
        Identity("prompt_kept", "the output starts with the prompt; steps = 0 returns it", "P"),
        Identity("matches_hf_greedy", "greedy generation from a mapped GPT-2 or LLaMA "
                 "checkpoint equals Hugging Face's generate(do_sample=False) token for token "
                 "over 20 steps, left-padded batches with their attention_mask included", "P"),
        Identity("padded_rows_alone", "with a left-padded prompt batch each row generates "
                 "what it generates alone, with and without the cache", "P"),
    ),
)
def generate(params, prompt, steps, /, *, num_heads, sampler, num_kv_heads=None,
             activation="gelu", eps=1e-5, return_logits=False, norm="layer_norm",
             positional="sinusoidal", rope_base=10000.0, rope_layout="half", rope_scaling=None,
             attention_mask=None):
    r"""Autoregressive generation: predict, pick a token, append it, repeat, with a KV cache.

    .. math:: t_{n+1} = \operatorname{sampler}\bigl(\operatorname{logits}(t_0, \dots, t_n)_n
              \bigr), \qquad \operatorname{logits} = \operatorname{decoder\_forward}

    The prompt is run once (prefill) through every block with empty caches; then each new
    token is fed alone, its keys and values appended to the blocks' caches by
    :func:`~spec.kv_cache_attention`, so step n costs O(n·d) attention instead of
    recomputing O(n²·d) (002 §10.3). The result equals calling :func:`decoder_forward` on the
    whole prefix at every step. ``sampler`` is any callable from logits (..., V) to integer
    token ids (...) — e.g. :func:`spec.greedy`, or a closure over uniforms and
    :func:`spec.sample` (randomness stays explicit). ``params`` and the keyword options are
    those of :func:`decoder_forward` (with RoPE each key is rotated at its absolute position
    before it enters the cache, so a cached step equals the uncached forward pass).

    Prompts of unequal lengths come padded, with ``attention_mask`` (bool (..., T₀), True = a
    real token; left padding, as for batched inference, so that every row's next token is
    the last column): as in :func:`decoder_forward` the padded keys are masked in every step
    and each row's tokens are positioned by its own real tokens, the first generated token of
    a row with n real tokens at position n. Each row then generates what it would alone.

    Shapes: prompt integer (..., T₀), T₀ ≥ 1, attention_mask (..., T₀), leading axes
    broadcasting to the prompt's; steps ≥ 0 → tokens (..., T₀ + steps), the prompt
    followed by the generated ids (in the prompt's dtype); with ``return_logits=True``,
    (tokens, logits (..., steps, V)), logits[..., s, :] being what token T₀ + s was drawn from.
    Source: 002 §10.1 (autoregressive factorisation), §10.3 (the KV cache), 004.
    """
    if not callable(sampler):
        raise TypeError(f"sampler must be a callable from logits (..., V) to token ids (...), "
                        f"got {type(sampler).__name__}")
    steps = _int_option(steps, "steps", 0)
    _flag(return_logits, "return_logits")
    rope_ = _options(norm, positional, rope_base, rope_layout, rope_scaling)
    xp, params = _check_decoder(prompt, params, num_heads, num_kv_heads, activation, norm,
                                positional, rope_, length=prompt.shape[-1] + max(steps - 1, 0))
    vocab = params["embedding"].shape[0]
    batch = tuple(prompt.shape[:-1])
    key_mask = _padding(xp, attention_mask, batch, prompt.shape[-1])
    positions = _positions(xp, None, key_mask, batch, prompt.shape[-1], positional)
    if key_mask is not None:  # every row's mask, so that new columns can be appended
        key_mask = xp.broadcast_to(key_mask, (*batch, prompt.shape[-1]))
        positions = xp.broadcast_to(positions, (*batch, prompt.shape[-1]))
    caches = _empty_caches(xp, params, batch, num_heads, num_kv_heads)
    tokens, feed, start, picked = prompt, prompt, 0, []
    options = {"num_heads": num_heads, "num_kv_heads": num_kv_heads, "activation": activation,
               "eps": eps, "norm": norm, "positional": positional, "rope_": rope_}
    for _ in range(steps):
        logits, caches = _cached_forward(xp, params, feed, caches, start, positions=positions,
                                         key_mask=key_mask, **options)
        last = logits[..., -1, :]
        nxt = sampler(last)
        check.namespace(prompt=prompt, sampler_output=nxt)
        if tuple(nxt.shape) != batch:
            raise ValueError(f"sampler must return one token id per sequence, shape {batch}; "
                             f"got shape {tuple(nxt.shape)}")
        check.integer(xp, nxt, "the sampler's output")
        check.check_values(xp, nxt, lambda t: (t < 0) | (t >= vocab),
                           f"the sampler returned ids outside [0, {vocab})")
        start += feed.shape[-1]
        feed = xp.astype(nxt, prompt.dtype)[..., None]
        tokens = xp.concat([tokens, feed], axis=-1)
        if key_mask is not None:  # the new token is real, one past its row's last position
            positions = positions[..., -1:] + 1
            key_mask = xp.concat([key_mask, xp.ones_like(key_mask[..., -1:])], axis=-1)
        picked.append(last)
    if not return_logits:
        return tokens
    if picked:
        logits = xp.stack(picked, axis=-2)
    else:
        logits = xp.zeros((*batch, 0, vocab), dtype=params["embedding"].dtype,
                          device=check.device(params["embedding"]))
    return tokens, logits


# --------------------------------------------------------------------------------------------
@equation(
    chapter="transformer",
    seeds=("002 §8.2",),
    tiers="PE",
    identities=(
        Identity("gpt3", "GPT-3 (L=96, d=12288, V=50257, 2048 learned positions) ≈ 175 B, within "
                 "1 %", "P"),
        Identity("twelve_l_d_squared", "N/(12Ld²) → 1 as d grows (embeddings fixed)", "P"),
        Identity("exact_for_built_params", "equals the total size of a parameter set that "
                 "decoder_forward accepts (GELU and SwiGLU, MHA and GQA, tied or not)", "P"),
        Identity("matches_hf_count", "equals Hugging Face's num_parameters() for GPT-2 and "
                 "LLaMA configurations", "P"),
    ),
)
def transformer_parameter_count(d_model, num_layers, vocab_size, /, *, d_ff=None, num_heads=None,
                                num_kv_heads=None, activation="gelu", max_positions=0,
                                tied_embeddings=True, norm="layer_norm", attention_bias=False,
                                mlp_bias=True):
    r"""The number of parameters of a decoder-only transformer, exactly, for this spec's layout.

    .. math:: N = L\,\bigl(\underbrace{2d^2 + 2d\,d_{kv}}_{\text{attention}}
              + \underbrace{2d\,d_{ff} + d_{ff} + d}_{\text{MLP}} + 4d\bigr) + 2d + Vd
              \;\approx\; 12\,L\,d^2 \quad (d_{ff} = 4d,\ d_{kv} = d)

    Counted, per layer: w_q and w_o (d² each), w_k and w_v (d·d_kv each, d_kv =
    d·num_kv_heads/num_heads; = d for multi-head attention), the MLP (w1, b1, w2, b2: for
    SwiGLU w1 and b1 are doubled, 3d·d_ff + 2d_ff + d), two LayerNorms (4d); then the final
    LayerNorm (2d), the token table V·d (shared with the output layer unless
    ``tied_embeddings=False``, which adds V·d) and ``max_positions``·d learned positions
    (0 here: the spec's sinusoidal encoding has no parameters; P for
    ``positional="learned"``). Options: ``norm="rms_norm"`` counts d per norm (no β);
    ``attention_bias=True`` adds b_q, b_k, b_v, b_o (2d + 2d_kv per layer; GPT-2);
    ``mlp_bias=False`` drops b1 and b2 (LLaMA). RoPE has no parameters.
    002 §8.2's 12Ld² is 4d² + 8d² per layer; for GPT-3 it gives 173.9 B, and the embeddings
    (0.62 B) and positions bring the total to ≈ 174.6 B, the "175 B" of the paper.
    Pure Python integers; d_ff defaults to 4d. Source: 002 §8.2 (the parameter table).
    """
    d = _int_option(d_model, "d_model", 1)
    layers = _int_option(num_layers, "num_layers", 0)
    vocab = _int_option(vocab_size, "vocab_size", 1)
    d_ff = 4 * d if d_ff is None else _int_option(d_ff, "d_ff", 1)
    check.choice(activation, _ACTIVATIONS, "activation")
    positions = _int_option(max_positions, "max_positions", 0)
    _flag(tied_embeddings, "tied_embeddings")
    check.choice(norm, _NORMS, "norm")
    _flag(attention_bias, "attention_bias")
    _flag(mlp_bias, "mlp_bias")
    if num_kv_heads is None:
        d_kv = d
    else:
        if num_heads is None:
            raise ValueError("num_kv_heads needs num_heads (d_kv = d·num_kv_heads/num_heads)")
        heads = _int_option(num_heads, "num_heads", 1)
        kv = _int_option(num_kv_heads, "num_kv_heads", 1)
        if d % heads or heads % kv:
            raise ValueError(f"num_heads = {heads} must divide d_model = {d} and be a multiple "
                             f"of num_kv_heads = {kv}")
        d_kv = d // heads * kv
    if num_heads is not None and d % _int_option(num_heads, "num_heads", 1):
        raise ValueError(f"d_model = {d} is not divisible by num_heads = {num_heads}")
    attention = 2 * d * d + 2 * d * d_kv + (2 * d + 2 * d_kv if attention_bias else 0)
    if activation == "swiglu":
        mlp = 3 * d * d_ff + (2 * d_ff + d if mlp_bias else 0)
    else:
        mlp = 2 * d * d_ff + (d_ff + d if mlp_bias else 0)
    per_norm = 2 * d if norm == "layer_norm" else d
    per_layer = attention + mlp + 2 * per_norm
    embeddings = vocab * d * (1 if tied_embeddings else 2) + positions * d
    return layers * per_layer + per_norm + embeddings


