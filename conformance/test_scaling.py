"""§14 Scaling and training at scale: tiers S and P.

The scaling formulas take Python numbers (exact ints where they are products of ints) or
floating arrays. Tier S traces the spec's own code on SymPy symbols (positive reals); tier P
checks the figures of the sources (002, Hoffmann et al. 2022, Rajbhandari et al. 2020) and
properties on every backend. Tiers X, E and R live in test_tiers.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import spec
from conformance import strategies as cst
from conformance.helpers import assert_close, to_backend

_A, _B, _ALPHA, _BETA, _C, _E = sp.symbols("A B alpha beta C E", positive=True)
GOPHER_FLOPS = 5.76e23


def _np(backend, x):
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def _log_ratio_is_zero(a, b) -> bool:
    return sp.simplify(sp.expand_log(sp.log(a) - sp.log(b), force=True)) == 0


# ============================================================================ tier S
@pytest.mark.spec("chinchilla_loss", tier="S")
@pytest.mark.parametrize("constants", ["published", "symbolic"])
def test_chinchilla_loss_decreases_in_n_and_d(constants):
    n, d = sp.symbols("N D", positive=True)
    kwargs = {} if constants == "published" else {"E": _E, "A": _A, "B": _B, "alpha": _ALPHA,
                                                  "beta": _BETA}
    loss = spec.chinchilla_loss(n, d, **kwargs)
    assert sp.diff(loss, n).is_negative is True, sp.diff(loss, n)
    assert sp.diff(loss, d).is_negative is True, sp.diff(loss, d)
    if constants == "symbolic":
        truth = _E + _A / n ** _ALPHA + _B / d ** _BETA
        assert sp.simplify(loss - truth) == 0


@pytest.mark.spec("compute_optimal_allocation", tier="S")
def test_compute_optimal_allocation_is_stationary_on_the_constraint():
    """d/dN L(N, C/(6N)) = −αA N^{−α−1} + βB (C/6)^{−β} N^{β−1} vanishes at N_opt: the two terms
    are equal (their log-ratio simplifies to 0) for all positive A, B, α, β, C; the second
    derivative is positive there, so it is the minimum; and D_opt·N_opt = C/6."""
    n_opt, d_opt = spec.compute_optimal_allocation(_C, A=_A, B=_B, alpha=_ALPHA, beta=_BETA)
    x = sp.Symbol("x", positive=True)
    on_constraint = spec.chinchilla_loss(x, _C / (6 * x), E=_E, A=_A, B=_B, alpha=_ALPHA,
                                         beta=_BETA)
    slope = sp.expand(sp.diff(on_constraint, x))
    terms = sp.Add.make_args(slope)
    assert len(terms) == 2
    rising = next(t for t in terms if not t.could_extract_minus_sign())
    falling = next(-t for t in terms if t.could_extract_minus_sign())
    assert _log_ratio_is_zero(rising.subs(x, n_opt), falling.subs(x, n_opt)), "dL/dN ≠ 0"
    # L = E + A x^{−α} + K x^{β} = E + A e^{−αu} + K e^{βu} with u = log x: convex in u (its
    # second derivative is a sum of positive terms), so the stationary point is the minimum
    u = sp.Symbol("u", real=True)
    curvature = sp.expand(sp.diff(on_constraint.subs(x, sp.exp(u)), u, 2))
    assert all(t.is_positive for t in sp.Add.make_args(curvature)), curvature
    assert sp.simplify(n_opt * d_opt - _C / 6) == 0


@pytest.mark.spec("compute_optimal_allocation", tier="S")
def test_compute_optimal_allocation_exponents():
    n_opt, d_opt = spec.compute_optimal_allocation(_C, A=_A, B=_B, alpha=_ALPHA, beta=_BETA)
    elasticity_n = sp.simplify(sp.diff(sp.expand_log(sp.log(n_opt), force=True), _C) * _C)
    elasticity_d = sp.simplify(sp.diff(sp.expand_log(sp.log(d_opt), force=True), _C) * _C)
    assert sp.simplify(elasticity_n - _BETA / (_ALPHA + _BETA)) == 0
    assert sp.simplify(elasticity_d - _ALPHA / (_ALPHA + _BETA)) == 0
    # 002 §9.2's "N_opt ∝ C^0.5" holds exactly when α = β (its α ≈ β ≈ 0.34)
    assert elasticity_n.subs(_BETA, _ALPHA) == sp.Rational(1, 2)


# ============================================================================ tier P
def _arrays(backend, dtype, *values):
    return [to_backend(backend, np.asarray(v, dtype=dtype)) for v in values]


@pytest.mark.spec("chinchilla_loss", tier="P")
@given(data=st.data())
def test_chinchilla_loss_monotone_and_above_e(backend, dtype, data):
    n = data.draw(cst.arrays(dtype, (6,), min_value=1e6, max_value=1e12), label="N")
    d = data.draw(cst.arrays(dtype, (6,), min_value=1e8, max_value=1e14), label="D")
    nb, db, n2, d2 = _arrays(backend, dtype, n, d, n * 2, d * 2)
    base = _np(backend, spec.chinchilla_loss(nb, db))
    assert np.all(base > 1.69)
    assert np.all(_np(backend, spec.chinchilla_loss(n2, db)) < base)
    assert np.all(_np(backend, spec.chinchilla_loss(nb, d2)) < base)
    exact = 1.69 + 406.4 / n.astype(np.float64) ** 0.34 + 410.7 / d.astype(np.float64) ** 0.28
    assert_close(backend, base, exact, dtype, what="E + A/N^α + B/D^β")


@pytest.mark.spec("chinchilla_loss", tier="P")
def test_chinchilla_loss_tends_to_the_irreducible_loss():
    assert spec.chinchilla_loss(1e30, 1e40) == pytest.approx(1.69, abs=1e-7)
    assert spec.chinchilla_loss(1e30, 1e40) > 1.69
    # Chinchilla itself (70 B, 1.4 T): 1.69 + 0.0876 + 0.1503 ≈ 1.937 nats per token
    assert spec.chinchilla_loss(70e9, 1.4e12) == pytest.approx(1.9366, abs=1e-4)


@pytest.mark.spec("training_flops", tier="P")
def test_training_flops_is_six_nd_exact_in_ints(backend, dtype):
    flops = spec.training_flops(70_000_000_000, 1_400_000_000_000)
    assert flops == 588_000_000_000_000_000_000_000 and isinstance(flops, int)
    assert abs(flops / GOPHER_FLOPS - 1) < 0.03  # Chinchilla used Gopher's budget (to 2.1 %)
    assert spec.training_flops(175e9, 300e9) == pytest.approx(3.15e23)  # GPT-3
    n, d = _arrays(backend, dtype, [7e10, 1e9], [1.4e12, 2e10])
    assert_close(backend, spec.training_flops(n, d), [5.88e23, 1.2e20], dtype, what="6ND")


@pytest.mark.spec("training_flops", tier="P")
@given(n=st.integers(1, 10**12), d=st.integers(1, 10**13))
def test_training_flops_counts_two_forward_four_backward(n, d):
    flops = spec.training_flops(n, d)
    assert flops == 2 * n * d + 4 * n * d


@pytest.mark.spec("compute_optimal_allocation", tier="P")
@pytest.mark.parametrize("flops", [1e18, 1e21, GOPHER_FLOPS, 1e26])
def test_compute_optimal_allocation_is_the_constrained_minimum(flops):
    n_opt, d_opt = spec.compute_optimal_allocation(flops)
    assert spec.training_flops(n_opt, d_opt) == pytest.approx(flops, rel=1e-12)
    best = spec.chinchilla_loss(n_opt, d_opt)
    for factor in (0.5, 0.9, 0.99, 1.01, 1.1, 2.0):
        n = n_opt * factor
        assert spec.chinchilla_loss(n, flops / (6 * n)) > best, factor


@pytest.mark.spec("compute_optimal_allocation", tier="P")
def test_compute_optimal_allocation_scales_as_c_to_the_beta_share(backend, dtype):
    budgets = np.asarray([1e20, 1e22, 1e24], dtype=dtype)
    n, d = spec.compute_optimal_allocation(to_backend(backend, budgets))
    n, d = _np(backend, n), _np(backend, d)
    slope_n = np.diff(np.log(n)) / np.diff(np.log(budgets.astype(np.float64)))
    slope_d = np.diff(np.log(d)) / np.diff(np.log(budgets.astype(np.float64)))
    np.testing.assert_allclose(slope_n, 0.28 / 0.62, rtol=1e-4)
    np.testing.assert_allclose(slope_d, 0.34 / 0.62, rtol=1e-4)


@pytest.mark.spec("compute_optimal_allocation", tier="P")
def test_compute_optimal_allocation_for_gophers_budget():
    """Hoffmann et al. (2022): Gopher's 5.76e23 FLOPs. The published rounded constants give
    3.2e10 parameters and 3.0e12 tokens; the unrounded α = 0.3392, β = 0.2849 give 4.0e10 —
    the paper's Approach 3 "≈ 40 B"; Chinchilla (Approaches 1–2) is 70 B on 1.4 T tokens.
    All within an order of magnitude of Chinchilla; the exponents' third digit matters."""
    n, d = spec.compute_optimal_allocation(GOPHER_FLOPS)
    assert n == pytest.approx(3.219e10, rel=1e-3) and d == pytest.approx(2.982e12, rel=1e-3)
    n_fit, d_fit = spec.compute_optimal_allocation(GOPHER_FLOPS, alpha=0.3392, beta=0.2849)
    assert n_fit == pytest.approx(40e9, rel=0.02) and d_fit == pytest.approx(2.38e12, rel=0.01)
    for params in (n, n_fit):
        assert 0.1 < params / 70e9 < 10  # the order of magnitude of Chinchilla's 70 B
    # with 002's α = β = 0.34 the split is the C^0.5 rule: N and D grow at the same rate
    n_a, _ = spec.compute_optimal_allocation(1e22, alpha=0.34, beta=0.34)
    n_b, _ = spec.compute_optimal_allocation(1e24, alpha=0.34, beta=0.34)
    assert n_b / n_a == pytest.approx(10.0, rel=1e-12)


@pytest.mark.spec("matmul_flops", tier="P")
def test_matmul_flops_of_002s_example(backend, dtype):
    """002 §1.2.1: 2048 × 4096 × 4096 "≈ 34 billion operations" is mnp = 34 359 738 368
    multiply-adds; in FLOPs (a multiply and an add each) 2mnp = 68 719 476 736."""
    assert 2048 * 4096 * 4096 == 34_359_738_368
    assert spec.matmul_flops(2048, 4096, 4096) == 68_719_476_736
    (m,) = _arrays(backend, dtype, [2048.0, 1.0])
    assert_close(backend, spec.matmul_flops(m, 4096, 4096), [68_719_476_736, 33_554_432], dtype,
                 what="2mnp")


@pytest.mark.spec("matmul_flops", tier="P")
@given(m=st.integers(1, 5), n=st.integers(1, 5), p=st.integers(1, 5))
def test_matmul_flops_counts_a_naive_product(m, n, p):
    counted = 0
    for _ in range(m):
        for _ in range(p):
            counted += 2 * n  # acc = acc + a·b: one multiply and one add per term
    assert spec.matmul_flops(m, n, p) == counted


@pytest.mark.spec("kv_cache_bytes", tier="P")
@given(layers=st.integers(1, 4), seq=st.integers(1, 16), dim=st.integers(1, 8),
       batch=st.integers(1, 3), width=st.sampled_from([1, 2, 4]))
def test_kv_cache_bytes_is_the_size_of_a_built_cache(layers, seq, dim, batch, width):
    dtype = {1: np.int8, 2: np.float16, 4: np.float32}[width]
    cache = [(np.zeros((batch, seq, dim), dtype=dtype), np.zeros((batch, seq, dim), dtype=dtype))
             for _ in range(layers)]
    built = sum(k.nbytes + v.nbytes for k, v in cache)
    assert spec.kv_cache_bytes(layers, seq, dim, bytes_per_element=width, batch=batch) == built


@pytest.mark.spec("kv_cache_bytes", tier="P")
def test_kv_cache_bytes_of_002s_seventy_b_model(backend, dtype):
    """002 §10.3: "~320 GB in float16" for a 70 B model. With L = 80, d = 8192 (Chinchilla- and
    Llama-2-70B-sized) and a 131 072-token context: 2·80·131072·8192·2 B = 320 GiB exactly
    (343.6 GB); with grouped-query attention's 8 K/V heads of 128 (d = 1024) it is 40 GiB."""
    full = spec.kv_cache_bytes(80, 131072, 8192)
    assert full == 320 * 2**30 and full == 343_597_383_680
    assert spec.kv_cache_bytes(80, 131072, 8 * 128) == 40 * 2**30
    # 002 §7.4: multi-query attention (one K/V head of 128 for 64 query heads) divides it by h
    assert spec.kv_cache_bytes(80, 131072, 128) * 64 == full
    (seq,) = _arrays(backend, dtype, [4096.0, 131072.0])
    assert_close(backend, spec.kv_cache_bytes(80, seq, 8192), [10 * 2**30, 320 * 2**30], dtype,
                 what="context sweep")


@pytest.mark.spec("training_memory_bytes", tier="P")
def test_training_memory_reproduces_the_zero_paper(backend, dtype):
    """ZeRO (Rajbhandari et al. 2020), Figure 1: Ψ = 7.5 B, N_d = 64, K = 12: baseline 120 GB,
    P_os 31.4 GB, P_os+g 16.6 GB, P_os+g+p 1.88 GB per device."""
    expected_gb = {0: 120.0, 1: 31.4, 2: 16.6, 3: 1.88}
    for stage, gb in expected_gb.items():
        got = spec.training_memory_bytes(7.5e9, num_devices=64, zero_stage=stage)
        assert got / 1e9 == pytest.approx(gb, abs=0.005 * max(gb, 1)), stage
    exact = {0: 120e9, 1: 31.40625e9, 2: 16.640625e9, 3: 1.875e9}
    (psi,) = _arrays(backend, dtype, [7.5e9])
    for stage, value in exact.items():
        assert_close(backend, spec.training_memory_bytes(psi, num_devices=64, zero_stage=stage),
                     [value], dtype, what=f"stage {stage}")


@pytest.mark.spec("training_memory_bytes", tier="P")
def test_seventy_b_weights_in_sixteen_bits():
    """002 §9.4: "a 70B model requires ~140 GB GPU memory for weights alone" (2 bytes each)."""
    assert spec.training_memory_bytes(70_000_000_000, components=("weights",)) == 140e9
    assert spec.training_memory_bytes(70e9) == 16 * 70e9  # with gradients and Adam's states


@pytest.mark.spec("training_memory_bytes", tier="P")
@given(psi=st.floats(1e6, 1e12), devices=st.integers(1, 4096))
def test_training_memory_stages_never_need_more(psi, devices):
    m = [spec.training_memory_bytes(psi, num_devices=devices, zero_stage=s) for s in range(4)]
    assert all(a >= b * (1 - 1e-12) for a, b in itertools.pairwise(m))
    assert m[3] == pytest.approx(m[0] / devices, rel=1e-12)
    assert m[0] == pytest.approx(16 * psi, rel=1e-12)
    if devices == 1:
        assert all(x == pytest.approx(m[0], rel=1e-12) for x in m)

