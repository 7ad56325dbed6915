"""Tier P properties of §11 Language modelling and decoding, as checks of an implementation.

`impl` is the implementation under test with the spec's signature; other equations a check
needs as references come from `spec`. The errata of 002 §10.2.3 (nucleus sampling written
with "≤ p" and a division by p) each have a check below that the quoted form fails.

Low precision: the spec computes float16 and bfloat16 in float32 and rounds each result once
(ε/2 relative, half a subnormal step near 0); its decisions (which tokens are kept, which index
a uniform selects) are taken in float32 on the dtype's exact values. Every property whose
identity survives that runs in float16 and bfloat16 too (``dtypes=ALL_DTYPES``), with the slack
derived where it is used; the others say why not.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from scipy import stats

import spec
from conformance import strategies as cst
from conformance.precision import finfo, host_dtype
from conformance.properties import ALL_DTYPES, prop
from conformance.tolerances import Tol

#: float32's machine epsilon: the precision the low dtypes are computed in
_EPS32 = float(np.finfo(np.float32).eps)


def _host_array(t, values_):
    """Python literals as a host array of the trial's dtype (bfloat16: ml_dtypes')."""
    return np.asarray(values_, dtype=host_dtype(t.dtype))


def _host(t, values_):
    """Python literals as an array of the trial's dtype on the backend."""
    return t.on(_host_array(t, values_))


def _sums_to_one(t, total, what):
    """A row of ≤ 3 kept entries sums to 1 within 8 eps (the dtype's atol): the kept mass is
    ≤ 2 roundings and each quotient one more, the host sum is float64. A low dtype rounds each
    float32 quotient once more, ε/2 relative to it: ε/2 for the row, whose entries sum to 1."""
    atol = 8 * _EPS32 + t.eps / 2 if t.low else t.tol.atol
    t.close(total, 1.0, tol=Tol(rtol=0.0, atol=atol), what=what)


# ------------------------------------------------------------------------- temperature_scale
def _cold(t):
    """(T, gap): a temperature near 0 and the logit gap that makes T cold for the trial's
    dtype. float32 and float64: T = 1e-5 and gaps > 1e-2 (gap/T ≥ 1000). The low dtypes need
    |z|/T ≤ 1e4 inside float16's range (65,504), so T = 1e-3, and gaps > 0.5: z/T is rounded
    to the dtype (bfloat16's spacing at 1e4 is 64), leaving a gap ≥ 500 − 64 = 436, past
    float32's underflow of exp (−103.9), which the softmax (computed in float32) then reaches."""
    return (1e-3, 0.5) if t.low else (1e-5, 1e-2)


@prop("temperature_scale", "unit_temperature", "cold_limit", dtypes=ALL_DTYPES)
def temperature_scale_unit_and_cold_limit(impl, t):
    bound, hot_t = 10.0, 1e6
    cold_t, gap = _cold(t)
    z = t.draw(cst.logits(t.dtype, shape=(5,), bound=bound), label="z")
    top2 = np.sort(z.astype(np.float64))[-2:]
    assume(top2[1] - top2[0] > gap)  # a unique maximum, by a margin the dtype resolves
    zb = t.on(z)
    np.testing.assert_array_equal(t.backend.to_numpy(impl(zb, temperature=1.0)), z)
    # T → 0: exp of (z_i − max)/T underflows to exactly 0 for every non-maximal logit
    cold = t.np(spec.softmax(impl(zb, temperature=cold_t)))
    np.testing.assert_array_equal(cold, np.eye(5)[np.argmax(z)])
    # T → ∞: |z_i/T| ≤ bound/T, so every entry is within a factor e^{±2·bound/T} of 1/5 (the
    # limit), plus the softmax's own rounding (the dtype's value tolerance, which holds one
    # rounding to a low dtype); z/T rounded to the dtype moves the entries by ≤ ε·bound/T more
    hot = t.np(spec.softmax(impl(zb, temperature=hot_t)))
    np.testing.assert_allclose(hot, np.full(5, 0.2),
                               rtol=math.expm1(2 * bound / hot_t) * (1 + t.eps) + t.tol.rtol)


# ------------------------------------------------------------------------------ top_k_filter
# each kept entry is a float32 quotient rounded once: the dtype's tolerance (t.tol: one ulp
# plus float32's) holds it and the row sums; the kept set is decided on the dtype's values
@prop("top_k_filter", "support_size", "sums_to_one", "identity_at_vocab", "keeps_largest",
      dtypes=ALL_DTYPES)
def top_k_filter_properties(impl, t):
    p = t.draw(cst.distributions(t.dtype), label="p")
    vocab = p.shape[-1]
    k = t.draw(st.integers(1, vocab), label="k")
    out = t.np(impl(t.on(p), k=k))
    p64 = p.astype(np.float64)
    kept = out > 0
    # support: the k largest, so every positive input among them survives
    np.testing.assert_array_equal(np.sum(kept, axis=-1),
                                  np.minimum(k, np.sum(p64 > 0, axis=-1)))
    t.close(np.sum(out, axis=-1), np.ones(p.shape[:-1]), what="Σ top-k")
    # every kept entry ≥ every dropped entry
    lowest_kept = np.min(np.where(kept, p64, np.inf), axis=-1)
    highest_dropped = np.max(np.where(kept, -np.inf, p64), axis=-1)
    assert np.all(lowest_kept >= highest_dropped)
    # kept entries are the input over the kept mass
    mass = np.sum(np.where(kept, p64, 0.0), axis=-1, keepdims=True)
    t.close(out, np.where(kept, p64 / mass, 0.0), what="renormalised")
    full = t.np(impl(t.on(p), k=vocab))
    t.close(full, p64 / np.sum(p64, axis=-1, keepdims=True), what="k = V")


@prop("top_k_filter", "support_size", draws=False, dtypes=ALL_DTYPES)
def top_k_filter_ties_keep_exactly_k_lowest_indices(impl, t):
    uniform = _host(t, [[0.2] * 5, [0.1, 0.3, 0.3, 0.3, 0.0]])
    seconds = {1: [0, 1, 0, 0, 0], 2: [0, 1, 1, 0, 0], 3: [0, 1, 1, 1, 0], 4: [1, 1, 1, 1, 0]}
    for k, second in seconds.items():
        out = t.np(impl(uniform, k=k))
        np.testing.assert_array_equal(out[0] > 0, np.arange(5) < k, err_msg=f"k = {k}")
        np.testing.assert_array_equal(out[1] > 0, np.asarray(second, dtype=bool),
                                      err_msg=f"k = {k}")
        t.close(out[0][:k], np.full(k, 1 / k), what=f"tied mass, k = {k}")


@prop("top_k_filter", "nan_rows", draws=False, dtypes=ALL_DTYPES)
def top_k_filter_propagates_nan_per_row(impl, t):
    p = _host(t, [[0.5, math.nan, 0.5], [0.2, 0.3, 0.5]])
    out = t.np(impl(p, k=2))
    assert np.all(np.isnan(out[0])), out
    assert np.all(np.isfinite(out[1]))
    _sums_to_one(t, np.sum(out[1]), "Σ top-k of the row without NaN")


def _top_k_all_ties(p64, k):
    """Hugging Face's TopKLogitsWarper, written from its form: remove every entry below the
    k-th largest (torch.topk's values), keep the rest, renormalise."""
    kth = np.sort(p64, axis=-1)[..., -k][..., None]
    kept = np.where(p64 < kth, 0.0, p64)
    return kept / np.sum(kept, axis=-1, keepdims=True)


@prop("top_k_filter", "tie_variants", dtypes=ALL_DTYPES)
def top_k_filter_tie_variants(impl, t):
    """ties='all' equals an independent reference of that form (the entries ≥ the k-th
    largest), and keeps more than k exactly when the k-th and (k+1)-th largest tie, where the
    default keeps exactly k; on [0.4, 0.3, 0.3] with k = 2 the forms differ."""
    p = t.draw(cst.distributions(t.dtype), label="p")
    vocab = p.shape[-1]
    k = t.draw(st.integers(1, vocab), label="k")
    # ties: copy the k-th largest of each row onto another entry, so ties at the edge occur
    tie = t.draw(st.booleans(), label="tie")
    if tie and vocab > 1 and k < vocab:
        order = np.argsort(-p.astype(np.float64), axis=-1, kind="stable")
        rows = np.indices(p.shape[:-1])
        kth = (*rows, order[..., k - 1])
        nxt = (*rows, order[..., k])
        p = p.copy()
        p[nxt] = p[kth]
    p64 = p.astype(np.float64)
    got = t.np(impl(t.on(p), k=k, ties="all"))
    t.close(got, _top_k_all_ties(p64, k), what="ties='all' vs the ≥ k-th form")
    default = t.np(impl(t.on(p), k=k))
    ordered = np.sort(p64, axis=-1)[..., ::-1]
    tied_edge = (ordered[..., k - 1] == ordered[..., k]) if k < vocab else np.zeros(
        p.shape[:-1], dtype=bool)
    tied_edge &= ordered[..., k - 1] > 0
    np.testing.assert_array_equal(np.sum(got > 0, axis=-1) > np.sum(default > 0, axis=-1),
                                  tied_edge)
    edge = t.np(impl(_host(t, [0.4, 0.3, 0.3]), k=2, ties="all"))
    assert np.all(edge > 0) and np.sum(t.np(impl(_host(t, [0.4, 0.3, 0.3]), k=2)) > 0) == 2


# ------------------------------------------------------------------------------ top_p_filter
def _work_eps(t):
    """The machine epsilon of the precision the spec computes in: float32's for the low dtypes."""
    return _EPS32 if t.low else t.eps


# the nucleus is decided in the working precision (float32 for the low dtypes) on the dtype's
# exact values, so the slack of its running sum is the working precision's; the renormalised
# entries are float32 quotients rounded once, within the dtype's tolerance
@prop("top_p_filter", "reaches_p", "minimal", "sums_to_one", dtypes=ALL_DTYPES)
def top_p_filter_reaches_p_minimal_and_normalised(impl, t):
    vocab = t.draw(st.integers(1, 12), label="V")
    p = t.draw(cst.distributions(t.dtype, shape=(vocab,)), label="p")
    target = t.draw(st.floats(0.05, 0.999), label="p_target")
    out = t.np(impl(t.on(p), p=target))
    p64 = p.astype(np.float64)
    total = float(np.sum(p64))
    # which entries were kept: out > 0 (a kept entry is P/mass ≥ P, never flushed to 0 here:
    # every drawn positive P is at least the dtype's smallest subnormal)
    kept = out > 0
    slack = 8 * vocab * _work_eps(t) * total  # the spec's running sum rounds
    mass = float(np.sum(p64[kept]))
    assert mass >= target * total - slack, "the nucleus must reach p"
    smallest = float(np.min(p64[kept]))
    assert mass - smallest < target * total + slack, "the nucleus must be the smallest such set"
    t.close(np.sum(out), 1.0, what="Σ nucleus")
    t.close(out, np.where(kept, p64 / mass, 0.0), what="P / kept mass")
    lowest_kept = np.min(np.where(kept, p64, np.inf))
    assert np.all(p64[~kept] <= lowest_kept), "the nucleus holds the most probable tokens"


@prop("top_p_filter", "identity_at_one", dtypes=ALL_DTYPES)
def top_p_filter_at_one_is_the_identity(impl, t):
    p = t.draw(cst.distributions("float64"), label="p").astype(host_dtype(t.dtype))
    out = t.np(impl(t.on(p), p=1.0))
    p64 = p.astype(np.float64)
    t.close(out, p64 / np.sum(p64, axis=-1, keepdims=True), what="p = 1")
    # every token is kept; a subnormal probability may come back as 0 where the library flushes
    # subnormals to zero (JAX on CPU: https://github.com/jax-ml/jax/issues/16200)
    normal = p >= float(finfo(t.dtype).tiny)
    np.testing.assert_array_equal((out > 0)[normal], True)
    assert np.all(out[p == 0] == 0)


@prop("top_p_filter", "nan_rows", draws=False, dtypes=ALL_DTYPES)
def top_p_filter_propagates_nan_per_row(impl, t):
    p = _host(t, [[0.5, math.nan, 0.5], [0.2, 0.3, 0.5]])
    for target in (0.5, 1.0):
        out = t.np(impl(p, p=target))
        assert np.all(np.isnan(out[0])), (target, out)
        assert np.all(np.isfinite(out[1]))
        _sums_to_one(t, np.sum(out[1]), f"Σ nucleus of the row without NaN, p = {target}")


def _quoted_002_nucleus(p64, target):
    """002 §10.2.3 as written: V_p = {t : Σ_{v sorted} P(v) ≤ p}, P'(t) = P(t)/p."""
    order = np.argsort(-p64, kind="stable")
    keep = np.zeros(p64.shape, dtype=bool)
    keep[order[np.cumsum(p64[order]) <= target]] = True
    return keep, np.where(keep, p64 / target, 0.0)


@prop("top_p_filter", "reaches_p", "minimal", draws=False, dtypes=ALL_DTYPES)
def top_p_reaches_p_where_002_writes_at_most_p(impl, t):
    """Erratum 002 §10.2.3 (1/2): the nucleus is the smallest prefix with mass ≥ p; the quoted
    "Σ P(v) ≤ p" set is one token short here (empty in the second case) and fails this check."""
    for probs, target, expected_support in [
        ([0.5, 0.3, 0.2], 0.6, [True, True, False]),
        ([0.9, 0.06, 0.04], 0.5, [True, False, False]),
        ([0.1, 0.45, 0.45], 0.5, [False, True, True]),
    ]:
        out = t.np(impl(_host(t, probs), p=target))
        np.testing.assert_array_equal(out > 0, expected_support, err_msg=f"{probs}, p = {target}")
        quoted, _ = _quoted_002_nucleus(np.asarray(probs), target)
        assert not np.array_equal(quoted, np.asarray(expected_support)), "not told apart"


@prop("top_p_filter", "sums_to_one", draws=False, dtypes=ALL_DTYPES)
def top_p_divides_by_the_kept_mass_where_002_divides_by_p(impl, t):
    """Erratum 002 §10.2.3 (2/2): P'(tᵢ) = P(tᵢ)/Σ_{V_p} P, not P(tᵢ)/p (which sums to
    0.8/0.6 = 4/3 here)."""
    probs, target = [0.5, 0.3, 0.2], 0.6
    out = t.np(impl(_host(t, probs), p=target))
    exact = _host_array(t, probs).astype(np.float64)  # 0.3 and 0.2 as the dtype holds them
    t.close(out, np.where([True, True, False], exact / (exact[0] + exact[1]), 0.0),
            what="P / 0.8")
    _, quoted = _quoted_002_nucleus(np.asarray(probs), target)
    assert abs(np.sum(quoted) - 1) > 0.1, "the quoted normalisation is not a distribution"
    _sums_to_one(t, np.sum(out), "Σ nucleus")


def _nucleus_dropping_the_crossing_token(p64, target):
    """The "drop" form, written from its definition: the tokens sorted by probability (lower
    index first among ties) whose running mass, themselves included, stays ≤ p·Σ P, and at
    least the most probable one; renormalised by their own mass."""
    order = np.argsort(-p64, kind="stable")
    running = np.cumsum(p64[order])
    keep_sorted = running <= target * running[-1]
    keep_sorted[0] = True
    keep = np.zeros(p64.shape, dtype=bool)
    keep[order[keep_sorted]] = True
    kept = np.where(keep, p64, 0.0)
    return keep, kept / np.sum(kept)


@prop("top_p_filter", "crossing_variants", dtypes=ALL_DTYPES)
def top_p_filter_crossing_variants(impl, t):
    """crossing='drop' equals an independent reference of that form; it keeps exactly one token
    fewer than the default unless some prefix's mass equals p·Σ P (to within the running sum's
    rounding) or the default keeps only the top token. The distinguishing input [0.5, 0.3,
    0.2], p = 0.6: the default keeps two tokens, 'drop' one."""
    vocab = t.draw(st.integers(1, 12), label="V")
    p = t.draw(cst.distributions(t.dtype, shape=(vocab,)), label="p")
    target = t.draw(st.floats(0.05, 0.999), label="p_target")
    p64 = p.astype(np.float64)
    total = float(np.sum(p64))
    running = np.cumsum(np.sort(p64)[::-1])
    slack = 8 * vocab * _work_eps(t) * total  # the spec's running sum rounds
    assume(np.all(np.abs(running - target * total) > slack))  # no prefix on the boundary
    keep, want = _nucleus_dropping_the_crossing_token(p64, target)
    got = t.np(impl(t.on(p), p=target, crossing="drop"))
    np.testing.assert_array_equal(got > 0, keep & (p64 > 0))
    t.close(got, want, what="crossing='drop' vs its definition")
    default = t.np(impl(t.on(p), p=target))
    n_default, n_drop = np.sum(default > 0), np.sum(got > 0)
    assert n_drop == max(1, n_default - 1), (n_default, n_drop)
    edge = _host(t, [0.5, 0.3, 0.2])
    np.testing.assert_array_equal(t.np(impl(edge, p=0.6, crossing="drop")) > 0,
                                  [True, False, False])
    np.testing.assert_array_equal(t.np(impl(edge, p=0.6)) > 0, [True, True, False])


# ------------------------------------------------------------------------------------ sample
@prop("sample", "frequencies", draws=False, dtypes=ALL_DTYPES)
def sample_frequencies_match_probs_chi_square(impl, t):
    """n = 20 000 draws with fixed uniforms; Pearson's χ² against probs must not reject at the
    0.1 % level (the stated false-alarm rate of this check per seed and backend), and the same
    draws must reject a distribution that differs by 0.02 in two entries (the check's power).
    The probabilities are in the trial's dtype; the uniforms in float32 for the low dtypes
    (bfloat16 holds 128 values in [0.5, 1), a quantised uniform the χ² test would see)."""
    u_dtype = "float32" if t.low else t.dtype
    for seed in (0, 1):
        rng = np.random.default_rng(20240 + seed)
        probs = rng.dirichlet(np.ones(6)).astype(host_dtype(t.dtype))
        u = rng.random(20_000).astype(u_dtype)
        u = np.where(u >= 1, np.nextafter(np.asarray(1, u_dtype), np.asarray(0, u_dtype)), u)
        draws = t.backend.to_numpy(impl(*t.on(probs, u)))
        assert draws.shape == (20_000,) and draws.dtype.kind in "iu"
        counts = np.bincount(draws, minlength=6)
        p64 = probs.astype(np.float64) / np.sum(probs.astype(np.float64))
        expected = 20_000 * p64
        statistic = float(np.sum((counts - expected) ** 2 / expected))
        p_value = float(stats.chi2.sf(statistic, df=5))
        assert p_value > 1e-3, (f"seed {seed}: χ² = {statistic:.1f} (p = {p_value:.2e}) "
                                f"rejects the sampler")
        wrong = p64.copy()
        i, j = np.argsort(wrong)[-2:]
        wrong[i] -= 0.02
        wrong[j] += 0.02
        wrong_stat = float(np.sum((counts - 20_000 * wrong) ** 2 / (20_000 * wrong)))
        assert stats.chi2.sf(wrong_stat, df=5) < 1e-3, f"seed {seed}: the check has no power"


@prop("sample", "never_zero", dtypes=ALL_DTYPES)
def sample_never_draws_a_zero_probability_token(impl, t):
    p = t.draw(cst.distributions(t.dtype), label="p")
    u = t.draw(cst.arrays(t.dtype, p.shape[:-1], min_value=0.0, max_value=0.999999), label="u")
    idx = t.backend.to_numpy(impl(*t.on(p, u)))
    assert idx.shape == p.shape[:-1]
    assert np.all((idx >= 0) & (idx < p.shape[-1]))
    chosen = np.take_along_axis(p, idx[..., None], axis=-1)
    assert np.all(chosen > 0)


@prop("sample", "never_zero", draws=False, dtypes=ALL_DTYPES)
def sample_u_extremes_and_broadcasting(impl, t):
    p = _host(t, [[0.0, 0.5, 0.0, 0.5, 0.0], [0.25, 0.25, 0.25, 0.25, 0.0]])
    below_one = 1 - float(finfo(t.dtype).epsneg)  # the largest value of the dtype below 1
    u = _host(t, [[0.0, 0.0], [below_one, below_one]])
    np.testing.assert_array_equal(t.backend.to_numpy(impl(p, u)), [[1, 0], [3, 3]])


@prop("sample", "uniforms_of_any_dtype", draws=False, dtypes=ALL_DTYPES)
def sample_uniforms_of_any_float_dtype(impl, t):
    """probs in the trial's dtype, u in every float dtype the backend has: the draw is the exact
    inverse CDF at u's own value (compared in the wider precision, never u rounded to probs'
    dtype). With a uniform distribution over 1,000 tokens and 4,000 float32 uniforms on a
    grid, every token is drawn (bfloat16 uniforms would reach at most a few hundred), each
    exactly where ⌊1000·u⌋ says, up to the CDF's rounding at the steps."""
    n = 1000
    probs = _host(t, np.full(n, 1 / n))
    p_exact = float(np.asarray(1 / n, dtype=host_dtype(t.dtype)))  # each entry as stored
    grid = (np.arange(4 * n) + 0.5) / (4 * n)  # 0.000125 … 0.999875, away from the steps
    for u_dtype in [d for d in ("float16", "bfloat16", "float32", "float64")
                    if d in t.backend.float_dtypes]:
        u_host = grid.astype(host_dtype(u_dtype))
        u_host = u_host[u_host.astype(np.float64) < 1]
        draws = t.backend.to_numpy(impl(probs, t.on(u_host)))
        want = np.floor(u_host.astype(np.float64) * n).astype(np.int64)  # equal masses
        assert p_exact > 0
        # the CDF in the working precision misplaces a step by ≤ n·ε_work relative: a u that
        # close to a step may go either way; every other draw is exact
        work = max(_work_eps(t), 2.0**-23 if u_dtype in ("float16", "bfloat16") else
                   float(finfo(u_dtype).eps))
        near = np.abs(u_host.astype(np.float64) * n - np.round(u_host.astype(np.float64) * n))
        sure = near > 2 * n * work * n
        np.testing.assert_array_equal(draws[sure], want[sure], err_msg=f"u in {u_dtype}")
        if u_dtype in ("float32", "float64"):
            assert len(np.unique(draws)) == n, f"u in {u_dtype}: {len(np.unique(draws))} tokens"


# ------------------------------------------------------------------------------------ greedy
@prop("greedy", "cold_sampling", dtypes=ALL_DTYPES)
def greedy_is_sampling_at_zero_temperature(impl, t):
    cold_t, gap = _cold(t) if t.low else (1e-6, 1e-2)
    z = t.draw(cst.logits(t.dtype, bound=10.0), label="z")
    ordered = np.sort(z.astype(np.float64), axis=-1)
    assume(np.all(ordered[..., -1] - ordered[..., -2] > gap) if z.shape[-1] > 1 else True)
    u = t.draw(cst.arrays(t.dtype, z.shape[:-1], min_value=0.0, max_value=0.999), label="u")
    zb = t.on(z)
    g = t.backend.to_numpy(impl(zb))
    np.testing.assert_array_equal(g, np.argmax(z, axis=-1))
    # every non-maximal probability underflows to exactly 0 (float32/64: T = 1e-6, gap/T ≥
    # 1e4; the low dtypes: see _cold)
    cold = spec.softmax(spec.temperature_scale(zb, temperature=cold_t))
    np.testing.assert_array_equal(t.backend.to_numpy(spec.sample(cold, t.on(u))), g)


@prop("greedy", "first_of_ties", draws=False, dtypes=ALL_DTYPES)
def greedy_ties_go_to_the_lowest_index(impl, t):
    z = _host(t, [[1.0, 3.0, 3.0, 0.0], [-math.inf, -1.0, -1.0, -1.0]])
    np.testing.assert_array_equal(t.backend.to_numpy(impl(z)), [1, 1])


# ------------------------------------------------------------------------------- beam_search
def _prefix_model(t, vocab, seed, lengths):
    """A model whose next-token distribution depends on the whole prefix (seeded by it), and
    its host lookup prefix → log-probabilities. The model is array code (a table per prefix
    length in `lengths`, indexed by the prefix read as a base-`vocab` number), so it traces
    under jax.jit and torch.compile as beam_search calls it."""

    def host(prefix):
        logits = np.random.default_rng([seed, *[s + 1 for s in prefix]]).normal(0, 2, vocab)
        return logits - np.log(np.sum(np.exp(logits)))

    tables = {n: t.on(np.asarray(
        [host(p) for p in itertools.product(range(vocab), repeat=n)],
        dtype=host_dtype(t.dtype))) for n in lengths}

    def log_probs(seqs):
        code = seqs[:, 0]
        for j in range(1, seqs.shape[1]):
            code = code * vocab + seqs[:, j]
        return t.xp.take(tables[seqs.shape[1]], code, axis=0)

    return log_probs, host


def _exhaustive(model_cache_fn, start, vocab, steps):
    scored = []
    for cont in itertools.product(range(vocab), repeat=steps):
        seq, total = list(start), 0.0
        for tok in cont:
            total += float(model_cache_fn(tuple(seq))[tok])
            seq.append(tok)
        scored.append((-total, seq))
    scored.sort()
    return scored


# in the low dtypes the beam ranks float32 sums of ≤ 4 of the dtype's log-probabilities, which
# float32 holds exactly (24 bits span a bfloat16's or float16's values over these ranges), so
# its one beam follows greedy's argmax exactly
@prop("beam_search", "width_one_is_greedy", draws=False, dtypes=ALL_DTYPES)
def beam_search_of_width_one_is_greedy(impl, t):
    for seed in (0, 1, 2):
        model, _ = _prefix_model(t, vocab=5, seed=seed, lengths=range(2, 6))
        start = t.on(np.asarray([3, 1], dtype=np.int64))
        beam = t.backend.to_numpy(impl(model, start, beam_width=1, steps=4))
        seq = t.on(np.asarray([[3, 1]], dtype=np.int64))
        for _ in range(4):
            tok = t.backend.to_numpy(spec.greedy(model(seq)))
            seq = t.on(np.concatenate([t.backend.to_numpy(seq), tok[:, None]], axis=1))
        np.testing.assert_array_equal(beam, t.backend.to_numpy(seq), err_msg=f"seed {seed}")


# float32 and float64 only: log-probabilities rounded to bfloat16 (8 bits) or float16 tie
# between distinct continuations, and the beam breaks a tie by beam rank while the exhaustive
# ranking breaks it by the sequence: both right, not comparable
@prop("beam_search", "exhaustive", draws=False)
def beam_search_finds_the_exhaustive_optimum(impl, t):
    """With beam_width = V^(steps−1) nothing is pruned before the last step, so the kept beams
    are exactly the best V^(steps−1) of all V^steps continuations, ranked by mean log P."""
    for vocab, steps, seed in [(3, 3, 0), (3, 3, 1), (2, 4, 2), (4, 2, 3)]:
        model, host = _prefix_model(t, vocab=vocab, seed=seed, lengths=range(1, steps + 1))
        width = vocab ** (steps - 1)
        start = np.asarray([0], dtype=np.int64)
        seqs, scores = impl(model, t.on(start), beam_width=width, steps=steps,
                            return_scores=True)
        best = _exhaustive(lambda prefix, h=host: h(prefix).astype(host_dtype(t.dtype)), [0],
                           vocab, steps)[:width]
        case = f"V = {vocab}, steps = {steps}, seed {seed}"
        np.testing.assert_array_equal(t.backend.to_numpy(seqs), [s for _, s in best],
                                      err_msg=case)
        t.close(scores, [-total / steps for total, _ in best], what=f"mean log P, {case}")


@prop("beam_search", "beats_greedy", draws=False, dtypes=ALL_DTYPES)
def beam_search_beats_greedy_on_a_small_bigram_model(impl, t):
    """From token 0 greedy takes 1 (0.5) then 0 (0.4): 0.20; the best pair is 2 (0.4) then 2
    (0.9): 0.36. A beam of width 2 finds it; width 1 does not."""
    table = np.asarray([[0.1, 0.5, 0.4], [0.4, 0.3, 0.3], [0.05, 0.05, 0.9]])
    log_table = t.on(np.log(table).astype(host_dtype(t.dtype)))

    def model(seqs):  # array code, so that it traces under jax.jit and torch.compile
        return t.xp.take(log_table, seqs[:, -1], axis=0)

    start = t.on(np.asarray([0], dtype=np.int64))
    wide, score = impl(model, start, beam_width=2, steps=2, return_scores=True)
    narrow = impl(model, start, beam_width=1, steps=2)
    np.testing.assert_array_equal(t.backend.to_numpy(wide)[0], [0, 2, 2])
    np.testing.assert_array_equal(t.backend.to_numpy(narrow)[0], [0, 1, 0])
    t.close(t.np(score)[0], math.log(0.36) / 2, what="score")


@prop("beam_search", "int64_sequences", draws=False, dtypes=ALL_DTYPES)
def beam_search_start_of_any_integer_width(impl, t):
    """A model over 300 tokens whose best next token is 299, from starts of every integer dtype
    the backend has (uint8 … int64): the sequences are int64, the start's values as written and
    token 299 kept (a uint8 sequence would wrap it to 43); the model sees int64 sequences."""
    vocab = 300
    table = np.full((vocab, vocab), -10.0)
    table[:, vocab - 1] = -0.1
    table[:, 7] = -1.0
    log_table = t.on(table.astype(host_dtype(t.dtype)))
    seen = []

    def model(seqs):
        seen.append(str(seqs.dtype))
        return t.xp.take(log_table, seqs[:, -1], axis=0)

    names = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"]
    for name in names:
        if not hasattr(t.xp, name):
            continue
        try:
            start = t.backend.asarray(np.asarray([5, 2], dtype=name), dtype=name)
        except (TypeError, ValueError):  # a width the library cannot hold (torch's uint64)
            continue
        seqs = t.backend.to_numpy(impl(model, start, beam_width=2, steps=2))
        assert seqs.dtype == np.int64, f"{name} start gave {seqs.dtype} sequences"
        np.testing.assert_array_equal(seqs[0], [5, 2, vocab - 1, vocab - 1], err_msg=name)
        np.testing.assert_array_equal(seqs[1], [5, 2, vocab - 1, 7], err_msg=name)
    assert seen and all("int64" in d for d in seen), seen
