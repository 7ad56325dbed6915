"""§4 Losses (beyond the softmax cross-entropy, which test_probability.py covers): tiers S, P, D.

Tier S runs the spec's own code on SymPy expressions and proves each identity exactly (once,
independent of the backend under test). Tiers P and D run on every selected backend and dtype.
Tiers X, E and R are generic (test_tiers.py, with the oracles of oracles_losses.py).
"""

from __future__ import annotations

import math

import array_api_compat
import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import spec
from conformance import derivatives, symbolic
from conformance import strategies as cst
from conformance.helpers import assert_close, to_backend
from conformance.tolerances import Tol, values


def _np(backend, x):
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def _on(backend, *host):
    return [to_backend(backend, a) for a in host]


def _eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


# ============================================================================ tier S
@pytest.mark.spec("mse", tier="S")
@pytest.mark.parametrize("shape", [(1,), (3,), (2, 2)])
def test_mse_is_mean_of_squares_and_its_gradient(shape):
    yh = symbolic.symbols("yh", shape)
    y = symbolic.symbols("y", shape)
    a, b = symbolic.flat(yh), symbolic.flat(y)
    n = len(a)
    loss = symbolic.exprs(spec.mse(yh, y))[()]
    symbolic.assert_equal(loss, sp.Add(*[(p - t) ** 2 for p, t in zip(a, b)]) / n, "MSE")
    symbolic.assert_equal(symbolic.exprs(spec.mse(yh, y, reduction="sum")),
                          sp.Add(*[(p - t) ** 2 for p, t in zip(a, b)]), "sum")
    symbolic.assert_equal(symbolic.exprs(spec.mse(yh, y, reduction="none")).reshape(-1),
                          [(p - t) ** 2 for p, t in zip(a, b)], "none")
    symbolic.assert_equal([sp.diff(loss, p) for p in a],
                          [2 * (p - t) / n for p, t in zip(a, b)], "∂MSE/∂ŷ = 2(ŷ − y)/n")


def _bce_textbook(p, y):
    return -(y * sp.log(p) + (1 - y) * sp.log(1 - p))


@pytest.mark.spec("binary_cross_entropy", tier="S")
def test_binary_cross_entropy_is_textbook():
    """Hard and soft targets; the loss is affine in y, so y ∈ {0, 1} already fix it for
    every y, and 1/2, 1/3 exercise the general branch of the code."""
    xp = symbolic.backend().xp
    p = symbolic.symbols("p", (4,), positive=True)
    targets = [0, 1, sp.Rational(1, 2), sp.Rational(1, 3)]
    y = xp.asarray(targets, dtype=xp.float64)
    loss = symbolic.exprs(spec.binary_cross_entropy(p, y))
    symbolic.assert_equal(loss, [_bce_textbook(pi, yi) for pi, yi in
                                 zip(symbolic.flat(p), targets)], "BCE")


def _logit_cases():
    """z = a and z = −a with a > 0: both branches of max(z, 0) and |z| are decided."""
    xp = symbolic.backend().xp
    a = symbolic.symbols("a", (4,), positive=True)
    targets = [0, 1, sp.Rational(1, 2), sp.Rational(1, 3)]
    y = xp.asarray(targets, dtype=xp.float64)
    return a, y, targets


@pytest.mark.spec("binary_cross_entropy_with_logits", tier="S")
@pytest.mark.parametrize("sign", [1, -1])
def test_bce_with_logits_is_bce_of_sigmoid_and_gradient(sign):
    a, y, targets = _logit_cases()
    loss = symbolic.exprs(spec.binary_cross_entropy_with_logits(sign * a, y))
    zs = [sign * ai for ai in symbolic.flat(a)]
    sigma = [1 / (1 + sp.exp(-z)) for z in zs]
    symbolic.assert_equal(loss, [_bce_textbook(s, t) for s, t in zip(sigma, targets)],
                          "BCE(σ(z), y)")
    # ∂/∂z = sign·∂/∂a; the derivative of the traced code is σ(z) − y
    grads_ = [sp.diff(e, ai) * sign for e, ai in zip(loss, symbolic.flat(a))]
    symbolic.assert_equal(grads_, [s - t for s, t in zip(sigma, targets)], "∂L/∂z = σ(z) − y")


@pytest.mark.spec("sequence_nll", tier="S")
@pytest.mark.parametrize(("T", "V", "tokens"), [(1, 2, [1]), (3, 3, [0, 2, 1]), (2, 4, [3, 3])])
def test_sequence_nll_is_minus_log_product_of_conditionals(T, V, tokens):
    z = symbolic.symbols("z", (T, V))
    x = symbolic.ints(tokens)
    nll, _ = symbolic.free_max(symbolic.exprs(spec.sequence_nll(z, x)))
    rows = symbolic.exprs(z)
    conditionals = [sp.exp(rows[t, tokens[t]]) / sp.Add(*[sp.exp(e) for e in rows[t]])
                    for t in range(T)]
    # the chain rule: P(x₁…x_T) = Π P(xₜ | x<ₜ), and NLL = −log of it
    symbolic.assert_equal([sp.exp(-nll[()])], [sp.Mul(*conditionals)], "exp(−NLL) = Π P")
    per_step, _ = symbolic.free_max(symbolic.exprs(
        spec.softmax_cross_entropy(z, x, reduction="none")))
    symbolic.assert_equal([nll[()]], [sp.Add(*per_step)], "NLL = Σ CE")


@pytest.mark.spec("l2_penalty", tier="S")
def test_l2_penalty_textbook_and_gradient():
    W = symbolic.symbols("W", (2, 3))
    b = symbolic.symbols("b", (2,))
    lam = 0.25
    pen = symbolic.exprs(spec.l2_penalty([W, b], weight=lam))[()]
    ws = symbolic.flat(W) + symbolic.flat(b)
    symbolic.assert_equal(pen, sp.Rational(1, 4) * sp.Add(*[w**2 for w in ws]), "λ Σ w²")
    symbolic.assert_equal([sp.diff(pen, w) for w in ws], [w / 2 for w in ws], "∂Ω/∂w = 2λw")
    single = symbolic.exprs(spec.l2_penalty(W, weight=lam))[()]
    symbolic.assert_equal(single, sp.Rational(1, 4) * sp.Add(*[w**2 for w in symbolic.flat(W)]),
                          "one array")


@pytest.mark.spec("l2_penalty", tier="S")
@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_l2_penalty_is_negative_log_gaussian_prior(sigma):
    """−Σ log N(w; 0, σ²) − Ω(w) with λ = 1/(2σ²) is the constant n·log(σ√(2π)): it has zero
    derivative in every w, so MAP with this prior = MLE + L2 (002 §2.3)."""
    xp = symbolic.backend().xp
    W = symbolic.symbols("W", (2, 2))
    lam = 1 / (2 * sigma**2)
    neg_log_prior = -xp.sum(xp.log(spec.normal_pdf(W, mean=0.0, std=sigma)))
    diff = symbolic.exprs(neg_log_prior - spec.l2_penalty(W, weight=lam))[()]
    diff = sp.expand(sp.expand_log(symbolic._rationalise(diff), force=True))
    for w in symbolic.flat(W):
        symbolic.assert_equal(sp.diff(diff, w), 0, f"∂/∂{w} of −log prior − Ω")
    s = sp.nsimplify(sigma)
    symbolic.assert_equal(diff, 4 * sp.log(s * sp.sqrt(2 * sp.pi)), "the constant")


@pytest.mark.spec("empirical_risk", tier="S")
@pytest.mark.parametrize("shape", [(1,), (4,), (2, 3)])
def test_empirical_risk_is_mean(shape):
    L = symbolic.symbols("L", shape)
    ls = symbolic.flat(L)
    symbolic.assert_equal(symbolic.exprs(spec.empirical_risk(L)), sp.Add(*ls) / len(ls),
                          "(1/N) Σ L")


# ============================================================================ tier P
@st.composite
def _pair(draw, dtype, *, lo=-10.0, hi=10.0):
    shape = draw(cst.shapes(max_dims=3), label="shape")
    a = draw(cst.arrays(dtype, shape, min_value=lo, max_value=hi), label="a")
    b = draw(cst.arrays(dtype, shape, min_value=lo, max_value=hi), label="b")
    return a, b


@pytest.mark.spec("mse", tier="P")
@given(data=st.data())
def test_mse_nonnegative_zero_iff_equal_and_reductions(backend, dtype, data):
    yh, y = data.draw(_pair(dtype), label="pair")
    if data.draw(st.booleans(), label="equal"):
        y = yh.copy()
    a, b = _on(backend, yh, y)
    d = yh.astype(np.float64) - y.astype(np.float64)
    mean = float(_np(backend, spec.mse(a, b)))
    assert mean >= 0
    tiny = float(np.finfo(dtype).tiny)
    if np.array_equal(yh, y):
        assert mean == 0
    elif np.max(np.abs(d)) > math.sqrt(tiny) * 4:  # a square that does not underflow
        assert mean > 0
    assert_close(backend, mean, np.mean(d * d), dtype, what="mean of squares")
    assert_close(backend, spec.mse(a, b, reduction="sum"), np.sum(d * d), dtype, what="sum")
    none = _np(backend, spec.mse(a, b, reduction="none"))
    assert none.shape == yh.shape
    assert_close(backend, none, d * d, dtype, what="squared errors")


@pytest.mark.spec("binary_cross_entropy", tier="P")
@given(data=st.data())
def test_bce_is_binary_cross_entropy_and_above_entropy(backend, dtype, data):
    n = data.draw(st.integers(1, 8), label="n")
    p = data.draw(cst.arrays(dtype, (n,), min_value=1e-3, max_value=1 - 1e-3), label="p")
    y = data.draw(cst.arrays(dtype, (n,), min_value=0.0, max_value=1.0), label="y")
    pb, yb = _on(backend, p, y)
    bce = _np(backend, spec.binary_cross_entropy(pb, yb))
    pairs_p = np.stack([p, 1 - p], axis=-1).astype(dtype)  # 1 − p rounds: compare in kind
    pairs_y = np.stack([y, 1 - y], axis=-1).astype(dtype)
    ce = _np(backend, spec.cross_entropy(*_on(backend, pairs_y, pairs_p)))
    # 1 − p and 1 − y are rounded to the dtype when stacked, while the spec takes log1p(−p):
    # allow that rounding, amplified by |log(1 − p)|' = 1/(1 − p) ≤ 1000 on this range
    tol = values(dtype)
    assert_close(backend, bce, ce, dtype, what="= H([y, 1 − y], [p, 1 − p])",
                 tol=Tol(rtol=tol.rtol, atol=tol.atol + 2e3 * _eps(dtype)))
    h = _np(backend, spec.entropy(to_backend(backend, pairs_y)))
    assert np.all(bce >= h - 64 * _eps(dtype) * np.maximum(1, h)), "Gibbs: BCE ≥ H(y)"


@pytest.mark.spec("binary_cross_entropy", tier="P")
def test_bce_zero_at_target_infinite_when_certain_and_wrong(backend, dtype):
    hard = np.array([0.0, 1.0], dtype=dtype)
    right = _np(backend, spec.binary_cross_entropy(*_on(backend, hard, hard)))
    wrong = _np(backend, spec.binary_cross_entropy(*_on(backend, 1 - hard, hard)))
    assert np.all(right == 0) and np.all(np.isposinf(wrong))
    # the minimum over p is at p = y (for soft y too): nudging p either way increases it
    y = np.array([0.25, 0.5, 0.9], dtype=dtype)
    at = _np(backend, spec.binary_cross_entropy(*_on(backend, y, y)))
    for step in (-0.01, 0.01):
        off = _np(backend, spec.binary_cross_entropy(*_on(backend, (y + step).astype(dtype), y)))
        assert np.all(off > at)


def _sigmoid64(z):
    return 1 / (1 + np.exp(-z))


@pytest.mark.spec("binary_cross_entropy_with_logits", tier="P")
@given(data=st.data())
def test_bce_with_logits_equals_bce_of_sigmoid_in_range(backend, dtype, data):
    n = data.draw(st.integers(1, 8), label="n")
    z = data.draw(cst.arrays(dtype, (n,), min_value=-8.0, max_value=8.0), label="z")
    y = data.draw(cst.arrays(dtype, (n,), min_value=0.0, max_value=1.0), label="y")
    got = spec.binary_cross_entropy_with_logits(*_on(backend, z, y))
    p = _sigmoid64(z.astype(np.float64))
    ref = _np(backend, spec.binary_cross_entropy(*_on(backend, p, y.astype(np.float64))))
    # the float64 reference rounds σ(z) once (≤ 1 ulp of 1), which log(1 − p) amplifies by
    # 1/(1 − p) ≤ 1 + e^|z|: that is the cancellation the logit form exists to avoid
    slack = 2 * _eps("float64") * (1 + math.exp(float(np.max(np.abs(z)))))
    tol = values(dtype)
    assert_close(backend, got, ref, dtype, what="BCE(σ(z), y)",
                 tol=Tol(rtol=tol.rtol + slack, atol=tol.atol + slack))


@pytest.mark.spec("binary_cross_entropy_with_logits", tier="P")
def test_bce_with_logits_stable_at_extreme_logits(backend, dtype):
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0, 1000.0, -1000.0, 1e30, -1e30], dtype=dtype)
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.25, 0.75, 0.5, 0.5], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = _np(backend, spec.binary_cross_entropy_with_logits(*_on(backend, z, y)))
    assert np.all(np.isfinite(got)), got
    z64, y64 = z.astype(np.float64), y.astype(np.float64)
    # for |z| ≥ 1000, e^{−|z|} underflows and the loss is exactly (1 − y)·max(z, 0) + y·max(−z, 0)
    expected = (1 - y64) * np.maximum(z64, 0) + y64 * np.maximum(-z64, 0)
    assert_close(backend, got, expected, dtype, what="|z| = 1000")
    assert got[0] == 0 and got[1] == 0


@pytest.mark.spec("sequence_nll", tier="P")
@given(data=st.data())
def test_sequence_nll_chain_rule_and_sum_of_cross_entropies(backend, dtype, data):
    batch = data.draw(st.sampled_from([(), (2,), (2, 3)]), label="batch")
    T, V = data.draw(st.integers(1, 6), label="T"), data.draw(st.integers(2, 10), label="V")
    z = data.draw(cst.logits(dtype, shape=(*batch, T, V), bound=5.0), label="z")
    x = data.draw(cst.labels_for((*batch, T), V), label="tokens")
    zb, xb = _on(backend, z, x)
    nll = _np(backend, spec.sequence_nll(zb, xb))
    assert nll.shape == batch
    probs = _np(backend, spec.softmax(zb))
    picked = np.take_along_axis(probs, x[..., None], axis=-1)[..., 0]
    product = np.prod(picked, axis=-1)
    # exp(−NLL) = Π P(xₜ | x<ₜ); an absolute error δ in NLL is a relative error δ in exp(−NLL)
    rel = values(dtype).rtol * np.maximum(1.0, nll)
    np.testing.assert_allclose(np.exp(-nll), product, rtol=float(np.max(rel)),
                               err_msg="chain rule of probability")
    per_step = _np(backend, spec.softmax_cross_entropy(zb, xb, reduction="none"))
    assert_close(backend, nll, np.sum(per_step, axis=-1), dtype, what="Σ per-step CE")


@pytest.mark.spec("sequence_nll", tier="P")
@given(T=st.integers(1, 20), V=st.integers(2, 4096))
def test_sequence_nll_of_uniform_model_is_T_log_V(backend, dtype, T, V):
    z = np.zeros((1, T, V), dtype=dtype)
    x = np.arange(T, dtype=np.int64)[None, :] % V
    got = spec.sequence_nll(*_on(backend, z, x))
    assert_close(backend, got, [T * math.log(V)], dtype, what="T log V")


@pytest.mark.spec("l2_penalty", tier="P")
@given(data=st.data())
def test_l2_penalty_additive_homogeneous_and_reference(backend, dtype, data):
    k = data.draw(st.integers(1, 4), label="k")
    arrays = [data.draw(cst.arrays(dtype, data.draw(cst.shapes(max_dims=2), label=f"s{i}")),
                        label=f"W{i}") for i in range(k)]
    lam = data.draw(st.floats(0.0, 10.0), label="weight")
    on = _on(backend, *arrays)
    total = _np(backend, spec.l2_penalty(on, weight=lam))
    ref = lam * sum(float(np.sum(a.astype(np.float64) ** 2)) for a in arrays)
    assert total >= 0
    assert_close(backend, total, ref, dtype, what="λ Σ ‖W‖²")
    parts = sum(float(_np(backend, spec.l2_penalty(a, weight=lam))) for a in on)
    assert_close(backend, total, parts, dtype, what="additive over the arrays")
    scaled = _np(backend, spec.l2_penalty([2 * a for a in on], weight=lam))
    assert_close(backend, scaled, 4 * total, dtype, what="Ω(2W) = 4Ω(W)")
    assert _np(backend, spec.l2_penalty(tuple(on), weight=0.0)) == 0


@pytest.mark.spec("l2_penalty", tier="P")
@given(data=st.data())
def test_l2_penalty_is_gaussian_negative_log_prior(backend, dtype, data):
    sigma = data.draw(st.sampled_from([0.5, 1.0, 3.0]), label="sigma")
    shape = data.draw(cst.shapes(max_dims=2), label="shape")
    w = data.draw(cst.arrays(dtype, shape, min_value=-4 * sigma, max_value=4 * sigma),
                  label="W")
    (wb,) = _on(backend, w)
    neg_log_prior = -np.sum(np.log(_np(backend, spec.normal_pdf(wb, mean=0.0, std=sigma))))
    pen = float(_np(backend, spec.l2_penalty(wb, weight=1 / (2 * sigma**2))))
    n = w.size
    const = n * math.log(sigma * math.sqrt(2 * math.pi))
    # each −log pdf carries the dtype's rounding of a number of size ≤ 8 + |log σ√(2π)|
    atol = n * 64 * _eps(dtype) * (8 + abs(math.log(sigma * math.sqrt(2 * math.pi))))
    assert abs((neg_log_prior - pen) - const) <= atol, "−log N(0, σ²) = Ω + const"


@pytest.mark.spec("empirical_risk", tier="P")
@given(data=st.data())
def test_empirical_risk_is_the_mean_reduction(backend, dtype, data):
    batch, k = data.draw(st.integers(1, 8), label="batch"), data.draw(st.integers(2, 6), "K")
    z = data.draw(cst.logits(dtype, shape=(batch, k), bound=10.0), label="z")
    y = data.draw(cst.labels_for((batch,), k), label="y")
    zb, yb = _on(backend, z, y)
    per = spec.softmax_cross_entropy(zb, yb, reduction="none")
    risk = _np(backend, spec.empirical_risk(per))
    assert_close(backend, risk, _np(backend, spec.softmax_cross_entropy(zb, yb)), dtype,
                 what="= CE with reduction='mean'")
    per_np = _np(backend, per)
    slack = 8 * _eps(dtype) * np.max(np.abs(per_np))
    assert per_np.min() - slack <= risk <= per_np.max() + slack


@pytest.mark.spec("empirical_risk", tier="P")
@pytest.mark.parametrize("c", [0.0, 1.5])
def test_empirical_risk_estimates_expected_risk(backend, dtype, c):
    """Squared error of the constant predictor c on x ~ N(0, 1): the expected risk is
    E[(x − c)²] = 1 + c², the variance of one loss is 2 + 4c², so the empirical risk of
    N = 10⁵ draws has standard error √((2 + 4c²)/N); allow 5 of them (fixed seed)."""
    n = 100_000
    x = np.random.default_rng(20240).standard_normal(n)
    losses = ((x - c) ** 2).astype(dtype)
    risk = float(_np(backend, spec.empirical_risk(to_backend(backend, losses))))
    stderr = math.sqrt((2 + 4 * c**2) / n)
    assert abs(risk - (1 + c**2)) <= 5 * stderr + 1e-5 * (1 + c**2)


# ============================================================================ tier D
def _fixed(backend, fn, host_args: dict, **kwargs):
    """fn with the arguments at `host_args` positions held fixed (not differentiated).

    On the symbolic namespace (the SymPy trace) they become numbers, on the backend the
    backend's arrays, so the traced code takes the same branches as the numeric one.
    """
    on_backend = {i: to_backend(backend, a) for i, a in host_args.items()}

    def f(*free):
        x = free[0]
        if getattr(x, "device", None) == "sympy":
            xp = array_api_compat.array_namespace(x)
            fixed = {i: xp.asarray(a.tolist(), dtype=xp.float64) for i, a in host_args.items()}
        else:
            fixed = on_backend
        it = iter(free)
        n = len(free) + len(fixed)
        return fn(*[fixed[i] if i in fixed else next(it) for i in range(n)], **kwargs)

    return f


def _rng(seed):
    return np.random.default_rng(seed)


def _sigmoid_xp(xp, z):
    return 1 / (1 + xp.exp(-z))


def _derivative_cases(backend, seed):
    """id → (equation, fn, host args, argnum, closed form (xp, args, c) or None, assumptions)."""
    r = _rng(seed)
    yh, y = r.normal(0, 2, (2, 3)), r.normal(0, 2, (2, 3))
    p, t = r.uniform(0.1, 0.9, (4,)), r.uniform(0, 1, (4,))
    t[0], t[1] = 0.0, 1.0  # hard targets take the 0·log branch
    a = r.uniform(0.2, 4.0, (4,))
    logits, tokens = r.normal(0, 2, (2, 3, 4)), r.integers(0, 4, (2, 3))
    A, B = r.normal(0, 1, (2, 3)), r.normal(0, 1, (3,))
    losses = r.normal(1, 1, (2, 3))
    lam = 0.3
    return {
        "mse[y_hat]": ("mse", spec.mse, [yh, y], 0,
                       lambda xp, g, c: 2 * (g[0] - g[1]) / 6 * c, {}),
        "mse[y]": ("mse", spec.mse, [yh, y], 1,
                   lambda xp, g, c: -2 * (g[0] - g[1]) / 6 * c, {}),
        "mse[none]": ("mse", lambda u, w: spec.mse(u, w, reduction="none"), [yh, y], 0,
                      lambda xp, g, c: 2 * (g[0] - g[1]) * c, {}),
        "binary_cross_entropy": (
            "binary_cross_entropy", _fixed(backend, spec.binary_cross_entropy, {1: t}), [p], 0,
            lambda xp, g, c: (g[0] - to_backend(backend, t)) / (g[0] * (1 - g[0])) * c,
            {"positive": True}),
        "bce_with_logits[z>0]": (
            "binary_cross_entropy_with_logits",
            _fixed(backend, spec.binary_cross_entropy_with_logits, {1: t}), [a], 0,
            lambda xp, g, c: (_sigmoid_xp(xp, g[0]) - to_backend(backend, t)) * c,
            {"positive": True}),
        "bce_with_logits[z<0]": (
            "binary_cross_entropy_with_logits",
            _fixed(backend, lambda u, w: spec.binary_cross_entropy_with_logits(-u, w), {1: t}),
            [a], 0, lambda xp, g, c: -(_sigmoid_xp(xp, -g[0]) - to_backend(backend, t)) * c,
            {"positive": True}),
        "sequence_nll": ("sequence_nll", spec.sequence_nll, [logits, tokens], 0,
                         lambda xp, g, c: spec.softmax_cross_entropy_grad(g[0], g[1])
                         * c[:, None, None], {}),
        "l2_penalty[W]": ("l2_penalty", lambda u, w: spec.l2_penalty([u, w], weight=lam),
                          [A, B], 0, lambda xp, g, c: 2 * lam * g[0] * c, {}),
        "l2_penalty[b]": ("l2_penalty", lambda u, w: spec.l2_penalty((u, w), weight=lam),
                          [A, B], 1, lambda xp, g, c: 2 * lam * g[1] * c, {}),
        "empirical_risk": ("empirical_risk", spec.empirical_risk, [losses], 0,
                           lambda xp, g, c: xp.ones_like(g[0]) / 6 * c, {}),
    }


_CASE_IDS = ["mse[y_hat]", "mse[y]", "mse[none]", "binary_cross_entropy",
             "bce_with_logits[z>0]", "bce_with_logits[z<0]", "sequence_nll", "l2_penalty[W]",
             "l2_penalty[b]", "empirical_risk"]
_CASE_EQUATION = {"mse[y_hat]": "mse", "mse[y]": "mse", "mse[none]": "mse",
                  "binary_cross_entropy": "binary_cross_entropy",
                  "bce_with_logits[z>0]": "binary_cross_entropy_with_logits",
                  "bce_with_logits[z<0]": "binary_cross_entropy_with_logits",
                  "sequence_nll": "sequence_nll", "l2_penalty[W]": "l2_penalty",
                  "l2_penalty[b]": "l2_penalty", "empirical_risk": "empirical_risk"}


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.spec(_CASE_EQUATION[c], tier="D"), id=c)
             for c in _CASE_IDS]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_derivatives_agree(backend, case, seed):
    """SymPy (traced code, lambdified to the backend), autograd and central differences agree
    with each other and with the closed-form gradient the docstring states."""
    _, fn, args, argnum, closed, assumptions = _derivative_cases(backend, seed)[case]
    derivatives.check_agreement(backend, case, fn, args, argnum, {}, closed, assumptions,
                                seed=seed)


@pytest.mark.spec("binary_cross_entropy_with_logits", tier="D")
@pytest.mark.parametrize("precision", ["float32", "float64"])
def test_bce_with_logits_autograd_finite_at_extreme_logits(precision):
    """PyTorch's autograd through the spec's code at |z| = 1000 gives σ(z) − y, finite."""
    torch = pytest.importorskip("torch")
    z = torch.tensor([1000.0, -1000.0, 1000.0, -1000.0, 0.0], dtype=getattr(torch, precision),
                     requires_grad=True)
    y = torch.tensor([1.0, 0.0, 0.25, 0.5, 0.5], dtype=getattr(torch, precision))
    spec.binary_cross_entropy_with_logits(z, y).sum().backward()
    g = z.grad.detach().numpy().astype(np.float64)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, [0.0, 0.0, 0.75, -0.5, 0.0], atol=_eps(precision))
