"""Tier P properties of §1 Linear algebra, as checks of an implementation.

`impl` is the implementation under test with the spec's signature; other equations a check
needs as references come from `spec`. Reference singular values and vectors come from NumPy
on the host, never from the code under test. Every bound below is derived from the rounding
of the computation it judges (ε = `t.eps`, the dtype's unit roundoff doubled), not observed.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

import spec
from conformance import strategies as cst
from conformance import tolerances
from conformance.precision import finfo
from conformance.properties import ALL_DTYPES, Example, prop
from conformance.tolerances import Tol

#: the float64 host references (NumPy norms and products of the backend's results) round
#: too: a relative slack of the float64 value tolerance (64 ε₆₄) covers their few roundings
_HOST = tolerances.values("float64").rtol


def _pair(t, bound=10.0):
    shape = t.draw(cst.shapes(max_dims=2), label="shape")
    x = t.draw(cst.arrays(t.dtype, shape, min_value=-bound, max_value=bound), label="x")
    y = t.draw(cst.arrays(t.dtype, shape, min_value=-bound, max_value=bound), label="y")
    return x, y


def _dot_tol(dtype, x, y, n):
    """Rounding of a dot product: n·ε·Σ|xᵢyᵢ| (the bound of recursive summation)."""
    scale = np.sum(np.abs(x.astype(np.float64) * y.astype(np.float64)), axis=-1)
    return 2 * n * float(finfo(dtype).eps) * scale + float(finfo(dtype).tiny)


def _underflow(dtype, ops, *factors):
    """Absolute error from underflow: each of `ops` operations may lose up to the smallest
    normal (XLA on the CPU flushes subnormals to zero), scaled by the later factors' size."""
    scale = math.prod(1 + float(np.sum(np.abs(f))) for f in factors)
    return (ops + 2) * float(finfo(dtype).tiny) * scale


def _matrices(draw, dtype, *dims):
    """Matrices of shapes dims[i] × dims[i+1], entries in [−4, 4], drawn with `draw`
    (Hypothesis's `data.draw` or a trial's `t.draw`), labelled M0, M1, …"""
    return [draw(cst.arrays(dtype, (dims[i], dims[i + 1]), min_value=-4, max_value=4),
                 label=f"M{i}") for i in range(len(dims) - 1)]


# --------------------------------------------------------------------------------- dot
@prop("dot", "symmetric", "bilinear", "norm_squared", dtypes=ALL_DTYPES)
def dot_symmetric_bilinear_and_norm_squared(impl, t):
    x, y = _pair(t)
    z = t.draw(cst.arrays(t.dtype, x.shape), label="z")
    a = t.draw(cst.floats(t.dtype, -4, 4), label="a")
    b = t.draw(cst.floats(t.dtype, -4, 4), label="b")
    xb, yb, zb = t.on(x, y, z)
    n = x.shape[-1]
    xy = t.np(impl(xb, yb))
    assert np.array_equal(xy, t.np(impl(yb, xb))), "x·y = y·x exactly"
    exact = np.sum(x.astype(np.float64) * y.astype(np.float64), axis=-1)
    assert np.all(np.abs(xy - exact) <= _dot_tol(t.dtype, x, y, n))
    combo = (a * x.astype(np.float64) + b * z.astype(np.float64)).astype(t.dtype)
    lhs = t.np(impl(t.on(combo), yb))
    rhs = a * xy + b * t.np(impl(zb, yb))
    # the combination is rounded in the dtype before the dot: ε·(|a||x| + |b||z|)·|y| more
    slack = _dot_tol(t.dtype, np.abs(a * x.astype(np.float64)) + np.abs(b * z.astype(np.float64)),
                     y, n + 4)
    assert np.all(np.abs(lhs - rhs) <= slack), "bilinear"
    nx = t.np(spec.norm(xb))
    # in float16 and bfloat16 both sides are float32 results rounded once: x·x within ½ε,
    # ‖x‖² within ε (‖x‖'s ½ε, squared), 1.5ε apart at most, past the dtype's tolerance (ε
    # plus float32's); float32 and float64 keep theirs (64 ε)
    tol = Tol(2 * t.eps + t.tol.rtol, t.tol.atol) if t.low else None
    t.close(impl(xb, xb), nx**2, tol=tol, what="x·x = ‖x‖²")


@prop("dot", "matmul_is_dots", dtypes=ALL_DTYPES)
def dot_gives_every_entry_of_a_matmul(impl, t):
    m, k, n = (t.draw(st.integers(1, 5), label=s) for s in "mkn")
    a, b = _matrices(t.draw, t.dtype, m, k, n)
    ab, bb = t.on(a, b)
    xp = t.xp
    product = t.np(xp.matmul(ab, bb))
    dots = t.np(impl(ab[:, None, :], xp.matrix_transpose(bb)[None, :, :]))
    # both sides round a length-k dot product: 2·k·ε·(|A||B|) each
    bound = 4 * k * t.eps * (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)))
    assert np.all(np.abs(product - dots) <= bound + _underflow(t.dtype, k))


# --------------------------------------------------------------------------------- norm
@prop("norm", "homogeneous", "triangle")
def norm_homogeneous_and_triangle(impl, t):
    x, y = _pair(t)
    axis = t.draw(cst.axes(x.ndim), label="axis")
    c = t.draw(cst.floats(t.dtype, -8, 8), label="c")
    xb, yb = t.on(x, y)
    nx = t.np(impl(xb, axis=axis))
    exact = np.sqrt(np.sum(x.astype(np.float64) ** 2, axis=axis))
    t.close(nx, exact, what="‖x‖")
    cx = (c * x.astype(np.float64)).astype(t.dtype)
    got = t.np(impl(t.on(cx), axis=axis))
    # cx is rounded in the dtype: relative ε more, inside the dtype's tolerance (64 ε)
    t.close(got, abs(c) * nx, what="‖cx‖ = |c|‖x‖")
    xy = (x.astype(np.float64) + y.astype(np.float64)).astype(t.dtype)
    lhs = t.np(impl(t.on(xy), axis=axis))
    rhs = nx + t.np(impl(yb, axis=axis))
    assert np.all(lhs <= rhs * (1 + t.tol.rtol) + t.tol.atol), "triangle"
    kept = t.np(impl(xb, axis=axis, keepdims=True))
    assert kept.shape == tuple(1 if i == axis % x.ndim else s for i, s in enumerate(x.shape))


@prop("norm", "dot_self")
def norm_squared_is_dot_with_itself(impl, t):
    shape = t.draw(cst.shapes(max_dims=2), label="shape")
    x = t.draw(cst.arrays(t.dtype, shape), label="x")
    axis = t.draw(cst.axes(x.ndim), label="axis")
    xb = t.on(x)
    nx = t.np(impl(xb, axis=axis))
    # x·x sums n ≤ 6 non-negative terms (≤ n ε relative) and ‖x‖ is within (n + 5)/2 ε of
    # exact, so ‖x‖² within (n + 5) ε: together ≤ 17 ε, inside the dtype's 64 ε; x·x
    # underflowing to 0 for tiny x is inside its absolute part
    t.close(nx**2, t.np(spec.dot(xb, xb, axis=axis)), what="‖x‖² = x·x")


@prop("norm", "no_overflow")
def norm_does_not_overflow_or_underflow(impl, t):
    scales = (1e200, 1e-200, 1e300) if t.dtype == "float64" else (1e30, 1e-30, 3e37)
    n = t.draw(st.integers(1, 8), label="n")
    x = t.draw(cst.arrays(t.dtype, (n,), min_value=0.5, max_value=2.0), label="x")
    sign = t.draw(st.sampled_from([-1.0, 1.0]), label="sign")
    base = math.sqrt(float(np.sum(x.astype(np.float64) ** 2)))
    for scale in scales:
        big = (sign * scale * x.astype(np.float64)).astype(t.dtype)
        got = float(t.np(impl(t.on(big))))
        want = scale * math.sqrt(float(np.sum((big.astype(np.float64) / scale) ** 2)))
        assert math.isfinite(got) and got > 0, f"‖x‖ at scale {scale} gave {got}"
        assert abs(got - want) <= t.tol.rtol * want, (scale, got, want, base)


@prop("norm", "special_values", dtypes=ALL_DTYPES, draws=False)
def norm_of_zero_inf_nan_and_empty(impl, t):
    x = np.array([[0.0, 0.0, 0.0], [np.inf, 1.0, 2.0], [-np.inf, np.inf, 0.0], [np.nan, 1.0, 0.0]],
                 dtype=t.dtype)
    got = t.np(impl(t.on(x)))
    assert got[0] == 0 and got[1] == np.inf and got[2] == np.inf and np.isnan(got[3])
    empty = np.zeros((2, 0), dtype=t.dtype)
    assert t.np(impl(t.on(empty))).tolist() == [0.0, 0.0]


# --------------------------------------------------------------------------- cosine
@prop("cosine_similarity", "bounded", "scale_invariant", "parallel", examples=(
    Example({"shape": (1,), "x": np.array([1.04e-6]), "y": np.array([1.0]), "a": 2.0**-7},
            dtype="float64", note="thorough profile, issue 17: ‖ax‖ ≈ 8e-9 falls under the ε "
            "guard, where the cosine is not scale invariant"),
    Example({"shape": (1,), "x": np.array([1.04e-6], dtype=np.float32),
             "y": np.array([1.0], dtype=np.float32), "a": np.float32(2.0**-7)},
            dtype="float32", note="the same in float32"),
))
def cosine_bounded_scale_invariant_and_parallel(impl, t):
    x, y = _pair(t)
    a = t.draw(cst.floats(t.dtype, 1e-3, 1e3), label="a")
    xb, yb = t.on(x, y)
    cos = t.np(impl(xb, yb))
    eps = t.eps
    n = x.shape[-1]
    assert np.all(np.abs(cos) <= 1 + 4 * n * eps), "|cos| ≤ 1 up to rounding"
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    nx, ny = np.linalg.norm(x64, axis=-1), np.linalg.norm(y64, axis=-1)
    live = (nx > 1e-6) & (ny > 1e-6)  # far above the ε = 1e-8 guard
    exact = np.sum(x64 * y64, axis=-1) / np.maximum(nx * ny, 1e-300)
    # absolute, as the cosine is bounded by 1: two norms, two divisions, n products and sums
    tol = Tol(rtol=0, atol=8 * (n + 4) * eps)
    t.close(cos[live], exact[live], tol=tol, what="cos vs x·y/(‖x‖‖y‖)")
    ax = (a * x64).astype(t.dtype)
    scaled = t.np(impl(t.on(ax), yb))
    # scale invariance holds where both ‖x‖ and ‖ax‖ are far above the ε = 1e-8 guard: under
    # it the denominator is the guard, not the norm (issue 17: ‖x‖ = 1.04e-6, a = 2⁻⁷)
    both = live & (a * nx > 1e-6)
    # a·x is rounded in the dtype (relative ε per entry): the cosine moves by ≤ 2ε more
    t.close(scaled[both], cos[both], tol=Tol(0, 8 * (n + 6) * eps), what="cos(ax, y) = cos(x, y)")
    same = t.np(impl(xb, t.on((2 * x64).astype(t.dtype))))
    flip = t.np(impl(xb, t.on((-x64).astype(t.dtype))))
    nonzero = nx > 1e-6
    # 2x and −x are exact in the dtype: only the cosine's own rounding, ≤ 4(n + 2)ε
    t.close(same[nonzero], 1.0, tol=Tol(0, 4 * (n + 2) * eps), what="cos(x, 2x) = 1")
    t.close(flip[nonzero], -1.0, tol=Tol(0, 4 * (n + 2) * eps), what="cos(x, −x) = −1")


# --------------------------------------------------------------------------- Frobenius
@prop("frobenius_norm", "flattened_norm", "singular_values", dtypes=ALL_DTYPES)
def frobenius_flattened_and_singular_values(impl, t):
    shape = t.draw(cst.shapes(min_dims=2, max_dims=3), label="shape")
    w = t.draw(cst.arrays(t.dtype, shape), label="W")
    wb = t.on(w)
    fro = t.np(impl(wb))
    flat = t.np(spec.norm(t.xp.reshape(wb, (*shape[:-2], shape[-2] * shape[-1]))))
    t.close(fro, flat, what="‖W‖_F = ‖vec W‖")
    sigma = np.linalg.svd(w.astype(np.float64), compute_uv=False)
    t.close(fro, np.sqrt(np.sum(sigma**2, axis=-1)), what="√Σσᵢ²")


@prop("frobenius_norm", "trace")
def frobenius_squared_is_trace_of_the_gram_matrix(impl, t):
    shape = t.draw(cst.shapes(min_dims=2, max_dims=3), label="shape")
    w = t.draw(cst.arrays(t.dtype, shape), label="W")
    wb = t.on(w)
    fro = t.np(impl(wb))
    xp = t.xp
    gram = t.np(xp.matmul(xp.matrix_transpose(wb), wb))  # WᵀW by the backend's own matmul
    trace = np.trace(gram, axis1=-2, axis2=-1)
    # with u = ε/2: each diagonal entry of WᵀW is a sum of m ≤ 6 squares (≤ m·u relative,
    # all terms ≥ 0) and the trace adds n ≤ 6 of them (≤ n·u more); ‖W‖_F sums mn ≤ 36
    # scaled squares (≤ (mn + 3)·u with the scaling, square root and rescaling), squared
    # ≤ (2mn + 6)·u: together ≤ 90·u = 45 ε, inside the dtype's 64 ε. Squares that
    # underflow in the trace are inside its absolute part (8 ε)
    t.close(fro**2, trace, what="‖W‖_F² = tr(WᵀW)")


# ------------------------------------------------------------------------ SVD-based
def _conditioned(seed, m, n, sigmas):
    """U diag(σ) Vᵀ with random orthogonal U, V (host NumPy): known singular values."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(m, m)))
    v, _ = np.linalg.qr(rng.normal(size=(n, n)))
    k = min(m, n)
    return (u[:, :k] * np.asarray(sigmas)[:k]) @ v[:, :k].T


@st.composite
def _svd_case(draw, dtype):
    m, n = draw(st.integers(1, 6), label="m"), draw(st.integers(1, 6), label="n")
    k = min(m, n)
    # singular values spread over [1, 8] with relative gaps ≥ 1/8, so every truncation is
    # well conditioned (the best rank-k approximation is unique)
    ratios = draw(st.lists(st.floats(1.15, 2.0), min_size=k, max_size=k), label="ratios")
    sigmas = np.cumprod([1.0, *ratios[:-1]])[::-1]
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    return _conditioned(seed, m, n, sigmas).astype(dtype)


@prop("low_rank_approximation", "eckart_young", "rank", "idempotent", "full_rank_identity")
def low_rank_eckart_young_rank_and_idempotent(impl, t):
    t.skip_if_limited()
    w = t.draw(_svd_case(t.dtype), label="W")
    m, n = w.shape
    rank = t.draw(st.integers(0, min(m, n)), label="rank")
    w64 = w.astype(np.float64)
    sigma = np.linalg.svd(w64, compute_uv=False)
    wb = t.on(w)
    wk = t.np(impl(wb, rank=rank))
    scale = t.eps * sigma[0] * 8 * max(m, n)  # backward error of an SVD
    err2 = np.sum((w64 - wk) ** 2)
    tail = np.sum(sigma[rank:] ** 2)
    assert abs(err2 - tail) <= 4 * scale * (math.sqrt(tail) + scale) * min(m, n), (
        "Eckart–Young: ‖W − W_k‖_F² = Σ_{i>k} σᵢ²")
    sk = np.linalg.svd(wk, compute_uv=False)
    assert np.all(sk[rank:] <= scale * min(m, n)), f"rank(W_k) ≤ {rank}: σ = {sk}"
    np.testing.assert_allclose(sk[:rank], sigma[:rank], rtol=0, atol=scale * min(m, n))
    again = t.np(impl(t.on(wk.astype(t.dtype)), rank=rank))
    np.testing.assert_allclose(again, wk, rtol=0, atol=4 * scale * min(m, n),
                               err_msg="idempotent")
    # k = min(m, n) gives W back and k = 0 gives 0, whatever rank was drawn
    full = t.np(impl(wb, rank=min(m, n)))
    np.testing.assert_allclose(full, w64, rtol=0, atol=scale * min(m, n),
                               err_msg="k = min(m, n) gives W")
    assert np.all(t.np(impl(wb, rank=0)) == 0), "k = 0 gives 0"
    # no random rank-k matrix does better (Eckart–Young is an optimum, not just a formula)
    rng = np.random.default_rng(int(sigma[0] * 1e6) % 2**32)
    other = rng.normal(size=(m, rank)) @ rng.normal(size=(rank, n))
    assert np.sum((w64 - other) ** 2) >= tail - 4 * scale * math.sqrt(tail + scale)


#: matrices with a NaN or an infinite entry, as (entries, the spectral norm), for issue 12's
#: defect (NumPy raised LinAlgError, torch _LinAlgError). Columns and rows only: dask's SVD
#: takes matrices chunked along one axis, so these run on every backend, dask included
_NON_FINITE = (
    ([[np.nan], [1.0], [2.0]], np.nan),
    ([[1.0, -np.inf, 2.0]], np.inf),
    ([[np.inf, 1.0, np.nan]], np.nan),
    ([[np.inf], [-np.inf]], np.inf),
)


@prop("spectral_norm", "special_values", dtypes=ALL_DTYPES, draws=False)
def spectral_norm_of_nan_and_inf(impl, t):
    for entries, want in _NON_FINITE:
        w = np.asarray(entries, dtype=np.float64).astype(t.dtype)
        got = impl(t.on(w))
        assert t.backend.to_numpy(got).dtype.name == t.dtype, f"{got.dtype} for {t.dtype}"
        got = t.np(got)
        assert np.array_equal(got, want, equal_nan=True), f"σ_max of {entries}: {got}"
    # a finite matrix beside them is untouched: σ_max [[3], [4]] = 5 exactly in every dtype
    assert t.np(impl(t.on(np.asarray([[3.0], [4.0]], dtype=t.dtype)))) == 5.0


@prop("low_rank_approximation", "special_values", dtypes=ALL_DTYPES, draws=False)
def low_rank_of_nan_and_inf_is_nan(impl, t):
    for entries, _ in _NON_FINITE:
        w = np.asarray(entries, dtype=np.float64).astype(t.dtype)
        for rank in range(min(w.shape) + 1):
            got = impl(t.on(w), rank=rank)
            assert t.backend.to_numpy(got).dtype.name == t.dtype, f"{got.dtype} for {t.dtype}"
            assert np.all(np.isnan(t.np(got))), f"W_{rank} of {entries}: {t.np(got)}"
    # the rank-1 approximation of a column is the column (exact: σ = 5, u = W/5, v = 1)
    column = np.asarray([[3.0], [4.0]], dtype=t.dtype)
    t.close(impl(t.on(column), rank=1), column, what="W_1 of a column")


@prop("spectral_norm", "operator_norm", "largest_singular_value")
def spectral_norm_is_the_operator_norm(impl, t):
    t.skip_if_limited()
    shape = t.draw(cst.shapes(min_dims=2, max_dims=3), label="shape")
    w = t.draw(cst.arrays(t.dtype, shape), label="W")
    x = t.draw(cst.arrays(t.dtype, (*shape[:-2], shape[-1])), label="x")
    w64, x64 = w.astype(np.float64), x.astype(np.float64)
    s = t.np(impl(t.on(w)))
    # the float64 references (svd, norms of products) square their inputs and lose digits to
    # underflow below 1e−154: judge W/c and σ/c instead, c = max|W| (σ is homogeneous), and
    # x/max|x| (the inequality is homogeneous in x)
    c = np.max(np.abs(w64), axis=(-2, -1))
    c = np.where(c == 0, 1.0, c)
    w64, s = w64 / c[..., None, None], s / c
    cx = np.max(np.abs(x64), axis=-1, keepdims=True)
    x64 = x64 / np.where(cx == 0, 1.0, cx)
    _, sigma, vt = np.linalg.svd(w64)
    # plus the smallest normal, in units of c: XLA on the CPU flushes the subnormal
    # intermediates of an SVD of a matrix near it (https://github.com/jax-ml/jax/issues/16200)
    ftz = np.finfo(t.dtype).tiny / c
    scale = 8 * max(shape[-2:]) * t.eps * sigma[..., 0] + ftz  # backward error of an SVD
    np.testing.assert_allclose(s, sigma[..., 0], rtol=0, atol=np.max(scale))
    wx = np.linalg.norm(np.einsum("...ij,...j->...i", w64, x64), axis=-1)
    assert np.all(wx <= (s + scale) * np.linalg.norm(x64, axis=-1) * (1 + _HOST)), "‖Wx‖ ≤ σ‖x‖"
    top = np.linalg.norm(np.einsum("...ij,...j->...i", w64, vt[..., 0, :]), axis=-1)
    np.testing.assert_allclose(top, s, rtol=0, atol=np.max(scale), err_msg="equality at v₁")
    assert np.all(s <= np.linalg.norm(w64, axis=(-2, -1)) + scale), "σ_max ≤ ‖W‖_F"


@prop("spectral_norm", "vanishing_gradients")
def product_of_contractive_jacobians_vanishes_geometrically(impl, t):
    """002 §4.5: δ_l involves a product of L − l Jacobians; with σ_max(J) ≤ s < 1 the
    backpropagated vector shrinks at least like sᴸ (vanishing gradients)."""
    t.skip_if_limited()
    d = t.draw(st.integers(2, 6), label="d")
    depth = t.draw(st.integers(1, 30), label="L")
    s = t.draw(st.floats(0.3, 0.95), label="s")
    seed = t.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)
    xp = t.xp
    g = t.on(rng.normal(size=(d,)).astype(t.dtype))
    g0 = float(np.linalg.norm(t.np(g)))
    norms = [g0]
    # each rescaled Jacobian is σ_max = s up to the rounding of a d × d SVD and a product
    slack = 1 + 16 * d * t.eps
    for _ in range(depth):
        j = t.on(rng.normal(size=(d, d)).astype(t.dtype))
        j = j * (s / impl(j))  # rescale so that σ_max(J) = s (up to rounding)
        sigma = float(np.linalg.svd(t.np(j), compute_uv=False)[0])
        assert sigma <= s * slack
        g = xp.matmul(xp.matrix_transpose(j), g)  # one step of backprop: Jᵀδ
        norms.append(float(np.linalg.norm(t.np(g))))
    for layer, value in enumerate(norms):
        assert value <= g0 * (s * slack) ** layer * (1 + _HOST), (layer, value, g0, s)
    assert norms[-1] <= g0 * (s * slack) ** depth
