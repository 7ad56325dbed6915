"""Backend selection and the backends themselves: ids, errors, moving data, compiling, autograd.

The GPU ids (`torch:cuda`, `cupy`, `jax:cuda`) are checked for real on every machine: where the
GPU (or the library) is missing they must raise `BackendUnavailable` with a message that says
what is missing and what to do; where a GPU is present they must work.
"""

from __future__ import annotations

import importlib
import importlib.util
import time

import array_api_compat
import numpy as np
import pytest

import backends
from backends._base import BackendUnavailable, require_module
from backends.generic import GenericBackend

#: the CPU backends and the module each one needs
CPU_BACKENDS = {
    "numpy": "numpy",
    "array_api_strict": "array_api_strict",
    "torch": "torch",
    "jax": "jax",
    "dask": "dask",
    "sympy": "sympy",
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _backend(backend_id: str):
    """The backend, or a skip naming the library when that library is not installed here.

    A library that is installed but whose backend cannot be created is a failure, not a skip.
    """
    module = CPU_BACKENDS[backend_id]
    if not _installed(module):
        pytest.skip(f"the {module!r} library is not installed here")
    return backends.get(backend_id)


@pytest.fixture(params=list(CPU_BACKENDS))
def cpu_backend(request):
    return _backend(request.param)


# --- parse: the SPEC_BACKEND syntax ----------------------------------------------------------
@pytest.mark.parametrize("value", [None, ""])
def test_parse_defaults_to_numpy(value):
    assert backends.parse(value) == ["numpy"]
    assert backends.DEFAULT == "numpy"


@pytest.mark.parametrize("value", ["   ", "\t"])
def test_parse_refuses_a_blank_id_instead_of_running_numpy(value):
    with pytest.raises(ValueError, match="is blank"):
        backends.parse(value)


def test_parse_comma_lists_keep_order_and_strip_blanks():
    assert backends.parse("numpy") == ["numpy"]
    assert backends.parse("torch,numpy") == ["torch", "numpy"]
    assert backends.parse(" numpy , jax ,dask") == ["numpy", "jax", "dask"]


def test_parse_removes_duplicates_keeping_the_first():
    assert backends.parse("torch,numpy,torch,numpy") == ["torch", "numpy"]
    assert backends.parse("numpy, numpy") == ["numpy"]


@pytest.mark.parametrize("value", ["numpy,,torch", "numpy,", ",numpy", "numpy, ,torch"])
def test_parse_rejects_an_empty_item(value):
    with pytest.raises(ValueError, match="empty backend id"):
        backends.parse(value)


# --- get: unknown ids, modules that are not namespaces, the generic backend ------------------
@pytest.mark.parametrize("bad", ["nonsense", "torch:rocm", "numpy cupy", "no_such_module_xyz.sub"])
def test_unknown_id_is_a_value_error_listing_every_id(bad):
    with pytest.raises(ValueError) as info:
        backends.get(bad)
    message = str(info.value)
    assert repr(bad.strip()) in message
    for backend_id in backends.IDS:
        assert backend_id in message, f"{backend_id!r} missing from: {message}"
    assert backends.ENV_VAR in message


def test_ids_are_the_documented_ones():
    assert set(backends.IDS) == {
        "numpy", "array_api_strict", "torch", "torch:cuda", "cupy", "jax", "jax:cuda", "dask",
        "sympy",
    }


@pytest.mark.parametrize("module", ["json", "os.path", "backends"])
def test_a_module_that_is_not_a_namespace_is_a_value_error(module):
    with pytest.raises(ValueError, match="not an Array API namespace"):
        backends.get(module)


def test_generic_backend_from_a_dotted_module_name():
    backend = backends.get("array_api_compat.numpy")
    assert isinstance(backend, GenericBackend)
    assert backend.id == "array_api_compat.numpy"
    assert backends.get("array_api_compat.numpy") is backend  # cached
    assert not backend.has_autograd
    host = np.array([[1.5, -2.25], [0.0, 3.0e10]], dtype=np.float64)
    x = backend.asarray(host)
    host[0, 0] = 99.0  # the backend array is a copy
    back = backend.to_numpy(x)
    assert isinstance(back, np.ndarray)
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back, [[1.5, -2.25], [0.0, 3.0e10]])
    # spec code runs on it: softmax of two equal logits is exactly one half each
    import spec

    out = backend.to_numpy(spec.softmax(backend.asarray(np.zeros(2))))
    np.testing.assert_array_equal(out, [0.5, 0.5])


def test_selected_from_the_environment_variable(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "numpy,array_api_compat.numpy")
    assert [b.id for b in backends.selected()] == ["numpy", "array_api_compat.numpy"]
    monkeypatch.setenv(backends.ENV_VAR, "array_api_compat.numpy")
    assert [b.id for b in backends.selected()] == ["array_api_compat.numpy"]
    # an explicit value (pytest --backend) overrides the variable
    assert [b.id for b in backends.selected("numpy")] == ["numpy"]
    monkeypatch.setenv(backends.ENV_VAR, "")
    assert [b.id for b in backends.selected()] == ["numpy"]
    monkeypatch.delenv(backends.ENV_VAR)
    assert [b.id for b in backends.selected()] == ["numpy"]
    monkeypatch.setenv(backends.ENV_VAR, "nonsense")
    with pytest.raises(ValueError, match="unknown backend 'nonsense'"):
        backends.selected()


def test_env_var_name():
    assert backends.ENV_VAR == "SPEC_BACKEND"


# --- GPU ids on this machine ------------------------------------------------------------------
def _torch_has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _cupy_has_gpu() -> bool:
    import cupy

    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _jax_has_gpu() -> bool:
    import jax

    try:
        return len(jax.devices("gpu")) > 0
    except RuntimeError:
        return False


@pytest.mark.parametrize(
    ("backend_id", "module", "has_gpu"),
    [("torch:cuda", "torch", _torch_has_gpu), ("cupy", "cupy", _cupy_has_gpu),
     ("jax:cuda", "jax", _jax_has_gpu)],
)
def test_gpu_backend_is_unavailable_with_a_clear_message_or_works(backend_id, module, has_gpu):
    if not _installed(module):
        with pytest.raises(BackendUnavailable) as info:
            backends.get(backend_id)
        message = str(info.value)
        assert "pip install" in message, message
        assert repr(backend_id) in message, message
        return
    if not has_gpu():
        with pytest.raises(BackendUnavailable) as info:
            backends.get(backend_id)
        message = str(info.value)
        assert "GPU" in message or "CUDA" in message, message
        assert repr(backend_id) in message, message
        return
    backend = backends.get(backend_id)  # a GPU is here: the backend must work
    assert backend.is_gpu
    host = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(backend.to_numpy(backend.asarray(host)), host)


def test_available_maps_every_id_to_none_or_a_reason():
    status = backends.available()
    assert tuple(status) == backends.IDS
    assert status["numpy"] is None
    for backend_id, reason in status.items():
        assert reason is None or (isinstance(reason, str) and backend_id in reason)


# --- a missing library names the install command ----------------------------------------------
def test_require_module_names_the_extra():
    with pytest.raises(BackendUnavailable) as info:
        require_module("no_such_module_xyz", backend_id="x", extra="jax")
    message = str(info.value)
    assert "pip install 'ai-math-spec[jax]'" in message
    assert "'no_such_module_xyz'" in message
    assert "'x'" in message
    assert isinstance(info.value.__cause__, ImportError)


def test_require_module_without_extra_names_the_pip_package():
    with pytest.raises(BackendUnavailable, match="pip install some-dist"):
        require_module("no_such_module_xyz", backend_id="x", extra="", pip_name="some-dist")


def test_require_module_returns_the_module():
    assert require_module("json", backend_id="x", extra="test") is importlib.import_module("json")


@pytest.mark.parametrize(
    ("backend_id", "module", "extra"),
    [("torch", "torch", "torch"), ("jax", "jax", "jax"), ("dask", "dask.array", "dask"),
     ("array_api_strict", "array_api_strict", "test"), ("sympy", "sympy", "test"),
     ("cupy", "cupy", "cupy")],
)
def test_missing_library_names_the_extra(monkeypatch, backend_id, module, extra):
    real = importlib.import_module

    def fake(name, package=None):
        if name == module or name.startswith(module + "."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", fake)
    monkeypatch.setattr(backends, "_cache", {})  # bypass backends created earlier
    with pytest.raises(BackendUnavailable) as info:
        backends.get(backend_id)
    message = str(info.value)
    assert f"pip install 'ai-math-spec[{extra}]'" in message, message
    assert repr(backend_id) in message
    assert backends.available()[backend_id] == message


# --- every CPU backend: moving data, device, sync, compile ------------------------------------
def test_asarray_copies_the_host_array(cpu_backend):
    host = np.array([1.0, 2.0, 3.0])
    x = cpu_backend.asarray(host)
    host[:] = -7.0
    np.testing.assert_array_equal(
        cpu_backend.to_numpy(x), [1.0, 2.0, 3.0],
        err_msg=f"{cpu_backend.id}: asarray shares memory with the host array",
    )


def _round_trip_values(dtype: str) -> np.ndarray:
    if dtype == "int64":
        return np.array([[-3, 0, 7], [2**40 + 1, -(2**40), 1]], dtype=np.int64)
    info = np.finfo(dtype)
    return np.array([[0.1, -2.5, info.max], [info.tiny, -0.0, 1.0 / 3.0]], dtype=dtype)


@pytest.mark.parametrize("dtype_name", ["float32", "float64", "int64"])
def test_to_numpy_round_trips_exactly(cpu_backend, dtype_name):
    dtype = dtype_name  # (`dtype` is a fixture name the conformance plugin parametrises)
    if dtype.startswith("float") and dtype not in cpu_backend.float_dtypes:
        with pytest.raises(BackendUnavailable, match=f"no {dtype}"):
            cpu_backend.asarray(np.zeros(2, dtype=dtype), dtype=dtype)
        return
    host = _round_trip_values(dtype)
    back = cpu_backend.to_numpy(cpu_backend.asarray(host))
    assert isinstance(back, np.ndarray)
    assert back.shape == host.shape
    np.testing.assert_array_equal(back, host)
    if not cpu_backend.is_symbolic:  # symbolic expressions are evaluated as float64
        assert back.dtype == host.dtype, f"{cpu_backend.id}: {dtype} came back as {back.dtype}"
        np.testing.assert_array_equal(np.signbit(back), np.signbit(host))


@pytest.mark.parametrize("dtype_name", ["float64", "int64"])
def test_asarray_keeps_dtype_and_lands_on_the_device(cpu_backend, dtype_name):
    dtype = dtype_name
    x = cpu_backend.asarray(np.arange(6, dtype=dtype).reshape(2, 3))
    assert array_api_compat.device(x) == cpu_backend.device
    assert x.dtype == cpu_backend.dtype(dtype)
    assert tuple(x.shape) == (2, 3)


def test_asarray_with_an_explicit_dtype_converts(cpu_backend):
    x = cpu_backend.asarray([1, 2, 3], dtype="float64")
    assert x.dtype == cpu_backend.dtype("float64")
    np.testing.assert_array_equal(cpu_backend.to_numpy(x), [1.0, 2.0, 3.0])


def test_synchronize_returns(cpu_backend):
    x = cpu_backend.asarray(np.ones(3))
    y = x * 2.0
    assert cpu_backend.synchronize() is None
    assert cpu_backend.synchronize(y) is None
    np.testing.assert_array_equal(cpu_backend.to_numpy(y), [2.0, 2.0, 2.0])


def _affine(x, *, scale=2.0):
    return x * scale + 1.0


@pytest.mark.parametrize(
    "backend_id",
    # torch.compile takes 5 s warm and over 20 s with a cold Inductor cache
    [pytest.param(b, marks=pytest.mark.slow) if b == "torch" else b for b in CPU_BACKENDS],
)
def test_compile_gives_the_same_values(backend_id):
    cpu_backend = _backend(backend_id)
    start = time.perf_counter()
    compiled = cpu_backend.compile(_affine)
    x = cpu_backend.asarray(np.array([1.0, -2.0, 0.5]))
    np.testing.assert_array_equal(cpu_backend.to_numpy(compiled(x)), [3.0, -3.0, 2.0])
    np.testing.assert_array_equal(cpu_backend.to_numpy(compiled(x, scale=3.0)), [4.0, -5.0, 2.5])
    # the options are not frozen into the first compilation
    np.testing.assert_array_equal(cpu_backend.to_numpy(compiled(x, scale=2.0)), [3.0, -3.0, 2.0])
    elapsed = time.perf_counter() - start
    assert elapsed < 120, f"{cpu_backend.id}.compile took {elapsed:.0f} s"


# --- autograd --------------------------------------------------------------------------------
@pytest.mark.parametrize("backend_id", ["numpy", "array_api_strict", "dask", "sympy"])
def test_backends_without_autograd(backend_id):
    backend = _backend(backend_id)
    assert backend.has_autograd is False
    x = backend.asarray(np.array([1.0, 2.0]))
    with pytest.raises(NotImplementedError, match="no autograd"):
        backend.vjp(lambda a: a * a, (x,), x)


@pytest.mark.parametrize("backend_id", ["torch", "jax"])
def test_vjp_equals_the_hand_computed_gradient(backend_id):
    backend = _backend(backend_id)
    assert backend.has_autograd is True
    xp = backend.xp
    host = np.array([1.5, -2.0, 0.25])
    x = backend.asarray(host)

    # elementwise square with a vector cotangent c: J^T c = 2 x c
    c = backend.asarray(np.array([1.0, 3.0, -2.0]))
    (gx,) = backend.vjp(lambda a: a**2, (x,), c)
    np.testing.assert_allclose(backend.to_numpy(gx), [3.0, -12.0, -1.0], rtol=1e-15)

    # the sum of squares with a scalar cotangent 0.5: 0.5 · 2x = x
    half = backend.asarray(np.asarray(0.5))
    (gx,) = backend.vjp(lambda a: xp.sum(a**2), (x,), half)
    np.testing.assert_allclose(backend.to_numpy(gx), host, rtol=1e-15)

    # two primals: d/dx Σ x·y = y, d/dy = x (times the cotangent 2)
    y = backend.asarray(np.array([4.0, 5.0, -1.0]))
    two = backend.asarray(np.asarray(2.0))
    gx, gy = backend.vjp(lambda a, b: xp.sum(a * b), (x, y), two)
    np.testing.assert_allclose(backend.to_numpy(gx), [8.0, 10.0, -2.0], rtol=1e-15)
    np.testing.assert_allclose(backend.to_numpy(gy), [3.0, -4.0, 0.5], rtol=1e-15)

    # the primals are left as they were
    np.testing.assert_array_equal(backend.to_numpy(x), host)
