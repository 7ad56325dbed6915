"""The hardware's limits, measured in the same run as the benchmarks they judge.

Two numbers per backend and precision bound every kernel (the roofline model):

* **copy bandwidth** B — bytes per second of a device-to-device copy of a large array
  (read once, written once), the most any bandwidth-bound kernel can hope to move;
* **matmul peak** P — FLOP/s of a large square matrix product through the standard's
  ``matmul`` (multiply-adds count two), the most a compute-bound kernel can hope to do.

A kernel that must move ``bytes`` and do ``flops`` cannot finish sooner than
``max(bytes / B, flops / P)``; the fraction of the roofline reached is that bound divided by
the measured time (1.0 = as fast as the hardware allows).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Roofline:
    backend: str
    device: str
    precision: str
    copy_bytes: int
    copy_gb_per_s: float
    matmul_n: int
    matmul_tflops: float

    def bound_seconds(self, nbytes: float, flops: float) -> float:
        return max(nbytes / (self.copy_gb_per_s * 1e9), flops / (self.matmul_tflops * 1e12))

    def as_dict(self) -> dict:
        return asdict(self)


def _median_seconds(backend, call, repeat: int) -> float:
    backend.synchronize(call())  # warm-up (allocations, kernel selection)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = call()
        backend.synchronize(out)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(backend, precision: str, *, quick: bool = False) -> Roofline:
    """Copy bandwidth and matmul peak of `backend` in `precision`, timed here and now."""
    from .cases import _put, itemsize

    xp = backend.xp
    gpu = backend.is_gpu
    elements = 2**22 if quick else (2**28 if gpu else 2**26)
    source = _put(backend, np.ones(elements, dtype=np.float32), precision)
    copy_s = _median_seconds(backend, lambda: xp.asarray(source, copy=True), 3 if quick else 10)
    moved = 2 * elements * itemsize(precision)
    n = 512 if quick else (8192 if gpu else 2048)
    rng = np.random.default_rng(0)
    a = _put(backend, rng.standard_normal((n, n), dtype=np.float32), precision)
    b = _put(backend, rng.standard_normal((n, n), dtype=np.float32), precision)
    mm_s = _median_seconds(backend, lambda: xp.matmul(a, b), 3 if quick else 10)
    return Roofline(backend.id, backend.device_name(), precision, moved, moved / copy_s / 1e9,
                    n, 2.0 * n**3 / mm_s / 1e12)
