"""array-api-strict: the standard and nothing more. Passing here proves `spec` is portable."""

from __future__ import annotations

import numpy as np

from ._base import Backend, require_module


class ArrayApiStrictBackend(Backend):
    id = "array_api_strict"
    library = "array-api-strict"

    def _namespace(self):
        return require_module("array_api_strict", backend_id=self.id, extra="test",
                              pip_name="array-api-strict")

    def _device(self):
        return self.xp.Device("CPU_DEVICE")

    def to_numpy(self, x) -> np.ndarray:
        return np.from_dlpack(x)
