"""Dask arrays (lazy, chunked; runs past one machine with dask.distributed).

Inputs are split into chunks (at most half of each axis) so the conformance suite exercises
reductions that cross chunk boundaries, which is where chunked code goes wrong.
"""

from __future__ import annotations

import numpy as np

from ._base import Backend, require_module


class DaskBackend(Backend):
    id = "dask"
    library = "dask"

    def _namespace(self):
        self.da = require_module("dask.array", backend_id=self.id, extra="dask", pip_name="dask")
        import array_api_compat.dask.array as xp

        return xp

    def _device(self):
        return "cpu"

    def asarray(self, host, dtype: str | None = None):
        host = np.array(host, dtype=dtype or None, copy=True)
        chunks = tuple(max(1, (n + 1) // 2) for n in host.shape)
        return self.da.from_array(host, chunks=chunks or ())

    def to_numpy(self, x) -> np.ndarray:
        return np.asarray(x.compute() if hasattr(x, "compute") else x)
