"""Tier P properties of §12 Alignment and reinforcement learning, as checks of an implementation.

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
from conformance.properties import prop
from conformance.tolerances import Tol


@prop("reward_model_loss", "equal_rewards")
def reward_model_loss_equal_rewards_and_ordering(impl, t):
    r = t.draw(cst.arrays(t.dtype, (5,), min_value=-100, max_value=100), label="r")
    rb = t.on(r)
    t.close(impl(rb, rb), math.log(2), what="log 2")
    d = t.draw(cst.arrays(t.dtype, (5,), min_value=0.01, max_value=50), label="margin")
    up, down = t.on((r + d).astype(t.dtype), r)
    good = t.np(impl(up, down, reduction="none"))
    bad = t.np(impl(down, up, reduction="none"))
    assert np.all(good < math.log(2)) and np.all(bad > math.log(2))
    # softplus(x) − softplus(−x) = x: the two orders differ by exactly the margin (of the
    # rounded inputs). Relative: the value tolerance; absolute: 64× its floor (512 ε), the
    # roundings of two softplus values of size ≤ log 2 + 150 that cancel when the margin is small
    margin = (r + d).astype(t.dtype).astype(np.float64) - r.astype(np.float64)
    np.testing.assert_allclose(bad - good, margin, rtol=t.tol.rtol, atol=t.tol.atol * 64)


@prop("reward_model_loss", "large_margins", draws=False)
def reward_model_loss_large_margins_stay_finite(impl, t):
    w, l = t.on(np.asarray([1000.0, -1000.0, 88.0, -88.0], dtype=t.dtype),
                np.asarray([-1000.0, 1000.0, -88.0, 88.0], dtype=t.dtype))
    out = t.np(impl(w, l, reduction="none"))
    assert np.all(np.isfinite(out)), out
    assert out[0] == 0.0 and out[1] == 2000.0
    t.close(out[2:], [math.log1p(math.exp(-176.0)), 176.0], what="margins ±176")


@prop("kl_penalized_reward", "beta_zero", "expected_penalty")
def kl_penalty_beta_zero_and_expected_penalty_is_kl(impl, t):
    n = t.draw(st.integers(2, 8), label="n")
    pi = t.draw(cst.distributions(t.dtype, shape=(n,), allow_zeros=False), label="pi")
    ref = t.draw(cst.distributions(t.dtype, shape=(n,), allow_zeros=False), label="ref")
    r = t.draw(cst.arrays(t.dtype, (n,)), label="r")
    beta = t.draw(cst.floats("float64", 0.0, 2.0), label="beta")
    rb, lp, lq = t.on(r, np.log(pi), np.log(ref))
    np.testing.assert_array_equal(t.np(impl(rb, lp, lq, beta=0.0)), r.astype(np.float64))
    shaped = t.np(impl(rb, lp, lq, beta=beta))
    pi64 = pi.astype(np.float64)
    expected_penalty = float(np.sum(pi64 * (r.astype(np.float64) - shaped)))
    kl = float(t.np(spec.kl_divergence(*t.on(pi, ref))))
    # the value tolerance (64 ε) at the scale of what is summed: β Σ π (|log π| + |log π_ref|)
    # for the penalties, max |r| for the rewards they are subtracted from
    scale = beta * float(np.sum(pi64 * np.abs(np.log(pi64)) + pi64 * np.abs(np.log(
        ref.astype(np.float64))))) + float(np.max(np.abs(r)))
    assert abs(expected_penalty - beta * kl) <= t.tol.rtol * (scale + 1)


@prop("ppo_clip_objective", "trust_region", "pessimistic")
def ppo_equals_surrogate_inside_and_never_exceeds_it(impl, t):
    n = t.draw(st.integers(1, 16), label="n")
    old = t.draw(cst.arrays(t.dtype, (n,), min_value=-5, max_value=0), label="old")
    delta = t.draw(cst.arrays(t.dtype, (n,), min_value=-1, max_value=1), label="delta")
    adv = t.draw(cst.arrays(t.dtype, (n,), min_value=-5, max_value=5), label="adv")
    eps = t.draw(st.sampled_from([0.1, 0.2, 0.3]), label="eps")
    new = (old + delta).astype(t.dtype)
    nb, ob, ab = t.on(new, old, adv)
    obj = t.np(impl(nb, ob, ab, clip_eps=eps, reduction="none"))
    r = np.exp(new.astype(np.float64) - old.astype(np.float64))
    surrogate = r * adv.astype(np.float64)
    tol = t.tol
    slack = tol.rtol * np.abs(surrogate) + tol.atol
    assert np.all(obj <= surrogate + slack), "the clipped objective is pessimistic"
    # 1e-3 keeps ratios that round across a bound of the region out of both comparisons
    inside = (r > 1 - eps + 1e-3) & (r < 1 + eps - 1e-3)
    np.testing.assert_allclose(obj[inside], surrogate[inside], rtol=tol.rtol, atol=tol.atol)
    clipped_side = ((adv > 0) & (r > 1 + eps + 1e-3)) | ((adv < 0) & (r < 1 - eps - 1e-3))
    bound = np.where(adv > 0, 1 + eps, 1 - eps) * adv.astype(np.float64)
    np.testing.assert_allclose(obj[clipped_side], bound[clipped_side], rtol=tol.rtol,
                               atol=tol.atol)
    mean = t.np(impl(nb, ob, ab, clip_eps=eps))
    # a mean of n terms of either sign, each |r A| ≤ 5e: the rounding of the sum grows with n
    # terms of that size, so the absolute floor does (8n × the value floor, 64 n ε)
    t.close(mean, np.mean(obj), tol=Tol(tol.rtol, tol.atol * 8 * n), what="mean")


@prop("dpo_loss", "at_reference", "implicit_reward", "decreasing")
def dpo_at_reference_implicit_reward_and_decreasing(impl, t):
    lw = t.draw(cst.arrays(t.dtype, (4,), min_value=-50, max_value=-1), label="logp_w")
    ll = t.draw(cst.arrays(t.dtype, (4,), min_value=-50, max_value=-1), label="logp_l")
    rw = t.draw(cst.arrays(t.dtype, (4,), min_value=-50, max_value=-1), label="ref_w")
    rl = t.draw(cst.arrays(t.dtype, (4,), min_value=-50, max_value=-1), label="ref_l")
    beta = t.draw(st.floats(0.01, 1.0), label="beta")
    lwb, llb, rwb, rlb = t.on(lw, ll, rw, rl)
    t.close(impl(lwb, llb, lwb, llb, beta=beta), math.log(2), what="policy = reference")
    per = t.np(impl(lwb, llb, rwb, rlb, beta=beta, reduction="none"))
    implicit = spec.reward_model_loss(beta * (lwb - rwb), beta * (llb - rlb), reduction="none")
    # the two round the margin at different points ((lw − rw) − (ll − rl), then β·m, against
    # β(lw − rw) − β(ll − rl)): differences of log-probabilities of size ≤ 49 carry a few ε·49
    # each, times β, which softplus passes on with slope ≤ 1: an absolute floor of
    # 64 × the value floor × (1 + 100 β), and 4× the value tolerance relative
    np.testing.assert_allclose(per, t.np(implicit), rtol=t.tol.rtol * 4,
                               atol=t.tol.atol * 64 * (1 + beta * 100))
    # raising the chosen log-probability by d raises the margin: the loss falls
    d = t.draw(st.floats(0.5, 5.0), label="d")
    higher = t.np(impl(t.on((lw + d).astype(t.dtype)), llb, rwb, rlb, beta=beta,
                       reduction="none"))
    margin = beta * ((lw.astype(np.float64) - rw) - (ll.astype(np.float64) - rl))
    assume(np.all(margin < 15))  # beyond, the loss is below the dtype's resolution
    assert np.all(higher < per)


@prop("discounted_return", "definition", "gamma_zero")
def discounted_return_definition_recursion_and_gamma_zero(impl, t):
    shape = t.draw(cst.shapes(max_dims=2, max_side=12), label="shape")
    r = t.draw(cst.arrays(t.dtype, shape), label="r")
    gamma = t.draw(cst.floats("float64", 0.0, 1.0), label="gamma")
    rb = t.on(r)
    g = t.np(impl(rb, gamma=gamma))
    gamma_d = float(np.asarray(gamma, dtype=t.dtype))  # the factor the dtype multiplies by
    r64 = r.astype(np.float64)
    steps = shape[-1]
    powers = gamma_d ** np.arange(steps)
    scale = np.sum(np.abs(r64) * 1.0, axis=-1) + 1
    # Horner's recursion: T multiply-adds, ≤ 2 roundings each, against a float64 reference
    # (2 more per step at most): 4Tε at the scale Σ|r| of what is summed
    tol = 4 * steps * t.eps
    np.testing.assert_allclose(g[..., 0], np.sum(powers * r64, axis=-1),
                               atol=tol * float(np.max(scale)), rtol=0)
    np.testing.assert_allclose(g[..., :-1], r64[..., :-1] + gamma_d * g[..., 1:],
                               atol=tol * float(np.max(scale)), rtol=0)
    np.testing.assert_array_equal(t.np(impl(rb, gamma=0.0)), r64)


@prop("discounted_return", "constant_reward")
def discounted_return_of_constant_reward_closed_form(impl, t):
    gamma = t.draw(st.sampled_from([0.5, 0.9, 0.99]), label="gamma")
    steps = t.draw(st.sampled_from([1, 10, 100]), label="steps")
    c = 0.75
    g = t.np(impl(t.on(np.full(steps, c, dtype=t.dtype)), gamma=gamma))
    gamma_d = float(np.asarray(gamma, dtype=t.dtype))
    closed = c * (1 - gamma_d ** steps) / (1 - gamma_d)
    # Horner's recursion: ≤ 2 roundings per step, relative to the sum of |terms| = G_0 here
    assert abs(g[0] - closed) <= 2 * steps * t.eps * closed
