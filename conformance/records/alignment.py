"""Records of `spec/alignment.py`: sample, reference and error inputs, derivative cases and
ulp budgets.
"""

from __future__ import annotations

import math

import array_api_compat
import numpy as np

from conformance.records import (
    DerivativeCase,
    ErrorCase,
    Sample,
    budget,
    derivative,
    errors,
    references,
    samples,
)
from conformance.records import sample_array as _a
from spec.alignment import (
    discounted_return,
    dpo_loss,
    kl_penalized_reward,
    ppo_clip_objective,
    reward_model_loss,
)


@samples(reward_model_loss)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, 0.5, -2.0], dtype, device), _a(xp, [0.0, 0.5, 1.0], dtype, device)),
               {"reduction": "none"}, "three pairs"),
        Sample((_a(xp, [[2.0, 1.0]], dtype, device), _a(xp, [0.5], dtype, device)), {},
               "broadcast, mean"),
    ]


@references(reward_model_loss)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1000.0, -1000.0], dtype, device), _a(xp, [-1000.0, 1000.0], dtype,
                                                              device)),
               {"reduction": "none"}, "margins ±2000", proves=("large_margins",)),
        Sample((_a(xp, [30.0, 0.0], dtype, device), _a(xp, [0.0, 30.0], dtype, device)),
               {"reduction": "none"}, "margins ±30: e^{−30} kept"),
        Sample((_a(xp, [3.0, 3.0], dtype, device), _a(xp, [3.0, 3.0], dtype, device)),
               {"reduction": "sum"}, "equal rewards: 2 log 2"),
    ]


def _pair_errors(xp, dtype, device, n_extra=0, kwargs=None):
    kwargs = kwargs or {}
    good = _a(xp, [1.0, 2.0], dtype, device)
    extra = (good,) * n_extra
    return [
        ErrorCase((good, _a(xp, [1.0, 2.0, 3.0], dtype, device), *extra), kwargs, ValueError,
                  "must have broadcastable shapes", "mismatched shapes"),
        ErrorCase((_a(xp, [1, 2], xp.int64, device), good, *extra), kwargs, TypeError,
                  "must have a real floating dtype", "integer input"),
        ErrorCase((good, [1.0, 2.0], *extra), kwargs, TypeError, "must be an array",
                  "a list"),
        ErrorCase((good, good, *extra), {**kwargs, "reduction": "avg"}, ValueError,
                  "reduction must be one of", "unknown reduction"),
    ]


@errors(reward_model_loss)
def _(xp, dtype, device):
    return _pair_errors(xp, dtype, device)


@samples(kl_penalized_reward)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, 0.5], dtype, device), _a(xp, [-1.0, -2.0], dtype, device),
                _a(xp, [-1.5, -1.0], dtype, device)), {"beta": 0.1}, "β = 0.1"),
        Sample((_a(xp, [[2.0], [0.0]], dtype, device), _a(xp, [-0.5, -3.0], dtype, device),
                _a(xp, [-0.5, -2.0], dtype, device)), {"beta": 0.5}, "broadcast"),
    ]


@references(kl_penalized_reward)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.3], dtype, device), _a(xp, [-1.0], dtype, device),
                _a(xp, [-4.0], dtype, device)), {"beta": 0.1}, "cancellation: r ≈ β Δ"),
        Sample((_a(xp, [5.0], dtype, device), _a(xp, [-2.0], dtype, device),
                _a(xp, [-1.0], dtype, device)), {"beta": 0.0}, "β = 0"),
        # Δ = −1000: k3's e^{−Δ} overflows every dtype; β = 0 must still give r, not 0·∞
        Sample((_a(xp, [5.0, -2.0], dtype, device), _a(xp, [-1000.0, -1000.0], dtype, device),
                _a(xp, [0.0, -1.0], dtype, device)), {"beta": 0.0, "estimator": "k3"},
               "β = 0, k3 penalty overflowing"),
    ]


@errors(kl_penalized_reward)
def _(xp, dtype, device):
    good = _a(xp, [1.0, 2.0], dtype, device)
    return [
        *_pair_errors(xp, dtype, device, n_extra=1, kwargs={"beta": 0.1})[:3],
        ErrorCase((good, good, good), {"beta": -0.1}, ValueError, r"beta must be in \[0",
                  "negative beta"),
        ErrorCase((good, good, good), {"beta": math.nan}, ValueError, r"beta must be in \[0",
                  "NaN beta"),
        ErrorCase((good, good, good), {"beta": True}, TypeError, "beta must be a real number",
                  "a bool beta"),
        ErrorCase((good, good, good), {"beta": 0.1, "estimator": "k4"}, ValueError,
                  "estimator must be one of 'k1', 'k2', 'k3'", "unknown estimator"),
    ]


@samples(ppo_clip_objective)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [-1.0, -0.5, -2.0, -1.2], dtype, device),
                _a(xp, [-1.05, -1.0, -1.0, -0.9], dtype, device),
                _a(xp, [1.0, 2.0, -1.0, -0.5], dtype, device)), {"reduction": "none"},
               "inside, clipped above, clipped below"),
        Sample((_a(xp, [[-1.0, -2.0]], dtype, device), _a(xp, [-1.1, -1.9], dtype, device),
                _a(xp, [0.5], dtype, device)), {"clip_eps": 0.1}, "broadcast, mean, ε = 0.1"),
    ]


@references(ppo_clip_objective)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.0, -30.0], dtype, device), _a(xp, [-30.0, 0.0], dtype, device),
                _a(xp, [1.0, 1.0], dtype, device)), {"reduction": "none"},
               "extreme ratios e^{±30}"),
        Sample((_a(xp, [-1.0, -1.0], dtype, device), _a(xp, [-1.0, -1.0], dtype, device),
                _a(xp, [3.0, -3.0], dtype, device)), {"reduction": "sum"},
               "r = 1: advantages cancel"),
        # log-ratio 1000: e^{1000} overflows float32 and float64 alike; A = 0 must give 0
        # (not ∞·0 = NaN), A > 0 the clipped 1.2A and A < 0 −∞ (the true value, rounded)
        Sample((_a(xp, [1000.0, 1000.0, 1000.0], dtype, device),
                _a(xp, [0.0, 0.0, 0.0], dtype, device), _a(xp, [0.0, 2.0, -1.0], dtype, device)),
               {"reduction": "none"}, "overflowing ratio, A = 0, A > 0, A < 0",
               proves=("zero_advantage",)),
    ]


@errors(ppo_clip_objective)
def _(xp, dtype, device):
    good = _a(xp, [1.0, 2.0], dtype, device)
    return [
        *_pair_errors(xp, dtype, device, n_extra=1),
        ErrorCase((good, good, good), {"clip_eps": 1.0}, ValueError,
                  r"clip_eps must be in \(0", "clip_eps 1"),
        ErrorCase((good, good, good), {"clip_eps": 0.0}, ValueError,
                  r"clip_eps must be in \(0", "clip_eps 0"),
        ErrorCase((good, good, good), {"clip_eps_high": 0.0}, ValueError,
                  r"clip_eps_high must be in \(0", "clip_eps_high 0"),
        ErrorCase((good, good, good), {"clip_eps": "0.2"}, TypeError,
                  "clip_eps must be a real number", "a string clip_eps"),
    ]


@samples(dpo_loss)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [-10.0, -12.0], dtype, device), _a(xp, [-11.0, -11.5], dtype, device),
                _a(xp, [-10.5, -12.0], dtype, device), _a(xp, [-10.5, -11.0], dtype, device)),
               {"beta": 0.1, "reduction": "none"}, "two pairs"),
        Sample((_a(xp, [-3.0], dtype, device), _a(xp, [-4.0], dtype, device),
                _a(xp, [-3.0], dtype, device), _a(xp, [-4.0], dtype, device)),
               {"beta": 0.5}, "policy = reference"),
    ]


@references(dpo_loss)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [0.0, -2000.0], dtype, device), _a(xp, [-2000.0, 0.0], dtype, device),
                _a(xp, [0.0, 0.0], dtype, device), _a(xp, [0.0, 0.0], dtype, device)),
               {"beta": 1.0, "reduction": "none"}, "margins ±2000"),
    ]


@errors(dpo_loss)
def _(xp, dtype, device):
    good = _a(xp, [1.0, 2.0], dtype, device)
    return [
        *_pair_errors(xp, dtype, device, n_extra=2, kwargs={"beta": 0.1}),
        ErrorCase((good, good, good, good), {"beta": 0.0}, ValueError,
                  "beta must be a positive", "zero beta"),
        ErrorCase((good, good, good, good), {"beta": 0.1, "label_smoothing": 0.6}, ValueError,
                  r"label_smoothing must be in \[0.0, 0.5\]", "label_smoothing above ½"),
    ]


@samples(discounted_return)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0, 0.0, 2.0, -1.0], dtype, device),), {"gamma": 0.9}, "γ = 0.9"),
        Sample((_a(xp, [[1.0, 1.0, 1.0], [0.5, -0.5, 2.0]], dtype, device),), {"gamma": 0.5},
               "batch, γ = 0.5"),
    ]


@references(discounted_return)
def _(xp, dtype, device):
    return [
        Sample((_a(xp, [1.0] * 16, dtype, device),), {"gamma": 0.99}, "constant reward, T = 16"),
        Sample((_a(xp, [3.0, -2.0, 5.0], dtype, device),), {"gamma": 0.0}, "γ = 0"),
        Sample((_a(xp, [1.0, -1.0, 1.0, -1.0], dtype, device),), {"gamma": 1.0},
               "γ = 1, cancelling"),
    ]


@errors(discounted_return)
def _(xp, dtype, device):
    r = _a(xp, [1.0, 2.0], dtype, device)
    return [
        ErrorCase((r,), {"gamma": 1.5}, ValueError, r"gamma must be in \[0.0, 1.0\]",
                  "gamma > 1"),
        ErrorCase((r,), {"gamma": -0.1}, ValueError, r"gamma must be in \[0.0, 1.0\]",
                  "negative gamma"),
        ErrorCase((r,), {"gamma": True}, TypeError, "gamma must be a real number",
                  "a bool gamma"),
        ErrorCase((_a(xp, [1, 2], xp.int64, device),), {"gamma": 0.9}, TypeError,
                  "rewards must have a real floating dtype", "integer rewards"),
        ErrorCase((_a(xp, 1.0, dtype, device),), {"gamma": 0.9}, ValueError,
                  "at least 1 dimension", "0-d rewards"),
        ErrorCase((_a(xp, [[1.0]], dtype, device)[:, :0],), {"gamma": 0.9}, ValueError,
                  "length 0 along axis", "no time steps"),
    ]


# --------------------------------------------------------------------------------- tier D
def _uniform(seed, shape, low=-3.0, high=3.0):
    return np.random.default_rng(seed).uniform(low, high, shape)


def _sigmoid(xp, x):
    return 1 / (1 + xp.exp(-x))


def _reward_model_case(argnum: int, name: str) -> DerivativeCase:
    # ∂L/∂r_w = −σ(r_l − r_w), ∂L/∂r_l = +σ(r_l − r_w)
    sign = -1 if argnum == 0 else 1
    return DerivativeCase(
        "reward_model_loss", reward_model_loss,
        lambda seed: [_uniform(seed, (4,)), _uniform(seed + 10, (4,))], argnum=argnum,
        kwargs={"reduction": "none"},
        closed=lambda xp, a, c: sign * _sigmoid(xp, a[1] - a[0]) * c, seeds=(0, 1), label=name)


def _kl_penalty_case(argnum: int, name: str) -> DerivativeCase:
    # ∂/∂r = 1, ∂/∂log π = −β, ∂/∂log π_ref = β (β = 0.3); the inputs of argnum k are drawn
    # from seed k, which is also the seed of the cotangent
    factor = {0: 1.0, 1: -0.3, 2: 0.3}[argnum]
    return DerivativeCase(
        "kl_penalized_reward", kl_penalized_reward,
        lambda seed: [_uniform(seed, (3,)), _uniform(seed + 5, (3,), -4, -0.1),
                      _uniform(seed + 9, (3,), -4, -0.1)], argnum=argnum, kwargs={"beta": 0.3},
        closed=lambda xp, a, c: factor * c + 0 * a[argnum], seeds=(argnum,), label=name)


def ppo_args(seed: int) -> list:
    """PPO inputs with ratios e^{Δ} of 1.05 (inside), 1.5 and 0.6 (outside), for A > 0 and
    A < 0; the gradient in log π_θ is 0 at entries 1 and 5 (the clipped side, ε = 0.2)."""
    old = np.asarray([-1.0, -1.0, -1.0, -1.0, -1.0, -1.0])
    delta = np.log(np.asarray([1.05, 1.5, 0.6, 1.05, 1.5, 0.6]))
    adv = np.asarray([1.0, 2.0, 0.5, -1.0, -0.5, -2.0]) * (1 + 0.1 * seed)
    return [old + delta, old, adv]


def ppo_with_advantages(seed: int):
    """PPO as a function of (log π_θ, log π_old) with the seed's advantages held fixed.

    The objective picks its clip bound by the sign of A (A·min(r, 1 + ε) for A ≥ 0, A·max(r,
    1 − ε) below), a branch SymPy can take only on known advantages: the derivative in log π_θ
    is traced with A as numbers, as a learner sees them (advantages are constants of the
    update)."""
    adv = ppo_args(seed)[2]

    def ppo(logp_new, logp_old, **kwargs):
        xp = array_api_compat.array_namespace(logp_new)
        a = xp.asarray(adv, dtype=logp_new.dtype, device=array_api_compat.device(logp_new))
        return ppo_clip_objective(logp_new, logp_old, a, **kwargs)

    return ppo


def _ppo_closed(seed: int):
    adv = ppo_args(seed)[2]

    def closed(xp, a, c):
        ratio = xp.exp(a[0] - a[1])
        advantages = xp.asarray(adv, dtype=ratio.dtype, device=array_api_compat.device(ratio))
        clipped = (((advantages > 0) & (ratio > 1.2))
                   | ((advantages < 0) & (ratio < 0.8)))
        return xp.where(clipped, xp.zeros_like(ratio), ratio * advantages * c)

    return closed


def _dpo_case(argnum: int, name: str) -> DerivativeCase:
    # ∂L/∂log π_θ(y_w) = −β σ(−βm), and ∓ the same for the other three (β = 0.4)
    beta = 0.4
    sign = {0: -1, 1: 1, 2: 1, 3: -1}[argnum]

    def closed(xp, a, c):
        margin = (a[0] - a[2]) - (a[1] - a[3])
        return sign * beta * _sigmoid(xp, -beta * margin) * c

    return DerivativeCase(
        "dpo_loss", dpo_loss, lambda seed: [_uniform(seed + k, (3,), -6, -1) for k in range(4)],
        argnum=argnum, kwargs={"beta": beta, "reduction": "none"}, closed=closed,
        seeds=(argnum,), label=name)


def _discounted_return_case(gamma: float) -> DerivativeCase:
    def closed(xp, a, c):
        # ∂⟨c, G⟩/∂r_k = Σ_{t≤k} c_t γ^{k−t}: the returns-to-go run forwards on c
        steps = a[0].shape[-1]
        out, acc = [], c[..., 0]
        out.append(acc)
        for k in range(1, steps):
            acc = c[..., k] + gamma * acc
            out.append(acc)
        return xp.stack(out, axis=-1)

    return DerivativeCase(
        "discounted_return", discounted_return, lambda seed: [_uniform(seed + 3, (2, 5))],
        kwargs={"gamma": gamma}, closed=closed, seeds=(0,), label=f"gamma={gamma}")


derivative(
    _reward_model_case(0, "r_chosen"),
    _reward_model_case(1, "r_rejected"),
    _kl_penalty_case(0, "reward"),
    _kl_penalty_case(1, "logp"),
    _kl_penalty_case(2, "logp_ref"),
    *(DerivativeCase("ppo_clip_objective", ppo_with_advantages(seed),
                     lambda s: ppo_args(s)[:2], kwargs={"reduction": "none"},
                     closed=_ppo_closed(seed), seeds=(seed,), label=f"advantages{seed}")
      for seed in (0, 1, 2)),
    _dpo_case(0, "logp_chosen"),
    _dpo_case(1, "logp_rejected"),
    _dpo_case(2, "ref_chosen"),
    _dpo_case(3, "ref_rejected"),
    *(_discounted_return_case(gamma) for gamma in (0.0, 0.5, 0.9)),
)


# --------------------------------------------------------------------------------- tier R
# Budgets from the operation counts, in ulps of the result (at the scale of the oracle's floor,
# conformance/oracles_alignment.py). Options given as Python floats (β, γ, ε, 1 ± ε) are
# rounded to float32 in float32 runs: ≤ ½ ulp relative each, counted below. The records'
# margins and log-ratio differences are exact (Sterbenz or representable) in both dtypes.
# - reward_model_loss: exp 1 + log1p 1 + the add ½ + a mean of ≤ 3 terms (2 adds and a
#   division, 1.5): ≤ 4;
# - kl_penalized_reward: the difference ½, β (½) and the product ½, the subtraction ½: ≤ 2,
#   budget 4;
# - ppo_clip_objective: exp 1, the clip bounds ½, the products ½, a mean of ≤ 4 terms 2: ≤ 4,
#   budget 6;
# - dpo_loss: β·m (β ½ + product ½) through softplus's condition number ≤ 1 for |βm| ≤ 1,
#   exp 1 + log1p 1 + add ½, a mean of ≤ 2 terms 1: ≤ 4.5, budget 6;
# - discounted_return: T − 1 multiply-adds (2 roundings each) on T ≤ 16 rewards, and in
#   float32 γ rounded (γᵏ carries k·½ ulp): ≤ 30 (float64), ≤ 37.5 (float32).
budget({
    "reward_model_loss": {"float32": 4, "float64": 4},
    "kl_penalized_reward": {"float32": 4, "float64": 4},
    "ppo_clip_objective": {"float32": 6, "float64": 6},
    "dpo_loss": {"float32": 6, "float64": 6},
    "discounted_return": {"float32": 38, "float64": 30},
})
