"""Tier P properties of §2 Probability and information, as checks of an implementation.

`impl` is the implementation under test with the spec's signature; other equations a check
needs as references come from `spec`.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

import spec
from conformance import strategies as cst
from conformance.properties import ALL_DTYPES, Example, prop


@prop("softmax", "shift_invariance", "sums_to_one", "positive", dtypes=ALL_DTYPES, examples=(
    Example({"z": np.array([[8.0, 8.0, -8.0], [-8.0, -8.0, -8.0]]), "axis": -1,
             "c": -50.0}, note="ties at the maximum and an all-equal row, shifted below them"),
))
def softmax_distribution_and_shift(impl, t):
    # positive needs e^{−(max gap)} above the dtype's smallest subnormal: float16's is 2⁻²⁴,
    # so its logits stay within ±8 (gaps ≤ 16 < 24·ln 2); the other dtypes reach 1e-45
    z = t.draw(cst.logits(t.dtype, bound=8.0 if t.dtype == "float16" else 30.0), label="z")
    axis = t.draw(cst.axes(z.ndim), label="axis")
    c = t.draw(cst.floats(t.dtype, -50, 50), label="c")
    s = t.np(impl(t.on(z), axis=axis))
    assert np.all(s > 0) and np.all(s <= 1)
    total = np.sum(s, axis=axis)
    t.close(total, np.ones_like(total), what="Σ softmax")
    # z + c is rounded in the dtype: the identity is about the function, so the reference is
    # the float64 softmax of the rounded shifted input's own exact value
    shifted = (z.astype(np.float64) + c).astype(t.dtype)
    ref = spec.softmax(shifted.astype(np.float64) - float(c), axis=axis)
    s_shift = t.np(impl(t.on(shifted), axis=axis))
    if t.low:
        # computed in float32 and rounded once: one ulp of the dtype (t.tol) of the exact value
        t.close(s_shift, ref, what="softmax(z + c)")
    else:
        np.testing.assert_allclose(s_shift, ref, rtol=t.tol.rtol * 10,
                                   atol=t.tol.atol * 10 + 50 * t.eps)


@prop("softmax", "temperature_limits", dtypes=("float64",))
def softmax_temperature_limits(impl, t):
    z = t.draw(cst.logits("float64", shape=(5,), bound=10.0), label="z")
    assume(np.sort(z)[-1] - np.sort(z)[-2] > 1e-3)  # a unique maximum
    zb = t.on(z)
    cold = t.np(impl(zb, temperature=1e-4))
    np.testing.assert_allclose(cold, np.eye(5)[np.argmax(z)], atol=1e-4)
    hot = t.np(impl(zb, temperature=1e6))
    np.testing.assert_allclose(hot, np.full(5, 0.2), rtol=1e-4)


@prop("softmax", "neg_inf_logit", dtypes=ALL_DTYPES, draws=False)
def softmax_neg_inf_logit_gets_zero(impl, t):
    z = np.array([[-np.inf, 0.0, 1.0], [2.0, -np.inf, -np.inf]], dtype=t.dtype)
    s = t.np(impl(t.on(z)))
    assert s[0, 0] == 0 and s[1, 1] == 0 and s[1, 2] == 0 and s[1, 0] == 1


@prop("log_softmax", "exp_is_softmax", dtypes=ALL_DTYPES)
def log_softmax_exp_is_softmax(impl, t):
    z = t.draw(cst.logits(t.dtype, bound=20.0), label="z")
    axis = t.draw(cst.axes(z.ndim), label="axis")
    zb = t.on(z)
    ls = t.np(impl(zb, axis=axis))
    assert np.all(ls <= 0)
    s = t.np(spec.softmax(zb, axis=axis))
    if t.low:
        # log_softmax is rounded once to the dtype, an absolute error of up to eps·|ℓ|/2,
        # which exp turns into a relative one: |exp(ℓ) − s| ≤ (tol + eps·|ℓ|)·s
        bound = (t.tol.rtol + t.eps * np.abs(ls)) * s + t.tol.atol
        assert np.all(np.abs(np.exp(ls) - s) <= bound), "exp(log_softmax)"
    else:
        t.close(np.exp(ls), s, what="exp(log_softmax)")


@prop("logsumexp", "bounds", dtypes=ALL_DTYPES)
def logsumexp_bounds(impl, t):
    z = t.draw(cst.logits(t.dtype, bound=1e3), label="z")
    axis = t.draw(cst.axes(z.ndim), label="axis")
    lse = t.np(impl(t.on(z), axis=axis))
    m = np.max(z.astype(np.float64), axis=axis)
    # max ≤ lse ≤ max + log n, each side up to a few roundings of a number of size |max|
    slack = 4 * t.eps * np.maximum(1, np.abs(m))
    assert np.all(lse >= m - slack)
    assert np.all(lse <= m + math.log(z.shape[axis]) + slack)


@prop("softmax_jacobian", "rows_sum_to_zero", "symmetric")
def softmax_jacobian_symmetric_rows_sum_to_zero(impl, t):
    z = t.draw(cst.logits("float64", bound=10.0), label="z").astype(t.dtype)
    jac = t.np(impl(t.on(z)))
    assert jac.shape == z.shape + z.shape[-1:]
    np.testing.assert_allclose(jac, np.swapaxes(jac, -1, -2), rtol=t.tol.rtol, atol=t.tol.atol)
    np.testing.assert_allclose(np.sum(jac, axis=-1), 0, atol=t.tol.atol * z.shape[-1])


@prop("softmax_vjp", "equals_jacobian_product", "orthogonal_to_ones")
def softmax_vjp_is_jacobian_product(impl, t):
    z = t.draw(cst.logits(t.dtype, bound=10.0), label="z")
    g = t.draw(cst.arrays(t.dtype, z.shape), label="g")
    zb, gb = t.on(z, g)
    vjp = t.np(impl(zb, gb))
    jac = t.np(spec.softmax_jacobian(zb))
    expected = np.einsum("...ij,...i->...j", jac, g.astype(np.float64))
    t.close(vjp, expected, kind="grads", what="J^T g")
    np.testing.assert_allclose(np.sum(vjp, axis=-1), 0, atol=t.grad_tol.atol * 10 * z.shape[-1])


@prop("entropy", "one_hot_zero", "uniform_max")
def entropy_bounds_one_hot_uniform(impl, t):
    p = t.draw(cst.distributions(t.dtype), label="p")
    n = p.shape[-1]
    h = t.np(impl(t.on(p)))
    slack = 64 * t.eps * max(1.0, math.log(n))
    assert np.all(h >= -slack) and np.all(h <= math.log(n) + slack)
    k = t.draw(st.integers(0, n - 1), label="k")
    one_hot = np.eye(n, dtype=t.dtype)[k]
    assert t.np(impl(t.on(one_hot))) == 0
    uniform = np.full(n, 1 / n, dtype=t.dtype)
    t.close(impl(t.on(uniform)), math.log(n), what="H(uniform)")


@prop("entropy", "bits", draws=False)
def entropy_in_bits(impl, t):
    coin, die = t.on(np.array([0.5, 0.5], dtype=t.dtype), np.full(6, 1 / 6, dtype=t.dtype))
    t.close(impl(coin, base=2), 1.0, what="fair coin")
    t.close(impl(die, base=2), math.log2(6), what="fair die")


@prop("cross_entropy", "gibbs", "one_hot")
def cross_entropy_gibbs_and_one_hot(impl, t):
    shape = t.draw(cst.shapes(max_dims=2), label="shape")
    p = t.draw(cst.distributions(t.dtype, shape=shape), label="p")
    q = t.draw(cst.distributions(t.dtype, shape=shape, allow_zeros=False), label="q")
    pb, qb = t.on(p, q)
    hpq = t.np(impl(pb, qb))
    hp = t.np(spec.entropy(pb))
    assert np.all(hpq >= hp - 64 * t.eps * np.maximum(1, np.abs(hp)))
    y = t.draw(st.integers(0, shape[-1] - 1), label="y")
    one_hot = np.zeros(shape[-1], dtype=t.dtype)
    one_hot[y] = 1
    t.close(impl(t.on(one_hot), qb), -np.log(q[..., y].astype(np.float64)), what="−log q_y")


@prop("kl_divergence", "gibbs", "decomposition")
def kl_gibbs_and_decomposition(impl, t):
    shape = t.draw(cst.shapes(max_dims=2), label="shape")
    p = t.draw(cst.distributions(t.dtype, shape=shape), label="p")
    q = t.draw(cst.distributions(t.dtype, shape=shape, allow_zeros=False), label="q")
    pb, qb = t.on(p, q)
    kl = t.np(impl(pb, qb))
    assert np.all(kl >= -64 * t.eps)
    assert np.all(t.np(impl(pb, pb)) == 0)
    rhs = t.np(spec.cross_entropy(pb, qb)) - t.np(spec.entropy(pb))
    np.testing.assert_allclose(kl, rhs, rtol=t.tol.rtol,
                               atol=64 * t.eps * np.max(np.abs(rhs) + 1))


@prop("kl_divergence", "asymmetric", draws=False)
def kl_is_not_symmetric(impl, t):
    p, q = t.on(np.array([0.9, 0.1], dtype=t.dtype), np.array([0.5, 0.5], dtype=t.dtype))
    forward, backward = t.np(impl(p, q)), t.np(impl(q, p))
    # 0.9 ln 1.8 + 0.1 ln 0.2 = 0.3681…, 0.5 ln(5/9) + 0.5 ln 5 = 0.5108…
    np.testing.assert_allclose([forward, backward], [0.9 * math.log(1.8) + 0.1 * math.log(0.2),
                                                     0.5 * math.log(5 / 9) + 0.5 * math.log(5)],
                               rtol=t.tol.rtol)
    assert abs(forward - backward) > 0.1


@prop("perplexity", "uniform_is_vocab", "exp_cross_entropy")
def perplexity_uniform_and_exp_cross_entropy(impl, t):
    vocab = t.draw(st.integers(2, 60000), label="vocab")
    n = t.draw(st.integers(1, 20), label="n")
    logq = np.full(n, -math.log(vocab), dtype=t.dtype)
    # log V is rounded to the dtype (relative error ε), and exp multiplies the absolute
    # error of its argument (ε·log V) into a relative one: the tolerance scales with log V
    t.close(impl(t.on(logq)), vocab, tol=type(t.tol)(rtol=t.tol.rtol * math.log(vocab), atol=0),
            what="PPL(uniform)")
    q = t.draw(cst.arrays(t.dtype, (n,), min_value=1e-3, max_value=1.0), label="q")
    got = impl(t.on(np.log(q)))
    t.close(got, math.exp(-np.mean(np.log(q.astype(np.float64)))), what="exp(mean CE)")


@prop("bayes_posterior", "sums_to_one", "uniform_prior", "map")
def bayes_posterior_properties(impl, t):
    n = t.draw(st.integers(2, 8), label="n")
    like = t.draw(cst.arrays(t.dtype, (3, n), min_value=1e-3, max_value=1.0), label="L")
    prior = t.draw(cst.distributions(t.dtype, shape=(n,), allow_zeros=False), label="prior")
    lb, pb = t.on(like, prior)
    post = t.np(impl(lb, pb))
    t.close(np.sum(post, axis=-1), np.ones(3), what="Σ posterior")
    uniform = t.on(np.full(n, 1 / n, dtype=t.dtype))
    expected = like.astype(np.float64) / np.sum(like.astype(np.float64), axis=-1, keepdims=True)
    t.close(impl(lb, uniform), expected, what="flat prior")
    score = np.log(like.astype(np.float64)) + np.log(prior.astype(np.float64))
    top2 = np.sort(score, axis=-1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 1e-3
    assert np.all(np.argmax(post, axis=-1)[clear] == np.argmax(score, axis=-1)[clear])


@prop("normal_pdf", "integrates_to_one", "symmetric")
def normal_pdf_integrates_to_one_and_is_symmetric(impl, t):
    mean = t.draw(st.floats(-5, 5), label="mean")
    std = t.draw(st.floats(0.1, 10), label="std")
    x = np.linspace(mean - 12 * std, mean + 12 * std, 4001)
    pdf = t.np(impl(t.on(x.astype(t.dtype)), mean=mean, std=std))
    # the trapezoid rule on a Gaussian over ±12σ with 4000 panels is accurate to ~1e-12
    integral = float(np.sum((pdf[1:] + pdf[:-1]) / 2 * np.diff(x.astype(t.dtype))))
    assert abs(integral - 1) < (1e-10 if t.dtype == "float64" else 1e-5)
    d = np.linspace(0, 3 * std, 7)
    left = t.np(impl(t.on((mean - d).astype(t.dtype)), mean=mean, std=std))
    right = t.np(impl(t.on((mean + d).astype(t.dtype)), mean=mean, std=std))
    # mean ± d rounds differently on each side in float32: compare at the dtype's tolerance
    # widened by the density's slope times that rounding (|d pdf/dx| ≤ pdf_max/σ)
    slope = t.eps * (abs(mean) + 3 * std) / std
    np.testing.assert_allclose(left, right, rtol=t.tol.rtol + 4 * slope)
