"""§10 Transformer: tiers S, P and D (X, E and R are driven by the records in test_tiers.py).

Parameters are built here with NumPy's generator, independently of the spec's own sample
builders, and moved to the backend as nested dicts. References: PyTorch's functional
building blocks (layer_norm, linear, gelu, scaled_dot_product_attention with enable_gqa) in
float64, a NumPy sinusoidal encoding, and the spec's own lower-level equations where an
identity composes them (each proven in its own chapter).
"""

from __future__ import annotations

import contextlib
import itertools

import array_api_compat
import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given, reject
from hypothesis import strategies as st

import spec
from conformance import derivatives, oracles_transformer, symbolic
from conformance import strategies as cst
from conformance.helpers import to_backend
from conformance.tolerances import Tol, values

BUDGET = oracles_transformer.ULP_BUDGET["feed_forward"]
ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "silu", "swiglu")


def _np(backend, x):
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def _eps(dtype):
    return float(np.finfo(dtype).eps)


def _on(backend, obj):
    """Host arrays (also inside dicts, lists and tuples) moved to the backend."""
    if isinstance(obj, dict):
        return {k: _on(backend, a) for k, a in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_on(backend, a) for a in obj)
    return to_backend(backend, obj)


def _chain_tol(dtype, depth: int, scale: float) -> Tol:
    """A composition of `depth` sublayers (each a ≤ 64-term dot product, a LayerNorm or an
    attention, each within the VALUES tolerance of its own equation) accumulates at most
    `depth` times that error, relative to the largest magnitude `scale` flowing through."""
    tol = values(dtype)
    return Tol(rtol=depth * tol.rtol, atol=depth * tol.rtol * max(1.0, scale))


# --- parameter builders (NumPy, independent of the spec's sample builders) -------------------
def _block(rng, d, num_heads, num_kv_heads, d_ff, activation, dtype, scale=0.5):
    d_head = d // num_heads
    rows = 2 * d_ff if activation == "swiglu" else d_ff

    def w(*shape, s=scale):
        return (rng.normal(0, s, shape)).astype(dtype)

    return {
        "ln1_gamma": (1 + w(d, s=0.2)), "ln1_beta": w(d, s=0.2),
        "w_q": w(num_heads * d_head, d), "w_k": w(num_kv_heads * d_head, d),
        "w_v": w(num_kv_heads * d_head, d), "w_o": w(d, num_heads * d_head),
        "ln2_gamma": (1 + w(d, s=0.2)), "ln2_beta": w(d, s=0.2),
        "w1": w(rows, d), "b1": w(rows, s=0.2), "w2": w(d, d_ff), "b2": w(d, s=0.2),
    }


def _decoder(rng, vocab, d, layers, num_heads, num_kv_heads, d_ff, activation, dtype):
    return {
        "embedding": rng.normal(0, 1, (vocab, d)).astype(dtype),
        "blocks": [_block(rng, d, num_heads, num_kv_heads, d_ff, activation, dtype)
                   for _ in range(layers)],
        "ln_f_gamma": (1 + rng.normal(0, 0.2, d)).astype(dtype),
        "ln_f_beta": rng.normal(0, 0.2, d).astype(dtype),
    }


@st.composite
def _config(draw, *, even=False):
    num_kv = draw(st.integers(1, 2), label="num_kv_heads")
    num_heads = num_kv * draw(st.integers(1, 2), label="groups")
    d_head = draw(st.integers(1, 3), label="d_head") * (2 if even else 1)
    d = num_heads * d_head
    return {"d": d, "num_heads": num_heads, "num_kv_heads": num_kv,
            "d_ff": draw(st.integers(1, 2 * d), label="d_ff"),
            "activation": draw(st.sampled_from(ACTIVATIONS), label="activation"),
            "seed": draw(st.integers(0, 2**32 - 1), label="seed")}


# ============================================================================ tier S
def _gelu(z):
    return z * (1 + sp.erf(z / sp.sqrt(2))) / 2


def _silu(z):
    return z / (1 + sp.exp(-z))


@pytest.mark.spec("feed_forward", tier="S")
def test_feed_forward_is_textbook_gelu_mlp():
    x = symbolic.symbols("x", (1, 2))
    w1, b1 = symbolic.symbols("w", (3, 2)), symbolic.symbols("b", (3,))
    w2, b2 = symbolic.symbols("u", (2, 3)), symbolic.symbols("c", (2,))
    out = symbolic.exprs(spec.feed_forward(x, w1, b1, w2, b2))
    xs, W1, B1, W2, B2 = (symbolic.exprs(a).tolist() for a in (x, w1, b1, w2, b2))
    z = [W1[j][0] * xs[0][0] + W1[j][1] * xs[0][1] + B1[j] for j in range(3)]
    truth = [[sp.Add(*[W2[i][j] * _gelu(z[j]) for j in range(3)]) + B2[i] for i in range(2)]]
    symbolic.assert_equal(out, truth, "W₂ GELU(W₁x + b₁) + b₂")


@pytest.mark.spec("feed_forward", tier="S")
def test_feed_forward_swiglu_is_gated_product():
    """SwiGLU on the stacked w1: SiLU(x W_gᵀ + b_g) ⊙ (x W_uᵀ + b_u), then W₂. Positive
    symbols: the spec's SiLU branches on the sign of its argument, decidable only then."""
    x = symbolic.symbols("x", (1, 2), positive=True)
    w1, b1 = symbolic.symbols("w", (4, 2), positive=True), symbolic.symbols("b", (4,),
                                                                             positive=True)
    w2, b2 = symbolic.symbols("u", (2, 2)), symbolic.symbols("c", (2,))
    out = symbolic.exprs(spec.feed_forward(x, w1, b1, w2, b2, activation="swiglu"))
    xs, W1, B1, W2, B2 = (symbolic.exprs(a).tolist() for a in (x, w1, b1, w2, b2))
    z = [W1[j][0] * xs[0][0] + W1[j][1] * xs[0][1] + B1[j] for j in range(4)]
    hidden = [_silu(z[j]) * z[j + 2] for j in range(2)]
    truth = [[sp.Add(*[W2[i][j] * hidden[j] for j in range(2)]) + B2[i] for i in range(2)]]
    symbolic.assert_equal(out, truth, "SwiGLU MLP")


@pytest.mark.spec("transformer_block", tier="S")
@pytest.mark.parametrize(("num_heads", "activation"), [(1, "gelu"), (2, "relu")])
def test_block_with_zeroed_output_projections_is_identity(num_heads, activation):
    """w_o = 0 and w2 = b2 = 0: both sublayers add exactly 0, so x'' = x for symbolic x and
    symbolic everything else."""
    xp = symbolic.backend().xp
    t, d, d_ff = 2, 2, 3
    x = symbolic.symbols("x", (t, d))
    zero = xp.zeros
    params = {
        "ln1_gamma": symbolic.symbols("g1", (d,)), "ln1_beta": symbolic.symbols("c1", (d,)),
        "w_q": symbolic.symbols("wq", (d, d)), "w_k": symbolic.symbols("wk", (d, d)),
        "w_v": symbolic.symbols("wv", (d, d)), "w_o": zero((d, d), dtype=xp.float64),
        "ln2_gamma": symbolic.symbols("g2", (d,)), "ln2_beta": symbolic.symbols("c2", (d,)),
        "w1": symbolic.symbols("w1", (d_ff, d)), "b1": symbolic.symbols("b1", (d_ff,)),
        "w2": zero((d, d_ff), dtype=xp.float64), "b2": zero((d,), dtype=xp.float64),
    }
    out = symbolic.exprs(spec.transformer_block(x, params, num_heads=num_heads,
                                                activation=activation))
    assert out.tolist() == symbolic.exprs(x).tolist()


# ============================================================================ tier P
@pytest.mark.spec("feed_forward", tier="P")
@given(data=st.data())
def test_feed_forward_shapes_4d(backend, dtype, data):
    d = data.draw(st.integers(1, 8), label="d")
    batch = data.draw(cst.shapes(min_dims=1, max_dims=2, max_side=4), label="batch")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    x = rng.normal(size=(*batch, d)).astype(dtype)
    w1, b1 = rng.normal(size=(4 * d, d)).astype(dtype), rng.normal(size=4 * d).astype(dtype)
    w2, b2 = rng.normal(size=(d, 4 * d)).astype(dtype), rng.normal(size=d).astype(dtype)
    out = spec.feed_forward(*[to_backend(backend, a) for a in (x, w1, b1, w2, b2)])
    assert tuple(out.shape) == x.shape
    assert sum(a.size for a in (w1, b1, w2, b2)) == 8 * d * d + 5 * d  # 002 §8.2's 8d²


def _ffn_inputs(data, dtype, activation):
    d = data.draw(st.integers(1, 6), label="d")
    d_ff = data.draw(st.integers(1, 8), label="d_ff")
    rows = 2 * d_ff if activation == "swiglu" else d_ff
    batch = data.draw(st.sampled_from([(1,), (3,), (2, 2)]), label="batch")
    x = data.draw(cst.arrays(dtype, (*batch, d), min_value=-3, max_value=3), label="x")
    w1 = data.draw(cst.arrays(dtype, (rows, d), min_value=-1, max_value=1), label="w1")
    b1 = data.draw(cst.arrays(dtype, (rows,), min_value=-1, max_value=1), label="b1")
    w2 = data.draw(cst.arrays(dtype, (d, d_ff), min_value=-1, max_value=1), label="w2")
    b2 = data.draw(cst.arrays(dtype, (d,), min_value=-1, max_value=1), label="b2")
    return x, w1, b1, w2, b2


def _ffn_close(got, want, args, activation, dtype, *, computations=2):
    """Within the tier-R budget at the oracle's floor (one per computation compared)."""
    floor = oracles_transformer.FLOORS["feed_forward"](np.asarray(want), args,
                                                       {"activation": activation})
    err = np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))
    bound = computations * BUDGET[dtype] * _eps(dtype) * np.maximum(floor, np.finfo(dtype).tiny)
    assert np.all(err <= bound), f"{activation}: worst error/bound {np.max(err / bound):.3g}"


@pytest.mark.spec("feed_forward", tier="P")
@given(data=st.data())
def test_feed_forward_swiglu_variant_is_activations_swiglu(backend, dtype, data):
    x, w1, _, w2, _ = _ffn_inputs(data, dtype, "swiglu")
    d_ff = w2.shape[1]
    xb, w1b, w2b = (to_backend(backend, a) for a in (x, w1, w2))
    got = _np(backend, spec.feed_forward(xb, w1b, None, w2b, None, activation="swiglu"))
    hidden = spec.swiglu(xb, *(to_backend(backend, a) for a in (w1[:d_ff], w1[d_ff:])))
    want = _np(backend, hidden) @ w2.astype(np.float64).T
    _ffn_close(got, want, (x, w1, None, w2, None), "swiglu", dtype)


@pytest.mark.spec("feed_forward", tier="P")
@given(data=st.data(), activation=st.sampled_from(ACTIVATIONS))
def test_feed_forward_matches_torch(backend, dtype, data, activation):
    t = pytest.importorskip("torch")
    F = t.nn.functional
    args = _ffn_inputs(data, dtype, activation)
    got = _np(backend, spec.feed_forward(*[to_backend(backend, a) for a in args],
                                         activation=activation))
    x, w1, b1, w2, b2 = (t.from_numpy(a.astype(np.float64)) for a in args)
    z = F.linear(x, w1, b1)
    if activation == "swiglu":
        half = z.shape[-1] // 2
        h = F.silu(z[..., :half]) * z[..., half:]
    elif activation == "gelu_tanh":
        h = F.gelu(z, approximate="tanh")
    else:
        h = {"gelu": F.gelu, "relu": F.relu, "silu": F.silu}[activation](z)
    want = F.linear(h, w2, b2).numpy()
    _ffn_close(got, want, args, activation, dtype)


# --- the block ------------------------------------------------------------------------------
def _block_case(data, dtype, *, t_max=4):
    cfg = data.draw(_config(), label="config")
    rng = np.random.default_rng(cfg["seed"])
    p = _block(rng, cfg["d"], cfg["num_heads"], cfg["num_kv_heads"], cfg["d_ff"],
               cfg["activation"], dtype)
    t = data.draw(st.integers(1, t_max), label="T")
    batch = data.draw(st.sampled_from([(), (2,)]), label="batch")
    x = rng.normal(0, 1, (*batch, t, cfg["d"])).astype(dtype)
    return x, p, cfg


def _opts(cfg, **extra):
    return {"num_heads": cfg["num_heads"], "num_kv_heads": cfg["num_kv_heads"],
            "activation": cfg["activation"], **extra}


@pytest.mark.spec("transformer_block", tier="P")
@given(data=st.data())
def test_block_residual_stream(backend, dtype, data):
    """Zeroing w_o and (w2, b2) makes the block the identity, bitwise; zeroing one leaves
    exactly the other sublayer's update (composed from the chapter's own equations)."""
    x, p, cfg = _block_case(data, dtype)
    off = {**p, "w_o": np.zeros_like(p["w_o"]), "w2": np.zeros_like(p["w2"]),
           "b2": np.zeros_like(p["b2"])}
    out = backend.to_numpy(spec.transformer_block(to_backend(backend, x), _on(backend, off),
                                                  **_opts(cfg)))
    np.testing.assert_array_equal(out, x)
    xb = to_backend(backend, x)
    no_attn = _np(backend, spec.transformer_block(xb, _on(backend, {**p, "w_o": off["w_o"]}),
                                                  **_opts(cfg)))
    pb = _on(backend, p)
    h = spec.layer_norm(xb, pb["ln2_gamma"], pb["ln2_beta"])
    mlp = _np(backend, spec.feed_forward(h, pb["w1"], pb["b1"], pb["w2"], pb["b2"],
                                         activation=cfg["activation"]))
    np.testing.assert_allclose(no_attn, x + mlp, rtol=values(dtype).rtol,
                               atol=values(dtype).atol * max(1, np.max(np.abs(mlp))))
    no_mlp = _np(backend, spec.transformer_block(
        xb, _on(backend, {**p, "w2": off["w2"], "b2": off["b2"]}), **_opts(cfg)))
    h = spec.layer_norm(xb, pb["ln1_gamma"], pb["ln1_beta"])
    attn = _np(backend, spec.multi_head_attention(h, h, pb["w_q"], pb["w_k"], pb["w_v"],
                                                  pb["w_o"], num_heads=cfg["num_heads"],
                                                  num_kv_heads=cfg["num_kv_heads"],
                                                  is_causal=True))
    np.testing.assert_allclose(no_mlp, x + attn, rtol=values(dtype).rtol,
                               atol=values(dtype).atol * max(1, np.max(np.abs(attn))))


@pytest.mark.spec("transformer_block", tier="P")
@given(data=st.data())
def test_block_causal(backend, dtype, data):
    x, p, cfg = _block_case(data, dtype)
    t = x.shape[-2]
    i = data.draw(st.integers(0, t - 1), label="i")
    x2 = x.copy()
    x2[..., i + 1:, :] = np.random.default_rng(cfg["seed"] + 1).normal(
        0, 5, x2[..., i + 1:, :].shape).astype(dtype)
    pb = _on(backend, p)
    a = _np(backend, spec.transformer_block(to_backend(backend, x), pb, **_opts(cfg)))
    b = _np(backend, spec.transformer_block(to_backend(backend, x2), pb, **_opts(cfg)))
    tol = _chain_tol(dtype, 4, np.max(np.abs(a)))
    np.testing.assert_allclose(b[..., : i + 1, :], a[..., : i + 1, :], rtol=tol.rtol,
                               atol=tol.atol)


def _torch_block(t, x, p, cfg, *, is_causal=True, eps=1e-5):
    """The same pre-LN block from torch.nn.functional, float64."""
    F = t.nn.functional
    P = {k: t.from_numpy(np.asarray(a, np.float64)) for k, a in p.items()}
    d = x.shape[-1]
    h_, hk = cfg["num_heads"], cfg["num_kv_heads"]

    def heads(z, n):
        return z.unflatten(-1, (n, -1)).transpose(-2, -3)

    def attention(h):
        q = heads(F.linear(h, P["w_q"]), h_)
        k = heads(F.linear(h, P["w_k"]), hk)
        v = heads(F.linear(h, P["w_v"]), hk)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal, enable_gqa=True)
        return F.linear(o.transpose(-2, -3).flatten(-2), P["w_o"])

    def mlp(h):
        z = F.linear(h, P["w1"], P["b1"])
        act = cfg["activation"]
        if act == "swiglu":
            half = z.shape[-1] // 2
            z = F.silu(z[..., :half]) * z[..., half:]
        elif act == "gelu_tanh":
            z = F.gelu(z, approximate="tanh")
        else:
            z = {"gelu": F.gelu, "relu": F.relu, "silu": F.silu}[act](z)
        return F.linear(z, P["w2"], P["b2"])

    X = t.from_numpy(np.asarray(x, np.float64))
    X = X + attention(F.layer_norm(X, (d,), P["ln1_gamma"], P["ln1_beta"], eps))
    return X + mlp(F.layer_norm(X, (d,), P["ln2_gamma"], P["ln2_beta"], eps))


def _sigma_ok(x, floor=0.3):
    """LayerNorm divides by σ: keep the draws where every row has σ ≥ floor, so the
    per-test tolerance (relative to magnitudes) is not swamped by 1/σ amplification."""
    return bool(np.all(np.std(np.asarray(x, np.float64), axis=-1) >= floor))


@pytest.mark.spec("transformer_block", tier="P")
@given(data=st.data())
def test_block_matches_torch(backend, dtype, data):
    t = pytest.importorskip("torch")
    x, p, cfg = _block_case(data, dtype)
    assume(cfg["d"] >= 2 and _sigma_ok(x))
    causal = data.draw(st.booleans(), label="is_causal")
    got = _np(backend, spec.transformer_block(to_backend(backend, x), _on(backend, p),
                                              **_opts(cfg, is_causal=causal)))
    want = _torch_block(t, x, p, cfg, is_causal=causal).numpy()
    tol = _chain_tol(dtype, 4, np.max(np.abs(want)))
    np.testing.assert_allclose(got, want, rtol=tol.rtol, atol=tol.atol)


# --- the decoder ----------------------------------------------------------------------------
def _sinusoids(n, d):
    """PE(p, 2i) = sin(p/10000^(2i/d)), PE(p, 2i+1) = cos(…), in NumPy float64."""
    p = np.arange(n)[:, None]
    angle = p / 10000.0 ** (np.arange(0, d, 2) / d)[None, :]
    pe = np.empty((n, d))
    pe[:, 0::2], pe[:, 1::2] = np.sin(angle), np.cos(angle)
    return pe


def _torch_decoder(t, tokens, params, cfg, eps=1e-5):
    F = t.nn.functional
    E = np.asarray(params["embedding"], np.float64)
    x = E[tokens] + _sinusoids(tokens.shape[-1], E.shape[1])
    for block in params["blocks"]:
        x = _torch_block(t, x, block, cfg).numpy()
    h = F.layer_norm(t.from_numpy(x), (E.shape[1],),
                     t.from_numpy(np.asarray(params["ln_f_gamma"], np.float64)),
                     t.from_numpy(np.asarray(params["ln_f_beta"], np.float64)), eps)
    return (h @ t.from_numpy(E).T).numpy()


def _decoder_case(data, dtype, *, t_max=5):
    cfg = data.draw(_config(even=True), label="config")
    rng = np.random.default_rng(cfg["seed"])
    vocab = data.draw(st.integers(2, 7), label="vocab")
    layers = data.draw(st.integers(1, 2), label="layers")
    p = _decoder(rng, vocab, cfg["d"], layers, cfg["num_heads"], cfg["num_kv_heads"],
                 cfg["d_ff"], cfg["activation"], dtype)
    t = data.draw(st.integers(1, t_max), label="T")
    batch = data.draw(st.sampled_from([(), (2,)]), label="batch")
    tokens = rng.integers(0, vocab, (*batch, t))
    return tokens, p, cfg


def _dec_opts(cfg):
    return {"num_heads": cfg["num_heads"], "num_kv_heads": cfg["num_kv_heads"],
            "activation": cfg["activation"]}


@pytest.mark.spec("decoder_forward", tier="P")
@given(data=st.data())
def test_decoder_causal_and_shape(backend, dtype, data):
    tokens, p, cfg = _decoder_case(data, dtype)
    vocab, t = p["embedding"].shape[0], tokens.shape[-1]
    i = data.draw(st.integers(0, t - 1), label="i")
    other = tokens.copy()
    other[..., i + 1:] = (tokens[..., i + 1:] + 1) % vocab
    pb = _on(backend, p)
    with _dask_index_collision(backend):
        a = _np(backend, spec.decoder_forward(to_backend(backend, tokens), pb, **_dec_opts(cfg)))
        b = _np(backend, spec.decoder_forward(to_backend(backend, other), pb, **_dec_opts(cfg)))
    assert a.shape == (*tokens.shape, vocab)
    depth = 4 * len(p["blocks"]) + 2
    tol = _chain_tol(dtype, depth, np.max(np.abs(a)))
    np.testing.assert_allclose(b[..., : i + 1, :], a[..., : i + 1, :], rtol=tol.rtol,
                               atol=tol.atol)


@pytest.mark.spec("decoder_forward", tier="P")
@given(data=st.data())
def test_decoder_matches_torch(backend, dtype, data):
    t = pytest.importorskip("torch")
    tokens, p, cfg = _decoder_case(data, dtype)
    with _dask_index_collision(backend):
        got = _np(backend, spec.decoder_forward(to_backend(backend, tokens), _on(backend, p),
                                                **_dec_opts(cfg)))
    want = _torch_decoder(t, tokens, p, cfg)
    # tolerance: the chain's depth; the residual stream's size grows with depth (LayerNorm
    # keeps each sublayer's input O(1)), so errors are relative to the largest logit
    tol = _chain_tol(dtype, 4 * len(p["blocks"]) + 2, np.max(np.abs(want)))
    np.testing.assert_allclose(got, want, rtol=tol.rtol, atol=tol.atol)


# --- generation -----------------------------------------------------------------------------
@contextlib.contextmanager
def _dask_index_collision(backend):
    """Discard the rare draw that trips a dask defect in integer-array indexing (used by the
    embedding lookup): dask's slice_with_int_dask_array_on_axis builds an internal array of
    the table's block offsets with from_array(offsets, chunks=1), whose deterministic name
    collides with a token array holding exactly those offsets in one-element chunks (e.g.
    tokens [0, 3] against a 5-row table in blocks (3, 2)), and it then fails with "Chunks do
    not add up to shape". Not a property of the equations; reported with this chapter."""
    try:
        yield
    except ValueError as exc:
        if backend.id == "dask" and "Chunks do not add up to shape" in str(exc):
            reject()
        raise


@pytest.mark.spec("generate", tier="P")
@given(data=st.data())
def test_generate_with_cache_equals_recomputing(backend, dtype, data):
    """Greedy generation through the KV cache picks the tokens that recomputing
    decoder_forward on the whole prefix picks, with logits that agree; stops comparing at a
    near-tie, where rounding may legitimately choose either token. Value checks are off: this
    is about the numbers, the checks are tier E's, and on lazy backends (Dask) each check
    evaluates the whole growing graph again."""
    tokens, p, cfg = _decoder_case(data, dtype, t_max=3)
    steps = data.draw(st.integers(0, 4), label="steps")
    pb = _on(backend, p)
    with _dask_index_collision(backend), spec.value_checks(False):
        _generate_and_recompute(backend, tokens, pb, p, cfg, steps, dtype)


def _generate_and_recompute(backend, tokens, pb, p, cfg, steps, dtype):
    out, logits = spec.generate(pb, to_backend(backend, tokens), steps, sampler=spec.greedy,
                                return_logits=True, **_dec_opts(cfg))
    out, logits = backend.to_numpy(out), _np(backend, logits)
    assert out.shape == (*tokens.shape[:-1], tokens.shape[-1] + steps)
    assert logits.shape == (*tokens.shape[:-1], steps, p["embedding"].shape[0])
    np.testing.assert_array_equal(out[..., : tokens.shape[-1]], tokens)
    seq = tokens
    for s in range(steps):
        full = _np(backend, spec.decoder_forward(to_backend(backend, seq), pb,
                                                 **_dec_opts(cfg)))[..., -1, :]
        tol = _chain_tol(dtype, 4 * len(p["blocks"]) + 2, np.max(np.abs(full)))
        np.testing.assert_allclose(logits[..., s, :], full, rtol=tol.rtol, atol=tol.atol,
                                   err_msg=f"step {s}")
        top2 = np.sort(full, axis=-1)[..., -2:]
        if np.any(top2[..., 1] - top2[..., 0] <= 4 * tol.atol):
            break
        pick = np.argmax(full, axis=-1)
        np.testing.assert_array_equal(out[..., tokens.shape[-1] + s], pick)
        seq = np.concatenate([seq, pick[..., None]], axis=-1)


@pytest.mark.spec("generate", tier="P")
def test_generate_keeps_the_prompt_and_zero_steps(backend, dtype):
    rng = np.random.default_rng(5)
    p = _decoder(rng, 6, 4, 1, 2, 2, 8, "gelu", dtype)
    prompt = np.array([[1, 5, 0], [2, 2, 4]])
    pb = _on(backend, p)
    same = backend.to_numpy(spec.generate(pb, to_backend(backend, prompt), 0, num_heads=2,
                                          sampler=spec.greedy))
    np.testing.assert_array_equal(same, prompt)
    out = backend.to_numpy(spec.generate(pb, to_backend(backend, prompt), 3, num_heads=2,
                                         sampler=spec.greedy))
    np.testing.assert_array_equal(out[:, :3], prompt)
    assert out.shape == (2, 6) and out.dtype == prompt.dtype
    assert np.all((out >= 0) & (out < 6))


# --- parameter count ------------------------------------------------------------------------
@pytest.mark.spec("transformer_parameter_count", tier="P")
def test_parameter_count_gpt3_is_175_billion():
    n = spec.transformer_parameter_count(12288, 96, 50257, max_positions=2048)
    assert abs(n - 175e9) / 175e9 < 0.01, n
    assert 12 * 96 * 12288**2 == 173_946_175_488  # 002 §8.2's 12Ld², the bulk of it
    assert n - 12 * 96 * 12288**2 == 96 * 9 * 12288 + 2 * 12288 + (50257 + 2048) * 12288


@pytest.mark.spec("transformer_parameter_count", tier="P")
@given(layers=st.integers(1, 100), vocab=st.integers(1, 200_000))
def test_parameter_count_tends_to_12_l_d_squared(layers, vocab):
    ratios = [spec.transformer_parameter_count(d, layers, vocab) / (12 * layers * d * d)
              for d in (2**10, 2**14, 2**18, 2**22)]
    assert all(r > 1 for r in ratios)
    assert all(b < a for a, b in itertools.pairwise(ratios))  # decreasing towards 1
    assert ratios[-1] - 1 < 1e-3 + vocab / (12 * layers * 2**22)


@pytest.mark.spec("transformer_parameter_count", tier="P")
@given(data=st.data())
def test_parameter_count_matches_a_built_parameter_set(data):
    cfg = data.draw(_config(even=True), label="config")
    vocab = data.draw(st.integers(2, 9), label="vocab")
    layers = data.draw(st.integers(0, 3), label="layers")
    positions = data.draw(st.integers(0, 16), label="max_positions")
    tied = data.draw(st.booleans(), label="tied")
    p = _decoder(np.random.default_rng(cfg["seed"]), vocab, cfg["d"], layers, cfg["num_heads"],
                 cfg["num_kv_heads"], cfg["d_ff"], cfg["activation"], "float64")
    logits = spec.decoder_forward(np.array([0, vocab - 1]), p, **_dec_opts(cfg))
    assert logits.shape == (2, vocab)  # the parameter set is one the decoder accepts
    built = (p["embedding"].size + p["ln_f_gamma"].size + p["ln_f_beta"].size
             + sum(a.size for block in p["blocks"] for a in block.values()))
    extra = (0 if tied else vocab * cfg["d"]) + positions * cfg["d"]  # untied head, positions
    count = spec.transformer_parameter_count(
        cfg["d"], layers, vocab, d_ff=cfg["d_ff"], num_heads=cfg["num_heads"],
        num_kv_heads=cfg["num_kv_heads"], activation=cfg["activation"],
        max_positions=positions, tied_embeddings=tied)
    assert count == built + extra


# ============================================================================ tier D
def _rng(seed, shape, scale=1.0):
    return np.random.default_rng(seed).normal(0, scale, shape)


def _ffn_relu(x, w1, b1, w2, b2):
    return spec.feed_forward(x, w1, b1, w2, b2, activation="relu")


_D_BLOCK = _block(np.random.default_rng(11), 2, 1, 1, 3, "relu", "float64")


def _block_of_x(x):
    """transformer_block as a function of x, the parameters fixed (moved to x's library)."""
    xp = array_api_compat.array_namespace(x)
    device = array_api_compat.device(x)
    params = {k: xp.asarray(a.tolist(), dtype=x.dtype, device=device)
              for k, a in _D_BLOCK.items()}
    return spec.transformer_block(x, params, num_heads=1, activation="relu")


_D_DECODER = _decoder(np.random.default_rng(12), 3, 2, 0, 1, 1, 2, "relu", "float64")


def _decoder_of_table(table):
    """decoder_forward as a function of the embedding table, which enters twice: as the input
    embedding and as the tied output layer. No blocks (their derivative is the block's own
    tier-D test): embedding + positions → final LayerNorm → logits."""
    xp = array_api_compat.array_namespace(table)
    device = array_api_compat.device(table)

    def move(a):
        return xp.asarray(a.tolist(), dtype=table.dtype, device=device)

    params = {"embedding": table,
              "blocks": [{k: move(a) for k, a in b.items()} for b in _D_DECODER["blocks"]],
              "ln_f_gamma": move(_D_DECODER["ln_f_gamma"]),
              "ln_f_beta": move(_D_DECODER["ln_f_beta"])}
    tokens = xp.asarray([2], dtype=xp.int64, device=device)
    return spec.decoder_forward(tokens, params, num_heads=1, activation="relu")


# name → (function, argument arrays (seeded), argnum). The MLPs use ReLU: the GELU derivative
# lambdified by derivatives.py calls xp.sqrt on the number 2, which torch refuses (a harness
# limit reported with this chapter); GELU's own derivative is checked in §3. The block and the
# decoder are differentiated at T = 1: at T = 2 SymPy spends minutes deciding ReLU's
# Max(z, 0) on the LayerNorm-of-attention expressions; attention's mixing of positions has
# its own tier-D tests (§9: SDPA, multi_head_attention).
DERIVATIVES = {
    "feed_forward/x": (_ffn_relu, [(2, 3), (4, 3), (4,), (3, 4), (3,)], 0),
    "feed_forward/w1": (_ffn_relu, [(2, 3), (4, 3), (4,), (3, 4), (3,)], 1),
    "transformer_block/x": (_block_of_x, [(1, 2)], 0),
    "decoder_forward/embedding": (_decoder_of_table, [(3, 2)], 0),
}


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=pytest.mark.spec(c.split("/")[0], tier="D"), id=c) for c in DERIVATIVES
])
@pytest.mark.parametrize("seed", [0, 1])
def test_derivatives_agree(backend, case, seed):
    fn, shapes, argnum = DERIVATIVES[case]
    args = [_rng(seed + 10 * i, s) for i, s in enumerate(shapes)]
    derivatives.check_agreement(backend, case, fn, args, argnum, seed=seed)

