"""Records of `spec/attention.py`: sample, reference and error inputs, derivative cases and
ulp budgets.
"""

from __future__ import annotations

import math

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
from spec.attention import (
    attention_cost,
    attention_weights,
    causal_mask,
    kv_cache_attention,
    multi_head_attention,
    scaled_dot_product_attention,
)


def _grid(shape, seed: float, amplitude: float = 1.0) -> list:
    """Deterministic, irregular values in [−amplitude, amplitude] as nested lists."""
    count = math.prod(shape)
    flat = [round(amplitude * math.sin(seed + 1.618 * i + 0.37 * i * i), 4)
            for i in range(count)]

    def nest(values, dims):
        if not dims:
            return values[0]
        step = len(values) // dims[0] if dims[0] else 0
        return [nest(values[n * step:(n + 1) * step], dims[1:]) for n in range(dims[0])]

    return nest(flat, list(shape))


def _qkv_samples(xp, dtype, device):
    q = _a(xp, _grid((2, 3, 4), 0.1), dtype, device)
    k = _a(xp, _grid((2, 3, 4), 1.3), dtype, device)
    k5 = _a(xp, _grid((5, 4), 2.9, 1.5), dtype, device)
    q1 = _a(xp, _grid((1, 4), 3.7, 1.5), dtype, device)
    bool_mask = _a(xp, [[True, False, True], [True, True, False], [False, True, True]],
                   xp.bool, device)
    return q, k, k5, q1, bool_mask


def _weights_samples(xp, dtype, device):
    q, k, k5, q1, bool_mask = _qkv_samples(xp, dtype, device)
    additive = _a(xp, [[0.0, -math.inf, 0.0, -1.5, 0.0]], dtype, device)
    q3 = _a(xp, _grid((3, 4), 8.9), dtype, device)
    return [
        Sample((q, k), {}, "two heads, no mask"),
        Sample((q, k), {"is_causal": True}, "causal, q_len = k_len"),
        Sample((q1, k5), {"is_causal": True}, "one decoding step attends the whole cache"),
        Sample((q, k), {"mask": bool_mask}, "boolean mask"),
        Sample((q1, k5), {"mask": additive, "scale": 0.25}, "additive mask and explicit scale"),
        # options of any real number type: NumPy scalars mean their values
        Sample((q1, k5), {"scale": np.float32(0.25), "is_causal": np.True_},
               "NumPy scalar options"),
        Sample((q3, k5), {"is_causal": True, "causal_alignment": "upper_left"},
               "variant upper_left: k_len > q_len, query i sees keys j ≤ i"),
    ]


def _weights_references(xp, dtype, device):
    q, k, k5, q1, bool_mask = _qkv_samples(xp, dtype, device)
    dead = _a(xp, [[True, True, True], [False, False, False], [True, False, True]], xp.bool,
              device)
    dead_add = _a(xp, [[-math.inf] * 5], dtype, device)
    big_q = _a(xp, _grid((3, 4), 0.7, 60.0), dtype, device)
    big_k = _a(xp, _grid((3, 4), 4.1, 60.0), dtype, device)
    q4 = _a(xp, _grid((4, 4), 5.3), dtype, device)
    return [
        Sample((q, k), {"mask": dead}, "a fully masked row (boolean)",
               proves=("fully_masked_row_zero",)),
        Sample((q1, k5), {"mask": dead_add}, "a fully masked row (additive −∞)",
               proves=("fully_masked_row_zero",)),
        Sample((big_q, big_k), {}, "scores ~1e3: softmax nearly one-hot"),
        Sample((q4, k[0]), {"is_causal": True}, "causal with q_len > k_len: first row masked"),
        Sample((q, k), {"is_causal": True, "mask": bool_mask}, "mask and is_causal combined"),
    ]


samples(attention_weights)(_weights_samples)


references(attention_weights)(_weights_references)


def _qk_errors(xp, dtype, device, extra=()):
    q, k, _, _, _ = _qkv_samples(xp, dtype, device)
    return [
        ErrorCase((q, _a(xp, _grid((2, 3, 5), 0.0), dtype, device), *extra), {}, ValueError,
                  "same last dimension d_k", "mismatched q/k dims"),
        ErrorCase((q, k, *extra), {"mask": _a(xp, [[True, False]], xp.bool, device)}, ValueError,
                  "mask must be broadcastable to the scores", "mask of the wrong shape"),
        ErrorCase((q, k, *extra), {"mask": _a(xp, [[1, 0, 1]], xp.int64, device)}, TypeError,
                  "mask must be boolean", "integer mask"),
        ErrorCase((_a(xp, [[1, 2]], xp.int64, device), k, *extra), {}, TypeError,
                  "q must have a real floating dtype", "integer q"),
        ErrorCase((q, k, *extra), {"is_causal": 1}, TypeError, "is_causal must be True or False",
                  "is_causal not a bool"),
        ErrorCase((q, _a(xp, _grid((3, 3, 4), 0.0), dtype, device), *extra), {}, ValueError,
                  "broadcastable leading", "head counts that do not broadcast"),
        ErrorCase((q, k, *extra), {"scale": math.inf}, ValueError, "scale must be finite",
                  "infinite scale"),
    ]


def _option_errors(xp, dtype, device, extra=()):
    q, k, _, _, _ = _qkv_samples(xp, dtype, device)
    return [
        ErrorCase((q, k, *extra), {"scale": True}, TypeError, "scale must be a real number",
                  "a bool scale"),
        ErrorCase((q, k, *extra), {"is_causal": True, "causal_alignment": "top_left"},
                  ValueError, "causal_alignment must be one of", "an unknown alignment"),
    ]


@errors(attention_weights)
def _(xp, dtype, device):
    return [*_qk_errors(xp, dtype, device), *_option_errors(xp, dtype, device)]


def _sdpa_samples(xp, dtype, device):
    q, k, k5, q1, bool_mask = _qkv_samples(xp, dtype, device)
    v = _a(xp, _grid((2, 3, 2), 6.1, 2.0), dtype, device)
    v5 = _a(xp, _grid((5, 3), 7.7, 2.0), dtype, device)
    additive = _a(xp, [[0.0, -math.inf, 0.0, -1.5, 0.0]], dtype, device)
    q3 = _a(xp, _grid((3, 4), 8.9), dtype, device)
    return [
        Sample((q, k, v), {}, "two heads, no mask"),
        Sample((q, k, v), {"is_causal": True}, "causal, q_len = k_len"),
        Sample((q1, k5, v5), {"is_causal": True}, "one decoding step attends the whole cache"),
        Sample((q, k, v), {"mask": bool_mask}, "boolean mask"),
        Sample((q1, k5, v5), {"mask": additive, "scale": 0.25},
               "additive mask and explicit scale"),
        Sample((q1, k5, v5), {"scale": np.float32(0.25), "is_causal": np.True_},
               "NumPy scalar options"),
        Sample((q3, k5, v5), {"is_causal": True, "causal_alignment": "upper_left"},
               "variant upper_left: k_len > q_len, query i sees keys j ≤ i"),
    ]


@references(scaled_dot_product_attention)
def _(xp, dtype, device):
    q, k, k5, q1, _ = _qkv_samples(xp, dtype, device)
    v = _a(xp, _grid((2, 3, 2), 6.1, 2.0), dtype, device)
    v5 = _a(xp, _grid((5, 3), 7.7, 2.0), dtype, device)
    dead = _a(xp, [[True, True, True], [False, False, False], [True, False, True]], xp.bool,
              device)
    big_q = _a(xp, _grid((3, 4), 0.7, 60.0), dtype, device)
    big_k = _a(xp, _grid((3, 4), 4.1, 60.0), dtype, device)
    q4 = _a(xp, _grid((4, 4), 5.3), dtype, device)
    big_v = _a(xp, _grid((3, 2), 8.3, 1e4), dtype, device)
    # an ∞ in the value row of a key that some queries do not attend: row 1 of `dead` attends
    # nothing (0, not NaN), rows 0 and 2 attend key 2 (∞ in column 0, finite column 1); under
    # is_causal the rows before key 2 never see it (finite), the last row does (∞)
    inf_v = _a(xp, [[0.5, -1.0], [2.0, 0.25], [math.inf, 1.5]], dtype, device)
    no_key2 = _a(xp, [[True, True, False], [False, False, False], [True, False, False]],
                 xp.bool, device)
    some_key2 = _a(xp, [[True, False, True], [False, False, False], [True, True, False]],
                   xp.bool, device)
    return [
        Sample((q[0], k[0], inf_v), {"mask": no_key2},
               "∞ in a value row no query attends: a fully masked row stays 0",
               proves=("masked_values_unread", "fully_masked_row_zero")),
        Sample((q[0], k[0], inf_v), {"mask": some_key2},
               "∞ in a value row some queries attend: only they get ∞",
               proves=("masked_values_unread",)),
        Sample((q[0], k[0], inf_v), {"is_causal": True},
               "∞ in the last value row: the earlier causal rows stay finite",
               proves=("masked_values_unread",)),
        Sample((q, k, v), {"mask": dead}, "a fully masked row (boolean)",
               proves=("fully_masked_row_zero",)),
        Sample((q1, k5, v5), {"mask": _a(xp, [[-math.inf] * 5], dtype, device)},
               "a fully masked row (additive −∞)", proves=("fully_masked_row_zero",)),
        Sample((big_q, big_k, v[0]), {}, "scores ~1e3: softmax nearly one-hot"),
        Sample((q4, k[0], v[1]), {"is_causal": True}, "causal with q_len > k_len: first row 0"),
        Sample((q[0], k[0], big_v), {"is_causal": True}, "values ~1e4"),
    ]


samples(scaled_dot_product_attention)(_sdpa_samples)


@errors(scaled_dot_product_attention)
def _(xp, dtype, device):
    q, k, _, _, _ = _qkv_samples(xp, dtype, device)
    v = _a(xp, _grid((2, 3, 2), 6.1), dtype, device)
    return [
        *_qk_errors(xp, dtype, device, extra=(v,)),
        *_option_errors(xp, dtype, device, extra=(v,)),
        ErrorCase((q, k, _a(xp, _grid((2, 4, 2), 0.0), dtype, device)), {}, ValueError,
                  "v must have one row per key", "v of another length than k"),
        ErrorCase((q, k, _a(xp, [[1, 2]] * 3, xp.int64, device)), {}, TypeError,
                  "v must have a real floating dtype", "integer v"),
    ]


@samples(causal_mask)
def _(xp, dtype, device):
    opts = {"xp": xp, "dtype": dtype, "device": device}
    return [
        Sample((3, 3), opts, "square: lower-triangular"),
        Sample((1, 4), opts, "one decoding step over a cache of 3"),
        Sample((2, 5), opts, "two new tokens after a cache of 3"),
        Sample((3, 3), {**opts, "dtype": xp.bool}, "boolean"),
        Sample((2, 4), {**opts, "causal_alignment": "upper_left"},
               "variant upper_left: 0 iff j ≤ i"),
        Sample((np.int64(2), np.int64(3)), opts, "NumPy integer lengths"),
        Sample((2, 3), {}, "no xp: NumPy"),
    ]


@references(causal_mask)
def _(xp, dtype, device):
    opts = {"xp": xp, "dtype": dtype, "device": device}
    return [Sample((4, 2), opts, "q_len > k_len: first rows fully masked"),
            Sample((0, 3), opts, "no queries")]


@errors(causal_mask)
def _(xp, dtype, device):
    opts = {"xp": xp, "dtype": dtype, "device": device}
    return [
        ErrorCase((-1, 3), opts, ValueError, "q_len must be ≥ 0", "negative q_len"),
        ErrorCase((2.5, 3), opts, TypeError, "q_len must be an integer", "non-integer q_len"),
        ErrorCase((2, 3), {"xp": "numpy"}, TypeError, "xp must be an array namespace",
                  "a string for xp"),
        ErrorCase((True, 3), opts, TypeError, "q_len must be an integer, got a bool",
                  "a bool length"),
        ErrorCase((2, 3), {**opts, "causal_alignment": "bottom_right"}, ValueError,
                  "causal_alignment must be one of", "an unknown alignment"),
        ErrorCase((2, 3), {**opts, "dtype": xp.int64}, TypeError,
                  "dtype must be a real floating dtype", "integer dtype"),
    ]


def _mha_weights(xp, dtype, device, d_model=4, kv_rows=4, seed=0.0):
    return (_a(xp, _grid((d_model, d_model), 0.3 + seed, 0.8), dtype, device),
            _a(xp, _grid((kv_rows, d_model), 1.1 + seed, 0.8), dtype, device),
            _a(xp, _grid((kv_rows, d_model), 2.3 + seed, 0.8), dtype, device),
            _a(xp, _grid((d_model, d_model), 3.9 + seed, 0.8), dtype, device))


@samples(multi_head_attention)
def _(xp, dtype, device):
    x = _a(xp, _grid((3, 4), 0.5, 1.5), dtype, device)
    xb = _a(xp, _grid((2, 3, 4), 4.5, 1.5), dtype, device)
    x_kv = _a(xp, _grid((5, 4), 9.5, 1.5), dtype, device)
    w = _mha_weights(xp, dtype, device)
    w_gqa = _mha_weights(xp, dtype, device, kv_rows=2)
    return [
        Sample((x, x, *w), {"num_heads": 2}, "self-attention, two heads"),
        Sample((xb, xb, *w), {"num_heads": 2, "is_causal": True}, "batch of two, causal"),
        Sample((x, x_kv, *w), {"num_heads": 4}, "cross-attention, four heads"),
        Sample((x, x, *w_gqa), {"num_heads": 2, "num_kv_heads": 1}, "multi-query (one K/V head)"),
        Sample((x, x, *w), {"num_heads": 1, "mask": _a(xp, [[True, False, True]] * 3, xp.bool,
                                                       device)}, "one head, boolean mask"),
    ]


@errors(multi_head_attention)
def _(xp, dtype, device):
    x = _a(xp, _grid((3, 4), 0.5), dtype, device)
    w = _mha_weights(xp, dtype, device)
    w_gqa = _mha_weights(xp, dtype, device, kv_rows=2)
    return [
        ErrorCase((x, x, *w), {"num_heads": 3}, ValueError, "not divisible by num_heads",
                  "d_model not divisible by num_heads"),
        ErrorCase((x, x, *w), {"num_heads": 4, "num_kv_heads": 3}, ValueError,
                  "must be a multiple of num_kv_heads", "num_heads not a multiple of num_kv_heads"),
        ErrorCase((x, x, *w_gqa), {"num_heads": 2}, ValueError,
                  r"w_k must have shape \(4, 4\)", "K/V weights too small for MHA"),
        ErrorCase((x, _a(xp, _grid((3, 5), 0.5), dtype, device), *w), {"num_heads": 2},
                  ValueError, "same d_model", "x_kv of another width"),
        ErrorCase((x, x, *w), {"num_heads": 2, "mask": _a(xp, [[True, False]], xp.bool,
                                                          device)},
                  ValueError, "mask must be broadcastable", "mask of the wrong shape"),
        ErrorCase((x, x, *w), {"num_heads": 0}, ValueError, "num_heads must be a positive",
                  "zero heads"),
    ]


@samples(kv_cache_attention)
def _(xp, dtype, device):
    q = _a(xp, _grid((2, 1, 4), 0.2), dtype, device)
    k = _a(xp, _grid((2, 1, 4), 1.2), dtype, device)
    val = _a(xp, _grid((2, 1, 3), 2.2), dtype, device)
    ck = _a(xp, _grid((2, 3, 4), 3.2), dtype, device)
    cv = _a(xp, _grid((2, 3, 3), 4.2), dtype, device)
    empty_k = _a(xp, _grid((2, 1, 4), 0.0), dtype, device)[:, :0, :]
    empty_v = _a(xp, _grid((2, 1, 3), 0.0), dtype, device)[:, :0, :]
    q3 = _a(xp, _grid((2, 3, 4), 5.2), dtype, device)
    q_gqa = _a(xp, _grid((4, 1, 4), 6.2), dtype, device)
    return [
        Sample((q, k, val, ck, cv), {}, "one step after three cached tokens"),
        Sample((q3, ck, cv, empty_k, empty_v), {}, "prefill: three tokens, empty cache"),
        Sample((q_gqa, k, val, ck, cv), {}, "grouped-query: four query heads, two K/V heads"),
    ]


@errors(kv_cache_attention)
def _(xp, dtype, device):
    q = _a(xp, _grid((2, 1, 4), 0.2), dtype, device)
    k = _a(xp, _grid((2, 1, 4), 1.2), dtype, device)
    val = _a(xp, _grid((2, 1, 3), 2.2), dtype, device)
    ck = _a(xp, _grid((2, 3, 4), 3.2), dtype, device)
    cv = _a(xp, _grid((2, 3, 3), 4.2), dtype, device)
    return [
        ErrorCase((q, k, val, _a(xp, _grid((2, 3, 5), 0.0), dtype, device), cv), {}, ValueError,
                  "cache_k must be", "cache of another d_k"),
        ErrorCase((q, k, val, ck, _a(xp, _grid((2, 2, 3), 0.0), dtype, device)), {}, ValueError,
                  "same number of past tokens", "caches of different lengths"),
        ErrorCase((_a(xp, _grid((2, 2, 4), 0.0), dtype, device), k, val, ck, cv), {}, ValueError,
                  "same number of new tokens", "q_t and k_t of different lengths"),
        ErrorCase((q, k, val, xp.astype(ck, xp.int64), cv), {}, TypeError,
                  "cache_k must have a real floating dtype", "integer cache"),
        ErrorCase((_a(xp, _grid((3, 1, 4), 0.0), dtype, device), k, val, ck, cv), {},
                  ValueError, "not a multiple of the 2 K/V heads", "3 query heads, 2 K/V heads"),
    ]


@samples(attention_cost)
def _(xp, dtype, device):
    return [Sample((1024, 768), {}, "BERT-base length and width"),
            Sample((2048, 12288), {"num_heads": 96}, "GPT-3: 96 heads")]


@errors(attention_cost)
def _(xp, dtype, device):
    return [
        ErrorCase((-1, 64), {}, ValueError, "seq_len must be ≥ 0", "negative length"),
        ErrorCase((16, 64.0), {}, TypeError, "dim must be a positive integer", "float dim"),
        ErrorCase((16, 64), {"num_heads": 5}, ValueError, "must be divisible by num_heads",
                  "heads not dividing dim"),
        ErrorCase((16, 0), {}, ValueError, "dim must be a positive integer", "zero dim"),
    ]


# --------------------------------------------------------------------------------- tier D
def _normal_args(*shapes):
    """`make_args(seed)`: argument i is normal(0, 1) of shape i, from a generator seeded with
    seed + 10·i."""
    def make_args(seed: int) -> list:
        return [np.random.default_rng(seed + 10 * i).normal(0, 1.0, s)
                for i, s in enumerate(shapes)]

    return make_args


def _weights_causal(q, k):
    return attention_weights(q, k, is_causal=True)


def _sdpa_causal(q, k, v):
    return scaled_dot_product_attention(q, k, v, is_causal=True)


def _mha_gqa(x_q, x_kv, w_q, w_k, w_v, w_o):
    return multi_head_attention(x_q, x_kv, w_q, w_k, w_v, w_o, num_heads=2, num_kv_heads=1,
                                is_causal=True)


_SDPA_ARGS = _normal_args((2, 2), (3, 2), (3, 2))
_MHA_ARGS = _normal_args((2, 2), (2, 2), (2, 2), (1, 2), (1, 2), (2, 2))

derivative(
    DerivativeCase("attention_weights", attention_weights, _normal_args((2, 3), (3, 3)),
                   label="q"),
    DerivativeCase("attention_weights", _weights_causal, _normal_args((3, 2), (3, 2)), argnum=1,
                   label="k causal"),
    DerivativeCase("scaled_dot_product_attention", scaled_dot_product_attention, _SDPA_ARGS,
                   label="q"),
    DerivativeCase("scaled_dot_product_attention", scaled_dot_product_attention, _SDPA_ARGS,
                   argnum=1, label="k"),
    DerivativeCase("scaled_dot_product_attention", scaled_dot_product_attention, _SDPA_ARGS,
                   argnum=2, label="v"),
    DerivativeCase("scaled_dot_product_attention", _sdpa_causal,
                   _normal_args((3, 2), (3, 2), (3, 1)), argnum=1, label="k causal"),
    # grouped-query (two query heads, one K/V head), causal
    DerivativeCase("multi_head_attention", _mha_gqa, _MHA_ARGS, label="x_q"),
    DerivativeCase("multi_head_attention", _mha_gqa, _MHA_ARGS, argnum=3, label="w_k"),
)


# --------------------------------------------------------------------------------- tier R
# The largest error against mpmath (conformance/oracles_attention.py), in units in the last
# place at the floors of that module's rounding analysis: for one query row with
# S = max_j (scale·Σ_l |q_l k_jl| + |m_j|), the weights are within 2 units at the floor
# w_max·[(d_k + 4)·max(1, S) + k_len], and the output within 2 units at
# V_c·[(d_k + 4)·max(1, S) + 2·k_len], V_c = max_j |v_jc|. The budgets double that bound of 2
# for exp implementations with up to 2-ulp error. The tier-P properties compare two rounded
# computations at twice this budget (conformance/properties/attention.py).
budget({
    "attention_weights": {"float32": 4, "float64": 4},
    "scaled_dot_product_attention": {"float32": 4, "float64": 4},
})
