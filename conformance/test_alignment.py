"""§12 Alignment and reinforcement learning: tier S, and PPO's exactly-zero clipped gradient.

Tier S runs the spec's own code on SymPy expressions; the softplus form contains Max and Min,
so identities are proven on each side of the kink by writing the margin as ±s with s > 0.
Tier P lives in properties/alignment.py (run by test_properties.py), the derivative cases of
tier D in records/alignment.py (run by test_derivatives.py); tiers X, E and R in test_tiers.py,
with what the options accept and refuse here (NumPy scalars, bools).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import spec
from conformance import derivatives, symbolic
from conformance.helpers import np64, on
from conformance.records.alignment import ppo_args, ppo_with_advantages
from conformance.tolerances import grads

_S = sp.Symbol("s", positive=True)


def _neg_log_sigmoid(x):
    return -sp.log(1 / (1 + sp.exp(-x)))


# ============================================================================ tier S
@pytest.mark.spec("reward_model_loss", tier="S",
                  identities=("stable_form", "gradient", "equal_rewards"))
def test_reward_model_loss_softplus_is_minus_log_sigmoid():
    rw, rl = symbolic.symbols("w", (1,)), symbolic.symbols("l", (1,))
    w, l = symbolic.flat(rw)[0], symbolic.flat(rl)[0]
    loss = symbolic.exprs(spec.reward_model_loss(rw, rl, reduction="none"))[0]
    for margin in (_S, -_S):  # the two sides of the kink of max/min
        on_side = loss.subs(w, l + margin)
        symbolic.assert_equal(on_side, _neg_log_sigmoid(margin), f"margin {margin}")
        symbolic.assert_equal(sp.diff(on_side, _S) * sp.sign(margin),
                              -1 / (1 + sp.exp(margin)), "∂L/∂r_w = −σ(r_l − r_w)")
    xp = symbolic.backend().xp
    equal = symbolic.exprs(spec.reward_model_loss(xp.asarray([3.0, -1.0]),
                                                  xp.asarray([3.0, -1.0])))
    symbolic.assert_equal(equal, sp.log(2), "log 2 at equal rewards")


@pytest.mark.spec("kl_penalized_reward", tier="S", identities=("formula", "beta_zero"))
def test_kl_penalized_reward_formula_and_beta_zero():
    r, lp, lq = (symbolic.symbols(n, (2,)) for n in ("r", "p", "q"))
    out = symbolic.exprs(spec.kl_penalized_reward(r, lp, lq, beta=0.5))
    rs, ps, qs = symbolic.flat(r), symbolic.flat(lp), symbolic.flat(lq)
    symbolic.assert_equal(out, [a - (b - c) / 2 for a, b, c in zip(rs, ps, qs)], "r − βΔ")
    zero = symbolic.exprs(spec.kl_penalized_reward(r, lp, lq, beta=0.0))
    symbolic.assert_equal(zero, rs, "β = 0")


@pytest.mark.spec("ppo_clip_objective", tier="S",
                  identities=("trust_region", "clipped_gradient"))
@pytest.mark.parametrize(("ratio", "adv_sign", "clipped"), [
    (sp.Rational(11, 10), 1, False), (sp.Rational(9, 10), -1, False),
    (sp.Rational(3, 2), 1, True), (sp.Rational(1, 2), -1, True),
    (sp.Rational(1, 2), 1, False), (sp.Rational(3, 2), -1, False),
])
def test_ppo_trust_region_and_zero_gradient_on_the_clipped_side(ratio, adv_sign, clipped):
    """Value and derivative in log π_θ at r = ratio, for every A > 0 (or every A < 0)."""
    xp = symbolic.backend().xp
    new = symbolic.symbols("n", (1,))
    a = sp.Symbol("a", positive=True)
    adv = xp.asarray([adv_sign * a])
    objective = symbolic.exprs(spec.ppo_clip_objective(new, xp.asarray([0.0]), adv,
                                                       reduction="none"))[0]
    n = symbolic.flat(new)[0]
    at = sp.log(ratio)
    value, slope = objective.subs(n, at), sp.diff(objective, n).subs(n, at)
    if clipped:  # A > 0 above 1 + ε, A < 0 below 1 − ε: the constant (1 ± ε)A, slope 0
        bound = sp.Rational(6, 5) if adv_sign > 0 else sp.Rational(4, 5)
        symbolic.assert_equal(value, bound * adv_sign * a, "clipped value")
        symbolic.assert_equal(slope, 0, "zero gradient on the clipped side")
    else:  # the plain surrogate rA and its slope rA (inside, or outside on the other side)
        symbolic.assert_equal(value, ratio * adv_sign * a, "r·A")
        symbolic.assert_equal(slope, ratio * adv_sign * a, "d(rA)/d log π")


@pytest.mark.spec("dpo_loss", tier="S", identities=("at_reference", "implicit_reward"))
def test_dpo_at_reference_and_as_implicit_reward_model():
    lw, ll, rw, rl = (symbolic.symbols(n, (1,)) for n in ("lw", "ll", "rw", "rl"))
    at_ref = symbolic.exprs(spec.dpo_loss(lw, ll, lw, ll, beta=0.5))
    symbolic.assert_equal(at_ref, sp.log(2), "policy = reference")
    beta = 0.5
    dpo = symbolic.exprs(spec.dpo_loss(lw, ll, rw, rl, beta=beta, reduction="none"))[0]
    rm = symbolic.exprs(spec.reward_model_loss(beta * (lw - rw), beta * (ll - rl),
                                               reduction="none"))[0]
    w, lo, rws, rls = (symbolic.flat(x)[0] for x in (lw, ll, rw, rl))
    for margin in (_S, -_S):  # on each side of the kink
        sub = {w: rws + (lo - rls) + margin}
        symbolic.assert_equal(dpo.subs(sub), rm.subs(sub), f"DPO = RM at margin {margin}")
        symbolic.assert_equal(dpo.subs(sub), _neg_log_sigmoid(margin / 2), "−log σ(βm)")


# γ must be a binary fraction here: the symbolic backend keeps other Python floats as SymPy
# Floats, and 0.9·0.9·0.9 ≠ 0.729 in binary, which the exact comparison (rightly) notices
@pytest.mark.spec("discounted_return", tier="S", identities=("definition", "gamma_zero"))
@pytest.mark.parametrize(("gamma", "exact"), [(0.5, sp.Rational(1, 2)), (0.75, sp.Rational(3, 4)),
                                              (0.0, 0), (1.0, 1)])
def test_discounted_return_definition(gamma, exact):
    r = symbolic.symbols("r", (4,))
    g = symbolic.exprs(spec.discounted_return(r, gamma=gamma))
    rs = symbolic.flat(r)
    truth = [sp.Add(*[exact ** (k - t) * rs[k] for k in range(t, 4)]) for t in range(4)]
    symbolic.assert_equal(g, truth, "G_t = Σ γ^{k−t} r_k")
    if gamma == 0.0:
        symbolic.assert_equal(g, rs, "γ = 0 gives r")


@pytest.mark.spec("discounted_return", tier="S", identity="constant_reward")
@pytest.mark.parametrize("steps", [1, 3, 5])
def test_discounted_return_of_constant_reward(steps):
    xp = symbolic.backend().xp
    c = sp.Symbol("c", real=True)
    g = symbolic.exprs(spec.discounted_return(xp.asarray([c] * steps), gamma=0.5))
    half = sp.Rational(1, 2)
    symbolic.assert_equal(g[0], c * (1 - half ** steps) / (1 - half), "r(1 − γᵀ)/(1 − γ)")


# ============================================================================ tier D
# The agreement of SymPy, autograd, differences and the closed forms is the generic
# test_derivatives.py over the records' cases; this checks what agreement within a tolerance
# cannot: on the clipped side the gradient is exactly 0, by differences and by SymPy.
@pytest.mark.spec("ppo_clip_objective", tier="D", identity="clipped_gradient")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ppo_gradient_is_exactly_zero_where_clipped(backend, seed):
    if "float64" not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no float64 for central differences")
    args = ppo_args(seed)
    r, adv = np.exp(args[0] - args[1]), args[2]
    cot = np.ones(6)
    ppo = ppo_with_advantages(seed)  # the advantages held fixed, as constants of the update
    fd = derivatives.central_difference(backend, ppo, args[:2], 0, cot, {"reduction": "none"})
    sym = derivatives.sympy_lambdified(backend, ppo, args[:2], 0, cot, {"reduction": "none"})
    clipped = np.asarray([False, True, False, False, False, True])
    assert np.all(fd[clipped] == 0) and np.all(sym[clipped] == 0)
    # elsewhere d(rA)/d log π = rA: SymPy's derivative evaluated in float64 is that product
    # up to a few roundings, well within the float64 gradient tolerance (256 ε)
    np.testing.assert_allclose(sym[~clipped], (r * adv)[~clipped], rtol=grads("float64").rtol)


# ============================================================================ tier E
# Options of any real number type (NumPy's scalars too, as read from a config), never a bool;
# the messages name the option and never call a valid value invalid.
@pytest.mark.spec("kl_penalized_reward", "ppo_clip_objective", "dpo_loss", "discounted_return",
                  tier="E")
@pytest.mark.parametrize("real", [np.float32, np.float64], ids=["np.float32", "np.float64"])
def test_options_take_numpy_scalars_and_refuse_bools(backend, dtype, real):
    a, b, c, d = on(backend, *(np.array(x, dtype=dtype) for x in (
        [1.0, -2.0], [-1.0, -3.0], [-1.5, -2.5], [-0.5, -1.0])))
    calls = [  # (function, python options, the same binary values as NumPy scalars)
        (lambda **o: spec.kl_penalized_reward(a, b, c, **o), {"beta": 0.5},
         {"beta": real(0.5)}),
        (lambda **o: spec.ppo_clip_objective(b, c, a, **o), {"clip_eps": 0.25,
                                                            "clip_eps_high": 0.375},
         {"clip_eps": real(0.25), "clip_eps_high": real(0.375)}),
        (lambda **o: spec.dpo_loss(b, c, d, c, **o), {"beta": 0.5, "label_smoothing": 0.125},
         {"beta": real(0.5), "label_smoothing": real(0.125)}),
        (lambda **o: spec.discounted_return(a, **o), {"gamma": 0.75}, {"gamma": real(0.75)}),
    ]
    for fn, python, numpy_scalars in calls:
        np.testing.assert_array_equal(np64(backend, fn(**numpy_scalars)),
                                      np64(backend, fn(**python)))
        for key in python:
            for flag in (True, np.bool_(True)):
                with pytest.raises(TypeError, match=f"{key} must be a real number"):
                    fn(**{**python, key: flag})
