"""The conformance plugin's hooks (conformance/plugin.py) that guard a long run."""

from __future__ import annotations

pytest_plugins = ["pytester"]

# one @given test with more parametrisations than Python's recursion limit has frames, as
# `test_property` has (about 2,500); the last test reads how deep its settings chain has grown
_MANY = """
import pytest
from hypothesis import given, settings, strategies as st

@pytest.mark.parametrize("i", range(1200))
@settings(max_examples=1, database=None)
@given(x=st.integers())
def test_many(i, x):
    pass

def test_zz_settings_chain():
    s, depth = test_many._hypothesis_internal_use_settings, 0
    while getattr(s, "_fallback", None) is not None:
        s, depth = s._fallback, depth + 1
    print("DEPTH", depth)
"""


def test_a_parametrised_hypothesis_test_keeps_its_settings_over_many_calls(pytester):
    # without the plugin's wrapper every call adds a parent to the shared settings, and after
    # about 950 calls each call fails with a RecursionError
    pytester.makepyfile(test_sample=_MANY)
    result = pytester.runpytest_subprocess("-s", "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1201)
    result.stdout.re_match_lines([r".*DEPTH [0-3]$"])
