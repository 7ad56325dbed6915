"""NumPy, through array-api-compat's wrapper: the default backend and the host format."""

from __future__ import annotations

from ._base import Backend


class NumpyBackend(Backend):
    id = "numpy"
    library = "numpy"
    float_dtypes = ("float16", "float32", "float64")

    def _namespace(self):
        import array_api_compat.numpy as xp

        return xp

    def _device(self):
        return "cpu"
