"""The symbolic backend: the spec's own code run on arrays of SymPy expressions (tier S)."""

from __future__ import annotations

import numpy as np

from ._base import Backend, require_module


class SympyBackend(Backend):
    id = "sympy"
    library = "sympy"
    float_dtypes = ("float64",)
    is_symbolic = True

    def _namespace(self):
        require_module("sympy", backend_id=self.id, extra="test")
        from . import _symbolic

        return _symbolic

    def _device(self):
        return "sympy"

    def asarray(self, host, dtype: str | None = None):
        host = np.asarray(host)
        dtype = dtype or ("float64" if host.dtype.kind == "f" else host.dtype.name)
        return self.xp.asarray(host.tolist(), dtype=self.dtype(dtype))

    def to_numpy(self, x) -> np.ndarray:
        """Evaluate the expressions numerically (they must be free of symbols)."""
        return np.asarray(x.to_expr(), dtype=object).astype(float)

    def symbols(self, name: str, shape, **assumptions):
        return self.xp.symbols(name, shape, **assumptions)
