"""PyTorch on the CPU (`torch`) or on a CUDA GPU (`torch:cuda`)."""

from __future__ import annotations

import importlib

import numpy as np

from ._base import Backend, BackendUnavailable, require_module

#: the recompile limit per function of a compiled conformance run (torch's default is 8)
RECOMPILE_LIMIT = 512


class TorchBackend(Backend):
    library = "torch"
    float_dtypes = ("float16", "bfloat16", "float32", "float64")
    has_autograd = True
    compiler = "torch.compile"

    def __init__(self, device: str = "cpu") -> None:
        self._device_kind = device
        self.id = "torch" if device == "cpu" else f"torch:{device}"
        self.is_gpu = device != "cpu"
        super().__init__()

    def _namespace(self):
        self.torch = require_module("torch", backend_id=self.id, extra="torch")
        import array_api_compat.torch as xp

        return xp

    def _device(self):
        torch = self.torch
        if self._device_kind == "cuda" and not torch.cuda.is_available():
            cuda = torch.version.cuda
            build = "a CPU-only build" if cuda is None else f"CUDA {cuda}"
            raise BackendUnavailable(
                f"backend {self.id!r} needs a CUDA GPU, but torch.cuda.is_available() is False "
                f"here (torch {torch.__version__}, {build}). Use SPEC_BACKEND=torch for the CPU."
            )
        return torch.device(self._device_kind)

    def device_name(self) -> str:
        if self._device_kind == "cuda":
            return f"cuda ({self.torch.cuda.get_device_name(self.device)})"
        return "cpu"

    def asarray(self, host, dtype: str | None = None):
        host = np.asarray(host)
        dtype = dtype or host.dtype.name
        if dtype == "bfloat16" or host.dtype.name == "bfloat16":
            return self._asarray_bfloat16(host)
        # torch.asarray(numpy) would share memory with the host array: copy, so the test's
        # host data and the backend's input are independent (inputs must never be modified).
        return self.torch.tensor(host, dtype=self.dtype(dtype), device=self.device)

    def to_numpy(self, x) -> np.ndarray:
        x = x.detach().cpu()
        if x.dtype == self.torch.bfloat16:  # NumPy has no bfloat16: ml_dtypes', exactly
            from ._base import host_dtype

            return x.float().numpy().astype(host_dtype("bfloat16"))
        return x.numpy()

    def synchronize(self, result=None) -> None:
        if self._device_kind == "cuda":
            self.torch.cuda.synchronize(self.device)

    def compile(self, fn):
        return self.torch.compile(fn)

    def prepare_for_compiled_conformance(self) -> None:
        # Past its recompile limit, torch.compile runs a function eagerly with only a warning
        # (https://docs.pytorch.org/docs/stable/torch.compiler_troubleshooting.html): raise the
        # limits well above what the suite needs, and make reaching them an error.
        config = importlib.import_module("torch._dynamo.config")
        if not all(hasattr(config, k) for k in ("recompile_limit", "fail_on_recompile_limit_hit")):
            raise BackendUnavailable(
                f"compiled conformance on {self.id!r} needs a torch whose dynamo config has "
                f"recompile_limit and fail_on_recompile_limit_hit (torch "
                f"{self.torch.__version__} does not): it would run eagerly past the limit"
            )
        config.recompile_limit = max(config.recompile_limit, RECOMPILE_LIMIT)
        config.accumulated_recompile_limit = max(config.accumulated_recompile_limit,
                                                 8 * RECOMPILE_LIMIT)
        config.fail_on_recompile_limit_hit = True
        config.suppress_errors = False

    def vjp(self, fn, primals, cotangent):
        torch = self.torch
        leaves = [p.detach().clone().requires_grad_(True) for p in primals]
        with torch.enable_grad():
            out = fn(*leaves)
            grads = torch.autograd.grad(out, leaves, grad_outputs=cotangent, allow_unused=True)
        return tuple(torch.zeros_like(p) if g is None else g for p, g in zip(leaves, grads))

    def prepare_for_conformance(self) -> None:
        self.torch.backends.cuda.matmul.allow_tf32 = False
        self.torch.backends.cudnn.allow_tf32 = False
        self.torch.set_float32_matmul_precision("highest")

    def precision(self) -> dict:
        from ._base import gpu_math_libraries

        torch = self.torch
        matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
        out = {
            "torch.get_float32_matmul_precision": torch.get_float32_matmul_precision(),
            "torch.backends.cuda.matmul.allow_tf32": matmul.allow_tf32,
            "torch.backends.cudnn.allow_tf32": cudnn.allow_tf32,
            "torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction":
                matmul.allow_fp16_reduced_precision_reduction,
            "torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction":
                matmul.allow_bf16_reduced_precision_reduction,
            "cuda": torch.version.cuda,
            "cudnn": cudnn.version() if cudnn.is_available() else None,
        }
        if self.is_gpu:
            out["compute_capability"] = ".".join(
                map(str, torch.cuda.get_device_capability(self.device)))
        out.update(gpu_math_libraries())
        return out
