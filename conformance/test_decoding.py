"""§11 Language modelling and decoding: tiers S, P and D.

Tier S runs the spec's own code on SymPy expressions (once, independent of the backend);
tiers P and D run on every selected backend and dtype. The errata of 002 §10.2.3 (nucleus
sampling written with "≤ p" and a division by p) each have a test below that the quoted form
fails. Tiers X, E and R live in test_tiers.py.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy import stats

import spec
from conformance import derivatives, symbolic
from conformance import strategies as cst
from conformance.helpers import assert_close, to_backend


def _np(backend, x):
    return np.asarray(backend.to_numpy(x))


def _host(backend, dtype, values_):
    return to_backend(backend, np.asarray(values_, dtype=dtype))


# ============================================================================ tier S
@pytest.mark.spec("temperature_scale", tier="S")
@pytest.mark.parametrize("temperature", [0.5, 2.0, 0.7])
def test_temperature_scale_is_division_symbolic(temperature):
    z = symbolic.symbols("z", (3,))
    out = symbolic.exprs(spec.temperature_scale(z, temperature=temperature))
    symbolic.assert_equal(out, [zi / sp.nsimplify(temperature) for zi in symbolic.flat(z)],
                          "z / T")
    same = symbolic.exprs(spec.temperature_scale(z, temperature=1.0))
    symbolic.assert_equal(same, symbolic.flat(z), "T = 1 is the identity")


# ============================================================================ tier P
@pytest.mark.spec("temperature_scale", tier="P")
@given(data=st.data())
def test_temperature_scale_unit_and_cold_limit(backend, dtype, data):
    z = data.draw(cst.logits(dtype, shape=(5,), bound=10.0), label="z")
    top2 = np.sort(z.astype(np.float64))[-2:]
    assume(top2[1] - top2[0] > 1e-2)  # a unique maximum, by a margin the dtype resolves
    zb = to_backend(backend, z)
    np.testing.assert_array_equal(_np(backend, spec.temperature_scale(zb, temperature=1.0)), z)
    # T → 0: exp of (z_i − max)/T underflows to exactly 0 for every non-maximal logit
    cold = _np(backend, spec.softmax(spec.temperature_scale(zb, temperature=1e-5)))
    np.testing.assert_array_equal(cold, np.eye(5)[np.argmax(z)])
    hot = _np(backend, spec.softmax(spec.temperature_scale(zb, temperature=1e6)))
    np.testing.assert_allclose(hot, np.full(5, 0.2), rtol=1e-4)


@pytest.mark.spec("top_k_filter", tier="P")
@given(data=st.data())
def test_top_k_filter_properties(backend, dtype, data):
    p = data.draw(cst.distributions(dtype), label="p")
    vocab = p.shape[-1]
    k = data.draw(st.integers(1, vocab), label="k")
    out = _np(backend, spec.top_k_filter(to_backend(backend, p), k=k))
    p64 = p.astype(np.float64)
    kept = out > 0
    # support: the k largest, so every positive input among them survives
    np.testing.assert_array_equal(np.sum(kept, axis=-1),
                                  np.minimum(k, np.sum(p64 > 0, axis=-1)))
    assert_close(backend, np.sum(out, axis=-1), np.ones(p.shape[:-1]), dtype, what="Σ top-k")
    # every kept entry ≥ every dropped entry
    lowest_kept = np.min(np.where(kept, p64, np.inf), axis=-1)
    highest_dropped = np.max(np.where(kept, -np.inf, p64), axis=-1)
    assert np.all(lowest_kept >= highest_dropped)
    # kept entries are the input over the kept mass
    mass = np.sum(np.where(kept, p64, 0.0), axis=-1, keepdims=True)
    assert_close(backend, out, np.where(kept, p64 / mass, 0.0), dtype, what="renormalised")
    full = _np(backend, spec.top_k_filter(to_backend(backend, p), k=vocab))
    assert_close(backend, full, p64 / np.sum(p64, axis=-1, keepdims=True), dtype, what="k = V")


@pytest.mark.spec("top_k_filter", tier="P")
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_top_k_filter_ties_keep_exactly_k_lowest_indices(backend, dtype, k):
    uniform = _host(backend, dtype, [[0.2] * 5, [0.1, 0.3, 0.3, 0.3, 0.0]])
    out = _np(backend, spec.top_k_filter(uniform, k=k))
    np.testing.assert_array_equal(out[0] > 0, np.arange(5) < k)
    second = {1: [0, 1, 0, 0, 0], 2: [0, 1, 1, 0, 0], 3: [0, 1, 1, 1, 0], 4: [1, 1, 1, 1, 0]}[k]
    np.testing.assert_array_equal(out[1] > 0, np.asarray(second, dtype=bool))
    assert_close(backend, out[0][:k], np.full(k, 1 / k), dtype, what="tied mass")


@pytest.mark.spec("top_p_filter", tier="P")
@given(data=st.data())
def test_top_p_filter_reaches_p_minimal_and_normalised(backend, dtype, data):
    vocab = data.draw(st.integers(1, 12), label="V")
    p = data.draw(cst.distributions(dtype, shape=(vocab,)), label="p")
    target = data.draw(st.floats(0.05, 0.999), label="p_target")
    out = _np(backend, spec.top_p_filter(to_backend(backend, p), p=target))
    p64 = p.astype(np.float64)
    total = float(np.sum(p64))
    kept = out > 0
    slack = 8 * vocab * float(np.finfo(dtype).eps) * total  # the spec's running sum rounds
    mass = float(np.sum(p64[kept]))
    assert mass >= target * total - slack, "the nucleus must reach p"
    smallest = float(np.min(p64[kept]))
    assert mass - smallest < target * total + slack, "the nucleus must be the smallest such set"
    assert_close(backend, np.sum(out), 1.0, dtype, what="Σ nucleus")
    assert_close(backend, out, np.where(kept, p64 / mass, 0.0), dtype, what="P / kept mass")
    lowest_kept = np.min(np.where(kept, p64, np.inf))
    assert np.all(p64[~kept] <= lowest_kept), "the nucleus holds the most probable tokens"


@pytest.mark.spec("top_p_filter", tier="P")
@given(p=cst.distributions("float64"))
def test_top_p_filter_at_one_is_the_identity(backend, dtype, p):
    p = p.astype(dtype)
    out = _np(backend, spec.top_p_filter(to_backend(backend, p), p=1.0))
    p64 = p.astype(np.float64)
    assert_close(backend, out, p64 / np.sum(p64, axis=-1, keepdims=True), dtype, what="p = 1")
    # every token is kept; a subnormal probability may come back as 0 where the library flushes
    # subnormals to zero (JAX on CPU: https://github.com/jax-ml/jax/issues/16200)
    normal = p >= np.finfo(dtype).tiny
    np.testing.assert_array_equal((out > 0)[normal], True)
    assert np.all(out[p == 0] == 0)


@pytest.mark.spec("top_k_filter", "top_p_filter", tier="P")
def test_filters_propagate_nan_per_row(backend, dtype):
    p = _host(backend, dtype, [[0.5, math.nan, 0.5], [0.2, 0.3, 0.5]])
    for out in (spec.top_k_filter(p, k=2), spec.top_p_filter(p, p=0.5),
                spec.top_p_filter(p, p=1.0)):
        out = _np(backend, out)
        assert np.all(np.isnan(out[0])), out
        assert np.all(np.isfinite(out[1])) and abs(float(np.sum(out[1])) - 1) < 1e-6


def _quoted_002_nucleus(p64, target):
    """002 §10.2.3 as written: V_p = {t : Σ_{v sorted} P(v) ≤ p}, P'(t) = P(t)/p."""
    order = np.argsort(-p64, kind="stable")
    keep = np.zeros(p64.shape, dtype=bool)
    keep[order[np.cumsum(p64[order]) <= target]] = True
    return keep, np.where(keep, p64 / target, 0.0)


@pytest.mark.spec("top_p_filter", tier="P")
@pytest.mark.parametrize(("probs", "target", "expected_support"), [
    ([0.5, 0.3, 0.2], 0.6, [True, True, False]),
    ([0.9, 0.06, 0.04], 0.5, [True, False, False]),
    ([0.1, 0.45, 0.45], 0.5, [False, True, True]),
])
def test_top_p_reaches_p_where_002_writes_at_most_p(backend, dtype, probs, target,
                                                    expected_support):
    """Erratum 002 §10.2.3 (1/2): the nucleus is the smallest prefix with mass ≥ p; the quoted
    "Σ P(v) ≤ p" set is one token short here (empty in the second case) and fails this test."""
    out = _np(backend, spec.top_p_filter(_host(backend, dtype, probs), p=target))
    np.testing.assert_array_equal(out > 0, expected_support)
    quoted, _ = _quoted_002_nucleus(np.asarray(probs), target)
    assert not np.array_equal(quoted, np.asarray(expected_support)), "the test tells them apart"


@pytest.mark.spec("top_p_filter", tier="P")
def test_top_p_divides_by_the_kept_mass_where_002_divides_by_p(backend, dtype):
    """Erratum 002 §10.2.3 (2/2): P'(tᵢ) = P(tᵢ)/Σ_{V_p} P, not P(tᵢ)/p (which sums to
    0.8/0.6 = 4/3 here)."""
    probs, target = [0.5, 0.3, 0.2], 0.6
    out = _np(backend, spec.top_p_filter(_host(backend, dtype, probs), p=target))
    assert_close(backend, out, [0.625, 0.375, 0.0], dtype, what="P / 0.8")
    _, quoted = _quoted_002_nucleus(np.asarray(probs), target)
    assert abs(np.sum(quoted) - 1) > 0.1, "the quoted normalisation is not a distribution"
    assert abs(float(np.sum(out)) - 1) < 1e-6


@pytest.mark.spec("sample", tier="P")
@pytest.mark.parametrize("seed", [0, 1])
def test_sample_frequencies_match_probs_chi_square(backend, dtype, seed):
    """n = 20 000 draws with fixed uniforms; Pearson's χ² against probs must not reject at the
    0.1 % level (the stated false-alarm rate of this test per seed and backend), and the same
    draws must reject a distribution that differs by 0.02 in two entries (the test's power)."""
    rng = np.random.default_rng(20240 + seed)
    probs = rng.dirichlet(np.ones(6)).astype(dtype)
    u = rng.random(20_000).astype(dtype)
    u = np.where(u >= 1, np.nextafter(np.asarray(1, dtype), np.asarray(0, dtype)), u)
    draws = _np(backend, spec.sample(to_backend(backend, probs), to_backend(backend, u)))
    assert draws.shape == (20_000,) and draws.dtype.kind in "iu"
    counts = np.bincount(draws, minlength=6)
    p64 = probs.astype(np.float64) / np.sum(probs.astype(np.float64))
    expected = 20_000 * p64
    statistic = float(np.sum((counts - expected) ** 2 / expected))
    p_value = float(stats.chi2.sf(statistic, df=5))
    assert p_value > 1e-3, f"χ² = {statistic:.1f} (p = {p_value:.2e}) rejects the sampler"
    wrong = p64.copy()
    i, j = np.argsort(wrong)[-2:]
    wrong[i] -= 0.02
    wrong[j] += 0.02
    wrong_stat = float(np.sum((counts - 20_000 * wrong) ** 2 / (20_000 * wrong)))
    assert stats.chi2.sf(wrong_stat, df=5) < 1e-3, "the test has no power"


@pytest.mark.spec("sample", tier="P")
@given(data=st.data())
def test_sample_never_draws_a_zero_probability_token(backend, dtype, data):
    p = data.draw(cst.distributions(dtype), label="p")
    u = data.draw(cst.arrays(dtype, p.shape[:-1], min_value=0.0, max_value=0.999999),
                  label="u")
    idx = _np(backend, spec.sample(to_backend(backend, p), to_backend(backend, u)))
    assert idx.shape == p.shape[:-1]
    assert np.all((idx >= 0) & (idx < p.shape[-1]))
    chosen = np.take_along_axis(p, idx[..., None], axis=-1)
    assert np.all(chosen > 0)


@pytest.mark.spec("sample", tier="P")
def test_sample_u_extremes_and_broadcasting(backend, dtype):
    p = _host(backend, dtype, [[0.0, 0.5, 0.0, 0.5, 0.0], [0.25, 0.25, 0.25, 0.25, 0.0]])
    below_one = float(np.nextafter(np.asarray(1, dtype), np.asarray(0, dtype)))
    u = _host(backend, dtype, [[0.0, 0.0], [below_one, below_one]])
    np.testing.assert_array_equal(_np(backend, spec.sample(p, u)), [[1, 0], [3, 3]])


@pytest.mark.spec("greedy", tier="P")
@given(data=st.data())
def test_greedy_is_sampling_at_zero_temperature(backend, dtype, data):
    z = data.draw(cst.logits(dtype, bound=10.0), label="z")
    ordered = np.sort(z.astype(np.float64), axis=-1)
    assume(np.all(ordered[..., -1] - ordered[..., -2] > 1e-2) if z.shape[-1] > 1 else True)
    u = data.draw(cst.arrays(dtype, z.shape[:-1], min_value=0.0, max_value=0.999),
                  label="u")
    zb = to_backend(backend, z)
    g = _np(backend, spec.greedy(zb))
    np.testing.assert_array_equal(g, np.argmax(z, axis=-1))
    # T = 1e-6: every non-maximal probability underflows to exactly 0 (gap/T ≥ 1e4)
    cold = spec.softmax(spec.temperature_scale(zb, temperature=1e-6))
    np.testing.assert_array_equal(_np(backend, spec.sample(cold, to_backend(backend, u))), g)


@pytest.mark.spec("greedy", tier="P")
def test_greedy_ties_go_to_the_lowest_index(backend, dtype):
    z = _host(backend, dtype, [[1.0, 3.0, 3.0, 0.0], [-math.inf, -1.0, -1.0, -1.0]])
    np.testing.assert_array_equal(_np(backend, spec.greedy(z)), [1, 1])


# --- beam search ---------------------------------------------------------------------------
def _prefix_model(backend, dtype, vocab, seed, lengths):
    """A model whose next-token distribution depends on the whole prefix (seeded by it), and
    its host lookup prefix → log-probabilities. The model is array code (a table per prefix
    length in `lengths`, indexed by the prefix read as a base-`vocab` number), so it traces
    under jax.jit and torch.compile as beam_search calls it."""

    def host(prefix):
        logits = np.random.default_rng([seed, *[s + 1 for s in prefix]]).normal(0, 2, vocab)
        return logits - np.log(np.sum(np.exp(logits)))

    tables = {n: to_backend(backend, np.asarray(
        [host(p) for p in itertools.product(range(vocab), repeat=n)], dtype=dtype))
        for n in lengths}

    def log_probs(seqs):
        code = seqs[:, 0]
        for j in range(1, seqs.shape[1]):
            code = code * vocab + seqs[:, j]
        return backend.xp.take(tables[seqs.shape[1]], code, axis=0)

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


@pytest.mark.spec("beam_search", tier="P")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_search_of_width_one_is_greedy(backend, dtype, seed):
    model, _ = _prefix_model(backend, dtype, vocab=5, seed=seed, lengths=range(2, 6))
    start = to_backend(backend, np.asarray([3, 1], dtype=np.int64))
    beam = _np(backend, spec.beam_search(model, start, beam_width=1, steps=4))
    seq = to_backend(backend, np.asarray([[3, 1]], dtype=np.int64))
    for _ in range(4):
        tok = _np(backend, spec.greedy(model(seq)))
        seq = to_backend(backend, np.concatenate([_np(backend, seq), tok[:, None]], axis=1))
    np.testing.assert_array_equal(beam, _np(backend, seq))


@pytest.mark.spec("beam_search", tier="P")
@pytest.mark.parametrize(("vocab", "steps", "seed"), [(3, 3, 0), (3, 3, 1), (2, 4, 2),
                                                      (4, 2, 3)])
def test_beam_search_finds_the_exhaustive_optimum(backend, dtype, vocab, steps, seed):
    """With beam_width = V^(steps−1) nothing is pruned before the last step, so the kept beams
    are exactly the best V^(steps−1) of all V^steps continuations, ranked by mean log P."""
    model, host = _prefix_model(backend, dtype, vocab=vocab, seed=seed,
                                lengths=range(1, steps + 1))
    width = vocab ** (steps - 1)
    start = np.asarray([0], dtype=np.int64)
    seqs, scores = spec.beam_search(model, to_backend(backend, start), beam_width=width,
                                    steps=steps, return_scores=True)
    best = _exhaustive(lambda prefix: host(prefix).astype(dtype), [0], vocab, steps)[:width]
    np.testing.assert_array_equal(_np(backend, seqs), [s for _, s in best])
    assert_close(backend, scores, [-t / steps for t, _ in best], dtype, what="mean log P")


@pytest.mark.spec("beam_search", tier="P")
def test_beam_search_beats_greedy_on_a_small_bigram_model(backend, dtype):
    """From token 0 greedy takes 1 (0.5) then 0 (0.4): 0.20; the best pair is 2 (0.4) then 2
    (0.9): 0.36. A beam of width 2 finds it; width 1 does not."""
    table = np.asarray([[0.1, 0.5, 0.4], [0.4, 0.3, 0.3], [0.05, 0.05, 0.9]])
    log_table = to_backend(backend, np.log(table).astype(dtype))

    def model(seqs):  # array code, so that it traces under jax.jit and torch.compile
        return backend.xp.take(log_table, seqs[:, -1], axis=0)

    start = to_backend(backend, np.asarray([0], dtype=np.int64))
    wide, score = spec.beam_search(model, start, beam_width=2, steps=2, return_scores=True)
    narrow = spec.beam_search(model, start, beam_width=1, steps=2)
    np.testing.assert_array_equal(_np(backend, wide)[0], [0, 2, 2])
    np.testing.assert_array_equal(_np(backend, narrow)[0], [0, 1, 0])
    assert_close(backend, _np(backend, score)[0], math.log(0.36) / 2, dtype, what="score")


# ============================================================================ tier D
@pytest.mark.spec("temperature_scale", tier="D")
@pytest.mark.parametrize("seed", [0, 1])
def test_temperature_scale_derivative(backend, seed):
    z = np.random.default_rng(seed).normal(0, 2, (2, 3))
    derivatives.check_agreement(
        backend, "temperature_scale", spec.temperature_scale, [z], 0, {"temperature": 0.7},
        lambda xp, a, c: c / 0.7, seed=seed)

