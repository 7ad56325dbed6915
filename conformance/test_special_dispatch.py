"""The special-function dispatch (spec/_special.py): both paths of erf and GELU are proven.

`spec.erf` and the exact `spec.gelu` use the namespace's own erf/erfc where it has one
(torch.special, jax.scipy.special, scipy.special for NumPy, cupyx.scipy.special for CuPy)
and Cody's pure-standard approximations everywhere else (array-api-strict, Dask). Both paths
are held to the same evidence on every backend:

* tier R — each path, on its own, stays within the equation's ulp budget of mpmath over the
  whole real line (``native_special(False)`` forces the pure-standard path on a backend that
  has a native one);
* tier X — on one backend the two paths are within that budget of each other, so which one
  runs never changes a result by more than the declared distance;
* the dispatch picks the library it should, and ``import spec`` imports no framework.

The functions are called as `spec.activations.<name>` (the functions themselves, not
`spec.<name>`, which a compiled run replaces with a compiled copy whose trace would not see
the switch).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

import spec
from conformance import oracles, records, settings
from conformance import oracles_activations as oa
from conformance.helpers import to_backend
from conformance.precision import host_dtype, round_to
from spec import _special
from spec import activations as act

PATHS = ("dispatched", "standard")
#: the sweeps hold ±∞ and NaN: where() discards the branches that compute ∞·0 there
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


def _call(fn, path, x, **kwargs):
    if path == "standard":
        with _special.native_special(False):
            return fn(x, **kwargs)
    return fn(x, **kwargs)


def _np(backend, a) -> np.ndarray:
    return np.asarray(backend.to_numpy(a), dtype=np.float64)


@functools.cache
def _erf_sweep(dtype: str, n: int = 20_000):
    """Linear over [−6, 6], log-spaced magnitudes 1e−30 … 6 of both signs, the tails to ±30,
    the branch points of Cody's approximations and the special values; with mpmath."""
    x = np.concatenate([
        np.linspace(-6.0, 6.0, n // 2), np.logspace(-30, math.log10(6.0), n // 4),
        -np.logspace(-30, math.log10(6.0), n // 8), np.linspace(6.0, 30.0, n // 16),
        -np.linspace(6.0, 30.0, n // 16),
        [0.0, 0.46875, -0.46875, 4.0, -4.0, 5e-324, 1e-300, 1e-45, np.inf, -np.inf, np.nan],
    ]).astype(dtype)
    x.setflags(write=False)
    return x, oa.erf(x)


@functools.cache
def _gelu_sweep(dtype: str):
    """Linear over [−40, 40] and log-spaced magnitudes 1e−20 … 110 (float32) or 800 (float64)
    of both signs, through the left tail's subnormal results; with mpmath and gelu's floor."""
    lin = np.linspace(-40.0, 40.0, 4001)
    mags = np.logspace(-20, math.log10(800.0 if dtype == "float64" else 110.0), 2000)
    x = np.concatenate([lin, mags, -mags, [np.inf, -np.inf, np.nan]]).astype(dtype)
    x.setflags(write=False)
    want = oa.ORACLES["gelu"](x)
    return x, want, oracles.scale_floor("gelu", want, (x,), {})


def _flushed(backend, name: str, want, dtype: str, err):
    """A backend that flushes subnormals (a documented limit of the record) is measured only
    where no result or intermediate can be subnormal: |ref| ≥ tiny/eps."""
    rec = spec.catalogue()[name]
    if rec.limit(backend.id, "R", act.SUBNORMAL):
        info = np.finfo(dtype)
        return np.where(np.abs(want) >= float(info.tiny) / float(info.eps), err, 0.0)
    return err


def _native_or_skip(backend, path="dispatched"):
    if path == "dispatched" and _special.functions(backend.xp) is None:
        pytest.skip(f"{backend.id} has no erf of its own: the dispatched path is the standard "
                    "one, proven by the other parameter")


# ============================================================================ tier R
@pytest.mark.spec("erf", tier="R", identity="accuracy")
@pytest.mark.parametrize("path", PATHS)
def test_erf_each_path_within_its_budget(backend, dtype, path):
    _native_or_skip(backend, path)
    x, want = _erf_sweep(dtype)
    got = _np(backend, _call(act.erf, path, to_backend(backend, np.array(x))))
    err = oracles.ulp_error(got, want, np.dtype(dtype))
    budget = records.ulp_budget("erf", dtype)
    i = int(np.argmax(err))
    assert err[i] <= budget, f"erf ({path}): {err[i]} ulp at x = {x[i]!r}"


@pytest.mark.spec("gelu", tier="R", identity="accuracy")
@pytest.mark.parametrize("path", PATHS)
def test_gelu_each_path_within_its_budget(backend, dtype, path):
    _native_or_skip(backend, path)
    x, want, floor = _gelu_sweep(dtype)
    got = _np(backend, _call(act.gelu, path, to_backend(backend, np.array(x))))
    err = _flushed(backend, "gelu", want, dtype,
                   oracles.ulp_error(got, want, np.dtype(dtype), floor=floor))
    budget = records.ulp_budget("gelu", dtype)
    i = int(np.argmax(err))
    assert err[i] <= budget, f"gelu ({path}): {err[i]} ulp at x = {x[i]!r}: {got[i]!r} " \
                             f"vs {want[i]!r}"


# ============================================================================ tier X
@pytest.mark.spec("erf", tier="X")
def test_erf_native_and_standard_within_the_budget_of_each_other(backend, dtype):
    _native_or_skip(backend)
    x, _ = _erf_sweep(dtype)
    xb = to_backend(backend, np.array(x))
    native = _np(backend, _call(act.erf, "dispatched", xb))
    standard = _np(backend, _call(act.erf, "standard", xb))
    diff = oracles.ulp_error(native, standard, np.dtype(dtype))
    i = int(np.argmax(diff))
    assert diff[i] <= records.ulp_budget("erf", dtype), \
        f"native and standard erf differ by {diff[i]} ulp at x = {x[i]!r}"


@pytest.mark.spec("gelu", tier="X")
def test_gelu_native_and_standard_within_the_budget_of_each_other(backend, dtype):
    _native_or_skip(backend)
    if _special.wider(backend.xp, backend.asarray(np.zeros(1, dtype))) is None:
        pytest.skip(f"{dtype} has no wider dtype on {backend.id}: GELU keeps the standard path")
    x, want, floor = _gelu_sweep(dtype)
    xb = to_backend(backend, np.array(x))
    native = _np(backend, _call(act.gelu, "dispatched", xb))
    standard = _np(backend, _call(act.gelu, "standard", xb))
    diff = _flushed(backend, "gelu", want, dtype,
                    oracles.ulp_error(native, standard, np.dtype(dtype), floor=floor))
    i = int(np.argmax(diff))
    assert diff[i] <= records.ulp_budget("gelu", dtype), \
        f"native and standard GELU differ by {diff[i]} ulp at x = {x[i]!r}"


#: the library each backend's namespace must dispatch to (None: the pure-standard code)
EXPECTED = {"numpy": "scipy.special", "torch": "torch.special", "jax": "jax.scipy.special",
            "cupy": "cupyx.scipy.special", "array_api_strict": None, "dask": None}


@pytest.mark.spec("erf", "gelu", tier="X")
def test_dispatch_picks_the_namespaces_own_functions(backend):
    expected = EXPECTED.get(backend.id.split(":")[0], None)
    if expected == "scipy.special":
        pytest.importorskip("scipy.special")
    found = _special.functions(backend.xp)
    assert (found.library if found else None) == expected
    with _special.native_special(False):
        assert _special.functions(backend.xp) is None
    if found is not None:  # float64 has nothing wider: GELU keeps Cody's form there
        if "float64" in backend.float_dtypes:
            assert _special.wider(backend.xp, backend.asarray(np.zeros(1))) is None
        assert _special.wider(backend.xp, backend.asarray(np.zeros(1, np.float32))) \
            in (backend.xp.float64, None)


# ============================================================================ low precision
@pytest.fixture(params=settings.LOW_DTYPES)
def low(request, backend):
    """float16 and bfloat16 (not `dtype`, the fixture the plugin gives float32 and float64)."""
    if request.param not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no {request.param}")
    return request.param


def _low_error(backend, name, x, want, got, dtype, floor=None):
    """ulps of `dtype` from the correctly rounded value; a backend that flushes float32
    subnormals (the working precision) is measured only where none can occur."""
    err = oracles.ulp_error(got, round_to(want, dtype), dtype, floor=floor)
    if spec.catalogue()[name].limit(backend.id, "R", act.SUBNORMAL):
        info = np.finfo("float32")
        err = np.where(np.abs(want) >= float(info.tiny) / float(info.eps), err, 0.0)
    return err


@pytest.mark.spec("erf", tier="R", identity="accuracy")
@pytest.mark.parametrize("path", PATHS)
def test_erf_each_path_within_its_budget_in_low_precision(backend, low, path):
    """Computed in float32 and rounded once: within the low-precision budget of the correctly
    rounded value on each path (the standard path in float16's own arithmetic was NaN for
    |x| in [3.8, 5.7]; torch's native bfloat16 erf, which the spec does not call, is 0 below
    1e−7)."""
    _native_or_skip(backend, path)
    x, want = _erf_sweep("float32")
    x = x.astype(host_dtype(low))
    want = oa.erf(x.astype(np.float64))
    got = _np(backend, _call(act.erf, path, to_backend(backend, x)))
    err = _low_error(backend, "erf", x, want, got, low)
    i = int(np.argmax(err))
    assert err[i] <= records.ulp_budget("erf", low), f"erf ({path}): {err[i]} ulp at {x[i]!r}"


@pytest.mark.spec("gelu", tier="R", identity="accuracy")
@pytest.mark.parametrize("path", PATHS)
def test_gelu_each_path_within_its_budget_in_low_precision(backend, low, path):
    _native_or_skip(backend, path)
    x = _gelu_sweep("float32")[0].astype(host_dtype(low))
    want = oa.ORACLES["gelu"](x.astype(np.float64))
    floor = oracles.scale_floor("gelu", want, (x.astype(np.float64),), {})
    got = _np(backend, _call(act.gelu, path, to_backend(backend, x)))
    err = _low_error(backend, "gelu", x, want, got, low, floor)
    i = int(np.argmax(err))
    assert err[i] <= records.ulp_budget("gelu", low), \
        f"gelu ({path}): {err[i]} ulp at x = {x[i]!r}: {got[i]!r} vs {want[i]!r}"


@pytest.mark.spec("gelu", tier="R", identities=("accuracy", "limits"))
@pytest.mark.parametrize("path", PATHS)
def test_gelu_float16_has_no_nan_and_gives_torchs_values_at_4(backend, path):
    """Issue 12: float16 GELU was NaN for |x| in [3.8, 5.7] on the standard path (Cody's
    erfc overflowed in float16), [4, −4] → [nan, nan]. Now [4.0, −1.267e−4], as F.gelu gives,
    and every one of float16's 65,536 values (both forms) gives a number, NaN only for NaN."""
    _native_or_skip(backend, path)
    if "float16" not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no float16")
    got = _np(backend, _call(act.gelu, path, to_backend(backend, np.array([4.0, -4.0],
                                                                           np.float16))))
    # GELU(−4) = −4·Φ(−4) = −1.26686…e−4, correctly rounded to float16: −1.2672e−4
    np.testing.assert_array_equal(got, np.array([4.0, -1.26686e-4], np.float16))
    every = np.arange(2**16, dtype=np.uint16).view(np.float16)
    xb = to_backend(backend, every)
    for approximate in ("none", "tanh"):
        y = _np(backend, _call(act.gelu, path, xb, approximate=approximate))
        assert np.array_equal(np.isnan(y), np.isnan(every)), \
            f"{approximate}: NaN at {every[np.isnan(y) != np.isnan(every)][:5]!r}"
