"""The rotating thorough shard (conformance/shard.py): what it keeps, its profile, its budget."""

from __future__ import annotations

import pytest

from conformance import shard

pytest_plugins = ["pytester"]

_TESTS = """
from hypothesis import given, settings, strategies as st

@given(st.integers())
def test_drawn_one(n):
    print("EXAMPLES", settings.default.max_examples, settings.default.derandomize)

@given(st.integers())
def test_drawn_two(n):
    pass

def test_fixed():
    pass
"""


def test_order_is_stable_and_rotates_with_the_key():
    ids = [f"conformance/test_x.py::test_{i}" for i in range(50)]
    first = shard.order("a1b2c3", ids)
    assert sorted(first) == sorted(ids)
    assert shard.order("a1b2c3", list(reversed(ids))) == first  # the key alone decides
    assert shard.order("d4e5f6", ids) != first  # another landing starts elsewhere


def test_only_hypothesis_tests_run_at_the_thorough_profile(pytester):
    pytester.makepyfile(test_sample=_TESTS)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider",
                                           "--thorough-shard", "abc", "--shard-budget", "600")
    result.assert_outcomes(passed=2, deselected=1)
    result.stdout.fnmatch_lines(["EXAMPLES 10000 False",
                                 "thorough shard abc: 2 Hypothesis tests reached*"])


def test_a_spent_budget_passes_over_the_rest(pytester):
    pytester.makepyfile(test_sample=_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--thorough-shard", "abc",
                                           "--shard-budget", "1e-9")
    result.assert_outcomes(deselected=1)  # the budget is spent before the first test's turn
    result.stdout.fnmatch_lines(["thorough shard abc: 0 Hypothesis tests reached*"])


_SLOW = """
import time
from hypothesis import given, strategies as st

@given(st.integers())
def test_slow(n):
    time.sleep(0.05)

@given(st.integers(0, 10))
def test_slow_and_false(n):
    time.sleep(0.05)
    assert n < 5

@given(st.data())
def test_slow_and_sometimes_overrunning(data):
    # some draws overrun Hypothesis's buffer (it raises StopTest, a BaseException, and counts
    # the draw as invalid): such a test is still cut at its share
    time.sleep(0.05)
    if data.draw(st.booleans()):
        data.draw(st.lists(st.binary(min_size=1000, max_size=1000), min_size=20, max_size=20))
"""


def test_a_test_stops_at_its_share_but_a_failure_is_never_cut(pytester):
    pytester.makepyfile(test_sample=_SLOW)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--thorough-shard", "abc",
                                           "--shard-test-seconds", "1")
    # 10,000 examples of 50 ms would take over 8 minutes: the first and the third test stop
    # after about 20, passing; the second fails within its first examples and is shrunk, not cut
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*n=5,",
                                 "thorough shard abc: 3 Hypothesis tests reached*; 2 stopped at "
                                 "their 1 s share*"])
    assert result.duration < 60


@pytest.mark.parametrize("args, message", [
    (("--thorough-shard", " "), "--thorough-shard needs a key*"),
    (("--thorough-shard", "abc", "--shard-budget", "0"), "--shard-budget must be a positive*"),
    (("--thorough-shard", "abc", "--shard-test-seconds", "-1"),
     "--shard-test-seconds must be a positive*"),
])
def test_bad_shard_options_are_usage_errors(pytester, args, message):
    pytester.makepyfile(test_sample=_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])
