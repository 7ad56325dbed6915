"""Tier P properties of §8 Embeddings and positions, as checks of an implementation.

`impl` is the implementation under test with the spec's signature; other equations a check
needs as references come from `spec`. RoPE is checked against two independent references
written here: NumPy complex numbers for the interleaved layout (RoFormer, LLaMA) and explicit
rotation matrices for the half layout (GPT-NeoX, Hugging Face). The sinusoidal M_k is solved
by least squares from several positions.

`sinusoidal_positions` takes no array, so its checks pass the backend's namespace, dtype and
device (`xp=`, `dtype=`, `device=`); its accuracy against mpmath is a property here, not the
generic tier R (see its record).

The float tolerances are the tier-R budgets (`records.ulp_budget`) applied at the scales of
conformance/oracles_embeddings.py. A float angle p·θ is only known to u·|pθ|, so the rotation
errors are judged at max(1, |pθ|).

Low precision. float16 and bfloat16 are computed in float32 and rounded once: a result is
within its float32 budget plus one rounding of the truth, which the derived budget
(`records.ulp_budget(name, "float16")`, 1 + the float32 budget in the low dtype's ulps) at
the same scale covers, with u the dtype's own unit roundoff. Copies (embedding) and indices
(analogy, cosine_top_k) are exact in every dtype. The checks that hold there opt in with
`dtypes=ALL_DTYPES`; integer-width checks do not depend on the float dtype and run once.
"""

from __future__ import annotations

import functools

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import spec
from conformance import oracles, records
from conformance import strategies as cst
from conformance.precision import finfo
from conformance.properties import ALL_DTYPES, Example, prop
from conformance.settings import LOW_DTYPES


def _u(dtype) -> float:
    """The unit roundoff of `dtype` (half the machine epsilon; bfloat16's too)."""
    return float(finfo(dtype).eps) / 2


def _work(dtype) -> str:
    """The dtype an equation computes in for `dtype` (the dtype policy: float16 and bfloat16
    in float32)."""
    return "float32" if dtype in LOW_DTYPES else dtype


def _ftz(dtype) -> float:
    """The smallest normal: a result below it may be flushed to zero (XLA on the CPU flushes
    subnormals, https://github.com/jax-ml/jax/issues/16200)."""
    return float(finfo(dtype).tiny)


#: every integer width a token id, label or position may come in
_WIDTHS = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")


def _width_max(width: str) -> int:
    return int(np.iinfo(width).max)


def _ulp_tol(name, dtype, scale, factor=1.0):
    """|error| allowed at `scale`: the equation's R budget (one ulp ≤ 2u·scale), × `factor`."""
    return factor * records.ulp_budget(name, dtype) * 2 * _u(dtype) * scale + _ftz(dtype)


def _theta(dim, base):
    """base^(−2i/d) in float64, by NumPy (the tests' own frequencies)."""
    return np.power(float(base), -2.0 * np.arange(dim // 2) / dim)


def _where(t):
    """The backend's namespace, dtype and device, for equations that take no array."""
    return {"xp": t.xp, "dtype": t.backend.dtype(t.dtype), "device": t.backend.device}


# --------------------------------------------------------------------------- lookups
@st.composite
def _table_and_tokens(draw, dtype):
    vocab = draw(st.integers(1, 12), label="V")
    d = draw(st.integers(1, 6), label="d")
    table = draw(cst.arrays(dtype, (vocab, d)), label="table")
    shape = draw(cst.shapes(min_dims=0, max_dims=2, min_side=0, max_side=5), label="t.shape")
    tokens = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, vocab - 1)), label="t")
    return table, tokens


@prop("embedding", "is_one_hot_matmul", dtypes=ALL_DTYPES)
def embedding_is_row_lookup_and_one_hot_matmul(impl, t):
    table, tokens = t.draw(_table_and_tokens(t.dtype), label="table, tokens")
    # a documented backend limit (the record's Limit, with its upstream link)
    limited = spec.catalogue()["embedding"].limit(t.backend.id, "P", "no tokens") is not None
    assume(not (tokens.size == 0 and limited))
    tb, ib = t.on(table, tokens)
    got = t.backend.to_numpy(impl(tb, ib))
    assert got.shape == (*tokens.shape, table.shape[1])
    np.testing.assert_array_equal(got, table[tokens])  # a copy: bitwise equal
    oh = spec.one_hot(ib, table.shape[0], dtype=t.backend.dtype(t.dtype))
    via = t.xp.matmul(oh, tb)  # a sum of one product and zeros: exact for finite E
    np.testing.assert_array_equal(t.backend.to_numpy(via), table[tokens])


# the check does not depend on the dtype under test (labels are integers; the float output
# is the namespace's default dtype): it runs once per backend
@prop("one_hot", "rows_sum_to_one", "argmax_inverts", "dtype", dtypes=("float64",))
def one_hot_rows_sum_to_one_and_invert(impl, t):
    k = t.draw(st.integers(1, 20), label="K")
    labels = t.draw(hnp.arrays(np.int64, cst.shapes(min_dims=0, max_dims=3, max_side=4),
                               elements=st.integers(0, k - 1)), label="labels")
    xp = t.xp
    lb = t.on(labels)
    out = impl(lb, k)
    default = xp.__array_namespace_info__().default_dtypes(device=t.backend.device)
    assert out.dtype == default["real floating"]  # the documented default
    oh = t.backend.to_numpy(out)
    assert oh.shape == (*labels.shape, k)
    assert set(np.unique(oh)) <= {0.0, 1.0}
    np.testing.assert_array_equal(np.sum(oh, axis=-1), np.ones(labels.shape))
    np.testing.assert_array_equal(np.argmax(oh, axis=-1), labels)
    as_int = impl(lb, k, dtype=xp.int64)
    assert as_int.dtype == xp.int64
    np.testing.assert_array_equal(t.backend.to_numpy(as_int), oh.astype(np.int64))
    as_bool = t.backend.to_numpy(impl(lb, k, dtype=xp.bool))
    np.testing.assert_array_equal(as_bool, oh == 1)
    for low in LOW_DTYPES:  # 0 and 1 are exact in float16 and bfloat16 too
        if low in t.backend.float_dtypes:
            out = impl(lb, k, dtype=t.backend.dtype(low))
            assert out.dtype == t.backend.dtype(low)
            np.testing.assert_array_equal(t.np(out), oh)


@prop("tied_logits", "is_dot_with_rows", "shape", dtypes=ALL_DTYPES)
def tied_logits_shape_and_values(impl, t):
    vocab, d = t.draw(st.integers(1, 10), label="V"), t.draw(st.integers(1, 8), label="d")
    lead = t.draw(cst.shapes(min_dims=0, max_dims=2, max_side=4), label="lead")
    h = t.draw(cst.arrays(t.dtype, (*lead, d)), label="h")
    table = t.draw(cst.arrays(t.dtype, (vocab, d)), label="table")
    got = t.np(impl(*t.on(h, table)))
    assert got.shape == (*lead, vocab)
    h64, e64 = h.astype(np.float64), table.astype(np.float64)
    want = np.einsum("...j,vj->...v", h64, e64)
    scale = np.einsum("...j,vj->...v", np.abs(h64), np.abs(e64))
    assert np.all(np.abs(got - want) <= _ulp_tol("tied_logits", t.dtype, scale))


# --------------------------------------------------------------------------- sinusoidal
@prop("sinusoidal_positions", "bounded")
def sinusoidal_bounded_and_unit_pairs(impl, t):
    n = t.draw(st.integers(1, 64), label="n")
    half = t.draw(st.integers(1, 8), label="half")
    base = t.draw(st.sampled_from([10000.0, 100.0, 2.0]), label="base")
    pe = t.np(impl(n, 2 * half, base=base, **_where(t)))
    assert pe.shape == (n, 2 * half)
    assert np.all(np.abs(pe) <= 1)
    np.testing.assert_array_equal(pe[0], np.tile([0.0, 1.0], half))  # sin 0, cos 0
    radius = pe[:, 0::2] ** 2 + pe[:, 1::2] ** 2
    # sin and cos of the same float angle are each within ~1 ulp of a value ≤ 1; the two
    # squares and their sum add three roundings: sin² + cos² is 1 within 8 eps
    np.testing.assert_allclose(radius, 1.0, rtol=0, atol=8 * t.eps)


@prop("sinusoidal_positions", "relative_offset_linear")
def sinusoidal_one_rotation_for_every_position(impl, t):
    """Solve PE(p + k) = M PE(p) for M by least squares on positions 0…31, again on 32…63:
    the same M, the block rotation of the sum formulas, and it maps every p of 64…127."""
    half = t.draw(st.integers(1, 3), label="half")
    base = t.draw(st.floats(2.0, 20.0), label="base")
    k = t.draw(st.integers(1, 40), label="k")
    dim = 2 * half
    pe = t.np(impl(128 + k, dim, base=base, **_where(t)))
    err = _ulp_tol("sinusoidal_positions", t.dtype, 128 + k)  # |PE error| ≤ budget at |pθ|
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
    for i, th in enumerate(theta):
        c, s = np.cos(k * th), np.sin(k * th)
        closed[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[c, s], [-s, c]]
    np.testing.assert_allclose(m1, closed, rtol=0, atol=tol1, err_msg="M_k is not the rotation")
    later = np.arange(64, 128)
    np.testing.assert_allclose(pe[later] @ closed.T, pe[later + k], rtol=0, atol=4 * err)


@functools.cache
def _sinusoidal_oracle(n, dim, base):
    return oracles.ORACLES["sinusoidal_positions"](n, dim, base=base)


def _check_sinusoidal_accuracy(impl, t, n, dim, base):
    got = t.backend.to_numpy(impl(n, dim, base=base, **_where(t)))
    want = _sinusoidal_oracle(n, dim, base)
    floor = oracles.scale_floor("sinusoidal_positions", want, (n, dim), {"base": base})
    assert got.shape == want.shape == (n, dim)
    err = oracles.ulp_error(got, want, np.dtype(t.dtype), floor=floor)
    worst = float(np.max(err)) if err.size else 0.0
    assert worst <= records.ulp_budget("sinusoidal_positions", t.dtype), f"{worst:.1f} ulp"


@prop("sinusoidal_positions", "accuracy")
def sinusoidal_accuracy_to_position_1e4(impl, t):
    """Positions to 1e4: within budget of mpmath at the scale max(1, |pθ|) of the float angle
    (two fixed tables; Hypothesis stops once it has tried both)."""
    n, dim, base = t.draw(st.sampled_from([(10001, 4, 10000.0), (300, 6, 100.0)]),
                          label="n, dim, base")
    _check_sinusoidal_accuracy(impl, t, n, dim, base)


@prop("sinusoidal_positions", "accuracy")
def sinusoidal_accuracy(impl, t):
    n = t.draw(st.integers(0, 40), label="n")
    half = t.draw(st.integers(1, 5), label="half")
    base = t.draw(st.sampled_from([10000.0, 500000.0, 100.0, 10.0, 1.5]), label="base")
    _check_sinusoidal_accuracy(impl, t, n, 2 * half, base)


# --------------------------------------------------------------------------- rope
def _positions(draw, dtype, count, *, bound):
    if draw(st.booleans(), label="integer positions"):
        return draw(hnp.arrays(np.int64, (count,), elements=st.integers(0, bound)), label="pos")
    return draw(cst.arrays(dtype, (count,), min_value=-bound, max_value=bound), label="pos")


def _norm(v):
    """‖v‖ over the last axis, of float64 values scaled by a power of two (exact) so that no
    square underflows: np.linalg.norm squares directly, and for |v| ≈ 1e-159 the squares are
    subnormal, which costs the reference norm about 8 of its 16 digits (a counter-example of
    the thorough profile on dask: x = 9.03e-159 everywhere, the norm off by 1e-166 against a
    bound of 7e-170)."""
    v = np.asarray(v, dtype=np.float64)
    top = np.max(np.abs(v), axis=-1, keepdims=True)
    scale = np.ldexp(1.0, np.frexp(np.where(np.isfinite(top) & (top > 0), top, 1.0))[1])
    return np.linalg.norm(v / scale, axis=-1) * scale[..., 0]


def _rope_tol(dtype, x, positions, *, factor=1.0):
    """Elementwise bound of a rope output: budget at (|x_a| + |x_b|)·max(1, |p|·θ₀), θ₀ = 1;
    the +1 covers the rounding of a float position to the dtype."""
    g = np.maximum(1.0, np.abs(np.asarray(positions, dtype=np.float64)))[:, None]
    pair = np.abs(np.asarray(x, dtype=np.float64))
    size = np.max(pair, axis=-1, keepdims=True) * 2 * g  # ≥ |x_a| + |x_b| for every pair
    return factor * (records.ulp_budget("rope", dtype) + 1) * 2 * _u(dtype) * size + _ftz(dtype)


@prop("rope", "relative_invariance", dtypes=ALL_DTYPES)
def rope_relative_invariance(impl, t):
    d = 2 * t.draw(st.integers(1, 8), label="d/2")
    layout = t.draw(st.sampled_from(["interleaved", "half"]), label="layout")
    base = t.draw(st.sampled_from([10000.0, 500000.0, 100.0]), label="base")
    q = t.draw(cst.arrays(t.dtype, (d,), min_value=-3, max_value=3), label="q")
    k = t.draw(cst.arrays(t.dtype, (d,), min_value=-3, max_value=3), label="k")
    if t.draw(st.booleans(), label="integer positions"):
        m, n, c = (t.draw(st.integers(0, 1000), label=s) for s in ("m", "n", "c"))
    else:  # float positions (rounded to the dtype inside rope: within the tolerance below)
        m, n, c = (t.draw(st.floats(-500, 500), label=s) for s in ("m", "n", "c"))
    x = np.stack([q, k])

    def score(pm, pn):
        y = t.np(impl(*t.on(x, np.array([pm, pn])), base=base, layout=layout))
        return float(y[0] @ y[1])

    s = score(m, n)
    # each output is within (budget + 1)·2u·g·(|x_a| + |x_b|) (+1: a float position's own
    # rounding), so ‖δy‖₁ ≤ (budget + 1)·2u·g·2‖x‖₁ while ‖y‖_∞ ≤ ‖x‖₁; a score is then off by
    # ≤ (4(budget + 1) + d/2)·2u·g·‖q‖₁‖k‖₁, and two scores are compared
    g = max(1.0, *(abs(p) for p in (m, n, m + c, n + c, m - n)))
    tol = (8 * (records.ulp_budget("rope", t.dtype) + 1) + d) * 2 * _u(t.dtype) * g * np.sum(
        np.abs(q.astype(np.float64))) * np.sum(np.abs(k.astype(np.float64)))
    tol += 2 * d * _ftz(t.dtype)
    assert abs(score(m + c, n + c) - s) <= tol, "shifting both positions"
    assert abs(score(m - n, 0) - s) <= tol, "a function of m − n"


@prop("rope", "norm_preserving", "position_zero_identity", dtypes=ALL_DTYPES, examples=(
    Example({"seq_len": 5, "d/2": 7, "batch": (), "x": np.full((5, 14), 9.03256771e-159),
             "layout": "interleaved", "integer positions": False,
             "pos": np.array([0.0, 1874.00710654, 0.0, 0.0, 0.0])}, dtype="float64",
            note="thorough profile on dask, 2026-12-07: squares of the entries are subnormal"),
))
def rope_norm_preserving_and_identity_at_zero(impl, t):
    seq = t.draw(st.integers(1, 6), label="seq_len")
    d = 2 * t.draw(st.integers(1, 8), label="d/2")
    lead = t.draw(cst.shapes(min_dims=0, max_dims=2, max_side=3), label="batch")
    x = t.draw(cst.arrays(t.dtype, (*lead, seq, d)), label="x")
    layout = t.draw(st.sampled_from(["interleaved", "half"]), label="layout")
    pos = _positions(t.draw, t.dtype, seq, bound=5000)
    y = t.np(impl(*t.on(x, pos), layout=layout))
    x64 = x.astype(np.float64)
    norm_tol = np.sqrt(d) * np.max(_rope_tol(t.dtype, x64, pos), axis=-1)
    np.testing.assert_array_less(np.abs(_norm(y) - _norm(x64)), norm_tol)
    zero = t.backend.to_numpy(impl(*t.on(x, np.zeros(seq, dtype=np.int64)), layout=layout))
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
    for i_t, p in enumerate(np.asarray(positions, dtype=np.float64)):
        r = np.zeros((d, d))
        for i, th in enumerate(_theta(d, base)):
            c, s = np.cos(p * th), np.sin(p * th)
            r[i, i], r[i, i + h], r[i + h, i], r[i + h, i + h] = c, -s, s, c
        out[..., i_t, :] = x[..., i_t, :] @ r.T
    return out


@prop("rope", "layouts", dtypes=ALL_DTYPES)
def rope_layouts_match_independent_references(impl, t):
    seq = t.draw(st.integers(1, 5), label="seq_len")
    d = 2 * t.draw(st.integers(1, 8), label="d/2")
    x = t.draw(cst.arrays(t.dtype, (2, seq, d)), label="x")
    base = t.draw(st.sampled_from([10000.0, 100.0, 1e6]), label="base")
    pos = _positions(t.draw, t.dtype, seq, bound=3000)
    x64 = x.astype(np.float64)
    xb, pb = t.on(x, pos)
    # the float64 references carry ≈ u₆₄·|pθ| themselves: one more budget in float64
    tol = _rope_tol(t.dtype, x64, pos, factor=2)
    inter = t.np(impl(xb, pb, base=base))
    assert np.all(np.abs(inter - _interleaved_reference(x64, pos, base)) <= tol)
    half = t.np(impl(xb, pb, base=base, layout="half"))
    assert np.all(np.abs(half - _half_reference(x64, pos, base)) <= tol)
    # one permutation apart: half-layout storage of x, rotated, is the interleaved result
    perm = np.concatenate([np.arange(0, d, 2), np.arange(1, d, 2)])
    moved = t.np(impl(t.on(np.ascontiguousarray(x[..., perm])), pb, base=base, layout="half"))
    np.testing.assert_allclose(moved, inter[..., perm], rtol=0, atol=np.max(tol))


# --------------------------------------------------------------------------- analogy, retrieval
def _cosines64(target, rows):
    """cos(target, row) in float64 with cosine_similarity's ε-clamped norms."""
    tv = np.asarray(target, dtype=np.float64)
    r = np.asarray(rows, dtype=np.float64)
    tn = max(np.linalg.norm(tv), 1e-8)
    rn = np.maximum(np.linalg.norm(r, axis=-1), 1e-8)
    return (r @ tv) / (rn * tn)


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


def _index(t, x) -> int:
    return int(t.backend.to_numpy(x))


@prop("analogy", "brute_force", "scale_invariant", dtypes=ALL_DTYPES)
def analogy_is_brute_force_nearest_and_scale_invariant(impl, t):
    table, a, b, c = t.draw(_analogy_case(t.dtype), label="table, a, b, c")
    # away from cosine_similarity's ε = 1e-8 guard (a clamped norm is not scale invariant)
    table = np.where(np.abs(table) < 1e-3, 0, table).astype(t.dtype)
    best, gap, cond = _brute_force(table, a, b, c)
    # the float target and cosines are accurate to a few u·cond, u that of the working dtype
    # (float16 and bfloat16 tables are searched in float32, which holds them exactly): only
    # clear winners are judged
    assume(gap > 1e3 * _u(_work(t.dtype)) * cond)
    ids = [np.asarray(i, dtype=np.int64) for i in (a, b, c)]
    got = _index(t, impl(*t.on(table, *ids)))
    assert got == best and got not in (a, b, c)
    # c = 2.5 would round every entry to the low dtype (≤ u·|e|, moving the cosines by far
    # more than float32's margin above): there c = 4, exact, whose products the float32
    # search still carries out in full
    c_scale = 4.0 if t.low else 2.5
    scaled = (c_scale * table.astype(np.float64)).astype(t.dtype)
    assert _index(t, impl(*t.on(scaled, *ids))) == best


@prop("analogy", "brute_force", dtypes=ALL_DTYPES)
def analogy_ties_go_to_the_lower_index(impl, t):
    table, a, b, c = t.draw(_analogy_case(t.dtype), label="table, a, b, c")
    # away from cosine_similarity's ε = 1e-8 guard, as in the check above
    table = np.where(np.abs(table) < 1e-3, 0, table).astype(t.dtype)
    best, gap, cond = _brute_force(table, a, b, c)
    assume(gap > 1e3 * _u(_work(t.dtype)) * cond)
    free = [j for j in range(table.shape[0]) if j not in (a, b, c, best)]
    assume(free)
    twin = t.draw(st.sampled_from(free), label="twin")
    tied = table.copy()
    tied[twin] = tied[best]  # bitwise-equal rows: bitwise-equal cosines
    ids = [np.asarray(i, dtype=np.int64) for i in (a, b, c)]
    got = _index(t, impl(*t.on(tied, *ids)))
    assert got == min(best, twin)


@prop("analogy", "king_queen", draws=False, dtypes=ALL_DTYPES)
def analogy_king_queen(impl, t):
    """003's example on the constructed table of the tier-S proof (royalty, maleness,
    femaleness, fruit; ×10, so every entry is exact in every dtype): king − man + woman →
    queen, and, batched, man:prince :: woman:princess and woman:queen :: man:king."""
    rows = [[9, 8, 1, 0], [9, 1, 8, 0], [1, 9, 1, 0], [1, 1, 9, 0], [0, 1, 1, 9], [7, 8, 1, 1],
            [7, 1, 8, 1]]
    king, queen, man, woman, prince, princess = 0, 1, 2, 3, 5, 6
    table = np.array(rows, dtype=t.dtype)
    ids = [np.asarray(i, dtype=np.int64) for i in (man, king, woman)]
    assert _index(t, impl(*t.on(table, *ids))) == queen
    batch = [np.array(i, dtype=np.int64) for i in ([man, woman], [prince, queen], [woman, man])]
    got = t.backend.to_numpy(impl(*t.on(table, *batch)))
    assert [int(i) for i in got] == [princess, king]


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


@prop("cosine_top_k", "sorted_by_cosine", dtypes=ALL_DTYPES)
def cosine_top_k_is_stable_sort_of_cosine_similarity(impl, t):
    query, docs, k = t.draw(_retrieval_case(t.dtype), label="query, docs, k")
    qb, db = t.on(query, docs)
    got = t.backend.to_numpy(impl(qb, db, k=k))
    assert got.shape == (*query.shape[:-1], k)
    # float16 and bfloat16 are compared in float32 (the dtype policy): the similarities to
    # sort are those of the float32 vectors, which hold the low-precision ones exactly
    wide = t.on(query.astype(np.float32), docs.astype(np.float32)) if t.low else (qb, db)
    sims = t.np(spec.cosine_similarity(wide[0][..., None, :], wide[1]))
    want = np.argsort(-sims, axis=-1, kind="stable")[..., :k]
    np.testing.assert_array_equal(got, want)
    # decreasing similarity, by an independent float64 computation (up to rounding)
    for idx in np.ndindex(query.shape[:-1]):
        cos = _cosines64(query[idx], docs)[got[idx]]
        assert np.all(np.diff(cos) <= 64 * _u(t.dtype))


@prop("cosine_top_k", "scale_invariant", dtypes=ALL_DTYPES)
def cosine_top_k_scale_invariant(impl, t):
    """Scaling the query or one document by 2^j (exact in floating point) changes nothing."""
    query, docs, k = t.draw(_retrieval_case(t.dtype), label="query, docs, k")
    # 2^j·v stays a normal number of the dtype for 1e-3 ≤ |v| ≤ 3 (float16: −4 ≤ j ≤ 14)
    info = finfo(t.dtype)
    lo = max(-10, int(np.ceil(np.log2(float(info.tiny) / 1e-3))))
    hi = min(10, int(np.floor(np.log2(float(info.max) / 3))))
    j = t.draw(st.integers(lo, hi), label="j")
    # away from cosine_similarity's ε = 1e-8 guard, below which a norm is clamped (and the
    # cosine no longer scale invariant): every non-zero vector keeps a norm ≥ 1e-3·2^−10
    query, docs = (np.where(np.abs(a) < 1e-3, 0, a).astype(t.dtype) for a in (query, docs))
    row = t.draw(st.integers(0, docs.shape[0] - 1), label="row")
    base = t.backend.to_numpy(impl(*t.on(query, docs), k=k))
    scaled_docs = docs.copy()
    scaled_docs[row] = docs[row] * np.asarray(2.0**j, dtype=t.dtype)
    scaled_query = query * np.asarray(2.0**j, dtype=t.dtype)
    np.testing.assert_array_equal(
        t.backend.to_numpy(impl(*t.on(scaled_query, scaled_docs), k=k)), base)


# --------------------------------------------------------------------------- integer widths
# Token ids, labels and positions come in every integer width (uint8 labels, uint16 token
# streams on disk): each means what its values say. The checks do not depend on the float
# dtype, so they run once per backend (float32, which every backend has).
def _ids_of_width(t, shape, upper: int, *, label: str):
    """(width, ids as int64, ids in that width): values in [0, min(upper, width's max + 1))."""
    width = t.draw(st.sampled_from(_WIDTHS), label=f"{label} width")
    top = min(upper - 1, _width_max(width))
    ids = t.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, top)), label=label)
    return width, ids, ids.astype(width)


@prop("embedding", "integer_widths", dtypes=("float32",))
def embedding_token_ids_of_every_width(impl, t):
    vocab = t.draw(st.integers(1, 300), label="V")
    shape = t.draw(cst.shapes(min_dims=1, max_dims=2, max_side=5), label="shape")
    width, ids, narrow = _ids_of_width(t, shape, vocab, label="tokens")
    table = np.arange(2.0 * vocab, dtype=np.float32).reshape(vocab, 2)  # row v is (2v, 2v + 1)
    got = t.np(impl(*t.on(table, narrow)))
    np.testing.assert_array_equal(got, table[ids], err_msg=f"{width} token ids")


@prop("one_hot", "integer_widths", dtypes=("float32",))
def one_hot_labels_of_every_width(impl, t):
    k = t.draw(st.integers(1, 600), label="K")
    shape = t.draw(cst.shapes(min_dims=1, max_dims=2, max_side=5), label="shape")
    width, labels, narrow = _ids_of_width(t, shape, k, label="labels")
    oh = t.np(impl(t.on(narrow), k))
    np.testing.assert_array_equal(oh, labels[..., None] == np.arange(k),
                                  err_msg=f"{width} labels, {k} classes")


@prop("rope", "integer_widths", dtypes=("float32",))
def rope_positions_of_every_width(impl, t):
    seq = t.draw(st.integers(1, 4), label="seq_len")
    x = t.draw(cst.arrays("float32", (seq, 4)), label="x")
    width, pos, narrow = _ids_of_width(t, (seq,), 100_001, label="positions")
    xb = t.on(x)
    got = t.backend.to_numpy(impl(xb, t.on(narrow)))
    want = t.backend.to_numpy(impl(xb, t.on(pos)))
    np.testing.assert_array_equal(got, want, err_msg=f"{width} positions")


@prop("analogy", "integer_widths", dtypes=("float32",))
def analogy_ids_of_every_width(impl, t):
    table, a, b, c = t.draw(_analogy_case("float32"), label="table, a, b, c")
    width = t.draw(st.sampled_from(_WIDTHS), label="width")
    ids = [np.asarray(i, dtype=np.int64) for i in (a, b, c)]
    tb = t.on(table)
    want = t.backend.to_numpy(impl(tb, *t.on(*ids)))
    got = t.backend.to_numpy(impl(tb, *t.on(*(i.astype(width) for i in ids))))
    np.testing.assert_array_equal(got, want, err_msg=f"{width} ids")


# --------------------------------------------------------------------------- named variants
@prop("embedding", "variants", dtypes=ALL_DTYPES)
def embedding_scaled_by_sqrt_d(impl, t):
    """scale_by_sqrt_d=True is √d·E[t] (Vaswani et al. §3.4, Gemma): one product, rounded
    once in the dtype (≤ u) after √d's own rounding (≤ u) in the working precision, so
    within 2u·|√d E[t]|; the default is the row itself, told apart wherever a row is not 0."""
    table, tokens = t.draw(_table_and_tokens(t.dtype), label="table, tokens")
    limited = spec.catalogue()["embedding"].limit(t.backend.id, "P", "no tokens") is not None
    assume(not (tokens.size == 0 and limited))
    tb, ib = t.on(table, tokens)
    d = table.shape[1]
    got = t.np(impl(tb, ib, scale_by_sqrt_d=True))
    want = table.astype(np.float64)[tokens] * np.sqrt(d)
    assert np.all(np.abs(got - want) <= 2 * _u(t.dtype) * np.abs(want) + _ftz(t.dtype))
    np.testing.assert_array_equal(t.backend.to_numpy(impl(tb, ib)), table[tokens])
    # the distinguishing input: d = 4 doubles every row
    row = np.array([[1.0, 2.0, -1.0, 0.5]], dtype=t.dtype)
    rb, zero = t.on(row, np.zeros(1, dtype=np.int64))
    np.testing.assert_array_equal(t.np(impl(rb, zero, scale_by_sqrt_d=True)),
                                  2 * row.astype(np.float64))
    np.testing.assert_array_equal(t.np(impl(rb, zero)), row.astype(np.float64))


@prop("rope", "layouts", draws=False, dtypes=ALL_DTYPES)
def rope_layouts_told_apart(impl, t):
    """The distinguishing input of the two layouts: d = 8, positions 0, 1, 5, 17. Each layout
    matches its own reference there and is farther than the tolerance from the other's."""
    x = np.random.default_rng(11).normal(0.0, 1.0, (2, 4, 8)).astype(t.dtype)
    pos = np.array([0, 1, 5, 17])
    x64 = x.astype(np.float64)
    tol = _rope_tol(t.dtype, x64, pos, factor=2)
    xb, pb = t.on(x, pos)
    inter = t.np(impl(xb, pb, layout="interleaved"))
    half = t.np(impl(xb, pb, layout="half"))
    assert np.all(np.abs(inter - _interleaved_reference(x64, pos, 10000.0)) <= tol)
    assert np.all(np.abs(half - _half_reference(x64, pos, 10000.0)) <= tol)
    assert np.any(np.abs(inter - half) > 2 * tol), "the layouts are not told apart"
    np.testing.assert_array_equal(inter[:, 0], half[:, 0])  # position 0: both are x


# --------------------------------------------------------------------------- low precision
@prop("rope", "angles_in_working_precision", dtypes=ALL_DTYPES, examples=(
    Example({"seq_len": 2, "d/2": 2,
             "x": np.array([[1.0, 1.0, 1.0, 1.0], [0.5, -2.0, 1.0, 0.25]]),
             "positions": np.array([1001, 70000]), "base": 10000.0},
            note="issue 12: a bfloat16 angle at 1001 was off by 1.15; float16 70000 was ∞"),
))
def rope_long_positions_in_low_precision(impl, t):
    """Positions are never rounded to the low dtype: the result is within float32's own
    error (its budget at (|x_a| + |x_b|)·max(1, |pθ|), the float32 angle known to u₃₂·|pθ|)
    plus one rounding to the dtype (u·|y|). Integer positions to 1e5: past float16's
    largest finite number (65504) and its last integer (2048), and bfloat16's (256)."""
    seq = t.draw(st.integers(1, 4), label="seq_len")
    d = 2 * t.draw(st.integers(1, 4), label="d/2")
    x = t.draw(cst.arrays(t.dtype, (seq, d)), label="x")
    pos = t.draw(hnp.arrays(np.int64, (seq,), elements=st.integers(0, 100_000)),
                 label="positions")
    base = t.draw(st.sampled_from([10000.0, 500000.0]), label="base")
    got = t.np(impl(*t.on(x, pos), base=base))
    want = _interleaved_reference(x.astype(np.float64), pos, base)
    work = "float64" if t.dtype == "float64" else "float32"
    g = np.maximum(1.0, np.abs(pos.astype(np.float64)))[:, None]  # |pθ₀|, θ₀ = 1
    pair = np.max(np.abs(x.astype(np.float64)), axis=-1, keepdims=True) * 2
    tol = records.ulp_budget("rope", work) * 2 * _u(work) * pair * g
    if t.low:
        tol = tol + _u(t.dtype) * np.abs(want)  # the one rounding to the dtype
    assert np.all(np.abs(got - want) <= tol + _ftz(t.dtype))


# --------------------------------------------------------------------------- rope: rows, scaling
@prop("rope", "positions_per_row", dtypes=ALL_DTYPES)
def rope_positions_per_row(impl, t):
    """x (batch, heads, T, d) with positions (batch, 1, T): row b rotated at its own positions,
    as rope on x[b] with positions[b] alone (left-padded batches position each row so)."""
    batch = t.draw(st.integers(1, 3), label="batch")
    heads = t.draw(st.integers(1, 2), label="heads")
    seq = t.draw(st.integers(1, 4), label="seq_len")
    d = 2 * t.draw(st.integers(1, 4), label="d/2")
    x = t.draw(cst.arrays(t.dtype, (batch, heads, seq, d)), label="x")
    pos = t.draw(hnp.arrays(np.int64, (batch, 1, seq), elements=st.integers(0, 3000)),
                 label="positions")
    layout = t.draw(st.sampled_from(["interleaved", "half"]), label="layout")
    got = t.np(impl(*t.on(x, pos), layout=layout))
    x64 = x.astype(np.float64)
    for b in range(batch):
        alone = t.np(impl(*t.on(x[b], pos[b, 0]), layout=layout))
        np.testing.assert_array_equal(got[b], alone)  # the same operations on the same values
        tol = _rope_tol(t.dtype, x64[b], pos[b, 0], factor=2)
        ref = (_interleaved_reference if layout == "interleaved" else _half_reference)(
            x64[b], pos[b, 0], 10000.0)
        assert np.all(np.abs(got[b] - ref) <= tol)


def _llama3_frequencies(theta, factor, low, high, context):
    """Meta's apply_scaling (Llama 3.1 reference code), vectorised as Hugging Face writes it:
    wavelengths below context/high keep θ, above context/low take θ/factor, and between them
    a blend weighted by (context/λ − low)/(high − low)."""
    wavelength = 2 * np.pi / theta
    slow = np.where(wavelength > context / low, theta / factor, theta)
    smooth = (context / wavelength - low) / (high - low)
    blended = (1 - smooth) * slow / factor + smooth * slow
    medium = ~(wavelength < context / high) & ~(wavelength > context / low)
    return np.where(medium, blended, slow)


def _complex_rotation(x, positions, theta):
    """The interleaved reference at explicit frequencies θ (the complex form of RoFormer)."""
    z = x[..., 0::2] + 1j * x[..., 1::2]
    rot = z * np.exp(1j * np.asarray(positions, dtype=np.float64)[:, None] * theta)
    out = np.empty(x.shape)
    out[..., 0::2], out[..., 1::2] = rot.real, rot.imag
    return out


@prop("rope", "scaling", dtypes=ALL_DTYPES)
def rope_scaled_frequencies(impl, t):
    """linear: rope at positions p/s. llama3: the complex rotation at Meta's scaled
    frequencies, with an original context that puts pairs in all three bands (d = 16, base
    10000: wavelengths 2π … 2π·10000^(7/8), context 64 and factors 1 < h ≤ 8)."""
    seq = t.draw(st.integers(1, 4), label="seq_len")
    d = 2 * t.draw(st.integers(1, 8), label="d/2")
    x = t.draw(cst.arrays(t.dtype, (seq, d)), label="x")
    pos = t.draw(hnp.arrays(np.int64, (seq,), elements=st.integers(0, 5000)), label="positions")
    factor = t.draw(st.sampled_from([2.0, 4.0, 8.0, 32.0]), label="factor")
    x64 = x.astype(np.float64)
    tol = _rope_tol(t.dtype, x64, pos, factor=2)
    if t.draw(st.booleans(), label="linear"):
        got = t.np(impl(*t.on(x, pos), scaling={"rope_type": "linear", "factor": factor}))
        want = _complex_rotation(x64, pos / factor, _theta(d, 10000.0))
    else:
        low = t.draw(st.sampled_from([0.5, 1.0]), label="low_freq_factor")
        high = t.draw(st.sampled_from([2.0, 4.0, 8.0]), label="high_freq_factor")
        scaling = {"rope_type": "llama3", "factor": factor, "low_freq_factor": low,
                   "high_freq_factor": high, "original_max_position_embeddings": 64}
        got = t.np(impl(*t.on(x, pos), scaling=scaling))
        want = _complex_rotation(x64, pos, _llama3_frequencies(_theta(d, 10000.0), factor, low,
                                                               high, 64))
    assert np.all(np.abs(got - want) <= tol)
