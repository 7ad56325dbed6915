"""Small helpers shared by the test modules: moving inputs, comparing outputs."""

from __future__ import annotations

import numpy as np

import backends

from . import tolerances
from .precision import low_precision

_host = None


def host():
    """The NumPy backend, used to build host inputs from the registry records."""
    global _host
    if _host is None:
        _host = backends.get("numpy")
    return _host


def to_backend(backend, obj):
    """Move host NumPy arrays to `backend`, also inside lists, tuples (named ones too) and
    dicts of parameters; leave anything else (numbers, strings, lists of numbers) alone."""
    if isinstance(obj, np.ndarray):
        return backend.asarray(obj, dtype=obj.dtype.name)
    if isinstance(obj, dict):
        return {k: to_backend(backend, v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(to_backend(backend, v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_backend(backend, v) for v in obj)
    return obj


def on(backend, *host):
    """Host NumPy arrays (or nested parameters) on `backend`, as a list."""
    return [to_backend(backend, a) for a in host]


def np64(backend, x) -> np.ndarray:
    """A backend result (or a host value) as a float64 NumPy array."""
    if isinstance(x, (np.ndarray, np.generic, float, int)):
        return np.asarray(x, dtype=np.float64)
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def skip_if_limited(backend, name: str, tier: str, note: str = "") -> None:
    """Skip with the documented limit of `backend` for equation `name` in `tier`, if any
    (the record's `Limit`, with its reason and upstream link)."""
    import pytest

    import spec

    limit = spec.catalogue()[name].limit(backend.id, tier, note)
    if limit is not None:
        pytest.skip(f"{limit.reason} ({limit.link})")


def build(builder, dtype: str):
    """Call a registry input builder on the host (NumPy) for `dtype`; a low precision gets the
    float32 cases rounded to it (`low_precision`)."""
    from .settings import LOW_DTYPES

    if dtype in LOW_DTYPES:
        return low_precision(build(builder, "float32"), dtype)
    h = host()
    return builder(h.xp, h.dtype(dtype) if dtype else None, h.device)


def tier_cases(name: str, dtype: str) -> list:
    """The inputs tiers X and R run for equation `name` in `dtype`: its record's samples and
    references, built on the host."""
    from . import records

    evidence = records.get(name)
    cases = build(evidence.samples, dtype)
    if evidence.references is not None:
        cases += build(evidence.references, dtype)
    return cases


def kwargs_on(backend, kwargs: dict) -> dict:
    """Array-valued keyword options travel to the backend like the positional arrays."""
    return {k: to_backend(backend, value) for k, value in kwargs.items()}


def limit_reason(rec, backend, tier: str, case) -> str | None:
    """Why `backend` is excused from running `case` of equation `rec` in `tier` (its record's
    documented limit, with the upstream link), or None: it runs."""
    from . import compiled

    limit = rec.limit(backend.id, tier, case.note, compiled=compiled.active(tier))
    return None if limit is None else f"{limit.reason} ({limit.link})"


def assert_close(backend, actual, expected, dtype: str, *, kind="values", tol=None, what=""):
    """Compare a backend result with a host expectation within the dtype's tolerance."""
    tol = tol or (tolerances.values(dtype) if kind == "values" else tolerances.grads(dtype))
    on_host = isinstance(actual, (np.ndarray, np.generic, float, int))
    got = actual if on_host else backend.to_numpy(actual)
    np.testing.assert_allclose(
        np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64),
        rtol=tol.rtol, atol=tol.atol, equal_nan=True,
        err_msg=f"{what} on {backend.id} ({dtype})",
    )
