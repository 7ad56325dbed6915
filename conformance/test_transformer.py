"""§10 Transformer: tier S, the spec's own code run on SymPy expressions (once, independent
of the backend).

Tier P is in conformance/properties/transformer.py (run by test_properties.py), tier D's cases
in conformance/records/transformer.py (run by test_derivatives.py); X, E and R are driven by
the records in test_tiers.py.
"""

from __future__ import annotations

import pytest
import sympy as sp

import spec
from conformance import symbolic


# ============================================================================ tier S
def _gelu(z):
    return z * (1 + sp.erf(z / sp.sqrt(2))) / 2


def _silu(z):
    return z / (1 + sp.exp(-z))


@pytest.mark.spec("feed_forward", tier="S", identity="textbook")
def test_feed_forward_is_textbook_gelu_mlp():
    x = symbolic.symbols("x", (1, 2))
    w1, b1 = symbolic.symbols("w", (3, 2)), symbolic.symbols("b", (3,))
    w2, b2 = symbolic.symbols("u", (2, 3)), symbolic.symbols("c", (2,))
    out = symbolic.exprs(spec.feed_forward(x, w1, b1, w2, b2))
    xs, W1, B1, W2, B2 = (symbolic.exprs(a).tolist() for a in (x, w1, b1, w2, b2))
    z = [W1[j][0] * xs[0][0] + W1[j][1] * xs[0][1] + B1[j] for j in range(3)]
    truth = [[sp.Add(*[W2[i][j] * _gelu(z[j]) for j in range(3)]) + B2[i] for i in range(2)]]
    symbolic.assert_equal(out, truth, "W₂ GELU(W₁x + b₁) + b₂")


@pytest.mark.spec("feed_forward", tier="S", identity="textbook")
def test_feed_forward_swiglu_is_gated_product():
    """SwiGLU on the stacked w1: SiLU(x W_gᵀ + b_g) ⊙ (x W_uᵀ + b_u), then W₂. Positive
    symbols: the spec's SiLU branches on the sign of its argument, decidable only then."""
    x = symbolic.symbols("x", (1, 2), positive=True)
    w1, b1 = symbolic.symbols("w", (4, 2), positive=True), symbolic.symbols("b", (4,),
                                                                             positive=True)
    w2, b2 = symbolic.symbols("u", (2, 2)), symbolic.symbols("c", (2,))
    out = symbolic.exprs(spec.feed_forward(x, w1, b1, w2, b2, activation="swiglu"))
    xs, W1, B1, W2, B2 = (symbolic.exprs(a).tolist() for a in (x, w1, b1, w2, b2))
    z = [W1[j][0] * xs[0][0] + W1[j][1] * xs[0][1] + B1[j] for j in range(4)]
    hidden = [_silu(z[j]) * z[j + 2] for j in range(2)]
    truth = [[sp.Add(*[W2[i][j] * hidden[j] for j in range(2)]) + B2[i] for i in range(2)]]
    symbolic.assert_equal(out, truth, "SwiGLU MLP")


@pytest.mark.spec("transformer_block", tier="S", identity="residual_identity")
@pytest.mark.parametrize(("num_heads", "activation"), [(1, "gelu"), (2, "relu")])
def test_block_with_zeroed_output_projections_is_identity(num_heads, activation):
    """w_o = 0 and w2 = b2 = 0: both sublayers add exactly 0, so x'' = x for symbolic x and
    symbolic everything else."""
    xp = symbolic.backend().xp
    t, d, d_ff = 2, 2, 3
    x = symbolic.symbols("x", (t, d))
    zero = xp.zeros
    params = {
        "ln1_gamma": symbolic.symbols("g1", (d,)), "ln1_beta": symbolic.symbols("c1", (d,)),
        "w_q": symbolic.symbols("wq", (d, d)), "w_k": symbolic.symbols("wk", (d, d)),
        "w_v": symbolic.symbols("wv", (d, d)), "w_o": zero((d, d), dtype=xp.float64),
        "ln2_gamma": symbolic.symbols("g2", (d,)), "ln2_beta": symbolic.symbols("c2", (d,)),
        "w1": symbolic.symbols("w1", (d_ff, d)), "b1": symbolic.symbols("b1", (d_ff,)),
        "w2": zero((d, d_ff), dtype=xp.float64), "b2": zero((d,), dtype=xp.float64),
    }
    out = symbolic.exprs(spec.transformer_block(x, params, num_heads=num_heads,
                                                activation=activation))
    assert out.tolist() == symbolic.exprs(x).tolist()
