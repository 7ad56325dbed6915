"""Tier P properties of §4 Losses, as checks of an implementation.

`impl` is the implementation under test with the spec's signature; other equations a check
needs as references come from `spec`.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

import spec
from conformance import strategies as cst
from conformance.precision import host_dtype
from conformance.properties import ALL_DTYPES, Example, prop
from conformance.tolerances import Tol


@prop("softmax_cross_entropy", "is_cross_entropy")
def softmax_cross_entropy_equals_cross_entropy_of_softmax(impl, t):
    batch = t.draw(st.integers(1, 6), label="batch")
    k = t.draw(st.integers(2, 10), label="K")
    z = t.draw(cst.logits(t.dtype, shape=(batch, k), bound=20.0), label="z")
    y = t.draw(cst.labels_for((batch,), k), label="y")
    zb, yb = t.on(z, y)
    loss = impl(zb, yb, reduction="none")
    one_hot = np.eye(k, dtype=t.dtype)[y]
    ce = spec.cross_entropy(t.on(one_hot), spec.softmax(zb))
    t.close(loss, t.np(ce), what="CE(one-hot, softmax)")
    t.close(impl(zb, yb), np.mean(t.np(loss)), what="mean reduction")


@prop("softmax_cross_entropy", "random_init", dtypes=ALL_DTYPES, examples=(
    Example({"k": 70_000}, note="issue 12: a float16 sum of 70,000 exponentials overflowed "
            "65,504, and the loss was +∞ instead of log 70,000 = 11.16"),
))
def softmax_cross_entropy_at_initialisation_is_log_k(impl, t):
    # computed in float32 and rounded once in float16 and bfloat16: one ulp of the dtype
    k = t.draw(st.integers(2, 1000), label="k")
    z = np.zeros((4, k), dtype=host_dtype(t.dtype))
    y = np.arange(4) % k
    t.close(impl(*t.on(z, y)), math.log(k), what="log K")


@prop("softmax_cross_entropy_grad", "rows_sum_to_zero")
def softmax_cross_entropy_grad_rows_sum_to_zero(impl, t):
    batch = t.draw(st.integers(1, 6), label="batch")
    k = t.draw(st.integers(2, 10), label="K")
    z = t.draw(cst.logits(t.dtype, shape=(batch, k)), label="z")
    y = t.draw(cst.labels_for((batch,), k), label="y")
    g = t.np(impl(*t.on(z, y)))
    np.testing.assert_allclose(np.sum(g, axis=-1), 0, atol=t.tol.atol * k)
    assert np.all(g[np.arange(batch), y] <= 0)
    t.close(impl(*t.on(z, y), reduction="mean"), g / batch, what="mean reduction")


# ------------------------------------------------------------------------------------ mse
@st.composite
def _pair(draw, dtype, *, lo=-10.0, hi=10.0):
    shape = draw(cst.shapes(max_dims=3), label="shape")
    a = draw(cst.arrays(dtype, shape, min_value=lo, max_value=hi), label="a")
    b = draw(cst.arrays(dtype, shape, min_value=lo, max_value=hi), label="b")
    return a, b


@prop("mse", "nonnegative", "reductions")
def mse_nonnegative_zero_iff_equal_and_reductions(impl, t):
    yh, y = t.draw(_pair(t.dtype), label="pair")
    if t.draw(st.booleans(), label="equal"):
        y = yh.copy()
    a, b = t.on(yh, y)
    d = yh.astype(np.float64) - y.astype(np.float64)
    mean = float(t.np(impl(a, b)))
    assert mean >= 0
    tiny = float(np.finfo(t.dtype).tiny)
    if np.array_equal(yh, y):
        assert mean == 0
    elif np.max(np.abs(d)) > math.sqrt(tiny) * 4:  # a square that does not underflow
        assert mean > 0
    t.close(mean, np.mean(d * d), what="mean of squares")
    t.close(impl(a, b, reduction="sum"), np.sum(d * d), what="sum")
    none = t.np(impl(a, b, reduction="none"))
    assert none.shape == yh.shape
    t.close(none, d * d, what="squared errors")


# ------------------------------------------------------------------- binary cross-entropy
@prop("binary_cross_entropy", "is_cross_entropy")
def bce_is_binary_cross_entropy_and_above_entropy(impl, t):
    n = t.draw(st.integers(1, 8), label="n")
    p = t.draw(cst.arrays(t.dtype, (n,), min_value=1e-3, max_value=1 - 1e-3), label="p")
    y = t.draw(cst.arrays(t.dtype, (n,), min_value=0.0, max_value=1.0), label="y")
    bce = t.np(impl(*t.on(p, y)))
    pairs_p = np.stack([p, 1 - p], axis=-1).astype(t.dtype)  # 1 − p rounds: compare in kind
    pairs_y = np.stack([y, 1 - y], axis=-1).astype(t.dtype)
    ce = t.np(spec.cross_entropy(*t.on(pairs_y, pairs_p)))
    # 1 − p and 1 − y are rounded to the dtype when stacked, while the spec takes log1p(−p):
    # allow that rounding, amplified by |log(1 − p)|' = 1/(1 − p) ≤ 1000 on this range
    t.close(bce, ce, what="= H([y, 1 − y], [p, 1 − p])",
            tol=Tol(rtol=t.tol.rtol, atol=t.tol.atol + 2e3 * t.eps))
    h = t.np(spec.entropy(t.on(pairs_y)))
    assert np.all(bce >= h - 64 * t.eps * np.maximum(1, h)), "Gibbs: BCE ≥ H(y)"


@prop("binary_cross_entropy", "minimum_at_target", draws=False)
def bce_zero_at_target_infinite_when_certain_and_wrong(impl, t):
    hard = np.array([0.0, 1.0], dtype=t.dtype)
    right = t.np(impl(*t.on(hard, hard)))
    wrong = t.np(impl(*t.on(1 - hard, hard)))
    assert np.all(right == 0) and np.all(np.isposinf(wrong))
    # the minimum over p is at p = y (for soft y too): nudging p either way increases it
    y = np.array([0.25, 0.5, 0.9], dtype=t.dtype)
    at = t.np(impl(*t.on(y, y)))
    for step in (-0.01, 0.01):
        off = t.np(impl(*t.on((y + step).astype(t.dtype), y)))
        assert np.all(off > at)


def _sigmoid64(z):
    return 1 / (1 + np.exp(-z))


@prop("binary_cross_entropy_with_logits", "is_bce_of_sigmoid")
def bce_with_logits_equals_bce_of_sigmoid_in_range(impl, t):
    n = t.draw(st.integers(1, 8), label="n")
    z = t.draw(cst.arrays(t.dtype, (n,), min_value=-8.0, max_value=8.0), label="z")
    y = t.draw(cst.arrays(t.dtype, (n,), min_value=0.0, max_value=1.0), label="y")
    got = impl(*t.on(z, y))
    p = _sigmoid64(z.astype(np.float64))
    ref = t.np(spec.binary_cross_entropy(*t.on(p, y.astype(np.float64))))
    # the float64 reference rounds σ(z) once (≤ 1 ulp of 1), which log(1 − p) amplifies by
    # 1/(1 − p) ≤ 1 + e^|z|: that is the cancellation the logit form exists to avoid
    slack = 2 * float(np.finfo(np.float64).eps) * (1 + math.exp(float(np.max(np.abs(z)))))
    t.close(got, ref, what="BCE(σ(z), y)",
            tol=Tol(rtol=t.tol.rtol + slack, atol=t.tol.atol + slack))


@prop("binary_cross_entropy_with_logits", "extreme_logits", draws=False)
def bce_with_logits_stable_at_extreme_logits(impl, t):
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0, 1000.0, -1000.0, 1e30, -1e30], dtype=t.dtype)
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.25, 0.75, 0.5, 0.5], dtype=t.dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = t.np(impl(*t.on(z, y)))
    assert np.all(np.isfinite(got)), got
    z64, y64 = z.astype(np.float64), y.astype(np.float64)
    # for |z| ≥ 1000, e^{−|z|} underflows and the loss is exactly (1 − y)·max(z, 0) + y·max(−z, 0)
    expected = (1 - y64) * np.maximum(z64, 0) + y64 * np.maximum(-z64, 0)
    t.close(got, expected, what="|z| = 1000")
    assert got[0] == 0 and got[1] == 0


# ---------------------------------------------------------------------------- sequence NLL
@prop("sequence_nll", "chain_rule", "sum_of_cross_entropies")
def sequence_nll_chain_rule_and_sum_of_cross_entropies(impl, t):
    batch = t.draw(st.sampled_from([(), (2,), (2, 3)]), label="batch")
    T, V = t.draw(st.integers(1, 6), label="T"), t.draw(st.integers(2, 10), label="V")
    z = t.draw(cst.logits(t.dtype, shape=(*batch, T, V), bound=5.0), label="z")
    x = t.draw(cst.labels_for((*batch, T), V), label="tokens")
    zb, xb = t.on(z, x)
    nll = t.np(impl(zb, xb))
    assert nll.shape == batch
    probs = t.np(spec.softmax(zb))
    picked = np.take_along_axis(probs, x[..., None], axis=-1)[..., 0]
    product = np.prod(picked, axis=-1)
    # exp(−NLL) = Π P(xₜ | x<ₜ); an absolute error δ in NLL is a relative error δ in exp(−NLL)
    rel = t.tol.rtol * np.maximum(1.0, nll)
    np.testing.assert_allclose(np.exp(-nll), product, rtol=float(np.max(rel)),
                               err_msg="chain rule of probability")
    per_step = t.np(spec.softmax_cross_entropy(zb, xb, reduction="none"))
    t.close(nll, np.sum(per_step, axis=-1), what="Σ per-step CE")


@prop("sequence_nll", "chain_rule")
def sequence_nll_of_uniform_model_is_T_log_V(impl, t):
    """Uniform conditionals 1/V at every step: the chain rule gives −log V⁻ᵀ = T log V."""
    T = t.draw(st.integers(1, 20), label="T")
    V = t.draw(st.integers(2, 4096), label="V")
    z = np.zeros((1, T, V), dtype=t.dtype)
    x = np.arange(T, dtype=np.int64)[None, :] % V
    t.close(impl(*t.on(z, x)), [T * math.log(V)], what="T log V")


# ------------------------------------------------------------------------------ L2 penalty
@prop("l2_penalty", "textbook", "homogeneous")
def l2_penalty_additive_homogeneous_and_reference(impl, t):
    k = t.draw(st.integers(1, 4), label="k")
    arrays = [t.draw(cst.arrays(t.dtype, t.draw(cst.shapes(max_dims=2), label=f"s{i}")),
                     label=f"W{i}") for i in range(k)]
    lam = t.draw(st.floats(0.0, 10.0), label="weight")
    on = [t.on(a) for a in arrays]
    total = t.np(impl(on, weight=lam))
    ref = lam * sum(float(np.sum(a.astype(np.float64) ** 2)) for a in arrays)
    assert total >= 0
    t.close(total, ref, what="λ Σ ‖W‖²")
    parts = sum(float(t.np(impl(a, weight=lam))) for a in on)
    t.close(total, parts, what="additive over the arrays")
    scaled = t.np(impl([2 * a for a in on], weight=lam))
    t.close(scaled, 4 * total, what="Ω(2W) = 4Ω(W)")
    assert t.np(impl(tuple(on), weight=0.0)) == 0


@prop("l2_penalty", "gaussian_prior")
def l2_penalty_is_gaussian_negative_log_prior(impl, t):
    sigma = t.draw(st.sampled_from([0.5, 1.0, 3.0]), label="sigma")
    shape = t.draw(cst.shapes(max_dims=2), label="shape")
    w = t.draw(cst.arrays(t.dtype, shape, min_value=-4 * sigma, max_value=4 * sigma),
               label="W")
    wb = t.on(w)
    neg_log_prior = -np.sum(np.log(t.np(spec.normal_pdf(wb, mean=0.0, std=sigma))))
    pen = float(t.np(impl(wb, weight=1 / (2 * sigma**2))))
    n = w.size
    const = n * math.log(sigma * math.sqrt(2 * math.pi))
    # each −log pdf carries the dtype's rounding of a number of size ≤ 8 + |log σ√(2π)|
    atol = n * 64 * t.eps * (8 + abs(math.log(sigma * math.sqrt(2 * math.pi))))
    assert abs((neg_log_prior - pen) - const) <= atol, "−log N(0, σ²) = Ω + const"


# -------------------------------------------------------------------------- empirical risk
@prop("empirical_risk", "is_reduction")
def empirical_risk_is_the_mean_reduction(impl, t):
    batch = t.draw(st.integers(1, 8), label="batch")
    k = t.draw(st.integers(2, 6), label="K")
    z = t.draw(cst.logits(t.dtype, shape=(batch, k), bound=10.0), label="z")
    y = t.draw(cst.labels_for((batch,), k), label="y")
    zb, yb = t.on(z, y)
    per = spec.softmax_cross_entropy(zb, yb, reduction="none")
    risk = t.np(impl(per))
    t.close(risk, t.np(spec.softmax_cross_entropy(zb, yb)), what="= CE with reduction='mean'")
    per_np = t.np(per)
    slack = 8 * t.eps * np.max(np.abs(per_np))
    assert per_np.min() - slack <= risk <= per_np.max() + slack


@prop("empirical_risk", "estimates_expected_risk")
def empirical_risk_estimates_expected_risk(impl, t):
    """Squared error of the constant predictor c on x ~ N(0, 1): the expected risk is
    E[(x − c)²] = 1 + c², the variance of one loss is 2 + 4c², so the empirical risk of
    N = 10⁵ draws has standard error √((2 + 4c²)/N); allow 5 of them (fixed seed), plus the
    dtype's value tolerance for the rounding of the losses and of their mean. Hypothesis
    exhausts the two values of c."""
    c = t.draw(st.sampled_from([0.0, 1.5]), label="c")
    n = 100_000
    x = np.random.default_rng(20240).standard_normal(n)
    losses = ((x - c) ** 2).astype(t.dtype)
    risk = float(t.np(impl(t.on(losses))))
    stderr = math.sqrt((2 + 4 * c**2) / n)
    assert abs(risk - (1 + c**2)) <= 5 * stderr + t.tol.rtol * (1 + c**2)


# ------------------------------------------------------------ integer labels of any width
#: every integer width a user can store labels or token ids in
WIDTHS = ("uint8", "int8", "int16", "uint16", "int32", "uint32", "int64", "uint64")


def _widths_holding(values: np.ndarray) -> list[str]:
    """The integer widths that hold every one of `values` as written."""
    return [w for w in WIDTHS if values.size == 0
            or (np.iinfo(w).min <= values.min() and values.max() <= np.iinfo(w).max)]


def _draw_labelled(t, lead_label: str, lead_max: int):
    """Logits of 3, 130 or 300 classes (more than an int8, then a uint8 can count) and int64
    labels. The shapes come from small sets: the labels' width, not the logits' shape, is
    what varies, and JAX and Dask build each new shape's kernels or graph anew (a shape per
    example made these properties a minute each on JAX)."""
    lead = t.draw(st.sampled_from(sorted({1, lead_max})), label=lead_label)
    k = t.draw(st.sampled_from([3, 130, 300]), label="K")
    z = t.draw(cst.logits(t.dtype, shape=(lead, k), bound=10.0), label="z")
    y = t.draw(cst.labels_for((lead,), k), label="y")
    return z, np.asarray(y, dtype=np.int64)


#: the case of issue 12: uint8 labels [5, 100] of 300 classes gave 8.10 instead of 5.62 on
#: NumPy and Dask (the class numbers 0…299 wrapped in uint8), "out of range" on torch and JAX
_UINT8_OF_300 = Example({"batch": 2, "T": 2, "K": 300, "y": np.array([5, 100]),
                         "z": np.array([[((31 * i + 7 * r) % 32) / 4 - 4 for i in range(300)]
                                        for r in range(2)])},
                        note="issue 12, NumPy, Dask, torch, JAX and array-api-strict")


#: the labels' width is independent of the logits' dtype: float32, the common case, only
#: (the records' narrow-label samples run tiers X and R in every dtype)
_WIDTH_DTYPES = ("float32",)


@prop("softmax_cross_entropy", "any_integer_width", dtypes=_WIDTH_DTYPES, examples=(_UINT8_OF_300,))
def softmax_cross_entropy_labels_of_any_width(impl, t):
    z, y = _draw_labelled(t, "batch", 4)
    zb = t.on(z)
    want = t.np(impl(zb, t.on(y), reduction="none"))
    for width in _widths_holding(y):
        t.close(impl(zb, t.on(y.astype(width)), reduction="none"), want,
                what=f"{width} labels")


@prop("softmax_cross_entropy_grad", "any_integer_width", dtypes=_WIDTH_DTYPES,
      examples=(_UINT8_OF_300,))
def softmax_cross_entropy_grad_labels_of_any_width(impl, t):
    z, y = _draw_labelled(t, "batch", 4)
    zb = t.on(z)
    want = t.np(impl(zb, t.on(y)))
    for width in _widths_holding(y):
        t.close(impl(zb, t.on(y.astype(width))), want, what=f"{width} labels")


@prop("sequence_nll", "any_integer_width", dtypes=_WIDTH_DTYPES, examples=(_UINT8_OF_300,))
def sequence_nll_tokens_of_any_width(impl, t):
    z, x = _draw_labelled(t, "T", 5)
    zb = t.on(z)
    want = t.np(impl(zb, t.on(x)))
    for width in _widths_holding(x):
        t.close(impl(zb, t.on(x.astype(width))), want, what=f"{width} token ids")
