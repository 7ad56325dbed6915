"""Tier P properties of §11 Language modelling and decoding, as checks of an implementation.

`impl` is the implementation under test with the spec's signature; other equations a check
needs as references come from `spec`. The errata of 002 §10.2.3 (nucleus sampling written
with "≤ p" and a division by p) each have a check below that the quoted form fails.
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
from conformance.properties import prop
from conformance.tolerances import Tol


def _host(t, values_):
    """Python literals as an array of the trial's dtype on the backend."""
    return t.on(np.asarray(values_, dtype=t.dtype))


def _sums_to_one(t, total, what):
    """A row of ≤ 3 kept entries sums to 1 within 8 eps (the dtype's atol): the kept mass is
    ≤ 2 roundings and each quotient one more, the host sum is float64."""
    t.close(total, 1.0, tol=Tol(rtol=0.0, atol=t.tol.atol), what=what)


# ------------------------------------------------------------------------- temperature_scale
@prop("temperature_scale", "unit_temperature", "cold_limit")
def temperature_scale_unit_and_cold_limit(impl, t):
    bound, hot_t = 10.0, 1e6
    z = t.draw(cst.logits(t.dtype, shape=(5,), bound=bound), label="z")
    top2 = np.sort(z.astype(np.float64))[-2:]
    assume(top2[1] - top2[0] > 1e-2)  # a unique maximum, by a margin the dtype resolves
    zb = t.on(z)
    np.testing.assert_array_equal(t.backend.to_numpy(impl(zb, temperature=1.0)), z)
    # T → 0: exp of (z_i − max)/T underflows to exactly 0 for every non-maximal logit
    cold = t.np(spec.softmax(impl(zb, temperature=1e-5)))
    np.testing.assert_array_equal(cold, np.eye(5)[np.argmax(z)])
    # T → ∞: |z_i/T| ≤ bound/T, so every entry is within a factor e^{±2·bound/T} of 1/5 (the
    # limit), plus the softmax's own rounding (the dtype's value tolerance)
    hot = t.np(spec.softmax(impl(zb, temperature=hot_t)))
    np.testing.assert_allclose(hot, np.full(5, 0.2),
                               rtol=math.expm1(2 * bound / hot_t) + t.tol.rtol)


# ------------------------------------------------------------------------------ top_k_filter
@prop("top_k_filter", "support_size", "sums_to_one", "identity_at_vocab", "keeps_largest")
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


@prop("top_k_filter", "support_size", draws=False)
def top_k_filter_ties_keep_exactly_k_lowest_indices(impl, t):
    uniform = _host(t, [[0.2] * 5, [0.1, 0.3, 0.3, 0.3, 0.0]])
    seconds = {1: [0, 1, 0, 0, 0], 2: [0, 1, 1, 0, 0], 3: [0, 1, 1, 1, 0], 4: [1, 1, 1, 1, 0]}
    for k, second in seconds.items():
        out = t.np(impl(uniform, k=k))
        np.testing.assert_array_equal(out[0] > 0, np.arange(5) < k, err_msg=f"k = {k}")
        np.testing.assert_array_equal(out[1] > 0, np.asarray(second, dtype=bool),
                                      err_msg=f"k = {k}")
        t.close(out[0][:k], np.full(k, 1 / k), what=f"tied mass, k = {k}")


@prop("top_k_filter", "nan_rows", draws=False)
def top_k_filter_propagates_nan_per_row(impl, t):
    p = _host(t, [[0.5, math.nan, 0.5], [0.2, 0.3, 0.5]])
    out = t.np(impl(p, k=2))
    assert np.all(np.isnan(out[0])), out
    assert np.all(np.isfinite(out[1]))
    _sums_to_one(t, np.sum(out[1]), "Σ top-k of the row without NaN")


# ------------------------------------------------------------------------------ top_p_filter
@prop("top_p_filter", "reaches_p", "minimal", "sums_to_one")
def top_p_filter_reaches_p_minimal_and_normalised(impl, t):
    vocab = t.draw(st.integers(1, 12), label="V")
    p = t.draw(cst.distributions(t.dtype, shape=(vocab,)), label="p")
    target = t.draw(st.floats(0.05, 0.999), label="p_target")
    out = t.np(impl(t.on(p), p=target))
    p64 = p.astype(np.float64)
    total = float(np.sum(p64))
    kept = out > 0
    slack = 8 * vocab * t.eps * total  # the spec's running sum rounds
    mass = float(np.sum(p64[kept]))
    assert mass >= target * total - slack, "the nucleus must reach p"
    smallest = float(np.min(p64[kept]))
    assert mass - smallest < target * total + slack, "the nucleus must be the smallest such set"
    t.close(np.sum(out), 1.0, what="Σ nucleus")
    t.close(out, np.where(kept, p64 / mass, 0.0), what="P / kept mass")
    lowest_kept = np.min(np.where(kept, p64, np.inf))
    assert np.all(p64[~kept] <= lowest_kept), "the nucleus holds the most probable tokens"


@prop("top_p_filter", "identity_at_one")
def top_p_filter_at_one_is_the_identity(impl, t):
    p = t.draw(cst.distributions("float64"), label="p").astype(t.dtype)
    out = t.np(impl(t.on(p), p=1.0))
    p64 = p.astype(np.float64)
    t.close(out, p64 / np.sum(p64, axis=-1, keepdims=True), what="p = 1")
    # every token is kept; a subnormal probability may come back as 0 where the library flushes
    # subnormals to zero (JAX on CPU: https://github.com/jax-ml/jax/issues/16200)
    normal = p >= np.finfo(t.dtype).tiny
    np.testing.assert_array_equal((out > 0)[normal], True)
    assert np.all(out[p == 0] == 0)


@prop("top_p_filter", "nan_rows", draws=False)
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


@prop("top_p_filter", "reaches_p", "minimal", draws=False)
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


@prop("top_p_filter", "sums_to_one", draws=False)
def top_p_divides_by_the_kept_mass_where_002_divides_by_p(impl, t):
    """Erratum 002 §10.2.3 (2/2): P'(tᵢ) = P(tᵢ)/Σ_{V_p} P, not P(tᵢ)/p (which sums to
    0.8/0.6 = 4/3 here)."""
    probs, target = [0.5, 0.3, 0.2], 0.6
    out = t.np(impl(_host(t, probs), p=target))
    t.close(out, [0.625, 0.375, 0.0], what="P / 0.8")
    _, quoted = _quoted_002_nucleus(np.asarray(probs), target)
    assert abs(np.sum(quoted) - 1) > 0.1, "the quoted normalisation is not a distribution"
    _sums_to_one(t, np.sum(out), "Σ nucleus")


# ------------------------------------------------------------------------------------ sample
@prop("sample", "frequencies", draws=False)
def sample_frequencies_match_probs_chi_square(impl, t):
    """n = 20 000 draws with fixed uniforms; Pearson's χ² against probs must not reject at the
    0.1 % level (the stated false-alarm rate of this check per seed and backend), and the same
    draws must reject a distribution that differs by 0.02 in two entries (the check's power)."""
    for seed in (0, 1):
        rng = np.random.default_rng(20240 + seed)
        probs = rng.dirichlet(np.ones(6)).astype(t.dtype)
        u = rng.random(20_000).astype(t.dtype)
        u = np.where(u >= 1, np.nextafter(np.asarray(1, t.dtype), np.asarray(0, t.dtype)), u)
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


@prop("sample", "never_zero")
def sample_never_draws_a_zero_probability_token(impl, t):
    p = t.draw(cst.distributions(t.dtype), label="p")
    u = t.draw(cst.arrays(t.dtype, p.shape[:-1], min_value=0.0, max_value=0.999999), label="u")
    idx = t.backend.to_numpy(impl(*t.on(p, u)))
    assert idx.shape == p.shape[:-1]
    assert np.all((idx >= 0) & (idx < p.shape[-1]))
    chosen = np.take_along_axis(p, idx[..., None], axis=-1)
    assert np.all(chosen > 0)


@prop("sample", "never_zero", draws=False)
def sample_u_extremes_and_broadcasting(impl, t):
    p = _host(t, [[0.0, 0.5, 0.0, 0.5, 0.0], [0.25, 0.25, 0.25, 0.25, 0.0]])
    below_one = float(np.nextafter(np.asarray(1, t.dtype), np.asarray(0, t.dtype)))
    u = _host(t, [[0.0, 0.0], [below_one, below_one]])
    np.testing.assert_array_equal(t.backend.to_numpy(impl(p, u)), [[1, 0], [3, 3]])


# ------------------------------------------------------------------------------------ greedy
@prop("greedy", "cold_sampling")
def greedy_is_sampling_at_zero_temperature(impl, t):
    z = t.draw(cst.logits(t.dtype, bound=10.0), label="z")
    ordered = np.sort(z.astype(np.float64), axis=-1)
    assume(np.all(ordered[..., -1] - ordered[..., -2] > 1e-2) if z.shape[-1] > 1 else True)
    u = t.draw(cst.arrays(t.dtype, z.shape[:-1], min_value=0.0, max_value=0.999), label="u")
    zb = t.on(z)
    g = t.backend.to_numpy(impl(zb))
    np.testing.assert_array_equal(g, np.argmax(z, axis=-1))
    # T = 1e-6: every non-maximal probability underflows to exactly 0 (gap/T ≥ 1e4)
    cold = spec.softmax(spec.temperature_scale(zb, temperature=1e-6))
    np.testing.assert_array_equal(t.backend.to_numpy(spec.sample(cold, t.on(u))), g)


@prop("greedy", "first_of_ties", draws=False)
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
        [host(p) for p in itertools.product(range(vocab), repeat=n)], dtype=t.dtype))
        for n in lengths}

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


@prop("beam_search", "width_one_is_greedy", draws=False)
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
        best = _exhaustive(lambda prefix, h=host: h(prefix).astype(t.dtype), [0], vocab,
                           steps)[:width]
        case = f"V = {vocab}, steps = {steps}, seed {seed}"
        np.testing.assert_array_equal(t.backend.to_numpy(seqs), [s for _, s in best],
                                      err_msg=case)
        t.close(scores, [-total / steps for total, _ in best], what=f"mean log P, {case}")


@prop("beam_search", "beats_greedy", draws=False)
def beam_search_beats_greedy_on_a_small_bigram_model(impl, t):
    """From token 0 greedy takes 1 (0.5) then 0 (0.4): 0.20; the best pair is 2 (0.4) then 2
    (0.9): 0.36. A beam of width 2 finds it; width 1 does not."""
    table = np.asarray([[0.1, 0.5, 0.4], [0.4, 0.3, 0.3], [0.05, 0.05, 0.9]])
    log_table = t.on(np.log(table).astype(t.dtype))

    def model(seqs):  # array code, so that it traces under jax.jit and torch.compile
        return t.xp.take(log_table, seqs[:, -1], axis=0)

    start = t.on(np.asarray([0], dtype=np.int64))
    wide, score = impl(model, start, beam_width=2, steps=2, return_scores=True)
    narrow = impl(model, start, beam_width=1, steps=2)
    np.testing.assert_array_equal(t.backend.to_numpy(wide)[0], [0, 2, 2])
    np.testing.assert_array_equal(t.backend.to_numpy(narrow)[0], [0, 1, 0])
    t.close(t.np(score)[0], math.log(0.36) / 2, what="score")
