r"""Alignment and reinforcement learning: reward models, KL penalties, PPO, DPO, returns.

Every loss here is a −log σ(·) of a margin, written as softplus of the negated margin,
softplus(x) = max(x, 0) + log1p(exp(−|x|)), so margins of ±1000 stay finite and exact in float32.
Per-example values are reduced by ``reduction`` ("mean" by default, as the expectations
E[·] of the sources; "sum"; or "none").

Sources: 002 §11.2 (reward model), §11.3 (KL-penalised objective, PPO's clipped surrogate),
§11.4 (DPO), 004 (discounted return of reinforcement learning).
"""

from __future__ import annotations

import math

from . import _validate as v
from ._registry import Identity, equation

__all__ = [
    "discounted_return",
    "dpo_loss",
    "kl_penalized_reward",
    "ppo_clip_objective",
    "reward_model_loss",
]

_REDUCTIONS = ("mean", "sum", "none")


def _arrays(**arrays):
    """One namespace, real floating dtypes, one dtype, broadcastable shapes."""
    xp = v.namespace(**arrays)
    (first_name, first), *rest = arrays.items()
    for name, x in arrays.items():
        v.floating(xp, x, name)
    shape, shape_names = tuple(first.shape), first_name
    for name, x in rest:
        v.same_dtype(first, x, f"{first_name} and {name}")
        n = max(len(shape), x.ndim)
        a, b = (1,) * (n - len(shape)) + shape, (1,) * (n - x.ndim) + tuple(x.shape)
        if any(p != q and 1 not in (p, q) for p, q in zip(a, b, strict=True)):
            raise ValueError(f"{shape_names} and {name} must have broadcastable shapes, got "
                             f"{shape} and {tuple(x.shape)}")
        shape = tuple(q if p == 1 else p for p, q in zip(a, b, strict=True))
        shape_names = f"{shape_names}, {name}" if rest else name
    return xp


def _softplus(xp, x):
    r"""log(1 + eˣ) = max(x, 0) + log1p(e^{−|x|}), with −|x| written as min(x, −x)."""
    return xp.maximum(x, xp.zeros_like(x)) + xp.log1p(xp.exp(xp.minimum(x, -x)))


def _reduce(xp, per_example, reduction: str):
    if reduction == "none":
        return per_example
    if reduction == "sum":
        return xp.sum(per_example)
    return xp.mean(per_example)


def _real(value, name: str, *, low: float, high: float | None = None, open_low=False,
          open_high=False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    too_low = value <= low if open_low else value < low
    too_high = high is not None and (value >= high if open_high else value > high)
    if math.isnan(value) or too_low or too_high or math.isinf(value):
        left, right = "(" if open_low else "[", ")" if open_high else "]"
        upper = "∞)" if high is None else f"{high}{right}"
        raise ValueError(f"{name} must be in {left}{low}, {upper}, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="alignment",
    seeds=("002 §11.2",),
    oracle="mpmath",
    identities=(
        Identity("stable_form", "the softplus code equals −log σ(r_w − r_l)", "S"),
        Identity("equal_rewards", "= log 2 when r_w = r_l", "SP"),
        Identity("gradient", "∂L/∂r_w = −σ(r_l − r_w), ∂L/∂r_l = σ(r_l − r_w)", "SD"),
        Identity("large_margins", "finite and exact for margins ±1000 in float32", "PR"),
    ),
)
def reward_model_loss(r_chosen, r_rejected, /, *, reduction="mean"):
    r"""Bradley–Terry loss of a reward model on preference pairs (chosen over rejected).

    .. math:: \mathcal{L}_{RM} = -\log\sigma(r_w - r_l) = \operatorname{softplus}(r_l - r_w),
              \qquad \operatorname{softplus}(x) = \max(x, 0) + \log\bigl(1 + e^{-|x|}\bigr)

    The softplus form never exponentiates a positive number, so a margin of ±1000 gives 1000
    or e^{−1000} (0 in float32), never inf or NaN. Its derivative with respect to r_w is
    −σ(r_l − r_w): a pair the model already orders well (large margin) barely moves it.

    Shapes: r_chosen, r_rejected broadcastable → scalar ("mean", "sum") or the broadcast shape
    ("none"). Source: 002 §11.2.
    """
    v.choice(reduction, _REDUCTIONS, "reduction")
    xp = _arrays(r_chosen=r_chosen, r_rejected=r_rejected)
    return _reduce(xp, _softplus(xp, r_rejected - r_chosen), reduction)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="alignment",
    seeds=("002 §11.3",),
    oracle="mpmath",
    identities=(
        Identity("formula", "the code is r − β(log π − log π_ref)", "S"),
        Identity("beta_zero", "β = 0 gives r", "SP"),
        Identity("expected_penalty", "averaged over y ~ π, the penalty is β·KL(π‖π_ref)", "P"),
        Identity("gradient", "∂/∂r = 1, ∂/∂log π = −β, ∂/∂log π_ref = β", "D"),
        Identity("accuracy", "within its ulp budget of the exact value", "R"),
    ),
)
def kl_penalized_reward(reward, logp, logp_ref, /, *, beta):
    r"""Reward minus a KL penalty for leaving the reference policy (the RLHF reward).

    .. math:: \tilde r(x, y) = r(x, y) - \beta\bigl(\log\pi_\theta(y \mid x)
              - \log\pi_{ref}(y \mid x)\bigr)

    Averaged over samples y ~ π_θ the penalty term is β·D_KL(π_θ ‖ π_ref), the regulariser of
    the RLHF objective max E[r] − β D_KL. β ≥ 0 (β = 0 is the raw reward).
    Shapes: the three arrays broadcastable → broadcast shape. Source: 002 §11.3.
    """
    _arrays(reward=reward, logp=logp, logp_ref=logp_ref)
    beta = _real(beta, "beta", low=0.0)
    return reward - beta * (logp - logp_ref)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="alignment",
    seeds=("002 §11.3",),
    oracle="mpmath",
    identities=(
        Identity("trust_region", "equals r·A when 1 − ε ≤ r ≤ 1 + ε", "SP"),
        Identity("pessimistic", "never exceeds the unclipped r·A", "P"),
        Identity("clipped_gradient", "∂/∂log π_θ = 0 where r left the region on the clipped "
                 "side (A > 0, r > 1 + ε or A < 0, r < 1 − ε)", "SD"),
        Identity("accuracy", "within its ulp budget of the exact value", "R"),
    ),
)
def ppo_clip_objective(logp_new, logp_old, advantages, /, *, clip_eps=0.2, reduction="mean"):
    r"""PPO's clipped surrogate objective (to be maximised).

    .. math:: L^{CLIP} = \mathbb{E}_t\Bigl[\min\bigl(r_t A_t,\;
              \operatorname{clip}(r_t, 1-\epsilon, 1+\epsilon)\,A_t\bigr)\Bigr],
              \qquad r_t = \exp(\log\pi_\theta - \log\pi_{\theta_{old}})

    Inside the trust region 1 − ε ≤ r ≤ 1 + ε it is the plain surrogate r·A. Outside it, on the
    side where moving further would help (A > 0 with r > 1 + ε, or A < 0 with r < 1 − ε), the
    objective is the constant (1 ± ε)A and its gradient is 0: the update stops. On the other
    side the min keeps the unclipped, worse value. 0 < ε < 1.

    Shapes: the three arrays broadcastable → scalar ("mean", "sum") or the broadcast shape
    ("none"). Source: 002 §11.3.
    """
    v.choice(reduction, _REDUCTIONS, "reduction")
    xp = _arrays(logp_new=logp_new, logp_old=logp_old, advantages=advantages)
    eps = _real(clip_eps, "clip_eps", low=0.0, high=1.0, open_low=True, open_high=True)
    ratio = xp.exp(logp_new - logp_old)
    clipped = xp.clip(ratio, 1.0 - eps, 1.0 + eps)
    return _reduce(xp, xp.minimum(ratio * advantages, clipped * advantages), reduction)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="alignment",
    seeds=("002 §11.4",),
    oracle="mpmath",
    identities=(
        Identity("at_reference", "= log 2 when the policy equals the reference", "SP"),
        Identity("implicit_reward", "equals reward_model_loss with implicit rewards "
                 "β(log π_θ − log π_ref)", "SP"),
        Identity("decreasing", "decreases as the chosen-minus-rejected margin grows", "P"),
        Identity("gradient", "∂L/∂log π_θ(y_w) = −β σ(−βm)", "D"),
        Identity("accuracy", "within its ulp budget of the exact value", "R"),
    ),
)
def dpo_loss(logp_chosen, logp_rejected, ref_chosen, ref_rejected, /, *, beta,
             reduction="mean"):
    r"""Direct Preference Optimisation: the reward-model loss with the policy as its own reward.

    .. math:: \mathcal{L}_{DPO} = -\log\sigma\bigl(\beta m\bigr), \qquad
              m = \bigl(\log\pi_\theta(y_w) - \log\pi_{ref}(y_w)\bigr)
              - \bigl(\log\pi_\theta(y_l) - \log\pi_{ref}(y_l)\bigr)

    It is :func:`reward_model_loss` with the implicit rewards r = β log(π_θ/π_ref), so at the
    reference policy (m = 0) it is log 2 and it falls as the policy prefers y_w more than the
    reference does. Inputs are sequence log-probabilities (sums over the completion's tokens).
    β > 0. Shapes: the four arrays broadcastable → scalar or ("none") the broadcast shape.
    Source: 002 §11.4.
    """
    v.choice(reduction, _REDUCTIONS, "reduction")
    xp = _arrays(logp_chosen=logp_chosen, logp_rejected=logp_rejected, ref_chosen=ref_chosen,
                 ref_rejected=ref_rejected)
    beta = v.positive_number(beta, "beta")
    margin = (logp_chosen - ref_chosen) - (logp_rejected - ref_rejected)
    return _reduce(xp, _softplus(xp, -(beta * margin)), reduction)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="alignment",
    seeds=("004",),
    oracle="mpmath",
    identities=(
        Identity("definition", "G_t = Σ_{k≥t} γ^{k−t} r_k; G_0 = Σ γᵗ rₜ", "SP"),
        Identity("gamma_zero", "γ = 0 gives r (G_0 = r_0)", "SP"),
        Identity("constant_reward", "constant reward r gives G_0 = r(1 − γᵀ)/(1 − γ)", "SP"),
        Identity("gradient", "∂G_0/∂r_k = γᵏ", "D"),
        Identity("accuracy", "within its ulp budget of the exact sum", "R"),
    ),
)
def discounted_return(rewards, /, *, gamma):
    r"""Discounted returns-to-go along the last (time) axis; element 0 is the full return.

    .. math:: G_t = \sum_{k=t}^{T-1} \gamma^{k-t} r_k = r_t + \gamma G_{t+1},
              \qquad G_0 = \sum_{t=0}^{T-1} \gamma^t r_t

    Returns every G_t, not only G_0: ``discounted_return(r, gamma=γ)[..., 0]`` is the
    discounted return J of 004. Computed by the backward recursion (T sequential
    multiply-adds on the batch), which is Horner's rule for G_0. 0 ≤ γ ≤ 1.
    Shapes: rewards (..., T) → same shape. Source: 004 (J(π) = E[Σ γᵗ rₜ]).
    """
    xp = v.namespace(rewards=rewards)
    v.floating(xp, rewards, "rewards")
    v.min_ndim(rewards, 1, "rewards")
    v.nonempty_axis(rewards, rewards.ndim - 1, "rewards")
    gamma = _real(gamma, "gamma", low=0.0, high=1.0)
    steps = rewards.shape[-1]
    g = rewards[..., steps - 1]
    out = [g]
    for t in range(steps - 2, -1, -1):
        g = rewards[..., t] + gamma * g
        out.append(g)
    return xp.stack(out[::-1], axis=-1)


