"""The hardware's limits, measured in the same run as the benchmarks they judge.

Two numbers bound every kernel (the roofline model):

* **bandwidth** B(b) — bytes per second the device moves when a kernel moves ``b`` bytes. It is
  measured *at that byte count*: the fastest of a copy of b/2 bytes into a buffer allocated
  beforehand (b/2 read, b/2 written), a sum over b bytes (b read) and an in-place update
  a ← a + b of two arrays of b/3 bytes (2b/3 read, b/3 written), each timed at its best
  round. A working set that fits in a cache is judged against the bandwidth of that cache, one
  in main memory against main memory, and the per-call overhead of a small kernel is in both
  numbers alike;
* **matmul peak** P — FLOP/s of a square matrix product through the standard's ``matmul``
  (multiply-adds count two), the best of a few sizes and rounds.

A kernel that must move ``bytes`` and do ``flops`` cannot finish sooner than
``max(bytes / B(bytes), flops / P)``; the fraction of the roofline reached is that bound divided
by the kernel's median time (a bandwidth-bound family passes ``flops=0``: its exp and erf are
not matmul FLOPs). Because B and P are best rounds of the cheapest kernels that move
those bytes, a fraction above 1 means the kernel moved fewer bytes (or did fewer FLOPs) than
the cost model says, or the measurement is broken: `tests/test_benchmarks.py` fails on one.
On a shared machine a short measurement can meet a busy moment that the kernel's own rounds
did not, so a row that comes out above 1 has its limits measured once more, longer
(`Roofline.refine`: B at its byte count, and P at more sizes for a compute-bound family),
keeping the better figure; a row still above 1 is the cost model's error.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

#: the largest working set of the main-memory figure shown on the page (and the GPU's is
#: above its 50–60 MB L2): 2²⁸ bytes moved on the CPU, 2³⁰ on a GPU, 2²² with --quick
MAIN_MEMORY_BYTES = {"cpu": 2**28, "gpu": 2**30, "quick": 2**22}


def _seconds_best(backend, call, *, budget: float, low: int, high: int) -> float:
    """The best time of `call` (ended by the backend's synchronize): at least `low` rounds,
    then more until `budget` seconds have passed (at most `high`). Rounds are counted by the
    clock, not calibrated from a first call that a busy machine may have slowed down."""
    backend.synchronize(call())  # warm-up: allocations, kernel selection, compilation
    best, rounds = math.inf, 0
    end = time.perf_counter() + budget
    while rounds < low or (rounds < high and time.perf_counter() < end):
        start = time.perf_counter()
        backend.synchronize(call())
        best = min(best, time.perf_counter() - start)
        rounds += 1
    return best


#: the kernels B(b) is the fastest of: name → (streams over the data, what it does). A copy
#: writes a buffer it does not read (a write-allocate cache reads it first, unseen); a sum
#: only reads; an in-place update a ← a + b reads two arrays and writes one it has just read,
#: as the optimisers' steps and other in-place kernels do
KERNELS = {"copy": 2, "read": 1, "update": 3}


def _primitive(backend, kernel: str, elements: int, precision: str):
    """A zero-argument callable running `kernel` (a key of KERNELS) over arrays of `elements`
    elements of `precision`; it moves KERNELS[kernel] · elements · itemsize bytes."""
    from .cases import _put

    xp = backend.xp
    src = _put(backend, np.ones(elements, dtype=np.float32), precision)
    lib = backend.library
    if kernel == "read":
        if lib == "jax":
            total = backend.jax.jit(lambda a: backend.jax.numpy.sum(a))
            return lambda: total(src)
        return lambda: xp.sum(src)
    if lib == "torch":
        dst = backend.torch.ones_like(src)
        return (lambda: dst.copy_(src)) if kernel == "copy" else (lambda: dst.add_(src))
    if lib == "jax":
        jax = backend.jax
        if kernel == "copy":
            neg = jax.jit(lambda a: -a)
            return lambda: neg(src)
        add = jax.jit(lambda a, b: a + b)
        other = _put(backend, np.ones(elements, dtype=np.float32), precision)
        return lambda: add(src, other)
    if lib in ("numpy", "cupy"):
        mod = np if lib == "numpy" else backend.cupy
        dst = mod.ones_like(src)

        def copy():
            mod.copyto(dst, src)
            return dst

        def update():
            mod.add(dst, src, out=dst)
            return dst

        return copy if kernel == "copy" else update
    if kernel == "copy":
        return lambda: xp.asarray(src, copy=True)
    other = xp.asarray(src, copy=True)
    return lambda: xp.add(src, other)


@dataclass
class Roofline:
    """The limits of one backend in one precision; `bandwidth_at` measures on first use."""

    backend: str
    device: str
    precision: str
    copy_bytes: int
    copy_gb_per_s: float
    matmul_n: int
    matmul_tflops: float
    #: bytes moved → (GB/s, the kernel that reached it: a key of KERNELS)
    bandwidth: dict[int, tuple[float, str]] = field(default_factory=dict)
    _measure: object = field(default=None, repr=False, compare=False)
    #: (bandwidth at a byte count, matmul peak) measured again, longer: see `refine`
    _again: object = field(default=None, repr=False, compare=False)
    refined: set = field(default_factory=set, repr=False, compare=False)

    def bandwidth_at(self, nbytes: int) -> float:
        """B(nbytes): GB/s of the fastest of the KERNELS moving `nbytes` bytes."""
        nbytes = int(nbytes)
        if nbytes not in self.bandwidth:
            if self._measure is None:
                raise KeyError(f"no bandwidth measured at {nbytes} bytes")
            self.bandwidth[nbytes] = self._measure(nbytes)
        return self.bandwidth[nbytes][0]

    def refine(self, nbytes: int, *, matmul: bool) -> bool:
        """Measure B(nbytes) again (and with `matmul`, the matmul peak, at more sizes) with
        more rounds, keeping the better figure; once per byte count and once for the peak.
        A kernel that seems faster than its roofline calls for it: on a shared machine one
        short measurement may have met a busy moment the kernel's rounds did not. True if
        anything was measured again."""
        if self._again is None:
            return False
        nbytes, did = int(nbytes), False
        if nbytes not in self.refined:
            self.refined.add(nbytes)
            self.bandwidth_at(nbytes)
            self.bandwidth[nbytes] = max(self.bandwidth[nbytes], self._again[0](nbytes))
            did = True
        if matmul and "matmul" not in self.refined:
            self.refined.add("matmul")
            tflops, n = self._again[1]()
            if tflops > self.matmul_tflops:
                self.matmul_tflops, self.matmul_n = tflops, n
            did = True
        return did

    def bound_seconds(self, nbytes: float, flops: float, *, matched: bool = True) -> float:
        """The least time to move `nbytes` and do `flops`: at the size-matched bandwidth, or
        (matched=False) at the main-memory copy bandwidth."""
        gb = self.bandwidth_at(int(nbytes)) if matched else self.copy_gb_per_s
        return max(nbytes / (gb * 1e9), flops / (self.matmul_tflops * 1e12))

    def as_dict(self, nbytes: int | None = None) -> dict:
        out = {"backend": self.backend, "device": self.device, "precision": self.precision,
               "copy_bytes": self.copy_bytes, "copy_gb_per_s": self.copy_gb_per_s,
               "matmul_n": self.matmul_n, "matmul_tflops": self.matmul_tflops}
        if nbytes is not None:
            gb, kernel = self.bandwidth[int(nbytes)]
            out.update(matched_bytes=int(nbytes), matched_gb_per_s=gb, matched_kernel=kernel)
        return out


def _bandwidth(backend, precision: str, *, quick: bool, light: bool):
    from .cases import itemsize

    size = itemsize(precision)
    budget, low, high = (0.03, 3, 10**5) if quick else (0.05, 3, 10**5) if light else \
        (0.15, 5, 10**5)

    def measure(nbytes: int) -> tuple[float, str]:
        best: tuple[float, str] = (0.0, "")
        # each kernel over arrays sized so that it moves nbytes (at least one element)
        for kernel, streams in KERNELS.items():
            elements = max(1, nbytes // (streams * size))
            call = _primitive(backend, kernel, elements, precision)
            seconds = _seconds_best(backend, call, budget=budget, low=low, high=high)
            best = max(best, (streams * elements * size / seconds / 1e9, kernel))
            del call
        return best

    return measure


def measure(backend, precision: str, *, quick: bool = False, light: bool = False) -> Roofline:
    """The main-memory copy bandwidth and the matmul peak of `backend` in `precision`, timed
    here and now; the bandwidth at other byte counts is measured as the benchmarks ask.
    `quick`: small sizes, few rounds (a smoke run); `light`: fewer rounds (a budgeted run)."""
    gpu = backend.is_gpu
    measure_at = _bandwidth(backend, precision, quick=quick, light=light)
    main = MAIN_MEMORY_BYTES["quick" if quick else "gpu" if gpu else "cpu"]
    gb, kernel = measure_at(main)
    sizes = (512,) if quick else ((8192,) if gpu else (2048,)) if light else \
        (4096, 8192) if gpu else (1024, 2048)
    best_tflops, best_n = _matmul_peak(backend, precision, sizes,
                                       budget=0.15 if quick else 0.3 if light else 0.6)
    # measured again, longer, where a kernel seems to beat its roofline (Roofline.refine)
    again = (_bandwidth(backend, precision, quick=False, light=False),
             lambda: _matmul_peak(backend, precision, (512, 1024, 2048) if not gpu
                                  else (2048, 4096, 8192, 16384), budget=0.4))
    return Roofline(backend.id, backend.device_name(), precision, main, gb, best_n, best_tflops,
                    {main: (gb, kernel)}, measure_at, again)


def _matmul_peak(backend, precision: str, sizes, *, budget: float) -> tuple[float, int]:
    """(TFLOP/s, n) of the fastest square matmul of the sizes n, at its best round."""
    from .cases import _put

    rng = np.random.default_rng(0)
    best_tflops, best_n = 0.0, 0
    for n in sizes:
        a = _put(backend, rng.standard_normal((n, n), dtype=np.float32), precision)
        b = _put(backend, rng.standard_normal((n, n), dtype=np.float32), precision)
        s = _seconds_best(backend, lambda a=a, b=b: backend.xp.matmul(a, b), budget=budget,
                          low=3, high=200)
        if 2.0 * n**3 / s / 1e12 > best_tflops:
            best_tflops, best_n = 2.0 * n**3 / s / 1e12, n
        del a, b
    return best_tflops, best_n
