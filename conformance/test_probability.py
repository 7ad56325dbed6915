"""§2 Probability and information (and §4's softmax cross-entropy): tiers S, P and D.

Tier S runs the spec's own code on SymPy expressions and proves each identity exactly; it
does not depend on the backend under test, so those tests run once. Tiers P and D run on
every selected backend and dtype. Tiers X, E and R live in test_tiers.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given
from hypothesis import strategies as st

import spec
from conformance import derivatives, symbolic
from conformance import strategies as cst
from conformance.helpers import assert_close, to_backend
from conformance.tolerances import grads, values

SIZES = [1, 2, 3, 4]


def _exp_sum(z):
    return sp.Add(*[sp.exp(e) for e in z])


# ============================================================================ tier S
@pytest.mark.spec("softmax", tier="S")
@pytest.mark.parametrize("n", SIZES)
def test_softmax_stable_code_is_textbook_softmax(n):
    z = symbolic.symbols("z", (n,))
    s, _ = symbolic.free_max(symbolic.exprs(spec.softmax(z)))
    zs = symbolic.flat(z)
    symbolic.assert_equal(s, [sp.exp(zi) / _exp_sum(zs) for zi in zs], "softmax")


@pytest.mark.spec("softmax", tier="S")
@pytest.mark.parametrize("n", [2, 3])
def test_softmax_shift_invariance_and_sum_symbolic(n):
    z = symbolic.symbols("z", (n,))
    c = sp.Symbol("c", real=True)
    shifted, _ = symbolic.free_max(symbolic.exprs(spec.softmax(z + c)), "u")
    plain, _ = symbolic.free_max(symbolic.exprs(spec.softmax(z)), "v")
    zs = symbolic.flat(z)
    textbook = [sp.exp(zi) / _exp_sum(zs) for zi in zs]
    symbolic.assert_equal(shifted, textbook, "softmax(z + c)")
    symbolic.assert_equal(plain, textbook, "softmax(z)")
    symbolic.assert_equal(sp.Add(*plain), 1, "Σ softmax")


@pytest.mark.spec("softmax", tier="S")
def test_softmax_temperature_symbolic():
    z = symbolic.symbols("z", (3,))
    s, _ = symbolic.free_max(symbolic.exprs(spec.softmax(z, temperature=2.0)))
    zs = symbolic.flat(z)
    symbolic.assert_equal(s, [sp.exp(zi / 2) / sp.Add(*[sp.exp(zj / 2) for zj in zs])
                              for zi in zs], "softmax(z/T)")


@pytest.mark.spec("log_softmax", tier="S")
@pytest.mark.parametrize("n", [2, 3])
def test_log_softmax_is_log_of_softmax(n):
    z = symbolic.symbols("z", (n,))
    ls, _ = symbolic.free_max(symbolic.exprs(spec.log_softmax(z)))
    zs = symbolic.flat(z)
    symbolic.assert_equal([sp.exp(e) for e in ls], [sp.exp(zi) / _exp_sum(zs) for zi in zs],
                          "exp(log_softmax)")


@pytest.mark.spec("logsumexp", tier="S")
@pytest.mark.parametrize("n", SIZES)
def test_logsumexp_is_log_sum_exp(n):
    z = symbolic.symbols("z", (n,))
    lse, _ = symbolic.free_max(symbolic.exprs(spec.logsumexp(z)))
    symbolic.assert_equal([sp.exp(lse[()])], [_exp_sum(symbolic.flat(z))], "exp(logsumexp)")


@pytest.mark.spec("softmax_jacobian", tier="S")
@pytest.mark.parametrize("n", [2, 3])
def test_softmax_jacobian_is_sympy_jacobian(n):
    z = symbolic.symbols("z", (n,))
    s, _ = symbolic.free_max(symbolic.exprs(spec.softmax(z)))
    jac, _ = symbolic.free_max(symbolic.exprs(spec.softmax_jacobian(z)))
    zs = symbolic.flat(z)
    # the max is held fixed while differentiating: softmax does not depend on it (tier S above)
    truth = sp.Matrix(list(s)).jacobian(zs)
    symbolic.assert_equal(jac, np.array(truth.tolist(), dtype=object), "softmax Jacobian")


@pytest.mark.spec("softmax_vjp", tier="S")
def test_softmax_vjp_is_jacobian_transpose_product():
    z = symbolic.symbols("z", (3,))
    g = symbolic.symbols("g", (3,))
    vjp, _ = symbolic.free_max(symbolic.exprs(spec.softmax_vjp(z, g)))
    jac, _ = symbolic.free_max(symbolic.exprs(spec.softmax_jacobian(z)))
    truth = sp.Matrix(jac.tolist()).T * sp.Matrix(symbolic.flat(g))
    symbolic.assert_equal(vjp, list(truth), "softmax_vjp")


@pytest.mark.spec("entropy", tier="S")
@pytest.mark.parametrize("n", [2, 3, 4])
def test_entropy_one_hot_uniform_and_bits(n):
    xp = symbolic.backend().xp
    one_hot = xp.asarray([1] + [0] * (n - 1), dtype=xp.float64)
    symbolic.assert_equal(symbolic.exprs(spec.entropy(one_hot)), 0, "H(one-hot)")
    uniform = xp.asarray([sp.Rational(1, n)] * n, dtype=xp.float64)
    symbolic.assert_equal(symbolic.exprs(spec.entropy(uniform)), sp.log(n), "H(uniform)")
    bits = symbolic.exprs(spec.entropy(uniform, base=2))[()]
    assert abs(float(bits) - math.log2(n)) <= 4 * np.finfo(np.float64).eps * math.log2(n)


@pytest.mark.spec("cross_entropy", tier="S")
def test_cross_entropy_of_one_hot_is_negative_log():
    xp = symbolic.backend().xp
    q = symbolic.symbols("q", (3,), positive=True)
    p = xp.asarray([0, 1, 0], dtype=xp.float64)
    symbolic.assert_equal(symbolic.exprs(spec.cross_entropy(p, q)), -sp.log(symbolic.flat(q)[1]),
                          "H(one-hot, Q)")


@pytest.mark.spec("kl_divergence", tier="S")
@pytest.mark.parametrize("n", [2, 3])
def test_kl_is_cross_entropy_minus_entropy(n):
    p = symbolic.symbols("p", (n,), positive=True)
    q = symbolic.symbols("q", (n,), positive=True)
    kl = symbolic.exprs(spec.kl_divergence(p, q))
    rhs = symbolic.exprs(spec.cross_entropy(p, q)) - symbolic.exprs(spec.entropy(p))
    symbolic.assert_equal(kl, rhs, "KL = H(P,Q) − H(P)")


@pytest.mark.spec("perplexity", tier="S")
@pytest.mark.parametrize("vocab", [2, 7, 50257])
def test_perplexity_of_uniform_model_is_vocabulary_size(vocab):
    xp = symbolic.backend().xp
    logq = xp.asarray([-sp.log(vocab)] * 3, dtype=xp.float64)
    symbolic.assert_equal(symbolic.exprs(spec.perplexity(logq)), vocab, "PPL(uniform)")
    q = symbolic.symbols("q", (3,), positive=True)
    ppl = symbolic.exprs(spec.perplexity(xp.log(q)))
    ce = sp.Add(*[-sp.log(e) for e in symbolic.flat(q)]) / 3
    symbolic.assert_equal(ppl, sp.exp(ce), "PPL = exp(CE)")


@pytest.mark.spec("bayes_posterior", tier="S")
def test_bayes_posterior_normalised_and_uniform_prior():
    xp = symbolic.backend().xp
    like = symbolic.symbols("L", (3,), positive=True)
    prior = symbolic.symbols("pi", (3,), positive=True)
    post = symbolic.exprs(spec.bayes_posterior(like, prior))
    symbolic.assert_equal(sp.Add(*post), 1, "Σ posterior")
    flat = xp.asarray([sp.Rational(1, 3)] * 3, dtype=xp.float64)
    post_u = symbolic.exprs(spec.bayes_posterior(like, flat))
    ls = symbolic.flat(like)
    symbolic.assert_equal(post_u, [li / sp.Add(*ls) for li in ls], "uniform prior")


@pytest.mark.spec("normal_pdf", tier="S")
def test_normal_pdf_formula_and_symmetry():
    x = symbolic.symbols("x", (1,))
    xs = symbolic.flat(x)[0]
    mu, sigma = 0.5, 2.0
    pdf = symbolic.exprs(spec.normal_pdf(x, mean=mu, std=sigma))
    truth = sp.exp(-(xs - sp.Rational(1, 2)) ** 2 / 8) / (2 * sp.sqrt(2 * sp.pi))
    symbolic.assert_equal(pdf, [truth], "normal density")
    d = sp.Symbol("d", real=True)
    mirrored = pdf[0].subs(xs, sp.Rational(1, 2) - d) - pdf[0].subs(xs, sp.Rational(1, 2) + d)
    assert symbolic.is_zero(mirrored)


@pytest.mark.spec("softmax_cross_entropy", tier="S")
@pytest.mark.parametrize("label", [0, 2])
def test_softmax_cross_entropy_is_cross_entropy_of_softmax(label):
    xp = symbolic.backend().xp
    z = symbolic.symbols("z", (1, 3))
    y = symbolic.ints([label])
    loss, _ = symbolic.free_max(symbolic.exprs(spec.softmax_cross_entropy(z, y)))
    one_hot = xp.asarray([[1 if k == label else 0 for k in range(3)]], dtype=xp.float64)
    ce, _ = symbolic.free_max(symbolic.exprs(spec.cross_entropy(one_hot, spec.softmax(z))))
    symbolic.assert_equal(loss.reshape(-1), ce.reshape(-1), "softmax CE = H(one-hot, softmax)")


@pytest.mark.spec("softmax_cross_entropy_grad", tier="S")
@pytest.mark.parametrize(("n", "label"), [(2, 0), (3, 1), (4, 3)])
def test_softmax_cross_entropy_gradient_identity(n, label):
    """The named identity: d CE(softmax(z), y)/dz, derived by SymPy from the traced loss,
    equals softmax(z) − one_hot(y), and softmax_cross_entropy_grad is exactly that."""
    z = symbolic.symbols("z", (1, n))
    y = symbolic.ints([label])
    loss, _ = symbolic.free_max(symbolic.exprs(spec.softmax_cross_entropy(z, y)))
    zs = symbolic.flat(z)
    derivative = [sp.diff(loss[()], zi) for zi in zs]
    textbook = [sp.exp(zi) / _exp_sum(zs) - (1 if k == label else 0) for k, zi in enumerate(zs)]
    symbolic.assert_equal(derivative, textbook, "SymPy derivative of the traced loss")
    grad, _ = symbolic.free_max(symbolic.exprs(spec.softmax_cross_entropy_grad(z, y)))
    symbolic.assert_equal(grad.reshape(-1), textbook, "softmax_cross_entropy_grad")
    symbolic.assert_equal(sp.Add(*grad.reshape(-1)), 0, "gradient sums to 0")


# ============================================================================ tier P
def _on(backend, *host_arrays):
    return [to_backend(backend, a) for a in host_arrays]


def _np(backend, x):
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


@pytest.mark.spec("softmax", tier="P")
@given(data=st.data())
def test_softmax_properties(backend, dtype, data):
    z = data.draw(cst.logits(dtype), label="z")
    axis = data.draw(cst.axes(z.ndim))
    c = data.draw(cst.floats(dtype, -50, 50), label="c")
    (zb,) = _on(backend, z)
    s = _np(backend, spec.softmax(zb, axis=axis))
    assert np.all(s > 0) and np.all(s <= 1)
    assert_close(backend, np.sum(s, axis=axis), np.ones_like(np.sum(s, axis=axis)), dtype,
                 what="Σ softmax")
    shifted = (z.astype(np.float64) + c).astype(dtype)
    # z + c is rounded in the dtype; compare against softmax of the rounded shifted input's
    # own exact value via float64 (the identity is about the function, not the rounding)
    ref = spec.softmax(shifted.astype(np.float64) - float(c), axis=axis)
    s_shift = _np(backend, spec.softmax(to_backend(backend, shifted), axis=axis))
    np.testing.assert_allclose(s_shift, ref, rtol=values(dtype).rtol * 10,
                               atol=values(dtype).atol * 10 + 50 * np.finfo(dtype).eps)


@pytest.mark.spec("softmax", tier="P")
@given(z=cst.logits("float64", shape=(5,), bound=10.0))
def test_softmax_temperature_limits(backend, z):
    assume(np.sort(z)[-1] - np.sort(z)[-2] > 1e-3)  # a unique maximum
    (zb,) = _on(backend, z)
    cold = _np(backend, spec.softmax(zb, temperature=1e-4))
    np.testing.assert_allclose(cold, np.eye(5)[np.argmax(z)], atol=1e-4)
    hot = _np(backend, spec.softmax(zb, temperature=1e6))
    np.testing.assert_allclose(hot, np.full(5, 0.2), rtol=1e-4)


@pytest.mark.spec("softmax", tier="P")
def test_softmax_neg_inf_logit_gets_zero(backend, dtype):
    z = np.array([[-np.inf, 0.0, 1.0], [2.0, -np.inf, -np.inf]], dtype=dtype)
    s = _np(backend, spec.softmax(to_backend(backend, z)))
    assert s[0, 0] == 0 and s[1, 1] == 0 and s[1, 2] == 0 and s[1, 0] == 1


@pytest.mark.spec("log_softmax", tier="P")
@given(data=st.data())
def test_log_softmax_exp_is_softmax(backend, dtype, data):
    z = data.draw(cst.logits(dtype, bound=20.0), label="z")
    axis = data.draw(cst.axes(z.ndim))
    (zb,) = _on(backend, z)
    ls = _np(backend, spec.log_softmax(zb, axis=axis))
    assert np.all(ls <= 0)
    assert_close(backend, np.exp(ls), _np(backend, spec.softmax(zb, axis=axis)), dtype,
                 what="exp(log_softmax)")


@pytest.mark.spec("logsumexp", tier="P")
@given(data=st.data())
def test_logsumexp_bounds(backend, dtype, data):
    z = data.draw(cst.logits(dtype, bound=1e3), label="z")
    axis = data.draw(cst.axes(z.ndim))
    lse = _np(backend, spec.logsumexp(to_backend(backend, z), axis=axis))
    m = np.max(z.astype(np.float64), axis=axis)
    slack = 4 * np.finfo(dtype).eps * np.maximum(1, np.abs(m))
    assert np.all(lse >= m - slack)
    assert np.all(lse <= m + math.log(z.shape[axis]) + slack)


@pytest.mark.spec("softmax_jacobian", tier="P")
@given(z=cst.logits("float64", bound=10.0))
def test_softmax_jacobian_symmetric_rows_sum_to_zero(backend, dtype, z):
    z = z.astype(dtype)
    jac = _np(backend, spec.softmax_jacobian(to_backend(backend, z)))
    assert jac.shape == z.shape + z.shape[-1:]
    tol = values(dtype)
    np.testing.assert_allclose(jac, np.swapaxes(jac, -1, -2), rtol=tol.rtol, atol=tol.atol)
    np.testing.assert_allclose(np.sum(jac, axis=-1), 0, atol=tol.atol * z.shape[-1])


@pytest.mark.spec("softmax_vjp", tier="P")
@given(data=st.data())
def test_softmax_vjp_is_jacobian_product(backend, dtype, data):
    z = data.draw(cst.logits(dtype, bound=10.0), label="z")
    g = data.draw(cst.arrays(dtype, z.shape), label="g")
    zb, gb = _on(backend, z, g)
    vjp = _np(backend, spec.softmax_vjp(zb, gb))
    jac = _np(backend, spec.softmax_jacobian(zb))
    expected = np.einsum("...ij,...i->...j", jac, g.astype(np.float64))
    assert_close(backend, vjp, expected, dtype, kind="grads", what="J^T g")
    np.testing.assert_allclose(np.sum(vjp, axis=-1), 0, atol=grads(dtype).atol * 10 * z.shape[-1])


@pytest.mark.spec("entropy", tier="P")
@given(data=st.data())
def test_entropy_bounds_and_one_hot(backend, dtype, data):
    p = data.draw(cst.distributions(dtype), label="p")
    n = p.shape[-1]
    h = _np(backend, spec.entropy(to_backend(backend, p)))
    slack = 64 * np.finfo(dtype).eps * max(1.0, math.log(n))
    assert np.all(h >= -slack) and np.all(h <= math.log(n) + slack)
    k = data.draw(st.integers(0, n - 1), label="k")
    one_hot = np.eye(n, dtype=dtype)[k]
    assert _np(backend, spec.entropy(to_backend(backend, one_hot))) == 0
    uniform = np.full(n, 1 / n, dtype=dtype)
    assert_close(backend, spec.entropy(to_backend(backend, uniform)), math.log(n), dtype,
                 what="H(uniform)")


@pytest.mark.spec("entropy", tier="P")
def test_entropy_in_bits(backend, dtype):
    coin = to_backend(backend, np.array([0.5, 0.5], dtype=dtype))
    die = to_backend(backend, np.full(6, 1 / 6, dtype=dtype))
    assert_close(backend, spec.entropy(coin, base=2), 1.0, dtype, what="fair coin")
    assert_close(backend, spec.entropy(die, base=2), math.log2(6), dtype, what="fair die")


@pytest.mark.spec("cross_entropy", tier="P")
@given(data=st.data())
def test_cross_entropy_gibbs_and_one_hot(backend, dtype, data):
    shape = data.draw(cst.shapes(max_dims=2), label="shape")
    p = data.draw(cst.distributions(dtype, shape=shape), label="p")
    q = data.draw(cst.distributions(dtype, shape=shape, allow_zeros=False), label="q")
    pb, qb = _on(backend, p, q)
    hpq = _np(backend, spec.cross_entropy(pb, qb))
    hp = _np(backend, spec.entropy(pb))
    assert np.all(hpq >= hp - 64 * np.finfo(dtype).eps * np.maximum(1, np.abs(hp)))
    y = data.draw(st.integers(0, shape[-1] - 1), label="y")
    one_hot = np.zeros(shape[-1], dtype=dtype)
    one_hot[y] = 1
    got = spec.cross_entropy(to_backend(backend, one_hot), qb)
    assert_close(backend, got, -np.log(q[..., y].astype(np.float64)), dtype, what="−log q_y")


@pytest.mark.spec("kl_divergence", tier="P")
@given(data=st.data())
def test_kl_gibbs_decomposition(backend, dtype, data):
    shape = data.draw(cst.shapes(max_dims=2), label="shape")
    p = data.draw(cst.distributions(dtype, shape=shape), label="p")
    q = data.draw(cst.distributions(dtype, shape=shape, allow_zeros=False), label="q")
    pb, qb = _on(backend, p, q)
    kl = _np(backend, spec.kl_divergence(pb, qb))
    assert np.all(kl >= -64 * np.finfo(dtype).eps)
    assert np.all(_np(backend, spec.kl_divergence(pb, pb)) == 0)
    rhs = _np(backend, spec.cross_entropy(pb, qb)) - _np(backend, spec.entropy(pb))
    np.testing.assert_allclose(kl, rhs, rtol=values(dtype).rtol,
                               atol=64 * np.finfo(dtype).eps * np.max(np.abs(rhs) + 1))


@pytest.mark.spec("kl_divergence", tier="P")
def test_kl_is_not_symmetric(backend, dtype):
    p = to_backend(backend, np.array([0.9, 0.1], dtype=dtype))
    q = to_backend(backend, np.array([0.5, 0.5], dtype=dtype))
    forward = _np(backend, spec.kl_divergence(p, q))
    backward = _np(backend, spec.kl_divergence(q, p))
    # 0.9 ln 1.8 + 0.1 ln 0.2 = 0.3681…, 0.5 ln(5/9) + 0.5 ln 5 = 0.5108…
    np.testing.assert_allclose([forward, backward], [0.9 * math.log(1.8) + 0.1 * math.log(0.2),
                                                     0.5 * math.log(5 / 9) + 0.5 * math.log(5)],
                               rtol=values(dtype).rtol)
    assert abs(forward - backward) > 0.1


@pytest.mark.spec("perplexity", tier="P")
@given(data=st.data())
def test_perplexity_uniform_and_exp_cross_entropy(backend, dtype, data):
    vocab = data.draw(st.integers(2, 60000), label="vocab")
    n = data.draw(st.integers(1, 20), label="n")
    logq = np.full(n, -math.log(vocab), dtype=dtype)
    assert_close(backend, spec.perplexity(to_backend(backend, logq)), vocab, dtype,
                 tol=type(values(dtype))(rtol=values(dtype).rtol * math.log(vocab), atol=0),
                 what="PPL(uniform)")
    q = data.draw(cst.arrays(dtype, (n,), min_value=1e-3, max_value=1.0), label="q")
    got = spec.perplexity(to_backend(backend, np.log(q)))
    assert_close(backend, got, math.exp(-np.mean(np.log(q.astype(np.float64)))), dtype,
                 what="exp(mean CE)")


@pytest.mark.spec("bayes_posterior", tier="P")
@given(data=st.data())
def test_bayes_posterior_properties(backend, dtype, data):
    n = data.draw(st.integers(2, 8), label="n")
    like = data.draw(cst.arrays(dtype, (3, n), min_value=1e-3, max_value=1.0), label="L")
    prior = data.draw(cst.distributions(dtype, shape=(n,), allow_zeros=False), label="prior")
    lb, pb = _on(backend, like, prior)
    post = _np(backend, spec.bayes_posterior(lb, pb))
    assert_close(backend, np.sum(post, axis=-1), np.ones(3), dtype, what="Σ posterior")
    uniform = to_backend(backend, np.full(n, 1 / n, dtype=dtype))
    expected = like.astype(np.float64) / np.sum(like.astype(np.float64), axis=-1, keepdims=True)
    assert_close(backend, spec.bayes_posterior(lb, uniform), expected, dtype, what="flat prior")
    score = np.log(like.astype(np.float64)) + np.log(prior.astype(np.float64))
    top2 = np.sort(score, axis=-1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 1e-3
    assert np.all(np.argmax(post, axis=-1)[clear] == np.argmax(score, axis=-1)[clear])


@pytest.mark.spec("normal_pdf", tier="P")
@given(mean=st.floats(-5, 5), std=st.floats(0.1, 10))
def test_normal_pdf_integrates_to_one_and_is_symmetric(backend, dtype, mean, std):
    x = np.linspace(mean - 12 * std, mean + 12 * std, 4001)
    pdf = _np(backend, spec.normal_pdf(to_backend(backend, x.astype(dtype)), mean=mean, std=std))
    # the trapezoid rule on a Gaussian over ±12σ with 4000 panels is accurate to ~1e-12
    integral = float(np.sum((pdf[1:] + pdf[:-1]) / 2 * np.diff(x.astype(dtype))))
    assert abs(integral - 1) < (1e-10 if dtype == "float64" else 1e-5)
    d = np.linspace(0, 3 * std, 7)
    left = _np(backend, spec.normal_pdf(to_backend(backend, (mean - d).astype(dtype)), mean=mean,
                                        std=std))
    right = _np(backend, spec.normal_pdf(to_backend(backend, (mean + d).astype(dtype)),
                                         mean=mean, std=std))
    # mean ± d rounds differently on each side in float32: compare at the dtype's tolerance
    # widened by the density's slope times that rounding (|d pdf/dx| ≤ pdf_max/σ)
    slope = np.finfo(dtype).eps * (abs(mean) + 3 * std) / std
    np.testing.assert_allclose(left, right, rtol=values(dtype).rtol + 4 * slope)


@pytest.mark.spec("softmax_cross_entropy", tier="P")
@given(data=st.data())
def test_softmax_cross_entropy_equals_cross_entropy_of_softmax(backend, dtype, data):
    batch, k = data.draw(st.integers(1, 6), label="batch"), data.draw(st.integers(2, 10), "K")
    z = data.draw(cst.logits(dtype, shape=(batch, k), bound=20.0), label="z")
    y = data.draw(cst.labels_for((batch,), k), label="y")
    zb, yb = _on(backend, z, y)
    loss = spec.softmax_cross_entropy(zb, yb, reduction="none")
    one_hot = np.eye(k, dtype=dtype)[y]
    ce = spec.cross_entropy(to_backend(backend, one_hot), spec.softmax(zb))
    assert_close(backend, loss, _np(backend, ce), dtype, what="CE(one-hot, softmax)")
    mean = spec.softmax_cross_entropy(zb, yb)
    assert_close(backend, mean, np.mean(_np(backend, loss)), dtype, what="mean reduction")


@pytest.mark.spec("softmax_cross_entropy", tier="P")
@given(k=st.integers(2, 1000))
def test_softmax_cross_entropy_at_initialisation_is_log_k(backend, dtype, k):
    z = np.zeros((4, k), dtype=dtype)
    y = np.arange(4) % k
    loss = spec.softmax_cross_entropy(*_on(backend, z, y))
    assert_close(backend, loss, math.log(k), dtype, what="log K")


@pytest.mark.spec("softmax_cross_entropy_grad", tier="P")
@given(data=st.data())
def test_softmax_cross_entropy_grad_rows_sum_to_zero(backend, dtype, data):
    batch, k = data.draw(st.integers(1, 6), label="batch"), data.draw(st.integers(2, 10), "K")
    z = data.draw(cst.logits(dtype, shape=(batch, k)), label="z")
    y = data.draw(cst.labels_for((batch,), k), label="y")
    g = _np(backend, spec.softmax_cross_entropy_grad(*_on(backend, z, y)))
    np.testing.assert_allclose(np.sum(g, axis=-1), 0, atol=values(dtype).atol * k)
    assert np.all(g[np.arange(batch), y] <= 0)
    g_mean = _np(backend, spec.softmax_cross_entropy_grad(*_on(backend, z, y), reduction="mean"))
    assert_close(backend, g_mean, g / batch, dtype, what="mean reduction")


# ============================================================================ tier D
def _rng_inputs(seed, kind, shape):
    rng = np.random.default_rng(seed)
    if kind == "logits":
        return rng.normal(0, 2, shape)
    if kind == "positive":
        return rng.uniform(0.1, 1.0, shape)
    if kind == "logprob":
        return -rng.uniform(0.1, 3.0, shape)
    if kind == "real":
        return rng.uniform(-3, 3, shape)
    raise ValueError(kind)


def _labels(seed, n, k):
    return np.random.default_rng(seed + 1000).integers(0, k, n)


def _sce_sum(z, y):
    return spec.softmax_cross_entropy(z, y, reduction="sum")


# name → (function differentiated, argument makers, argnum, kwargs, closed form or None,
#         SymPy assumptions for the float arguments)
DERIVATIVES = {
    "softmax": (spec.softmax, [("logits", (2, 3))], 0, {},
                lambda xp, a, c: spec.softmax_vjp(a[0], c), {}),
    "softmax_vjp": (spec.softmax, [("logits", (4,))], 0, {},
                    lambda xp, a, c: spec.softmax_vjp(a[0], c), {}),
    "softmax_jacobian": (spec.softmax, [("logits", (3,))], 0, {},
                         lambda xp, a, c: xp.sum(spec.softmax_jacobian(a[0]) * c[:, None],
                                                 axis=0), {}),
    "log_softmax": (spec.log_softmax, [("logits", (2, 3))], 0, {},
                    lambda xp, a, c: c - spec.softmax(a[0]) * xp.sum(c, axis=-1, keepdims=True),
                    {}),
    "logsumexp": (spec.logsumexp, [("logits", (2, 3))], 0, {},
                  lambda xp, a, c: spec.softmax(a[0]) * c[..., None], {}),
    "entropy": (spec.entropy, [("positive", (2, 3))], 0, {},
                lambda xp, a, c: -(xp.log(a[0]) + 1) * c[..., None], {"positive": True}),
    "cross_entropy": (spec.cross_entropy, [("positive", (3,)), ("positive", (3,))], 1, {},
                      lambda xp, a, c: -a[0] / a[1] * c, {"positive": True}),
    "kl_divergence": (spec.kl_divergence, [("positive", (3,)), ("positive", (3,))], 1, {},
                      lambda xp, a, c: -a[0] / a[1] * c, {"positive": True}),
    "perplexity": (spec.perplexity, [("logprob", (4,))], 0, {},
                   lambda xp, a, c: -spec.perplexity(a[0]) / 4 * c + 0 * a[0], {}),
    "bayes_posterior": (spec.bayes_posterior, [("positive", (3,)), ("positive", (3,))], 0, {},
                        None, {"positive": True}),
    "normal_pdf": (spec.normal_pdf, [("real", (4,))], 0, {"mean": 0.5, "std": 1.5},
                   lambda xp, a, c: -(a[0] - 0.5) / 1.5**2
                   * spec.normal_pdf(a[0], mean=0.5, std=1.5) * c, {}),
    "softmax_cross_entropy": (_sce_sum, [("logits", (2, 3)), ("labels", (2,))], 0, {},
                              lambda xp, a, c: spec.softmax_cross_entropy_grad(a[0], a[1]) * c,
                              {}),
    "softmax_cross_entropy_grad": (_sce_sum, [("logits", (3, 4)), ("labels", (3,))], 0, {},
                                   lambda xp, a, c: spec.softmax_cross_entropy_grad(a[0], a[1])
                                   * c, {}),
}


def _make_args(makers, seed):
    args = []
    for kind, shape in makers:
        if kind == "labels":
            k = next(s for m, s in makers if m == "logits")[-1]
            args.append(_labels(seed, shape[0], k))
        else:
            args.append(_rng_inputs(seed + len(args), kind, shape))
    return args


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.spec(n, tier="D"), id=n) for n in DERIVATIVES]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_derivatives_agree(backend, name, seed):
    """SymPy (traced code, lambdified to the backend), autograd and central differences agree,
    and so does the closed form the spec provides."""
    fn, makers, argnum, kwargs, closed, assumptions = DERIVATIVES[name]
    derivatives.check_agreement(backend, name, fn, _make_args(makers, seed), argnum, kwargs,
                                closed, assumptions, seed=seed)
