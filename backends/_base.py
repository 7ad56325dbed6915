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

import numpy as np


class BackendUnavailable(RuntimeError):
    """A backend that exists but cannot run here: its library is missing, or its device is."""


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


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
    #: the floating dtypes (by standard name) this backend supports, widest last
    float_dtypes: tuple[str, ...] = ("float32", "float64")
    #: True where `vjp` works (reverse-mode autograd)
    has_autograd: bool = False
    #: True for the symbolic (SymPy) backend, whose arrays hold expressions, not numbers
    is_symbolic: bool = False
    #: True for backends whose device is a GPU
    is_gpu: bool = False

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
        if name.startswith("float") and name not in self.float_dtypes:
            raise BackendUnavailable(f"backend {self.id!r} has no {name}")
        return getattr(self.xp, name)

    # --- moving data -------------------------------------------------------------------
    def asarray(self, host, dtype: str | None = None):
        """Move a host value (NumPy array, list or scalar) to this backend's device, once."""
        host = np.asarray(host)
        if dtype is None:
            dtype = host.dtype.name
        # copy: the caller's host array and the backend's input must stay independent
        return self.xp.asarray(host, dtype=self.dtype(dtype), device=self.device, copy=True)

    def to_numpy(self, x) -> np.ndarray:
        """Bring a backend array back to the host as a NumPy array."""
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

    # --- reporting ---------------------------------------------------------------------
    def versions(self) -> dict[str, str]:
        out = {}
        for dist in (self.library, "array-api-compat", "numpy"):
            v = _distribution_version(dist) if dist else None
            if v:
                out[dist] = v
        return out

    def device_name(self) -> str:
        return "cpu"

    def describe(self) -> str:
        versions = ", ".join(f"{k} {v}" for k, v in self.versions().items())
        dtypes = ", ".join(self.float_dtypes)
        return f"{self.id} on {self.device_name()} ({versions}; dtypes {dtypes})"

    def __repr__(self) -> str:
        return f"<Backend {self.id}>"


def static_kwargs_compile(jit: Callable[[Callable], Callable], fn: Callable) -> Callable:
    """Compile `fn` once per distinct set of keyword options.

    The equations take arrays positionally and options (axis, eps, …) by keyword; compilers
    such as `jax.jit` must see the options as constants, so each set of options gets its own
    compiled function, cached.
    """
    cache: dict[tuple, Callable] = {}

    @functools.wraps(fn)
    def compiled(*arrays, **options):
        key = tuple(sorted(options.items()))
        try:
            f = cache[key]
        except KeyError:
            f = cache[key] = jit(functools.partial(fn, **options))
        except TypeError:  # unhashable option (an array): no caching, compile the arrays only
            return jit(functools.partial(fn, **options))(*arrays)
        return f(*arrays)

    return compiled
