"""Suite-wide settings: Hypothesis profiles, the dtypes under test, the stash keys.

Environment variables: `SPEC_BACKEND` names the backends (as `--backend` does);
`HYPOTHESIS_PROFILE` picks the profile (ci, dev, thorough; default dev); `SPEC_COMPILE=1`
runs tiers P and X through each backend's `compile` (torch.compile, jax.jit) to show that
compiled == eager (see conformance/compiled.py).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

#: the floating dtypes of the `dtype` fixture: every equation is checked in them (where the
#: backend has them)
FLOAT_DTYPES = ("float32", "float64")
#: the low precisions (not in the standard): tiers X and R check every equation that declares
#: them, tier P every property written for them, on the backends that have them
LOW_DTYPES = ("float16", "bfloat16")
#: every floating dtype, narrowest first
ALL_DTYPES = (*LOW_DTYPES, *FLOAT_DTYPES)

BACKENDS = pytest.StashKey[list]()
#: whether tiers P and X run the equations compiled (SPEC_COMPILE=1)
COMPILED = pytest.StashKey[bool]()

PROFILE_VAR = "HYPOTHESIS_PROFILE"
DEFAULT_PROFILE = "dev"
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture,
           HealthCheck.differing_executors]

settings.register_profile(
    # CI: few examples, derandomised so a run is reproducible and never flaky
    "ci", max_examples=20, deadline=None, derandomize=True, suppress_health_check=_HEALTH,
    print_blob=True,
)
# dev and thorough explore: derandomize is stated, because a profile's parent is Hypothesis's
# default, and where the environment variable CI is set that default is Hypothesis's own
# derandomised "ci" profile (the thorough shard in CI would otherwise draw the same examples
# on every landing)
settings.register_profile(
    "dev", max_examples=60, deadline=None, derandomize=False, suppress_health_check=_HEALTH,
    print_blob=True,
)
settings.register_profile(
    "thorough", max_examples=10_000, deadline=None, derandomize=False,
    suppress_health_check=_HEALTH, print_blob=True,
)


def profile_name() -> str:
    return os.environ.get(PROFILE_VAR, DEFAULT_PROFILE)


def load_hypothesis_profile() -> None:
    name = profile_name()
    try:
        settings.load_profile(name)
    except Exception:  # hypothesis raises InvalidArgument for an unknown profile
        raise pytest.UsageError(
            f"unknown Hypothesis profile {name!r} in ${PROFILE_VAR}; use ci, dev or thorough"
        ) from None
