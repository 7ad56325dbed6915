"""§7 Normalisation: what is specific to the chapter, tier S.

Tier S runs the spec's own code on SymPy symbols. It proves the textbook formula, with ε
inside the root and the biased variance. It proves the invariances exactly with ε = 0:
LayerNorm under x → cx + d and RMSNorm under x → cx for c > 0. It also proves the
standardisation. Tier P is in conformance/properties/normalization.py, tier D's cases in
conformance/records/normalization.py; X, E and R are generic (test_tiers.py).
"""

from __future__ import annotations

import pytest
import sympy as sp

import spec
from conformance import symbolic

SIZES = [2, 3, 4]


# ============================================================================ tier S
def _textbook_layer(xs, gs, bs, eps):
    n = len(xs)
    mu = sp.Add(*xs) / n
    var = sp.Add(*[(x - mu) ** 2 for x in xs]) / n
    return [g * (x - mu) / sp.sqrt(var + eps) + b for x, g, b in zip(xs, gs, bs)]


@pytest.mark.spec("layer_norm", tier="S", identity="textbook")
@pytest.mark.parametrize("n", SIZES)
def test_layer_norm_is_textbook_with_eps_inside_the_root(n):
    x, g, b = (symbolic.symbols(s, (n,)) for s in ("x", "g", "b"))
    got = symbolic.exprs(spec.layer_norm(x, g, b, eps=0.5))
    want = _textbook_layer(symbolic.flat(x), symbolic.flat(g), symbolic.flat(b), sp.S.Half)
    symbolic.assert_equal(got, want, "γ(x − μ)/√(σ² + ε) + β")


@pytest.mark.spec("layer_norm", tier="S", identity="affine_invariance")
@pytest.mark.parametrize("n", SIZES)
def test_layer_norm_affine_invariance_symbolic(n):
    """With ε = 0: layer_norm(cx + d) = layer_norm(x) for every c > 0 and every d."""
    x, g, b = (symbolic.symbols(s, (n,)) for s in ("x", "g", "b"))
    c, d = sp.Symbol("c", positive=True), sp.Symbol("d", real=True)
    moved = symbolic.exprs(spec.layer_norm(x * c + d, g, b, eps=0.0))
    plain = symbolic.exprs(spec.layer_norm(x, g, b, eps=0.0))
    symbolic.assert_equal(moved, plain, "layer_norm(cx + d) = layer_norm(x)")
    # and the proof has teeth: with ε > 0 the same substitution is not an identity
    leaky = symbolic.exprs(spec.layer_norm(x * c + d, g, b, eps=0.5))
    point = {s: v for s, v in zip([*symbolic.flat(x), *symbolic.flat(g), *symbolic.flat(b)],
                                  [*range(1, n + 1), *[1] * n, *[0] * n])}
    point.update({c: sp.Rational(1, 10), d: 3})
    at = [sp.N((e1 - e0).subs(point)) for e1, e0 in zip(leaky, plain)]
    assert max(abs(float(e)) for e in at) > 1e-3, "ε = 0.5 should break the invariance"


@pytest.mark.spec("layer_norm", tier="S", identity="standardised")
@pytest.mark.parametrize("n", SIZES)
def test_layer_norm_standardised_symbolic(n):
    """Before the affine map: mean 0, and variance σ²/(σ² + ε) (so 1 with ε = 0)."""
    xp = symbolic.backend().xp
    x = symbolic.symbols("x", (n,))
    ones, zeros = xp.ones((n,), dtype=xp.float64), xp.zeros((n,), dtype=xp.float64)
    xs = symbolic.flat(x)
    mu = sp.Add(*xs) / n
    var = sp.Add(*[(e - mu) ** 2 for e in xs]) / n
    for eps, expected in ((0.0, sp.Integer(1)), (0.5, var / (var + sp.S.Half))):
        y = symbolic.flat(spec.layer_norm(x, ones, zeros, eps=eps))
        symbolic.assert_equal(sp.Add(*y) / n, 0, f"mean (ε = {eps})")
        symbolic.assert_equal(sp.Add(*[e**2 for e in y]) / n, expected, f"variance (ε = {eps})")


@pytest.mark.spec("rms_norm", tier="S", identities=("textbook", "scale_invariance"))
@pytest.mark.parametrize("n", SIZES)
def test_rms_norm_textbook_and_scale_invariance_symbolic(n):
    x, g = symbolic.symbols("x", (n,)), symbolic.symbols("g", (n,))
    xs, gs = symbolic.flat(x), symbolic.flat(g)
    rms = sp.sqrt(sp.Add(*[e**2 for e in xs]) / n + sp.S.Half)
    symbolic.assert_equal(symbolic.exprs(spec.rms_norm(x, g, eps=0.5)),
                          [gi * xi / rms for xi, gi in zip(xs, gs)], "γ x/√(mean x² + ε)")
    c = sp.Symbol("c", positive=True)
    symbolic.assert_equal(symbolic.exprs(spec.rms_norm(x * c, g, eps=0.0)),
                          symbolic.exprs(spec.rms_norm(x, g, eps=0.0)), "rms_norm(cx)")


@pytest.mark.spec("rms_norm", tier="S", identity="zero_mean_is_layer_norm")
@pytest.mark.parametrize("n", SIZES)
def test_rms_norm_is_layer_norm_for_zero_mean_input_symbolic(n):
    xp = symbolic.backend().xp
    free = symbolic.flat(symbolic.symbols("x", (n - 1,)))
    x = xp.asarray([*free, -sp.Add(*free)], dtype=xp.float64)  # Σ x = 0
    g = symbolic.symbols("g", (n,))
    zeros = xp.zeros((n,), dtype=xp.float64)
    symbolic.assert_equal(symbolic.exprs(spec.rms_norm(x, g, eps=0.5)),
                          symbolic.exprs(spec.layer_norm(x, g, zeros, eps=0.5)),
                          "rms_norm = layer_norm (β = 0) for Σx = 0")


@pytest.mark.spec("batch_norm", tier="S", identities=("textbook", "standardised"))
@pytest.mark.parametrize("m", SIZES)
def test_batch_norm_textbook_and_standardised_symbolic(m):
    xp = symbolic.backend().xp
    x = symbolic.symbols("x", (m, 2))
    g, b = symbolic.symbols("g", (2,)), symbolic.symbols("b", (2,))
    got = symbolic.exprs(spec.batch_norm(x, g, b, eps=0.5))
    cols = symbolic.exprs(x).T
    for j in range(2):
        want = _textbook_layer(list(cols[j]), [symbolic.flat(g)[j]] * m,
                               [symbolic.flat(b)[j]] * m, sp.S.Half)
        symbolic.assert_equal(got[:, j], want, f"feature {j}")
    plain = symbolic.exprs(spec.batch_norm(x, xp.ones((2,), dtype=xp.float64),
                                           xp.zeros((2,), dtype=xp.float64), eps=0.0))
    for j in range(2):
        symbolic.assert_equal(sp.Add(*plain[:, j]) / m, 0, "batch mean")
        symbolic.assert_equal(sp.Add(*[e**2 for e in plain[:, j]]) / m, 1, "batch variance")


@pytest.mark.spec("batch_norm", tier="S", identity="is_layer_norm_transposed")
def test_batch_norm_is_layer_norm_of_the_transpose_symbolic():
    xp = symbolic.backend().xp
    x = symbolic.symbols("x", (3, 2))
    bn = symbolic.exprs(spec.batch_norm(x, xp.ones((2,), dtype=xp.float64),
                                        xp.zeros((2,), dtype=xp.float64), eps=0.5))
    ln = symbolic.exprs(spec.layer_norm(xp.permute_dims(x, (1, 0)),
                                        xp.ones((3,), dtype=xp.float64),
                                        xp.zeros((3,), dtype=xp.float64), eps=0.5))
    symbolic.assert_equal(bn, ln.T, "batch_norm(x) = layer_norm(xᵀ)ᵀ")


@pytest.mark.spec("layer_norm", "batch_norm", "rms_norm", tier="S", identities=(
    "layer_norm:textbook", "batch_norm:textbook", "rms_norm:textbook"))
@pytest.mark.parametrize("eps", [0.5, 0.0])
@pytest.mark.parametrize("n", [2, 3])
def test_power_of_two_scaling_cancels_symbolic(n, eps):
    """The layers standardise x/s with ε/s² (s a power of two, so that no square overflows);
    on the symbolic namespace s is 1. Here the standardisation runs with a free positive s
    and equals the textbook formula for every s > 0: the scaling is exact mathematics."""
    from spec.normalization import _standardise

    xp = symbolic.backend().xp
    x = symbolic.symbols("x", (n,))
    xs = symbolic.flat(x)
    inv = xp.asarray([sp.Symbol("c", positive=True)], dtype=xp.float64)  # 1/s
    e = sp.nsimplify(eps)
    mu = sp.Add(*xs) / n
    var = sp.Add(*[(t - mu) ** 2 for t in xs]) / n
    got = symbolic.exprs(_standardise(xp, x, (0,), eps, "inside_root", 0, inv))
    symbolic.assert_equal(got, [(t - mu) / sp.sqrt(var + e) for t in xs], "(x − μ)/√(σ² + ε)")
    ms = sp.Add(*[t**2 for t in xs]) / n
    got = symbolic.exprs(_standardise(xp, x, (0,), eps, "inside_root", 0, inv, centre=False))
    symbolic.assert_equal(got, [t / sp.sqrt(ms + e) for t in xs], "x/√(mean x² + ε)")
