"""Benchmark options and fixtures: the sizes to run (--bench-quick), the cases and sizes each
test is parametrised over, and the hardware's measured roofline (once per backend and
precision per session)."""

from __future__ import annotations

import pytest

from .cases import CASES, QUICK
from .roofline import measure


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ai-math-spec benchmarks")
    group.addoption("--bench-quick", action="store_true",
                    help="the two smallest sizes and few rounds: a smoke run (CI), not numbers")
    group.addoption("--bench-max-size", type=int, default=None, metavar="LOG2",
                    help="leave out sizes above 2^LOG2 elements (a machine with little memory)")


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


@pytest.fixture(scope="session")
def quick(request) -> bool:
    return _quick(request.config)


@pytest.fixture(scope="session")
def rooflines(quick):
    """(backend id, precision) → Roofline, measured on first use."""
    cache = {}

    def get(backend, precision):
        key = (backend.id, precision)
        if key not in cache:
            cache[key] = measure(backend, precision, quick=quick)
        return cache[key]

    return get
