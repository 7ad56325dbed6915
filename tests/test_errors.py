"""The error and non-finite conventions of EQUATIONS.md, on NumPy.

Bad input is refused before any arithmetic (TypeError for a wrong kind of array or dtype,
ValueError for a value or shape out of the domain); NaN and infinity propagate as the math says
and never turn into a silently wrong finite number.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

import spec

NAN = math.nan
INF = math.inf


def _torch():
    if importlib.util.find_spec("torch") is None:
        pytest.skip("the 'torch' library is not installed: cannot mix torch and numpy arrays")
    import torch

    return torch


# --- arrays from two libraries, lists, integer dtypes -------------------------------------------
def test_torch_and_numpy_mixed_is_a_type_error_naming_two_libraries():
    torch = _torch()
    p = np.asarray([0.5, 0.5])
    q = torch.tensor([0.9, 0.1], dtype=torch.float64)
    with pytest.raises(TypeError, match="two libraries") as info:
        spec.cross_entropy(p, q)
    message = str(info.value)
    assert "numpy" in message and "torch" in message, message
    with pytest.raises(TypeError, match="two libraries"):
        spec.cross_entropy(torch.tensor([0.5, 0.5], dtype=torch.float64), np.asarray([0.9, 0.1]))


def test_torch_and_numpy_mixed_in_the_loss():
    torch = _torch()
    logits = np.asarray([[1.0, 2.0]])
    labels = torch.tensor([0])
    with pytest.raises(TypeError, match="two libraries"):
        spec.softmax_cross_entropy(logits, labels)


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: spec.softmax([1.0, 2.0]), "z must be an array"),
        (lambda: spec.logsumexp([1.0, 2.0]), "z must be an array"),
        (lambda: spec.entropy([0.5, 0.5]), "p must be an array"),
        (lambda: spec.cross_entropy([0.5, 0.5], np.asarray([0.9, 0.1])), "p must be an array"),
        (lambda: spec.cross_entropy(np.asarray([0.5, 0.5]), [0.9, 0.1]), "q must be an array"),
        (lambda: spec.softmax_cross_entropy(np.asarray([[1.0, 2.0]]), [0]),
         "labels must be an array"),
        (lambda: spec.softmax(1.5), "z must be an array"),
    ],
    ids=["softmax", "logsumexp", "entropy", "ce-p", "ce-q", "sce-labels", "scalar"],
)
def test_a_python_list_or_number_is_a_type_error(call, fragment):
    with pytest.raises(TypeError, match=fragment):
        call()


@pytest.mark.parametrize("int_dtype", [np.int64, np.int32, np.bool_])
def test_integer_logits_to_softmax_are_a_type_error(int_dtype):
    z = np.asarray([1, 0, 1]).astype(int_dtype)
    with pytest.raises(TypeError, match="real floating dtype"):
        spec.softmax(z)
    with pytest.raises(TypeError, match="real floating dtype"):
        spec.log_softmax(z)


def test_integer_logits_to_the_loss_are_a_type_error():
    with pytest.raises(TypeError, match="logits must have a real floating dtype"):
        spec.softmax_cross_entropy(np.asarray([[1, 2]]), np.asarray([0]))


def test_mixed_float_dtypes_are_a_type_error():
    with pytest.raises(TypeError, match="same dtype"):
        spec.cross_entropy(np.asarray([0.5, 0.5]), np.asarray([0.9, 0.1], dtype=np.float32))


def test_value_error_names_the_parameter_and_shapes():
    with pytest.raises(ValueError, match=r"p and q must have broadcastable shapes, got \(2,\) and "
                                         r"\(3,\)"):
        spec.cross_entropy(np.asarray([0.5, 0.5]), np.asarray([0.2, 0.3, 0.5]))


# --- NaN propagates ------------------------------------------------------------------------------
def test_softmax_of_a_nan_logit_is_all_nan():
    out = spec.softmax(np.asarray([NAN, 0.0]))
    assert out.shape == (2,)
    assert np.isnan(out).all(), out
    # in a batch only the row holding the NaN is affected
    out = spec.softmax(np.asarray([[NAN, 0.0], [0.0, 0.0]]))
    assert np.isnan(out[0]).all(), out
    np.testing.assert_array_equal(out[1], [0.5, 0.5])


def test_entropy_with_a_nan_entry_is_nan():
    with np.errstate(invalid="ignore"):
        out = spec.entropy(np.asarray([NAN, 0.5]))
    assert np.isnan(out), out
    with np.errstate(invalid="ignore"):
        batch = spec.entropy(np.asarray([[0.5, NAN], [0.5, 0.5]]))
    assert np.isnan(batch[0]) and batch[1] == pytest.approx(math.log(2), rel=1e-15)


def test_logsumexp_with_a_nan_entry_is_nan():
    assert np.isnan(spec.logsumexp(np.asarray([NAN, 1.0])))
    assert np.isnan(spec.logsumexp(np.asarray([1.0, NAN])))
    assert np.isnan(spec.log_softmax(np.asarray([NAN, 1.0]))).all()


def test_cross_entropy_with_a_nan_entry_is_nan():
    with np.errstate(invalid="ignore"):
        out = spec.cross_entropy(np.asarray([0.5, 0.5]), np.asarray([NAN, 0.5]))
    assert np.isnan(out), out


def test_loss_with_a_nan_logit_is_nan():
    out = spec.softmax_cross_entropy(np.asarray([[NAN, 1.0], [0.0, 0.0]]), np.asarray([1, 0]),
                                     reduction="none")
    assert np.isnan(out[0]), out
    assert out[1] == pytest.approx(math.log(2), rel=1e-15)


# --- +inf never becomes a wrong finite number; −inf gives exactly 0 -------------------------
def test_softmax_with_a_positive_infinite_logit_is_not_silently_finite():
    with np.errstate(invalid="ignore"):
        out = spec.softmax(np.asarray([INF, 0.0, -1.0]))
    # the only acceptable answers: the limit (1 at the +inf logit, 0 elsewhere) or NaN there;
    # never a finite value that is not the limit
    first_ok = np.isnan(out[0]) or out[0] == 1.0
    assert first_ok, f"softmax([inf, 0, -1]) gave {out!r}"
    for value in out[1:]:
        assert np.isnan(value) or value == 0.0, f"softmax([inf, 0, -1]) gave {out!r}"


def test_logsumexp_of_positive_infinity_is_positive_infinity():
    out = spec.logsumexp(np.asarray([INF, 0.0]))
    assert out == INF, out


def test_loss_with_a_positive_infinite_logit_is_not_finite():
    with np.errstate(invalid="ignore"):
        out = spec.softmax_cross_entropy(np.asarray([[INF, 0.0], [INF, 0.0]]),
                                         np.asarray([1, 0]), reduction="none")
    # the wrong class gets probability 0: the loss is +inf, never a finite number
    assert not np.isfinite(out[0]), out
    assert np.isnan(out[1]) or out[1] == 0.0, out


@pytest.mark.parametrize("float_dtype", ["float32", "float64"])
def test_negative_infinite_logit_gets_exactly_zero(float_dtype):
    dtype = float_dtype
    out = spec.softmax(np.asarray([-INF, 0.0, 1.0], dtype=dtype))
    assert out.dtype == np.dtype(dtype)
    assert out[0] == 0.0, out
    assert np.isfinite(out).all(), out
    e = math.exp(1.0)
    np.testing.assert_allclose(out[1:], [1 / (1 + e), e / (1 + e)], rtol=1e-6)
    log_out = spec.log_softmax(np.asarray([-INF, 0.0], dtype=dtype))
    assert log_out[0] == -INF and log_out[1] == 0.0, log_out
    # along axis 0, in a batch
    out = spec.softmax(np.asarray([[-INF, 2.0], [0.0, 2.0]], dtype=dtype), axis=0)
    assert out[0, 0] == 0.0 and out[1, 0] == 1.0, out
    np.testing.assert_array_equal(out[:, 1], [0.5, 0.5])


def test_entropy_of_a_zero_probability_uses_zero_log_zero():
    assert spec.entropy(np.asarray([1.0, 0.0, 0.0])) == 0.0
    assert spec.entropy(np.asarray([0.5, 0.5, 0.0]), base=2) == pytest.approx(1.0, rel=1e-15)


def test_cross_entropy_with_q_zero_where_p_is_positive_is_infinite():
    with np.errstate(divide="ignore"):
        out = spec.cross_entropy(np.asarray([0.5, 0.5]), np.asarray([1.0, 0.0]))
    assert out == INF, out


# --- extreme logits in float32 ---------------------------------------------------------------
def test_softmax_cross_entropy_of_extreme_logits_in_float32():
    logits = np.asarray([[1e4, -1e4, 0.0]] * 3, dtype=np.float32)
    labels = np.asarray([1, 0, 2])
    out = spec.softmax_cross_entropy(logits, labels, reduction="none")
    assert out.dtype == np.float32
    assert np.isfinite(out).all(), out
    assert out[0] == np.float32(2e4), out  # wrong class: 1e4 − (−1e4)
    assert out[1] == 0.0, out  # right class
    assert out[2] == np.float32(1e4), out
    total = spec.softmax_cross_entropy(logits[:1], labels[:1])
    assert total.dtype == np.float32 and total == np.float32(2e4), total


def test_softmax_of_extreme_logits_in_float32():
    out = spec.softmax(np.asarray([1e4, -1e4, 0.0], dtype=np.float32))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [1.0, 0.0, 0.0])
    lse = spec.logsumexp(np.asarray([1e4, 1e4], dtype=np.float32))
    assert np.isfinite(lse) and lse == pytest.approx(1e4 + math.log(2), rel=1e-7)


def test_extreme_logits_gradient_in_float32():
    grad = spec.softmax_cross_entropy_grad(np.asarray([[1e4, -1e4, 0.0]], dtype=np.float32),
                                           np.asarray([1]))
    assert grad.dtype == np.float32
    np.testing.assert_array_equal(grad, [[1.0, -1.0, 0.0]])
