r"""Tier R oracles for §9 Attention: attention weights and scaled dot-product attention in mpmath.

Written independently of ``spec`` (nothing from it is imported): every input element is taken
exactly as an mpf, scores are exact dot products scaled by the *exact* 1/√d_k (the spec rounds
the scale to the input's dtype: that rounding is part of the error it is judged on), the
softmax runs at 50 digits, and only the final value is rounded to float64.

Conventions, as the spec's docstrings: leading (batch, head) dimensions of q, k, v and the mask
broadcast; a boolean mask is True where a query may attend; a float mask is added to the
scores; ``is_causal`` allows key j for query i iff j ≤ i + (k_len − q_len) (bottom-right);
a query with no allowed finite score gets all-zero weights and a zero output.

Floors (what an error is measured against). First-order rounding analysis with unit roundoff
u, for one query row with S = max_j (scale·Σ_l |q_l k_jl| + |m_j|):

* the computed score has |δs_j| ≤ (d_k + 3)·u·S (dot product γ_{d_k}, the scale's rounding,
  the product, the mask's addition);
* softmax turns that into |δw_j| ≤ w_j·2·max|δs| (∂ log w_j/∂s = e_j − w), and its own
  evaluation adds u·(2S + k_len + 3)·w_j (s − max rounded, exp, the sum, the division);
* so |δw_j| ≤ w_max·u·[(2d_k + 8)·max(1, S) + k_len + 3], less than 2 units in the last place
  at the floor w_max·[(d_k + 4)·max(1, S) + k_len] (a spacing exceeds u times the magnitude);
* the output o_c = Σ_j w_j v_jc adds γ_{k_len}·Σ_j w_j|v_jc|, so |δo_c| is below 2 units at
  V_c·[(d_k + 4)·max(1, S) + 2·k_len], V_c = max_j |v_jc| (≥ |o_c|, a convex combination).

The ulp budgets at these floors (4: that bound of 2, doubled for exp implementations with up
to 2-ulp error) are filed with the records (conformance/records/attention.py).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

from .mp import DPS
from .mp import f64 as _f64

__all__ = ["FLOORS", "ORACLES"]



def _broadcast(q, k, v, mask):
    """q, k (and v, mask) broadcast to a common batch shape: (batch, q (B, Lq, D), k, v, mask)."""
    q, k = np.asarray(q), np.asarray(k)
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2],
                                *(() if v is None else (np.shape(v)[:-2],)),
                                *(() if mask is None else (np.shape(mask)[:-2],)))
    q = np.broadcast_to(q, (*batch, *q.shape[-2:]))
    k = np.broadcast_to(k, (*batch, *k.shape[-2:]))
    if v is not None:
        v = np.asarray(v)
        v = np.broadcast_to(v, (*batch, *v.shape[-2:]))
    if mask is not None:
        mask = np.broadcast_to(np.asarray(mask), (*batch, q.shape[-2], k.shape[-2]))
    return batch, q, k, v, mask


def _allowed(i, j, q_len, k_len, mask_row, is_causal, alignment="lower_right") -> bool:
    offset = k_len - q_len if alignment == "lower_right" else 0
    if is_causal and j > i + offset:
        return False
    return not (mask_row is not None and mask_row.dtype == np.bool_ and not mask_row[j])


def _weights_row(q_row, k, mask_row, i, q_len, is_causal, scale, alignment="lower_right"):
    """The exact softmax weights (mpf list) of one query row."""
    k_len = k.shape[0]
    scores = []
    for j in range(k_len):
        if not _allowed(i, j, q_len, k_len, mask_row, is_causal, alignment):
            scores.append(None)
            continue
        s = scale * mpmath.fsum(mpmath.mpf(float(a)) * mpmath.mpf(float(b))
                                for a, b in zip(q_row, k[j]))
        if mask_row is not None and mask_row.dtype != np.bool_:
            s = s + mpmath.mpf(float(mask_row[j]))
        scores.append(None if s == -mpmath.inf else s)
    live = [s for s in scores if s is not None]
    if not live:
        return [mpmath.mpf(0)] * k_len
    if any(mpmath.isnan(s) for s in live) or any(s == mpmath.inf for s in live):
        return [mpmath.mpf("nan")] * k_len
    m = max(live)
    e = [mpmath.mpf(0) if s is None else mpmath.exp(s - m) for s in scores]
    total = mpmath.fsum(e)
    return [x / total for x in e]


def _scale(scale, d_k):
    return 1 / mpmath.sqrt(d_k) if scale is None else mpmath.mpf(float(scale))


def attention_weights(q, k, /, *, mask=None, is_causal=False, scale=None,
                      causal_alignment="lower_right"):
    with mpmath.workdps(DPS):
        batch, q, k, _, mask = _broadcast(q, k, None, mask)
        q_len, k_len = q.shape[-2], k.shape[-2]
        sc = _scale(scale, q.shape[-1])
        out = np.empty((*batch, q_len, k_len), dtype=np.float64)
        for b in np.ndindex(batch):
            for i in range(q_len):
                w = _weights_row(q[b][i], k[b], None if mask is None else mask[b][i], i, q_len,
                                 is_causal, sc, causal_alignment)
                out[(*b, i)] = [_f64(x) for x in w]
        return out


def scaled_dot_product_attention(q, k, v, /, *, mask=None, is_causal=False, scale=None,
                                 causal_alignment="lower_right"):
    with mpmath.workdps(DPS):
        batch, q, k, v, mask = _broadcast(q, k, v, mask)
        q_len, d_v = q.shape[-2], v.shape[-1]
        sc = _scale(scale, q.shape[-1])
        out = np.empty((*batch, q_len, d_v), dtype=np.float64)
        for b in np.ndindex(batch):
            for i in range(q_len):
                w = _weights_row(q[b][i], k[b], None if mask is None else mask[b][i], i, q_len,
                                 is_causal, sc, causal_alignment)
                # the sum runs over the attended keys: a key of weight 0 contributes nothing,
                # whatever its value (an ∞ there is not read, so 0·∞ never arises)
                out[(*b, i)] = [
                    _f64(mpmath.fsum(wj * mpmath.mpf(float(v[b][j][c]))
                                     for j, wj in enumerate(w) if wj != 0))
                    for c in range(d_v)
                ]
        return out


ORACLES = {f.__name__: f for f in (attention_weights, scaled_dot_product_attention)}


# ---------------------------------------------------------------------------------------------
def _score_size(args, kwargs):
    """S per query row, (batch, q_len, 1): max_j scale·Σ_l |q_l k_jl| + |m_j| (finite m)."""
    q, k = (np.abs(np.asarray(a, dtype=np.float64)) for a in args[:2])
    scale = kwargs.get("scale")
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else abs(float(scale))
    s = scale * (q @ np.swapaxes(k, -1, -2))
    mask = kwargs.get("mask")
    if mask is not None and np.asarray(mask).dtype != np.bool_:
        m = np.abs(np.asarray(mask, dtype=np.float64))
        s = s + np.where(np.isfinite(m), m, 0.0)
    return np.maximum(1.0, np.max(s, axis=-1, keepdims=True)), q.shape[-1], k.shape[-2]


def _weights_floor(reference, args, kwargs):
    size, d_k, k_len = _score_size(args, kwargs)
    w_max = np.max(np.abs(reference), axis=-1, keepdims=True) if reference.size else 0.0
    return w_max * ((d_k + 4) * size + k_len)


def _sdpa_floor(reference, args, kwargs):
    size, d_k, k_len = _score_size(args, kwargs)
    v = np.abs(np.asarray(args[2], dtype=np.float64))
    # the finite values only: an ∞ reaches just the queries that attend it, where the result
    # is non-finite and judged as such; the other queries' outputs are sums of finite values
    v = np.where(np.isfinite(v), v, 0.0)
    v_max = np.max(v, axis=-2, keepdims=True) if v.shape[-2] else np.zeros(v.shape)[..., :1, :]
    return v_max * ((d_k + 4) * size + 2 * k_len)


#: see the module docstring for the rounding analysis behind each floor
FLOORS = {
    "attention_weights": _weights_floor,  # normwise per row, scaled by the scores' size
    "scaled_dot_product_attention": _sdpa_floor,  # per value column, scaled likewise
}
