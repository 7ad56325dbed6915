"""A pytest plugin that keeps a test session inside a deadline (used by the GPU session).

Loaded with ``-p benchmarks.deadline``; inert unless ``SPEC_SESSION_DEADLINE`` holds a Unix
time. Then:

* the tests are put in a fixed pseudo-random order (a hash of each test's id), so a session
  cut short has still run a sample of every chapter, tier and backend rather than the first
  few files;
* once the deadline has passed, every test still to run is skipped with the reason "not run:
  the session's time budget ran out", so the report is written (and says so) instead of the
  process being killed with nothing to show.
"""

from __future__ import annotations

import hashlib
import os
import time

import pytest

ENV_VAR = "SPEC_SESSION_DEADLINE"
REASON = "not run: the session's time budget ran out"


def _deadline() -> float | None:
    value = os.environ.get(ENV_VAR)
    return float(value) if value else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items) -> None:
    if _deadline() is None:
        return
    items.sort(key=lambda item: hashlib.sha1(item.nodeid.encode()).hexdigest())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """Past the deadline, report the test skipped without setting up its fixtures (a
    fraction of a millisecond each: a suite of thousands is wound up in seconds)."""
    deadline = _deadline()
    if deadline is None or time.time() <= deadline:
        return None
    from _pytest.reports import TestReport

    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    path, line, _ = item.location
    report = TestReport(item.nodeid, item.location, dict.fromkeys(item.keywords, 1),
                        "skipped", (str(path), (line or 0) + 1, f"Skipped: {REASON}"),
                        "setup", user_properties=list(item.user_properties))
    ihook.pytest_runtest_logreport(report=report)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True
