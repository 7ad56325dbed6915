"""§1 Linear algebra: tier S, the matmul identities, and tier D through an SVD.

Tier S runs the spec's own code on SymPy symbols and proves the identities exactly (the
symbolic namespace has no SVD, so the SVD-based equations have no tier S). Tier P is in
conformance/properties/linalg.py, except the identities of the backend's own ``matmul``
(recorded under ``dot``), which check no implementation of an equation. Tier D of the
equations SymPy can trace is in conformance/records/linalg.py; the SVD-based ones are here.
Tiers X, E and R are generic, in test_tiers.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import spec
from conformance import derivatives, symbolic
from conformance.helpers import np64, on, skip_if_limited
from conformance.properties.linalg import _conditioned, _matrices, _underflow
from conformance.tolerances import FINITE_DIFFERENCE, grads, values


def _signed(name, signs):
    """A symbolic vector of positive symbols with the given signs (so |xᵢ| is decidable)."""
    xp = symbolic.backend().xp
    p = symbolic.flat(symbolic.symbols(name, (len(signs),), positive=True))
    return xp.asarray([s * e for s, e in zip(signs, p, strict=True)], dtype=xp.float64)


SIGNS = [(1,), (1, -1), (-1, 1, 1), (1, -1, -1, 1)]


def _drop_eps(e, eps=1e-8):
    """Replace max(‖x‖, ε) by ‖x‖: the cosine's guard, inactive when ‖x‖ ≥ ε."""
    e = sp.sympify(e)
    return e.replace(lambda a: isinstance(a, sp.Max) and any(
        b.is_Number and abs(float(b) - eps) < 1e-20 for b in a.args),
        lambda a: sp.Max(*[b for b in a.args if not (b.is_Number and
                                                       abs(float(b) - eps) < 1e-20)]))


# ============================================================================ tier S
@pytest.mark.spec("dot", tier="S", identities=("symmetric", "bilinear"))
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_dot_symmetric_and_bilinear(n):
    x, y, z = (symbolic.symbols(s, (n,)) for s in "xyz")
    a, b = sp.symbols("a b", real=True)
    xy = symbolic.exprs(spec.dot(x, y))
    symbolic.assert_equal(xy, symbolic.exprs(spec.dot(y, x)), "x·y = y·x")
    lhs = symbolic.exprs(spec.dot(x * a + z * b, y))
    rhs = a * xy + b * symbolic.exprs(spec.dot(z, y))
    symbolic.assert_equal(lhs, rhs, "(ax + bz)·y")
    textbook = sp.Add(*[xi * yi for xi, yi in zip(symbolic.flat(x), symbolic.flat(y),
                                                  strict=True)])
    symbolic.assert_equal(xy, textbook, "Σ xᵢyᵢ")


@pytest.mark.spec("norm", "dot", tier="S", identities=(
    "norm:scaled_is_textbook", "norm:dot_self", "dot:norm_squared"))
@pytest.mark.parametrize("signs", SIGNS, ids=str)
def test_norm_scaled_code_is_textbook_and_squares_to_dot(signs):
    x = _signed("x", signs)
    nx = symbolic.exprs(spec.norm(x))[()]
    xs = symbolic.flat(x)
    symbolic.assert_equal([nx], [sp.sqrt(sp.Add(*[e**2 for e in xs]))], "max-scaled norm")
    symbolic.assert_equal([nx**2], [symbolic.exprs(spec.dot(x, x))[()]], "‖x‖² = x·x")


@pytest.mark.spec("norm", tier="S", identity="homogeneous")
@pytest.mark.parametrize("signs", SIGNS[1:], ids=str)
def test_norm_homogeneous(signs):
    x = _signed("x", signs)
    c = sp.Symbol("c", positive=True)
    plain = symbolic.exprs(spec.norm(x))[()]
    for factor in (c, -c):
        scaled = symbolic.exprs(spec.norm(x * factor))[()]
        symbolic.assert_equal([scaled], [c * plain], f"‖{factor}·x‖ = c‖x‖")


@pytest.mark.spec("cosine_similarity", tier="S",
                  identities=("textbook", "scale_invariant", "parallel"))
@pytest.mark.parametrize(("sx", "sy"), [((1, -1), (1, 1)), ((1, -1, 1), (-1, 1, 1))], ids=str)
def test_cosine_textbook_scale_invariant_and_parallel(sx, sy):
    x, y = _signed("x", sx), _signed("y", sy)
    xs, ys = symbolic.flat(x), symbolic.flat(y)
    cos = _drop_eps(symbolic.exprs(spec.cosine_similarity(x, y))[()])
    textbook = sp.Add(*[a * b for a, b in zip(xs, ys, strict=True)]) / (
        sp.sqrt(sp.Add(*[a**2 for a in xs])) * sp.sqrt(sp.Add(*[b**2 for b in ys])))
    symbolic.assert_equal([cos], [textbook], "x·y/(‖x‖‖y‖)")
    a, b = sp.symbols("a b", positive=True)
    scaled = _drop_eps(symbolic.exprs(spec.cosine_similarity(x * a, y * b))[()])
    symbolic.assert_equal([scaled], [textbook], "cos(ax, by) = cos(x, y)")
    same = _drop_eps(symbolic.exprs(spec.cosine_similarity(x, x * a))[()])
    opposite = _drop_eps(symbolic.exprs(spec.cosine_similarity(x, x * -a))[()])
    symbolic.assert_equal([same, opposite], [1, -1], "cos(x, ±cx) = ±1")


@pytest.mark.spec("frobenius_norm", tier="S", identities=("flattened_norm", "trace"))
@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (2, 3), (3, 2)], ids=str)
def test_frobenius_is_flattened_norm_and_trace(shape):
    xp = symbolic.backend().xp
    m, n = shape
    signs = [(-1) ** (i + i // 3) for i in range(m * n)]
    w = xp.reshape(_signed("w", signs), shape)
    fro = symbolic.exprs(spec.frobenius_norm(w))[()]
    flat = symbolic.exprs(spec.norm(xp.reshape(w, (m * n,))))[()]
    symbolic.assert_equal([fro], [flat], "‖W‖_F = ‖vec W‖")
    gram = symbolic.exprs(xp.matmul(xp.matrix_transpose(w), w))
    trace = sp.Add(*[gram[i, i] for i in range(n)])
    symbolic.assert_equal([fro**2], [trace], "‖W‖_F² = tr(WᵀW)")


# ====================================================================== tier P: matmul
@pytest.mark.spec("dot", tier="P", identities=("matmul_transpose", "matmul_associative"))
@given(data=st.data())
def test_matmul_transpose_and_associativity(backend, dtype, data):
    """(AB)ᵀ = BᵀAᵀ and A(BC) = (AB)C on the backend's own matmul (EQUATIONS.md §1): no
    equation of the spec is called, so this is not a property of an implementation."""
    m, k, n, p = (data.draw(st.integers(1, 6), label=s) for s in "mknp")
    a, b, c = _matrices(data.draw, dtype, m, k, n, p)
    xp = backend.xp
    ab, bb, cb = on(backend, a, b, c)
    t = xp.matrix_transpose
    lhs = np64(backend, t(xp.matmul(ab, bb)))
    rhs = np64(backend, xp.matmul(t(bb), t(ab)))
    eps = np.finfo(dtype).eps
    a64, b64, c64 = (q.astype(np.float64) for q in (a, b, c))
    # a length-k dot product rounds by ≤ k·ε·(|A||B|) on each side (plus underflow)
    bound_ab = 2 * k * eps * (np.abs(a64) @ np.abs(b64)) + _underflow(dtype, k)
    assert np.all(np.abs(lhs - rhs) <= bound_ab.T), "(AB)ᵀ = BᵀAᵀ"
    left = np64(backend, xp.matmul(ab, xp.matmul(bb, cb)))
    right = np64(backend, xp.matmul(xp.matmul(ab, bb), cb))
    # each side is within (k + n)·ε·|A||B||C| of the exact product (plus underflow)
    bound = 2 * (k + n) * eps * (np.abs(a64) @ np.abs(b64) @ np.abs(c64))
    bound = bound + _underflow(dtype, k + n, a64, c64)
    assert np.all(np.abs(left - right) <= 2 * bound), "A(BC) = (AB)C"
    exact = a64 @ b64 @ c64
    assert np.all(np.abs(left - exact) <= bound)


# ========================================================================= tier D: SVD
#: an evaluation through an SVD rounds by ≈ max(m, n)·ε·|f| (m, n ≤ 5, |f| ≤ 9 here) rather
#: than the ≈ ε|f| of a few elementary operations that FINITE_DIFFERENCE's and GRADS's
#: absolute floors are set for: central differences' rounding term ε|f|/h and autograd's
#: error grow ~5×, so both floors are taken 10×
_SVD_FLOOR = 10


def _check_without_sympy(backend, name, fn, w, closed):
    """Central differences (and autograd) of a scalar fn(W) against a closed form (host)."""
    if "float64" not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no float64 for central differences")
    fd = derivatives.central_difference(backend, fn, [w], 0, np.asarray(1.0))
    np.testing.assert_allclose(fd, closed, rtol=FINITE_DIFFERENCE.rtol,
                               atol=FINITE_DIFFERENCE.atol * _SVD_FLOOR,
                               err_msg=f"{name}: central differences vs closed form")
    if backend.has_autograd:
        auto = derivatives.autograd(backend, fn, [w], 0, np.asarray(1.0))
        np.testing.assert_allclose(auto, closed, rtol=grads("float64").rtol,
                                   atol=grads("float64").atol * _SVD_FLOOR,
                                   err_msg=f"{name}: autograd vs closed form")


def _truncation_error(rank):
    def error(w):
        diff = w - spec.low_rank_approximation(w, rank=rank)
        return spec.frobenius_norm(diff) ** 2
    return error


@pytest.mark.spec("low_rank_approximation", tier="D", identity="gradient")
@pytest.mark.parametrize(("shape", "rank"), [((4, 3), 1), ((3, 5), 2)])
def test_truncation_error_gradient_is_twice_the_residual(backend, shape, rank):
    """∂‖W − W_k‖_F²/∂W = 2(W − W_k): the closed form from the spec's own W_k, against
    central differences of the spec's error and autograd through the backend's SVD."""
    skip_if_limited(backend, "low_rank_approximation", "D")
    sigmas = [4.0, 2.0, 1.0]
    w = _conditioned(rank, *shape, sigmas)
    (wb,) = on(backend, w)
    residual = w - np64(backend, spec.low_rank_approximation(wb, rank=rank))
    # the closed form must be the true gradient: it agrees with NumPy's SVD residual too, to
    # the backward error of the two SVDs (a few ε·σ₁), inside the float64 value tolerance at σ₁
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    np.testing.assert_allclose(residual, (u[:, rank:] * s[rank:]) @ vt[rank:], rtol=0,
                               atol=values("float64").rtol * sigmas[0])
    _check_without_sympy(backend, "low_rank_approximation", _truncation_error(rank), w,
                         2 * residual)


@pytest.mark.spec("spectral_norm", tier="D", identity="gradient")
@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 5)])
def test_spectral_norm_gradient_is_top_singular_pair(backend, shape):
    skip_if_limited(backend, "spectral_norm", "D")
    w = _conditioned(sum(shape), *shape, [3.0, 1.5, 1.0, 0.5, 0.25])
    u, _, vt = np.linalg.svd(w)
    _check_without_sympy(backend, "spectral_norm", spec.spectral_norm, w,
                         np.outer(u[:, 0], vt[0]))
