"""The one dispatch point for the special functions the Array API standard lacks (erf, erfc).

The standard has no error function, so `spec.activations` writes one with the standard's
functions alone (Cody's rational approximations). That is the reference, and it runs on every
namespace, but it takes some forty elementwise passes where a framework's own ``erf`` takes
one. So an equation that needs erf or erfc asks :func:`functions` first:

* a namespace that has its own special functions gets them — ``torch.special`` for PyTorch,
  ``jax.scipy.special`` for JAX, ``scipy.special`` for NumPy (when SciPy is installed),
  ``cupyx.scipy.special`` for CuPy;
* any other namespace (array-api-strict, Dask, the symbolic namespace, a library we have never
  seen) gets ``None``, and the equation uses its pure-standard code.

How a framework is found without importing one: ``spec`` imports no array library, and neither
does this module at import time. The namespace of the arrays in hand is recognised by
array-api-compat's ``is_torch_namespace``/``is_jax_namespace``/``is_cupy_namespace``/
``is_numpy_namespace`` (name checks that import nothing). A torch or JAX namespace means that
library is already loaded (its array is in hand), so its module is taken from ``sys.modules``
(``jax.scipy.special``, a submodule JAX may not have loaded yet, is imported then). SciPy is the
one optional import: tried once, the first time a NumPy array arrives, and if it is missing
NumPy simply uses the pure-standard code. The result is cached per library.

``native_special(False)`` switches the dispatch off inside a ``with`` block (a context
variable, so it is per thread and per task): the conformance suite runs the pure-standard
code that way on every backend, to keep both within their ulp budgets and within that budget
of each other (``conformance/test_special_dispatch.py``).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import sys
from collections.abc import Callable
from typing import NamedTuple

import array_api_compat

__all__ = ["Special", "functions", "native_special", "wider"]

_NATIVE = contextvars.ContextVar("spec_native_special", default=True)


class Special(NamedTuple):
    """A library's own special functions, elementwise, dtype- and device-preserving."""

    library: str
    erf: Callable
    erfc: Callable


@contextlib.contextmanager
def native_special(enabled: bool):
    """Use the namespaces' own erf/erfc (True, the default) or only the standard (False)."""
    token = _NATIVE.set(bool(enabled))
    try:
        yield
    finally:
        _NATIVE.reset(token)


def _library(xp) -> str | None:
    if array_api_compat.is_torch_namespace(xp):
        return "torch"
    if array_api_compat.is_jax_namespace(xp):
        return "jax"
    if array_api_compat.is_cupy_namespace(xp):
        return "cupy"
    if array_api_compat.is_numpy_namespace(xp):
        return "numpy"
    return None  # array-api-strict, Dask, SymPy, anything else: the standard only


def _loaded(name: str, library: str):
    """`name`, a module of `library` whose arrays are in hand (so it is loaded), or None."""
    if library not in sys.modules:
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _scipy_special():
    """scipy.special, imported the first time a NumPy array needs it; None without SciPy."""
    try:
        return importlib.import_module("scipy.special")
    except ImportError:
        return None


_CACHE: dict[str, Special | None] = {}


def _load(library: str) -> Special | None:
    if library in _CACHE:
        return _CACHE[library]
    if library == "torch":
        module, name = _loaded("torch.special", "torch"), "torch.special"
    elif library == "jax":
        module, name = _loaded("jax.scipy.special", "jax"), "jax.scipy.special"
    elif library == "cupy":
        module, name = _loaded("cupyx.scipy.special", "cupy"), "cupyx.scipy.special"
    else:
        module, name = _scipy_special(), "scipy.special"
    found = None
    if module is not None and hasattr(module, "erf") and hasattr(module, "erfc"):
        found = Special(name, module.erf, module.erfc)
    _CACHE[library] = found
    return found


def functions(xp) -> Special | None:
    """The namespace's own erf and erfc, or None where the pure-standard code must be used.

    ``xp`` is the namespace of the equation's inputs (from array-api-compat). None too while
    ``native_special(False)`` is in force.
    """
    if not _NATIVE.get():
        return None
    library = _library(xp)
    return None if library is None else _load(library)


def wider(xp, x):
    """The real floating dtype above x's in which x's device computes, or None.

    float16 and bfloat16 → float32; float32 → float64 where the device has float64 (not on
    Apple's MPS, not in JAX without ``jax_enable_x64``); float64 → None. Only consulted where
    :func:`functions` found a library (so ``xp`` is torch, JAX, CuPy or NumPy).
    """
    dtype = x.dtype
    if dtype == xp.float64:
        return None
    if dtype != xp.float32:
        return xp.float32  # float16, bfloat16
    library = _library(xp)
    if library == "torch" and getattr(getattr(x, "device", None), "type", "cpu") == "mps":
        return None
    if library == "jax":
        jax = sys.modules.get("jax")
        if jax is None or not getattr(jax.config, "jax_enable_x64", False):
            return None
    return xp.float64
