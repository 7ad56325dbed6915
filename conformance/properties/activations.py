"""Tier P properties of §3 Activations, as checks of an implementation.

`impl` is the implementation under test with the spec's signature; other equations a check
needs as references come from `spec`. Inputs are drawn on the host (`_values`: arrays of up to
two dimensions, bounded), so the elementwise identities are checked on every shape at once.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import strategies as st

import spec
from conformance import oracles, precision, records
from conformance import oracles_activations as oa
from conformance import strategies as cst
from conformance.properties import ALL_DTYPES, Example, prop


def _values(dtype, lo=-30.0, hi=30.0):
    return cst.arrays(dtype, cst.shapes(max_dims=2), min_value=lo, max_value=hi)


def _weights(dtype, n_in, hidden):
    return cst.arrays(dtype, (hidden, n_in), min_value=-2, max_value=2)


@prop("relu", "odd_part", "idempotent", "nonnegative", dtypes=ALL_DTYPES)
def relu_nonnegative_odd_part_idempotent(impl, t):
    x = t.draw(_values(t.dtype, -1e3, 1e3), label="x")
    xb = t.on(x)
    r = t.np(impl(xb))
    assert np.all(r >= 0)
    np.testing.assert_array_equal(r, np.maximum(x, 0))
    np.testing.assert_array_equal(r - t.np(impl(-xb)), x.astype(np.float64))
    np.testing.assert_array_equal(t.np(impl(impl(xb))), r)
    assert np.isnan(t.np(impl(t.on(np.array([np.nan], dtype=t.dtype))))[0])


@prop("relu_grad", "zero_or_one", dtypes=ALL_DTYPES)
def relu_grad_is_zero_or_one(impl, t):
    x = t.draw(_values(t.dtype), label="x")
    np.testing.assert_array_equal(t.np(impl(t.on(x))), (x > 0).astype(float))
    special = np.array([0.0, -0.0, np.nan], dtype=t.dtype)
    got = t.np(impl(t.on(special)))
    assert got[0] == 0 and got[1] == 0 and np.isnan(got[2])


_SLOPES = st.sampled_from([0.01, 0.2, 0.0, -0.5])


@prop("leaky_relu", "slope_below_zero", dtypes=ALL_DTYPES)
def leaky_relu_slope_alpha_below_zero(impl, t):
    alpha = t.draw(_SLOPES, label="alpha")
    x = t.draw(_values(t.dtype), label="x")
    xb = t.on(x)
    got = t.np(impl(xb, negative_slope=alpha))
    expected = np.where(x < 0, np.asarray(alpha, dtype=t.dtype) * x, x).astype(np.float64)
    t.close(got, expected, what="leaky_relu")
    np.testing.assert_array_equal(got[x >= 0], x[x >= 0])
    if alpha == 0.0:
        np.testing.assert_array_equal(got, t.np(spec.relu(xb)))


@prop("leaky_relu_grad", "two_values", dtypes=ALL_DTYPES)
def leaky_relu_grad_is_one_or_alpha(impl, t):
    alpha = t.draw(_SLOPES, label="alpha")
    x = t.draw(_values(t.dtype), label="x")
    grad = t.np(impl(t.on(x), negative_slope=alpha))
    # α as the dtype holds it (float32 rounds 0.01 and 0.2)
    np.testing.assert_array_equal(grad, np.where(x > 0, 1.0, float(np.asarray(alpha,
                                                                               t.dtype))))


@prop("leaky_relu_grad", "two_values", dtypes=ALL_DTYPES, draws=False)
def leaky_relu_grad_at_the_kink_and_nan(impl, t):
    # a tiny positive x: 1e−30, or float16's smallest normal (6.1e−5; 1e−30 is 0 there)
    tiny = max(1e-30, float(precision.finfo(t.dtype).tiny))
    x = np.array([-3.0, -0.0, 0.0, tiny, 5.0, np.nan], dtype=precision.host_dtype(t.dtype))
    got = t.np(impl(t.on(x), negative_slope=0.25))
    np.testing.assert_array_equal(got[:5], [0.25, 0.25, 0.25, 1.0, 1.0])
    assert np.isnan(got[5])


@prop("sigmoid", "symmetry", "range", dtypes=ALL_DTYPES)
def sigmoid_symmetric_bounded_monotone(impl, t):
    x = t.draw(_values(t.dtype, -60, 60), label="x")
    xb = t.on(x)
    s = t.np(impl(xb))
    assert np.all((s >= 0) & (s <= 1))
    # σ(−x) and 1 − σ(x) are each within an ulp (≤ eps in [0, 1]) of the exact value: 2 eps
    # absolute
    np.testing.assert_allclose(t.np(impl(-xb)), 1 - s, rtol=0, atol=2 * t.eps)
    order = np.argsort(x.reshape(-1), kind="stable")
    assert np.all(np.diff(s.reshape(-1)[order]) >= 0)


@prop("sigmoid", "extremes", dtypes=ALL_DTYPES, draws=False)
def sigmoid_at_plus_minus_1000_no_overflow_no_nan(impl, t):
    x = np.array([-1000.0, -100.0, -88.7, 88.7, 100.0, 1000.0, -np.inf, np.inf],
                 dtype=precision.host_dtype(t.dtype))
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        s = t.np(impl(t.on(x)))
    assert not np.any(np.isnan(s))
    assert s[0] == 0 and s[5] == 1 and s[6] == 0 and s[7] == 1
    # σ(−100) = e^{−100}·(1 − …) ≈ 3.7e−44: normal in float64, subnormal in float32 (0 where
    # subnormals flush), below half the smallest subnormal of float16 (6e−8) and bfloat16
    # (9.2e−41), where it correctly rounds to 0
    assert 0 <= s[1] < 1e-40
    assert s[1] > 0 if t.dtype == "float64" else (s[1] == 0 or t.dtype == "float32")


@prop("sigmoid_grad", "bounds", dtypes=ALL_DTYPES)
def sigmoid_grad_bounded_even_peak_at_zero(impl, t):
    x = t.draw(_values(t.dtype, -60, 60), label="x")
    xb = t.on(x)
    g = t.np(impl(xb))
    assert np.all((g >= 0) & (g <= 0.25))
    np.testing.assert_array_equal(g, t.np(impl(-xb)))
    s = t.np(spec.sigmoid(xb))
    # s(1 − s) from the rounded s: the value tolerance, and 2 eps absolute where 1 − s
    # cancels (s within an ulp of 1)
    np.testing.assert_allclose(g, s * (1 - s), rtol=t.tol.rtol, atol=2 * t.eps)
    assert t.np(impl(t.on(np.zeros(1, t.dtype))))[0] == 0.25


@prop("tanh", "via_sigmoid", "odd_and_bounded", dtypes=ALL_DTYPES)
def tanh_is_two_sigmoid_minus_one_odd_bounded(impl, t):
    x = t.draw(_values(t.dtype), label="x")
    xb = t.on(x)
    th = t.np(impl(xb))
    assert np.all(np.abs(th) <= 1)
    np.testing.assert_array_equal(t.np(impl(-xb)), -th)
    via = 2 * t.np(spec.sigmoid(2 * xb)) - 1
    # 2σ(2x) − 1 cancels near 0: its error is absolute, a few ulps of σ ≈ ½ (4 eps)
    np.testing.assert_allclose(th, via, rtol=t.tol.rtol, atol=4 * t.eps)


@prop("tanh_grad", "bounds", dtypes=ALL_DTYPES)
def tanh_grad_bounded_even_and_four_sigmoid_grad(impl, t):
    x = t.draw(_values(t.dtype), label="x")
    xb = t.on(x)
    g = t.np(impl(xb))
    assert np.all((g >= 0) & (g <= 1))
    np.testing.assert_array_equal(g, t.np(impl(-xb)))
    assert t.np(impl(t.on(np.zeros(1, t.dtype))))[0] == 1  # the maximum, at 0
    t.close(g, 4 * t.np(spec.sigmoid_grad(2 * xb)), what="tanh' = 4σ'(2x)")
    th = t.np(spec.tanh(xb))
    # 1 − t² near |t| = 1 carries 2|δt| absolutely: the library's tanh within its 4-ulp budget
    # (ulps of size eps/2 there) gives 4 eps, and the square and the subtraction round too
    np.testing.assert_allclose(g, 1 - th * th, rtol=t.tol.rtol, atol=8 * t.eps)


@prop("erf", "odd_and_saturating", dtypes=ALL_DTYPES)
def erf_odd_bounded_monotone(impl, t):
    x = t.draw(_values(t.dtype, -10, 10), label="x")
    xb = t.on(x)
    e = t.np(impl(xb))
    assert np.all(np.abs(e) <= 1)
    np.testing.assert_array_equal(t.np(impl(-xb)), -e)
    order = np.argsort(x.reshape(-1), kind="stable")
    assert np.all(np.diff(e.reshape(-1)[order]) >= 0)


@prop("erf", "odd_and_saturating", dtypes=ALL_DTYPES, draws=False)
def erf_special_values(impl, t):
    # a tiny x: 1e−30, or float16's smallest normal (6.1e−5; 1e−30 is 0 there)
    tiny = max(1e-30, float(precision.finfo(t.dtype).tiny))
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, tiny, 30.0, -30.0],
                 dtype=precision.host_dtype(t.dtype))
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        e = t.np(impl(t.on(x)))
    assert e[0] == 1 and e[1] == -1 and np.isnan(e[2]) and e[3] == 0 and e[4] == 0
    assert e[6] == 1 and e[7] == -1
    # erf(x) = 2x/√π·(1 − x²/3 + …): at the tiny x (as the dtype holds it) the first term is
    # exact far below an ulp, so the error is the rounding of x·A(x²)/B(x²), a few ulps (4 eps
    # relative)
    np.testing.assert_allclose(e[5], 2 * float(x[5]) / math.sqrt(math.pi), rtol=4 * t.eps)


def _native_erf(t):
    """The backend's own erf (host array in, float64 host array out), or None when it has
    none. NumPy, array-api-strict and Dask (NumPy underneath) have SciPy's; torch and JAX get
    their inputs on the backend, in the run's dtype (bfloat16 included)."""
    backend = t.backend
    if backend.id in ("numpy", "array_api_strict", "dask"):
        special = pytest.importorskip("scipy.special")
        # SciPy evaluates float16 in float32: its result rounded once to the dtype
        return lambda host: special.erf(host).astype(host.dtype)
    if backend.id.startswith("cupy"):
        special = pytest.importorskip("cupyx.scipy.special")
        return lambda host: t.np(special.erf(t.on(host)))
    if backend.id.startswith("torch"):
        import torch

        return lambda host: t.np(torch.special.erf(t.on(host)))
    if backend.id.startswith("jax"):
        import jax.scipy.special as jss

        return lambda host: t.np(jss.erf(t.on(host)))
    return None


@prop("erf", "native_agreement", draws=False)
def erf_agrees_with_the_backends_native_erf(impl, t):
    """The proof that would allow a backend to swap in its native erf: on the 10⁵-point sweep
    the native erf is itself within erf's ulp budget of mpmath (so the swap passes tier R) and
    within that budget of the implementation under test.

    float32 and float64 only: those are the dtypes the spec calls a native erf in (float16 and
    bfloat16 are computed in float32). The native low-precision kernels would not pass: on the
    CPU, torch 2.x's float16 erf is 5 ulp from the correctly rounded value at x ≈ 1.6e−5, and
    its bfloat16 erf returns 0 for |x| < 1e−7 (255 ulp), where erf(x) ≈ 1.13x."""
    native = _native_erf(t)
    if native is None:
        pytest.skip(f"{t.backend.id} has no native erf to compare with")
    x, want = oa.erf_sweep(t.dtype)
    budget = records.ulp_budget("erf", t.dtype)
    theirs = np.asarray(native(np.array(x)), dtype=np.float64)
    ours = t.np(impl(t.on(np.array(x))))
    native_error = oracles.ulp_error(theirs, want, t.dtype).max()
    assert native_error <= budget, f"native erf is {native_error} ulp from mpmath"
    difference = oracles.ulp_error(ours, theirs, t.dtype).max()
    assert difference <= budget, f"ours and native differ by {difference} ulp"


@prop("erf_grad", "bounds", dtypes=ALL_DTYPES)
def erf_grad_bounded_even_peak_at_zero(impl, t):
    x = t.draw(_values(t.dtype, -10, 10), label="x")
    xb = t.on(x)
    g = t.np(impl(xb))
    # 2/√π as the dtype holds it, times an exponential ≤ 1: a few roundings above (4 eps)
    assert np.all((g >= 0) & (g <= 2 / math.sqrt(math.pi) * (1 + 4 * t.eps)))
    np.testing.assert_array_equal(g, t.np(impl(-xb)))
    t.close(impl(t.on(np.zeros(1, t.dtype))), [2 / math.sqrt(math.pi)], what="erf'(0)")


def _bf16(*values) -> np.ndarray:
    """A bfloat16 array (ml_dtypes' on the host) for an example found in bfloat16."""
    return np.array(values, dtype=precision.host_dtype("bfloat16"))


def _widened(lo: float, hi: float, t) -> tuple[float, float]:
    """Real bounds of a result, widened by one ulp of the dtype (at most eps·|bound|) each
    way: the result is its exact value rounded once (the dtype policy), so where a bound is
    not itself representable the result may round past it to the nearest representable
    number (silu' peaks at 1.0998, which rounds to 1.1016 in bfloat16). In float32 and
    float64 the widening is below 3e−7."""
    return lo - t.eps * abs(lo), hi + t.eps * abs(hi)


@prop("gelu", "forms_close", dtypes=ALL_DTYPES, examples=(
    # issue 17 (thorough profile, torch bfloat16): the forms differ by 2e−4 here, and their
    # two roundings to bfloat16 fall either side of a boundary, one ulp (0.0078) apart
    Example({"x": _bf16(1.3984375)}, dtype="bfloat16",
            note="issue 17, torch, bfloat16, thorough profile: two roundings one ulp apart"),
))
def gelu_forms_differ_by_less_than_1e_3(impl, t):
    x = t.draw(_values(t.dtype, -1e4, 1e4), label="x")
    xb = t.on(x)
    exact = t.np(impl(xb))
    approx = t.np(impl(xb, approximate="tanh"))
    # the exact values differ by < 1e−3 (4.73e−4 at most: the dense-grid property below);
    # each result is its value rounded once, half an ulp each way, so the results differ by
    # < 1e−3 + one ulp of the dtype at the larger (≤ eps·|value|)
    ulp = t.eps * np.maximum(np.abs(exact), np.abs(approx)).astype(np.float64)
    assert np.all(np.abs(exact.astype(np.float64) - approx) < 1e-3 + ulp)


@prop("gelu", "forms_close", draws=False)
def gelu_forms_largest_difference_located(impl, t):
    """Dense grid over [−10, 10] (beyond, both forms are x or 0 to far below 1e−3): the
    largest |GELU − GELU_tanh| is 4.73e−4 at |x| ≈ 2.70 — below 1e−3, and not 0 (the option
    really selects a different function)."""
    x = np.linspace(-10.0, 10.0, 400_001).astype(t.dtype)
    xb = t.on(x)
    diff = np.abs(t.np(impl(xb)) - t.np(impl(xb, approximate="tanh")))
    i = int(np.argmax(diff))
    assert 4.6e-4 < diff[i] < 4.8e-4 and abs(abs(float(x[i])) - 2.70) < 0.02, (x[i], diff[i])


_FORMS = st.sampled_from(["none", "tanh"])


@prop("gelu", "limits", dtypes=ALL_DTYPES)
def gelu_limits_and_minimum(impl, t):
    approximate = t.draw(_FORMS, label="approximate")
    x = t.draw(_values(t.dtype, -50, 50), label="x")
    y = t.np(impl(t.on(x), approximate=approximate))
    # each form's global minimum, from mpmath (findroot of the derivative at 30 digits): the
    # exact form −0.1699712… at x ≈ −0.7518, the tanh form −0.1700408… at x ≈ −0.7525; the
    # dtype's rounding of it allows a few eps below (4 eps relative)
    minimum = {"none": -0.16997120747990366, "tanh": -0.17004075057125405}[approximate]
    assert np.all(y >= minimum * (1 + 4 * t.eps))
    big = x.astype(np.float64) > 10
    np.testing.assert_array_equal(y[big], x[big])
    assert np.all(np.abs(y[x < -10]) < 1e-20)
    ends = np.array([-np.inf, np.inf, np.nan], dtype=t.dtype)
    e = t.np(impl(t.on(ends), approximate=approximate))
    assert e[0] == 0 and e[1] == np.inf and np.isnan(e[2])


@prop("gelu_grad", "limits", dtypes=ALL_DTYPES, examples=(
    # issue 17 (thorough profile, torch bfloat16): GELU' of the tanh form peaks at 1.129,
    # which rounds to 1.1328 in bfloat16, past the real bound 1.13
    Example({"approximate": "tanh", "x": _bf16(1.4375)}, dtype="bfloat16",
            note="issue 17, torch, bfloat16, thorough profile: the maximum rounds past 1.13"),
))
def gelu_grad_limits(impl, t):
    approximate = t.draw(_FORMS, label="approximate")
    x = t.draw(_values(t.dtype, -50, 50), label="x")
    g = t.np(impl(t.on(x), approximate=approximate))
    # GELU' lies in (−0.13, 1.13) (minimum −0.1285, maximum 1.1289); rounded once
    lo, hi = _widened(-0.13, 1.13, t)
    assert np.all((g > lo) & (g < hi))
    # beyond x = 10, 1 − GELU'(x) < 1e−21: the result is 1 to within an ulp (eps)
    np.testing.assert_allclose(g[x > 10], 1.0, rtol=0, atol=t.eps)
    assert np.all(np.abs(g[x < -10]) < 1e-18)
    ends = np.array([-np.inf, 0.0, np.inf, np.nan], dtype=t.dtype)
    e = t.np(impl(t.on(ends), approximate=approximate))
    assert e[0] == 0 and e[1] == 0.5 and e[2] == 1 and np.isnan(e[3])


def _flushes_subnormals(t) -> bool:
    """Whether the backend's own arithmetic flushes a subnormal result to zero (XLA on the CPU
    does: https://github.com/jax-ml/jax/issues/16200), probed on the smallest normal halved."""
    tiny = np.array([np.finfo(t.dtype).tiny], dtype=t.dtype)
    return bool(t.np(t.on(tiny) / 2)[0] == 0)


@prop("silu", "limits", dtypes=ALL_DTYPES, examples=(
    # jax float32 (dev profile): x/2 is subnormal and XLA flushes it to 0
    Example({"beta": 1.0, "x": np.array([1.1754944e-38], dtype=np.float32)}, dtype="float32",
            note="jax, float32: β = 0 at the smallest normal x"),
    # issue 17 (thorough profile, numpy float32): x/2 is subnormal and rounds by half a
    # subnormal ulp (x's last bit is odd), where the check wanted the exact half
    Example({"beta": 1.0, "x": np.array([1.8580283e-38], dtype=np.float32)}, dtype="float32",
            note="issue 17, numpy, float32, thorough profile: a subnormal x/2 rounds"),
))
def silu_limits_and_odd_part(impl, t):
    beta = t.draw(st.sampled_from([1.0, 1.702, 0.5, -2.0]), label="beta")
    x = t.draw(_values(t.dtype, -60, 60), label="x")
    xb = t.on(x)
    y = t.np(impl(xb, beta=beta))
    z = beta * x.astype(np.float64)
    # beyond βx = 40, σ(βx) = 1 − e^{−40}… is 1 in the dtype: silu is x to an ulp (eps)
    np.testing.assert_allclose(y[z > 40], x[z > 40], rtol=t.eps)
    assert np.all(np.abs(y[z < -40]) < 1e-15)
    if beta == 1.0:
        # silu(x) − silu(−x) = x: the value tolerance, and where x is small the difference of
        # two values of size |x|/2 is absolute, a few ulps of numbers ≤ 1 (4 eps)
        np.testing.assert_allclose(y - t.np(impl(-xb)), x, rtol=t.tol.rtol, atol=4 * t.eps)
        assert np.all(y >= -0.2785)
    # β = 0 gives x/2 correctly rounded to the dtype: exact, except where x/2 is subnormal and
    # x's last bit is odd (then it rounds to even, as the host's own x / 2 does; float16 and
    # bfloat16 halve exactly in float32 and round once); a subnormal x/2 comes back 0 where
    # the backend itself flushes subnormal results to zero (as the backend's own x / 2 does)
    half = t.np(impl(xb, beta=0.0))
    want = (x / 2).astype(np.float64)
    if _flushes_subnormals(t):
        want[np.abs(want) < float(np.finfo(t.dtype).tiny)] = 0.0
    np.testing.assert_array_equal(half, want)


#: silu'' = 0 at x = ∓2.39935728051546767 (mpmath findroot at 30 digits): silu' there
_SILU_GRAD_EXTREMA = (-2.399357280515467, 2.399357280515467)
_SILU_GRAD_EXTREMA_VALUES = (-0.09983932012886692, 1.0998393201288669)


@prop("silu_grad", "limits", dtypes=ALL_DTYPES, examples=(
    # issue 17 (thorough profile, torch bfloat16): silu' near its maximum 1.0998 rounds to
    # 1.1016 in bfloat16, past the real bound 1.0999
    Example({"x": _bf16(2.5)}, dtype="bfloat16",
            note="issue 17, torch, bfloat16, thorough profile: the maximum rounds past 1.0999"),
))
def silu_grad_limits_and_extrema(impl, t):
    x = t.draw(_values(t.dtype, -60, 60), label="x")
    g = t.np(impl(t.on(x)))
    # silu' lies in [−0.0999, 1.0999] (its extrema below); rounded once
    lo, hi = _widened(-0.0999, 1.0999, t)
    assert np.all((g >= lo) & (g <= hi))
    # beyond x = 40, 1 − silu'(x) ≈ x·e^{−x} < 1e−15: 1 to within an ulp (eps)
    np.testing.assert_allclose(g[x > 40], 1.0, rtol=0, atol=t.eps)
    assert np.all(np.abs(g[x < -40]) < 1e-15)
    ends = np.array([-np.inf, 0.0, np.inf, np.nan], dtype=t.dtype)
    e = t.np(impl(t.on(ends)))
    assert e[0] == 0 and e[1] == 0.5 and e[2] == 1 and np.isnan(e[3])
    m = t.np(impl(t.on(np.array(_SILU_GRAD_EXTREMA, dtype=t.dtype))))
    # at an extremum silu'' = 0, so rounding x to the dtype costs nothing to first order: the
    # error is silu_grad's own, within its tier-R budget (ulps, taken relative to the value)
    np.testing.assert_allclose(m, _SILU_GRAD_EXTREMA_VALUES,
                               rtol=records.ulp_budget("silu_grad", t.dtype) * t.eps)


@prop("swiglu", "identity_weights", "linear_in_V", dtypes=ALL_DTYPES)
def swiglu_identity_weights_and_linear_in_v(impl, t):
    n = t.draw(st.integers(1, 5), label="n")
    hidden = t.draw(st.integers(1, 5), label="hidden")
    x = t.draw(cst.arrays(t.dtype, (3, n), min_value=-4, max_value=4), label="x")
    eye = np.eye(n, dtype=t.dtype)
    xb, eb = t.on(x, eye)
    t.close(impl(xb, eb, eb), t.np(spec.silu(xb)) * x, what="W = V = I")
    W = t.draw(_weights(t.dtype, n, hidden), label="W")
    V1 = t.draw(_weights(t.dtype, n, hidden), label="V1")
    V2 = t.draw(_weights(t.dtype, n, hidden), label="V2")
    Wb, V1b, V2b = t.on(W, V1, V2)
    combined = t.np(impl(xb, Wb, t.on((2 * V1.astype(np.float64) - V2).astype(t.dtype))))
    parts = 2 * t.np(impl(xb, Wb, V1b)) - t.np(impl(xb, Wb, V2b))
    # both sides round the products xVᵀ (terms of size ≤ 4·2·n) and the gate silu(xWᵀ)
    gate = np.abs(x.astype(np.float64) @ W.T.astype(np.float64))
    scale = (np.max(gate, initial=0) + 1) * (1 + 8 * n)
    np.testing.assert_allclose(combined, parts, rtol=t.tol.rtol, atol=64 * t.eps * scale)
    assert combined.shape == (3, hidden)


@prop("swiglu_vjp", "linear_in_g", dtypes=ALL_DTYPES)
def swiglu_vjp_linear_in_g_and_shapes(impl, t):
    n = t.draw(st.integers(1, 4), label="n")
    hidden = t.draw(st.integers(1, 4), label="hidden")
    batch = t.draw(cst.shapes(min_dims=0, max_dims=2, max_side=3), label="batch")
    x = t.draw(cst.arrays(t.dtype, (*batch, n), min_value=-3, max_value=3), label="x")
    W = t.draw(_weights(t.dtype, n, hidden), label="W")
    V = t.draw(_weights(t.dtype, n, hidden), label="V")
    g = t.draw(cst.arrays(t.dtype, (*batch, hidden), min_value=-2, max_value=2), label="g")
    xb, Wb, Vb, gb = t.on(x, W, V, g)
    one = [t.np(a) for a in impl(xb, Wb, Vb, gb)]
    assert [a.shape for a in one] == [x.shape, W.shape, V.shape]
    # c·g with c = 3 in float32 and float64; in float16 and bfloat16, where the rounding of 3·g
    # (½ ulp of each g) can be amplified by the cancelling sums beyond the dtype's tolerance,
    # c = −2, a power of two: c·g is exact and so is each product and sum that it scales
    c = -2 if t.low else 3
    scaled = [t.np(a) for a in impl(xb, Wb, Vb, c * gb)]
    for a, b in zip(one, scaled, strict=True):
        # each gradient is a sum of products with g, rounded once more than c × the other: the
        # value tolerance, absolute at the size of the result
        np.testing.assert_allclose(b, c * a, rtol=t.tol.rtol,
                                   atol=t.tol.atol * (1 + np.max(np.abs(b), initial=0)))
    zero = impl(xb, Wb, Vb, 0 * gb)
    assert all(np.all(t.np(a) == 0) for a in zero)
