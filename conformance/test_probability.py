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

import spec
from conformance import symbolic

SIZES = [1, 2, 3, 4]


def _exp_sum(z):
    return sp.Add(*[sp.exp(e) for e in z])


# ============================================================================ tier S
@pytest.mark.spec("softmax", tier="S", identity="stable_equals_textbook")
@pytest.mark.parametrize("n", SIZES)
def test_softmax_stable_code_is_textbook_softmax(n):
    z = symbolic.symbols("z", (n,))
    s, _ = symbolic.free_max(symbolic.exprs(spec.softmax(z)))
    zs = symbolic.flat(z)
    symbolic.assert_equal(s, [sp.exp(zi) / _exp_sum(zs) for zi in zs], "softmax")


@pytest.mark.spec("softmax", tier="S", identities=("shift_invariance", "sums_to_one"))
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


@pytest.mark.spec("softmax", tier="S", identity="stable_equals_textbook")
def test_softmax_temperature_symbolic():
    z = symbolic.symbols("z", (3,))
    s, _ = symbolic.free_max(symbolic.exprs(spec.softmax(z, temperature=2.0)))
    zs = symbolic.flat(z)
    symbolic.assert_equal(s, [sp.exp(zi / 2) / sp.Add(*[sp.exp(zj / 2) for zj in zs])
                              for zi in zs], "softmax(z/T)")


@pytest.mark.spec("log_softmax", tier="S", identity="exp_is_softmax")
@pytest.mark.parametrize("n", [2, 3])
def test_log_softmax_is_log_of_softmax(n):
    z = symbolic.symbols("z", (n,))
    ls, _ = symbolic.free_max(symbolic.exprs(spec.log_softmax(z)))
    zs = symbolic.flat(z)
    symbolic.assert_equal([sp.exp(e) for e in ls], [sp.exp(zi) / _exp_sum(zs) for zi in zs],
                          "exp(log_softmax)")


@pytest.mark.spec("logsumexp", tier="S", identity="equals_log_sum_exp")
@pytest.mark.parametrize("n", SIZES)
def test_logsumexp_is_log_sum_exp(n):
    z = symbolic.symbols("z", (n,))
    lse, _ = symbolic.free_max(symbolic.exprs(spec.logsumexp(z)))
    symbolic.assert_equal([sp.exp(lse[()])], [_exp_sum(symbolic.flat(z))], "exp(logsumexp)")


@pytest.mark.spec("softmax_jacobian", tier="S", identity="is_sympy_jacobian")
@pytest.mark.parametrize("n", [2, 3])
def test_softmax_jacobian_is_sympy_jacobian(n):
    z = symbolic.symbols("z", (n,))
    s, _ = symbolic.free_max(symbolic.exprs(spec.softmax(z)))
    jac, _ = symbolic.free_max(symbolic.exprs(spec.softmax_jacobian(z)))
    zs = symbolic.flat(z)
    # the max is held fixed while differentiating: softmax does not depend on it (tier S above)
    truth = sp.Matrix(list(s)).jacobian(zs)
    symbolic.assert_equal(jac, np.array(truth.tolist(), dtype=object), "softmax Jacobian")


@pytest.mark.spec("softmax_vjp", tier="S", identity="equals_jacobian_product")
def test_softmax_vjp_is_jacobian_transpose_product():
    z = symbolic.symbols("z", (3,))
    g = symbolic.symbols("g", (3,))
    vjp, _ = symbolic.free_max(symbolic.exprs(spec.softmax_vjp(z, g)))
    jac, _ = symbolic.free_max(symbolic.exprs(spec.softmax_jacobian(z)))
    truth = sp.Matrix(jac.tolist()).T * sp.Matrix(symbolic.flat(g))
    symbolic.assert_equal(vjp, list(truth), "softmax_vjp")


@pytest.mark.spec("entropy", tier="S", identities=("one_hot_zero", "uniform_max", "bits"))
@pytest.mark.parametrize("n", [2, 3, 4])
def test_entropy_one_hot_uniform_and_bits(n):
    xp = symbolic.backend().xp
    one_hot = xp.asarray([1] + [0] * (n - 1), dtype=xp.float64)
    symbolic.assert_equal(symbolic.exprs(spec.entropy(one_hot)), 0, "H(one-hot)")
    uniform = xp.asarray([sp.Rational(1, n)] * n, dtype=xp.float64)
    symbolic.assert_equal(symbolic.exprs(spec.entropy(uniform)), sp.log(n), "H(uniform)")
    bits = symbolic.exprs(spec.entropy(uniform, base=2))[()]
    assert abs(float(bits) - math.log2(n)) <= 4 * np.finfo(np.float64).eps * math.log2(n)


@pytest.mark.spec("cross_entropy", tier="S", identity="one_hot")
def test_cross_entropy_of_one_hot_is_negative_log():
    xp = symbolic.backend().xp
    q = symbolic.symbols("q", (3,), positive=True)
    p = xp.asarray([0, 1, 0], dtype=xp.float64)
    symbolic.assert_equal(symbolic.exprs(spec.cross_entropy(p, q)), -sp.log(symbolic.flat(q)[1]),
                          "H(one-hot, Q)")


@pytest.mark.spec("kl_divergence", tier="S", identity="decomposition")
@pytest.mark.parametrize("n", [2, 3])
def test_kl_is_cross_entropy_minus_entropy(n):
    p = symbolic.symbols("p", (n,), positive=True)
    q = symbolic.symbols("q", (n,), positive=True)
    kl = symbolic.exprs(spec.kl_divergence(p, q))
    rhs = symbolic.exprs(spec.cross_entropy(p, q)) - symbolic.exprs(spec.entropy(p))
    symbolic.assert_equal(kl, rhs, "KL = H(P,Q) − H(P)")


@pytest.mark.spec("perplexity", tier="S", identities=("uniform_is_vocab", "exp_cross_entropy"))
@pytest.mark.parametrize("vocab", [2, 7, 50257])
def test_perplexity_of_uniform_model_is_vocabulary_size(vocab):
    xp = symbolic.backend().xp
    logq = xp.asarray([-sp.log(vocab)] * 3, dtype=xp.float64)
    symbolic.assert_equal(symbolic.exprs(spec.perplexity(logq)), vocab, "PPL(uniform)")
    q = symbolic.symbols("q", (3,), positive=True)
    ppl = symbolic.exprs(spec.perplexity(xp.log(q)))
    ce = sp.Add(*[-sp.log(e) for e in symbolic.flat(q)]) / 3
    symbolic.assert_equal(ppl, sp.exp(ce), "PPL = exp(CE)")


@pytest.mark.spec("bayes_posterior", tier="S", identities=("sums_to_one", "uniform_prior"))
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


@pytest.mark.spec("normal_pdf", tier="S", identities=("formula", "symmetric"))
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


@pytest.mark.spec("softmax_cross_entropy", tier="S", identity="is_cross_entropy")
@pytest.mark.parametrize("label", [0, 2])
def test_softmax_cross_entropy_is_cross_entropy_of_softmax(label):
    xp = symbolic.backend().xp
    z = symbolic.symbols("z", (1, 3))
    y = symbolic.ints([label])
    loss, _ = symbolic.free_max(symbolic.exprs(spec.softmax_cross_entropy(z, y)))
    one_hot = xp.asarray([[1 if k == label else 0 for k in range(3)]], dtype=xp.float64)
    ce, _ = symbolic.free_max(symbolic.exprs(spec.cross_entropy(one_hot, spec.softmax(z))))
    symbolic.assert_equal(loss.reshape(-1), ce.reshape(-1), "softmax CE = H(one-hot, softmax)")


@pytest.mark.spec("softmax_cross_entropy_grad", tier="S",
                  identities=("sympy_derivative", "rows_sum_to_zero"))
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
