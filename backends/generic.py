"""Any importable module that is an Array API namespace, named by its dotted path.

This is how a library author brings up a new backend: `SPEC_BACKEND=mylib.array_api`.
The namespace must have `asarray` and the elementwise functions of the standard; arrays come
back to the host through DLPack (or `__array__` where DLPack is missing).
"""

from __future__ import annotations

import importlib

import numpy as np

from ._base import Backend, _distribution_version

_REQUIRED = ("asarray", "exp", "log", "sum", "max", "where", "isdtype")


def looks_like_namespace(module) -> bool:
    return all(hasattr(module, name) for name in _REQUIRED)


class GenericBackend(Backend):
    def __init__(self, module_name: str) -> None:
        self.id = module_name
        self.library = module_name.split(".")[0]
        self._module = importlib.import_module(module_name)
        super().__init__()
        self.float_dtypes = tuple(
            name for name in ("float32", "float64") if hasattr(self._module, name)
        )

    def _namespace(self):
        import array_api_compat

        sample = self._module.asarray([0.0])
        try:
            return array_api_compat.array_namespace(sample)
        except TypeError:
            return self._module

    def versions(self) -> dict[str, str]:
        out = super().versions()
        version = _distribution_version(self.library.replace("_", "-")) or getattr(
            self._module, "__version__", None
        )
        if version:
            out[self.library] = version
        return out

    def asarray(self, host, dtype: str | None = None):
        host = np.asarray(host)
        return self.xp.asarray(host.copy(), dtype=self.dtype(dtype or host.dtype.name))

    def to_numpy(self, x) -> np.ndarray:
        try:
            return np.from_dlpack(x)
        except (TypeError, AttributeError, BufferError, RuntimeError):
            return np.asarray(x)
