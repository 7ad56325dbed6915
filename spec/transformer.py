r"""The transformer: pre-LN blocks, a decoder-only language model, generation with a KV cache.

Parameters are plain mappings of arrays (no classes), documented once here:

**Block parameters** (``transformer_block``; one mapping per layer), for width d, num_heads
query heads of d_head = d/num_heads, num_kv_heads K/V heads and hidden width d_ff:

================  ==========================================  ===============================
key               shape                                       role
================  ==========================================  ===============================
``ln1_gamma``     (d,)                                        LayerNorm before attention
``ln1_beta``      (d,)
``w_q``           (num_heads·d_head, d)                       query projection (out, in)
``w_k``, ``w_v``  (num_kv_heads·d_head, d)                    key and value projections
``w_o``           (d, num_heads·d_head)                       output projection
``ln2_gamma``     (d,)                                        LayerNorm before the MLP
``ln2_beta``      (d,)
``w1``            (d_ff, d); (2·d_ff, d) for SwiGLU            first MLP layer
``b1``            (d_ff,); (2·d_ff,) for SwiGLU; or None
``w2``            (d, d_ff)                                   second MLP layer
``b2``            (d,) or None
================  ==========================================  ===============================

**Decoder parameters** (``decoder_forward``, ``generate``): ``embedding`` (V, d), the token
table, also the output layer (weight tying); ``blocks``, a list or tuple of block mappings;
``ln_f_gamma`` and ``ln_f_beta`` (d,), the final LayerNorm. Positions are the fixed sinusoidal
encoding (no parameters), so d must be even.

Sources: 002 §8.1 (the block), §8.2 (parameter count), §8.3 (the residual stream), §10.3 (the
KV cache), §6 (embeddings, weight tying); 003 (the architecture); 004 (next-token prediction).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from . import _validate as check
from ._registry import ErrorCase, Identity, Sample, equation, errors, references, samples
from ._registry import sample_array as _a
from .activations import gelu, relu, silu
from .attention import (
    _check_mha,
    _flag,
    _grid,
    _merge_heads,
    _split_heads,
    kv_cache_attention,
    multi_head_attention,
)
from .decoding import greedy
from .embeddings import embedding, sinusoidal_positions, tied_logits
from .normalization import layer_norm

__all__ = [
    "decoder_forward",
    "feed_forward",
    "generate",
    "transformer_block",
    "transformer_parameter_count",
]

_ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "silu", "swiglu")
_BLOCK_KEYS = ("ln1_gamma", "ln1_beta", "w_q", "w_k", "w_v", "w_o", "ln2_gamma", "ln2_beta",
               "w1", "b1", "w2", "b2")
_DECODER_KEYS = ("embedding", "blocks", "ln_f_gamma", "ln_f_beta")



def _keys(params, expected: tuple, name: str) -> None:
    if not isinstance(params, Mapping):
        raise TypeError(f"{name} must be a mapping (dict) of arrays with keys "
                        f"{', '.join(expected)}; got {type(params).__name__}")
    missing = [k for k in expected if k not in params]
    unknown = sorted(str(k) for k in params if k not in expected)
    if missing or unknown:
        raise ValueError(f"{name} must have exactly the keys {', '.join(expected)}; missing "
                         f"{missing or 'none'}, unknown {unknown or 'none'}")


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
    latex=r"\operatorname{MLP}(x) = \varphi(x W_1^\top + b_1)\, W_2^\top + b_2;\quad"
    r" \text{SwiGLU: } \bigl(\operatorname{SiLU}(x W_g^\top + b_g) \odot (x W_u^\top + b_u)\bigr)"
    r" W_2^\top + b_2",
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


def _ffn_params(xp, dtype, device, d=4, d_ff=8, seed=0.0, swiglu=False):
    rows = 2 * d_ff if swiglu else d_ff
    return (_a(xp, _grid((rows, d), 0.4 + seed, 0.7), dtype, device),
            _a(xp, _grid((rows,), 1.4 + seed, 0.3), dtype, device),
            _a(xp, _grid((d, d_ff), 2.4 + seed, 0.5), dtype, device),
            _a(xp, _grid((d,), 3.4 + seed, 0.3), dtype, device))


@samples(feed_forward)
def _(xp, dtype, device):
    x = _a(xp, _grid((3, 4), 0.9, 1.5), dtype, device)
    w1, b1, w2, b2 = _ffn_params(xp, dtype, device, d_ff=16)
    s1, sb1, s2, sb2 = _ffn_params(xp, dtype, device, swiglu=True)
    return [
        Sample((x, w1, b1, w2, b2), {}, "d = 4 → 4d = 16 → d, GELU"),
        Sample((x, w1, b1, w2, b2), {"activation": "relu"}, "ReLU"),
        Sample((x, w1, b1, w2, b2), {"activation": "gelu_tanh"}, "tanh GELU"),
        Sample((x, s1, sb1, s2, sb2), {"activation": "swiglu"}, "SwiGLU, stacked w1"),
        Sample((x, s1, None, s2, None), {"activation": "swiglu"}, "SwiGLU without biases"),
    ]


@references(feed_forward)
def _(xp, dtype, device):
    w1, b1, w2, b2 = _ffn_params(xp, dtype, device, d_ff=16)
    s1, sb1, s2, sb2 = _ffn_params(xp, dtype, device, swiglu=True)
    big = _a(xp, _grid((2, 4), 2.2, 40.0), dtype, device)
    # positive second layers: large outputs that do not cancel (well conditioned for tier X)
    w2 = _a(xp, [[abs(a) for a in row] for row in _grid((4, 16), 2.4, 0.5)], dtype, device)
    s2 = _a(xp, [[abs(a) for a in row] for row in _grid((4, 8), 2.4, 0.5)], dtype, device)
    return [
        Sample((big, w1, b1, w2, b2), {}, "pre-activations ~±50: both GELU tails"),
        Sample((big, s1, sb1, s2, sb2), {"activation": "swiglu"}, "SwiGLU, large inputs"),
        Sample((big, w1, b1, w2, b2), {"activation": "silu"}, "SiLU, large inputs"),
    ]


@errors(feed_forward)
def _(xp, dtype, device):
    x = _a(xp, _grid((3, 4), 0.9), dtype, device)
    w1, b1, w2, b2 = _ffn_params(xp, dtype, device)
    return [
        ErrorCase((x, w1, b1, w2, b2), {"activation": "tanh"}, ValueError,
                  "activation must be one of", "unknown activation"),
        ErrorCase((_a(xp, _grid((3, 5), 0.9), dtype, device), w1, b1, w2, b2), {}, ValueError,
                  "w1 must have d_model = 5 columns", "x of another width"),
        ErrorCase((x, w1, b1, _a(xp, _grid((4, 6), 0.0), dtype, device), b2), {}, ValueError,
                  "w2 must have d_ff = 8 columns", "w2 of another hidden width"),
        ErrorCase((x, w1, b1, w2, b2), {"activation": "swiglu"}, ValueError,
                  "w2 must have d_ff = 4 columns", "swiglu with an unstacked w1"),
        ErrorCase((x, _a(xp, _grid((7, 4), 0.0), dtype, device), None, w2, b2),
                  {"activation": "swiglu"}, ValueError, "its 7 rows are odd",
                  "swiglu with an odd w1"),
        ErrorCase((xp.astype(x, xp.int64), w1, b1, w2, b2), {}, TypeError,
                  "x must have a real floating dtype", "integer x"),
    ]


# --------------------------------------------------------------------------------------------
def _check_block(x, params, num_heads, num_kv_heads, activation, name="params"):
    """All checks of one block (keys, namespace, dtypes, shapes) before any arithmetic."""
    _keys(params, _BLOCK_KEYS, name)
    check.min_ndim(x, 2, "x")
    arrays = {k: params[k] for k in _BLOCK_KEYS if params[k] is not None}
    xp = check.namespace(x=x, **arrays)
    d = x.shape[-1]
    for key in ("ln1_gamma", "ln1_beta", "ln2_gamma", "ln2_beta"):
        check.floating(xp, params[key], f"{name}[{key!r}]")
        _shape(params[key], (d,), f"{name}[{key!r}]")
    _check_mha(x, x, params["w_q"], params["w_k"], params["w_v"], params["w_o"], num_heads,
               num_kv_heads)
    _check_ffn(x, params["w1"], params["b1"], params["w2"], params["b2"], activation)
    if params["w2"].shape[0] != d:
        raise ValueError(f"{name}['w2'] must map back to d_model = {d}: got shape "
                         f"{tuple(params['w2'].shape)}")
    return xp


def _block(x, p, *, num_heads, num_kv_heads, is_causal, activation, eps):
    h = layer_norm(x, p["ln1_gamma"], p["ln1_beta"], eps=eps)
    x = x + multi_head_attention(h, h, p["w_q"], p["w_k"], p["w_v"], p["w_o"],
                                 num_heads=num_heads, num_kv_heads=num_kv_heads,
                                 is_causal=is_causal)
    h = layer_norm(x, p["ln2_gamma"], p["ln2_beta"], eps=eps)
    return x + feed_forward(h, p["w1"], p["b1"], p["w2"], p["b2"], activation=activation)


@equation(
    chapter="transformer",
    latex=r"x' = x + \operatorname{MultiHead}(\operatorname{LN}(x)),\quad"
    r" x'' = x' + \operatorname{MLP}(\operatorname{LN}(x'))",
    seeds=("002 §8.1", "002 §8.3", "003"),
    tiers="SPDXE",
    identities=(
        Identity("residual_identity", "with w_o = 0 and w2 = 0, b2 = 0 the block is the "
                 "identity (both sublayers only add to the residual stream)", "SP"),
        Identity("one_sublayer_off", "w_o = 0 leaves x + MLP(LN(x)); w2 = b2 = 0 leaves "
                 "x + MHA(LN(x))", "P"),
        Identity("causal", "is_causal: output at t unchanged when x after t changes", "P"),
        Identity("matches_torch", "equals the block built from torch's layer_norm, "
                 "multi_head_attention_forward, linear and gelu", "P"),
        Identity("gradient", "∂/∂x: SymPy, autograd and differences agree", "D"),
    ),
)
def transformer_block(x, params, /, *, num_heads, is_causal=True, num_kv_heads=None,
                      activation="gelu", eps=1e-5):
    r"""One pre-LN transformer block: attention then MLP, each added to the residual stream.

    .. math:: x' = x + \operatorname{MultiHead}\bigl(\operatorname{LN}_1(x)\bigr), \qquad
              x'' = x' + \operatorname{MLP}\bigl(\operatorname{LN}_2(x')\bigr)

    Self-attention (queries, keys and values all from LN₁(x)) by
    :func:`~spec.multi_head_attention` (causal by default, as in a decoder; ``num_kv_heads``
    for grouped-query attention), the MLP by :func:`feed_forward` (``activation``), LayerNorm
    with ``eps`` inside the root. ``params`` is the block mapping documented in this module
    (keys ln1_gamma, ln1_beta, w_q, w_k, w_v, w_o, ln2_gamma, ln2_beta, w1, b1, w2, b2).
    Each sublayer writes an additive update into the residual stream (002 §8.3), so zeroing
    its output projection removes it exactly.

    Shapes: x (..., T, d) → (..., T, d). Source: 002 §8.1 (the block), §8.3, 003.
    """
    _check_block(x, params, num_heads, num_kv_heads, activation)
    _flag(is_causal, "is_causal")
    return _block(x, params, num_heads=num_heads, num_kv_heads=num_kv_heads, is_causal=is_causal,
                  activation=activation, eps=eps)


def _block_params(xp, dtype, device, d=4, d_ff=8, kv_rows=None, seed=0.0):
    kv_rows = d if kv_rows is None else kv_rows
    w1, b1, w2, b2 = _ffn_params(xp, dtype, device, d=d, d_ff=d_ff, seed=seed)
    return {
        "ln1_gamma": _a(xp, [1.0 + 0.1 * math.sin(seed + i) for i in range(d)], dtype, device),
        "ln1_beta": _a(xp, _grid((d,), 5.1 + seed, 0.1), dtype, device),
        "w_q": _a(xp, _grid((d, d), 6.1 + seed, 0.8), dtype, device),
        "w_k": _a(xp, _grid((kv_rows, d), 7.1 + seed, 0.8), dtype, device),
        "w_v": _a(xp, _grid((kv_rows, d), 8.1 + seed, 0.8), dtype, device),
        "w_o": _a(xp, _grid((d, d), 9.1 + seed, 0.5), dtype, device),
        "ln2_gamma": _a(xp, [1.0 + 0.1 * math.cos(seed + i) for i in range(d)], dtype, device),
        "ln2_beta": _a(xp, _grid((d,), 10.1 + seed, 0.1), dtype, device),
        "w1": w1, "b1": b1, "w2": w2, "b2": b2,
    }


@samples(transformer_block)
def _(xp, dtype, device):
    x = _a(xp, _grid((3, 4), 0.3, 1.5), dtype, device)
    xb = _a(xp, _grid((2, 3, 4), 1.3, 1.5), dtype, device)
    return [
        Sample((x, _block_params(xp, dtype, device)), {"num_heads": 2}, "causal, two heads"),
        Sample((xb, _block_params(xp, dtype, device, d_ff=16)),
               {"num_heads": 1, "is_causal": False}, "batch of two, bidirectional"),
        Sample((x, _block_params(xp, dtype, device, kv_rows=2)),
               {"num_heads": 2, "num_kv_heads": 1}, "multi-query attention"),
    ]


@errors(transformer_block)
def _(xp, dtype, device):
    x = _a(xp, _grid((3, 4), 0.3), dtype, device)
    p = _block_params(xp, dtype, device)
    missing = {k: a for k, a in p.items() if k != "w_o"}
    wrong_ln = {**p, "ln2_gamma": _a(xp, [1.0, 1.0, 1.0], dtype, device)}
    return [
        ErrorCase((x, p), {"num_heads": 3}, ValueError, "not divisible by num_heads",
                  "d_model not divisible by num_heads"),
        ErrorCase((x, p), {"num_heads": 2, "num_kv_heads": 3}, ValueError,
                  "must be a multiple of num_kv_heads", "num_heads not a multiple of num_kv_heads"),
        ErrorCase((x, missing), {"num_heads": 2}, ValueError, r"missing \['w_o'\]",
                  "a missing key"),
        ErrorCase((x, wrong_ln), {"num_heads": 2}, ValueError,
                  r"params\['ln2_gamma'\] must have shape \(4,\)", "LayerNorm of another width"),
        ErrorCase((x, [p]), {"num_heads": 2}, TypeError, "params must be a mapping",
                  "params not a mapping"),
        ErrorCase((x[0, :], p), {"num_heads": 2}, ValueError, "x must have at least 2",
                  "x without a time axis"),
    ]


# --------------------------------------------------------------------------------------------
def _check_decoder(tokens, params, num_heads, num_kv_heads, activation):
    _keys(params, _DECODER_KEYS, "params")
    blocks = params["blocks"]
    if not isinstance(blocks, Sequence) or isinstance(blocks, (str, bytes)):
        raise TypeError(f"params['blocks'] must be a list or tuple of block mappings, got "
                        f"{type(blocks).__name__}")
    table = params["embedding"]
    xp = check.namespace(tokens=tokens, embedding=table, ln_f_gamma=params["ln_f_gamma"],
                         ln_f_beta=params["ln_f_beta"])
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
    if d % 2:
        raise ValueError(f"the embedding width d = {d} must be even (sinusoidal positions pair "
                         f"a sine with a cosine)")
    for key in ("ln_f_gamma", "ln_f_beta"):
        check.floating(xp, params[key], f"params[{key!r}]")
        check.same_dtype(table, params[key], f"params['embedding'] and params[{key!r}]")
        _shape(params[key], (d,), f"params[{key!r}]")
    check.check_values(xp, tokens, lambda t: (t < 0) | (t >= vocab),
                       f"tokens must be ids in [0, {vocab}); some are out of range")
    probe = xp.zeros((1, d), dtype=table.dtype, device=check.device(table))
    for i, block in enumerate(blocks):
        _check_block(probe, block, num_heads, num_kv_heads, activation, name=f"blocks[{i}]")
        check.same_dtype(table, block["w_q"], f"params['embedding'] and blocks[{i}]['w_q']")
    return xp


def _embed(xp, params, tokens, start: int):
    """E[t] + PE(p) for the tokens at positions start … start + T − 1."""
    table = params["embedding"]
    t = tokens.shape[-1]
    pe = sinusoidal_positions(start + t, table.shape[1], xp=xp, dtype=table.dtype,
                              device=check.device(table))
    return embedding(table, tokens) + pe[start:, :]


def _unembed(params, x, eps):
    return tied_logits(layer_norm(x, params["ln_f_gamma"], params["ln_f_beta"], eps=eps),
                       params["embedding"])


@equation(
    chapter="transformer",
    latex=r"x_0 = E[t] + PE,\ x_\ell = \operatorname{Block}_\ell(x_{\ell-1}),\ "
    r"\operatorname{logits} = \operatorname{LN}(x_L)\,E^\top",
    seeds=("002 §8.3", "002 §6.1", "002 §6.2", "004"),
    tiers="PDXE",
    identities=(
        Identity("causal", "logits at t unchanged when tokens after t change", "P"),
        Identity("matches_torch", "equals the same decoder written with torch.nn.functional", "P"),
        Identity("shape", "tokens (..., T) give logits (..., T, V)", "P"),
        Identity("gradient_reaches_table", "∂/∂E through the embedding and the tied output "
                 "layer: SymPy, autograd and differences agree", "D"),
    ),
)
def decoder_forward(tokens, params, /, *, num_heads, num_kv_heads=None, activation="gelu",
                    eps=1e-5):
    r"""A decoder-only transformer: embed and position the tokens, run the blocks, read out logits.

    .. math:: x_0 = E[t] + PE, \qquad x_\ell = \operatorname{Block}_\ell(x_{\ell-1}), \qquad
              \operatorname{logits} = \operatorname{LN}_f(x_L)\, E^\top

    Token embedding plus the sinusoidal positional encoding, then causal pre-LN
    :func:`transformer_block` s (the residual stream, 002 §8.3), a final LayerNorm and the
    tied unembedding (the embedding table reused as the output layer, 002 §6.1). ``params`` is
    the decoder mapping documented in this module (embedding, blocks, ln_f_gamma, ln_f_beta);
    every block takes the same ``num_heads``, ``num_kv_heads``, ``activation`` and ``eps``.
    Causal: the logits at position t see only tokens 0…t, so they predict token t + 1.

    Shapes: tokens integer (..., T), T ≥ 1, ids in [0, V) → logits (..., T, V).
    Source: 002 §8.3 (Embed + PE → blocks → Unembed(LN(x_L))), §6.1, §6.2.1, 004.
    """
    xp = _check_decoder(tokens, params, num_heads, num_kv_heads, activation)
    x = _embed(xp, params, tokens, 0)
    for block in params["blocks"]:
        x = _block(x, block, num_heads=num_heads, num_kv_heads=num_kv_heads, is_causal=True,
                   activation=activation, eps=eps)
    return _unembed(params, x, eps)


def _decoder_params(xp, dtype, device, vocab=5, d=4, layers=2, kv_rows=None):
    return {
        "embedding": _a(xp, _grid((vocab, d), 11.3, 1.0), dtype, device),
        "blocks": [_block_params(xp, dtype, device, kv_rows=kv_rows, seed=1.7 * i)
                   for i in range(layers)],
        "ln_f_gamma": _a(xp, [1.0, 0.9, 1.1, 1.05][:d], dtype, device),
        "ln_f_beta": _a(xp, _grid((d,), 12.3, 0.1), dtype, device),
    }


@samples(decoder_forward)
def _(xp, dtype, device):
    tokens = xp.asarray([3, 0, 4, 1], dtype=xp.int64, device=device)
    batch = xp.asarray([[1, 2, 2], [4, 0, 3]], dtype=xp.int64, device=device)
    return [
        Sample((tokens, _decoder_params(xp, dtype, device)), {"num_heads": 2},
               "four tokens, two layers"),
        Sample((batch, _decoder_params(xp, dtype, device, layers=1, kv_rows=2)),
               {"num_heads": 2, "num_kv_heads": 1}, "batch of two, multi-query"),
    ]


def _decoder_errors(xp, dtype, device, call, extra=None):
    tokens = xp.asarray([3, 0, 4, 1], dtype=xp.int64, device=device)
    p = _decoder_params(xp, dtype, device)
    odd = {**p, "embedding": _a(xp, _grid((5, 3), 0.0), dtype, device)}
    two, three = {"num_heads": 2, **(extra or {})}, {"num_heads": 3, **(extra or {})}
    return [
        ErrorCase(call(xp.astype(tokens, dtype), p), two, TypeError,
                  "tokens must have an integer dtype", "non-integer tokens"),
        ErrorCase(call(xp.asarray([3, 5], dtype=xp.int64, device=device), p), two,
                  ValueError, r"tokens must be ids in \[0, 5\)", "token out of range"),
        ErrorCase(call(tokens, p), three, ValueError, "not divisible by num_heads",
                  "d_model not divisible by num_heads"),
        ErrorCase(call(tokens, {k: a for k, a in p.items() if k != "ln_f_beta"}), two,
                  ValueError, r"missing \['ln_f_beta'\]", "missing key"),
        ErrorCase(call(tokens, odd), two, ValueError, "must be even", "odd embedding width"),
    ]


@errors(decoder_forward)
def _(xp, dtype, device):
    return _decoder_errors(xp, dtype, device, lambda tokens, p: (tokens, p))


# --------------------------------------------------------------------------------------------
def _cached_forward(xp, params, tokens, caches, start, *, num_heads, num_kv_heads, activation,
                    eps):
    """decoder_forward for new tokens at positions start…, with each block's attention through
    kv_cache_attention: (logits of the new tokens, the blocks' new (K, V) caches)."""
    num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
    x = _embed(xp, params, tokens, start)
    new_caches = []
    for p, (cache_k, cache_v) in zip(params["blocks"], caches):
        h = layer_norm(x, p["ln1_gamma"], p["ln1_beta"], eps=eps)
        q = _split_heads(xp, h @ xp.matrix_transpose(p["w_q"]), num_heads)
        k = _split_heads(xp, h @ xp.matrix_transpose(p["w_k"]), num_kv_heads)
        v = _split_heads(xp, h @ xp.matrix_transpose(p["w_v"]), num_kv_heads)
        heads, cache_k, cache_v = kv_cache_attention(q, k, v, cache_k, cache_v)
        x = x + _merge_heads(xp, heads) @ xp.matrix_transpose(p["w_o"])
        h = layer_norm(x, p["ln2_gamma"], p["ln2_beta"], eps=eps)
        x = x + feed_forward(h, p["w1"], p["b1"], p["w2"], p["b2"], activation=activation)
        new_caches.append((cache_k, cache_v))
    return _unembed(params, x, eps), new_caches


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
    latex=r"t_{n+1} = \operatorname{sampler}\bigl(\operatorname{logits}(t_{\le n})_n\bigr),"
    r"\ n = T_0 - 1, \dots, T_0 + \text{steps} - 2",
    seeds=("002 §10.1", "002 §10.3", "004"),
    tiers="PXE",
    identities=(
        Identity("cache_equals_recompute",
                 "with the KV cache equals recomputing decoder_forward on the whole prefix at "
                 "every step: greedy gives the same tokens, the logits agree", "P"),
        Identity("prompt_kept", "the output starts with the prompt; steps = 0 returns it", "P"),
    ),
)
def generate(params, prompt, steps, /, *, num_heads, sampler, num_kv_heads=None,
             activation="gelu", eps=1e-5, return_logits=False):
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
    those of :func:`decoder_forward`.

    Shapes: prompt integer (..., T₀), T₀ ≥ 1; steps ≥ 0 → tokens (..., T₀ + steps), the prompt
    followed by the generated ids (in the prompt's dtype); with ``return_logits=True``,
    (tokens, logits (..., steps, V)), logits[..., s, :] being what token T₀ + s was drawn from.
    Source: 002 §10.1 (autoregressive factorisation), §10.3 (the KV cache), 004.
    """
    if not callable(sampler):
        raise TypeError(f"sampler must be a callable from logits (..., V) to token ids (...), "
                        f"got {type(sampler).__name__}")
    steps = _int_option(steps, "steps", 0)
    _flag(return_logits, "return_logits")
    xp = _check_decoder(prompt, params, num_heads, num_kv_heads, activation)
    vocab = params["embedding"].shape[0]
    batch = tuple(prompt.shape[:-1])
    caches = _empty_caches(xp, params, batch, num_heads, num_kv_heads)
    tokens, feed, start, picked = prompt, prompt, 0, []
    options = {"num_heads": num_heads, "num_kv_heads": num_kv_heads, "activation": activation,
               "eps": eps}
    for _ in range(steps):
        logits, caches = _cached_forward(xp, params, feed, caches, start, **options)
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
        picked.append(last)
    if not return_logits:
        return tokens
    if picked:
        logits = xp.stack(picked, axis=-2)
    else:
        logits = xp.zeros((*batch, 0, vocab), dtype=params["embedding"].dtype,
                          device=check.device(params["embedding"]))
    return tokens, logits


@samples(generate)
def _(xp, dtype, device):
    prompt = xp.asarray([3, 0, 4], dtype=xp.int64, device=device)
    batch = xp.asarray([[1, 2], [4, 0]], dtype=xp.int64, device=device)
    return [
        Sample((_decoder_params(xp, dtype, device), prompt, 4),
               {"num_heads": 2, "sampler": greedy}, "greedy, four new tokens"),
        Sample((_decoder_params(xp, dtype, device, layers=1, kv_rows=2), batch, 3),
               {"num_heads": 2, "num_kv_heads": 1, "sampler": greedy},
               "batch of two, multi-query"),
        Sample((_decoder_params(xp, dtype, device, layers=1), prompt, 0),
               {"num_heads": 2, "sampler": greedy}, "no steps: the prompt"),
    ]


@errors(generate)
def _(xp, dtype, device):
    p = _decoder_params(xp, dtype, device)
    prompt = xp.asarray([3, 0, 4], dtype=xp.int64, device=device)
    return [
        *_decoder_errors(xp, dtype, device, lambda tokens, q: (q, tokens, 2),
                         {"sampler": greedy})[:3],
        ErrorCase((p, prompt, -1), {"num_heads": 2, "sampler": greedy}, ValueError,
                  "steps must be an integer ≥ 0", "negative steps"),
        ErrorCase((p, prompt, 2), {"num_heads": 2, "sampler": "greedy"}, TypeError,
                  "sampler must be a callable", "sampler not callable"),
        ErrorCase((p, prompt, 2), {"num_heads": 2, "sampler": lambda z: z}, ValueError,
                  "sampler must return one token id per sequence", "sampler returns logits"),
    ]


# --------------------------------------------------------------------------------------------
@equation(
    chapter="transformer",
    latex=r"N = L\bigl(4d^2 + 2 d\,d_{ff} + d_{ff} + 5d\bigr) + 2d + V d"
    r"\ \approx 12 L d^2 \ (d_{ff} = 4d)",
    seeds=("002 §8.2",),
    tiers="PE",
    identities=(
        Identity("gpt3", "GPT-3 (L=96, d=12288, V=50257, 2048 learned positions) ≈ 175 B, within "
                 "1 %", "P"),
        Identity("twelve_l_d_squared", "N/(12Ld²) → 1 as d grows (embeddings fixed)", "P"),
        Identity("exact_for_built_params", "equals the total size of a parameter set that "
                 "decoder_forward accepts (GELU and SwiGLU, MHA and GQA, tied or not)", "P"),
    ),
)
def transformer_parameter_count(d_model, num_layers, vocab_size, /, *, d_ff=None, num_heads=None,
                                num_kv_heads=None, activation="gelu", max_positions=0,
                                tied_embeddings=True):
    r"""The number of parameters of a decoder-only transformer, exactly, for this spec's layout.

    .. math:: N = L\,\bigl(\underbrace{2d^2 + 2d\,d_{kv}}_{\text{attention}}
              + \underbrace{2d\,d_{ff} + d_{ff} + d}_{\text{MLP}} + 4d\bigr) + 2d + Vd
              \;\approx\; 12\,L\,d^2 \quad (d_{ff} = 4d,\ d_{kv} = d)

    Counted, per layer: w_q and w_o (d² each), w_k and w_v (d·d_kv each, d_kv =
    d·num_kv_heads/num_heads; = d for multi-head attention), the MLP (w1, b1, w2, b2: for
    SwiGLU w1 and b1 are doubled, 3d·d_ff + 2d_ff + d), two LayerNorms (4d); then the final
    LayerNorm (2d), the token table V·d (shared with the output layer unless
    ``tied_embeddings=False``, which adds V·d) and ``max_positions``·d learned positions
    (0 here: the spec's sinusoidal encoding has no parameters). No attention biases.
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
    attention = 2 * d * d + 2 * d * d_kv
    if activation == "swiglu":
        mlp = 3 * d * d_ff + 2 * d_ff + d
    else:
        mlp = 2 * d * d_ff + d_ff + d
    per_layer = attention + mlp + 4 * d
    embeddings = vocab * d * (1 if tied_embeddings else 2) + positions * d
    return layers * per_layer + 2 * d + embeddings


@samples(transformer_parameter_count)
def _(xp, dtype, device):
    return [
        Sample((12288, 96, 50257), {"max_positions": 2048}, "GPT-3"),
        Sample((4096, 32, 32000), {"d_ff": 11008, "activation": "swiglu",
                                   "tied_embeddings": False}, "LLaMA-7B shape"),
        Sample((4, 2, 5), {"num_heads": 2, "num_kv_heads": 1}, "the sample decoder, MQA"),
    ]


@errors(transformer_parameter_count)
def _(xp, dtype, device):
    return [
        ErrorCase((0, 2, 5), {}, ValueError, "d_model must be an integer ≥ 1", "zero width"),
        ErrorCase((4.0, 2, 5), {}, TypeError, "d_model must be an integer", "float width"),
        ErrorCase((6, 2, 5), {"num_heads": 4}, ValueError, "not divisible by num_heads",
                  "d_model not divisible by num_heads"),
        ErrorCase((8, 2, 5), {"num_heads": 4, "num_kv_heads": 3}, ValueError,
                  "multiple of num_kv_heads", "heads not a multiple of kv heads"),
        ErrorCase((8, 2, 5), {"activation": "tanh"}, ValueError, "activation must be one of",
                  "unknown activation"),
    ]
