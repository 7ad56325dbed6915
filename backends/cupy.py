"""CuPy on the first CUDA GPU, through array-api-compat's wrapper."""

from __future__ import annotations

import numpy as np

from ._base import Backend, BackendUnavailable, require_module


class CupyBackend(Backend):
    id = "cupy"
    library = "cupy"
    float_dtypes = ("float16", "float32", "float64")
    is_gpu = True

    def _namespace(self):
        self.cupy = require_module("cupy", backend_id=self.id, extra="cupy", pip_name="cupy")
        try:
            count = self.cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CUDARuntimeError when there is no driver or no GPU
            raise BackendUnavailable(
                f"backend 'cupy' needs a CUDA GPU, but CUDA reports none here ({exc})"
            ) from exc
        if count == 0:
            raise BackendUnavailable("backend 'cupy' needs a CUDA GPU, but CUDA reports none here")
        import array_api_compat.cupy as xp

        return xp

    def _device(self):
        return self.cupy.cuda.Device(0)

    def versions(self) -> dict[str, str]:
        out = super().versions()
        out.setdefault("cupy", self.cupy.__version__)
        return out

    def device_name(self) -> str:
        props = self.cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        return f"cuda ({name.decode() if isinstance(name, bytes) else name})"

    def asarray(self, host, dtype: str | None = None):
        host = np.asarray(host)
        dtype = dtype or host.dtype.name
        with self.device:
            return self.xp.asarray(host, dtype=self.dtype(dtype))

    def to_numpy(self, x) -> np.ndarray:
        return self.cupy.asnumpy(x)

    def synchronize(self, result=None) -> None:
        self.device.synchronize()

    def precision(self) -> dict:
        import os

        from ._base import gpu_math_libraries

        runtime = self.cupy.cuda.runtime
        out = {"CUPY_TF32": os.environ.get("CUPY_TF32", "0 (unset: TF32 off)"),
               "cuda_runtime": runtime.runtimeGetVersion(),
               "cuda_driver": runtime.driverGetVersion()}
        try:
            from cupy_backends.cuda.libs import cublas

            out["cublas"] = cublas.getVersion(self.cupy.cuda.device.get_cublas_handle())
        except Exception:  # a version probe never fails the run
            pass
        try:
            from cupy_backends.cuda.libs import cudnn

            out["cudnn"] = cudnn.getVersion()
        except Exception:  # a version probe never fails the run
            pass
        out.update(gpu_math_libraries())
        return out
