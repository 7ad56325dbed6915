"""Low precisions on the host: dtypes, machine constants, correct rounding, records' cases.

NumPy has float16 but no bfloat16; ml_dtypes (a dependency of JAX and of these tests) provides
one. Nothing here imports the rest of the suite, so oracles and helpers can both use it.
"""

from __future__ import annotations

import numpy as np

from backends._base import host_dtype

__all__ = ["as_float32", "finfo", "host_dtype", "low_precision", "round_to"]


def finfo(dtype):
    """NumPy's finfo for a dtype or its name; ml_dtypes' for bfloat16 (which NumPy lacks)."""
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    if name == "bfloat16":
        import ml_dtypes

        return ml_dtypes.finfo(ml_dtypes.bfloat16)
    return np.finfo(name)


def round_to(x, dtype: str) -> np.ndarray:
    """float64 values rounded correctly (to nearest, ties to even) to `dtype`'s precision and
    range, returned as float64; overflow gives ±inf, and values below the normal range round to
    the subnormal grid. Unlike a cast through float32 (which bfloat16 conversions do), it rounds
    once, so the result is the correctly rounded value the low-precision budgets measure from."""
    x = np.asarray(x, dtype=np.float64)
    info = finfo(dtype)
    p = int(info.nmant) + 1  # significand bits
    tiny = float(info.tiny)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        mag = np.where(np.isfinite(x) & (x != 0), np.abs(x), 1.0)
        _, e = np.frexp(np.maximum(mag, tiny))  # |x| = f·2^e, 0.5 ≤ f < 1
        quantum = np.ldexp(1.0, e - p)  # the spacing of dtype at |x| (subnormal grid below)
        r = np.round(x / quantum) * quantum  # exact scaling; np.round ties to even
        r = np.where(np.abs(r) > float(info.max), np.copysign(np.inf, x), r)
    return np.where(np.isfinite(x) & (x != 0), r, x)


def low_precision(cases: list, dtype: str) -> list:
    """Records' cases for a low precision: the float32 cases with each float array rounded to
    `dtype` (so ±1e4 logits become ±inf in float16, its largest finite value being 65504);
    integer arrays and options are left as they are."""
    import dataclasses

    def cast(a):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            return a.astype(host_dtype(dtype))
        if isinstance(a, dict):
            return {k: cast(v) for k, v in a.items()}
        if isinstance(a, tuple) and hasattr(a, "_fields"):
            return type(a)(*(cast(v) for v in a))
        if isinstance(a, (list, tuple)):
            return type(a)(cast(v) for v in a)
        return a

    out = []
    for case in cases:
        changes = {"args": cast(case.args)}
        if hasattr(case, "kwargs"):
            changes["kwargs"] = {k: cast(v) for k, v in case.kwargs.items()}
        out.append(dataclasses.replace(case, **changes))
    return out


def as_float32(obj):
    """A low-precision case's arguments in float32, which holds every float16 and bfloat16
    value exactly (the exact inputs an oracle or a float32 reference takes); arrays of other
    dtypes, integer arrays and options are left alone, also inside lists, tuples (named ones
    too) and dicts."""
    if isinstance(obj, np.ndarray) and obj.dtype.name in ("float16", "bfloat16"):
        return obj.astype(np.float32)
    if isinstance(obj, dict):
        return {k: as_float32(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(as_float32(v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(as_float32(v) for v in obj)
    return obj
