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
calibrated so each benchmark takes about a second, or share out what a time budget leaves
(``--bench-budget``, benchmarks/budget.py). ``extra_info`` records the cost model and the
roofline measured in the same session, its bandwidth at this benchmark's byte count (so a
working set in cache is judged against the cache); nothing about speed is asserted here
(tests/test_benchmarks.py fails on a fraction of the roofline above 1).
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


_NATIVE: dict[tuple, bool] = {}


def has_native(case: str, backend, precision: str) -> bool:
    """Whether `backend`'s library has a kernel of its own for `case`: asked of the workload at
    the case's smallest size, once per case, backend and precision (no native benchmark then
    builds a large input only to skip)."""
    key = (case, backend.id, precision)
    if key not in _NATIVE:
        family = CASES[case]
        try:
            _NATIVE[key] = backend.library in family.build(backend, min(family.sizes),
                                                           precision).native
        except Exception:  # the benchmark itself reports what is wrong
            _NATIVE[key] = True
    return _NATIVE[key]


def skip_reason(backend, precision, mode) -> str | None:
    """Why this backend cannot run this benchmark at all (None: it can)."""
    if backend.is_symbolic:
        return "the symbolic backend holds SymPy expressions, not numbers: nothing to time"
    if precision == "bfloat16" and backend.library not in ("torch", "jax"):
        return f"{backend.id} has no bfloat16"
    if mode == "compiled" and not _has_compiler(backend):
        return f"{backend.id} has no compiler (backend.compile is the identity: compiled = eager)"
    return None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("precision", PRECISIONS)
def test_throughput(benchmark, backend, case, size, precision, mode, rooflines, quick,
                    time_budget, request):
    reason = skip_reason(backend, precision, mode)
    if reason:
        pytest.skip(reason)
    if mode == "native" and not has_native(case, backend, precision):
        pytest.skip(f"{backend.library} has no kernel of its own for {case}")
    family = CASES[case]
    began = time.perf_counter()
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
        if mode == "compiled" and backend.library == "torch":
            # a fresh start per benchmark: each shape is compiled static (no recompile limit,
            # no automatic dynamic shapes carried over from the previous size)
            backend.torch._dynamo.reset()
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
    roof = rooflines(backend, precision)
    matched = roof.bandwidth_at(work.bytes)  # measured here, before the rounds, on first use
    if time_budget is not None:
        rounds = time_budget.rounds(request.node.nodeid, once)
    else:
        budget, (low, high) = (0.1, (2, 5)) if quick else (1.0, (3, 100))
        rounds = min(high, max(low, int(budget / max(once, 1e-9))))
    fixed = time.perf_counter() - began - once
    benchmark.group = f"{case} 2^{size.bit_length() - 1} {precision}"
    benchmark.pedantic(timed, rounds=rounds, iterations=1, warmup_rounds=0)
    if time_budget is not None:
        time_budget.finished(request.node.nodeid, fixed)

    median = benchmark.stats.stats.median
    # a bandwidth-bound family is judged by its bytes alone: its nominal FLOPs (exp and erf
    # counted as one) are not matmul FLOPs, and the matmul peak does not bound them
    flops = work.flops if family.bound == "compute" else 0.0
    bound = roof.bound_seconds(work.bytes, flops)
    if bound > median and roof.refine(work.bytes, matmul=flops > 0):
        # faster than the roofline: the limits are measured again, longer (a busy moment
        # during the first measurement); a row still above 100 % is the cost model's error
        bound, matched = roof.bound_seconds(work.bytes, flops), roof.bandwidth_at(work.bytes)
    memory_s, compute_s = work.bytes / matched / 1e9, flops / roof.matmul_tflops / 1e12
    benchmark.extra_info.update(
        case=case, backend=backend.id, library=backend.library, gpu=backend.is_gpu,
        device=backend.device_name(), mode=mode, precision=precision, elements=size,
        shape=work.shape, bytes_moved=work.bytes, flops=work.flops,
        gb_per_s=work.bytes / median / 1e9, tflop_per_s=work.flops / median / 1e12,
        roofline=roof.as_dict(work.bytes), roofline_seconds=bound,
        roofline_fraction=bound / median,
        main_memory_fraction=roof.bound_seconds(work.bytes, flops, matched=False) / median,
        limited_by="memory" if memory_s >= compute_s else "compute",
    )
