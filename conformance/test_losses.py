"""§4 Losses (beyond the softmax cross-entropy, whose tier S is in test_probability.py): what is
specific to the chapter, tier S and one special tier-D check.

Tier S runs the spec's own code on SymPy expressions and proves each identity exactly (once,
independent of the backend under test). Tier P is in conformance/properties/losses.py and tier
D's derivative cases in conformance/records/losses.py, run by the generic tests
(test_properties.py, test_derivatives.py); tiers X, E and R are generic too (test_tiers.py, with
the oracles of oracles_losses.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import spec
from conformance import symbolic


# ============================================================================ tier S
@pytest.mark.spec("mse", tier="S", identities=("textbook", "gradient"))
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


@pytest.mark.spec("binary_cross_entropy", tier="S", identity="textbook")
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


@pytest.mark.spec("binary_cross_entropy_with_logits", tier="S",
                  identities=("is_bce_of_sigmoid", "gradient"))
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


@pytest.mark.spec("sequence_nll", tier="S", identities=("chain_rule", "sum_of_cross_entropies"))
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


@pytest.mark.spec("l2_penalty", tier="S", identities=("textbook", "gradient"))
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


@pytest.mark.spec("l2_penalty", tier="S", identity="gaussian_prior")
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


@pytest.mark.spec("empirical_risk", tier="S", identity="mean")
@pytest.mark.parametrize("shape", [(1,), (4,), (2, 3)])
def test_empirical_risk_is_mean(shape):
    L = symbolic.symbols("L", shape)
    ls = symbolic.flat(L)
    symbolic.assert_equal(symbolic.exprs(spec.empirical_risk(L)), sp.Add(*ls) / len(ls),
                          "(1/N) Σ L")


# ============================================================================ tier D
@pytest.mark.spec("binary_cross_entropy_with_logits", tier="D", identity="gradient")
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
    # σ(±1000) rounds to exactly 1 or 0 and σ(0) to 1/2: each σ(z) − y is within one rounding
    eps = float(np.finfo(precision).eps)
    np.testing.assert_allclose(g, [0.0, 0.0, 0.75, -0.5, 0.0], atol=eps)
