"""Named array backends and how one is chosen.

`SPEC_BACKEND` holds one backend id or a comma-separated list (default: `numpy`)::

    SPEC_BACKEND=torch python -m conformance
    SPEC_BACKEND=numpy,torch,jax pytest conformance

Ids: numpy, array_api_strict, torch, torch:cuda, cupy, jax, jax:cuda, dask, sympy, or the
dotted name of any importable module that is an Array API namespace. An unknown id, a missing
library or a missing GPU is an error that says what to do; there is never a silent fall-back.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

from ._base import Backend, BackendUnavailable

__all__ = [
    "DEFAULT",
    "ENV_VAR",
    "IDS",
    "Backend",
    "BackendUnavailable",
    "available",
    "file_stem",
    "get",
    "parse",
    "selected",
]

ENV_VAR = "SPEC_BACKEND"
DEFAULT = "numpy"


def _numpy():
    from .numpy import NumpyBackend

    return NumpyBackend()


def _strict():
    from .array_api_strict import ArrayApiStrictBackend

    return ArrayApiStrictBackend()


def _torch(device: str) -> Callable[[], Backend]:
    def make():
        from .torch import TorchBackend

        return TorchBackend(device)

    return make


def _cupy():
    from .cupy import CupyBackend

    return CupyBackend()


def _jax(platform: str) -> Callable[[], Backend]:
    def make():
        from .jax import JaxBackend

        return JaxBackend(platform)

    return make


def _dask():
    from .dask import DaskBackend

    return DaskBackend()


def _sympy():
    from .sympy import SympyBackend

    return SympyBackend()


_FACTORIES: dict[str, Callable[[], Backend]] = {
    "numpy": _numpy,
    "array_api_strict": _strict,
    "torch": _torch("cpu"),
    "torch:cuda": _torch("cuda"),
    "cupy": _cupy,
    "jax": _jax("cpu"),
    "jax:cuda": _jax("cuda"),
    "dask": _dask,
    "sympy": _sympy,
}
#: every named backend id, in the order the report lists them
IDS: tuple[str, ...] = tuple(_FACTORIES)

_cache: dict[str, Backend] = {}


def _unknown(backend_id: str, why: str = "") -> ValueError:
    return ValueError(
        f"unknown backend {backend_id!r}{why}. Valid ids: {', '.join(IDS)}, or the dotted name "
        f"of an importable module that is an Array API namespace. Set {ENV_VAR} or pass "
        "--backend; several ids may be given separated by commas."
    )


def get(backend_id: str) -> Backend:
    """The backend named `backend_id` (created once, then cached).

    Raises `ValueError` for an unknown id and `BackendUnavailable` when the library or the
    device it needs is missing here.
    """
    backend_id = backend_id.strip()
    if backend_id in _cache:
        return _cache[backend_id]
    if backend_id in _FACTORIES:
        backend = _FACTORIES[backend_id]()
    else:
        if not backend_id or not all(part.isidentifier() for part in backend_id.split(".")):
            raise _unknown(backend_id)
        try:
            module = importlib.import_module(backend_id)
        except ImportError:
            raise _unknown(backend_id) from None
        from .generic import GenericBackend, looks_like_namespace

        if not looks_like_namespace(module):
            raise _unknown(backend_id, " (the module imports but is not an Array API namespace)")
        backend = GenericBackend(backend_id)
    _cache[backend_id] = backend
    return backend


def parse(value: str | None) -> list[str]:
    """Split a `SPEC_BACKEND`-style value into ids (unset or "": numpy); reject blank items,
    so that a value of only spaces is an error, not a silent NumPy run."""
    if value is None or value == "":
        return [DEFAULT]
    if not value.strip():
        raise ValueError(f"the backend id {value!r} is blank; name a backend ({', '.join(IDS)}) "
                         f"or leave it unset for {DEFAULT}")
    ids = [part.strip() for part in value.split(",")]
    if any(not part for part in ids):
        raise ValueError(f"empty backend id in {value!r}; write ids separated by commas")
    return list(dict.fromkeys(ids))


def selected(value: str | None = None) -> list[Backend]:
    """The backends named by `value`, or by the `SPEC_BACKEND` environment variable."""
    if value is None:
        value = os.environ.get(ENV_VAR)
    return [get(backend_id) for backend_id in parse(value)]


def available() -> dict[str, str | None]:
    """Every named backend id mapped to None when it runs here, else the reason it cannot."""
    out: dict[str, str | None] = {}
    for backend_id in IDS:
        try:
            get(backend_id)
            out[backend_id] = None
        except BackendUnavailable as exc:
            out[backend_id] = str(exc)
    return out


def file_stem(backend_id: str) -> str:
    """A file name for one backend's results: `torch:cuda` → `torch-cuda`."""
    return backend_id.replace(":", "-").replace("/", "-")
