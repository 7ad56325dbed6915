"""Tests of the symbolic Array API namespace (`backends._symbolic`) itself.

The tier-S proofs run the real spec code on this namespace; these tests check that the shim
behaves like an Array API namespace (dispatch, broadcasting, dtypes, indexing, reductions) and
that the flagship use (proving stable softmax) works and stays fast.
"""

from __future__ import annotations

import time

import array_api_compat
import numpy as np
import pytest

sympy = pytest.importorskip("sympy")

from backends import _symbolic as S  # noqa: E402


def exprs(x: S.SymbolicArray) -> list:
    return list(x.to_expr().reshape(-1))


# --- dispatch and construction ----------------------------------------------------------------
def test_array_namespace_dispatches_to_the_module():
    z = S.symbols("z", (3,))
    assert array_api_compat.array_namespace(z) is S
    assert array_api_compat.array_namespace(z, S.asarray(1.0)) is S
    assert S.__array_api_version__ == "2023.12"
    assert array_api_compat.device(z) == "sympy"
    assert array_api_compat.is_array_api_obj(z)


def test_symbols_names_shapes_and_assumptions():
    z = S.symbols("z", (3,))
    assert z.shape == (3,) and z.ndim == 1 and z.size == 3 and len(z) == 3
    assert z.dtype == S.float64
    assert [str(s) for s in exprs(z)] == ["z_0", "z_1", "z_2"]
    assert all(s.is_real for s in exprs(z))
    assert exprs(z)[0].is_positive is None
    w = S.symbols("w", (2, 3), positive=True)
    assert str(w.to_expr()[0, 1]) == "w_0_1"
    assert w.to_expr()[1, 2].is_positive
    assert str(S.symbols("t", ()).expr()) == "t"


def test_python_numbers_become_sympy_numbers():
    x = S.asarray([0.0, 1.0, -1.0, 2.0, 0.5, 0.1])
    assert x.dtype == S.float64
    assert exprs(x)[:5] == [0, 1, -1, 2, sympy.Rational(1, 2)]
    assert all(isinstance(v, (sympy.Integer, sympy.Rational)) for v in exprs(x)[:5])
    assert isinstance(exprs(x)[5], sympy.Float) and float(exprs(x)[5]) == 0.1
    i = S.asarray([1, 2])
    assert i.dtype == S.int64 and all(isinstance(v, sympy.Integer) for v in exprs(i))
    b = S.asarray([True, False])
    assert b.dtype == S.bool and exprs(b) == [True, False]
    assert S.asarray(float("inf")).expr() == sympy.oo
    assert S.asarray(float("nan")).expr() is sympy.nan
    assert S.from_exprs([[1, 2], [3, sympy.Symbol("q")]]).dtype == S.float64


def test_only_float64_int64_bool_exist():
    assert not hasattr(S, "float32")
    assert S.isdtype(S.float64, "real floating")
    assert S.isdtype(S.int64, ("integral", "bool"))
    assert not S.isdtype(S.bool, "numeric")
    assert S.finfo(S.float64).eps == np.finfo(np.float64).eps
    assert S.finfo(S.float64).max == np.finfo(np.float64).max
    assert S.iinfo(S.int64).max == np.iinfo(np.int64).max
    with pytest.raises(ValueError):
        S.finfo(S.int64)
    info = S.__array_namespace_info__()
    assert info.default_device() == "sympy" and info.devices() == ["sympy"]
    assert info.default_dtypes()["real floating"] == S.float64
    assert set(info.dtypes()) == {"bool", "int64", "float64"}
    with pytest.raises(ValueError, match="device"):
        S.zeros(3, device="cuda")


def test_dtype_promotion():
    f, i, b = S.asarray([1.5]), S.asarray([2]), S.asarray([True])
    assert (f + i).dtype == S.float64
    assert (i + i).dtype == S.int64
    assert (i / i).dtype == S.float64 and exprs(S.asarray([1]) / S.asarray([2])) == [
        sympy.Rational(1, 2)
    ]
    assert (b * f).dtype == S.float64
    assert (i * 0.5).dtype == S.float64
    assert (i * 3).dtype == S.int64
    assert S.result_type(S.int64, S.float64) == S.float64
    assert S.result_type(i, b) == S.int64
    assert S.can_cast(S.int64, S.float64) and not S.can_cast(S.float64, S.int64)
    assert S.concat([i, f]).dtype == S.float64
    assert exprs(S.astype(S.asarray([2.0, 3.0]), S.int64)) == [2, 3]
    with pytest.raises(ValueError):
        S.astype(S.asarray([1.5]), S.int64)


# --- broadcasting, shapes, manipulation ---------------------------------------------------------
@pytest.mark.parametrize(
    ("shape1", "shape2"),
    [((3,), (1,)), ((2, 1), (1, 3)), ((4, 1, 3), (2, 1)), ((), (2, 3)), ((2, 3), (3,))],
)
def test_broadcasting_shapes_match_numpy(shape1, shape2):
    a, b = S.symbols("a", shape1), S.symbols("b", shape2)
    expected = (np.ones(shape1) + np.ones(shape2)).shape
    assert (a + b).shape == expected
    assert S.where(S.ones(shape1, dtype=S.bool), a, b).shape == expected
    assert S.maximum(a, b).shape == expected
    assert (a * 2.0).shape == a.shape


def test_broadcasting_mismatch_raises():
    with pytest.raises(ValueError):
        S.symbols("a", (3,)) + S.symbols("b", (2,))


@pytest.mark.parametrize(
    ("axis", "keepdims"), [(None, False), (0, True), (-1, False), ((0, 2), True), ((1, 2), False)]
)
def test_reduction_shapes_match_numpy(axis, keepdims):
    x = S.symbols("x", (2, 3, 4))
    expected = np.sum(np.ones((2, 3, 4)), axis=axis, keepdims=keepdims).shape
    for reduction in (S.sum, S.prod, S.max, S.min, S.mean, S.var):
        assert reduction(x, axis=axis, keepdims=keepdims).shape == expected


def test_manipulation_matches_numpy():
    values = np.arange(24.0).reshape(2, 3, 4)
    x = S.asarray(values)

    def same(sym, ref):
        assert sym.shape == ref.shape
        assert np.array_equal(sym.to_expr().astype(float), ref)

    same(S.moveaxis(x, 0, -1), np.moveaxis(values, 0, -1))
    same(S.permute_dims(x, (2, 0, 1)), np.transpose(values, (2, 0, 1)))
    same(S.reshape(x, (4, -1)), values.reshape(4, -1))
    same(S.expand_dims(x, axis=1), values[:, None])
    same(S.squeeze(x[:, :1], axis=1), values[:, 0])
    same(S.flip(x, axis=-1), values[..., ::-1])
    same(S.roll(x, 1, axis=1), np.roll(values, 1, axis=1))
    same(S.concat([x, x], axis=2), np.concatenate([values, values], axis=2))
    same(S.stack([x, x], axis=1), np.stack([values, values], axis=1))
    same(S.broadcast_to(x[:, :1], (2, 3, 4)), np.broadcast_to(values[:, :1], (2, 3, 4)))
    same(S.tile(x, (1, 2, 1)), np.tile(values, (1, 2, 1)))
    same(S.repeat(x, 2, axis=0), np.repeat(values, 2, axis=0))
    same(S.take(x, S.asarray([2, 0]), axis=1), np.take(values, [2, 0], axis=1))
    same(x.mT, np.swapaxes(values, -1, -2))
    same(x[0].T, values[0].T)


def test_indexing_matches_numpy():
    values = np.arange(24.0).reshape(2, 3, 4)
    x = S.asarray(values)
    keys = [
        0, -1, (1, 2), (slice(None), 1), (Ellipsis, 0), (None, 0), (slice(None, None, -1),),
        (0, slice(1, 3), None), (Ellipsis, slice(None, 2)), (1, 2, 3),
    ]
    for key in keys:
        got = x[key]
        assert got.shape == values[key].shape, key
        assert np.array_equal(got.to_expr().astype(float), values[key]), key
    mask = values[0, 0] > 1.5
    got = x[0, 0][S.asarray(mask)]
    assert np.array_equal(got.to_expr().astype(float), values[0, 0][mask])
    got = x[:, S.asarray([2, 0])]
    assert np.array_equal(got.to_expr().astype(float), values[:, [2, 0]])
    z = S.symbols("z", (4,))
    assert exprs(z[z > -S.inf]) == exprs(z)


def test_arrays_are_immutable():
    z = S.symbols("z", (3,))
    with pytest.raises(TypeError, match="immutable"):
        z[0] = 1.0
    copy = z.to_expr()
    copy[0] = 1.0  # to_expr() is a copy: changing it leaves the array alone
    assert str(z.to_expr()[0]) == "z_0"


# --- reductions ---------------------------------------------------------------------------------
def test_sum_is_one_flat_add_and_prod_one_flat_mul():
    z = S.symbols("z", (4,))
    zs = exprs(z)
    total = S.sum(z).expr()
    assert isinstance(total, sympy.Add) and set(total.args) == set(zs)
    assert total == sympy.Add(*zs)
    product = S.prod(z).expr()
    assert isinstance(product, sympy.Mul) and set(product.args) == set(zs)
    assert S.sum(S.asarray([True, True, False])).dtype == S.int64
    assert S.sum(S.asarray([True, True, False])).expr() == 2
    assert S.sum(S.zeros((0,))).expr() == 0


def test_max_and_min_build_sympy_max_and_min():
    z = S.symbols("z", (2, 3))
    zs = z.to_expr()
    assert S.max(z).expr() == sympy.Max(*zs.reshape(-1))
    row_max = S.max(z, axis=1)
    assert exprs(row_max) == [sympy.Max(*zs[0]), sympy.Max(*zs[1])]
    assert isinstance(exprs(row_max)[0], sympy.Max)
    assert exprs(S.min(z, axis=0)) == [sympy.Min(*zs[:, j]) for j in range(3)]
    assert S.max(S.asarray([1.0, 3.0, 2.0])).expr() == sympy.Float(3.0)  # 3.0 stays a Float
    assert S.max(S.asarray([1, 3, 2])).expr() == 3


def test_mean_var_std_on_numbers_match_numpy():
    values = np.array([[1.0, 2.0, 4.0], [3.0, 5.0, 10.0]])
    x = S.asarray(values)
    for axis in (None, 0, 1):
        for ours, ref in (
            (S.mean(x, axis=axis), np.mean(values, axis=axis)),
            (S.var(x, axis=axis), np.var(values, axis=axis)),
            (S.var(x, axis=axis, correction=1), np.var(values, axis=axis, ddof=1)),
            (S.std(x, axis=axis), np.std(values, axis=axis)),
        ):
            np.testing.assert_allclose(ours.to_expr().astype(float), ref, rtol=1e-14)


def test_argmax_needs_numbers():
    assert S.argmax(S.asarray([1.0, 3.0, 3.0, 2.0])).expr() == 1
    assert exprs(S.argmin(S.asarray([[4.0, 1.0], [0.0, 5.0]]), axis=1)) == [1, 0]
    with pytest.raises(TypeError, match="symbolic"):
        S.argmax(S.symbols("z", (3,)))


def test_cumulative_sum():
    z = S.symbols("z", (3,))
    a, b, c = exprs(z)
    assert exprs(S.cumulative_sum(z)) == [a, a + b, a + b + c]
    assert exprs(S.cumulative_sum(z, include_initial=True)) == [0, a, a + b, a + b + c]
    values = np.arange(6.0).reshape(2, 3)
    for axis in (0, 1):
        got = S.cumulative_sum(S.asarray(values), axis=axis).to_expr().astype(float)
        assert np.array_equal(got, np.cumsum(values, axis=axis))
    with pytest.raises(ValueError):
        S.cumulative_sum(S.asarray(values))


def test_take_along_axis():
    x = S.symbols("x", (2, 3))
    xs = x.to_expr()
    picked = S.take_along_axis(x, S.asarray([[2], [0]]), axis=1)
    assert picked.shape == (2, 1)
    assert exprs(picked) == [xs[0, 2], xs[1, 0]]
    picked = S.take_along_axis(x, S.asarray([[1, 0, 1]]), axis=0)
    assert exprs(picked) == [xs[1, 0], xs[0, 1], xs[1, 2]]


# --- comparisons and predicates ---------------------------------------------------------------
def test_numbers_compare_decidably():
    x = S.asarray([1.0, 2.0])
    assert exprs(x < 1.5) == [True, False]
    assert exprs(x >= 2) == [False, True]
    assert exprs(x == S.asarray([1.0, 3.0])) == [True, False]
    assert exprs(S.asarray([sympy.sqrt(2)]) > 1.41) == [True]
    assert exprs(S.asarray(float("nan")) != S.asarray(float("nan"))) == [True]
    assert (x < 1.5).dtype == S.bool
    assert bool(S.all(x > 0)) and not bool(S.any(x > 5))


def test_comparisons_decided_by_assumptions():
    p = S.symbols("p", (2,), positive=True)
    assert exprs(p > 0) == [True, True]
    z = S.symbols("z", (2,))
    assert exprs(z == z) == [True, True]
    assert exprs(z < z + 1) == [True, True]


def test_undecidable_comparison_raises_type_error():
    z = S.symbols("z", (2,))
    with pytest.raises(TypeError, match=r"symbolic comparison z_0 < z_1 is undecidable"):
        z[0] < z[1]  # noqa: B015
    with pytest.raises(TypeError, match="undecidable"):
        S.where(z > 0, z, 0.0)
    with pytest.raises(TypeError, match="undecidable"):
        bool(z[0])
    with pytest.raises(TypeError, match="float"):
        float(z[0])


def test_isfinite_of_max_of_real_symbols():
    z = S.symbols("z", (3,))
    m = S.max(z, axis=-1, keepdims=True)
    assert exprs(S.isfinite(m)) == [True]
    assert exprs(S.isnan(m)) == [False]
    assert exprs(S.isinf(m)) == [False]
    assert exprs(S.isfinite(S.exp(z - m))) == [True] * 3
    special = S.asarray([1.0, float("inf"), -float("inf"), float("nan")])
    assert exprs(S.isfinite(special)) == [True, False, False, False]
    assert exprs(S.isinf(special)) == [False, True, True, False]
    assert exprs(S.isnan(special)) == [False, False, False, True]


def test_where_with_numeric_mask_and_scalars():
    z = S.symbols("z", (3,))
    zs = exprs(z)
    mask = S.asarray([True, False, True])
    assert exprs(S.where(mask, z, 0.0)) == [zs[0], 0, zs[2]]
    assert exprs(S.where(mask, -S.inf, z)) == [-sympy.oo, zs[1], -sympy.oo]
    assert exprs(S.where(S.asarray([1.0, 2.0, 3.0]) > 1.5, z, z * 2)) == [2 * zs[0], zs[1], zs[2]]
    assert exprs(mask & ~mask) == [False] * 3
    assert exprs(mask | S.asarray([False, True, False])) == [True] * 3


# --- linear algebra -------------------------------------------------------------------------
def test_matmul_and_vecdot_with_numbers():
    a = S.symbols("a", (2, 2))
    (a00, a01), (a10, a11) = a.to_expr()
    v = S.asarray([1.0, 2.0])
    assert exprs(a @ v) == [a00 + 2 * a01, a10 + 2 * a11]
    assert exprs(S.matmul(v, a)) == [a00 + 2 * a10, a01 + 2 * a11]
    assert exprs(S.vecdot(a, v)) == [a00 + 2 * a01, a10 + 2 * a11]
    # v broadcasts to rows [1, 2]; the sum runs down the columns
    assert exprs(S.linalg.vecdot(a, v, axis=0)) == [a00 + a10, 2 * a01 + 2 * a11]
    m = S.from_exprs([[1, 2], [3, 4]])  # exact integers, float64 dtype (3.0 would be a Float)
    assert m.dtype == S.float64
    assert exprs(a @ m) == [a00 + 3 * a01, 2 * a00 + 4 * a01, a10 + 3 * a11, 2 * a10 + 4 * a11]
    # with numbers substituted the result equals NumPy's
    numbers = {a00: 5, a01: -1, a10: 2, a11: 7}
    product = np.array([[e.subs(numbers) for e in row] for row in (a @ m).to_expr()], float)
    assert np.array_equal(product, np.array([[5, -1], [2, 7]]) @ np.array([[1, 2], [3, 4]]))


def test_matmul_batches_like_numpy():
    x, y = S.symbols("x", (3, 2, 4)), S.symbols("y", (4, 5))
    assert (x @ y).shape == (3, 2, 5)
    assert S.matmul(S.symbols("v", (4,)), y).shape == (5,)
    assert S.tensordot(x, y, axes=1).shape == (3, 2, 5)
    assert S.linalg.outer(S.symbols("v", (2,)), S.symbols("w", (3,))).shape == (2, 3)
    with pytest.raises(ValueError):
        y @ x


def test_vector_norm():
    z = S.symbols("z", (3,))
    assert S.linalg.vector_norm(z).expr() == sympy.sqrt(sympy.Add(*[s**2 for s in exprs(z)]))
    assert float(S.linalg.vector_norm(S.asarray([3.0, -4.0]), ord=1)) == 7.0
    assert S.linalg.vector_norm(S.asarray([3, -4])).expr() == 5
    assert float(S.linalg.vector_norm(S.asarray([3.0, -4.0]), ord=S.inf)) == 4.0


# --- Python protocols and interop ----------------------------------------------------------
def test_scalar_conversions_and_numpy_interop():
    assert float(S.sum(S.asarray([1.5, 2.0]))) == 3.5
    assert int(S.asarray(3)) == 3
    assert bool(S.asarray(1.0) > 0)
    z = S.symbols("z", (3,))
    assert isinstance(np.ones(3) + z, S.SymbolicArray)
    assert isinstance(np.float64(2.0) * z, S.SymbolicArray)
    with pytest.raises(TypeError, match="to_expr"):
        np.asarray(z)
    assert "z_0" in repr(z)


def test_elementwise_functions_apply_sympy_functions():
    z = S.symbols("z", (2,))
    zs = exprs(z)
    assert exprs(S.exp(z)) == [sympy.exp(s) for s in zs]
    assert exprs(S.tanh(z)) == [sympy.tanh(s) for s in zs]
    assert exprs(S.erf(z)) == [sympy.erf(s) for s in zs]
    assert exprs(S.logaddexp(z[0], z[1])) == [sympy.log(sympy.exp(zs[0]) + sympy.exp(zs[1]))]
    assert exprs(z**2) == [s**2 for s in zs]
    assert exprs(0.5 * z) == [s / 2 for s in zs]
    assert exprs(S.clip(z, min=0.0)) == [sympy.Max(0, s) for s in zs]
    assert exprs(S.round(S.asarray([0.5, 1.5, 2.5, 2.6]))) == [0, 2, 2, 3]
    assert exprs(S.log(S.asarray(0.0))) == [-sympy.oo]
    assert S.exp(S.asarray([1, 2])).dtype == S.float64


# --- the flagship use -------------------------------------------------------------------------
def _softmax(z):
    """Stable softmax written as ordinary Array API code."""
    xp = array_api_compat.array_namespace(z)
    m = xp.max(z, axis=-1, keepdims=True)
    e = xp.exp(z - m)
    return e / xp.sum(e, axis=-1, keepdims=True)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_stable_softmax_is_proven_equal_to_the_textbook_formula(n):
    start = time.perf_counter()
    z = S.symbols("z", (n,))
    zs = exprs(z)
    s = _softmax(z)
    assert s.shape == (n,) and s.dtype == S.float64
    m = sympy.Symbol("m", real=True)
    denominator = sympy.Add(*[sympy.exp(v) for v in zs])
    for i, expr in enumerate(exprs(s)):
        shifted = expr.subs(sympy.Max(*zs), m)
        assert m in shifted.free_symbols or n == 1
        proved = sympy.cancel(sympy.expand(shifted, power_exp=True))
        assert sympy.cancel(proved - sympy.exp(zs[i]) / denominator) == 0
    assert time.perf_counter() - start < 1.0


def test_stable_softmax_over_rows_of_a_matrix():
    z = S.symbols("z", (2, 3))
    s = _softmax(z)
    assert s.shape == (2, 3)
    total = S.sum(s, axis=-1)
    for row, value in zip(z.to_expr(), exprs(total), strict=True):
        assert sympy.cancel(sympy.expand(value.subs(sympy.Max(*row), sympy.Symbol("m")),
                                         power_exp=True)) == 1
