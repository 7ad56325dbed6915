"""Tier P properties of §9 Attention, as checks of an implementation.

`impl` is the implementation under test with the spec's signature; other equations a check
needs as references come from `spec`. The checks compare against identities, NumPy
recomputations and PyTorch's own kernels (``scaled_dot_product_attention``,
``multi_head_attention_forward``, float64 on the CPU, imported inside the check), within
tolerances derived from the same rounding analysis as the tier-R floors
(conformance/oracles_attention.py) and budgets (conformance/records/attention.py).
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
from conformance.properties import prop


def _close_attention(t, got, want, floor, *, what, computations=2):
    """|got − want| within `computations` × the tier-R budget at the oracle's floor, plus the
    dtype's relative tolerance. The floor carries the scores' conditioning (see
    oracles_attention); two computations (spec and a reference, both rounded) get 2×."""
    budget = records.ulp_budget("scaled_dot_product_attention", t.dtype)
    floor = np.maximum(np.broadcast_to(floor, np.shape(want)), np.finfo(t.dtype).tiny)
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


# --------------------------------------------------------------------------- weights
@prop("attention_weights", "rows_sum_to_one", "causal_lower_triangular", "fully_masked_row_zero")
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
    # k_len weights, each within ~2 ulps of a value ≤ 1 (exp and the division), summed with
    # up to k_len roundings: 4ε per key
    np.testing.assert_allclose(sums[..., live], 1.0, rtol=0, atol=k_len * 4 * t.eps)
    assert np.all(sums[..., ~live] == 0), "a fully masked row is not all zero"


def _bool_equals_additive(impl, t, with_v: bool):
    q, k, v = t.draw(_qkv(t.dtype), label="qkv")
    mask = _bool_mask(t.draw, q.shape[-2], k.shape[-2])
    additive = np.where(mask, 0.0, -np.inf).astype(t.dtype)
    qb, kb, vb, mb, ab = t.on(q, k, v, mask, additive)
    args = (qb, kb, vb) if with_v else (qb, kb)
    with_bool = t.np(impl(*args, mask=mb))
    with_add = t.np(impl(*args, mask=ab))
    t.close(with_add, with_bool, what=f"{t.equation}: additive vs boolean mask")
    assert not np.any(np.isnan(with_add))


@prop("attention_weights", "bool_equals_additive")
def attention_weights_boolean_and_additive_masks_agree(impl, t):
    _bool_equals_additive(impl, t, with_v=False)


def _dead_row_inputs(dtype):
    """Random q, k, v (seed 3) and a mask whose second query row allows no key, as a boolean
    mask and as its 0/−∞ additive twin."""
    rng = np.random.default_rng(3)
    q, k, v = (rng.normal(size=s).astype(dtype) for s in ((2, 3, 4), (2, 5, 4), (2, 5, 3)))
    dead = np.ones((3, 5), dtype=bool)
    dead[1] = False
    return q, k, v, (dead, np.where(dead, 0.0, -np.inf).astype(dtype))


@prop("attention_weights", "fully_masked_row_zero", draws=False)
def attention_weights_fully_masked_rows_are_zero_not_nan(impl, t):
    q, k, _, masks = _dead_row_inputs(t.dtype)
    for mask in masks:
        qb, kb, mb = t.on(q, k, mask)
        w = t.np(impl(qb, kb, mask=mb))
        assert np.all(w[:, 1] == 0) and not np.any(np.isnan(w))
        # the live rows sum to 1: 5 keys, 4ε per key as in the rows check above
        assert np.all(np.abs(np.sum(w[:, [0, 2]], -1) - 1) < 5 * 4 * t.eps)


# --------------------------------------------------------------------------- SDPA
@prop("scaled_dot_product_attention", "bool_equals_additive")
def sdpa_boolean_and_additive_masks_agree(impl, t):
    _bool_equals_additive(impl, t, with_v=True)


@prop("scaled_dot_product_attention", "fully_masked_row_zero", draws=False)
def sdpa_fully_masked_rows_are_zero_not_nan(impl, t):
    q, k, v, masks = _dead_row_inputs(t.dtype)
    for mask in masks:
        qb, kb, vb, mb = t.on(q, k, v, mask)
        o = t.np(impl(qb, kb, vb, mask=mb))
        assert np.all(o[:, 1] == 0) and np.all(np.isfinite(o))
    # causal with q_len > k_len: the first q_len − k_len queries see no key at all
    o = t.np(impl(*t.on(q, k[:, :2], v[:, :2]), is_causal=True))
    assert np.all(o[:, 0] == 0) and np.all(np.isfinite(o))


@prop("scaled_dot_product_attention", "query_permutation_equivariant",
      "key_value_permutation_invariant")
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


@prop("scaled_dot_product_attention", "convex_hull")
def sdpa_output_in_convex_hull_of_values(impl, t):
    q, k, v = t.draw(_qkv(t.dtype, bound=5.0), label="qkv")
    causal = t.draw(st.booleans(), label="is_causal")
    o = t.np(impl(*t.on(q, k, v), is_causal=causal))
    allowed = _tril_allowed(q.shape[-2], k.shape[-2]) if causal else np.ones(
        (q.shape[-2], k.shape[-2]), dtype=bool)
    v64 = v.astype(np.float64)
    slack = 4 * k.shape[-2] * t.eps * np.max(np.abs(v64))  # rounding of Σ_j w_j v_j
    for i in range(q.shape[-2]):
        seen = v64[:, allowed[i]]  # (h, visible keys, d_v)
        if seen.shape[1] == 0:
            assert np.all(o[:, i] == 0)
            continue
        assert np.all(o[:, i] >= np.min(seen, axis=1) - slack)
        assert np.all(o[:, i] <= np.max(seen, axis=1) + slack)


@prop("scaled_dot_product_attention", "causal_no_future")
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


@prop("scaled_dot_product_attention", "matches_torch")
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
        add = np.where(mask, 0.0, -np.inf).astype(t.dtype)
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


@prop("scaled_dot_product_attention", "matches_torch", "fully_masked_row_zero", draws=False)
def sdpa_fully_masked_row_and_alignment_against_torch(impl, t):
    """torch 2.13 returns zeros for a fully masked row (boolean and −∞ additive), as the spec;
    for k_len > q_len torch's is_causal=True aligns top-left and differs from the spec's
    bottom-right causal attention, which equals torch's causal_lower_right."""
    torch = _torch()
    F = torch.nn.functional
    rng = np.random.default_rng(7)
    q, k, v = (rng.normal(size=s) for s in ((2, 2, 4), (2, 5, 4), (2, 5, 3)))
    mask = np.ones((2, 5), dtype=bool)
    mask[0] = False
    qb, kb, vb, mb = t.on(q.astype(t.dtype), k.astype(t.dtype), v.astype(t.dtype), mask)
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
    return max(scale, float(np.finfo(args[0].dtype).tiny))


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


@prop("multi_head_attention", "matches_torch")
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


@prop("multi_head_attention", "single_head_identity_is_sdpa")
def mha_single_head_identity_is_sdpa_and_shape(impl, t):
    q, k, _ = t.draw(_qkv(t.dtype), label="qkv")
    x_q, x_kv = q[0], k[0]
    d = x_q.shape[-1]
    eye = np.eye(d, dtype=t.dtype)
    causal = t.draw(st.booleans(), label="is_causal")
    got = t.np(impl(*t.on(x_q, x_kv, eye, eye, eye, eye), num_heads=1, is_causal=causal))
    assert got.shape == x_q.shape
    want = t.np(spec.scaled_dot_product_attention(*t.on(x_q, x_kv, x_kv), is_causal=causal))
    t.close(got, want, what="MHA(h = 1, W = I) vs SDPA")


@prop("multi_head_attention", "gqa_equals_repeated_mha")
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


@prop("multi_head_attention", "causal_no_future")
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
@prop("kv_cache_attention", "kv_cache_identity")
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


@prop("kv_cache_attention", "cache_appends", "empty_cache_is_causal_sdpa")
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


@prop("kv_cache_attention", "grouped_query")
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
