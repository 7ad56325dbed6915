"""Hypothesis strategies. Everything is drawn on the host as NumPy (bounded, no subnormals,
no NaN unless asked) and moved once to the backend with `backend.asarray`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

_WIDTH = {"float32": 32, "float64": 64}


def _inside(value: float, dtype: str, direction: float) -> float:
    """The float of `dtype` nearest `value` that is not outside the interval (direction ±inf)."""
    rounded = np.asarray(value, dtype=dtype)
    if (direction > 0 and rounded < value) or (direction < 0 and rounded > value):
        rounded = np.nextafter(rounded, np.asarray(direction, dtype=dtype))
    return float(rounded)


def floats(dtype: str, min_value: float, max_value: float, *, exclude_zero=False):
    min_value, max_value = _inside(min_value, dtype, np.inf), _inside(max_value, dtype, -np.inf)
    return st.floats(min_value, max_value, width=_WIDTH[dtype], allow_nan=False,
                     allow_infinity=False, allow_subnormal=False,
                     exclude_min=exclude_zero and min_value == 0)


def shapes(*, min_dims=1, max_dims=3, min_side=1, max_side=6):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def arrays(dtype: str, shape, *, min_value=-10.0, max_value=10.0, exclude_zero=False):
    """Host arrays of `dtype` with elements in [min_value, max_value]."""
    return hnp.arrays(np.dtype(dtype), shape,
                      elements=floats(dtype, min_value, max_value, exclude_zero=exclude_zero))


@st.composite
def logits(draw, dtype: str, *, shape=None, bound=30.0, label="z"):
    shape = draw(shapes(), label=f"{label}.shape") if shape is None else shape
    return draw(arrays(dtype, shape, min_value=-bound, max_value=bound), label=label)


@st.composite
def distributions(draw, dtype: str, *, shape=None, allow_zeros=True, label="p"):
    """Non-negative arrays normalised to sum to 1 along the last axis (computed in float64)."""
    shape = draw(shapes(), label=f"{label}.shape") if shape is None else shape
    low = 0.0 if allow_zeros else 1e-3
    w = draw(hnp.arrays(np.float64, shape, elements=st.floats(low, 1.0)), label=f"{label}.raw")
    w = np.where(np.sum(w, axis=-1, keepdims=True) == 0, 1.0, w)  # an all-zero row → uniform
    p = w / np.sum(w, axis=-1, keepdims=True)
    return p.astype(dtype)


@st.composite
def axes(draw, ndim: int):
    return draw(st.integers(-ndim, ndim - 1), label="axis")


@st.composite
def labels_for(draw, shape, num_classes: int, label="labels"):
    return draw(hnp.arrays(np.int64, shape, elements=st.integers(0, num_classes - 1)),
                label=label)
