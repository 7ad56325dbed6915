"""Hypothesis strategies. Everything is drawn on the host as NumPy (bounded, no subnormals,
no NaN unless asked) and moved once to the backend with `backend.asarray`.

float16 is drawn natively (Hypothesis has 16-bit floats); bfloat16, which Hypothesis and NumPy
lack, is drawn as float32 and rounded to ml_dtypes' bfloat16, then kept inside the bounds.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .precision import finfo, host_dtype, round_to

_WIDTH = {"float16": 16, "float32": 32, "float64": 64}


def _inside(value: float, dtype: str, direction: float) -> float:
    """The float of `dtype` nearest `value` that is not outside the interval (direction ±inf)."""
    rounded = float(round_to(value, dtype))
    if (direction > 0 and rounded < value) or (direction < 0 and rounded > value):
        step = float(finfo(dtype).eps) * max(abs(rounded), float(finfo(dtype).tiny))
        rounded = float(round_to(rounded + np.copysign(step, direction), dtype))
    return rounded


def _bfloat16(min_value: float, max_value: float):
    """A float32 draw rounded to bfloat16, nudged back inside [min_value, max_value]."""
    def to_bf16(x: float) -> float:
        r = float(round_to(x, "bfloat16"))
        return min(max(r, min_value), max_value)
    return st.floats(min_value, max_value, width=32, allow_nan=False, allow_infinity=False,
                     allow_subnormal=False).map(to_bf16)


def floats(dtype: str, min_value: float, max_value: float, *, exclude_zero=False):
    min_value, max_value = _inside(min_value, dtype, np.inf), _inside(max_value, dtype, -np.inf)
    if dtype == "bfloat16":
        values = _bfloat16(min_value, max_value)
        return values.filter(lambda x: x != 0) if exclude_zero and min_value == 0 else values
    return st.floats(min_value, max_value, width=_WIDTH[dtype], allow_nan=False,
                     allow_infinity=False, allow_subnormal=False,
                     exclude_min=exclude_zero and min_value == 0)


def shapes(*, min_dims=1, max_dims=3, min_side=1, max_side=6):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def arrays(dtype: str, shape, *, min_value=-10.0, max_value=10.0, exclude_zero=False):
    """Host arrays of `dtype` with elements in [min_value, max_value] (bfloat16: ml_dtypes')."""
    elements = floats(dtype, min_value, max_value, exclude_zero=exclude_zero)
    if dtype == "bfloat16":  # the elements are bfloat16 values held as float32: exact
        return hnp.arrays(np.float32, shape, elements=elements).map(
            lambda a: a.astype(host_dtype("bfloat16")))
    return hnp.arrays(np.dtype(dtype), shape, elements=elements)


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
    return p.astype(host_dtype(dtype))


@st.composite
def axes(draw, ndim: int):
    return draw(st.integers(-ndim, ndim - 1), label="axis")


@st.composite
def labels_for(draw, shape, num_classes: int, label="labels"):
    return draw(hnp.arrays(np.int64, shape, elements=st.integers(0, num_classes - 1)),
                label=label)
