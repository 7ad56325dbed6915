"""Tier P properties of §9 Attention, as checks of an implementation.

`impl` is the implementation under test with the spec's signature; other equations a check
needs as references come from `spec`. The checks compare against identities, NumPy
recomputations and PyTorch's own kernels (``scaled_dot_product_attention``,
``multi_head_attention_forward``, float64 on the CPU, imported inside the check), within
tolerances derived from the same rounding analysis as the tier-R floors
(conformance/oracles_attention.py) and budgets (conformance/records/attention.py).

Low precision: the spec computes float16 and bfloat16 in float32 and rounds each result once,
so a result is within half an ulp of the dtype (ε/2 relative, or half a subnormal step near 0)
of a float32 result that obeys float32's analysis. Every property whose identity survives that
one rounding runs in float16 and bfloat16 too (``dtypes=ALL_DTYPES``), its slack derived below;
the tier-R budgets it reads are the records' (derived from float32's for the low dtypes).
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import strategies as st

import spec
from conformance import oracles_attention, records
from conformance import strategies as cst
from conformance.precision import finfo, host_dtype
from conformance.properties import ALL_DTYPES, prop

#: float32's machine epsilon: the precision the low dtypes are computed in
_EPS32 = float(np.finfo(np.float32).eps)


def _rounded_once(t, magnitude):
    """The error a low-precision result adds by its one rounding to the dtype: half an ulp,
    ≤ ε/2 relative to `magnitude` (≥ the result's size) plus half the smallest subnormal step;
    0 in float32 and float64, whose results are not rounded again."""
    if not t.low:
        return 0.0
    return t.eps / 2 * magnitude + float(finfo(t.dtype).smallest_subnormal) / 2


def _work_eps(t):
    """The machine epsilon of the precision the spec computes in: float32's for the low dtypes."""
    return _EPS32 if t.low else t.eps


def _close_attention(t, got, want, floor, *, what, computations=2):
    """|got − want| within `computations` × the tier-R budget at the oracle's floor, plus the
    dtype's relative tolerance. The floor carries the scores' conditioning (see
    oracles_attention); two computations (spec and a reference, both rounded) get 2×."""
    budget = records.ulp_budget("scaled_dot_product_attention", t.dtype)
    floor = np.maximum(np.broadcast_to(floor, np.shape(want)), float(finfo(t.dtype).tiny))
    atol = computations * budget * t.eps * floor  # as ulp_error: ≥ the smallest normal
    err = np.abs(np.asarray(got, dtype=np.float64) - np.asarray(want, dtype=np.float64))
    bound = atol + t.tol.rtol * np.abs(want)
    assert np.all(err <= bound), (
        f"{what} ({t.dtype}): worst excess {np.max(err - bound):.3g}, worst error "
        f"{np.max(err):.3g}")


def _sdpa_floor(o, q, k, v, **kwargs):
    return oracles_attention.FLOORS["scaled_dot_product_attention"](
        np.asarray(o, np.float64), (q, k, v), kwargs)


def _tril_allowed(q_len, k_len):
    """Bottom-right causal pattern, from NumPy: True where j ≤ i + (k_len − q_len)."""
    return np.tril(np.ones((q_len, k_len), dtype=bool), k=k_len - q_len)


@st.composite
def _qkv(draw, dtype, *, max_len=5, same_len=False, bound=2.0):
    h = draw(st.integers(1, 3), label="heads")
    q_len = draw(st.integers(1, max_len), label="q_len")
    k_len = q_len if same_len else draw(st.integers(1, max_len), label="k_len")
    d_k = draw(st.integers(1, 6), label="d_k")
    d_v = draw(st.integers(1, 4), label="d_v")
    q = draw(cst.arrays(dtype, (h, q_len, d_k), min_value=-bound, max_value=bound), label="q")
    k = draw(cst.arrays(dtype, (h, k_len, d_k), min_value=-bound, max_value=bound), label="k")
    v = draw(cst.arrays(dtype, (h, k_len, d_v), min_value=-bound, max_value=bound), label="v")
    return q, k, v


def _bool_mask(draw, q_len, k_len, label="mask"):
    return draw(st.lists(st.booleans(), min_size=q_len * k_len, max_size=q_len * k_len)
                .map(lambda b: np.array(b, dtype=bool).reshape(q_len, k_len)), label=label)


def _sum_slack(t, k_len):
    """|Σ_j w_j − 1| for a row of k_len weights: each within ~2 ulps of a value ≤ 1 (exp and
    the division), summed with up to k_len roundings: 4ε per key in the working precision;
    a low dtype rounds each weight once more (ε/2 relative: ε/2 for the row, whose weights
    sum to 1, plus half a subnormal step per weight)."""
    step = float(finfo(t.dtype).smallest_subnormal) / 2 if t.low else 0.0
    return k_len * 4 * _work_eps(t) + _rounded_once(t, 1.0) + k_len * step


# --------------------------------------------------------------------------- weights
@prop("attention_weights", "rows_sum_to_one", "causal_lower_triangular", "fully_masked_row_zero",
      dtypes=ALL_DTYPES)
def attention_weights_rows_causal_and_masked(impl, t):
    q, k, _ = t.draw(_qkv(t.dtype), label="qkv")
    q_len, k_len = q.shape[-2], k.shape[-2]
    mask = _bool_mask(t.draw, q_len, k_len)
    causal = t.draw(st.booleans(), label="is_causal")
    qb, kb, mb = t.on(q, k, mask)
    w = t.np(impl(qb, kb, mask=mb, is_causal=causal))
    allowed = mask & (_tril_allowed(q_len, k_len) if causal else True)
    assert w.shape == (q.shape[0], q_len, k_len)
    assert np.all(w[..., ~allowed] == 0), "a masked key got weight"
    assert np.all(w >= 0) and not np.any(np.isnan(w))
    live = allowed.any(axis=-1)
    sums = np.sum(w, axis=-1)
    np.testing.assert_allclose(sums[..., live], 1.0, rtol=0, atol=_sum_slack(t, k_len))
    assert np.all(sums[..., ~live] == 0), "a fully masked row is not all zero"


def _bool_equals_additive(impl, t, with_v: bool):
    q, k, v = t.draw(_qkv(t.dtype), label="qkv")
    mask = _bool_mask(t.draw, q.shape[-2], k.shape[-2])
    additive = np.where(mask, 0.0, -np.inf).astype(host_dtype(t.dtype))
    qb, kb, vb, mb, ab = t.on(q, k, v, mask, additive)
    args = (qb, kb, vb) if with_v else (qb, kb)
    with_bool = t.np(impl(*args, mask=mb))
    with_add = t.np(impl(*args, mask=ab))
    t.close(with_add, with_bool, what=f"{t.equation}: additive vs boolean mask")
    assert not np.any(np.isnan(with_add))


# the two masks give the same float32 scores (s + 0 = s, exp(−∞) = 0 = a masked weight), so
# the same result rounded once: the dtype's tolerance holds in every dtype
@prop("attention_weights", "bool_equals_additive", dtypes=ALL_DTYPES)
def attention_weights_boolean_and_additive_masks_agree(impl, t):
    _bool_equals_additive(impl, t, with_v=False)


def _dead_row_inputs(dtype):
    """Random q, k, v (seed 3) and a mask whose second query row allows no key, as a boolean
    mask and as its 0/−∞ additive twin."""
    dtype = host_dtype(dtype)
    rng = np.random.default_rng(3)
    q, k, v = (rng.normal(size=s).astype(dtype) for s in ((2, 3, 4), (2, 5, 4), (2, 5, 3)))
    dead = np.ones((3, 5), dtype=bool)
    dead[1] = False
    return q, k, v, (dead, np.where(dead, 0.0, -np.inf).astype(dtype))


@prop("attention_weights", "fully_masked_row_zero", draws=False, dtypes=ALL_DTYPES)
def attention_weights_fully_masked_rows_are_zero_not_nan(impl, t):
    q, k, _, masks = _dead_row_inputs(t.dtype)
    for mask in masks:
        qb, kb, mb = t.on(q, k, mask)
        w = t.np(impl(qb, kb, mask=mb))
        assert np.all(w[:, 1] == 0) and not np.any(np.isnan(w))
        # the live rows sum to 1: 5 keys, as in the rows check above
        assert np.all(np.abs(np.sum(w[:, [0, 2]], -1) - 1) <= _sum_slack(t, 5))


@prop("attention_weights", "many_keys", draws=False, dtypes=ALL_DTYPES)
def attention_weights_over_more_keys_than_float16_can_count(impl, t):
    """70,000 equal scores: each weight is 1/70,000 = 1.43e-5 (float16's Σ of 70,000 ones
    would overflow at 65,504 and give 0). The float32 weight is within a few ulps of 1/n;
    rounded once to the dtype it is within half an ulp more."""
    n = 70_000
    q = np.zeros((1, 4), dtype=host_dtype(t.dtype))
    k = np.zeros((n, 4), dtype=host_dtype(t.dtype))
    w = t.np(impl(*t.on(q, k)))
    assert w.shape == (1, n)
    want = 1 / n
    np.testing.assert_allclose(w, want, rtol=0,
                               atol=4 * _work_eps(t) * want + _rounded_once(t, want))


# --------------------------------------------------------------------------- SDPA
@prop("scaled_dot_product_attention", "bool_equals_additive", dtypes=ALL_DTYPES)
def sdpa_boolean_and_additive_masks_agree(impl, t):
    _bool_equals_additive(impl, t, with_v=True)


@prop("scaled_dot_product_attention", "fully_masked_row_zero", draws=False, dtypes=ALL_DTYPES)
def sdpa_fully_masked_rows_are_zero_not_nan(impl, t):
    q, k, v, masks = _dead_row_inputs(t.dtype)
    for mask in masks:
        qb, kb, vb, mb = t.on(q, k, v, mask)
        o = t.np(impl(qb, kb, vb, mask=mb))
        assert np.all(o[:, 1] == 0) and np.all(np.isfinite(o))
    # causal with q_len > k_len: the first q_len − k_len queries see no key at all
    o = t.np(impl(*t.on(q, k[:, :2], v[:, :2]), is_causal=True))
    assert np.all(o[:, 0] == 0) and np.all(np.isfinite(o))


@prop("scaled_dot_product_attention", "many_keys", draws=False, dtypes=ALL_DTYPES)
def sdpa_over_more_keys_than_float16_can_count(impl, t):
    """70,000 keys of equal score: the output is the mean of the values (float16 summing the
    70,000 exponentials would overflow at 65,504 and give 0), within the tier-R budget at the
    oracle's floor (whose 2·k_len term carries the long sums' rounding)."""
    n = 70_000
    rng = np.random.default_rng(70_000)
    h = host_dtype(t.dtype)
    q, k = np.zeros((1, 4), dtype=h), np.zeros((n, 4), dtype=h)
    v = rng.uniform(1.0, 2.0, size=(n, 2)).astype(h)  # a mean near 1.5: zeros cannot pass
    got = t.np(impl(*t.on(q, k, v)))
    want = np.mean(v.astype(np.float64), axis=0, keepdims=True)
    _close_attention(t, got, want, _sdpa_floor(want, q, k, v), what="mean of 70,000 values")


def _inf_values(dtype):
    """q, k (seed 11; 3 queries, 3 keys) and values whose last key's row holds +∞ (column 0),
    −∞ (column 1) and NaN (column 2); column 3 is finite."""
    h = host_dtype(dtype)
    rng = np.random.default_rng(11)
    q, k = rng.normal(size=(3, 4)).astype(h), rng.normal(size=(3, 4)).astype(h)
    v = rng.normal(size=(3, 4)).astype(h)
    v[2, :3] = [np.inf, -np.inf, np.nan]
    return q, k, v


@prop("scaled_dot_product_attention", "masked_values_unread", "fully_masked_row_zero",
      "causal_no_future", draws=False, dtypes=ALL_DTYPES)
def sdpa_never_reads_the_values_of_keys_it_does_not_attend(impl, t):
    """Non-finite values in the row of key 2 reach only the queries that attend key 2: a fully
    masked row stays 0, the rows that mask key 2 out (a boolean mask, its additive twin, the
    causal rows before it) equal attention over the other keys alone, and a row that attends
    it gets +∞, −∞ and NaN in those columns and the finite value in column 3."""
    q, k, v = _inf_values(t.dtype)
    mask = np.array([[True, True, False], [False, False, False], [True, True, True]])
    additive = np.where(mask, 0.0, -np.inf).astype(host_dtype(t.dtype))
    without = t.np(impl(*t.on(q, k[:2], v[:2])))  # attention over keys 0 and 1 only
    floor = _sdpa_floor(without, q, k[:2], v[:2])
    for m in (mask, additive):
        o = t.np(impl(*t.on(q, k, v), mask=t.on(m)))
        assert np.all(o[1] == 0), f"a fully masked row read a value: {o[1]}"
        _close_attention(t, o[:1], without[:1], floor[:1] if floor.shape[0] > 1 else floor,
                         what="a row that masks key 2 out")
        np.testing.assert_array_equal(o[2, :3], [np.inf, -np.inf, np.nan])
        assert np.isfinite(o[2, 3])
    causal = t.np(impl(*t.on(q, k, v), is_causal=True))
    _close_attention(t, causal[:2], t.np(impl(*t.on(q[:2], k[:2], v[:2]), is_causal=True)),
                     floor[:2] if floor.shape[0] > 1 else floor,
                     what="causal rows before key 2")
    np.testing.assert_array_equal(causal[2, :3], [np.inf, -np.inf, np.nan])


@prop("scaled_dot_product_attention", "masked_values_unread", dtypes=ALL_DTYPES)
def sdpa_nonfinite_values_reach_only_the_queries_that_attend_them(impl, t):
    """Random masks and random non-finite entries: every output equals the sum over the
    attended keys alone, computed here in float64 with the non-finite entries handled as IEEE
    sums over those keys (+∞ and −∞ together, or a NaN, give NaN)."""
    q, k, v = t.draw(_qkv(t.dtype), label="qkv")
    q_len, k_len = q.shape[-2], k.shape[-2]
    mask = _bool_mask(t.draw, q_len, k_len)
    kinds = t.draw(st.lists(st.sampled_from([0.0, np.inf, -np.inf, np.nan]),
                            min_size=v.size, max_size=v.size), label="non-finite")
    kinds = np.asarray(kinds).reshape(v.shape)
    v = np.where(kinds == 0, v, kinds).astype(v.dtype)
    got = t.np(impl(*t.on(q, k, v), mask=t.on(mask)))
    w = spec.attention_weights(q.astype(np.float64), k.astype(np.float64), mask=mask)
    attended = w > 0  # scores within ±4·6/√1: no allowed weight underflows, in any dtype
    v64 = v.astype(np.float64)
    finite_v = np.where(np.isfinite(v64), v64, 0.0)
    want = w @ finite_v
    up = (attended.astype(float) @ ((v64 == np.inf) | np.isnan(v64))) > 0
    down = (attended.astype(float) @ ((v64 == -np.inf) | np.isnan(v64))) > 0
    want = np.where(up, np.inf, want)
    want = np.where(down, -np.inf, want)
    want = np.where(up & down, np.nan, want)
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    np.testing.assert_array_equal(got[~np.isfinite(want)], want[~np.isfinite(want)])
    live = np.isfinite(want)
    floor = _sdpa_floor(np.where(live, want, 0.0), q, k, v)
    _close_attention(t, np.where(live, got, 0.0), np.where(live, want, 0.0), floor,
                     what="finite outputs")


@prop("scaled_dot_product_attention", "query_permutation_equivariant",
      "key_value_permutation_invariant", dtypes=ALL_DTYPES)
def sdpa_permutations(impl, t):
    q, k, v = t.draw(_qkv(t.dtype), label="qkv")
    pq = t.draw(st.permutations(range(q.shape[-2])), label="query perm")
    pk = t.draw(st.permutations(range(k.shape[-2])), label="key perm")
    o = t.np(impl(*t.on(q, k, v)))
    floor = _sdpa_floor(o, q, k, v)
    o_q = t.np(impl(*t.on(q[:, pq], k, v)))
    _close_attention(t, o_q, o[:, pq], floor[:, pq] if floor.shape[1] > 1 else floor,
                     what="queries permuted")
    o_kv = t.np(impl(*t.on(q, k[:, pk], v[:, pk])))
    _close_attention(t, o_kv, o, floor, what="keys and values permuted jointly")


@prop("scaled_dot_product_attention", "convex_hull", dtypes=ALL_DTYPES)
def sdpa_output_in_convex_hull_of_values(impl, t):
    q, k, v = t.draw(_qkv(t.dtype, bound=5.0), label="qkv")
    causal = t.draw(st.booleans(), label="is_causal")
    o = t.np(impl(*t.on(q, k, v), is_causal=causal))
    allowed = _tril_allowed(q.shape[-2], k.shape[-2]) if causal else np.ones(
        (q.shape[-2], k.shape[-2]), dtype=bool)
    v64 = v.astype(np.float64)
    # rounding of Σ_j w_j v_j in the working precision, and a low dtype's one rounding
    size = np.max(np.abs(v64))
    slack = 4 * k.shape[-2] * _work_eps(t) * size + _rounded_once(t, size)
    for i in range(q.shape[-2]):
        seen = v64[:, allowed[i]]  # (h, visible keys, d_v)
        if seen.shape[1] == 0:
            assert np.all(o[:, i] == 0)
            continue
        assert np.all(o[:, i] >= np.min(seen, axis=1) - slack)
        assert np.all(o[:, i] <= np.max(seen, axis=1) + slack)


@prop("scaled_dot_product_attention", "causal_no_future", dtypes=ALL_DTYPES)
def sdpa_causal_output_ignores_the_future(impl, t):
    q, k, v = t.draw(_qkv(t.dtype, same_len=True), label="qkv")
    n = q.shape[-2]
    i = t.draw(st.integers(0, n - 1), label="i")
    noise = t.draw(cst.arrays(t.dtype, (3, *q.shape[:-2], n, 8), min_value=-50, max_value=50),
                   label="noise")
    q2, k2, v2 = q.copy(), k.copy(), v.copy()
    q2[..., i + 1:, :] = noise[0, ..., i + 1:, : q.shape[-1]]
    k2[..., i + 1:, :] = noise[1, ..., i + 1:, : k.shape[-1]]
    v2[..., i + 1:, :] = noise[2, ..., i + 1:, : v.shape[-1]]
    o = t.np(impl(*t.on(q, k, v), is_causal=True))
    o2 = t.np(impl(*t.on(q2, k2, v2), is_causal=True))
    floor = _sdpa_floor(o, q, k, v)
    _close_attention(t, o2[..., : i + 1, :], o[..., : i + 1, :], floor[..., : i + 1, :]
                     if floor.shape[-2] > 1 else floor, what="rows ≤ i after changing the future")


def _torch():
    return pytest.importorskip("torch")


def _lower_right(q_len, k_len):
    """torch's bottom-right causal bias. For q_len > k_len it warns that the first rows will
    be NaN; torch 2.13 in fact returns zeros there (checked by the properties that use it)."""
    from torch.nn.attention.bias import causal_lower_right

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Lower right causal bias", UserWarning)
        return causal_lower_right(q_len, k_len)


def _t(x):
    return _torch().from_numpy(np.ascontiguousarray(x, dtype=np.float64))


@prop("scaled_dot_product_attention", "matches_torch", dtypes=ALL_DTYPES)
def sdpa_matches_torch(impl, t):
    """torch.nn.functional.scaled_dot_product_attention (float64, CPU) on the same inputs:
    no mask, boolean mask (True = attend in both), additive mask, is_causal with q_len = k_len,
    and, for k_len > q_len, torch's causal_lower_right bias, which is the spec's is_causal."""
    torch = _torch()
    F = torch.nn.functional
    q, k, v = t.draw(_qkv(t.dtype), label="qkv")
    q_len, k_len = q.shape[-2], k.shape[-2]
    kind = t.draw(st.sampled_from(["none", "bool", "additive", "causal"]), label="kind")
    mask = _bool_mask(t.draw, q_len, k_len)
    kwargs, t_kwargs = {}, {}
    if kind == "bool":
        kwargs["mask"], t_kwargs["attn_mask"] = mask, torch.from_numpy(mask)
    elif kind == "additive":
        add = np.where(mask, 0.0, -np.inf).astype(host_dtype(t.dtype))
        kwargs["mask"], t_kwargs["attn_mask"] = add, _t(add)
    elif kind == "causal":
        kwargs["is_causal"] = True
        if q_len == k_len:
            t_kwargs["is_causal"] = True
        else:
            t_kwargs["attn_mask"] = _lower_right(q_len, k_len)
    got = t.np(impl(*t.on(q, k, v), **{n: t.on(a) for n, a in kwargs.items()}))
    want = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), **t_kwargs).numpy()
    _close_attention(t, got, want, _sdpa_floor(want, q, k, v, **kwargs), what=kind)


@prop("scaled_dot_product_attention", "matches_torch", "fully_masked_row_zero", draws=False,
      dtypes=ALL_DTYPES)
def sdpa_fully_masked_row_and_alignment_against_torch(impl, t):
    """torch 2.13 returns zeros for a fully masked row (boolean and −∞ additive), as the spec;
    for k_len > q_len torch's is_causal=True aligns top-left and differs from the spec's
    bottom-right causal attention, which equals torch's causal_lower_right."""
    torch = _torch()
    F = torch.nn.functional
    rng = np.random.default_rng(7)
    h = host_dtype(t.dtype)
    # the inputs rounded to the dtype, and torch's float64 reference on those exact values
    q, k, v = (rng.normal(size=s).astype(h).astype(np.float64)
               for s in ((2, 2, 4), (2, 5, 4), (2, 5, 3)))
    mask = np.ones((2, 5), dtype=bool)
    mask[0] = False
    qb, kb, vb, mb = t.on(q.astype(h), k.astype(h), v.astype(h), mask)
    got = t.np(impl(qb, kb, vb, mask=mb))
    want = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), attn_mask=torch.from_numpy(mask))
    assert np.all(want.numpy()[:, 0] == 0), "torch no longer returns zeros for a masked row"
    assert np.all(got[:, 0] == 0)
    ours = t.np(impl(qb, kb, vb, is_causal=True))
    top_left = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), is_causal=True).numpy()
    assert np.max(np.abs(ours - top_left)) > 1e-3, "bottom-right and top-left should differ"
    lower_right = F.scaled_dot_product_attention(_t(q), _t(k), _t(v),
                                                 attn_mask=_lower_right(2, 5)).numpy()
    _close_attention(t, ours, lower_right, _sdpa_floor(lower_right, q, k, v),
                     what="causal_lower_right")


def _upper_left(q_len, k_len):
    """Top-left causal pattern (torch's is_causal=True), from NumPy: True where j ≤ i."""
    return np.tril(np.ones((q_len, k_len), dtype=bool))


@prop("attention_weights", "causal_variants", dtypes=ALL_DTYPES)
def attention_weights_causal_variants(impl, t):
    """causal_alignment='upper_left' is attention with the top-left pattern j ≤ i as a mask
    (an independent reference of that form: the boolean mask built from NumPy's tril); it
    differs from the default (bottom-right) in exactly the rows where the patterns differ:
    every row when k_len ≠ q_len, none when they are equal."""
    q, k, _ = t.draw(_qkv(t.dtype), label="qkv")
    q_len, k_len = q.shape[-2], k.shape[-2]
    qb, kb = t.on(q, k)
    upper = t.np(impl(qb, kb, is_causal=True, causal_alignment="upper_left"))
    want = t.np(impl(qb, kb, mask=t.on(_upper_left(q_len, k_len))))
    t.close(upper, want, what="upper_left vs the tril mask")
    lower = t.np(impl(qb, kb, is_causal=True))
    # a key one form allows and the other not gets a positive weight (|scores| ≤ 4·6/√1:
    # nothing underflows), so the rows differ exactly where the patterns do
    rows = np.any(_upper_left(q_len, k_len) != _tril_allowed(q_len, k_len), axis=-1)
    np.testing.assert_array_equal(np.any(upper != lower, axis=-1),
                                  np.broadcast_to(rows, upper.shape[:-1]))
    if k_len > q_len:  # the distinguishing input: a key the top-left row 0 cannot see
        assert np.all(upper[..., 0, 1:] == 0) and np.all(lower[..., 0, 1:k_len - q_len + 1] > 0)


@prop("scaled_dot_product_attention", "causal_variants", dtypes=ALL_DTYPES)
def sdpa_causal_variants_match_torch(impl, t):
    """causal_alignment='upper_left' equals torch's own is_causal=True (float64), whatever
    q_len and k_len; the default equals torch's causal_lower_right. One decoding step (q_len =
    1, k_len > 1) tells them apart: top-left sees only the first key."""
    torch = _torch()
    F = torch.nn.functional
    q, k, v = t.draw(_qkv(t.dtype), label="qkv")
    got = t.np(impl(*t.on(q, k, v), is_causal=True, causal_alignment="upper_left"))
    want = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), is_causal=True).numpy()
    _close_attention(t, got, want, _sdpa_floor(want, q, k, v), what="upper_left vs torch")
    step = t.np(impl(*t.on(q[:, :1], k, v), is_causal=True, causal_alignment="upper_left"))
    _close_attention(t, step, v[:, :1].astype(np.float64), _sdpa_floor(step, q[:, :1], k, v),
                     what="one step, top-left: the first key's value")


# --------------------------------------------------------------------------- causal mask
@prop("causal_mask", "values", "decoding_step")
def causal_mask_values_on_backend(impl, t):
    q_len = t.draw(st.integers(0, 6), label="q_len")
    k_len = t.draw(st.integers(0, 6), label="k_len")
    xp, device = t.xp, t.backend.device
    m = impl(q_len, k_len, xp=xp, dtype=t.backend.dtype(t.dtype), device=device)
    assert m.dtype == t.backend.dtype(t.dtype)
    host = t.backend.to_numpy(m)
    allowed = _tril_allowed(q_len, k_len)
    np.testing.assert_array_equal(host, np.where(allowed, 0.0, -np.inf))
    b = t.backend.to_numpy(impl(q_len, k_len, xp=xp, dtype=xp.bool, device=device))
    np.testing.assert_array_equal(b, allowed)
    if q_len == 1:
        assert np.all(host == 0), "one decoding step must see the whole cache"


@prop("causal_mask", "causal_variants")
def causal_mask_upper_left_is_torchs(impl, t):
    """causal_alignment='upper_left' is torch's causal_upper_left bias (0 iff j ≤ i), as an
    additive and as a boolean mask; it differs from the default exactly when q_len ≠ k_len."""
    torch = _torch()
    from torch.nn.attention.bias import causal_upper_left

    q_len = t.draw(st.integers(1, 6), label="q_len")
    k_len = t.draw(st.integers(1, 6), label="k_len")
    xp, device = t.xp, t.backend.device
    m = t.backend.to_numpy(impl(q_len, k_len, xp=xp, dtype=t.backend.dtype(t.dtype),
                                device=device, causal_alignment="upper_left"))
    torchs = causal_upper_left(q_len, k_len)._materialize(torch.device("cpu")).numpy()
    np.testing.assert_array_equal(m == 0, torchs)
    np.testing.assert_array_equal(m, np.where(_upper_left(q_len, k_len), 0.0, -np.inf))
    b = t.backend.to_numpy(impl(q_len, k_len, xp=xp, dtype=xp.bool, device=device,
                                causal_alignment="upper_left"))
    np.testing.assert_array_equal(b, torchs)
    default = t.backend.to_numpy(impl(q_len, k_len, xp=xp, dtype=xp.bool, device=device))
    assert np.array_equal(default, b) == (q_len == k_len)


@prop("causal_mask", "low_precision", dtypes=("float32",), draws=False)
def causal_mask_in_float16_and_bfloat16(impl, t):
    """Masks in the backend's float16 and bfloat16 (causal_mask declares float32 and float64
    for the tiers, whose cases are built in those; nothing is computed in the mask's dtype,
    so every floating dtype of the namespace holds exactly 0 and −∞)."""
    xp, device = t.xp, t.backend.device
    lows = [name for name in ("float16", "bfloat16") if name in t.backend.float_dtypes]
    for name in lows:
        m = impl(3, 5, xp=xp, dtype=t.backend.dtype(name), device=device)
        assert m.dtype == t.backend.dtype(name)
        np.testing.assert_array_equal(t.backend.to_numpy(m).astype(np.float64),
                                      np.where(_tril_allowed(3, 5), 0.0, -np.inf))


@prop("causal_mask", "equals_is_causal")
def causal_mask_equals_is_causal(impl, t):
    q, k, v = t.draw(_qkv(t.dtype), label="qkv")
    m = impl(q.shape[-2], k.shape[-2], xp=t.xp, dtype=t.backend.dtype(t.dtype),
             device=t.backend.device)
    qb, kb, vb = t.on(q, k, v)
    with_mask = t.np(spec.scaled_dot_product_attention(qb, kb, vb, mask=m))
    with_flag = t.np(spec.scaled_dot_product_attention(qb, kb, vb, is_causal=True))
    t.close(with_mask, with_flag, what="mask = causal_mask vs is_causal")


# --------------------------------------------------------------------------- multi-head
@st.composite
def _mha_case(draw, dtype, *, gqa=True):
    num_kv = draw(st.integers(1, 2), label="num_kv_heads")
    groups = draw(st.integers(1, 2), label="groups") if gqa else 1
    num_heads = num_kv * groups
    d_head = draw(st.integers(1, 3), label="d_head")
    d_model = draw(st.integers(1, 6), label="d_model")
    batch = draw(st.sampled_from([(), (2,)]), label="batch")
    q_len = draw(st.integers(1, 4), label="q_len")
    k_len = draw(st.integers(1, 4), label="k_len")

    def arr(shape, label, bound=1.0):
        return draw(cst.arrays(dtype, shape, min_value=-bound, max_value=bound), label=label)

    x_q = arr((*batch, q_len, d_model), "x_q", 2.0)
    x_kv = arr((*batch, k_len, d_model), "x_kv", 2.0)
    w_q = arr((num_heads * d_head, d_model), "w_q")
    w_k = arr((num_kv * d_head, d_model), "w_k")
    w_v = arr((num_kv * d_head, d_model), "w_v")
    w_o = arr((d_model, num_heads * d_head), "w_o")
    return (x_q, x_kv, w_q, w_k, w_v, w_o), num_heads, num_kv


def _mha_scale(args):
    """An error scale for MHA outputs: |W_o|·|V-projection| bounds, in float64, and never
    below the dtype's smallest normal (results under it are rounded in subnormal steps)."""
    x_q, x_kv, w_q, w_k, w_v, w_o = (np.abs(a.astype(np.float64)) for a in args)
    proj = np.max(x_kv @ w_v.T, axis=-2, keepdims=True)  # ≥ every |value| coordinate
    q_size = np.max(x_q @ w_q.T) * np.max(x_kv @ w_k.T) * max(1, w_q.shape[0])
    d = x_q.shape[-1]
    scale = (np.max(proj) * np.max(np.sum(w_o, axis=-1))
             * ((2 * d + w_q.shape[0] + 4) * max(1.0, q_size) + 2 * x_kv.shape[-2] + d))
    return max(scale, float(finfo(args[0].dtype).tiny))


def _mha_atol(t, args):
    """Two computations (spec and a reference), each within the SDPA budget at `_mha_scale`."""
    return 2 * records.ulp_budget("scaled_dot_product_attention", t.dtype) * t.eps * _mha_scale(
        args)


def _torch_mha(args, num_heads, *, bool_mask=None, is_causal=False):
    """torch's multi_head_attention_forward on mapped weights ((L, N, E) layout, float64):
    in_proj_weight = concat(w_q, w_k, w_v), out_proj_weight = w_o, no biases. torch's boolean
    attn_mask is True where attention is NOT allowed: the spec's mask is inverted for it."""
    torch = _torch()
    x_q, x_kv, w_q, w_k, w_v, w_o = args
    batched = x_q.ndim == 3
    q = _t(x_q if batched else x_q[None])
    kv = _t(x_kv if batched else x_kv[None])
    mask = None
    if bool_mask is not None:
        mask = torch.from_numpy(~bool_mask)
    elif is_causal:
        mask = torch.from_numpy(~_tril_allowed(x_q.shape[-2], x_kv.shape[-2]))
    out, _ = torch.nn.functional.multi_head_attention_forward(
        q.transpose(0, 1), kv.transpose(0, 1), kv.transpose(0, 1), x_q.shape[-1], num_heads,
        _t(np.concatenate([w_q, w_k, w_v])), None, None, None, False, 0.0, _t(w_o), None,
        training=False, need_weights=False, attn_mask=mask)
    out = out.transpose(0, 1).numpy()
    return out if batched else out[0]


@prop("multi_head_attention", "matches_torch", dtypes=ALL_DTYPES)
def mha_matches_torch_multi_head_attention_forward(impl, t):
    _torch()
    d_head = t.draw(st.integers(1, 3), label="d_head")
    num_heads = t.draw(st.integers(1, 3), label="num_heads")
    d_model = num_heads * d_head  # torch's MHA projects d_model → d_model
    batch = t.draw(st.sampled_from([(), (2,)]), label="batch")
    q_len = t.draw(st.integers(1, 4), label="q_len")
    k_len = t.draw(st.integers(1, 4), label="k_len")
    shapes = [(*batch, q_len, d_model), (*batch, k_len, d_model)] + [(d_model, d_model)] * 4
    args = [t.draw(cst.arrays(t.dtype, s, min_value=-1.0, max_value=1.0), label=f"a{i}")
            for i, s in enumerate(shapes)]
    kind = t.draw(st.sampled_from(["none", "bool", "causal"]), label="kind")
    mask = _bool_mask(t.draw, q_len, k_len) if kind == "bool" else None
    kwargs = {"num_heads": num_heads}
    if kind == "bool":
        kwargs["mask"] = t.on(mask)
    if kind == "causal":
        kwargs["is_causal"] = True
    got = t.np(impl(*t.on(*args), **kwargs))
    if kind == "bool":  # a fully masked query: zero output (torch 2.13 agrees, no NaN)
        assert np.all(got[..., ~mask.any(axis=-1), :] == 0)
    want = _torch_mha(args, num_heads, bool_mask=mask, is_causal=kind == "causal")
    np.testing.assert_allclose(got, want, rtol=t.tol.rtol, atol=_mha_atol(t, args))


@prop("multi_head_attention", "single_head_identity_is_sdpa", dtypes=ALL_DTYPES)
def mha_single_head_identity_is_sdpa_and_shape(impl, t):
    q, k, _ = t.draw(_qkv(t.dtype), label="qkv")
    x_q, x_kv = q[0], k[0]
    d = x_q.shape[-1]
    eye = np.eye(d, dtype=host_dtype(t.dtype))
    causal = t.draw(st.booleans(), label="is_causal")
    got = t.np(impl(*t.on(x_q, x_kv, eye, eye, eye, eye), num_heads=1, is_causal=causal))
    assert got.shape == x_q.shape
    want = t.np(spec.scaled_dot_product_attention(*t.on(x_q, x_kv, x_kv), is_causal=causal))
    t.close(got, want, what="MHA(h = 1, W = I) vs SDPA")


@prop("multi_head_attention", "gqa_equals_repeated_mha", dtypes=ALL_DTYPES)
def mha_grouped_query_equals_repeated_kv_heads(impl, t):
    args, num_heads, num_kv = t.draw(_mha_case(t.dtype), label="case")
    x_q, x_kv, w_q, w_k, w_v, w_o = args
    groups = num_heads // num_kv
    d_head = w_k.shape[0] // num_kv
    # K/V head j's rows, repeated for each of the `groups` query heads it serves
    rep = np.concatenate([np.tile(w[j * d_head:(j + 1) * d_head], (groups, 1))
                          for w in (w_k,) for j in range(num_kv)])
    rep_v = np.concatenate([np.tile(w_v[j * d_head:(j + 1) * d_head], (groups, 1))
                            for j in range(num_kv)])
    gqa = t.np(impl(*t.on(*args), num_heads=num_heads, num_kv_heads=num_kv))
    full = t.np(impl(*t.on(x_q, x_kv, w_q, rep, rep_v, w_o), num_heads=num_heads))
    assert gqa.shape == (*x_q.shape[:-1], w_o.shape[0])
    t.close(gqa, full, what="GQA vs MHA with repeated K/V heads")


@prop("multi_head_attention", "causal_no_future", dtypes=ALL_DTYPES)
def mha_causal_output_ignores_later_tokens(impl, t):
    args, num_heads, num_kv = t.draw(_mha_case(t.dtype), label="case")
    x = args[0]
    n = x.shape[-2]
    i = t.draw(st.integers(0, n - 1), label="i")
    x2 = x.copy()
    x2[..., i + 1:, :] = t.draw(cst.arrays(t.dtype, x[..., i + 1:, :].shape, min_value=-9,
                                           max_value=9), label="future")
    run = [impl(*t.on(xx, xx, *args[2:]), num_heads=num_heads, num_kv_heads=num_kv,
                is_causal=True) for xx in (x, x2)]
    a, b = (t.np(r)[..., : i + 1, :] for r in run)
    np.testing.assert_allclose(b, a, rtol=t.tol.rtol, atol=_mha_atol(t, (x, x, *args[2:])))


# --------------------------------------------------------------------------- KV cache
@prop("kv_cache_attention", "kv_cache_identity", dtypes=ALL_DTYPES)
def kv_cache_identity(impl, t):
    """Prefill a random-length prompt, then decode the rest one token at a time: the outputs,
    stacked, equal causal attention over the whole sequence; the caches are the full K and V."""
    q, k, v = t.draw(_qkv(t.dtype, max_len=6, same_len=True), label="qkv")
    n = q.shape[-2]
    prefill = t.draw(st.integers(0, n - 1), label="prefill")
    qb, kb, vb = t.on(q, k, v)
    xp, device = t.xp, t.backend.device
    cache_k = xp.zeros((q.shape[0], 0, k.shape[-1]), dtype=kb.dtype, device=device)
    cache_v = xp.zeros((q.shape[0], 0, v.shape[-1]), dtype=vb.dtype, device=device)
    outs = []
    bounds = ([0, prefill] if prefill else [0]) + list(range(prefill + 1, n + 1))
    for lo, hi in itertools.pairwise(bounds):
        out, cache_k, cache_v = impl(qb[:, lo:hi, :], kb[:, lo:hi, :], vb[:, lo:hi, :],
                                     cache_k, cache_v)
        assert tuple(cache_k.shape) == (q.shape[0], hi, k.shape[-1])
        outs.append(t.np(out))
    stepped = np.concatenate(outs, axis=-2)
    full = t.np(spec.scaled_dot_product_attention(qb, kb, vb, is_causal=True))
    _close_attention(t, stepped, full, _sdpa_floor(full, q, k, v),
                     what="token by token vs whole sequence")
    np.testing.assert_array_equal(t.backend.to_numpy(cache_k), k)
    np.testing.assert_array_equal(t.backend.to_numpy(cache_v), v)


@prop("kv_cache_attention", "cache_appends", "empty_cache_is_causal_sdpa", dtypes=ALL_DTYPES)
def kv_cache_appends_and_empty_cache_is_causal_sdpa(impl, t):
    q, k, v = t.draw(_qkv(t.dtype, same_len=True), label="qkv")
    past = t.draw(cst.arrays(t.dtype, (2, *k.shape[:-2], 3, max(k.shape[-1], v.shape[-1]))),
                  label="past")
    ck, cv = past[0, ..., : k.shape[-1]], past[1, ..., : v.shape[-1]]
    _, nk, nv = impl(*t.on(q, k, v, ck, cv))
    np.testing.assert_array_equal(t.backend.to_numpy(nk), np.concatenate([ck, k], axis=-2))
    np.testing.assert_array_equal(t.backend.to_numpy(nv), np.concatenate([cv, v], axis=-2))
    empty_k, empty_v = ck[..., :0, :], cv[..., :0, :]
    out0, _, _ = impl(*t.on(q, k, v, empty_k, empty_v))
    want = t.np(spec.scaled_dot_product_attention(*t.on(q, k, v), is_causal=True))
    t.close(out0, want, what="empty cache vs causal SDPA")


@prop("kv_cache_attention", "grouped_query", dtypes=ALL_DTYPES)
def kv_cache_grouped_query(impl, t):
    q, k, v = t.draw(_qkv(t.dtype, same_len=True), label="qkv")
    groups = t.draw(st.integers(2, 3), label="groups")
    qg = t.draw(cst.arrays(t.dtype, (q.shape[0] * groups, *q.shape[1:]), min_value=-2,
                           max_value=2), label="q grouped")
    ck, cv = k[..., :1, :], v[..., :1, :]
    out, nk, _ = impl(*t.on(qg, k, v, ck, cv))
    assert tuple(nk.shape) == (k.shape[0], k.shape[1] + 1, k.shape[2])  # only the K/V heads
    rep = [np.repeat(a, groups, axis=0) for a in (k, v, ck, cv)]
    want, _, _ = impl(*t.on(qg, *rep))
    t.close(out, t.np(want), what="GQA through the cache vs repeated K/V heads")


# --------------------------------------------------------------------------- cost
# attention_cost takes and returns Python integers: the checks do not depend on the dtype
# under test, so they run once per backend
@prop("attention_cost", "counts", "quadratic", dtypes=("float64",))
def attention_cost_counts_the_two_matmuls(impl, t):
    s = t.draw(st.integers(0, 4096), label="s")
    d_head = t.draw(st.integers(1, 256), label="d_head")
    h = t.draw(st.integers(1, 16), label="h")
    d = h * d_head
    cost = impl(s, d, num_heads=h)
    # per head: QKᵀ is (s × d_head)(d_head × s), AV is (s × s)(s × d_head): 2mnp FLOPs each
    per_head = 2 * s * d_head * s + 2 * s * s * d_head
    assert cost == {"flops": h * per_head, "memory": h * s * s}
    assert impl(2 * s, d, num_heads=h)["flops"] == 4 * cost["flops"]
    assert impl(2 * s, d, num_heads=h)["memory"] == 4 * cost["memory"]
    assert impl(s, 2 * d, num_heads=h)["flops"] == 2 * cost["flops"]


@prop("attention_cost", "counts", dtypes=("float64",), draws=False)
def attention_cost_examples(impl, t):
    assert impl(1024, 768) == {"flops": 4 * 1024**2 * 768, "memory": 1024**2}
    gpt3 = impl(2048, 12288, num_heads=96)
    assert gpt3["flops"] == 206_158_430_208 and gpt3["memory"] == 96 * 2048**2


@prop("scaled_dot_product_attention", "grouped_query", dtypes=ALL_DTYPES)
def sdpa_grouped_query_heads(impl, t):
    """k and v with h_kv heads for q's g·h_kv (multi-query attention at h_kv = 1): torch's
    SDPA (float64) with enable_gqa=True, and with each K/V head repeated g times (head j
    serving query heads j·g … (j+1)·g − 1), on the same inputs; causal or not."""
    torch = _torch()
    F = torch.nn.functional
    h_kv = t.draw(st.integers(1, 3), label="kv_heads")
    g = t.draw(st.integers(2, 3), label="groups")
    q_len, k_len = (t.draw(st.integers(1, 4), label=s) for s in ("q_len", "k_len"))
    d = t.draw(st.integers(1, 5), label="d")
    lead = t.draw(st.sampled_from([(), (2,)]), label="batch")
    q = t.draw(cst.arrays(t.dtype, (*lead, h_kv * g, q_len, d), min_value=-2, max_value=2),
               label="q")
    k = t.draw(cst.arrays(t.dtype, (*lead, h_kv, k_len, d), min_value=-2, max_value=2),
               label="k")
    v = t.draw(cst.arrays(t.dtype, (*lead, h_kv, k_len, d), min_value=-2, max_value=2),
               label="v")
    causal = t.draw(st.booleans(), label="is_causal")
    got = t.np(impl(*t.on(q, k, v), is_causal=causal))
    bias = {"attn_mask": _lower_right(q_len, k_len)} if causal else {}
    want = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), enable_gqa=True, **bias).numpy()
    repeated = F.scaled_dot_product_attention(
        _t(q), _t(np.repeat(k, g, axis=-3)), _t(np.repeat(v, g, axis=-3)), **bias).numpy()
    np.testing.assert_allclose(want, repeated, rtol=1e-12, atol=1e-12)  # torch against itself
    kq, kv = np.repeat(k, g, axis=-3), np.repeat(v, g, axis=-3)
    floor = _sdpa_floor(want, q, kq, kv, is_causal=causal)
    _close_attention(t, got, want, floor, what="grouped-query")
