"""§9 Attention: tier S (P, D, X, E and R are generic, driven by the records and properties).

Tier S runs the spec's own attention code on SymPy expressions and proves the identities
exactly (the softmax max is freed, as in test_probability). Tier P is
conformance/properties/attention.py (run by test_properties.py: identities, NumPy
recomputations and PyTorch's own kernels), tier D the derivative cases of
conformance/records/attention.py (run by test_derivatives.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import spec
from conformance import symbolic


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


@pytest.mark.spec("attention_weights", tier="S", identities=("textbook", "rows_sum_to_one"))
@pytest.mark.parametrize(("q_len", "k_len", "d_k"), [(1, 2, 1), (2, 3, 1), (2, 2, 4)])
def test_attention_weights_textbook_and_rows_sum_to_one(q_len, k_len, d_k):
    q = symbolic.symbols("q", (q_len, d_k))
    k = symbolic.symbols("k", (k_len, d_k))
    w, _ = symbolic.free_max(symbolic.exprs(spec.attention_weights(q, k)))
    symbolic.assert_equal(w, _textbook_weights(_mat(q), _mat(k)), "softmax(QKᵀ/√d)")
    for i in range(q_len):
        symbolic.assert_equal(sp.Add(*w[i]), 1, f"Σ_j A[{i}, j]")


@pytest.mark.spec("attention_weights", tier="S", identity="causal_lower_triangular")
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


@pytest.mark.spec("attention_weights", tier="S", identity="fully_masked_row_zero")
def test_attention_weights_fully_masked_row_is_exact_zero():
    xp = symbolic.backend().xp
    q = symbolic.symbols("q", (3, 2))
    k = symbolic.symbols("k", (3, 2))
    mask = xp.asarray([[True, False, True], [False, False, False], [True, True, True]])
    w, _ = symbolic.free_max(symbolic.exprs(spec.attention_weights(q, k, mask=mask, scale=0.5)))
    assert list(w[1]) == [0, 0, 0]
    assert w[0, 1] == 0
    symbolic.assert_equal([sp.Add(*w[0]), sp.Add(*w[2])], [1, 1], "live rows")


@pytest.mark.spec("scaled_dot_product_attention", tier="S", identity="textbook")
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


@pytest.mark.spec("scaled_dot_product_attention", tier="S",
                  identities=("query_permutation_equivariant", "key_value_permutation_invariant"))
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


@pytest.mark.spec("scaled_dot_product_attention", tier="S", identity="causal_no_future")
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


@pytest.mark.spec("causal_mask", tier="S", identities=("values", "decoding_step"))
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


@pytest.mark.spec("multi_head_attention", tier="S", identity="single_head_identity_is_sdpa")
def test_mha_single_head_identity_projections_is_sdpa():
    xp = symbolic.backend().xp
    x = symbolic.symbols("x", (2, 2))
    eye = xp.eye(2, dtype=xp.float64)
    mha, _ = symbolic.free_max(symbolic.exprs(
        spec.multi_head_attention(x, x, eye, eye, eye, eye, num_heads=1)))
    sdpa, _ = symbolic.free_max(symbolic.exprs(spec.scaled_dot_product_attention(x, x, x)))
    symbolic.assert_equal(mha, sdpa, "MHA(h=1, W=I) = SDPA")


@pytest.mark.spec("multi_head_attention", tier="S", identity="gqa_equals_repeated_mha")
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


@pytest.mark.spec("kv_cache_attention", tier="S", identity="kv_cache_identity")
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
