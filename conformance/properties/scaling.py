"""Tier P properties of §14 Scaling and training at scale, as checks of an implementation.

`impl` is the implementation under test with the spec's signature; other equations a check
needs as references come from `spec`. The formulas take Python numbers (ints stay exact) or
floating arrays: checks on numbers run once per backend in float64 (the backend plays no
part), checks on arrays in every dtype. Quoted figures (Hoffmann et al. 2022, Rajbhandari et
al. 2020, 002) are compared to the digits they are quoted to; computed ones within the
dtype's tolerance.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import strategies as st

import spec
from conformance import strategies as cst
from conformance import tolerances
from conformance.properties import prop

GOPHER_FLOPS = 5.76e23

#: products and quotients of a few Python floats: each rounds by ≤ ε₆₄/2, a handful of them
#: stays far inside the float64 value tolerance (64 ε₆₄)
_F64 = tolerances.values("float64").rtol


def _arrays(t, *values):
    return [t.on(np.asarray(v, dtype=t.dtype)) for v in values]


def _quoted(value: float, digits: int) -> float:
    """Half a unit in the last of `digits` significant digits of `value`: the precision of a
    figure quoted to that many digits."""
    return 0.5 * 10.0 ** (math.floor(math.log10(abs(value))) - digits + 1)


# ---------------------------------------------------------------------- Chinchilla loss
@prop("chinchilla_loss", "decreasing", "floor")
def chinchilla_loss_decreasing_and_above_e(impl, t):
    n = t.draw(cst.arrays(t.dtype, (6,), min_value=1e6, max_value=1e12), label="N")
    d = t.draw(cst.arrays(t.dtype, (6,), min_value=1e8, max_value=1e14), label="D")
    nb, db, n2, d2 = _arrays(t, n, d, n * 2, d * 2)
    base = t.np(impl(nb, db))
    assert np.all(base > 1.69)
    assert np.all(t.np(impl(n2, db)) < base)
    assert np.all(t.np(impl(nb, d2)) < base)
    exact = 1.69 + 406.4 / n.astype(np.float64) ** 0.34 + 410.7 / d.astype(np.float64) ** 0.28
    t.close(base, exact, what="E + A/N^α + B/D^β")


@prop("chinchilla_loss", "floor", dtypes=("float64",), draws=False)
def chinchilla_loss_tends_to_the_irreducible_loss(impl, t):
    far = impl(1e30, 1e40)
    # the tail A/N^α + B/D^β is 2.6e-8 + 2.6e-9 at N = 1e30, D = 1e40: within 1e-7 of E
    assert abs(far - 1.69) <= 1e-7 and far > 1.69
    # Chinchilla itself (70 B, 1.4 T): 1.69 + 0.0876 + 0.1503 ≈ 1.9366 nats per token, quoted to
    # 4 decimals (1e-4 allows for the rounding of the three terms quoted)
    assert abs(impl(70e9, 1.4e12) - 1.9366) <= 1e-4


# ------------------------------------------------------------------------ training FLOPs
@prop("training_flops", "six_nd", "chinchilla_budget", draws=False)
def training_flops_is_six_nd_exact_in_ints(impl, t):
    flops = impl(70_000_000_000, 1_400_000_000_000)
    assert flops == 588_000_000_000_000_000_000_000 and isinstance(flops, int)
    assert abs(flops / GOPHER_FLOPS - 1) < 0.03  # Chinchilla used Gopher's budget (to 2.1 %)
    assert math.isclose(impl(175e9, 300e9), 3.15e23, rel_tol=_F64)  # GPT-3
    n, d = _arrays(t, [7e10, 1e9], [1.4e12, 2e10])
    t.close(impl(n, d), [5.88e23, 1.2e20], what="6ND")


@prop("training_flops", "six_nd", dtypes=("float64",))
def training_flops_counts_two_forward_four_backward(impl, t):
    n = t.draw(st.integers(1, 10**12), label="n")
    d = t.draw(st.integers(1, 10**13), label="d")
    assert impl(n, d) == 2 * n * d + 4 * n * d


# ------------------------------------------------------------- compute-optimal allocation
@prop("compute_optimal_allocation", "constrained_minimum", dtypes=("float64",))
def compute_optimal_allocation_is_the_constrained_minimum(impl, t):
    flops = t.draw(st.sampled_from([1e18, 1e21, GOPHER_FLOPS, 1e26]), label="flops")
    n_opt, d_opt = impl(flops)
    # 6·N·(C/6/N): four roundings of Python floats
    assert math.isclose(spec.training_flops(n_opt, d_opt), flops, rel_tol=_F64)
    best = spec.chinchilla_loss(n_opt, d_opt)
    for factor in (0.5, 0.9, 0.99, 1.01, 1.1, 2.0):
        n = n_opt * factor
        assert spec.chinchilla_loss(n, flops / (6 * n)) > best, factor


@prop("compute_optimal_allocation", "exponent", draws=False)
def compute_optimal_allocation_scales_as_c_to_the_beta_share(impl, t):
    budgets = np.asarray([1e20, 1e22, 1e24], dtype=t.dtype)
    n, d = impl(t.on(budgets))
    n, d = t.np(n), t.np(d)
    log_c = np.log(budgets.astype(np.float64))
    slope_n = np.diff(np.log(n)) / np.diff(log_c)
    slope_d = np.diff(np.log(d)) / np.diff(log_c)
    # N and D within the dtype's tolerance r of exact move each log by ≤ r; over a step of
    # ln 100 ≈ 4.6 in log C the slope (≈ 0.45, 0.55) moves by ≤ 2r/4.6 ≈ r relative
    np.testing.assert_allclose(slope_n, 0.28 / 0.62, rtol=t.tol.rtol)
    np.testing.assert_allclose(slope_d, 0.34 / 0.62, rtol=t.tol.rtol)


@prop("compute_optimal_allocation", "gopher_budget", dtypes=("float64",), draws=False)
def compute_optimal_allocation_for_gophers_budget(impl, t):
    """Hoffmann et al. (2022): Gopher's 5.76e23 FLOPs. The published rounded constants give
    3.2e10 parameters and 3.0e12 tokens; the unrounded α = 0.3392, β = 0.2849 give 4.0e10 —
    the paper's Approach 3 "≈ 40 B"; Chinchilla (Approaches 1–2) is 70 B on 1.4 T tokens.
    All within an order of magnitude of Chinchilla; the exponents' third digit matters."""
    n, d = impl(GOPHER_FLOPS)
    # the figures of the docstring, to the 4 digits they are written with (relative 1e-3)
    assert math.isclose(n, 3.219e10, rel_tol=1e-3) and math.isclose(d, 2.982e12, rel_tol=1e-3)
    n_fit, d_fit = impl(GOPHER_FLOPS, alpha=0.3392, beta=0.2849)
    # the paper's "≈ 40 B" (to 2 %) and 2.38e12 tokens (to 1 %)
    assert math.isclose(n_fit, 40e9, rel_tol=0.02) and math.isclose(d_fit, 2.38e12, rel_tol=0.01)
    for params in (n, n_fit):
        assert 0.1 < params / 70e9 < 10  # the order of magnitude of Chinchilla's 70 B
    # with 002's α = β = 0.34 the split is the C^0.5 rule: N and D grow at the same rate
    n_a, _ = impl(1e22, alpha=0.34, beta=0.34)
    n_b, _ = impl(1e24, alpha=0.34, beta=0.34)
    assert math.isclose(n_b / n_a, 10.0, rel_tol=_F64)


# ------------------------------------------------------------------------- matmul FLOPs
@prop("matmul_flops", "transformer_example", "two_mnp", draws=False)
def matmul_flops_of_002s_example(impl, t):
    """002 §1.2.1: 2048 × 4096 × 4096 "≈ 34 billion operations" is mnp = 34 359 738 368
    multiply-adds; in FLOPs (a multiply and an add each) 2mnp = 68 719 476 736."""
    assert 2048 * 4096 * 4096 == 34_359_738_368
    assert impl(2048, 4096, 4096) == 68_719_476_736
    (m,) = _arrays(t, [2048.0, 1.0])
    t.close(impl(m, 4096, 4096), [68_719_476_736, 33_554_432], what="2mnp")


@prop("matmul_flops", "two_mnp", dtypes=("float64",))
def matmul_flops_counts_a_naive_product(impl, t):
    m = t.draw(st.integers(1, 5), label="m")
    n = t.draw(st.integers(1, 5), label="n")
    p = t.draw(st.integers(1, 5), label="p")
    counted = 0
    for _ in range(m):
        for _ in range(p):
            counted += 2 * n  # acc = acc + a·b: one multiply and one add per term
    assert impl(m, n, p) == counted


# ----------------------------------------------------------------------------- KV cache
@prop("kv_cache_bytes", "formula", dtypes=("float64",))
def kv_cache_bytes_is_the_size_of_a_built_cache(impl, t):
    layers = t.draw(st.integers(1, 4), label="layers")
    seq = t.draw(st.integers(1, 16), label="seq")
    dim = t.draw(st.integers(1, 8), label="dim")
    batch = t.draw(st.integers(1, 3), label="batch")
    width = t.draw(st.sampled_from([1, 2, 4]), label="width")
    dtype = {1: np.int8, 2: np.float16, 4: np.float32}[width]
    cache = [(np.zeros((batch, seq, dim), dtype=dtype), np.zeros((batch, seq, dim), dtype=dtype))
             for _ in range(layers)]
    built = sum(k.nbytes + v.nbytes for k, v in cache)
    assert impl(layers, seq, dim, bytes_per_element=width, batch=batch) == built


@prop("kv_cache_bytes", "seventy_b", draws=False)
def kv_cache_bytes_of_002s_seventy_b_model(impl, t):
    """002 §10.3: "~320 GB in float16" for a 70 B model. With L = 80, d = 8192 (Chinchilla- and
    Llama-2-70B-sized) and a 131 072-token context: 2·80·131072·8192·2 B = 320 GiB exactly
    (343.6 GB); with grouped-query attention's 8 K/V heads of 128 (d = 1024) it is 40 GiB."""
    full = impl(80, 131072, 8192)
    assert full == 320 * 2**30 and full == 343_597_383_680
    assert impl(80, 131072, 8 * 128) == 40 * 2**30
    # 002 §7.4: multi-query attention (one K/V head of 128 for 64 query heads) divides it by h
    assert impl(80, 131072, 128) * 64 == full
    (seq,) = _arrays(t, [4096.0, 131072.0])
    t.close(impl(80, seq, 8192), [10 * 2**30, 320 * 2**30], what="context sweep")


# ---------------------------------------------------------------------- training memory
@prop("training_memory_bytes", "zero_paper", draws=False)
def training_memory_reproduces_the_zero_paper(impl, t):
    """ZeRO (Rajbhandari et al. 2020), Figure 1: Ψ = 7.5 B, N_d = 64, K = 12: baseline 120 GB,
    P_os 31.4 GB, P_os+g 16.6 GB, P_os+g+p 1.88 GB per device."""
    expected_gb = {0: 120.0, 1: 31.4, 2: 16.6, 3: 1.88}
    for stage, gb in expected_gb.items():
        got = impl(7.5e9, num_devices=64, zero_stage=stage)
        # the figure's GB, to the 3 significant digits it is printed with
        assert abs(got / 1e9 - gb) <= _quoted(gb, 3), stage
    exact = {0: 120e9, 1: 31.40625e9, 2: 16.640625e9, 3: 1.875e9}
    (psi,) = _arrays(t, [7.5e9])
    for stage, value in exact.items():
        t.close(impl(psi, num_devices=64, zero_stage=stage), [value], what=f"stage {stage}")


@prop("training_memory_bytes", "weights_70b", dtypes=("float64",), draws=False)
def seventy_b_weights_in_sixteen_bits(impl, t):
    """002 §9.4: "a 70B model requires ~140 GB GPU memory for weights alone" (2 bytes each)."""
    assert impl(70_000_000_000, components=("weights",)) == 140e9
    assert impl(70e9) == 16 * 70e9  # with gradients and Adam's states


@prop("training_memory_bytes", "stages_order", dtypes=("float64",))
def training_memory_stages_never_need_more(impl, t):
    psi = t.draw(st.floats(1e6, 1e12), label="psi")
    devices = t.draw(st.integers(1, 4096), label="devices")
    m = [impl(psi, num_devices=devices, zero_stage=s) for s in range(4)]
    # each stage is a sum of three products/quotients of Python floats (a few roundings)
    assert all(a >= b * (1 - _F64) for a, b in itertools.pairwise(m))
    assert math.isclose(m[3], m[0] / devices, rel_tol=_F64)
    assert math.isclose(m[0], 16 * psi, rel_tol=_F64)
    if devices == 1:
        assert all(math.isclose(x, m[0], rel_tol=_F64) for x in m)
