"""§9 Attention: tiers S, P and D (X, E and R are driven by the records in test_tiers.py).

Tier S runs the spec's own attention code on SymPy expressions and proves the identities
exactly (the softmax max is freed, as in test_probability). Tier P draws shapes and values with
Hypothesis on the backend under test and compares against identities, NumPy recomputations and
PyTorch's own kernels (``scaled_dot_product_attention``, ``multi_head_attention_forward``),
within tolerances derived from the same rounding analysis as the tier-R floors
(conformance/oracles_attention.py). Tier D checks gradients with `derivatives.check_agreement`.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import spec
from conformance import derivatives, oracles_attention, symbolic
from conformance import strategies as cst
from conformance.helpers import to_backend
from conformance.tolerances import values

BUDGET = oracles_attention.ULP_BUDGET


def _np(backend, x):
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def _on(backend, *arrays):
    return [to_backend(backend, a) for a in arrays]


def _eps(dtype):
    return float(np.finfo(dtype).eps)


def _close_attention(got, want, dtype, floor, *, what, computations=2):
    """|got − want| within `computations` × the tier-R budget at the oracle's floor, plus the
    dtype's relative tolerance. The floor carries the scores' conditioning (see
    oracles_attention); two computations (spec and a reference, both rounded) get 2×."""
    budget = BUDGET["scaled_dot_product_attention"][dtype]
    floor = np.maximum(np.broadcast_to(floor, np.shape(want)), np.finfo(dtype).tiny)
    atol = computations * budget * _eps(dtype) * floor  # as ulp_error: ≥ the smallest normal
    err = np.abs(np.asarray(got, dtype=np.float64) - np.asarray(want, dtype=np.float64))
    bound = atol + values(dtype).rtol * np.abs(want)
    assert np.all(err <= bound), (
        f"{what} ({dtype}): worst excess {np.max(err - bound):.3g}, worst error {np.max(err):.3g}")


def _weights_floor(w, q, k, **kwargs):
    return oracles_attention.FLOORS["attention_weights"](np.asarray(w, np.float64), (q, k), kwargs)


def _sdpa_floor(o, q, k, v, **kwargs):
    return oracles_attention.FLOORS["scaled_dot_product_attention"](
        np.asarray(o, np.float64), (q, k, v), kwargs)


def _tril_allowed(q_len, k_len):
    """Bottom-right causal pattern, from NumPy: True where j ≤ i + (k_len − q_len)."""
    return np.tril(np.ones((q_len, k_len), dtype=bool), k=k_len - q_len)


def _textbook_weights(q, k):
    """exp(q_i·k_j/√d)/Σ_j exp(q_i·k_j/√d) from SymPy lists (d = len of a row)."""
    d = len(q[0])
    scores = [[sp.Add(*[qi[c] * kj[c] for c in range(d)]) / sp.sqrt(d) for kj in k] for qi in q]
    return [[sp.exp(s) / sp.Add(*[sp.exp(t) for t in row]) for s in row] for row in scores]


# ============================================================================ tier S
def _mat(x):
    return symbolic.exprs(x).tolist()


@pytest.mark.spec("attention_weights", tier="S")
@pytest.mark.parametrize(("q_len", "k_len", "d_k"), [(1, 2, 1), (2, 3, 1), (2, 2, 4)])
def test_attention_weights_textbook_and_rows_sum_to_one(q_len, k_len, d_k):
    q = symbolic.symbols("q", (q_len, d_k))
    k = symbolic.symbols("k", (k_len, d_k))
    w, _ = symbolic.free_max(symbolic.exprs(spec.attention_weights(q, k)))
    symbolic.assert_equal(w, _textbook_weights(_mat(q), _mat(k)), "softmax(QKᵀ/√d)")
    for i in range(q_len):
        symbolic.assert_equal(sp.Add(*w[i]), 1, f"Σ_j A[{i}, j]")


@pytest.mark.spec("attention_weights", tier="S")
@pytest.mark.parametrize(("q_len", "k_len"), [(3, 3), (2, 4), (1, 3), (3, 2)])
def test_attention_weights_causal_pattern_symbolic(q_len, k_len):
    """Exactly 0 above the bottom-right-aligned diagonal; rows with a key sum to 1, others
    (q_len > k_len: the first rows) are exactly 0."""
    q = symbolic.symbols("q", (q_len, 1))
    k = symbolic.symbols("k", (k_len, 1))
    w, _ = symbolic.free_max(symbolic.exprs(spec.attention_weights(q, k, is_causal=True)))
    allowed = _tril_allowed(q_len, k_len)
    for i in range(q_len):
        for j in range(k_len):
            if not allowed[i, j]:
                assert w[i, j] == 0, f"A[{i}, {j}] = {w[i, j]} should be exactly 0"
        symbolic.assert_equal(sp.Add(*w[i]), 1 if allowed[i].any() else 0, f"Σ_j A[{i}, j]")
    if k_len >= q_len:  # each allowed block is the textbook softmax over the visible keys
        qs, ks = _mat(q), _mat(k)
        for i in range(q_len):
            n = i + k_len - q_len + 1
            symbolic.assert_equal(w[i, :n], _textbook_weights([qs[i]], ks[:n])[0], f"row {i}")


@pytest.mark.spec("attention_weights", tier="S")
def test_attention_weights_fully_masked_row_is_exact_zero():
    xp = symbolic.backend().xp
    q = symbolic.symbols("q", (3, 2))
    k = symbolic.symbols("k", (3, 2))
    mask = xp.asarray([[True, False, True], [False, False, False], [True, True, True]])
    w, _ = symbolic.free_max(symbolic.exprs(spec.attention_weights(q, k, mask=mask, scale=0.5)))
    assert list(w[1]) == [0, 0, 0]
    assert w[0, 1] == 0
    symbolic.assert_equal([sp.Add(*w[0]), sp.Add(*w[2])], [1, 1], "live rows")


@pytest.mark.spec("scaled_dot_product_attention", tier="S")
@pytest.mark.parametrize(("q_len", "k_len", "d_v"), [(1, 2, 1), (2, 3, 2)])
def test_sdpa_is_weighted_sum_of_values(q_len, k_len, d_v):
    q = symbolic.symbols("q", (q_len, 1))
    k = symbolic.symbols("k", (k_len, 1))
    v = symbolic.symbols("v", (k_len, d_v))
    o, _ = symbolic.free_max(symbolic.exprs(spec.scaled_dot_product_attention(q, k, v)))
    w = _textbook_weights(_mat(q), _mat(k))
    vs = _mat(v)
    truth = [[sp.Add(*[w[i][j] * vs[j][c] for j in range(k_len)]) for c in range(d_v)]
             for i in range(q_len)]
    symbolic.assert_equal(o, truth, "Σ_j A_ij v_j")


@pytest.mark.spec("scaled_dot_product_attention", tier="S")
def test_sdpa_permutations_symbolic():
    """Permuting queries permutes the output rows; permuting keys and values jointly changes
    nothing: proven on expressions (the max is the same Max of the same set either way)."""
    xp = symbolic.backend().xp
    q = symbolic.symbols("q", (3, 1))
    k = symbolic.symbols("k", (3, 1))
    v = symbolic.symbols("v", (3, 1))
    perm = xp.asarray([2, 0, 1])
    base, _ = symbolic.free_max(symbolic.exprs(spec.scaled_dot_product_attention(q, k, v)))
    permuted_q = spec.scaled_dot_product_attention(xp.take(q, perm, axis=0), k, v)
    pq, _ = symbolic.free_max(symbolic.exprs(permuted_q))
    symbolic.assert_equal(pq, base[[2, 0, 1]], "queries permuted")
    joint = spec.scaled_dot_product_attention(q, xp.take(k, perm, axis=0),
                                              xp.take(v, perm, axis=0))
    pkv, _ = symbolic.free_max(symbolic.exprs(joint))
    symbolic.assert_equal(pkv, base, "keys and values permuted together")


@pytest.mark.spec("scaled_dot_product_attention", tier="S")
def test_sdpa_causal_output_has_no_future_symbols():
    """Causal output row i is an expression in q_i, k_0…k_i, v_0…v_i only."""
    t = 3
    q = symbolic.symbols("q", (t, 2))
    k = symbolic.symbols("k", (t, 2))
    v = symbolic.symbols("v", (t, 1))
    o = symbolic.exprs(spec.scaled_dot_product_attention(q, k, v, is_causal=True))
    ks, vs = _mat(k), _mat(v)
    for i in range(t):
        free = set().union(*(sp.sympify(e).free_symbols for e in o[i]))
        future = {s for j in range(i + 1, t) for s in (*ks[j], *vs[j])}
        assert not free & future, f"row {i} depends on {free & future}"
        assert set(vs[i]) <= free  # and it does see its own value


@pytest.mark.spec("causal_mask", tier="S")
@pytest.mark.parametrize(("q_len", "k_len"), [(3, 3), (1, 4), (2, 5), (4, 2)])
def test_causal_mask_values_symbolic(q_len, k_len):
    xp = symbolic.backend().xp
    m = symbolic.exprs(spec.causal_mask(q_len, k_len, xp=xp))
    allowed = _tril_allowed(q_len, k_len)
    expected = np.where(allowed, sp.S.Zero, -sp.oo)
    assert m.shape == (q_len, k_len)
    assert all(m[idx] == expected[idx] for idx in np.ndindex(m.shape))
    as_bool = symbolic.exprs(spec.causal_mask(q_len, k_len, xp=xp, dtype=xp.bool))
    assert as_bool.tolist() == allowed.tolist()
    if q_len == 1:
        assert all(e == 0 for e in m.reshape(-1))  # a decoding step sees the whole cache


@pytest.mark.spec("multi_head_attention", tier="S")
def test_mha_single_head_identity_projections_is_sdpa():
    xp = symbolic.backend().xp
    x = symbolic.symbols("x", (2, 2))
    eye = xp.eye(2, dtype=xp.float64)
    mha, _ = symbolic.free_max(symbolic.exprs(
        spec.multi_head_attention(x, x, eye, eye, eye, eye, num_heads=1)))
    sdpa, _ = symbolic.free_max(symbolic.exprs(spec.scaled_dot_product_attention(x, x, x)))
    symbolic.assert_equal(mha, sdpa, "MHA(h=1, W=I) = SDPA")


@pytest.mark.spec("multi_head_attention", tier="S")
def test_mha_grouped_query_equals_repeated_kv_heads_symbolic():
    """num_kv_heads = 1 (multi-query) with two query heads equals full MHA whose two K/V heads
    both carry the one K/V head's weights."""
    xp = symbolic.backend().xp
    x = symbolic.symbols("x", (2, 2))
    w_q = symbolic.symbols("wq", (2, 2))
    w_k = symbolic.symbols("wk", (1, 2))
    w_v = symbolic.symbols("wv", (1, 2))
    w_o = symbolic.symbols("wo", (2, 2))
    gqa = spec.multi_head_attention(x, x, w_q, w_k, w_v, w_o, num_heads=2, num_kv_heads=1)
    full = spec.multi_head_attention(x, x, w_q, xp.concat([w_k, w_k]), xp.concat([w_v, w_v]),
                                     w_o, num_heads=2)
    a, _ = symbolic.free_max(symbolic.exprs(gqa))
    b, _ = symbolic.free_max(symbolic.exprs(full))
    symbolic.assert_equal(a, b, "GQA = MHA with repeated K/V heads")


@pytest.mark.spec("kv_cache_attention", tier="S")
@pytest.mark.parametrize(("t", "d"), [(2, 1), (3, 1), (2, 2)])
def test_kv_cache_identity_symbolic(t, d):
    """Decoding token by token from an empty cache gives, row for row, the expressions of
    causal attention over the whole sequence."""
    xp = symbolic.backend().xp
    q = symbolic.symbols("q", (1, t, d))
    k = symbolic.symbols("k", (1, t, d))
    v = symbolic.symbols("v", (1, t, d))
    cache_k = xp.zeros((1, 0, d), dtype=xp.float64)
    cache_v = xp.zeros((1, 0, d), dtype=xp.float64)
    steps = []
    for i in range(t):
        out, cache_k, cache_v = spec.kv_cache_attention(q[:, i:i + 1, :], k[:, i:i + 1, :],
                                                        v[:, i:i + 1, :], cache_k, cache_v)
        steps.append(symbolic.exprs(out)[0, 0])
    full = symbolic.exprs(spec.scaled_dot_product_attention(q, k, v, is_causal=True))[0]
    stepped, _ = symbolic.free_max(np.array(steps, dtype=object))
    whole, _ = symbolic.free_max(full)
    symbolic.assert_equal(stepped, whole, "token-by-token with the cache = full causal")
    assert symbolic.exprs(cache_k).tolist() == symbolic.exprs(k).tolist()


# ============================================================================ tier P
@st.composite
def _qkv(draw, dtype, *, max_len=5, same_len=False, bound=2.0):
    h = draw(st.integers(1, 3), label="heads")
    q_len = draw(st.integers(1, max_len), label="q_len")
    k_len = q_len if same_len else draw(st.integers(1, max_len), label="k_len")
    d_k = draw(st.integers(1, 6), label="d_k")
    d_v = draw(st.integers(1, 4), label="d_v")
    q = draw(cst.arrays(dtype, (h, q_len, d_k), min_value=-bound, max_value=bound), label="q")
    k = draw(cst.arrays(dtype, (h, k_len, d_k), min_value=-bound, max_value=bound), label="k")
    v = draw(cst.arrays(dtype, (h, k_len, d_v), min_value=-bound, max_value=bound), label="v")
    return q, k, v


def _bool_mask(data, q_len, k_len, label="mask"):
    return data.draw(st.lists(st.booleans(), min_size=q_len * k_len, max_size=q_len * k_len)
                     .map(lambda b: np.array(b, dtype=bool).reshape(q_len, k_len)), label=label)


@pytest.mark.spec("attention_weights", tier="P")
@given(data=st.data())
def test_attention_weights_rows_causal_and_masked(backend, dtype, data):
    q, k, _ = data.draw(_qkv(dtype), label="qkv")
    q_len, k_len = q.shape[-2], k.shape[-2]
    mask = _bool_mask(data, q_len, k_len)
    causal = data.draw(st.booleans(), label="is_causal")
    qb, kb, mb = _on(backend, q, k, mask)
    w = _np(backend, spec.attention_weights(qb, kb, mask=mb, is_causal=causal))
    allowed = mask & (_tril_allowed(q_len, k_len) if causal else True)
    assert w.shape == (q.shape[0], q_len, k_len)
    assert np.all(w[..., ~allowed] == 0), "a masked key got weight"
    assert np.all(w >= 0) and not np.any(np.isnan(w))
    live = allowed.any(axis=-1)
    sums = np.sum(w, axis=-1)
    np.testing.assert_allclose(sums[..., live], 1.0, rtol=0, atol=k_len * 4 * _eps(dtype))
    assert np.all(sums[..., ~live] == 0), "a fully masked row is not all zero"


@pytest.mark.spec("attention_weights", "scaled_dot_product_attention", tier="P")
@given(data=st.data())
def test_boolean_and_additive_masks_agree(backend, dtype, data):
    q, k, v = data.draw(_qkv(dtype), label="qkv")
    mask = _bool_mask(data, q.shape[-2], k.shape[-2])
    additive = np.where(mask, 0.0, -np.inf).astype(dtype)
    qb, kb, vb, mb, ab = _on(backend, q, k, v, mask, additive)
    for fn, args in ((spec.attention_weights, (qb, kb)),
                     (spec.scaled_dot_product_attention, (qb, kb, vb))):
        with_bool = _np(backend, fn(*args, mask=mb))
        with_add = _np(backend, fn(*args, mask=ab))
        np.testing.assert_allclose(with_add, with_bool, rtol=values(dtype).rtol,
                                   atol=values(dtype).atol, err_msg=fn.__name__)
        assert not np.any(np.isnan(with_add))


@pytest.mark.spec("attention_weights", "scaled_dot_product_attention", tier="P")
def test_fully_masked_rows_are_zero_not_nan(backend, dtype):
    rng = np.random.default_rng(3)
    q, k, v = (rng.normal(size=s).astype(dtype) for s in ((2, 3, 4), (2, 5, 4), (2, 5, 3)))
    dead = np.ones((3, 5), dtype=bool)
    dead[1] = False
    for mask in (dead, np.where(dead, 0.0, -np.inf).astype(dtype)):
        qb, kb, vb, mb = _on(backend, q, k, v, mask)
        w = _np(backend, spec.attention_weights(qb, kb, mask=mb))
        o = _np(backend, spec.scaled_dot_product_attention(qb, kb, vb, mask=mb))
        assert np.all(w[:, 1] == 0) and np.all(o[:, 1] == 0)
        assert np.all(np.isfinite(o)) and np.all(np.abs(np.sum(w[:, [0, 2]], -1) - 1) < 1e-5)
    # causal with q_len > k_len: the first q_len − k_len queries see no key at all
    o = _np(backend, spec.scaled_dot_product_attention(*_on(backend, q, k[:, :2], v[:, :2]),
                                                       is_causal=True))
    assert np.all(o[:, 0] == 0) and np.all(np.isfinite(o))


@pytest.mark.spec("scaled_dot_product_attention", tier="P")
@given(data=st.data())
def test_sdpa_permutations(backend, dtype, data):
    q, k, v = data.draw(_qkv(dtype), label="qkv")
    pq = data.draw(st.permutations(range(q.shape[-2])), label="query perm")
    pk = data.draw(st.permutations(range(k.shape[-2])), label="key perm")
    o = _np(backend, spec.scaled_dot_product_attention(*_on(backend, q, k, v)))
    floor = _sdpa_floor(o, q, k, v)
    o_q = _np(backend, spec.scaled_dot_product_attention(*_on(backend, q[:, pq], k, v)))
    _close_attention(o_q, o[:, pq], dtype, floor[:, pq] if floor.shape[1] > 1 else floor,
                     what="queries permuted")
    o_kv = _np(backend, spec.scaled_dot_product_attention(*_on(backend, q, k[:, pk], v[:, pk])))
    _close_attention(o_kv, o, dtype, floor, what="keys and values permuted jointly")


@pytest.mark.spec("scaled_dot_product_attention", tier="P")
@given(data=st.data())
def test_sdpa_output_in_convex_hull_of_values(backend, dtype, data):
    q, k, v = data.draw(_qkv(dtype, bound=5.0), label="qkv")
    causal = data.draw(st.booleans(), label="is_causal")
    o = _np(backend, spec.scaled_dot_product_attention(*_on(backend, q, k, v), is_causal=causal))
    allowed = _tril_allowed(q.shape[-2], k.shape[-2]) if causal else np.ones(
        (q.shape[-2], k.shape[-2]), dtype=bool)
    v64 = v.astype(np.float64)
    slack = 4 * k.shape[-2] * _eps(dtype) * np.max(np.abs(v64))  # rounding of Σ_j w_j v_j
    for i in range(q.shape[-2]):
        seen = v64[:, allowed[i]]  # (h, visible keys, d_v)
        if seen.shape[1] == 0:
            assert np.all(o[:, i] == 0)
            continue
        assert np.all(o[:, i] >= np.min(seen, axis=1) - slack)
        assert np.all(o[:, i] <= np.max(seen, axis=1) + slack)


@pytest.mark.spec("scaled_dot_product_attention", tier="P")
@given(data=st.data())
def test_sdpa_causal_output_ignores_the_future(backend, dtype, data):
    q, k, v = data.draw(_qkv(dtype, same_len=True), label="qkv")
    t = q.shape[-2]
    i = data.draw(st.integers(0, t - 1), label="i")
    noise = data.draw(cst.arrays(dtype, (3, *q.shape[:-2], t, 8), min_value=-50, max_value=50),
                      label="noise")
    q2, k2, v2 = q.copy(), k.copy(), v.copy()
    q2[..., i + 1:, :] = noise[0, ..., i + 1:, : q.shape[-1]]
    k2[..., i + 1:, :] = noise[1, ..., i + 1:, : k.shape[-1]]
    v2[..., i + 1:, :] = noise[2, ..., i + 1:, : v.shape[-1]]
    o = _np(backend, spec.scaled_dot_product_attention(*_on(backend, q, k, v), is_causal=True))
    o2 = _np(backend, spec.scaled_dot_product_attention(*_on(backend, q2, k2, v2),
                                                        is_causal=True))
    floor = _sdpa_floor(o, q, k, v)
    _close_attention(o2[..., : i + 1, :], o[..., : i + 1, :], dtype, floor[..., : i + 1, :]
                     if floor.shape[-2] > 1 else floor, what="rows ≤ i after changing the future")


torch = None


def _torch():
    global torch
    if torch is None:
        torch = pytest.importorskip("torch")
    return torch


def _lower_right(q_len, k_len):
    """torch's bottom-right causal bias. For q_len > k_len it warns that the first rows will
    be NaN; torch 2.13 in fact returns zeros there (checked by the tests that use it)."""
    from torch.nn.attention.bias import causal_lower_right

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Lower right causal bias", UserWarning)
        return causal_lower_right(q_len, k_len)


def _t(x):
    return _torch().from_numpy(np.ascontiguousarray(x, dtype=np.float64))


@pytest.mark.spec("scaled_dot_product_attention", tier="P")
@given(data=st.data())
def test_sdpa_matches_torch(backend, dtype, data):
    """torch.nn.functional.scaled_dot_product_attention (float64, CPU) on the same inputs:
    no mask, boolean mask (True = attend in both), additive mask, is_causal with q_len = k_len,
    and, for k_len > q_len, torch's causal_lower_right bias, which is the spec's is_causal."""
    t = _torch()
    F = t.nn.functional
    q, k, v = data.draw(_qkv(dtype), label="qkv")
    q_len, k_len = q.shape[-2], k.shape[-2]
    kind = data.draw(st.sampled_from(["none", "bool", "additive", "causal"]), label="kind")
    mask = _bool_mask(data, q_len, k_len)
    kwargs, t_kwargs = {}, {}
    if kind == "bool":
        kwargs["mask"], t_kwargs["attn_mask"] = mask, t.from_numpy(mask)
    elif kind == "additive":
        add = np.where(mask, 0.0, -np.inf).astype(dtype)
        kwargs["mask"], t_kwargs["attn_mask"] = add, _t(add)
    elif kind == "causal":
        kwargs["is_causal"] = True
        if q_len == k_len:
            t_kwargs["is_causal"] = True
        else:
            t_kwargs["attn_mask"] = _lower_right(q_len, k_len)
    got = _np(backend, spec.scaled_dot_product_attention(
        *_on(backend, q, k, v), **{n: to_backend(backend, a) for n, a in kwargs.items()}))
    want = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), **t_kwargs).numpy()
    _close_attention(got, want, dtype, _sdpa_floor(want, q, k, v, **kwargs), what=kind)


@pytest.mark.spec("scaled_dot_product_attention", tier="P")
def test_sdpa_fully_masked_row_and_alignment_against_torch(backend, dtype):
    """torch 2.13 returns zeros for a fully masked row (boolean and −∞ additive), as the spec;
    for k_len > q_len torch's is_causal=True aligns top-left and differs from the spec's
    bottom-right causal attention, which equals torch's causal_lower_right."""
    t = _torch()
    F = t.nn.functional
    rng = np.random.default_rng(7)
    q, k, v = (rng.normal(size=s) for s in ((2, 2, 4), (2, 5, 4), (2, 5, 3)))
    mask = np.ones((2, 5), dtype=bool)
    mask[0] = False
    qb, kb, vb, mb = _on(backend, q.astype(dtype), k.astype(dtype), v.astype(dtype), mask)
    got = _np(backend, spec.scaled_dot_product_attention(qb, kb, vb, mask=mb))
    want = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), attn_mask=t.from_numpy(mask))
    assert np.all(want.numpy()[:, 0] == 0), "torch no longer returns zeros for a masked row"
    assert np.all(got[:, 0] == 0)
    ours = _np(backend, spec.scaled_dot_product_attention(qb, kb, vb, is_causal=True))
    top_left = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), is_causal=True).numpy()
    assert np.max(np.abs(ours - top_left)) > 1e-3, "bottom-right and top-left should differ"
    lower_right = F.scaled_dot_product_attention(_t(q), _t(k), _t(v),
                                                 attn_mask=_lower_right(2, 5)).numpy()
    _close_attention(ours, lower_right, dtype, _sdpa_floor(lower_right, q, k, v),
                     what="causal_lower_right")


@pytest.mark.spec("causal_mask", tier="P")
@given(q_len=st.integers(0, 6), k_len=st.integers(0, 6))
def test_causal_mask_values_on_backend(backend, dtype, q_len, k_len):
    xp = backend.xp
    m = spec.causal_mask(q_len, k_len, xp=xp, dtype=backend.dtype(dtype), device=backend.device)
    assert m.dtype == backend.dtype(dtype)
    host = backend.to_numpy(m)
    allowed = _tril_allowed(q_len, k_len)
    np.testing.assert_array_equal(host, np.where(allowed, 0.0, -np.inf))
    b = backend.to_numpy(spec.causal_mask(q_len, k_len, xp=xp, dtype=xp.bool,
                                          device=backend.device))
    np.testing.assert_array_equal(b, allowed)
    if q_len == 1:
        assert np.all(host == 0), "one decoding step must see the whole cache"


@pytest.mark.spec("causal_mask", tier="P")
@given(data=st.data())
def test_causal_mask_equals_is_causal(backend, dtype, data):
    q, k, v = data.draw(_qkv(dtype), label="qkv")
    m = spec.causal_mask(q.shape[-2], k.shape[-2], xp=backend.xp, dtype=backend.dtype(dtype),
                         device=backend.device)
    qb, kb, vb = _on(backend, q, k, v)
    with_mask = _np(backend, spec.scaled_dot_product_attention(qb, kb, vb, mask=m))
    with_flag = _np(backend, spec.scaled_dot_product_attention(qb, kb, vb, is_causal=True))
    np.testing.assert_allclose(with_mask, with_flag, rtol=values(dtype).rtol,
                               atol=values(dtype).atol)


# --- multi-head attention -----------------------------------------------------------------
@st.composite
def _mha_case(draw, dtype, *, gqa=True):
    num_kv = draw(st.integers(1, 2), label="num_kv_heads")
    groups = draw(st.integers(1, 2), label="groups") if gqa else 1
    num_heads = num_kv * groups
    d_head = draw(st.integers(1, 3), label="d_head")
    d_model = draw(st.integers(1, 6), label="d_model")
    batch = draw(st.sampled_from([(), (2,)]), label="batch")
    q_len = draw(st.integers(1, 4), label="q_len")
    k_len = draw(st.integers(1, 4), label="k_len")

    def arr(shape, label, bound=1.0):
        return draw(cst.arrays(dtype, shape, min_value=-bound, max_value=bound), label=label)

    x_q = arr((*batch, q_len, d_model), "x_q", 2.0)
    x_kv = arr((*batch, k_len, d_model), "x_kv", 2.0)
    w_q = arr((num_heads * d_head, d_model), "w_q")
    w_k = arr((num_kv * d_head, d_model), "w_k")
    w_v = arr((num_kv * d_head, d_model), "w_v")
    w_o = arr((d_model, num_heads * d_head), "w_o")
    return (x_q, x_kv, w_q, w_k, w_v, w_o), num_heads, num_kv


def _mha_scale(args):
    """An error scale for MHA outputs: |W_o|·|V-projection| bounds, in float64, and never
    below the dtype's smallest normal (results under it are rounded in subnormal steps)."""
    x_q, x_kv, w_q, w_k, w_v, w_o = (np.abs(a.astype(np.float64)) for a in args)
    proj = np.max(x_kv @ w_v.T, axis=-2, keepdims=True)  # ≥ every |value| coordinate
    q_size = np.max(x_q @ w_q.T) * np.max(x_kv @ w_k.T) * max(1, w_q.shape[0])
    d = x_q.shape[-1]
    scale = (np.max(proj) * np.max(np.sum(w_o, axis=-1))
             * ((2 * d + w_q.shape[0] + 4) * max(1.0, q_size) + 2 * x_kv.shape[-2] + d))
    return max(scale, float(np.finfo(args[0].dtype).tiny))


def _torch_mha(args, num_heads, *, bool_mask=None, is_causal=False):
    """torch's multi_head_attention_forward on mapped weights ((L, N, E) layout, float64):
    in_proj_weight = concat(w_q, w_k, w_v), out_proj_weight = w_o, no biases. torch's boolean
    attn_mask is True where attention is NOT allowed: the spec's mask is inverted for it."""
    t = _torch()
    x_q, x_kv, w_q, w_k, w_v, w_o = args
    batched = x_q.ndim == 3
    q = _t(x_q if batched else x_q[None])
    kv = _t(x_kv if batched else x_kv[None])
    mask = None
    if bool_mask is not None:
        mask = t.from_numpy(~bool_mask)
    elif is_causal:
        mask = t.from_numpy(~_tril_allowed(x_q.shape[-2], x_kv.shape[-2]))
    out, _ = t.nn.functional.multi_head_attention_forward(
        q.transpose(0, 1), kv.transpose(0, 1), kv.transpose(0, 1), x_q.shape[-1], num_heads,
        _t(np.concatenate([w_q, w_k, w_v])), None, None, None, False, 0.0, _t(w_o), None,
        training=False, need_weights=False, attn_mask=mask)
    out = out.transpose(0, 1).numpy()
    return out if batched else out[0]


@pytest.mark.spec("multi_head_attention", tier="P")
@given(data=st.data())
def test_mha_matches_torch_multi_head_attention_forward(backend, dtype, data):
    d_head = data.draw(st.integers(1, 3), label="d_head")
    num_heads = data.draw(st.integers(1, 3), label="num_heads")
    d_model = num_heads * d_head  # torch's MHA projects d_model → d_model
    batch = data.draw(st.sampled_from([(), (2,)]), label="batch")
    q_len = data.draw(st.integers(1, 4), label="q_len")
    k_len = data.draw(st.integers(1, 4), label="k_len")
    shapes = [(*batch, q_len, d_model), (*batch, k_len, d_model)] + [(d_model, d_model)] * 4
    args = [data.draw(cst.arrays(dtype, s, min_value=-1.0, max_value=1.0), label=f"a{i}")
            for i, s in enumerate(shapes)]
    kind = data.draw(st.sampled_from(["none", "bool", "causal"]), label="kind")
    mask = _bool_mask(data, q_len, k_len) if kind == "bool" else None
    kwargs = {"num_heads": num_heads}
    if kind == "bool":
        kwargs["mask"] = to_backend(backend, mask)
    if kind == "causal":
        kwargs["is_causal"] = True
    got = _np(backend, spec.multi_head_attention(*_on(backend, *args), **kwargs))
    if kind == "bool":  # a fully masked query: zero output (torch 2.13 agrees, no NaN)
        assert np.all(got[..., ~mask.any(axis=-1), :] == 0)
    want = _torch_mha(args, num_heads, bool_mask=mask, is_causal=kind == "causal")
    scale = _mha_scale(args)
    np.testing.assert_allclose(got, want, rtol=values(dtype).rtol,
                               atol=2 * BUDGET["scaled_dot_product_attention"][dtype]
                               * _eps(dtype) * scale)


@pytest.mark.spec("multi_head_attention", tier="P")
@given(data=st.data())
def test_mha_single_head_identity_is_sdpa_and_shape(backend, dtype, data):
    q, k, _ = data.draw(_qkv(dtype), label="qkv")
    x_q, x_kv = q[0], k[0]
    d = x_q.shape[-1]
    eye = np.eye(d, dtype=dtype)
    causal = data.draw(st.booleans(), label="is_causal")
    got = _np(backend, spec.multi_head_attention(*_on(backend, x_q, x_kv, eye, eye, eye, eye),
                                                 num_heads=1, is_causal=causal))
    assert got.shape == x_q.shape
    want = _np(backend, spec.scaled_dot_product_attention(*_on(backend, x_q, x_kv, x_kv),
                                                          is_causal=causal))
    np.testing.assert_allclose(got, want, rtol=values(dtype).rtol, atol=values(dtype).atol)


@pytest.mark.spec("multi_head_attention", tier="P")
@given(data=st.data())
def test_mha_grouped_query_equals_repeated_kv_heads(backend, dtype, data):
    args, num_heads, num_kv = data.draw(_mha_case(dtype), label="case")
    x_q, x_kv, w_q, w_k, w_v, w_o = args
    groups = num_heads // num_kv
    d_head = w_k.shape[0] // num_kv
    # K/V head j's rows, repeated for each of the `groups` query heads it serves
    rep = np.concatenate([np.tile(w[j * d_head:(j + 1) * d_head], (groups, 1))
                          for w in (w_k,) for j in range(num_kv)])
    rep_v = np.concatenate([np.tile(w_v[j * d_head:(j + 1) * d_head], (groups, 1))
                            for j in range(num_kv)])
    gqa = _np(backend, spec.multi_head_attention(*_on(backend, *args), num_heads=num_heads,
                                                 num_kv_heads=num_kv))
    full = _np(backend, spec.multi_head_attention(*_on(backend, x_q, x_kv, w_q, rep, rep_v, w_o),
                                                  num_heads=num_heads))
    assert gqa.shape == (*x_q.shape[:-1], w_o.shape[0])
    np.testing.assert_allclose(gqa, full, rtol=values(dtype).rtol, atol=values(dtype).atol)


@pytest.mark.spec("multi_head_attention", tier="P")
@given(data=st.data())
def test_mha_causal_output_ignores_later_tokens(backend, dtype, data):
    args, num_heads, num_kv = data.draw(_mha_case(dtype), label="case")
    x = args[0]
    t = x.shape[-2]
    i = data.draw(st.integers(0, t - 1), label="i")
    x2 = x.copy()
    x2[..., i + 1:, :] = data.draw(cst.arrays(dtype, x[..., i + 1:, :].shape, min_value=-9,
                                              max_value=9), label="future")
    run = [spec.multi_head_attention(*_on(backend, xx, xx, *args[2:]), num_heads=num_heads,
                                     num_kv_heads=num_kv, is_causal=True) for xx in (x, x2)]
    a, b = (_np(backend, r)[..., : i + 1, :] for r in run)
    np.testing.assert_allclose(b, a, rtol=values(dtype).rtol,
                               atol=2 * BUDGET["scaled_dot_product_attention"][dtype]
                               * _eps(dtype) * _mha_scale((x, x, *args[2:])))


# --- KV cache -----------------------------------------------------------------------------
@pytest.mark.spec("kv_cache_attention", tier="P")
@given(data=st.data())
def test_kv_cache_identity(backend, dtype, data):
    """Prefill a random-length prompt, then decode the rest one token at a time: the outputs,
    stacked, equal causal attention over the whole sequence; the caches are the full K and V."""
    q, k, v = data.draw(_qkv(dtype, max_len=6, same_len=True), label="qkv")
    t = q.shape[-2]
    prefill = data.draw(st.integers(0, t - 1), label="prefill")
    qb, kb, vb = _on(backend, q, k, v)
    xp = backend.xp
    cache_k = xp.zeros((q.shape[0], 0, k.shape[-1]), dtype=kb.dtype, device=backend.device)
    cache_v = xp.zeros((q.shape[0], 0, v.shape[-1]), dtype=vb.dtype, device=backend.device)
    outs = []
    bounds = ([0, prefill] if prefill else [0]) + list(range(prefill + 1, t + 1))
    for lo, hi in itertools.pairwise(bounds):
        out, cache_k, cache_v = spec.kv_cache_attention(
            qb[:, lo:hi, :], kb[:, lo:hi, :], vb[:, lo:hi, :], cache_k, cache_v)
        assert tuple(cache_k.shape) == (q.shape[0], hi, k.shape[-1])
        outs.append(_np(backend, out))
    stepped = np.concatenate(outs, axis=-2)
    full = _np(backend, spec.scaled_dot_product_attention(qb, kb, vb, is_causal=True))
    _close_attention(stepped, full, dtype, _sdpa_floor(full, q, k, v),
                     what="token by token vs whole sequence")
    np.testing.assert_array_equal(backend.to_numpy(cache_k), k)
    np.testing.assert_array_equal(backend.to_numpy(cache_v), v)


@pytest.mark.spec("kv_cache_attention", tier="P")
@given(data=st.data())
def test_kv_cache_appends_and_empty_cache_is_causal_sdpa(backend, dtype, data):
    q, k, v = data.draw(_qkv(dtype, same_len=True), label="qkv")
    past = data.draw(cst.arrays(dtype, (2, *k.shape[:-2], 3, max(k.shape[-1], v.shape[-1]))),
                     label="past")
    ck, cv = past[0, ..., : k.shape[-1]], past[1, ..., : v.shape[-1]]
    _, nk, nv = spec.kv_cache_attention(*_on(backend, q, k, v, ck, cv))
    np.testing.assert_array_equal(backend.to_numpy(nk), np.concatenate([ck, k], axis=-2))
    np.testing.assert_array_equal(backend.to_numpy(nv), np.concatenate([cv, v], axis=-2))
    empty_k, empty_v = ck[..., :0, :], cv[..., :0, :]
    out0, _, _ = spec.kv_cache_attention(*_on(backend, q, k, v, empty_k, empty_v))
    want = _np(backend, spec.scaled_dot_product_attention(*_on(backend, q, k, v), is_causal=True))
    np.testing.assert_allclose(_np(backend, out0), want, rtol=values(dtype).rtol,
                               atol=values(dtype).atol)


@pytest.mark.spec("kv_cache_attention", tier="P")
@given(data=st.data())
def test_kv_cache_grouped_query(backend, dtype, data):
    q, k, v = data.draw(_qkv(dtype, same_len=True), label="qkv")
    groups = data.draw(st.integers(2, 3), label="groups")
    qg = data.draw(cst.arrays(dtype, (q.shape[0] * groups, *q.shape[1:]), min_value=-2,
                              max_value=2), label="q grouped")
    ck, cv = k[..., :1, :], v[..., :1, :]
    out, nk, _ = spec.kv_cache_attention(*_on(backend, qg, k, v, ck, cv))
    assert tuple(nk.shape) == (k.shape[0], k.shape[1] + 1, k.shape[2])  # only the K/V heads
    rep = [np.repeat(a, groups, axis=0) for a in (k, v, ck, cv)]
    want, _, _ = spec.kv_cache_attention(*_on(backend, qg, *rep))
    np.testing.assert_allclose(_np(backend, out), _np(backend, want), rtol=values(dtype).rtol,
                               atol=values(dtype).atol)


# --- cost -----------------------------------------------------------------------------------
@pytest.mark.spec("attention_cost", tier="P")
@given(s=st.integers(0, 4096), d_head=st.integers(1, 256), h=st.integers(1, 16))
def test_attention_cost_counts_the_two_matmuls(s, d_head, h):
    d = h * d_head
    cost = spec.attention_cost(s, d, num_heads=h)
    # per head: QKᵀ is (s × d_head)(d_head × s), AV is (s × s)(s × d_head): 2mnp FLOPs each
    per_head = 2 * s * d_head * s + 2 * s * s * d_head
    assert cost == {"flops": h * per_head, "memory": h * s * s}
    assert spec.attention_cost(2 * s, d, num_heads=h)["flops"] == 4 * cost["flops"]
    assert spec.attention_cost(2 * s, d, num_heads=h)["memory"] == 4 * cost["memory"]
    assert spec.attention_cost(s, 2 * d, num_heads=h)["flops"] == 2 * cost["flops"]


@pytest.mark.spec("attention_cost", tier="P")
def test_attention_cost_examples():
    assert spec.attention_cost(1024, 768) == {"flops": 4 * 1024**2 * 768, "memory": 1024**2}
    gpt3 = spec.attention_cost(2048, 12288, num_heads=96)
    assert gpt3["flops"] == 206_158_430_208 and gpt3["memory"] == 96 * 2048**2


# ============================================================================ tier D
def _rng(seed, shape, scale=1.0):
    return np.random.default_rng(seed).normal(0, scale, shape)


def _sdpa_causal(q, k, v):
    return spec.scaled_dot_product_attention(q, k, v, is_causal=True)


def _weights_causal(q, k):
    return spec.attention_weights(q, k, is_causal=True)


def _mha_gqa(x_q, x_kv, w_q, w_k, w_v, w_o):
    return spec.multi_head_attention(x_q, x_kv, w_q, w_k, w_v, w_o, num_heads=2, num_kv_heads=1,
                                     is_causal=True)


# name → (function, argument shapes, argnum)
DERIVATIVES = {
    "attention_weights/q": (spec.attention_weights, [(2, 3), (3, 3)], 0),
    "attention_weights/k causal": (_weights_causal, [(3, 2), (3, 2)], 1),
    "scaled_dot_product_attention/q": (spec.scaled_dot_product_attention,
                                       [(2, 2), (3, 2), (3, 2)], 0),
    "scaled_dot_product_attention/k": (spec.scaled_dot_product_attention,
                                       [(2, 2), (3, 2), (3, 2)], 1),
    "scaled_dot_product_attention/v": (spec.scaled_dot_product_attention,
                                       [(2, 2), (3, 2), (3, 2)], 2),
    "scaled_dot_product_attention/k causal": (_sdpa_causal, [(3, 2), (3, 2), (3, 1)], 1),
    "multi_head_attention/x_q": (_mha_gqa, [(2, 2), (2, 2), (2, 2), (1, 2), (1, 2), (2, 2)], 0),
    "multi_head_attention/w_k": (_mha_gqa, [(2, 2), (2, 2), (2, 2), (1, 2), (1, 2), (2, 2)], 3),
}


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=pytest.mark.spec(c.split("/")[0], tier="D"), id=c) for c in DERIVATIVES
])
@pytest.mark.parametrize("seed", [0, 1])
def test_derivatives_agree(backend, case, seed):
    fn, shapes, argnum = DERIVATIVES[case]
    args = [_rng(seed + 10 * i, s) for i, s in enumerate(shapes)]
    derivatives.check_agreement(backend, case, fn, args, argnum, seed=seed)

