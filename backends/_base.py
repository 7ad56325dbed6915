"""The `Backend` interface: everything the conformance suite and the benchmarks need to know
about one array library on one device.

A backend never does arithmetic of its own: the equations in `spec` get their namespace from
their inputs. A backend only makes inputs (host NumPy → its arrays, on its device), reads
results back, waits for the device, compiles, and differentiates where it can.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat
import numpy as np

#: every floating dtype a backend may have, by name, narrowest first
FLOATING = ("float16", "bfloat16", "float32", "float64")


def host_dtype(name: str) -> np.dtype:
    """The host (NumPy) dtype for a standard dtype name; bfloat16, which NumPy lacks, is
    ml_dtypes' (a dependency of JAX, and of this project's tests)."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _is_host_bfloat16(host: np.ndarray) -> bool:
    return host.dtype.kind == "V" and host.dtype.name == "bfloat16"


class BackendUnavailable(RuntimeError):
    """A backend that exists but cannot run here: its library is missing, or its device is."""


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def gpu_math_libraries() -> dict[str, str]:
    """Versions of the installed NVIDIA math wheels (cuBLAS, cuDNN, the CUDA runtime), which
    torch, JAX and CuPy load when they were installed from PyPI; empty on a CPU machine."""
    out = {}
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name.startswith(("nvidia-cublas", "nvidia-cudnn", "nvidia-cuda-runtime")):
            out[name] = dist.version
    return dict(sorted(out.items()))


def require_module(module: str, *, backend_id: str, extra: str, pip_name: str | None = None):
    """Import `module` or raise BackendUnavailable naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        hint = f"pip install 'ai-math-spec[{extra}]'" if extra else f"pip install {pip_name}"
        raise BackendUnavailable(
            f"backend {backend_id!r} needs the {pip_name or module!r} library, which is not "
            f"installed here ({exc}). Install it with: {hint}"
        ) from exc


class Backend:
    """One array library on one device.

    Subclasses set `id`, `library` (distribution whose version is reported) and implement
    `_namespace()` and, where different from the defaults, the other hooks.
    """

    id: str = ""
    library: str = ""
    #: the floating dtypes (by standard name) this backend supports, widest last; float16
    #: and bfloat16 are not in the standard, so a backend lists them where its library has them
    float_dtypes: tuple[str, ...] = ("float32", "float64")
    #: True where `vjp` works (reverse-mode autograd)
    has_autograd: bool = False
    #: True for the symbolic (SymPy) backend, whose arrays hold expressions, not numbers
    is_symbolic: bool = False
    #: True for backends whose device is a GPU
    is_gpu: bool = False
    #: what `compile` runs (the report names it for a run with SPEC_COMPILE=1)
    compiler: str = "none (compile is the identity)"
    #: the share of the Hypothesis profile's examples a property draws on this backend (1: all;
    #: a backend at many times NumPy's cost per example takes less, saying why)
    hypothesis_share: float = 1.0

    def __init__(self) -> None:
        self.xp = self._namespace()
        self.device = self._device()

    # --- what subclasses provide -------------------------------------------------------
    def _namespace(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _device(self) -> Any:
        return None

    # --- dtypes ------------------------------------------------------------------------
    def dtype(self, name: str):
        """The backend's dtype object for a standard dtype name ('float32', 'int64', 'bool')."""
        if name in FLOATING and name not in self.float_dtypes:
            raise BackendUnavailable(f"backend {self.id!r} has no {name}")
        return getattr(self.xp, name)

    # --- moving data -------------------------------------------------------------------
    def asarray(self, host, dtype: str | None = None):
        """Move a host value (NumPy array, list or scalar) to this backend's device, once."""
        host = np.asarray(host)
        if dtype is None:
            dtype = host.dtype.name
        if _is_host_bfloat16(host) or dtype == "bfloat16":
            return self._asarray_bfloat16(host)
        # copy: the caller's host array and the backend's input must stay independent
        return self.xp.asarray(host, dtype=self.dtype(dtype), device=self.device, copy=True)

    def _asarray_bfloat16(self, host: np.ndarray):
        """A host array (ml_dtypes' bfloat16, or any float) as this backend's bfloat16: moved as
        float32, which holds every bfloat16 exactly, and cast on the device."""
        target = self.dtype("bfloat16")
        wide = self.asarray(np.asarray(host, dtype=np.float32), dtype="float32")
        return self.xp.astype(wide, target)

    def to_numpy(self, x) -> np.ndarray:
        """Bring a backend array back to the host as a NumPy array (bfloat16 as ml_dtypes')."""
        return np.asarray(x)

    # --- timing, compiling, differentiating ---------------------------------------------
    def synchronize(self, result=None) -> None:
        """Wait until the device has finished all work queued so far (a no-op on the CPU)."""

    def compile(self, fn: Callable) -> Callable:
        """`fn` compiled by the backend's compiler (torch.compile, jax.jit); identity here."""
        return fn

    def vjp(self, fn: Callable, primals: Sequence, cotangent) -> tuple:
        """The vector-Jacobian product of `fn` at `primals` with `cotangent`, by autograd."""
        raise NotImplementedError(f"backend {self.id!r} has no autograd")

    def prepare_for_conformance(self) -> None:
        """Put the library in its most exact mode (TF32 off) for a conformance run."""

    def release_compiled(self) -> None:
        """Free the code `compile` made: a compiled conformance run calls this after each
        test, as a compiler that keeps every compilation exhausts the process's memory maps."""

    def prepare_for_compiled_conformance(self) -> None:
        """Make `compile` fail rather than quietly run eager code, for a compiled run (one whose
        tests call every equation many times with new shapes, dtypes and options)."""

    # --- reporting ---------------------------------------------------------------------
    def versions(self) -> dict[str, str]:
        out = {}
        for dist in (self.library, "array-api-compat", "numpy"):
            v = _distribution_version(dist) if dist else None
            if v:
                out[dist] = v
        return out

    def precision(self) -> dict[str, Any]:
        """The settings that change float results without changing the code: TF32 and
        reduced-precision flags, the default matmul precision, and the versions of the GPU
        math libraries (cuBLAS, cuDNN) where the library has them. Every conformance report
        and benchmark file records it; empty for a library without such settings."""
        return {}

    def device_name(self) -> str:
        return "cpu"

    def describe(self) -> str:
        versions = ", ".join(f"{k} {v}" for k, v in self.versions().items())
        dtypes = ", ".join(self.float_dtypes)
        return f"{self.id} on {self.device_name()} ({versions}; dtypes {dtypes})"

    def __repr__(self) -> str:
        return f"<Backend {self.id}>"


def _has_array(value) -> bool:
    """Whether `value` is an array, or a list, tuple or dict holding one (what a tracer takes)."""
    if isinstance(value, dict):
        return any(_has_array(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_array(v) for v in value)
    return is_array(value)


def is_array(value) -> bool:
    """Whether `value` is an array: not a NumPy scalar, nor a dtype class such as np.float32
    (which array-api-compat takes for an array, as it has `__array_namespace__`)."""
    return (array_api_compat.is_array_api_obj(value)
            and not isinstance(value, (np.generic, type)))


def _static_key(value):
    """A cache key for a static argument that tells apart what `==` conflates (1, 1.0 and True;
    0.0 and -0.0), with lists and dicts made hashable; TypeError if something is unhashable."""
    if isinstance(value, float):
        return (type(value), value.hex())
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_static_key(v) for v in value))
    if isinstance(value, dict):
        return (dict, tuple((k, _static_key(v)) for k, v in sorted(value.items())))
    hash(value)
    return (type(value), value)


def _call_static(fn, n_args, static, static_kwargs, arrays, array_kwargs):
    """Call `fn` with its static arguments (by position) and traced ones put back in place."""
    traced = iter(arrays)
    args = [static[i] if i in static else next(traced) for i in range(n_args)]
    return fn(*args, **static_kwargs, **array_kwargs)


def static_kwargs_compile(jit: Callable[[Callable], Callable], fn: Callable) -> Callable:
    """Compile `fn` once per distinct set of static arguments.

    Compilers such as `jax.jit` trace arrays but must see everything else as constants: the
    keyword options (axis, eps, …) and positional sizes, flags, callables or None (`causal_mask(
    n, m, xp=…)`). So every argument, positional or keyword, that is an array or holds one (a
    list, tuple or dict of parameters) is traced, every other one is static, and each distinct
    set of static arguments gets its own compiled function, cached.
    """
    cache: dict[tuple, Callable] = {}

    @functools.wraps(fn)
    def compiled(*args, **kwargs):
        static = {i: a for i, a in enumerate(args) if not _has_array(a)}
        static_kwargs = {k: v for k, v in kwargs.items() if not _has_array(v)}
        arrays = tuple(a for i, a in enumerate(args) if i not in static)
        array_kwargs = {k: v for k, v in kwargs.items() if k not in static_kwargs}
        bound = functools.partial(_call_static, fn, len(args), static, static_kwargs)
        try:
            key = (len(args), tuple(sorted(array_kwargs)), _static_key(static),
                   _static_key(static_kwargs))
        except TypeError:  # an unhashable static argument: compile for this call only
            return jit(bound)(arrays, array_kwargs)
        if key not in cache:
            cache[key] = jit(bound)
        return cache[key](arrays, array_kwargs)

    return compiled
