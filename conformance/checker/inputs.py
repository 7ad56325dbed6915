"""What the checker declares beyond the records: the accuracy criterion's factor k per
equation, and small sets of inputs per equation family for the edge semantics and for telling
named variants apart.

The records (`conformance/records/<chapter>.py`) hold each equation's sample and reference
inputs; the checker runs those too. What is here is only what a *candidate* needs on top:

- `factor(name)`: k of the FlashAttention-style criterion, candidate error ≤ k × the spec's
  error in the same dtype + `FLOOR_ULP` (default k = 2, FlashAttention's own);
- `edges(name)`: a builder of the edge cases of the equation's family (fully masked rows,
  −∞ and ±1e4 logits, empty batches, NaN propagation, …), `builder(xp, dtype, device)` like a
  record's, each `Sample.note` naming the edge;
- `distinguishing(name)`: inputs on which the named variants of an equation differ (the ε of
  LayerNorm at ε = 0.5 on rows offset by 1e4, the crossing token of top-p, …).

Everything is built on the host in NumPy, in float64 or float32 (a low precision gets the
float32 inputs rounded once, as the records' cases do: `conformance.helpers.build`).
"""

from __future__ import annotations

import math

import numpy as np

from conformance.records import Sample

__all__ = ["FACTOR", "FLOOR_ULP", "distinguishing", "edges", "factor", "family", "wide"]

#: k of the criterion per equation (default 2). An equation would get more only with a reason
#: written beside it; none needs one yet.
FACTOR: dict[str, float] = {}
#: the floor of the criterion, in ulps of the dtype: two correct results of the same real
#: number may round to neighbouring floats, so one ulp is allowed whatever the spec's error
FLOOR_ULP = 1.0

#: equation → family (the edge cases are per family)
FAMILIES = {
    "rowwise": ("softmax", "log_softmax", "logsumexp"),
    "cross_entropy": ("softmax_cross_entropy",),
    "elementwise": ("gelu", "silu", "sigmoid", "erf", "tanh", "relu", "leaky_relu"),
    "norm": ("layer_norm", "rms_norm"),
    "attention": ("scaled_dot_product_attention",),
    "weights": ("attention_weights",),
    "mha": ("multi_head_attention",),
    "filter": ("top_p_filter", "top_k_filter"),
    "optimizer": ("adam_step", "momentum_step", "rmsprop_step", "sgd_step"),
    "rope": ("rope",),
    "dense": ("dense",),
}


def factor(name: str) -> float:
    """k of the accuracy criterion for equation `name` (a record's `accuracy_factor`, once
    records carry one, wins over the table here)."""
    from conformance import records

    from_record = getattr(records.get(name), "accuracy_factor", None)
    return float(from_record if from_record is not None else FACTOR.get(name, 2.0))


def family(name: str) -> str | None:
    return next((f for f, names in FAMILIES.items() if name in names), None)


def _a(values, dtype):
    return np.asarray(values, dtype=dtype)


_INF, _NAN = math.inf, math.nan


# ------------------------------------------------------------------------------- edge cases
def _rowwise(name, dtype):
    return [
        Sample((_a([[1e4, 0.0, -1e4], [1e4, 1e4, -1e4]], dtype),), {}, "±1e4 logits"),
        Sample((_a([[-_INF, 0.0, 1.0], [2.0, -_INF, -_INF]], dtype),), {}, "−∞ logits"),
        Sample((_a([[-_INF, -_INF, -_INF], [0.0, 1.0, 2.0]], dtype),), {}, "all −∞ row"),
        Sample((_a([[_NAN, 0.0, 1.0], [0.0, 1.0, 2.0]], dtype),), {}, "NaN propagation"),
        Sample((np.zeros((0, 4), dtype=dtype),), {}, "empty batch"),
    ]


def _cross_entropy(name, dtype):
    labels = np.array([1, 1], dtype=np.int64)
    return [
        Sample((_a([[1e4, -1e4, 0.0], [0.0, 1e4, -1e4]], dtype), labels), {"reduction": "none"},
               "±1e4 logits"),
        Sample((_a([[-_INF, 0.0, 1.0], [0.0, 1.0, -_INF]], dtype), labels),
               {"reduction": "none"}, "−∞ logits"),
        Sample((_a([[_NAN, 0.0, 1.0], [0.0, 1.0, 2.0]], dtype), np.array([0, 1])),
               {"reduction": "none"}, "NaN propagation"),
        Sample((np.zeros((0, 4), dtype=dtype), np.zeros((0,), dtype=np.int64)),
               {"reduction": "none"}, "empty batch"),
    ]


def _elementwise(name, dtype):
    return [
        Sample((_a([1e4, -1e4, 30.0, -30.0], dtype),), {}, "±1e4 inputs"),
        Sample((_a([_INF, -_INF], dtype),), {}, "±∞"),
        Sample((_a([_NAN, 0.5], dtype),), {}, "NaN propagation"),
        Sample((np.zeros((0,), dtype=dtype),), {}, "empty batch"),
    ]


def _norm(name, dtype):
    def call(x):
        n = np.shape(x)[-1]
        params = (np.ones(n, dtype=dtype),) + ((np.zeros(n, dtype=dtype),)
                                               if name == "layer_norm" else ())
        return (_a(x, dtype), *params)

    return [
        Sample(call([[3.0, 3.0, 3.0, 3.0], [0.0, 1.0, 2.0, 3.0]]), {}, "constant row (σ = 0)"),
        Sample(call([[1e4, 1e4 + 1, 1e4 + 2, 1e4 + 3]]), {}, "rows offset by 1e4"),
        Sample(call([[_NAN, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0]]), {}, "NaN propagation"),
        Sample(call([[_INF, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0]]), {}, "∞ in a row"),
        Sample(call(np.zeros((0, 4))), {}, "empty batch"),
    ]


def _qkv(rng, q_len, k_len, dtype, lead=(1,), d=4, dv=2):
    return (rng.normal(0, 1, (*lead, q_len, d)).astype(dtype),
            rng.normal(0, 1, (*lead, k_len, d)).astype(dtype),
            rng.normal(0, 1, (*lead, k_len, dv)).astype(dtype))


def _attention(name, dtype):
    rng = np.random.default_rng(14)
    q, k, v = _qkv(rng, 3, 4, dtype)
    keep = np.ones((3, 4), dtype=bool)
    keep[1] = False  # query 1 sees no key
    additive = np.where(keep, 0.0, -_INF).astype(dtype)
    nan_q = q.copy()
    nan_q[0, 0, 0] = _NAN
    big_q, big_k, _ = (a * 60 for a in _qkv(rng, 3, 4, dtype))
    short_q = q[:, :2]
    out = [
        Sample((q, k, v), {"mask": keep}, "fully masked row (boolean mask)"),
        Sample((q, k, v), {"mask": additive}, "fully masked row (−∞ additive mask)"),
        Sample((short_q, k, v), {"is_causal": True}, "causal, q_len < k_len"),
        Sample((big_q.astype(dtype), big_k.astype(dtype), v), {}, "scores of order 1e4"),
        Sample((nan_q, k, v), {}, "NaN propagation"),
        Sample(tuple(np.zeros((0, n, w), dtype=dtype) for n, w in ((3, 4), (4, 4), (4, 2))), {},
               "empty batch"),
    ]
    if name == "attention_weights":
        out = [Sample(s.args[:2], s.kwargs, s.note) for s in out]
    return out


def _mha(name, dtype):
    rng = np.random.default_rng(15)
    d = 4
    w = [rng.normal(0, 0.5, (d, d)).astype(dtype) for _ in range(4)]
    x = rng.normal(0, 1, (1, 3, d)).astype(dtype)
    keep = np.ones((3, 3), dtype=bool)
    keep[1] = False
    return [
        Sample((x, x, *w), {"num_heads": 2, "mask": keep}, "fully masked row (boolean mask)"),
        Sample((x[:, :2], x, *w), {"num_heads": 2, "is_causal": True}, "causal, q_len < k_len"),
        Sample((np.zeros((0, 3, d), dtype=dtype), np.zeros((0, 3, d), dtype=dtype), *w),
               {"num_heads": 2}, "empty batch"),
    ]


def _filter(name, dtype):
    opt = {"p": 0.6} if name == "top_p_filter" else {"k": 2}
    tie = ({"p": 0.5} if name == "top_p_filter" else {"k": 2})
    return [
        Sample((_a([[0.5, _NAN, 0.5], [0.2, 0.3, 0.5]], dtype),), opt, "NaN row"),
        Sample((_a([[0.3, 0.3, 0.3, 0.1]], dtype),), tie, "ties at the boundary"),
        Sample((_a([[0.7, 0.3, 0.0, 0.0]], dtype),), opt, "zero probabilities"),
        Sample((_a([[2.0, 1.0, 1.0]], dtype),), opt, "unnormalised row"),
        Sample((np.zeros((0, 4), dtype=dtype),), opt, "empty batch"),
    ]


def _optimizer(name, dtype):
    def state(theta, grad):
        theta, grad = _a(theta, dtype), _a(grad, dtype)
        zeros = np.zeros_like(theta)
        if name == "adam_step":
            return (theta, zeros, zeros, grad), {"step": 1, "lr": 1e-3}
        if name == "momentum_step":
            return (theta, zeros, grad), {"lr": 0.1}
        if name == "rmsprop_step":
            return (theta, zeros, grad), {"lr": 1e-2}
        return (theta, grad), {"lr": 0.1}

    out = []
    for theta, grad, note in (([1.0, -2.0], [0.0, 0.0], "zero gradient, zero state"),
                              ([1.0, -2.0], [_NAN, 1.0], "NaN propagation"),
                              ([1.0, -2.0], [1e20, -1e20], "g² overflows float32"),
                              (np.zeros(0), np.zeros(0), "empty parameters")):
        args, kwargs = state(theta, grad)
        out.append(Sample(args, kwargs, note))
    return out


def _rope(name, dtype):
    rng = np.random.default_rng(16)
    x = rng.normal(0, 1, (1, 3, 4)).astype(dtype)
    nan_x = x.copy()
    nan_x[0, 1, 2] = _NAN
    return [
        Sample((x, np.zeros(3, dtype=np.int64)), {}, "position 0 is the identity"),
        Sample((nan_x, np.arange(3)), {}, "NaN propagation"),
        Sample((np.zeros((1, 0, 4), dtype=dtype), np.zeros(0, dtype=np.int64)), {},
               "empty sequence"),
    ]


def _dense(name, dtype):
    rng = np.random.default_rng(17)
    w, b = rng.normal(0, 1, (2, 3)).astype(dtype), rng.normal(0, 1, (2,)).astype(dtype)
    return [
        Sample((_a([[_NAN, 1.0, 2.0], [0.0, 1.0, 2.0]], dtype), w, b), {}, "NaN propagation"),
        Sample((np.zeros((0, 3), dtype=dtype), w, b), {}, "empty batch"),
    ]


_EDGES = {"rowwise": _rowwise, "cross_entropy": _cross_entropy, "elementwise": _elementwise,
          "norm": _norm, "attention": _attention, "weights": _attention, "mha": _mha,
          "filter": _filter, "optimizer": _optimizer, "rope": _rope, "dense": _dense}


def edges(name: str):
    """A builder `(xp, dtype, device) -> list[Sample]` of the edge cases of `name`'s family
    (None where the family declares none). `dtype` is a NumPy dtype (float32 or float64)."""
    fam = family(name)
    if fam is None:
        return None
    return lambda xp, dtype, device: _EDGES[fam](name, np.dtype(dtype).name)


# ---------------------------------------------------------------------- distinguishing inputs
def _distinguishing(name, dtype):
    rng = np.random.default_rng(2024)
    if name == "layer_norm":
        x = (1e4 + rng.normal(0, 1, (2, 8))).astype(dtype)
        y = rng.normal(0, 1, (3, 5)).astype(dtype)
        g, b = rng.normal(1, 0.5, 8).astype(dtype), rng.normal(0, 0.5, 8).astype(dtype)
        return [Sample((x, g, b), {"eps": 0.5}, "rows offset by 1e4, ε = 0.5"),
                Sample((y, np.ones(5, dtype), np.zeros(5, dtype)), {"eps": 0.5},
                       "five features, ε = 0.5")]
    if name == "rms_norm":
        x = rng.normal(0, 1, (3, 8)).astype(dtype)
        g = rng.normal(0, 0.5, 8).astype(dtype)
        return [Sample((x, g), {"eps": 0.5}, "ε = 0.5, weights around 0"),
                Sample((x, g), {}, "weights around 0")]
    if name == "rope":
        x = rng.normal(0, 1, (2, 4, 8)).astype(dtype)
        return [Sample((x, np.array([0, 1, 5, 17])), {}, "positions 0, 1, 5, 17")]
    if name == "adam_step":
        shape = (6,)
        theta, m = rng.normal(0, 1, shape), rng.normal(0, 1e-9, shape)
        v = rng.uniform(0, 1e-17, shape)
        grad = rng.normal(0, 1e-9, shape)
        return [Sample(tuple(a.astype(dtype) for a in (theta, m, v, grad)),
                       {"step": 3, "lr": 1e-3}, "√v̂ comparable to ε"),
                Sample((rng.normal(0, 1, shape).astype(dtype),
                        rng.normal(0, 1, shape).astype(dtype),
                        rng.uniform(0.1, 1, shape).astype(dtype),
                        rng.normal(0, 1, shape).astype(dtype)), {"step": 1, "lr": 0.1},
                       "first step")]
    if name == "momentum_step":
        theta, vel, grad = (rng.normal(0, 1, (5,)).astype(dtype) for _ in range(3))
        return [Sample((theta, vel, grad), {"lr": 0.1, "beta": 0.9}, "lr 0.1, β 0.9")]
    if name == "top_p_filter":
        return [Sample((_a([[0.5, 0.3, 0.2]], dtype),), {"p": 0.6}, "crossing token at p = 0.6"),
                Sample((_a([[0.9, 0.06, 0.04]], dtype),), {"p": 0.5},
                       "the top token alone crosses p"),
                Sample((_a([[0.1, 0.45, 0.45]], dtype),), {"p": 0.5}, "a tie crosses p")]
    if name == "top_k_filter":
        return [Sample((_a([[0.3, 0.3, 0.3, 0.1]], dtype),), {"k": 2}, "a tie at the k-th")]
    if name == "gelu":
        return [Sample((np.linspace(-5, 5, 41).astype(dtype),), {}, "x in [−5, 5]")]
    return []


def distinguishing(name: str):
    """A builder `(xp, dtype, device) -> list[Sample]` of inputs on which the named variants
    of `name` differ (the records' samples and references are used as well)."""
    return lambda xp, dtype, device: _distinguishing(name, np.dtype(dtype).name)


# ------------------------------------------------------------------------------- wide inputs
def _wide(name, dtype):
    """Rows as wide as a model's (a reduction over 1024 terms shows how a kernel accumulates),
    for the accuracy section."""
    rng = np.random.default_rng(1024)
    fam = family(name)
    if fam == "rowwise":
        return [Sample(((3 * rng.standard_normal((2, 1024))).astype(dtype),), {},
                       "wide rows (1024)")]
    if fam == "norm":
        x = (5 + 2 * rng.standard_normal((2, 1024))).astype(dtype)
        g = (1 + 0.1 * rng.standard_normal(1024)).astype(dtype)
        params = (g, (0.1 * rng.standard_normal(1024)).astype(dtype)) if name == "layer_norm" \
            else (g,)
        return [Sample((x, *params), {}, "wide rows (1024)")]
    if fam == "elementwise":
        return [Sample((np.linspace(-8, 8, 257).astype(dtype),), {}, "x in [−8, 8]")]
    if fam == "cross_entropy":
        return [Sample(((3 * rng.standard_normal((4, 256))).astype(dtype),
                        rng.integers(0, 256, 4)), {}, "wide rows (256)")]
    if fam == "attention":
        q, k, v = (rng.standard_normal((1, 16, 32)).astype(dtype) for _ in range(3))
        return [Sample((q, k, v), {}, "16 queries, 16 keys, d = 32")]
    if fam == "optimizer" and name == "adam_step":
        theta, m, grad = (rng.standard_normal(256).astype(dtype) for _ in range(3))
        v = rng.uniform(0, 1, 256).astype(dtype)
        return [Sample((theta, m, v, grad), {"step": 10, "lr": 1e-3}, "256 parameters")]
    if fam == "rope":
        x = rng.standard_normal((1, 16, 64)).astype(dtype)
        return [Sample((x, 37 * np.arange(16)), {}, "16 positions, d = 64")]
    if fam == "dense":
        return [Sample((rng.standard_normal((8, 64)).astype(dtype),
                        (rng.standard_normal((32, 64)) / 8).astype(dtype),
                        rng.standard_normal(32).astype(dtype)), {}, "8 × 64 · 64 × 32")]
    return []


def wide(name: str):
    """A builder `(xp, dtype, device) -> list[Sample]` of wide inputs for the accuracy
    section (empty where the family has none)."""
    return lambda xp, dtype, device: _wide(name, np.dtype(dtype).name)
