"""§14 Scaling and training at scale: tier S, and the refusal of low-precision counts.

The scaling formulas take Python numbers (exact ints where they are products of ints) or
floating arrays. Tier S traces the spec's own code on SymPy symbols (positive reals). Tier P
(the figures of the sources — 002, Hoffmann et al. 2022, Rajbhandari et al. 2020 — and
properties on every backend) is in conformance/properties/scaling.py; tiers X, E and R live
in test_tiers.py, except the float16 and bfloat16 refusals, which need a backend that has the
dtype (array_api_strict has neither).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import spec
from conformance.helpers import to_backend
from conformance.precision import host_dtype

_A, _B, _ALPHA, _BETA, _C, _E = sp.symbols("A B alpha beta C E", positive=True)


def _log_ratio_is_zero(a, b) -> bool:
    return sp.simplify(sp.expand_log(sp.log(a) - sp.log(b), force=True)) == 0


# ============================================================================ tier S
@pytest.mark.spec("chinchilla_loss", tier="S", identity="decreasing")
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


@pytest.mark.spec("compute_optimal_allocation", tier="S", identity="stationary")
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


@pytest.mark.spec("compute_optimal_allocation", tier="S", identity="exponent")
def test_compute_optimal_allocation_exponents():
    n_opt, d_opt = spec.compute_optimal_allocation(_C, A=_A, B=_B, alpha=_ALPHA, beta=_BETA)
    elasticity_n = sp.simplify(sp.diff(sp.expand_log(sp.log(n_opt), force=True), _C) * _C)
    elasticity_d = sp.simplify(sp.diff(sp.expand_log(sp.log(d_opt), force=True), _C) * _C)
    assert sp.simplify(elasticity_n - _BETA / (_ALPHA + _BETA)) == 0
    assert sp.simplify(elasticity_d - _ALPHA / (_ALPHA + _BETA)) == 0
    # 002 §9.2's "N_opt ∝ C^0.5" holds exactly when α = β (its α ≈ β ≈ 0.34)
    assert elasticity_n.subs(_BETA, _ALPHA) == sp.Rational(1, 2)


# ============================================================================ tier E
_ARITY = {"chinchilla_loss": 2, "training_flops": 2, "compute_optimal_allocation": 1,
          "matmul_flops": 3, "kv_cache_bytes": 3, "training_memory_bytes": 1}


@pytest.mark.spec(*_ARITY, tier="E")
@pytest.mark.parametrize("low", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", list(_ARITY))
def test_low_precision_counts_are_refused_naming_the_dtype(backend, name, low):
    """Issue 12: a float16 or bfloat16 array of counts is refused (TypeError naming its dtype)
    on every backend that has the dtype (not an error record: array_api_strict has neither)."""
    if low not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no {low}")
    counts = to_backend(backend, np.asarray([1e3, 2e3]).astype(host_dtype(low)))
    rest = (1e9,) * (_ARITY[name] - 1)
    with pytest.raises(TypeError, match=f"of dtype .*{low} is refused"):
        getattr(spec, name)(counts, *rest)
    # the same counts in float32 are computed
    getattr(spec, name)(to_backend(backend, np.asarray([1e3, 2e3], dtype=np.float32)), *rest)
