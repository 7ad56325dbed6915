"""JAX on the CPU (`jax`) or a GPU (`jax:cuda`), with float64 enabled."""

from __future__ import annotations

import os

import numpy as np

from ._base import Backend, BackendUnavailable, require_module, static_kwargs_compile


class JaxBackend(Backend):
    library = "jax"
    float_dtypes = ("float16", "bfloat16", "float32", "float64")
    has_autograd = True
    compiler = "jax.jit"
    #: a tenth of the examples (two of the ci profile's 20: Hypothesis's first, all-zero draw
    #: and one more): JAX compiles every operation for every new shape, about 60 ms an
    #: operation on a CI core, and each example draws new shapes, so one example costs about a
    #: second (25 examples of five layer_norm properties: 25 s, 17 of them compiling), against
    #: milliseconds on NumPy. Tiers X and R check JAX's arithmetic on every record's fixed
    #: inputs against NumPy's and mpmath's, and the rotating thorough shard draws the full
    #: thorough profile on it
    hypothesis_share = 0.1

    def __init__(self, platform: str = "cpu") -> None:
        self._platform = platform
        self.id = "jax" if platform == "cpu" else "jax:cuda"
        self.is_gpu = platform != "cpu"
        super().__init__()

    def _namespace(self):
        self.jax = require_module("jax", backend_id=self.id, extra="jax")
        # float64 is off by default in JAX; the spec is checked in float64 too. This is a
        # process-wide switch (it does not change float32 results).
        self.jax.config.update("jax_enable_x64", True)
        import jax.numpy as xp

        return xp

    def _device(self):
        platform = "gpu" if self._platform == "cuda" else "cpu"
        try:
            return self.jax.devices(platform)[0]
        except RuntimeError as exc:
            raise BackendUnavailable(
                f"backend {self.id!r} needs a {platform.upper()} device, but JAX finds none "
                f"({exc}). Install jax[cuda12] on a machine with an NVIDIA GPU."
            ) from exc

    def device_name(self) -> str:
        return f"{self.device.platform} ({getattr(self.device, 'device_kind', '')})"

    def versions(self) -> dict[str, str]:
        out = super().versions()
        from ._base import _distribution_version

        if v := _distribution_version("jaxlib"):
            out["jaxlib"] = v
        return out

    def asarray(self, host, dtype: str | None = None):
        from ._base import host_dtype

        host = np.asarray(host)
        dtype = dtype or host.dtype.name
        # JAX takes ml_dtypes' bfloat16 host arrays as they are
        return self.jax.device_put(host.astype(host_dtype(dtype), copy=True), self.device)

    def synchronize(self, result=None) -> None:
        if result is not None:
            self.jax.block_until_ready(result)
        else:
            self.jax.effects_barrier()

    def compile(self, fn):
        return static_kwargs_compile(self.jax.jit, fn)

    def release_compiled(self) -> None:
        # XLA keeps every executable (3 memory maps each, op-by-op dispatch included): a
        # compiled run of tiers P and X reaches Linux's 65,530 maps and segfaults without this
        self.jax.clear_caches()

    def vjp(self, fn, primals, cotangent):
        _, pullback = self.jax.vjp(fn, *primals)
        return tuple(pullback(cotangent))

    def prepare_for_conformance(self) -> None:
        # float32 matmuls run in TF32 on Ampere and newer GPUs unless told otherwise
        # (jax-ml/jax#12008): enough to fail float32 tolerances. The run's reports say so.
        self.jax.config.update("jax_default_matmul_precision", "highest")
        # a conformance run compiles thousands of operations, the same ones in each pytest-xdist
        # worker and in each run: JAX's persistent cache keeps them all (a cached operation
        # loads in about 16 ms here against 66 ms to compile), unless the user chose a cache
        if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
            root = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
            self.jax.config.update("jax_compilation_cache_dir",
                                   os.path.join(root, "ai-math-spec", "jax"))
            self.jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
            self.jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

    def precision(self) -> dict:
        from ._base import gpu_math_libraries

        config = self.jax.config
        setting = config.jax_default_matmul_precision
        out = {
            "jax_default_matmul_precision": setting or (
                "default (bfloat16 passes, TF32-like, for float32 matmuls on GPUs and TPUs; "
                "full float32 on the CPU)"),
            "jax_enable_x64": bool(config.jax_enable_x64),
        }
        if self.is_gpu:
            out["platform_version"] = getattr(self.device.client, "platform_version", None)
        out.update(gpu_math_libraries())
        return out
