"""§12 Alignment and reinforcement learning: tiers S, P and D.

Tier S runs the spec's own code on SymPy expressions; the softplus form contains Max and Min,
so identities are proven on each side of the kink by writing the margin as ±s with s > 0.
Tiers P and D run on every selected backend and dtype. Tiers X, E and R live in test_tiers.py.
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
from conformance.tolerances import Tol, values

_S = sp.Symbol("s", positive=True)


def _np(backend, x):
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def _on(backend, *arrays):
    return [to_backend(backend, a) for a in arrays]


def _neg_log_sigmoid(x):
    return -sp.log(1 / (1 + sp.exp(-x)))


# ============================================================================ tier S
@pytest.mark.spec("reward_model_loss", tier="S")
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


@pytest.mark.spec("kl_penalized_reward", tier="S")
def test_kl_penalized_reward_formula_and_beta_zero():
    r, lp, lq = (symbolic.symbols(n, (2,)) for n in ("r", "p", "q"))
    out = symbolic.exprs(spec.kl_penalized_reward(r, lp, lq, beta=0.5))
    rs, ps, qs = symbolic.flat(r), symbolic.flat(lp), symbolic.flat(lq)
    symbolic.assert_equal(out, [a - (b - c) / 2 for a, b, c in zip(rs, ps, qs)], "r − βΔ")
    zero = symbolic.exprs(spec.kl_penalized_reward(r, lp, lq, beta=0.0))
    symbolic.assert_equal(zero, rs, "β = 0")


@pytest.mark.spec("ppo_clip_objective", tier="S")
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


@pytest.mark.spec("dpo_loss", tier="S")
def test_dpo_at_reference_and_as_implicit_reward_model():
    xp = symbolic.backend().xp
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
    del xp


# γ must be a binary fraction here: the symbolic backend keeps other Python floats as SymPy
# Floats, and 0.9·0.9·0.9 ≠ 0.729 in binary, which the exact comparison (rightly) notices
@pytest.mark.spec("discounted_return", tier="S")
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


@pytest.mark.spec("discounted_return", tier="S")
@pytest.mark.parametrize("steps", [1, 3, 5])
def test_discounted_return_of_constant_reward(steps):
    xp = symbolic.backend().xp
    c = sp.Symbol("c", real=True)
    g = symbolic.exprs(spec.discounted_return(xp.asarray([c] * steps), gamma=0.5))
    half = sp.Rational(1, 2)
    symbolic.assert_equal(g[0], c * (1 - half ** steps) / (1 - half), "r(1 − γᵀ)/(1 − γ)")


# ============================================================================ tier P
@pytest.mark.spec("reward_model_loss", tier="P")
@given(data=st.data())
def test_reward_model_loss_equal_rewards_and_ordering(backend, dtype, data):
    r = data.draw(cst.arrays(dtype, (5,), min_value=-100, max_value=100), label="r")
    (rb,) = _on(backend, r)
    assert_close(backend, spec.reward_model_loss(rb, rb), math.log(2), dtype, what="log 2")
    d = data.draw(cst.arrays(dtype, (5,), min_value=0.01, max_value=50), label="margin")
    up, down = _on(backend, (r + d).astype(dtype), r)
    good = _np(backend, spec.reward_model_loss(up, down, reduction="none"))
    bad = _np(backend, spec.reward_model_loss(down, up, reduction="none"))
    assert np.all(good < math.log(2)) and np.all(bad > math.log(2))
    # softplus(x) − softplus(−x) = x: the two orders differ by exactly the margin
    margin = (r + d).astype(dtype).astype(np.float64) - r.astype(np.float64)
    tol = values(dtype)
    np.testing.assert_allclose(bad - good, margin, rtol=tol.rtol, atol=tol.atol * 64)


@pytest.mark.spec("reward_model_loss", tier="P")
def test_reward_model_loss_large_margins_stay_finite(backend, dtype):
    w, l = _on(backend, np.asarray([1000.0, -1000.0, 88.0, -88.0], dtype=dtype),
               np.asarray([-1000.0, 1000.0, -88.0, 88.0], dtype=dtype))
    out = _np(backend, spec.reward_model_loss(w, l, reduction="none"))
    assert np.all(np.isfinite(out)), out
    assert out[0] == 0.0 and out[1] == 2000.0
    assert_close(backend, out[2:], [math.log1p(math.exp(-176.0)), 176.0], dtype,
                 what="margins ±176")


@pytest.mark.spec("kl_penalized_reward", tier="P")
@given(data=st.data())
def test_kl_penalty_beta_zero_and_expected_penalty_is_kl(backend, dtype, data):
    n = data.draw(st.integers(2, 8), label="n")
    pi = data.draw(cst.distributions(dtype, shape=(n,), allow_zeros=False), label="pi")
    ref = data.draw(cst.distributions(dtype, shape=(n,), allow_zeros=False), label="ref")
    r = data.draw(cst.arrays(dtype, (n,)), label="r")
    beta = data.draw(cst.floats("float64", 0.0, 2.0), label="beta")
    rb, lp, lq = _on(backend, r, np.log(pi), np.log(ref))
    np.testing.assert_array_equal(_np(backend, spec.kl_penalized_reward(rb, lp, lq, beta=0.0)),
                                  r.astype(np.float64))
    shaped = _np(backend, spec.kl_penalized_reward(rb, lp, lq, beta=beta))
    pi64 = pi.astype(np.float64)
    expected_penalty = float(np.sum(pi64 * (r.astype(np.float64) - shaped)))
    kl = float(_np(backend, spec.kl_divergence(*_on(backend, pi, ref))))
    scale = beta * float(np.sum(pi64 * np.abs(np.log(pi64)) + pi64 * np.abs(np.log(
        ref.astype(np.float64))))) + float(np.max(np.abs(r)))
    assert abs(expected_penalty - beta * kl) <= 64 * float(np.finfo(dtype).eps) * (scale + 1)


@pytest.mark.spec("ppo_clip_objective", tier="P")
@given(data=st.data())
def test_ppo_equals_surrogate_inside_and_never_exceeds_it(backend, dtype, data):
    n = data.draw(st.integers(1, 16), label="n")
    old = data.draw(cst.arrays(dtype, (n,), min_value=-5, max_value=0), label="old")
    delta = data.draw(cst.arrays(dtype, (n,), min_value=-1, max_value=1), label="delta")
    adv = data.draw(cst.arrays(dtype, (n,), min_value=-5, max_value=5), label="adv")
    eps = data.draw(st.sampled_from([0.1, 0.2, 0.3]), label="eps")
    new = (old + delta).astype(dtype)
    nb, ob, ab = _on(backend, new, old, adv)
    obj = _np(backend, spec.ppo_clip_objective(nb, ob, ab, clip_eps=eps, reduction="none"))
    r = np.exp(new.astype(np.float64) - old.astype(np.float64))
    surrogate = r * adv.astype(np.float64)
    tol = values(dtype)
    slack = tol.rtol * np.abs(surrogate) + tol.atol
    assert np.all(obj <= surrogate + slack), "the clipped objective is pessimistic"
    inside = (r > 1 - eps + 1e-3) & (r < 1 + eps - 1e-3)
    np.testing.assert_allclose(obj[inside], surrogate[inside], rtol=tol.rtol, atol=tol.atol)
    clipped_side = ((adv > 0) & (r > 1 + eps + 1e-3)) | ((adv < 0) & (r < 1 - eps - 1e-3))
    bound = np.where(adv > 0, 1 + eps, 1 - eps) * adv.astype(np.float64)
    np.testing.assert_allclose(obj[clipped_side], bound[clipped_side], rtol=tol.rtol,
                               atol=tol.atol)
    mean = _np(backend, spec.ppo_clip_objective(nb, ob, ab, clip_eps=eps))
    assert_close(backend, mean, np.mean(obj), dtype, tol=Tol(tol.rtol, tol.atol * 8 * n),
                 what="mean")


@pytest.mark.spec("dpo_loss", tier="P")
@given(data=st.data())
def test_dpo_properties(backend, dtype, data):
    lw = data.draw(cst.arrays(dtype, (4,), min_value=-50, max_value=-1), label="logp_w")
    ll = data.draw(cst.arrays(dtype, (4,), min_value=-50, max_value=-1), label="logp_l")
    rw = data.draw(cst.arrays(dtype, (4,), min_value=-50, max_value=-1), label="ref_w")
    rl = data.draw(cst.arrays(dtype, (4,), min_value=-50, max_value=-1), label="ref_l")
    beta = data.draw(st.floats(0.01, 1.0), label="beta")
    lwb, llb, rwb, rlb = _on(backend, lw, ll, rw, rl)
    at_ref = spec.dpo_loss(lwb, llb, lwb, llb, beta=beta)
    assert_close(backend, at_ref, math.log(2), dtype, what="policy = reference")
    per = _np(backend, spec.dpo_loss(lwb, llb, rwb, rlb, beta=beta, reduction="none"))
    implicit = spec.reward_model_loss(beta * (lwb - rwb), beta * (llb - rlb), reduction="none")
    tol = values(dtype)
    np.testing.assert_allclose(per, _np(backend, implicit), rtol=tol.rtol * 4,
                               atol=tol.atol * 64 * (1 + beta * 100))
    # raising the chosen log-probability by d raises the margin: the loss falls
    d = data.draw(st.floats(0.5, 5.0), label="d")
    higher = _np(backend, spec.dpo_loss(*_on(backend, (lw + d).astype(dtype)), llb, rwb, rlb,
                                        beta=beta, reduction="none"))
    margin = beta * ((lw.astype(np.float64) - rw) - (ll.astype(np.float64) - rl))
    assume(np.all(margin < 15))  # beyond, the loss is below the dtype's resolution
    assert np.all(higher < per)


@pytest.mark.spec("discounted_return", tier="P")
@given(data=st.data())
def test_discounted_return_recursion_gamma_zero_constant(backend, dtype, data):
    shape = data.draw(cst.shapes(max_dims=2, max_side=12), label="shape")
    r = data.draw(cst.arrays(dtype, shape), label="r")
    gamma = data.draw(cst.floats("float64", 0.0, 1.0), label="gamma")
    (rb,) = _on(backend, r)
    g = _np(backend, spec.discounted_return(rb, gamma=gamma))
    gamma_d = float(np.asarray(gamma, dtype=dtype))  # the factor the dtype multiplies by
    r64 = r.astype(np.float64)
    steps = shape[-1]
    powers = gamma_d ** np.arange(steps)
    scale = np.sum(np.abs(r64) * 1.0, axis=-1) + 1
    tol = 4 * steps * float(np.finfo(dtype).eps)
    np.testing.assert_allclose(g[..., 0], np.sum(powers * r64, axis=-1),
                               atol=tol * float(np.max(scale)), rtol=0)
    np.testing.assert_allclose(g[..., :-1], r64[..., :-1] + gamma_d * g[..., 1:],
                               atol=tol * float(np.max(scale)), rtol=0)
    np.testing.assert_array_equal(_np(backend, spec.discounted_return(rb, gamma=0.0)), r64)


@pytest.mark.spec("discounted_return", tier="P")
@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("steps", [1, 10, 100])
def test_discounted_return_of_constant_reward_closed_form(backend, dtype, gamma, steps):
    c = 0.75
    g = _np(backend, spec.discounted_return(to_backend(backend, np.full(steps, c, dtype=dtype)),
                                            gamma=gamma))
    gamma_d = float(np.asarray(gamma, dtype=dtype))
    closed = c * (1 - gamma_d ** steps) / (1 - gamma_d)
    # Horner's recursion: ≤ 2 roundings per step, relative to the sum of |terms| = G_0 here
    assert abs(g[0] - closed) <= 2 * steps * float(np.finfo(dtype).eps) * closed


# ============================================================================ tier D
def _sigmoid(xp, x):
    return 1 / (1 + xp.exp(-x))


def _rng(seed, shape, low=-3.0, high=3.0):
    return np.random.default_rng(seed).uniform(low, high, shape)


@pytest.mark.spec("reward_model_loss", tier="D")
@pytest.mark.parametrize("argnum", [0, 1])
@pytest.mark.parametrize("seed", [0, 1])
def test_reward_model_loss_derivatives(backend, argnum, seed):
    args = [_rng(seed, (4,)), _rng(seed + 10, (4,))]
    sign = -1 if argnum == 0 else 1
    derivatives.check_agreement(
        backend, "reward_model_loss", spec.reward_model_loss, args, argnum,
        {"reduction": "none"},
        lambda xp, a, c: sign * _sigmoid(xp, a[1] - a[0]) * c, seed=seed)


@pytest.mark.spec("kl_penalized_reward", tier="D")
@pytest.mark.parametrize("argnum", [0, 1, 2])
def test_kl_penalized_reward_derivatives(backend, argnum):
    args = [_rng(argnum, (3,)), _rng(argnum + 5, (3,), -4, -0.1), _rng(argnum + 9, (3,), -4, -0.1)]
    factor = {0: 1.0, 1: -0.3, 2: 0.3}[argnum]
    derivatives.check_agreement(
        backend, "kl_penalized_reward", spec.kl_penalized_reward, args, argnum, {"beta": 0.3},
        lambda xp, a, c: factor * c + 0 * a[argnum], seed=argnum)


@pytest.mark.spec("ppo_clip_objective", tier="D")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ppo_derivatives_and_zero_gradient_where_clipped(backend, seed):
    old = np.asarray([-1.0, -1.0, -1.0, -1.0, -1.0, -1.0])
    # ratios e^{Δ}: 1.05 (inside), 1.5 and 0.6 (outside), for A > 0 and A < 0
    delta = np.log(np.asarray([1.05, 1.5, 0.6, 1.05, 1.5, 0.6]))
    adv = np.asarray([1.0, 2.0, 0.5, -1.0, -0.5, -2.0]) * (1 + 0.1 * seed)
    args = [old + delta, old, adv]
    r = np.exp(delta)

    def closed(xp, a, c):
        ratio = xp.exp(a[0] - a[1])
        clipped = ((a[2] > 0) & (ratio > 1.2)) | ((a[2] < 0) & (ratio < 0.8))
        return xp.where(clipped, xp.zeros_like(ratio), ratio * a[2] * c)

    derivatives.check_agreement(backend, "ppo_clip_objective", spec.ppo_clip_objective, args, 0,
                                {"reduction": "none"}, closed, seed=seed)
    # and directly: the gradient on the clipped side is exactly 0 by differences and SymPy
    cot = np.ones(6)
    fd = derivatives.central_difference(backend, spec.ppo_clip_objective, args, 0, cot,
                                        {"reduction": "none"})
    sym = derivatives.sympy_lambdified(backend, spec.ppo_clip_objective, args, 0, cot,
                                       {"reduction": "none"})
    clipped = np.asarray([False, True, False, False, False, True])
    assert np.all(fd[clipped] == 0) and np.all(sym[clipped] == 0)
    np.testing.assert_allclose(sym[~clipped], (r * adv)[~clipped], rtol=1e-12)


@pytest.mark.spec("dpo_loss", tier="D")
@pytest.mark.parametrize("argnum", [0, 1, 2, 3])
def test_dpo_loss_derivatives(backend, argnum):
    args = [_rng(argnum + k, (3,), -6, -1) for k in range(4)]
    beta = 0.4
    sign = {0: -1, 1: 1, 2: 1, 3: -1}[argnum]

    def closed(xp, a, c):
        margin = (a[0] - a[2]) - (a[1] - a[3])
        return sign * beta * _sigmoid(xp, -beta * margin) * c

    derivatives.check_agreement(backend, "dpo_loss", spec.dpo_loss, args, argnum,
                                {"beta": beta, "reduction": "none"}, closed, seed=argnum)


@pytest.mark.spec("discounted_return", tier="D")
@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.9])
def test_discounted_return_derivatives(backend, gamma):
    r = _rng(3, (2, 5))

    def closed(xp, a, c):
        # ∂⟨c, G⟩/∂r_k = Σ_{t≤k} c_t γ^{k−t}: the returns-to-go run forwards on c
        steps = a[0].shape[-1]
        out, acc = [], c[..., 0]
        out.append(acc)
        for k in range(1, steps):
            acc = c[..., k] + gamma * acc
            out.append(acc)
        return xp.stack(out, axis=-1)

    derivatives.check_agreement(backend, "discounted_return", spec.discounted_return, [r], 0,
                                {"gamma": gamma}, closed)
