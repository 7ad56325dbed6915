"""§8 Embeddings and positions: tiers S, P and D, plus backend-aware X and R for the encoding.

Tier S runs the spec's own code on SymPy symbols. It proves embedding = one_hot @ E, the
one-hot rows and weight tying. For the sinusoidal encoding (d = 2 and 4) it proves the
textbook formula and PE(p + k) = M_k PE(p). For RoPE it proves relative invariance,
⟨rope(q, m), rope(k, n)⟩ = f(m − n), with symbolic positions for d = 2 and 4 and both
layouts. It also proves that RoPE preserves norms, that position 0 is the identity, and
that king − man + woman → queen.

Tier P uses Hypothesis on the backend under test. It checks RoPE against two independent
references written here: NumPy complex numbers for the interleaved layout (RoFormer, LLaMA)
and explicit rotation matrices for the half layout (GPT-NeoX, Hugging Face). The sinusoidal
M_k is solved by least squares from several positions.

`sinusoidal_positions` takes no array, so the generic tiers in test_tiers.py call it with
the host's namespace. The X and R tests here call it with the backend's namespace, dtype
and device.

The float tolerances are the R budgets of conformance/oracles_embeddings.py applied at that
module's scales. A float angle p·θ is only known to u·|pθ|, so the rotation errors are
judged at max(1, |pθ|).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import backends
import spec
from conformance import derivatives, oracles, symbolic
from conformance import strategies as cst
from conformance.helpers import assert_close, host, to_backend
from conformance.tolerances import ULP_BUDGET

CATALOGUE = spec.catalogue()


def _np(backend, x):
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def _on(backend, *host_arrays):
    return [to_backend(backend, a) for a in host_arrays]


def _u(dtype) -> float:
    """The unit roundoff of `dtype` (half the machine epsilon)."""
    return float(np.finfo(dtype).eps) / 2


def _ftz(dtype) -> float:
    """The smallest normal: a result below it may be flushed to zero (XLA on the CPU flushes
    subnormals, https://github.com/jax-ml/jax/issues/16200)."""
    return float(np.finfo(dtype).tiny)


def _ulp_tol(name, dtype, scale, factor=1.0):
    """|error| allowed at `scale`: the equation's R budget (one ulp ≤ 2u·scale), × `factor`."""
    return factor * ULP_BUDGET[name][dtype] * 2 * _u(dtype) * scale + _ftz(dtype)


def _theta(dim, base):
    """base^(−2i/d) in float64, by NumPy (the tests' own frequencies)."""
    return np.power(float(base), -2.0 * np.arange(dim // 2) / dim)


# ============================================================================ tier S
@pytest.mark.spec("embedding", tier="S")
def test_embedding_is_one_hot_matmul_symbolic():
    xp = symbolic.backend().xp
    table = symbolic.symbols("E", (4, 3))
    tokens = symbolic.ints([[2, 0], [3, 3]])
    got = symbolic.exprs(spec.embedding(table, tokens))
    via_one_hot = symbolic.exprs(xp.matmul(spec.one_hot(tokens, 4), table))
    symbolic.assert_equal(got, via_one_hot, "E[t] = one_hot(t) @ E")
    rows = symbolic.exprs(table)
    symbolic.assert_equal(got, np.stack([rows[[2, 0]], rows[[3, 3]]]), "E[t]")


@pytest.mark.spec("one_hot", tier="S")
def test_one_hot_rows_sum_to_one_symbolic():
    labels = symbolic.ints([[0, 2], [1, 1]])
    oh = symbolic.exprs(spec.one_hot(labels, 3))
    assert oh.shape == (2, 2, 3)
    for idx in np.ndindex(2, 2):
        symbolic.assert_equal(sp.Add(*oh[idx]), 1, "Σ one_hot")
        assert sorted(oh[idx]) == [0, 0, 1]
    assert oh[0, 1, 2] == 1 and oh[1, 0, 1] == 1


@pytest.mark.spec("tied_logits", tier="S")
def test_tied_logits_are_dot_products_with_rows_symbolic():
    h, table = symbolic.symbols("h", (2, 3)), symbolic.symbols("E", (4, 3))
    got = symbolic.exprs(spec.tied_logits(h, table))
    hs, es = symbolic.exprs(h), symbolic.exprs(table)
    want = [[sp.Add(*[hs[b, j] * es[v, j] for j in range(3)]) for v in range(4)]
            for b in range(2)]
    symbolic.assert_equal(got, np.array(want, dtype=object), "h Eᵀ")


def _rotation(k, thetas):
    """M_k: the block-diagonal rotation with PE(p + k) = M_k PE(p), from the sum formulas."""
    return sp.diag(*[sp.Matrix([[sp.cos(k * t), sp.sin(k * t)], [-sp.sin(k * t), sp.cos(k * t)]])
                     for t in thetas])


def _trig_zero(e) -> bool:
    return sp.simplify(sp.expand(sp.expand_trig(sp.sympify(e).rewrite(sp.exp)))) == 0


@pytest.mark.spec("sinusoidal_positions", tier="S")
@pytest.mark.parametrize(("dim", "base", "thetas"), [
    (2, 10000.0, [sp.Integer(1)]),
    (4, 4.0, [sp.Integer(1), sp.Rational(1, 2)]),  # base 4: θ₁ = 4^(−1/2) = 1/2 exactly
])
def test_sinusoidal_textbook_and_relative_offset_symbolic(dim, base, thetas):
    xp = symbolic.backend().xp
    pe = symbolic.exprs(spec.sinusoidal_positions(6, dim, base=base, xp=xp))
    textbook = [[f(p * t) for t in thetas for f in (sp.sin, sp.cos)] for p in range(6)]
    symbolic.assert_equal(pe, np.array(textbook, dtype=object), "sin/cos(p·base^(−2i/d))")
    for k in (1, 2, 3):
        m_k = _rotation(k, thetas)  # depends on k only
        for p in range(6 - k):
            moved = m_k * sp.Matrix(pe[p]) - sp.Matrix(pe[p + k])
            assert all(_trig_zero(e) for e in moved), f"PE({p}+{k}) ≠ M_{k} PE({p})"
    wrong = _rotation(1, thetas).T * sp.Matrix(pe[1]) - sp.Matrix(pe[2])  # the inverse rotation
    assert max(abs(float(sp.N(e))) for e in wrong) > 0.1


def _rope_dot(layout, q, k, pm, pn):
    """⟨rope(q, pm), rope(k, pn)⟩ from one call on the two tokens."""
    xp = symbolic.backend().xp
    x = xp.asarray([q, k], dtype=xp.float64)
    y = symbolic.exprs(spec.rope(x, xp.asarray([pm, pn], dtype=xp.float64), layout=layout))
    return sp.Add(*[a * b for a, b in zip(y[0], y[1])])


@pytest.mark.spec("rope", tier="S")
@pytest.mark.parametrize("layout", ["interleaved", "half"])
@pytest.mark.parametrize("d", [2, 4])
def test_rope_relative_invariance_symbolic(d, layout):
    """With symbolic positions: the score is unchanged by m, n → m + c, n + c, and equals
    the score at (m − n, 0), so it depends on m − n only."""
    q = symbolic.flat(symbolic.symbols("q", (d,)))
    k = symbolic.flat(symbolic.symbols("k", (d,)))
    m, n, c = sp.symbols("m n c", real=True)
    score = _rope_dot(layout, q, k, m, n)
    assert score.has(m) and score.has(n)  # the positions do enter the score
    symbolic.assert_equal(sp.expand_trig(_rope_dot(layout, q, k, m + c, n + c) - score), 0,
                          "shifting both positions")
    symbolic.assert_equal(sp.expand_trig(_rope_dot(layout, q, k, m - n, 0) - score), 0,
                          "a function of m − n")


@pytest.mark.spec("rope", tier="S")
@pytest.mark.parametrize("layout", ["interleaved", "half"])
@pytest.mark.parametrize("d", [2, 4])
def test_rope_norm_preserving_and_identity_at_zero_symbolic(d, layout):
    xp = symbolic.backend().xp
    x = symbolic.symbols("x", (2, d))
    m = sp.Symbol("m", real=True)
    y = symbolic.exprs(spec.rope(x, xp.asarray([m, 0], dtype=xp.float64), layout=layout))
    xs = symbolic.exprs(x)
    symbolic.assert_equal(sp.trigsimp(sp.Add(*[e**2 for e in y[0]])),
                          sp.Add(*[e**2 for e in xs[0]]), "‖rope(x, m)‖² = ‖x‖²")
    symbolic.assert_equal(y[1], xs[1], "rope(x, 0) = x")


@pytest.mark.spec("analogy", tier="S")
def test_analogy_king_queen_symbolic():
    """003's example on a constructed table with exact entries: king − man + woman → queen."""
    xp = symbolic.backend().xp
    # royalty, maleness, femaleness, fruit (×10, so every entry is an exact integer)
    rows = [[9, 8, 1, 0], [9, 1, 8, 0], [1, 9, 1, 0], [1, 1, 9, 0], [0, 1, 1, 9], [7, 8, 1, 1],
            [7, 1, 8, 1]]
    table = xp.asarray(rows, dtype=xp.float64)
    king, queen, man, woman, prince, princess = 0, 1, 2, 3, 5, 6
    got = spec.analogy(table, symbolic.ints(man), symbolic.ints(king), symbolic.ints(woman))
    assert int(symbolic.exprs(got)[()]) == queen
    batch = spec.analogy(table, symbolic.ints([man, woman]), symbolic.ints([prince, queen]),
                         symbolic.ints([woman, man]))
    assert [int(e) for e in symbolic.exprs(batch)] == [princess, king]


# ============================================================================ tier P
@st.composite
def _table_and_tokens(draw, dtype):
    vocab = draw(st.integers(1, 12), label="V")
    d = draw(st.integers(1, 6), label="d")
    table = draw(cst.arrays(dtype, (vocab, d)), label="table")
    shape = draw(cst.shapes(min_dims=0, max_dims=2, min_side=0, max_side=5), label="t.shape")
    tokens = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, vocab - 1)), label="t")
    return table, tokens


@pytest.mark.spec("embedding", tier="P")
@given(data=st.data())
def test_embedding_is_row_lookup_and_one_hot_matmul(backend, dtype, data):
    table, tokens = data.draw(_table_and_tokens(dtype))
    # a documented backend limit (the record's Limit, with its upstream link)
    limited = CATALOGUE["embedding"].limit(backend.id, "P", "no tokens") is not None
    assume(not (tokens.size == 0 and limited))
    tb, ib = _on(backend, table, tokens)
    got = backend.to_numpy(spec.embedding(tb, ib))
    assert got.shape == (*tokens.shape, table.shape[1])
    np.testing.assert_array_equal(got, table[tokens])  # a copy: bitwise equal
    oh = spec.one_hot(ib, table.shape[0], dtype=backend.dtype(dtype))
    via = backend.xp.matmul(oh, tb)  # a sum of one product and zeros: exact for finite E
    np.testing.assert_array_equal(backend.to_numpy(via), table[tokens])


@pytest.mark.spec("one_hot", tier="P")
@given(data=st.data())
def test_one_hot_rows_sum_to_one_and_invert(backend, data):
    k = data.draw(st.integers(1, 20), label="K")
    labels = data.draw(hnp.arrays(np.int64, cst.shapes(min_dims=0, max_dims=3, max_side=4),
                                  elements=st.integers(0, k - 1)), label="labels")
    xp = backend.xp
    lb = to_backend(backend, labels)
    out = spec.one_hot(lb, k)
    default = xp.__array_namespace_info__().default_dtypes(device=backend.device)
    assert out.dtype == default["real floating"]  # the documented default
    oh = backend.to_numpy(out)
    assert oh.shape == (*labels.shape, k)
    assert set(np.unique(oh)) <= {0.0, 1.0}
    np.testing.assert_array_equal(np.sum(oh, axis=-1), np.ones(labels.shape))
    np.testing.assert_array_equal(np.argmax(oh, axis=-1), labels)
    as_int = spec.one_hot(lb, k, dtype=xp.int64)
    assert as_int.dtype == xp.int64
    np.testing.assert_array_equal(backend.to_numpy(as_int), oh.astype(np.int64))
    as_bool = backend.to_numpy(spec.one_hot(lb, k, dtype=xp.bool))
    np.testing.assert_array_equal(as_bool, oh == 1)


@pytest.mark.spec("tied_logits", tier="P")
@given(data=st.data())
def test_tied_logits_shape_and_values(backend, dtype, data):
    vocab, d = data.draw(st.integers(1, 10), label="V"), data.draw(st.integers(1, 8), label="d")
    lead = data.draw(cst.shapes(min_dims=0, max_dims=2, max_side=4), label="lead")
    h = data.draw(cst.arrays(dtype, (*lead, d)), label="h")
    table = data.draw(cst.arrays(dtype, (vocab, d)), label="table")
    got = _np(backend, spec.tied_logits(*_on(backend, h, table)))
    assert got.shape == (*lead, vocab)
    h64, e64 = h.astype(np.float64), table.astype(np.float64)
    want = np.einsum("...j,vj->...v", h64, e64)
    scale = np.einsum("...j,vj->...v", np.abs(h64), np.abs(e64))
    assert np.all(np.abs(got - want) <= _ulp_tol("tied_logits", dtype, scale))


def _reference_dtype(backend, dtype):
    """The backend's dtype object and device for sinusoidal_positions."""
    return {"xp": backend.xp, "dtype": backend.dtype(dtype), "device": backend.device}


@pytest.mark.spec("sinusoidal_positions", tier="P")
@given(n=st.integers(1, 64), half=st.integers(1, 8),
       base=st.sampled_from([10000.0, 100.0, 2.0]))
def test_sinusoidal_bounded_and_unit_pairs(backend, dtype, n, half, base):
    pe = _np(backend, spec.sinusoidal_positions(n, 2 * half, base=base,
                                                **_reference_dtype(backend, dtype)))
    assert pe.shape == (n, 2 * half)
    assert np.all(np.abs(pe) <= 1)
    np.testing.assert_array_equal(pe[0], np.tile([0.0, 1.0], half))  # sin 0, cos 0
    radius = pe[:, 0::2] ** 2 + pe[:, 1::2] ** 2
    np.testing.assert_allclose(radius, 1.0, rtol=0, atol=8 * 2 * _u(dtype))


@pytest.mark.spec("sinusoidal_positions", tier="P")
@given(half=st.integers(1, 3), base=st.floats(2.0, 20.0), k=st.integers(1, 40))
def test_sinusoidal_one_rotation_for_every_position(backend, dtype, half, base, k):
    """Solve PE(p + k) = M PE(p) for M by least squares on positions 0…31, again on 32…63:
    the same M, the block rotation of the sum formulas, and it maps every p of 64…127."""
    dim = 2 * half
    pe = _np(backend, spec.sinusoidal_positions(128 + k, dim, base=base,
                                                **_reference_dtype(backend, dtype)))
    err = _ulp_tol("sinusoidal_positions", dtype, 128 + k)  # |PE error| ≤ budget at |pθ|
    solved = []
    for rows in (np.arange(0, 32), np.arange(32, 64)):
        a = pe[rows]
        cond = np.linalg.cond(a)
        assume(cond < 1e4)  # least squares amplifies the data's error by cond(A)
        m_t, *_ = np.linalg.lstsq(a, pe[rows + k], rcond=None)
        solved.append((m_t.T, 4 * cond * np.sqrt(dim) * err))
    (m1, tol1), (m2, tol2) = solved
    np.testing.assert_allclose(m1, m2, rtol=0, atol=tol1 + tol2, err_msg="M_k depends on p")
    theta = _theta(dim, base)
    closed = np.zeros((dim, dim))
    for i, t in enumerate(theta):
        c, s = np.cos(k * t), np.sin(k * t)
        closed[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[c, s], [-s, c]]
    np.testing.assert_allclose(m1, closed, rtol=0, atol=tol1, err_msg="M_k is not the rotation")
    later = np.arange(64, 128)
    np.testing.assert_allclose(pe[later] @ closed.T, pe[later + k], rtol=0, atol=4 * err)


@pytest.mark.spec("sinusoidal_positions", tier="X")
@pytest.mark.parametrize(("n", "dim", "base"), [(6, 8, 10000.0), (2049, 6, 10000.0),
                                                (300, 4, 100.0)])
def test_sinusoidal_cross_backend(backend, dtype, n, dim, base):
    """The backend's namespace, dtype and device against NumPy (NumPy against
    array-api-strict), as test_tiers.py does for equations that take arrays."""
    if backend.id == "numpy":
        try:
            reference = backends.get("array_api_strict")
        except backends.BackendUnavailable as exc:
            pytest.skip(f"tier X on numpy compares with array_api_strict: {exc}")
    else:
        reference = host()
    got = spec.sinusoidal_positions(n, dim, base=base, **_reference_dtype(backend, dtype))
    want = spec.sinusoidal_positions(n, dim, base=base, **_reference_dtype(reference, dtype))
    assert got.dtype == backend.dtype(dtype)
    assert tuple(got.shape) == (n, dim)
    assert_close(backend, got, reference.to_numpy(want), dtype, what="sinusoidal_positions")


@functools.cache
def _sinusoidal_oracle(n, dim, base):
    return oracles.ORACLES["sinusoidal_positions"](n, dim, base=base)


def _check_sinusoidal_accuracy(backend, dtype, n, dim, base):
    got = backend.to_numpy(spec.sinusoidal_positions(n, dim, base=base,
                                                     **_reference_dtype(backend, dtype)))
    want = _sinusoidal_oracle(n, dim, base)
    floor = oracles.scale_floor("sinusoidal_positions", want, (n, dim), {"base": base})
    assert got.shape == want.shape == (n, dim)
    err = oracles.ulp_error(got, want, np.dtype(dtype), floor=floor)
    worst = float(np.max(err)) if err.size else 0.0
    assert worst <= ULP_BUDGET["sinusoidal_positions"][dtype], f"{worst:.1f} ulp"


# The accuracy against mpmath is a tier-P test here, not the generic tier R: see the record.
@pytest.mark.spec("sinusoidal_positions", tier="P")
@pytest.mark.parametrize(("n", "dim", "base"), [(10001, 4, 10000.0), (300, 6, 100.0)])
def test_sinusoidal_accuracy_to_position_1e4(backend, dtype, n, dim, base):
    """Positions to 1e4: within budget of mpmath at the scale max(1, |pθ|) of the float angle."""
    _check_sinusoidal_accuracy(backend, dtype, n, dim, base)


@pytest.mark.spec("sinusoidal_positions", tier="P")
@given(n=st.integers(0, 40), half=st.integers(1, 5),
       base=st.sampled_from([10000.0, 500000.0, 100.0, 10.0, 1.5]))
def test_sinusoidal_accuracy(backend, dtype, n, half, base):
    _check_sinusoidal_accuracy(backend, dtype, n, 2 * half, base)


# --- rope -------------------------------------------------------------------------------------
def _positions(draw, dtype, count, *, bound):
    if draw(st.booleans(), label="integer positions"):
        return draw(hnp.arrays(np.int64, (count,), elements=st.integers(0, bound)), label="pos")
    return draw(cst.arrays(dtype, (count,), min_value=-bound, max_value=bound), label="pos")


def _rope_tol(dtype, x, positions, *, factor=1.0):
    """Elementwise bound of a rope output: budget at (|x_a| + |x_b|)·max(1, |p|·θ₀), θ₀ = 1;
    the +1 covers the rounding of a float position to the dtype."""
    g = np.maximum(1.0, np.abs(np.asarray(positions, dtype=np.float64)))[:, None]
    pair = np.abs(np.asarray(x, dtype=np.float64))
    size = np.max(pair, axis=-1, keepdims=True) * 2 * g  # ≥ |x_a| + |x_b| for every pair
    return factor * (ULP_BUDGET["rope"][dtype] + 1) * 2 * _u(dtype) * size + _ftz(dtype)


@pytest.mark.spec("rope", tier="P")
@given(data=st.data())
def test_rope_relative_invariance(backend, dtype, data):
    d = 2 * data.draw(st.integers(1, 8), label="d/2")
    layout = data.draw(st.sampled_from(["interleaved", "half"]), label="layout")
    base = data.draw(st.sampled_from([10000.0, 500000.0, 100.0]), label="base")
    q = data.draw(cst.arrays(dtype, (d,), min_value=-3, max_value=3), label="q")
    k = data.draw(cst.arrays(dtype, (d,), min_value=-3, max_value=3), label="k")
    if data.draw(st.booleans(), label="integer positions"):
        m, n, c = (data.draw(st.integers(0, 1000), label=s) for s in ("m", "n", "c"))
    else:  # float positions (rounded to the dtype inside rope: within the tolerance below)
        m, n, c = (data.draw(st.floats(-500, 500), label=s) for s in ("m", "n", "c"))
    x = np.stack([q, k])

    def score(pm, pn):
        y = _np(backend, spec.rope(*_on(backend, x, np.array([pm, pn])), base=base,
                                   layout=layout))
        return float(y[0] @ y[1])

    s = score(m, n)
    # each output is within (budget + 1)·2u·g·(|x_a| + |x_b|) (+1: a float position's own
    # rounding), so ‖δy‖₁ ≤ (budget + 1)·2u·g·2‖x‖₁ while ‖y‖_∞ ≤ ‖x‖₁; a score is then off by
    # ≤ (4(budget + 1) + d/2)·2u·g·‖q‖₁‖k‖₁, and two scores are compared
    g = max(1.0, *(abs(p) for p in (m, n, m + c, n + c, m - n)))
    tol = (8 * (ULP_BUDGET["rope"][dtype] + 1) + d) * 2 * _u(dtype) * g * np.sum(
        np.abs(q.astype(np.float64))) * np.sum(np.abs(k.astype(np.float64)))
    tol += 2 * d * _ftz(dtype)
    assert abs(score(m + c, n + c) - s) <= tol, "shifting both positions"
    assert abs(score(m - n, 0) - s) <= tol, "a function of m − n"


@pytest.mark.spec("rope", tier="P")
@given(data=st.data())
def test_rope_norm_preserving_and_identity_at_zero(backend, dtype, data):
    seq = data.draw(st.integers(1, 6), label="seq_len")
    d = 2 * data.draw(st.integers(1, 8), label="d/2")
    lead = data.draw(cst.shapes(min_dims=0, max_dims=2, max_side=3), label="batch")
    x = data.draw(cst.arrays(dtype, (*lead, seq, d)), label="x")
    layout = data.draw(st.sampled_from(["interleaved", "half"]), label="layout")
    pos = _positions(data.draw, dtype, seq, bound=5000)
    y = _np(backend, spec.rope(*_on(backend, x, pos), layout=layout))
    x64 = x.astype(np.float64)
    norm_tol = np.sqrt(d) * np.max(_rope_tol(dtype, x64, pos), axis=-1)
    np.testing.assert_array_less(np.abs(np.linalg.norm(y, axis=-1) - np.linalg.norm(x64, axis=-1)),
                                 norm_tol)
    zero = backend.to_numpy(spec.rope(*_on(backend, x, np.zeros(seq, dtype=np.int64)),
                                      layout=layout))
    np.testing.assert_array_equal(zero, x)  # cos 0 = 1, sin 0 = 0: exactly the input


def _interleaved_reference(x, positions, base):
    """RoFormer / LLaMA: the pairs (2i, 2i+1) as complex numbers, times e^{i p θᵢ}."""
    z = x[..., 0::2] + 1j * x[..., 1::2]
    rot = z * np.exp(1j * np.asarray(positions, dtype=np.float64)[:, None] * _theta(
        x.shape[-1], base))
    out = np.empty(x.shape)
    out[..., 0::2], out[..., 1::2] = rot.real, rot.imag
    return out


def _half_reference(x, positions, base):
    """GPT-NeoX / Hugging Face: feature i pairs with i + d/2; an explicit d × d rotation per
    position, applied as y = R_p x."""
    d, h = x.shape[-1], x.shape[-1] // 2
    out = np.empty(x.shape)
    for t, p in enumerate(np.asarray(positions, dtype=np.float64)):
        r = np.zeros((d, d))
        for i, th in enumerate(_theta(d, base)):
            c, s = np.cos(p * th), np.sin(p * th)
            r[i, i], r[i, i + h], r[i + h, i], r[i + h, i + h] = c, -s, s, c
        out[..., t, :] = x[..., t, :] @ r.T
    return out


@pytest.mark.spec("rope", tier="P")
@given(data=st.data())
def test_rope_layouts_match_independent_references(backend, dtype, data):
    seq = data.draw(st.integers(1, 5), label="seq_len")
    d = 2 * data.draw(st.integers(1, 8), label="d/2")
    x = data.draw(cst.arrays(dtype, (2, seq, d)), label="x")
    base = data.draw(st.sampled_from([10000.0, 100.0, 1e6]), label="base")
    pos = _positions(data.draw, dtype, seq, bound=3000)
    x64 = x.astype(np.float64)
    xb, pb = _on(backend, x, pos)
    # the float64 references carry ≈ u₆₄·|pθ| themselves: one more budget in float64
    tol = _rope_tol(dtype, x64, pos, factor=2)
    inter = _np(backend, spec.rope(xb, pb, base=base))
    assert np.all(np.abs(inter - _interleaved_reference(x64, pos, base)) <= tol)
    half = _np(backend, spec.rope(xb, pb, base=base, layout="half"))
    assert np.all(np.abs(half - _half_reference(x64, pos, base)) <= tol)
    # one permutation apart: half-layout storage of x, rotated, is the interleaved result
    perm = np.concatenate([np.arange(0, d, 2), np.arange(1, d, 2)])
    moved = _np(backend, spec.rope(to_backend(backend, np.ascontiguousarray(x[..., perm])), pb,
                                   base=base, layout="half"))
    np.testing.assert_allclose(moved, inter[..., perm], rtol=0, atol=np.max(tol))


# --- analogy and retrieval ---------------------------------------------------------------------
def _cosines64(target, rows):
    """cos(target, row) in float64 with cosine_similarity's ε-clamped norms."""
    t = np.asarray(target, dtype=np.float64)
    r = np.asarray(rows, dtype=np.float64)
    tn = max(np.linalg.norm(t), 1e-8)
    rn = np.maximum(np.linalg.norm(r, axis=-1), 1e-8)
    return (r @ t) / (rn * tn)


@st.composite
def _analogy_case(draw, dtype):
    vocab = draw(st.integers(4, 10), label="V")
    d = draw(st.integers(2, 5), label="d")
    table = draw(cst.arrays(dtype, (vocab, d), min_value=-3, max_value=3), label="table")
    a, b, c = (draw(st.integers(0, vocab - 1), label=s) for s in "abc")
    return table, a, b, c


def _brute_force(table, a, b, c):
    """(best index, gap to the runner-up, condition of the target) by float64 brute force."""
    e = table.astype(np.float64)
    target = e[b] - e[a] + e[c]
    cos = _cosines64(target, e)
    cos[[a, b, c]] = -np.inf
    order = np.argsort(-cos, kind="stable")
    best, second = order[0], order[1]
    gap = cos[best] - cos[second] if np.isfinite(cos[second]) else np.inf
    size = np.linalg.norm(e[a]) + np.linalg.norm(e[b]) + np.linalg.norm(e[c])
    cond = size / max(np.linalg.norm(target), 1e-300)
    return int(best), gap, cond


@pytest.mark.spec("analogy", tier="P")
@given(data=st.data())
def test_analogy_is_brute_force_nearest_and_scale_invariant(backend, dtype, data):
    table, a, b, c = data.draw(_analogy_case(dtype))
    # away from cosine_similarity's ε = 1e-8 guard (a clamped norm is not scale invariant)
    table = np.where(np.abs(table) < 1e-3, 0, table).astype(dtype)
    best, gap, cond = _brute_force(table, a, b, c)
    # the float target and cosines are accurate to a few u·cond: only clear winners are judged
    assume(gap > 1e3 * _u(dtype) * cond)
    ids = [np.asarray(i, dtype=np.int64) for i in (a, b, c)]
    got = int(backend.to_numpy(spec.analogy(*_on(backend, table, *ids))))
    assert got == best and got not in (a, b, c)
    scaled = (2.5 * table.astype(np.float64)).astype(dtype)
    assert int(backend.to_numpy(spec.analogy(*_on(backend, scaled, *ids)))) == best


@pytest.mark.spec("analogy", tier="P")
@given(data=st.data())
def test_analogy_ties_go_to_the_lower_index(backend, dtype, data):
    table, a, b, c = data.draw(_analogy_case(dtype))
    # away from cosine_similarity's ε = 1e-8 guard, as in the test above
    table = np.where(np.abs(table) < 1e-3, 0, table).astype(dtype)
    best, gap, cond = _brute_force(table, a, b, c)
    assume(gap > 1e3 * _u(dtype) * cond)
    free = [j for j in range(table.shape[0]) if j not in (a, b, c, best)]
    assume(free)
    twin = data.draw(st.sampled_from(free), label="twin")
    tied = table.copy()
    tied[twin] = tied[best]  # bitwise-equal rows: bitwise-equal cosines
    ids = [np.asarray(i, dtype=np.int64) for i in (a, b, c)]
    got = int(backend.to_numpy(spec.analogy(*_on(backend, tied, *ids))))
    assert got == min(best, twin)


@st.composite
def _retrieval_case(draw, dtype):
    n, d = draw(st.integers(1, 9), label="N"), draw(st.integers(1, 5), label="d")
    docs = draw(cst.arrays(dtype, (n, d), min_value=-3, max_value=3), label="docs")
    copies = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                           max_size=3), label="copies")
    for src, dst in copies:  # duplicated documents: exact ties
        docs[dst] = docs[src]
    lead = draw(cst.shapes(min_dims=0, max_dims=2, max_side=3), label="lead")
    query = draw(cst.arrays(dtype, (*lead, d), min_value=-3, max_value=3), label="query")
    k = draw(st.integers(1, n), label="k")
    return query, docs, k


@pytest.mark.spec("cosine_top_k", tier="P")
@given(data=st.data())
def test_cosine_top_k_is_stable_sort_of_cosine_similarity(backend, dtype, data):
    query, docs, k = data.draw(_retrieval_case(dtype))
    qb, db = _on(backend, query, docs)
    got = backend.to_numpy(spec.cosine_top_k(qb, db, k=k))
    assert got.shape == (*query.shape[:-1], k)
    sims = _np(backend, spec.cosine_similarity(qb[..., None, :], db))
    want = np.argsort(-sims, axis=-1, kind="stable")[..., :k]
    np.testing.assert_array_equal(got, want)
    # decreasing similarity, by an independent float64 computation (up to rounding)
    for idx in np.ndindex(query.shape[:-1]):
        cos = _cosines64(query[idx], docs)[got[idx]]
        assert np.all(np.diff(cos) <= 64 * _u(dtype))


@pytest.mark.spec("cosine_top_k", tier="P")
@given(data=st.data(), j=st.integers(-10, 10))
def test_cosine_top_k_scale_invariant(backend, dtype, data, j):
    """Scaling the query or one document by 2^j (exact in floating point) changes nothing."""
    query, docs, k = data.draw(_retrieval_case(dtype))
    # away from cosine_similarity's ε = 1e-8 guard, below which a norm is clamped (and the
    # cosine no longer scale invariant): every non-zero vector keeps a norm ≥ 1e-3·2^−10
    query, docs = (np.where(np.abs(a) < 1e-3, 0, a).astype(dtype) for a in (query, docs))
    row = data.draw(st.integers(0, docs.shape[0] - 1), label="row")
    base = backend.to_numpy(spec.cosine_top_k(*_on(backend, query, docs), k=k))
    scaled_docs = docs.copy()
    scaled_docs[row] = docs[row] * np.asarray(2.0**j, dtype=dtype)
    scaled_query = query * np.asarray(2.0**j, dtype=dtype)
    np.testing.assert_array_equal(
        backend.to_numpy(spec.cosine_top_k(*_on(backend, scaled_query, scaled_docs), k=k)), base)


# ============================================================================ tier D
def _args(seed, shapes_and_kinds):
    rng = np.random.default_rng(seed)
    out = []
    for kind, shape, high in shapes_and_kinds:
        if kind == "int":
            out.append(rng.integers(0, high, shape))
        else:
            out.append(rng.uniform(-high, high, shape))
    return out


# name → (function, [(kind, shape, bound)], argnums, options)
DERIVATIVES = {
    "embedding": (spec.embedding, [("float", (4, 3), 2.0), ("int", (2, 3), 4)], [0], {}),
    "tied_logits": (spec.tied_logits, [("float", (2, 3), 2.0), ("float", (4, 3), 2.0)],
                    [0, 1], {}),
    "rope": (spec.rope, [("float", (2, 3, 4), 2.0), ("float", (3,), 20.0)], [0, 1],
             {"layout": "half", "base": 100.0}),
}


@pytest.mark.parametrize(
    ("name", "argnum"),
    [pytest.param(n, a, marks=pytest.mark.spec(n, tier="D"), id=f"{n}-arg{a}")
     for n, (_, _, argnums, _) in DERIVATIVES.items() for a in argnums],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_derivatives_agree(backend, name, argnum, seed):
    """SymPy (traced code, lambdified to the backend), autograd and central differences; for
    tied_logits the gradient reaching the table is also gᵀh, in closed form."""
    fn, specs, _, kwargs = DERIVATIVES[name]
    args = _args(seed, specs)
    closed = None
    if name == "tied_logits" and argnum == 1:
        def closed(xp, a, c):
            return xp.matmul(xp.matrix_transpose(c), a[0])  # ∂⟨c, hEᵀ⟩/∂E = cᵀh
    derivatives.check_agreement(backend, name, fn, args, argnum, kwargs, closed, seed=seed)


@pytest.mark.spec("rope", tier="D")
@pytest.mark.parametrize("layout", ["interleaved", "half"])
def test_rope_integer_positions_gradient(backend, layout):
    """With integer positions (held fixed) the derivative with respect to x is Rᵀg."""
    args = _args(3, [("float", (3, 6), 2.0), ("int", (3,), 50)])
    derivatives.check_agreement(backend, "rope", spec.rope, args, 0, {"layout": layout}, seed=3)
