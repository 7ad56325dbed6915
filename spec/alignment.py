r"""Alignment and reinforcement learning: reward models, KL penalties, PPO, DPO, returns.

Every loss here is a −log σ(·) of a margin, written as softplus of the negated margin,
softplus(x) = max(x, 0) + log1p(exp(−|x|)), so margins of ±1000 stay finite and exact in float32.
Per-example values are reduced by ``reduction`` ("mean" by default, as the expectations
E[·] of the sources; "sum"; or "none").

Dtypes: float16 and bfloat16 are computed in float32 (exponentials, sums over the batch, the
returns' recursion) and each result is rounded once to the input dtype.

Sources: 002 §11.2 (reward model), §11.3 (KL-penalised objective, PPO's clipped surrogate),
§11.4 (DPO), 004 (discounted return of reinforcement learning).
"""

from __future__ import annotations

import math

from . import _validate as v
from ._registry import ALL_FLOATS, Identity, Variant, equation

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
    """A real option in its interval (any real number type, NumPy's scalars too; not a bool)."""
    value = v.real_number(value, name)
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
    dtypes=ALL_FLOATS,
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
    ("none"). Dtypes: float16 and bfloat16 are computed in float32 (a float16 mean over more
    than 65,504 pairs would overflow its sum) and rounded once. Source: 002 §11.2.
    """
    v.choice(reduction, _REDUCTIONS, "reduction")
    xp = _arrays(r_chosen=r_chosen, r_rejected=r_rejected)
    (r_chosen, r_rejected), dtype = v.widen(xp, r_chosen, r_rejected)
    return v.narrow(xp, _reduce(xp, _softplus(xp, r_rejected - r_chosen), reduction), dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="alignment",
    dtypes=ALL_FLOATS,
    seeds=("002 §11.3",),
    oracle="mpmath",
    identities=(
        Identity("formula", "the code is r − β(log π − log π_ref)", "S"),
        Identity("beta_zero", "β = 0 gives r", "SP"),
        Identity("expected_penalty", "averaged over y ~ π, the penalty is β·KL(π‖π_ref)", "P"),
        Identity("estimators", "estimator='k3' is β(ρ − 1 − log ρ), ρ = π_ref/π: ≥ 0 for every "
                 "y and also β·KL(π‖π_ref) on average over y ~ π; 'k2' is β(log π − log "
                 "π_ref)²/2; each equals an independent reference of its form and the three "
                 "are told apart at log π − log π_ref = −1", "P"),
        Identity("gradient", "∂/∂r = 1, ∂/∂log π = −β, ∂/∂log π_ref = β", "D"),
        Identity("accuracy", "within its ulp budget of the exact value", "R"),
    ),
    variants=(
        Variant("k1", {"estimator": "k1"}, "InstructGPT (Ouyang et al., 2022); TRL's PPO "
                "(kl_penalty='kl'); OpenRLHF's default",
                "penalty β·Δ, Δ = log π − log π_ref: negative where π < π_ref (Δ = −1 gives "
                "−β)", default=True),
        Variant("k2", {"estimator": "k2"}, "TRL's PPO (kl_penalty='mse')",
                "penalty β·Δ²/2 ≥ 0, biased (its mean is not KL): Δ = −1 gives β/2"),
        Variant("k3", {"estimator": "k3"}, "GRPO (Shao et al., 2024), TRL's GRPOTrainer, "
                "verl's low_var_kl (Schulman's k3)",
                "penalty β(e^{−Δ} − 1 + Δ) ≥ 0, unbiased: Δ = −1 gives β(e − 2) ≈ 0.718β"),
    ),
)
def kl_penalized_reward(reward, logp, logp_ref, /, *, beta, estimator="k1"):
    r"""Reward minus a KL penalty for leaving the reference policy (the RLHF reward).

    .. math:: \tilde r(x, y) = r(x, y) - \beta\bigl(\log\pi_\theta(y \mid x)
              - \log\pi_{ref}(y \mid x)\bigr)

    Averaged over samples y ~ π_θ the penalty term is β·D_KL(π_θ ‖ π_ref), the regulariser of
    the RLHF objective max E[r] − β D_KL. β ≥ 0 (β = 0 is the raw reward).

    Named variants (``estimator``, Schulman's names for estimators of the KL from one sample,
    with Δ = log π − log π_ref): ``"k1"``, Δ itself (the default, above); ``"k2"``, Δ²/2
    (non-negative but biased); ``"k3"``, ρ − 1 − log ρ with ρ = π_ref/π = e^{−Δ}, computed as
    expm1(−Δ) + Δ (non-negative for every sample and unbiased: GRPO's penalty).
    Shapes: the three arrays broadcastable → broadcast shape. Dtypes: float16 and bfloat16
    are computed in float32 and rounded once. Source: 002 §11.3.
    """
    xp = _arrays(reward=reward, logp=logp, logp_ref=logp_ref)
    beta = _real(beta, "beta", low=0.0)
    v.choice(estimator, ("k1", "k2", "k3"), "estimator")
    (reward, logp, logp_ref), dtype = v.widen(xp, reward, logp, logp_ref)
    delta = logp - logp_ref
    if estimator == "k2":
        penalty = 0.5 * (delta * delta)
    elif estimator == "k3":
        penalty = xp.expm1(-delta) + delta  # ρ − 1 − log ρ with ρ = e^{−Δ}
    else:
        penalty = delta
    # β = 0 is the raw reward even where the penalty overflowed (k3's e^{−Δ} or k2's Δ² past
    # the dtype's range, from finite inputs): 0·∞ would make it NaN
    term = beta * penalty if beta else xp.zeros_like(penalty)
    return v.narrow(xp, reward - term, dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="alignment",
    dtypes=ALL_FLOATS,
    seeds=("002 §11.3",),
    oracle="mpmath",
    identities=(
        Identity("trust_region", "equals r·A when 1 − ε ≤ r ≤ 1 + ε", "SP"),
        Identity("pessimistic", "never exceeds the unclipped r·A", "P"),
        Identity("clipped_gradient", "∂/∂log π_θ = 0 where r left the region on the clipped "
                 "side (A > 0, r > 1 + ε or A < 0, r < 1 − ε)", "SD"),
        Identity("zero_advantage", "an advantage A = 0 contributes exactly 0, also where the "
                 "ratio r = e^{log π_θ − log π_old} overflows to ∞ (finite inputs, never NaN)",
                 "PR"),
        Identity("clip_higher", "clip_eps_high = ε_h clips at 1 + ε_h above and 1 − ε below "
                 "(DAPO), equal to an independent reference of that form and told apart from "
                 "the symmetric default at r = 1.25, A > 0", "P"),
        Identity("accuracy", "within its ulp budget of the exact value", "R"),
    ),
    variants=(
        Variant("symmetric", {"clip_eps_high": None}, "Schulman et al. (2017); TRL, "
                "OpenRLHF and verl by default",
                "the region [1 − ε, 1 + ε]", default=True),
        Variant("clip_higher", {"clip_eps": 0.2, "clip_eps_high": 0.28},
                "DAPO (Yu et al., 2025): verl's clip_ratio_low/clip_ratio_high, TRL's "
                "epsilon_high",
                "the region [1 − ε, 1 + ε_h] with ε_h > ε: r = 1.25 with A > 0 gives 1.25A "
                "instead of 1.2A"),
    ),
)
def ppo_clip_objective(logp_new, logp_old, advantages, /, *, clip_eps=0.2, reduction="mean",
                       clip_eps_high=None):
    r"""PPO's clipped surrogate objective (to be maximised).

    .. math:: L^{CLIP} = \mathbb{E}_t\Bigl[\min\bigl(r_t A_t,\;
              \operatorname{clip}(r_t, 1-\epsilon, 1+\epsilon)\,A_t\bigr)\Bigr],
              \qquad r_t = \exp(\log\pi_\theta - \log\pi_{\theta_{old}})

    Inside the trust region 1 − ε ≤ r ≤ 1 + ε it is the plain surrogate r·A. Outside it, on the
    side where moving further would help (A > 0 with r > 1 + ε, or A < 0 with r < 1 − ε), the
    objective is the constant (1 ± ε)A and its gradient is 0: the update stops. On the other
    side the min keeps the unclipped, worse value. 0 < ε < 1.

    Computed as A·min(r, 1 + ε) for A ≥ 0 and A·max(r, 1 − ε) for A < 0, which is the min
    above rounded identically (a product with A is monotone) and never forms ∞·0: an
    advantage of 0 contributes 0 even where r overflows. ``clip_eps_high`` (ε_h > 0, default
    ε) is the "clip-higher" variant of DAPO: the region is [1 − ε, 1 + ε_h].

    Shapes: the three arrays broadcastable → scalar ("mean", "sum") or the broadcast shape
    ("none"). Dtypes: float16 and bfloat16 are computed in float32 (r overflows float16 for
    log-ratios above 11) and rounded once. Source: 002 §11.3.
    """
    v.choice(reduction, _REDUCTIONS, "reduction")
    xp = _arrays(logp_new=logp_new, logp_old=logp_old, advantages=advantages)
    eps = _real(clip_eps, "clip_eps", low=0.0, high=1.0, open_low=True, open_high=True)
    high = eps if clip_eps_high is None else _real(clip_eps_high, "clip_eps_high", low=0.0,
                                                   open_low=True)
    (logp_new, logp_old, advantages), dtype = v.widen(xp, logp_new, logp_old, advantages)
    ratio = xp.exp(logp_new - logp_old)
    # min(rA, clip(r)A) = A·min(r, 1 + ε_h) for A ≥ 0 and A·max(r, 1 − ε) for A < 0: the
    # factor chosen for A = 0 is ≤ 1 + ε_h, so an overflowing r never meets A = 0 (∞·0 = NaN)
    factor = xp.where(advantages >= 0, xp.clip(ratio, max=1.0 + high),
                      xp.clip(ratio, min=1.0 - eps))
    return v.narrow(xp, _reduce(xp, factor * advantages, reduction), dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="alignment",
    dtypes=ALL_FLOATS,
    seeds=("002 §11.4",),
    oracle="mpmath",
    identities=(
        Identity("at_reference", "= log 2 when the policy equals the reference", "SP"),
        Identity("implicit_reward", "equals reward_model_loss with implicit rewards "
                 "β(log π_θ − log π_ref)", "SP"),
        Identity("decreasing", "decreases as the chosen-minus-rejected margin grows", "P"),
        Identity("label_smoothing", "label_smoothing = ε gives (1 − ε)·softplus(−βm) + "
                 "ε·softplus(βm) (cDPO), equal to an independent reference of that form, "
                 "log 2 at the reference, and told apart from the default at βm = ±20", "P"),
        Identity("gradient", "∂L/∂log π_θ(y_w) = −β σ(−βm)", "D"),
        Identity("accuracy", "within its ulp budget of the exact value", "R"),
    ),
    variants=(
        Variant("dpo", {"label_smoothing": 0.0}, "Rafailov et al. (2023); TRL's DPOTrainer "
                "(loss_type='sigmoid')", "−log σ(βm): tends to 0 as the margin grows",
                default=True),
        Variant("conservative", {"label_smoothing": 0.1}, "cDPO (Mitchell, 2023): TRL's "
                "DPOTrainer label_smoothing, OpenRLHF's label_smoothing",
                "−(1−ε) log σ(βm) − ε log σ(−βm), preference labels flipped with probability "
                "ε: grows like εβm for large margins (βm = 20, ε = 0.1 gives 2.0 instead of "
                "2e-9)"),
    ),
)
def dpo_loss(logp_chosen, logp_rejected, ref_chosen, ref_rejected, /, *, beta,
             reduction="mean", label_smoothing=0.0):
    r"""Direct Preference Optimisation: the reward-model loss with the policy as its own reward.

    .. math:: \mathcal{L}_{DPO} = -\log\sigma\bigl(\beta m\bigr), \qquad
              m = \bigl(\log\pi_\theta(y_w) - \log\pi_{ref}(y_w)\bigr)
              - \bigl(\log\pi_\theta(y_l) - \log\pi_{ref}(y_l)\bigr)

    It is :func:`reward_model_loss` with the implicit rewards r = β log(π_θ/π_ref), so at the
    reference policy (m = 0) it is log 2 and it falls as the policy prefers y_w more than the
    reference does. Inputs are sequence log-probabilities (sums over the completion's tokens).
    β > 0. ``label_smoothing`` = ε ∈ [0, 0.5] is the conservative variant (cDPO): each
    preference label is taken as flipped with probability ε, so the loss is
    (1 − ε)·softplus(−βm) + ε·softplus(βm).
    Shapes: the four arrays broadcastable → scalar or ("none") the broadcast shape.
    Dtypes: float16 and bfloat16 are computed in float32 and rounded once. Source: 002 §11.4.
    """
    v.choice(reduction, _REDUCTIONS, "reduction")
    xp = _arrays(logp_chosen=logp_chosen, logp_rejected=logp_rejected, ref_chosen=ref_chosen,
                 ref_rejected=ref_rejected)
    beta = v.positive_number(beta, "beta")
    smoothing = _real(label_smoothing, "label_smoothing", low=0.0, high=0.5)
    (logp_chosen, logp_rejected, ref_chosen, ref_rejected), dtype = v.widen(
        xp, logp_chosen, logp_rejected, ref_chosen, ref_rejected)
    margin = (logp_chosen - ref_chosen) - (logp_rejected - ref_rejected)
    per_example = _softplus(xp, -(beta * margin))
    if smoothing:
        per_example = (1.0 - smoothing) * per_example + smoothing * _softplus(xp, beta * margin)
    return v.narrow(xp, _reduce(xp, per_example, reduction), dtype)


# --------------------------------------------------------------------------------------------
@equation(
    chapter="alignment",
    dtypes=ALL_FLOATS,
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
    Shapes: rewards (..., T) → same shape. Dtypes: float16 and bfloat16 are accumulated in
    float32 (300 rewards of 1 with γ = 0.999 sum to 256 in bfloat16, not 259.6) and
    rounded once. Source: 004 (J(π) = E[Σ γᵗ rₜ]).
    """
    xp = v.namespace(rewards=rewards)
    v.floating(xp, rewards, "rewards")
    v.min_ndim(rewards, 1, "rewards")
    v.nonempty_axis(rewards, rewards.ndim - 1, "rewards")
    gamma = _real(gamma, "gamma", low=0.0, high=1.0)
    rewards, dtype = v.widen(xp, rewards)
    steps = rewards.shape[-1]
    g = rewards[..., steps - 1]
    out = [g]
    for t in range(steps - 2, -1, -1):
        g = rewards[..., t] + gamma * g
        out.append(g)
    return v.narrow(xp, xp.stack(out[::-1], axis=-1), dtype)


