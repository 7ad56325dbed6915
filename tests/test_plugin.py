"""The conformance plugin's hooks (conformance/plugin.py) that guard a long run."""

from __future__ import annotations

import pytest

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


_COUNTED = """
from hypothesis import given, strategies as st

CALLS = []

@given(x=st.integers())
def test_counted(backend, x):
    CALLS.append(backend.id)

def test_zz_counts():
    print("CALLS", {b: CALLS.count(b) for b in sorted(set(CALLS))})
"""


def test_a_backend_draws_its_share_of_the_examples(pytester, monkeypatch):
    # numpy draws the ci profile's 20 examples, dask a tenth of them; the report header
    # names the share, and the thorough shard (its own profile) draws them all
    pytest.importorskip("dask", reason="the share is dask's")
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")
    pytester.makepyfile(test_sample=_COUNTED)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider",
                                           "--backend", "numpy,dask")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*hypothesis profile: ci (dask draws 10% of the examples)",
                                 "*CALLS {'dask': 2, 'numpy': 20}*"])
