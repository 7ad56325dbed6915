"""§8 Embeddings and positions: tier S, and tier X of the encoding with the backend's namespace.

Tier S runs the spec's own code on SymPy symbols. It proves embedding = one_hot @ E, the
one-hot rows and weight tying. For the sinusoidal encoding (d = 2 and 4) it proves the
textbook formula and PE(p + k) = M_k PE(p). For RoPE it proves relative invariance,
⟨rope(q, m), rope(k, n)⟩ = f(m − n), with symbolic positions for d = 2 and 4 and both
layouts. It also proves that RoPE preserves norms, that position 0 is the identity, and
that king − man + woman → queen.

Tier P is conformance/properties/embeddings.py (run by test_properties.py), tier D the
derivative cases of conformance/records/embeddings.py (run by test_derivatives.py).

`sinusoidal_positions` takes no array, so the generic tiers in test_tiers.py call it with
the host's namespace. The X test here calls it with the backend's namespace, dtype and
device (its accuracy against mpmath, likewise, is a property).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import backends
import spec
from conformance import symbolic
from conformance.helpers import assert_close, host


# ============================================================================ tier S
@pytest.mark.spec("embedding", tier="S", identity="is_one_hot_matmul")
def test_embedding_is_one_hot_matmul_symbolic():
    xp = symbolic.backend().xp
    table = symbolic.symbols("E", (4, 3))
    tokens = symbolic.ints([[2, 0], [3, 3]])
    got = symbolic.exprs(spec.embedding(table, tokens))
    via_one_hot = symbolic.exprs(xp.matmul(spec.one_hot(tokens, 4), table))
    symbolic.assert_equal(got, via_one_hot, "E[t] = one_hot(t) @ E")
    rows = symbolic.exprs(table)
    symbolic.assert_equal(got, np.stack([rows[[2, 0]], rows[[3, 3]]]), "E[t]")


@pytest.mark.spec("one_hot", tier="S", identity="rows_sum_to_one")
def test_one_hot_rows_sum_to_one_symbolic():
    labels = symbolic.ints([[0, 2], [1, 1]])
    oh = symbolic.exprs(spec.one_hot(labels, 3))
    assert oh.shape == (2, 2, 3)
    for idx in np.ndindex(2, 2):
        symbolic.assert_equal(sp.Add(*oh[idx]), 1, "Σ one_hot")
        assert sorted(oh[idx]) == [0, 0, 1]
    assert oh[0, 1, 2] == 1 and oh[1, 0, 1] == 1


@pytest.mark.spec("tied_logits", tier="S", identity="is_dot_with_rows")
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


@pytest.mark.spec("sinusoidal_positions", tier="S",
                  identities=("is_textbook", "relative_offset_linear"))
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


@pytest.mark.spec("rope", tier="S", identity="relative_invariance")
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


@pytest.mark.spec("rope", tier="S",
                  identities=("norm_preserving", "position_zero_identity"))
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


@pytest.mark.spec("analogy", tier="S", identity="king_queen")
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


def _namespace_of(backend, dtype):
    """The backend's namespace, dtype object and device for sinusoidal_positions."""
    return {"xp": backend.xp, "dtype": backend.dtype(dtype), "device": backend.device}


# ============================================================================ tier X
@pytest.mark.spec("sinusoidal_positions", tier="X", identity="cross_backend")
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
    got = spec.sinusoidal_positions(n, dim, base=base, **_namespace_of(backend, dtype))
    want = spec.sinusoidal_positions(n, dim, base=base, **_namespace_of(reference, dtype))
    assert got.dtype == backend.dtype(dtype)
    assert tuple(got.shape) == (n, dim)
    assert_close(backend, got, reference.to_numpy(want), dtype, what="sinusoidal_positions")


# ============================================================================ tier P
# sinusoidal_positions takes no array: its checks that are not properties of an
# implementation (the default namespace) or that need a dtype its record cannot declare
@pytest.mark.spec("sinusoidal_positions", tier="P", identity="default_namespace")
def test_sinusoidal_defaults_to_numpy():
    """Issue 16: `sinusoidal_positions(50, 16)` asked for xp=; without it, NumPy."""
    import array_api_compat.numpy as np_xp

    got = spec.sinusoidal_positions(50, 16)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == (50, 16)
    np.testing.assert_array_equal(got, spec.sinusoidal_positions(50, 16, xp=np_xp))
    half = spec.sinusoidal_positions(np.int64(5), np.int32(4), dtype=np.float16)
    assert half.dtype == np.float16
    with pytest.raises(TypeError, match="xp must be an array namespace"):
        spec.sinusoidal_positions(4, 8, xp="numpy")


@pytest.mark.spec("sinusoidal_positions", tier="P", identity="low_precision")
@pytest.mark.parametrize("low", ["float16", "bfloat16"])
@pytest.mark.parametrize(("n", "dim", "base"), [(10001, 4, 10000.0), (300, 6, 100.0)])
def test_sinusoidal_low_precision(backend, low, n, dim, base):
    """dtype=float16/bfloat16 with the backend's namespace and device: float32's positions,
    angles, sines and cosines, rounded once. Against mpmath: within float32's budget at the
    angle's scale max(1, |pθ|) plus half an ulp of the dtype at the value.

    Not generic tier X/R: the encoding's dtype is an option, which the generic low-precision
    tiers (moving arrays only) cannot set, so the record declares float32 and float64 only."""
    if low not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no {low}")
    from conformance import oracles, records
    from conformance.precision import finfo
    from conformance.properties.embeddings import _sinusoidal_oracle

    out = spec.sinusoidal_positions(n, dim, base=base, **_namespace_of(backend, low))
    assert out.dtype == backend.dtype(low)
    got = np.asarray(backend.to_numpy(out), dtype=np.float64)
    want = _sinusoidal_oracle(n, dim, base)
    floor = oracles.scale_floor("sinusoidal_positions", want, (n, dim), {"base": base})
    u32, u = float(finfo("float32").eps) / 2, float(finfo(low).eps) / 2
    tol = (records.ulp_budget("sinusoidal_positions", "float32") * 2 * u32 * floor
           + u * np.abs(want) + float(finfo(low).tiny))  # (XLA flushes subnormals)
    worst = np.max(np.abs(got - want) / tol)
    assert worst <= 1, f"{worst:.2f} of the tolerance"
