"""Tier P properties of §4 Losses, as checks of an implementation.

`impl` is the implementation under test with the spec's signature; other equations a check
needs as references come from `spec`.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

import spec
from conformance import strategies as cst
from conformance.properties import prop


@prop("softmax_cross_entropy", "is_cross_entropy")
def softmax_cross_entropy_equals_cross_entropy_of_softmax(impl, t):
    batch = t.draw(st.integers(1, 6), label="batch")
    k = t.draw(st.integers(2, 10), label="K")
    z = t.draw(cst.logits(t.dtype, shape=(batch, k), bound=20.0), label="z")
    y = t.draw(cst.labels_for((batch,), k), label="y")
    zb, yb = t.on(z, y)
    loss = impl(zb, yb, reduction="none")
    one_hot = np.eye(k, dtype=t.dtype)[y]
    ce = spec.cross_entropy(t.on(one_hot), spec.softmax(zb))
    t.close(loss, t.np(ce), what="CE(one-hot, softmax)")
    t.close(impl(zb, yb), np.mean(t.np(loss)), what="mean reduction")


@prop("softmax_cross_entropy", "random_init")
def softmax_cross_entropy_at_initialisation_is_log_k(impl, t):
    k = t.draw(st.integers(2, 1000), label="k")
    z = np.zeros((4, k), dtype=t.dtype)
    y = np.arange(4) % k
    t.close(impl(*t.on(z, y)), math.log(k), what="log K")


@prop("softmax_cross_entropy_grad", "rows_sum_to_zero")
def softmax_cross_entropy_grad_rows_sum_to_zero(impl, t):
    batch = t.draw(st.integers(1, 6), label="batch")
    k = t.draw(st.integers(2, 10), label="K")
    z = t.draw(cst.logits(t.dtype, shape=(batch, k)), label="z")
    y = t.draw(cst.labels_for((batch,), k), label="y")
    g = t.np(impl(*t.on(z, y)))
    np.testing.assert_allclose(np.sum(g, axis=-1), 0, atol=t.tol.atol * k)
    assert np.all(g[np.arange(batch), y] <= 0)
    t.close(impl(*t.on(z, y), reduction="mean"), g / batch, what="mean reduction")
