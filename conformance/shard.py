"""The rotating thorough shard: each CI landing explores a different slice of the suite.

`pytest --thorough-shard KEY` keeps only the Hypothesis tests, orders them by a hash of KEY
and the test's id, and runs them at the `thorough` profile (10,000 examples, not
derandomised) until `--shard-budget` seconds have passed. CI passes the commit hash as KEY,
so each landing starts its exploration somewhere else in the suite, and the tests each landing
reaches differ. A failure fails the run like any other; Hypothesis prints the blob that
reproduces it (`print_blob`), and the counter-example becomes an `@example` on its test.

A test runs its 10,000 examples or until it has had `--shard-test-seconds` (or the budget
ends), whichever comes first: then it stops drawing and passes on the examples it ran, all of
which passed (a test reached late, or with a slow backend, still gets its turn, and no test
keeps the shard long past its budget). A test that has failed is never cut: Hypothesis goes on
to shrink the counter-example, within its own five-minute limit. Tests the budget leaves for a
later landing are not run and not reported as skipped: their turn is passed over. The terminal
summary says how many tests were reached and how many examples they ran. With pytest-xdist each
worker keeps the budget from the end of its own collection.
"""

from __future__ import annotations

import functools
import hashlib
import time
import unittest

import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import StopTest, UnsatisfiedAssumption

THOROUGH = "thorough"


def is_hypothesis_test(item: pytest.Item) -> bool:
    return bool(getattr(getattr(item, "obj", None), "is_hypothesis_test", False))


def order(key: str, nodeids) -> list[str]:
    """The test ids in the order this shard key visits them (a stable pseudo-random order)."""
    return sorted(nodeids, key=lambda n: hashlib.sha256(f"{key}\0{n}".encode()).hexdigest())


class _TimeUp(unittest.SkipTest):
    """Raised in place of a test's next example once its time is up. Hypothesis re-raises a
    skip at once, without shrinking or reporting; the shard turns it back into a pass."""


class ThoroughShard:
    """The pytest plugin object behind `--thorough-shard` (registered by conformance.plugin)."""

    def __init__(self, key: str, budget_s: float, test_s: float = 120.0):
        if not key.strip():
            raise pytest.UsageError("--thorough-shard needs a key (CI passes the commit hash)")
        if not budget_s > 0:
            raise pytest.UsageError(f"--shard-budget must be a positive number of seconds; "
                                    f"got {budget_s}")
        if not test_s > 0:
            raise pytest.UsageError(f"--shard-test-seconds must be a positive number of "
                                    f"seconds; got {test_s}")
        self.key, self.budget_s, self.test_s = key, budget_s, test_s
        self.start = time.monotonic()
        self.ran: set[str] = set()
        self.examples = 0
        self.cut = 0  # tests stopped at their time share, every example drawn having passed
        hypothesis_settings.load_profile(THOROUGH)

    def pytest_collection_modifyitems(self, config, items):
        keep = [i for i in items if is_hypothesis_test(i)]
        dropped = [i for i in items if not is_hypothesis_test(i)]
        rank = {n: r for r, n in enumerate(order(self.key, [i.nodeid for i in keep]))}
        items[:] = sorted(keep, key=lambda i: rank[i.nodeid])
        if dropped:
            config.hook.pytest_deselected(items=dropped)

    def pytest_collection_finish(self, session):
        self.start = time.monotonic()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        # the budget is checked between tests: a test once started runs all its examples
        if time.monotonic() - self.start <= self.budget_s:
            return None
        return True  # its turn is passed over: not run, no report

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        if not is_hypothesis_test(item):
            return (yield)
        handle = item.obj.hypothesis
        inner = handle.inner_test
        stop_at = min(self.start + self.budget_s, time.monotonic() + self.test_s)
        state = {"examples": 0, "failed": False}

        @functools.wraps(inner)
        def time_up() -> bool:
            return not state["failed"] and time.monotonic() > stop_at

        def timed(*args, **kwargs):
            # time is checked as an example ends, not before the next begins: a test that
            # draws in its body (st.data()) must make the draws Hypothesis has seen at that
            # point of its tree, or Hypothesis reports its data generation as inconsistent
            state["examples"] += 1
            try:
                result = inner(*args, **kwargs)
            except (UnsatisfiedAssumption, StopTest) as exc:
                # a rejected draw, or one that overran (StopTest, a BaseException): not a
                # failure, and the time is up after it too (a test whose valid examples are
                # exhausted draws only these)
                raise (_TimeUp() if time_up() else exc) from None
            except (unittest.SkipTest, pytest.skip.Exception):
                raise  # a documented skip
            except BaseException:
                state["failed"] = True  # from now on Hypothesis shrinks it, uncut
                raise
            if time_up():
                raise _TimeUp
            return result

        handle.inner_test = timed  # Hypothesis's documented hook for wrapping each example
        try:
            return (yield)
        except _TimeUp:
            item.user_properties.append(("thorough_cut", True))
            return None
        finally:
            handle.inner_test = inner
            item.user_properties.append(("thorough_examples", state["examples"]))

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            self.ran.add(report.nodeid)
        # under pytest-xdist the counts travel from the workers with the reports
        props = dict(report.user_properties)
        if report.when == "call":
            self.examples += props.get("thorough_examples", 0)
            self.cut += bool(props.get("thorough_cut"))

    def pytest_terminal_summary(self, terminalreporter):
        terminalreporter.write_line(
            f"thorough shard {self.key[:12]}: {len(self.ran)} Hypothesis tests reached at the "
            f"{THOROUGH} profile within a budget of {self.budget_s:.0f} s, {self.examples} "
            f"examples in all; {self.cut} stopped at their {self.test_s:.0f} s share with every "
            f"example passed; the next key visits them in another order")
