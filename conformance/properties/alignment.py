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
from conformance.precision import host_dtype, round_to
from conformance.properties import ALL_DTYPES, prop, within
from conformance.tolerances import Tol


def _work(t) -> str:
    """The dtype the spec computes in (float16, bfloat16 → float32): Python-number options
    are rounded to it, not to the low dtype."""
    return "float32" if t.low else t.dtype


def _low(t, x) -> np.ndarray:
    """float64 values rounded once to the trial's dtype, as a host array of that dtype."""
    return round_to(x, t.dtype).astype(host_dtype(t.dtype))


@prop("reward_model_loss", "equal_rewards", dtypes=ALL_DTYPES)
def reward_model_loss_equal_rewards_and_ordering(impl, t):
    r = t.draw(cst.arrays(t.dtype, (5,), min_value=-100, max_value=100), label="r")
    rb = t.on(r)
    t.close(impl(rb, rb), math.log(2), what="log 2")
    d = t.draw(cst.arrays(t.dtype, (5,), min_value=0.01, max_value=50), label="margin")
    up_host = _low(t, r.astype(np.float64) + d.astype(np.float64))
    margin = up_host.astype(np.float64) - r.astype(np.float64)
    if t.low:
        # the losses log 2 ∓ m/2 + O(m²), rounded once, stay on their side of log 2 only if
        # m/2 exceeds an ulp there (ε/2): margins that the dtype keeps ≥ 2ε (below that, and
        # at 0 where r + d rounds back to r, a low precision cannot order the two)
        assume(np.all(margin >= 2 * t.eps))
    up, down = t.on(up_host, r)
    good = t.np(impl(up, down, reduction="none")).astype(np.float64)  # the difference below
    bad = t.np(impl(down, up, reduction="none")).astype(np.float64)  # taken exactly
    assert np.all(good < math.log(2)) and np.all(bad > math.log(2))
    # softplus(x) − softplus(−x) = x: the two orders differ by exactly the margin (of the
    # rounded inputs). Relative: the value tolerance; absolute: 64× its floor (512 ε), the
    # roundings of two softplus values of size ≤ log 2 + 150 that cancel when the margin is
    # small; in float16 and bfloat16 each of the two is rounded once more (ε/2 of its size)
    atol = t.tol.atol * 64 + (t.eps / 2 * float(np.max(np.abs(bad) + np.abs(good)))
                              if t.low else 0)
    np.testing.assert_allclose(bad - good, margin, rtol=t.tol.rtol, atol=atol)


@prop("reward_model_loss", "large_margins", dtypes=ALL_DTYPES, draws=False)
def reward_model_loss_large_margins_stay_finite(impl, t):
    # ±1000 and ±88 are exact in every dtype (1000 = 125·8, 2000 = 125·16)
    w, l = t.on(np.asarray([1000.0, -1000.0, 88.0, -88.0], dtype=host_dtype(t.dtype)),
                np.asarray([-1000.0, 1000.0, -88.0, 88.0], dtype=host_dtype(t.dtype)))
    out = t.np(impl(w, l, reduction="none"))
    assert np.all(np.isfinite(out)), out
    assert out[0] == 0.0 and out[1] == 2000.0
    t.close(out[2:], [math.log1p(math.exp(-176.0)), 176.0], what="margins ±176")


@prop("reward_model_loss", "equal_rewards", dtypes=ALL_DTYPES, draws=False)
def reward_model_loss_mean_over_many_pairs(impl, t):
    """The mean over 70,000 pairs at equal rewards is log 2: a float16 sum of the losses
    would pass its largest value (65,504) and overflow; the spec sums in float32."""
    zeros = t.on(np.zeros(70_000, dtype=host_dtype(t.dtype)))
    # 70,000 terms of log 2 in float32 (pairwise or sequential: ≤ 70,000 ε₃₂ relative at
    # worst, 8e-3, far above what a pairwise sum commits) rounded once
    got = float(t.np(impl(zeros, zeros)))
    assert math.isfinite(got)
    assert abs(got - math.log(2)) <= (t.eps / 2 + 70_000 * float(np.finfo(np.float32).eps)
                                      if t.low else 70_000 * t.eps) * math.log(2)


@prop("kl_penalized_reward", "beta_zero", "expected_penalty", dtypes=ALL_DTYPES)
def kl_penalty_beta_zero_and_expected_penalty_is_kl(impl, t):
    n = t.draw(st.integers(2, 8), label="n")
    pi = t.draw(cst.distributions(t.dtype, shape=(n,), allow_zeros=False), label="pi")
    ref = t.draw(cst.distributions(t.dtype, shape=(n,), allow_zeros=False), label="ref")
    r = t.draw(cst.arrays(t.dtype, (n,)), label="r")
    beta = t.draw(cst.floats("float64", 0.0, 2.0), label="beta")
    # the log-probabilities rounded once to the dtype
    rb, lp, lq = t.on(r, _low(t, np.log(pi.astype(np.float64))),
                      _low(t, np.log(ref.astype(np.float64))))
    np.testing.assert_array_equal(t.np(impl(rb, lp, lq, beta=0.0)), r.astype(np.float64))
    # for every estimator, also where the penalty overflows: Δ = −1000 (exact in every dtype)
    # makes k3's e^{−Δ} ∞ in the working dtype, and 0·∞ would be NaN
    far = t.on(np.full(n, -1000.0, dtype=host_dtype(t.dtype)))
    for estimator in ("k1", "k2", "k3"):
        np.testing.assert_array_equal(t.np(impl(rb, far, lq, beta=0.0, estimator=estimator)),
                                      r.astype(np.float64), err_msg=estimator)
    shaped = t.np(impl(rb, lp, lq, beta=beta))
    pi64 = pi.astype(np.float64)
    expected_penalty = float(np.sum(pi64 * (r.astype(np.float64) - shaped)))
    kl = float(t.np(spec.kl_divergence(*t.on(pi, ref))))
    # the value tolerance (64 ε) at the scale of what is summed: β Σ π (|log π| + |log π_ref|)
    # for the penalties, max |r| for the rewards they are subtracted from
    scale = beta * float(np.sum(pi64 * np.abs(np.log(pi64)) + pi64 * np.abs(np.log(
        ref.astype(np.float64))))) + float(np.max(np.abs(r)))
    # in float16 and bfloat16 four roundings, each ≤ ε/2 at that scale: log π, log π_ref, the
    # shaped reward and the KL (β·KL ≤ the scale): 2ε
    rtol = 2 * t.tol.rtol if t.low else t.tol.rtol
    assert abs(expected_penalty - beta * kl) <= rtol * (scale + 1)


def _kl_estimates(delta: np.ndarray) -> dict:
    """Schulman's three one-sample estimators of KL(π‖π_ref), Δ = log π − log π_ref, written
    from their definitions with ρ = π_ref/π (float64)."""
    rho = np.exp(-delta)
    return {"k1": -np.log(rho), "k2": np.log(rho) ** 2 / 2, "k3": rho - 1 - np.log(rho)}


@prop("kl_penalized_reward", "estimators", dtypes=ALL_DTYPES)
def kl_penalty_estimators_equal_their_references_and_differ(impl, t):
    """Each estimator equals its definition; k3 is ≥ 0 for every sample and, like k1,
    averages to KL(π‖π_ref) over y ~ π (Σπ·k3 = Σπ_ref − Σπ + KL, both sums 1 up to the
    dtype's rounding of the drawn distributions); at Δ = −1 (π = π_ref/e) the three are
    −1, 1/2 and e − 2."""
    n = t.draw(st.integers(2, 8), label="n")
    pi = t.draw(cst.distributions(t.dtype, shape=(n,), allow_zeros=False), label="pi")
    ref = t.draw(cst.distributions(t.dtype, shape=(n,), allow_zeros=False), label="ref")
    beta = t.draw(cst.floats("float64", 0.01, 2.0), label="beta")
    lp, lq = _low(t, np.log(pi.astype(np.float64))), _low(t, np.log(ref.astype(np.float64)))
    delta = lp.astype(np.float64) - lq.astype(np.float64)
    zero = t.on(np.zeros(n, dtype=host_dtype(t.dtype)))
    want = _kl_estimates(delta)
    pi64, ref64 = pi.astype(np.float64), ref.astype(np.float64)
    for name, estimate in want.items():
        penalty = -t.np(impl(zero, *t.on(lp, lq), beta=beta, estimator=name))
        # a difference, β and at most an expm1 and a sum at the scale β(|Δ| + |e^{−Δ} − 1|),
        # the value tolerance (64 ε) of the working dtype, rounded once in a low precision
        scale = beta * (np.abs(delta) + np.abs(np.expm1(-delta)) + np.abs(delta) ** 2)
        within(penalty, beta * estimate, t.tol.rtol * scale + t.tol.atol, rtol=t.tol.rtol,
                what=name)
        if name == "k3":
            assert np.all(penalty >= -t.tol.rtol * scale), "k3 ≥ 0"
            # unbiased: Σπ·k3 = Σπρ − Σπ + Σπ·Δ = Σπ_ref − Σπ + KL(π‖π_ref) for the exact logs;
            # the logs rounded to the dtype (|δ| ≤ ε/2·(|log π| + |log π_ref|)) move Σπρ by
            # Σπ_ref·|δ| and Σπ·Δ by Σπ·|δ| (to first order, 1 % spare), the penalties by
            # their bound above
            kl = float(np.sum(pi64 * (np.log(pi64) - np.log(ref64))))
            unbiased = float(np.sum(ref64) - np.sum(pi64)) + kl
            delta_err = t.eps / 2 * (np.abs(lp.astype(np.float64)) + np.abs(lq.astype(np.float64)))
            element = t.tol.rtol * (beta * np.abs(estimate) + scale) + t.tol.atol
            bound = beta * 1.01 * float(np.sum((ref64 + pi64) * delta_err)) + float(
                np.sum(pi64 * element))
            assert abs(float(np.sum(pi64 * penalty)) - beta * unbiased) <= bound, "E[k3] = KL"
    apart = {name: float(-t.np(impl(*t.on(*(np.array([x], dtype=host_dtype(t.dtype))
                                          for x in (0.0, -1.0, 0.0))),
                                    beta=1.0, estimator=name))[0]) for name in want}
    np.testing.assert_allclose([apart["k1"], apart["k2"], apart["k3"]],
                               [-1.0, 0.5, math.e - 2], rtol=t.tol.rtol)


@prop("ppo_clip_objective", "trust_region", "pessimistic", dtypes=ALL_DTYPES)
def ppo_equals_surrogate_inside_and_never_exceeds_it(impl, t):
    n = t.draw(st.integers(1, 16), label="n")
    old = t.draw(cst.arrays(t.dtype, (n,), min_value=-5, max_value=0), label="old")
    delta = t.draw(cst.arrays(t.dtype, (n,), min_value=-1, max_value=1), label="delta")
    adv = t.draw(cst.arrays(t.dtype, (n,), min_value=-5, max_value=5), label="adv")
    eps = t.draw(st.sampled_from([0.1, 0.2, 0.3]), label="eps")
    new = _low(t, old.astype(np.float64) + delta.astype(np.float64))
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
    # terms of that size, so the absolute floor does (8n × the value floor, 64 n ε); in
    # float16 and bfloat16 the mean of the float32 terms is compared with the mean of the
    # terms each rounded once (ε/2 of their size on average)
    atol = tol.atol * 8 * n + (t.eps / 2 * float(np.mean(np.abs(obj))) if t.low else 0.0)
    t.close(mean, np.mean(obj), tol=Tol(tol.rtol, atol), what="mean")


@prop("ppo_clip_objective", "zero_advantage", dtypes=ALL_DTYPES)
def ppo_zero_advantage_contributes_zero_where_the_ratio_overflows(impl, t):
    """log-ratios up to 1000 (e^{1000} overflows every dtype): where A = 0 the term is 0,
    never ∞·0 = NaN, and so is the mean when every A is 0; elsewhere the clipped side is
    finite ((1 + ε)A for A > 0) and the other side −∞ (the true value, overflowed)."""
    n = t.draw(st.integers(1, 8), label="n")
    delta = t.draw(cst.arrays(t.dtype, (n,), min_value=-1000, max_value=1000), label="delta")
    adv = t.draw(cst.arrays(t.dtype, (n,), min_value=-5, max_value=5), label="adv")
    zero_at = t.draw(cst.arrays("float64", (n,), min_value=0, max_value=1), label="zero at")
    adv = np.where(zero_at < 0.5, 0.0, adv).astype(host_dtype(t.dtype))
    old = np.zeros(n, dtype=host_dtype(t.dtype))
    nb, ob, ab = t.on(delta, old, adv)
    obj = t.np(impl(nb, ob, ab, reduction="none"))
    zero = adv == 0
    assert np.all(obj[zero] == 0), obj
    assert not np.any(np.isnan(obj)), obj
    assert np.all(np.isfinite(obj[adv > 0])), "A > 0 is clipped at (1 + ε)A at most"
    assert float(t.np(impl(nb, ob, t.on(np.zeros(n, dtype=host_dtype(t.dtype)))))) == 0.0


def _ppo_reference(new, old, adv, low: float, high: float) -> np.ndarray:
    """The clipped surrogate written as the paper does, min(rA, clip(r, 1 − ε, 1 + ε_h)A),
    in float64 (with the region's two ends as given)."""
    r = np.exp(new - old)
    return np.minimum(r * adv, np.clip(r, 1 - low, 1 + high) * adv)


@prop("ppo_clip_objective", "clip_higher", dtypes=ALL_DTYPES)
def ppo_clip_higher_equals_its_reference_and_differs(impl, t):
    """clip_eps_high = ε_h (DAPO's clip-higher) clips at 1 + ε_h above and 1 − ε below, as the
    reference of that form computes; at r = 1.25, A = 1 (the distinguishing input) it gives
    1.25 where the symmetric default gives 1.2."""
    n = t.draw(st.integers(1, 16), label="n")
    old = t.draw(cst.arrays(t.dtype, (n,), min_value=-5, max_value=0), label="old")
    delta = t.draw(cst.arrays(t.dtype, (n,), min_value=-1, max_value=1), label="delta")
    adv = t.draw(cst.arrays(t.dtype, (n,), min_value=-5, max_value=5), label="adv")
    high = t.draw(st.sampled_from([0.25, 0.28, 0.4]), label="eps_high")
    new = _low(t, old.astype(np.float64) + delta.astype(np.float64))
    got = t.np(impl(*t.on(new, old, adv), clip_eps=0.2, clip_eps_high=high, reduction="none"))
    want = _ppo_reference(new.astype(np.float64), old.astype(np.float64),
                          adv.astype(np.float64), 0.2, high)
    r = np.exp(new.astype(np.float64) - old.astype(np.float64))
    # 1e-3 keeps ratios that round across an end of the region out of the comparison (as in
    # the trust-region property); elsewhere an exp and a product: the value tolerance
    away = (np.abs(r - 0.8) > 1e-3) & (np.abs(r - 1 - high) > 1e-3)
    t.close(got[away], want[away], what="clip-higher")
    at = [t.on(np.array([x], dtype=host_dtype(t.dtype))) for x in (math.log(1.25), 0.0, 1.0)]
    higher = float(t.np(impl(*at, clip_eps=0.2, clip_eps_high=0.28)))
    symmetric = float(t.np(impl(*at, clip_eps=0.2)))
    r125 = math.exp(float(round_to(math.log(1.25), t.dtype)))  # the ratio the dtype holds
    t.close(higher, r125, what="r = 1.25 inside [0.8, 1.28]")
    t.close(symmetric, 1.2, what="r = 1.25 clipped at 1.2")


def _dpo_inputs(t):
    lw = t.draw(cst.arrays(t.dtype, (4,), min_value=-50, max_value=-1), label="logp_w")
    ll = t.draw(cst.arrays(t.dtype, (4,), min_value=-50, max_value=-1), label="logp_l")
    rw = t.draw(cst.arrays(t.dtype, (4,), min_value=-50, max_value=-1), label="ref_w")
    rl = t.draw(cst.arrays(t.dtype, (4,), min_value=-50, max_value=-1), label="ref_l")
    beta = t.draw(st.floats(0.01, 1.0), label="beta")
    return lw, ll, rw, rl, beta


@prop("dpo_loss", "at_reference", "implicit_reward", dtypes=ALL_DTYPES)
def dpo_at_reference_and_implicit_reward(impl, t):
    lw, ll, rw, rl, beta = _dpo_inputs(t)
    lwb, llb, rwb, rlb = t.on(lw, ll, rw, rl)
    t.close(impl(lwb, llb, lwb, llb, beta=beta), math.log(2), what="policy = reference")
    t.close(impl(lwb, llb, lwb, llb, beta=beta, label_smoothing=0.1), math.log(2),
            what="policy = reference, cDPO")
    per = t.np(impl(lwb, llb, rwb, rlb, beta=beta, reduction="none"))
    if t.low:
        # the implicit rewards rounded once to the dtype (|δ| ≤ ε/2 of each), passed on by
        # softplus with slope ≤ 1; the two losses each rounded once (ε/2 of their size)
        w64, l64 = (beta * (lw.astype(np.float64) - rw), beta * (ll.astype(np.float64) - rl))
        implicit = t.np(spec.reward_model_loss(*t.on(_low(t, w64), _low(t, l64)),
                                               reduction="none"))
        atol = t.eps / 2 * (np.abs(w64) + np.abs(l64) + np.abs(per) + np.abs(implicit))
        within(per, implicit, atol + t.tol.atol * 64, what="implicit rewards")
        return
    implicit = spec.reward_model_loss(beta * (lwb - rwb), beta * (llb - rlb), reduction="none")
    # the two round the margin at different points ((lw − rw) − (ll − rl), then β·m, against
    # β(lw − rw) − β(ll − rl)): differences of log-probabilities of size ≤ 49 carry a few ε·49
    # each, times β, which softplus passes on with slope ≤ 1: an absolute floor of
    # 64 × the value floor × (1 + 100 β), and 4× the value tolerance relative
    np.testing.assert_allclose(per, t.np(implicit), rtol=t.tol.rtol * 4,
                               atol=t.tol.atol * 64 * (1 + beta * 100))


# float32 and float64 only: the fall σ(−βm)·βd of the loss is below one ulp of a low
# precision well before the margin reaches 15 (at 15 the loss, 3e-7, is float16-subnormal)
@prop("dpo_loss", "decreasing")
def dpo_decreasing_in_the_margin(impl, t):
    lw, ll, rw, rl, beta = _dpo_inputs(t)
    lwb, llb, rwb, rlb = t.on(lw, ll, rw, rl)
    per = t.np(impl(lwb, llb, rwb, rlb, beta=beta, reduction="none"))
    # raising the chosen log-probability by d raises the margin: the loss falls
    d = t.draw(st.floats(0.5, 5.0), label="d")
    higher = t.np(impl(t.on((lw + d).astype(t.dtype)), llb, rwb, rlb, beta=beta,
                       reduction="none"))
    margin = beta * ((lw.astype(np.float64) - rw) - (ll.astype(np.float64) - rl))
    assume(np.all(margin < 15))  # beyond, the loss is below the dtype's resolution
    assert np.all(higher < per)


def _cdpo_reference(margin: np.ndarray, smoothing: float) -> np.ndarray:
    """cDPO's loss (Mitchell, 2023) from its definition, −(1 − ε) log σ(βm) − ε log σ(−βm),
    with log σ(x) = −log(1 + e^{−x}) (float64, numpy's logaddexp for the softplus)."""
    return (1 - smoothing) * np.logaddexp(0.0, -margin) + smoothing * np.logaddexp(0.0, margin)


@prop("dpo_loss", "label_smoothing", dtypes=ALL_DTYPES)
def dpo_label_smoothing_equals_its_reference_and_differs(impl, t):
    """label_smoothing = ε is cDPO, as its definition computes it; at βm = 20 (the
    distinguishing input) it gives ≈ 2.0 for ε = 0.1, where DPO gives 2e-9."""
    lw, ll, rw, rl, beta = _dpo_inputs(t)
    smoothing = t.draw(st.sampled_from([0.0, 0.05, 0.1, 0.25, 0.5]), label="label_smoothing")
    per = t.np(impl(*t.on(lw, ll, rw, rl), beta=beta, label_smoothing=smoothing,
                    reduction="none"))
    f = [x.astype(np.float64) for x in (lw, ll, rw, rl)]
    margin = beta * ((f[0] - f[2]) - (f[1] - f[3]))
    want = _cdpo_reference(margin, smoothing)
    # the margin's differences of log-probabilities of size ≤ 49 (a few ε·49 each, times β,
    # passed on with slope ≤ 1: 64 × the value floor × (1 + 100 β)), two softplus and a sum
    # (4× the value tolerance relative)
    np.testing.assert_allclose(per, want, rtol=t.tol.rtol * 4,
                               atol=t.tol.atol * 64 * (1 + beta * 100))
    h = host_dtype(t.dtype)
    apart = [t.on(np.array([x], dtype=h)) for x in (0.0, -20.0, 0.0, 0.0)]
    conservative = float(t.np(impl(*apart, beta=1.0, label_smoothing=0.1)))
    plain = float(t.np(impl(*apart, beta=1.0)))
    t.close(conservative, float(_cdpo_reference(np.array(20.0), 0.1)), what="cDPO at βm = 20")
    t.close(plain, float(_cdpo_reference(np.array(20.0), 0.0)), what="DPO at βm = 20")
    assert conservative > 1e8 * plain


@prop("discounted_return", "definition", "gamma_zero", dtypes=ALL_DTYPES)
def discounted_return_definition_recursion_and_gamma_zero(impl, t):
    shape = t.draw(cst.shapes(max_dims=2, max_side=12), label="shape")
    r = t.draw(cst.arrays(t.dtype, shape), label="r")
    gamma = t.draw(cst.floats("float64", 0.0, 1.0), label="gamma")
    rb = t.on(r)
    g = t.np(impl(rb, gamma=gamma))
    gamma_d = float(round_to(gamma, _work(t)))  # the factor the spec multiplies by
    r64 = r.astype(np.float64)
    steps = shape[-1]
    powers = gamma_d ** np.arange(steps)
    scale = np.sum(np.abs(r64) * 1.0, axis=-1) + 1
    # Horner's recursion: T multiply-adds, ≤ 2 roundings each, against a float64 reference
    # (2 more per step at most): 4Tε at the scale Σ|r| of what is summed (in float16 and
    # bfloat16: float32's 4Tε₃₂ and one rounding, ε/2 ≤ 4Tε)
    tol = 4 * steps * t.eps
    np.testing.assert_allclose(g[..., 0], np.sum(powers * r64, axis=-1),
                               atol=tol * float(np.max(scale)), rtol=0)
    np.testing.assert_allclose(g[..., :-1], r64[..., :-1] + gamma_d * g[..., 1:],
                               atol=tol * float(np.max(scale)), rtol=0)
    np.testing.assert_array_equal(t.np(impl(rb, gamma=0.0)), r64)


@prop("discounted_return", "constant_reward", dtypes=ALL_DTYPES)
def discounted_return_of_constant_reward_closed_form(impl, t):
    gamma = t.draw(st.sampled_from([0.5, 0.9, 0.99]), label="gamma")
    steps = t.draw(st.sampled_from([1, 10, 100]), label="steps")
    c = 0.75
    g = t.np(impl(t.on(np.full(steps, c, dtype=host_dtype(t.dtype))), gamma=gamma))
    gamma_d = float(round_to(gamma, _work(t)))
    closed = c * (1 - gamma_d ** steps) / (1 - gamma_d)
    # Horner's recursion: ≤ 2 roundings per step, relative to the sum of |terms| = G_0 here
    # (in float16 and bfloat16 float32's and one rounding, ε/2 ≤ 2Tε)
    assert abs(g[0] - closed) <= 2 * steps * t.eps * closed
