"""The tier R oracles against facts that do not come from them: SciPy, closed forms, calculus."""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
import scipy.special
import scipy.stats

from conformance import oracles
from conformance.oracles import ORACLES, scale_floor, ulp_error

NAMES = {
    "softmax", "log_softmax", "logsumexp", "softmax_jacobian", "softmax_vjp", "entropy",
    "cross_entropy", "kl_divergence", "perplexity", "bayes_posterior", "normal_pdf",
    "softmax_cross_entropy", "softmax_cross_entropy_grad",
}
RTOL = 1e-14


def _rng():
    return np.random.default_rng(20240917)


def _close(got, want, rtol=RTOL):
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0)


# ---------------------------------------------------------------------------------------------
def test_registry_has_the_thirteen_equations():
    assert NAMES <= set(ORACLES)  # chapter oracle modules add the other chapters' oracles
    assert all(callable(f) for f in ORACLES.values())


def test_global_precision_is_left_alone():
    before = mpmath.mp.dps
    ORACLES["softmax"](np.array([1.0, 2.0]))
    assert mpmath.mp.dps == before


def test_rounding_to_float64_is_correct():
    rng = np.random.default_rng(7)
    for trial in range(400):
        # a random 160-bit value at exponents from below the subnormals to past overflow
        man = int(rng.integers(1, 2**62)) << 98 | int(rng.integers(0, 2**62))
        exp = int(rng.integers(-1250, 900))
        sign = -1 if trial % 2 else 1
        exact = Fraction(sign * man) * Fraction(2) ** exp
        try:
            want = float(exact)
        except OverflowError:
            want = math.copysign(math.inf, sign)
        with mpmath.workdps(60):
            got = oracles._f64(mpmath.mpf(sign * man) * mpmath.mpf(2) ** exp)
        assert got == want, (trial, got, want)
        assert math.copysign(1.0, got) == sign


# ---------------------------------------------------------------------------------------------
# softmax, log_softmax, logsumexp
def test_softmax_of_two_zeros_is_one_half_each():
    out = ORACLES["softmax"](np.array([0.0, 0.0]))
    assert out.dtype == np.float64
    assert out.tolist() == [0.5, 0.5]


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_and_logsumexp_agree_with_scipy(axis):
    z = _rng().normal(scale=3.0, size=(4, 5, 3))
    _close(ORACLES["softmax"](z, axis=axis), scipy.special.softmax(z, axis=axis))
    # scipy's z − lse cancels where the log-probability is ≈ 0: compare log-domain absolutely
    np.testing.assert_allclose(ORACLES["log_softmax"](z, axis=axis),
                               scipy.special.log_softmax(z, axis=axis), rtol=RTOL, atol=1e-15)
    _close(ORACLES["logsumexp"](z, axis=axis), scipy.special.logsumexp(z, axis=axis))
    kept = ORACLES["logsumexp"](z, axis=axis, keepdims=True)
    _close(kept, scipy.special.logsumexp(z, axis=axis, keepdims=True))
    assert kept.shape == scipy.special.logsumexp(z, axis=axis, keepdims=True).shape


def test_softmax_float32_input_is_taken_exactly():
    z = np.array([0.1, 0.2, 0.7], dtype=np.float32)
    _close(ORACLES["softmax"](z), scipy.special.softmax(z.astype(np.float64)))


def test_softmax_temperature_divides_the_logits():
    z = np.array([1.0, 2.0, 4.0])
    np.testing.assert_array_equal(ORACLES["softmax"](z, temperature=0.5),
                                  ORACLES["softmax"](2 * z))
    _close(ORACLES["softmax"](z, temperature=3.0), scipy.special.softmax(z / 3.0), rtol=1e-15)
    with pytest.raises(ValueError):
        ORACLES["softmax"](z, temperature=0.0)


def test_logsumexp_infinities_and_nan():
    lse = ORACLES["logsumexp"]
    assert lse(np.array([-np.inf, -np.inf])) == -np.inf
    assert lse(np.array([np.inf, 0.0])) == np.inf
    assert lse(np.array([-np.inf, 0.0])) == 0.0
    assert np.isnan(lse(np.array([np.nan, np.inf])))
    out = lse(np.array([[1.0, np.nan], [0.0, 0.0]]))
    assert np.isnan(out[0]) and out[1] == math.log(2.0)
    assert lse(np.array([1e4, 1e4])) == 1e4 + math.log(2.0)


def test_softmax_of_a_negative_infinity_is_exactly_zero():
    out = ORACLES["softmax"](np.array([-np.inf, 0.0, 1.0]))
    assert out[0] == 0.0
    _close(out[1:], scipy.special.softmax([0.0, 1.0]))
    log = ORACLES["log_softmax"](np.array([-np.inf, 0.0]))
    assert log[0] == -np.inf and log[1] == 0.0


def test_softmax_non_finite_slices():
    sm = ORACLES["softmax"]
    assert np.isnan(sm(np.array([-np.inf, -np.inf]))).all()  # 0/0
    out = sm(np.array([np.inf, 0.0]))  # exp(z_i − ∞): NaN at ∞ − ∞, 0 elsewhere
    assert np.isnan(out[0]) and out[1] == 0.0
    both = sm(np.array([[np.nan, 0.0], [0.0, 0.0]]))
    assert np.isnan(both[0]).all() and both[1].tolist() == [0.5, 0.5]


def test_extreme_logits_are_exact():
    z = np.array([1e4, -1e4, 0.0], dtype=np.float32)
    assert ORACLES["softmax"](z).tolist() == [1.0, 0.0, 0.0]
    assert ORACLES["log_softmax"](z).tolist() == [0.0, -2e4, -1e4]
    assert ORACLES["logsumexp"](z) == 1e4


def test_log_softmax_of_a_near_certain_class_keeps_its_digits():
    # log softmax_0 = −log(1 + 2e^{−200}) ≈ −2e^{−200}: the textbook z_0 − lse cancels to 0
    out = ORACLES["log_softmax"](np.array([200.0, 0.0, 0.0]))
    _close(out[0], -math.log1p(2 * math.exp(-200.0)), rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# the softmax Jacobian and vector-Jacobian product
def test_softmax_jacobian_rows_sum_to_zero_and_is_symmetric():
    z = _rng().normal(size=(2, 5))
    jac = ORACLES["softmax_jacobian"](z)
    assert jac.shape == (2, 5, 5)
    np.testing.assert_allclose(jac.sum(axis=-1), 0.0, atol=1e-16)
    np.testing.assert_array_equal(jac, np.swapaxes(jac, -1, -2))


def test_softmax_jacobian_moves_the_axis_last():
    z = _rng().normal(size=(3, 4))
    jac = ORACLES["softmax_jacobian"](z, axis=0)
    assert jac.shape == (4, 3, 3)
    np.testing.assert_array_equal(jac[1], ORACLES["softmax_jacobian"](z[:, 1]))


def test_softmax_jacobian_matches_finite_differences():
    z = _rng().normal(size=4)
    jac = ORACLES["softmax_jacobian"](z)
    h = 1e-5
    fd = np.empty((4, 4))
    for j in range(4):
        dz = np.zeros(4)
        dz[j] = h
        fd[:, j] = (ORACLES["softmax"](z + dz) - ORACLES["softmax"](z - dz)) / (2 * h)
    np.testing.assert_allclose(jac, fd, rtol=0, atol=1e-8)


def test_softmax_jacobian_diagonal_without_cancellation():
    # s_0(1 − s_0) with s_0 ≈ 1 − 2e^{−200}: 1 − s_0 must not round to 0
    jac = ORACLES["softmax_jacobian"](np.array([200.0, 0.0, 0.0]))
    t = 2 * math.exp(-200.0)
    _close(jac[0, 0], t / (1 + t) ** 2, rtol=1e-15)


def test_softmax_vjp_is_the_jacobian_product():
    rng = _rng()
    z, g = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    jac = ORACLES["softmax_jacobian"](z)
    _close(ORACLES["softmax_vjp"](z, g), np.einsum("bij,bj->bi", jac, g), rtol=1e-13)
    moved = ORACLES["softmax_vjp"](z.T, g.T, axis=0)
    np.testing.assert_array_equal(moved, ORACLES["softmax_vjp"](z, g).T)
    with pytest.raises(ValueError):
        ORACLES["softmax_vjp"](z, g[:, :4])


def test_softmax_vjp_near_one_hot():
    # s = (1, t/2, t/2)/(1 + t), g = (5, 1, 2): g_0 − ⟨g, s⟩ = 3.5t/(1 + t), which the
    # textbook 5 − ⟨g, s⟩ loses to cancellation; (J^T g)_0 = s_0 · 3.5t/(1 + t)
    t = 2 * math.exp(-200.0)
    out = ORACLES["softmax_vjp"](np.array([200.0, 0.0, 0.0]), np.array([5.0, 1.0, 2.0]))
    _close(out[0], 3.5 * t / (1 + t) ** 2, rtol=1e-15)
    _close(out[1:], [(t / 2) * (1 - 5) / (1 + t), (t / 2) * (2 - 5) / (1 + t)], rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# entropy, cross-entropy, KL, perplexity
@pytest.mark.parametrize(("axis", "base"), [(-1, None), (0, 2), (1, 10)])
def test_entropy_agrees_with_scipy(axis, base):
    p = _rng().random(size=(3, 4, 5))
    p /= p.sum(axis=axis, keepdims=True)
    _close(ORACLES["entropy"](p, axis=axis, base=base),
           scipy.stats.entropy(p, axis=axis, base=base))


def test_entropy_closed_forms():
    assert ORACLES["entropy"](np.array([1.0, 0.0, 0.0])) == 0.0
    assert abs(ORACLES["entropy"](np.array([1 / 6] * 6), base=2) - math.log2(6)) <= 1e-15
    assert ORACLES["entropy"](np.array([0.5, 0.5]), base=2) == 1.0
    assert ORACLES["entropy"](np.array([0.25] * 4, dtype=np.float32)) == math.log(4)
    with pytest.raises(ValueError):
        ORACLES["entropy"](np.array([0.5, 0.5]), base=1)


@pytest.mark.parametrize("axis", [0, -1])
def test_kl_and_cross_entropy_agree_with_scipy(axis):
    rng = _rng()
    p, q = rng.random(size=(4, 6)), rng.random(size=(4, 6))
    # elementwise: a trailing axis of length 1 makes the sum one term
    _close(ORACLES["kl_divergence"](p[..., None], q[..., None]), scipy.special.rel_entr(p, q))
    _close(ORACLES["kl_divergence"](p, q, axis=axis),
           scipy.special.rel_entr(p, q).sum(axis=axis), rtol=1e-13)
    _close(ORACLES["cross_entropy"](p, q, axis=axis),
           -scipy.special.xlogy(p, q).sum(axis=axis), rtol=1e-13)


def test_cross_entropy_and_kl_edge_values():
    ce, kl = ORACLES["cross_entropy"], ORACLES["kl_divergence"]
    assert ce(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == np.inf
    assert ce(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0  # 0·log 0 = 0
    assert kl(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == np.inf
    p = _rng().random(7)
    assert kl(p, p) == 0.0
    out = ce(np.array([[np.nan, 0.0], [0.5, 0.5]]), np.array([0.5, 0.5]))
    assert np.isnan(out[0]) and out[1] == math.log(2.0)
    assert np.isnan(ce(np.array([0.0, 1.0]), np.array([np.nan, 1.0])))  # NaN anywhere → NaN


def test_cross_entropy_broadcasts():
    p = np.array([0.0, 1.0, 0.0])
    q = np.array([[0.2, 0.3, 0.5], [0.1, 0.8, 0.1]])
    _close(ORACLES["cross_entropy"](p, q), [-math.log(0.3), -math.log(0.8)], rtol=1e-15)


def test_perplexity():
    ppl = ORACLES["perplexity"]
    lp = np.log(np.array([0.5, 0.25, 0.125]))
    _close(ppl(lp), 4.0, rtol=1e-15)
    assert ppl(np.full(3, -math.log(7.0))) == pytest.approx(7.0, rel=1e-15)
    assert ppl(np.array([-np.inf, 0.0])) == np.inf
    out = ppl(np.array([[0.0, 0.0], [-1.0, -3.0]]), axis=0)
    _close(out, [math.exp(0.5), math.exp(1.5)], rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# Bayes and the normal density
def test_bayes_posterior():
    like = np.array([[0.9, 0.2], [0.1, 0.8]])
    prior = np.array([0.01, 0.99])
    joint = like * prior
    _close(ORACLES["bayes_posterior"](like, prior), joint / joint.sum(-1, keepdims=True))
    out = ORACLES["bayes_posterior"](like, prior[:, None], axis=0)
    joint0 = like * prior[:, None]
    _close(out, joint0 / joint0.sum(0, keepdims=True))
    assert np.isnan(ORACLES["bayes_posterior"](np.zeros(2), np.array([0.5, 0.5]))).all()


def test_normal_pdf_agrees_with_scipy():
    x = _rng().normal(scale=4.0, size=(3, 4))
    _close(ORACLES["normal_pdf"](x), scipy.stats.norm.pdf(x))
    _close(ORACLES["normal_pdf"](x, mean=1.5, std=0.5), scipy.stats.norm.pdf(x, 1.5, 0.5))
    assert ORACLES["normal_pdf"](np.array([np.inf, -np.inf])).tolist() == [0.0, 0.0]
    scalar = ORACLES["normal_pdf"](np.float64(0.0))
    assert scalar.shape == () and scalar == 1 / math.sqrt(2 * math.pi)


# ---------------------------------------------------------------------------------------------
# softmax cross-entropy and its gradient
def test_softmax_cross_entropy_extreme_logits():
    sce = ORACLES["softmax_cross_entropy"]
    z = np.array([[1e4, -1e4, 0.0]])
    assert sce(z, np.array([1]), reduction="none").tolist() == [2e4]
    right = sce(z, np.array([0]), reduction="none")
    assert 0.0 <= right[0] <= 1e-300  # the true loss is about e^{−1e4}
    assert sce(np.array([[-np.inf, 0.0]]), np.array([0]), reduction="none")[0] == np.inf


def test_softmax_cross_entropy_reductions_and_axis():
    rng = _rng()
    z = rng.normal(size=(5, 4))
    y = rng.integers(0, 4, size=5)
    sce = ORACLES["softmax_cross_entropy"]
    per = sce(z, y, reduction="none")
    _close(per, -scipy.special.log_softmax(z, axis=-1)[np.arange(5), y])
    assert sce(z, y).shape == ()
    _close(sce(z, y), per.mean(), rtol=1e-15)
    _close(sce(z, y, reduction="sum"), per.sum(), rtol=1e-15)
    np.testing.assert_array_equal(sce(z.T, y, axis=0, reduction="none"), per)
    with pytest.raises(ValueError):
        sce(z, np.full(5, 4))


def test_softmax_cross_entropy_grad():
    rng = _rng()
    z = rng.normal(size=(5, 4))
    y = rng.integers(0, 4, size=5)
    grad = ORACLES["softmax_cross_entropy_grad"]
    want = scipy.special.softmax(z, axis=-1) - np.eye(4)[y]
    _close(grad(z, y), want, rtol=1e-13)
    np.testing.assert_allclose(grad(z, y).sum(axis=-1), 0.0, atol=1e-16)
    np.testing.assert_array_equal(grad(z, y, reduction="sum"), grad(z, y))
    _close(grad(z, y, reduction="mean"), grad(z, y) / 5, rtol=1e-15)
    np.testing.assert_array_equal(grad(z.T, y, axis=0), grad(z, y).T)
    # s_y − 1 with s_y ≈ 1 − 2e^{−200}: must not cancel to 0
    t = 2 * math.exp(-200.0)
    near = grad(np.array([[200.0, 0.0, 0.0]]), np.array([0]))
    _close(near[0, 0], -t / (1 + t), rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# ulp_error and scale_floor
def test_ulp_error_one_ulp():
    for dtype in (np.float32, np.float64):
        x = dtype(1.5)
        nxt = np.nextafter(x, dtype(np.inf))
        assert ulp_error(nxt, x, dtype) == 1.0
        assert ulp_error(x, x, dtype) == 0.0
        assert ulp_error(-nxt, -x, dtype) == 1.0
    # the unit is the dtype's, at the reference's magnitude (not rounded to the dtype first)
    assert ulp_error(1.0 + 2.0**-23, 1.0, np.float32) == 1.0
    assert ulp_error(1.0 + 2.0**-23, 1.0, np.float64) == 2.0**29


def test_ulp_error_non_finite():
    inf, nan = np.inf, np.nan
    err = ulp_error([inf, -inf, nan, inf, 1.0, nan, inf], [inf, -inf, nan, 1.0, inf, 0.0, -inf],
                    np.float64)
    assert err.tolist() == [0.0, 0.0, 0.0, inf, inf, inf, inf]


def test_ulp_error_floor_and_subnormals():
    # 1e-20 off a reference of 1e-20 is 2^52-ish ulp at its own scale, < 1 ulp at a floor of 1
    assert ulp_error(0.0, 1e-20, np.float64) > 1e15
    assert ulp_error(0.0, 1e-20, np.float64, floor=1.0) == 1e-20 / np.spacing(1.0)
    err = ulp_error([0.0, 0.5], [1e-9, 0.5 + 2.0**-24], np.float32, floor=np.array([0.5]))
    assert err.tolist() == [1e-9 / 2.0**-24, 1.0]
    # below the smallest normal the unit is the smallest subnormal step
    tiny = np.finfo(np.float32).tiny
    assert ulp_error(0.0, np.spacing(np.float32(0.0)), np.float32) == 1.0
    assert ulp_error(0.0, 0.0, np.float32) == 0.0
    assert ulp_error(tiny, 0.0, np.float32) == 2.0**23
    assert ulp_error(1.0, 1.0, np.float64, floor=np.nan) == 0.0


def test_scale_floor():
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 50.0]])
    ref = ORACLES["softmax"](z)
    floor = scale_floor("softmax", ref, (z,), {})
    np.testing.assert_array_equal(floor, ref.max(axis=-1, keepdims=True))
    floor0 = scale_floor("softmax", ORACLES["softmax"](z, axis=0), (z,), {"axis": 0})
    assert floor0.shape == (1, 3)
    jac = ORACLES["softmax_jacobian"](z)
    assert scale_floor("softmax_jacobian", jac, (z,), {}).shape == (2, 1, 1)
    assert scale_floor("logsumexp", ORACLES["logsumexp"](z), (z,), {}) == 1.0
    assert scale_floor("normal_pdf", None, (z,), {"std": 2.0}) == 1 / (2 * math.sqrt(2 * math.pi))
    ppl = np.array([4.0, 2.0])
    np.testing.assert_array_equal(scale_floor("perplexity", ppl, (), {}), ppl)
    for name in NAMES:  # every equation has a floor
        args = (z, np.array([0, 1])) if name.startswith("softmax_cross") else (z,)
        if name in ("softmax_vjp", "cross_entropy", "kl_divergence", "bayes_posterior"):
            args = (np.abs(z) + 1, np.abs(z) + 1)
        ref = ORACLES[name](*args)
        np.broadcast_shapes(np.shape(scale_floor(name, ref, args, {})), ref.shape)
    with pytest.raises(KeyError):
        scale_floor("no_such_equation", ref, (), {})
