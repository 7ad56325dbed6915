"""Benchmark options and fixtures: the sizes to run (--bench-quick), the time budget
(--bench-budget), the cases and sizes each test is parametrised over, the hardware's measured
roofline (once per backend and precision per session, its bandwidth at each byte count on
first use), and what goes into pytest-benchmark's JSON besides the timings: backend ids
instead of backend objects in each benchmark's params, and each backend's precision
environment (TF32 flags, matmul precision, cuBLAS/cuDNN versions) in the machine info."""

from __future__ import annotations

import time

import pytest

from .budget import STASH as _BUDGET
from .cases import CASES, QUICK
from .roofline import measure


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ai-math-spec benchmarks")
    group.addoption("--bench-quick", action="store_true",
                    help="the two smallest sizes and few rounds: a smoke run (CI), not numbers")
    group.addoption("--bench-max-size", type=int, default=None, metavar="LOG2",
                    help="leave out sizes above 2^LOG2 elements (a machine with little memory)")
    group.addoption("--bench-budget", type=float, default=None, metavar="SECONDS",
                    help="choose families, sizes and rounds to fit SECONDS (benchmarks/budget.py)")
    group.addoption("--bench-started", type=float, default=None, metavar="MONOTONIC",
                    help="when the budget's clock started (time.monotonic(); default: now)")


def _quick(config) -> bool:
    return bool(config.getoption("--bench-quick"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if {"case", "size"} <= set(metafunc.fixturenames):
        quick = _quick(metafunc.config)
        largest = metafunc.config.getoption("--bench-max-size")
        pairs = [(name, n) for name, case in CASES.items()
                 for n in (QUICK if quick else case.sizes)
                 if largest is None or n <= 2**largest]
        metafunc.parametrize("case,size", pairs,
                             ids=[f"{name}-n{n.bit_length() - 1}" for name, n in pairs])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items) -> None:
    """Under --bench-budget: keep the benchmarks that fit, in the order of their priority."""
    seconds = config.getoption("--bench-budget")
    if seconds is None:
        return
    from . import budget as budget_mod
    from .test_throughput import has_native, skip_reason

    started = config.getoption("--bench-started") or time.monotonic()
    runnable, probes, unrunnable, reasons = [], {}, [], {}
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        backend = params.get("backend")
        if backend is None:
            continue
        reason = skip_reason(backend, params.get("precision"), params.get("mode"))
        if reason is None and params.get("mode") == "native" and not has_native(
                params["case"], backend, params["precision"]):
            reason = f"{backend.library} has no kernel of its own for {params['case']}"
        if reason:
            # deselected with its reason counted, not skipped one by one: a skip costs each
            # benchmark's fixtures, seconds in all on a machine shared with other jobs
            unrunnable.append(item)
            reasons[reason] = reasons.get(reason, 0) + 1
            continue
        if backend.id not in probes:
            probes[backend.id] = budget_mod.probe(backend)
        runnable.append(item)
    gpu_run = any(getattr(i.callspec.params["backend"], "is_gpu", False) for i in runnable)
    plan, order, dropped = budget_mod.plan(
        runnable, seconds=seconds, started=started, gpu_run=gpu_run,
        n_cases=len({i.callspec.params["case"] for i in runnable}), probes=probes,
        share=budget_mod.cpu_share())
    plan.not_runnable = reasons
    config.stash[_BUDGET] = plan
    out = set(runnable) | set(unrunnable)
    rest = [i for i in items if i not in out]
    if dropped or unrunnable:
        config.hook.pytest_deselected(items=dropped + unrunnable)
    items[:] = order + rest


def pytest_runtest_setup(item) -> None:
    plan = item.config.stash.get(_BUDGET, None)
    if plan is not None and (reason := plan.should_skip(item.nodeid)):
        pytest.skip(reason)


@pytest.fixture(scope="session")
def quick(request) -> bool:
    return _quick(request.config)


@pytest.fixture
def time_budget(request):
    """The run's `Budget` (benchmarks/budget.py), or None without --bench-budget."""
    return request.config.stash.get(_BUDGET, None)


@pytest.fixture(scope="session")
def rooflines(request, quick):
    """(backend, precision) → Roofline, measured on first use."""
    cache = {}
    budget = request.config.getoption("--bench-budget")
    light = quick or (budget is not None and budget < 1200)  # a long run measures fully

    def get(backend, precision):
        key = (backend.id, precision)
        if key not in cache:
            cache[key] = measure(backend, precision, quick=quick, light=light)
        return cache[key]

    return get


# ------------------------------------------------------------------ the JSON file
def _selected_backends(config):
    try:
        from conformance import settings

        return config.stash[settings.BACKENDS]
    except (ImportError, KeyError):
        return []


def pytest_benchmark_update_machine_info(config, machine_info) -> None:
    machine_info["backends"] = {
        b.id: {"device": b.device_name(), "versions": b.versions(), "precision": b.precision()}
        for b in _selected_backends(config) if not b.is_symbolic}


def pytest_benchmark_update_json(config, benchmarks, output_json) -> None:
    for bench in output_json.get("benchmarks", []):
        params = bench.get("params") or {}
        for key, value in list(params.items()):
            if hasattr(value, "id") and hasattr(value, "xp"):  # a Backend: its id
                params[key] = value.id
    plan = config.stash.get(_BUDGET, None)
    if plan is not None:
        output_json["budget"] = plan.summary()
