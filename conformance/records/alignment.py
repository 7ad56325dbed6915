"""Records of `spec/alignment.py`: its sample, reference and error inputs.
"""

from __future__ import annotations

import math

from conformance.records import ErrorCase, Sample, errors, references, samples
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
               {"reduction": "none"}, "margins ±2000"),
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
        ErrorCase((_a(xp, [1, 2], xp.int64, device),), {"gamma": 0.9}, TypeError,
                  "rewards must have a real floating dtype", "integer rewards"),
        ErrorCase((_a(xp, 1.0, dtype, device),), {"gamma": 0.9}, ValueError,
                  "at least 1 dimension", "0-d rewards"),
        ErrorCase((_a(xp, [[1.0]], dtype, device)[:, :0],), {"gamma": 0.9}, ValueError,
                  "length 0 along axis", "no time steps"),
    ]
