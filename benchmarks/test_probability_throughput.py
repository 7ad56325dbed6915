"""Softmax, logsumexp and softmax cross-entropy: time per call and achieved memory bandwidth.

Each benchmark times one call of the spec function on the backend under test, eager and
compiled from the same source (`backend.compile`: torch.compile, jax.jit; identity elsewhere),
ending every timed call with `backend.synchronize`, after warm-up rounds. `extra_info` records
the bytes a perfect kernel must move (each input read once, each output written once) and the
bandwidth that implies, so runs on different devices can be compared.
"""

from __future__ import annotations

import numpy as np
import pytest

import spec

SIZES = {"n14": (2**7, 2**7), "n20": (2**10, 2**10), "n22": (2**12, 2**10)}  # 2^k elements
MODES = ("eager", "compiled")


def _bytes(name: str, shape, itemsize: int) -> int:
    n = int(np.prod(shape))
    if name == "softmax":
        return 2 * n * itemsize  # read z, write s
    if name == "logsumexp":
        return (n + shape[0]) * itemsize
    return n * itemsize + shape[0] * 8  # logits + int64 labels → scalar


def _call(name, fn, backend, shape, dtype):
    rng = np.random.default_rng(0)
    z = backend.asarray(rng.normal(size=shape).astype(dtype))
    if name == "softmax_cross_entropy":
        y = backend.asarray(rng.integers(0, shape[-1], shape[0]))
        return lambda: fn(z, y)
    return lambda: fn(z)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name", ["softmax", "logsumexp", "softmax_cross_entropy"])
def test_throughput(benchmark, backend, name, size, mode):
    if backend.is_symbolic:
        pytest.skip("the symbolic backend is not timed")
    shape, dtype = SIZES[size], "float32"
    fn = getattr(spec, name)
    if mode == "compiled":
        fn = backend.compile(fn)
    call = _call(name, fn, backend, shape, dtype)

    def timed():
        with spec.value_checks(False):
            out = call()
        backend.synchronize(out)
        return out

    for _ in range(3):  # warm-up: compilation and caches stay out of the numbers
        timed()
    benchmark.group = f"{name} {size}"
    benchmark.pedantic(timed, rounds=10, iterations=1, warmup_rounds=1)
    moved = _bytes(name, shape, np.dtype(dtype).itemsize)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(
        backend=backend.id, device=backend.device_name(), mode=mode, dtype=dtype,
        elements=int(np.prod(shape)), bytes_moved=moved, gb_per_s=moved / median / 1e9,
    )
