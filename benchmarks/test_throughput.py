"""Time per call of each equation family on each backend: eager, compiled, native.

* ``eager`` — the spec function as written, run op by op by the backend;
* ``compiled`` — the same source through ``backend.compile`` (torch.compile, jax.jit); skipped
  where the backend has no compiler (NumPy, CuPy, Dask: it would equal eager);
* ``native`` — the framework's own kernel on the same inputs (``torch.softmax``,
  ``F.layer_norm``, ``F.scaled_dot_product_attention``, fused ``torch.optim.Adam``,
  ``jax.nn.*``, ``scipy.special.*``); skipped where the framework has none.

Every timed call ends with the backend's ``synchronize`` (a lazy Dask result is computed), after
warm-up calls that take compilation out of the numbers. Value checks (``spec.value_checks``)
are off while timing: they are the caller's guard, not the equation's cost. Rounds are
calibrated so each benchmark takes about a second. ``extra_info`` records the cost model and
the roofline measured in the same session; nothing about speed is asserted.
"""

from __future__ import annotations

import time

import pytest

import spec

from .cases import CASES, PRECISIONS

MODES = ("eager", "compiled", "native")


def _finish(backend, out):
    backend.synchronize(out)  # a GPU backend waits for its queue; Dask computes its graph
    return out


def _has_compiler(backend) -> bool:
    from backends._base import Backend

    return type(backend).compile is not Backend.compile


def _out_of_memory(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return isinstance(exc, MemoryError) or "out of memory" in text \
        or "outofmemory" in text or "resource_exhausted" in text


def _skip_reason(backend, precision, mode) -> str | None:
    if backend.is_symbolic:
        return "the symbolic backend holds SymPy expressions, not numbers: nothing to time"
    if precision == "bfloat16" and backend.library not in ("torch", "jax"):
        return f"{backend.id} has no bfloat16"
    if mode == "compiled" and not _has_compiler(backend):
        return f"{backend.id} has no compiler (backend.compile is the identity: compiled = eager)"
    return None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("precision", PRECISIONS)
def test_throughput(benchmark, backend, case, size, precision, mode, rooflines, quick):
    reason = _skip_reason(backend, precision, mode)
    if reason:
        pytest.skip(reason)
    family = CASES[case]
    try:
        work = family.build(backend, size, precision)
    except Exception as exc:
        if _out_of_memory(exc):
            pytest.skip(f"out of memory building {case} at 2^{size.bit_length() - 1} "
                        f"on {backend.device_name()}")
        raise
    if mode == "native":
        if backend.library not in work.native:
            pytest.skip(f"{backend.library} has no kernel of its own for {case}")
        call = work.native[backend.library]
    else:
        fn = family.fn if mode == "eager" else backend.compile(family.fn)

        def call():
            return fn(*work.args, **work.kwargs)

    def timed():
        with spec.value_checks(False):
            out = call()
        return _finish(backend, out)

    try:
        for _ in range(2):  # warm-up: compilation, autotuning and allocator growth stay out
            timed()
        start = time.perf_counter()
        timed()
        once = time.perf_counter() - start
    except Exception as exc:
        if _out_of_memory(exc):
            pytest.skip(f"out of memory running {case} {mode} at 2^{size.bit_length() - 1} "
                        f"on {backend.device_name()}")
        raise
    budget, (low, high) = (0.1, (2, 5)) if quick else (1.0, (3, 100))
    rounds = min(high, max(low, int(budget / max(once, 1e-9))))
    benchmark.group = f"{case} 2^{size.bit_length() - 1} {precision}"
    benchmark.pedantic(timed, rounds=rounds, iterations=1, warmup_rounds=0)

    roof = rooflines(backend, precision)
    median = benchmark.stats.stats.median
    bound = roof.bound_seconds(work.bytes, work.flops)
    benchmark.extra_info.update(
        case=case, backend=backend.id, library=backend.library, gpu=backend.is_gpu,
        device=backend.device_name(), mode=mode, precision=precision, elements=size,
        shape=work.shape, bytes_moved=work.bytes, flops=work.flops,
        gb_per_s=work.bytes / median / 1e9, tflop_per_s=work.flops / median / 1e12,
        roofline=roof.as_dict(), roofline_seconds=bound, roofline_fraction=bound / median,
        limited_by="memory" if work.bytes / roof.copy_gb_per_s / 1e9 >= work.flops
        / roof.matmul_tflops / 1e12 else "compute",
    )
