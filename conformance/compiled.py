"""Compiled mode: with `SPEC_COMPILE=1`, tiers P and X run every public equation through
`backend.compile` (torch.compile, jax.jit), so the suite shows that compiled == eager within
the same tolerances.

For the length of one P or X test the plugin replaces each equation attribute of the `spec`
module by `CompiledEquations(backend, tier)[name]`. A call that holds an array of the backend
under test (or passes its namespace, `xp=`) goes through the equation compiled by that backend,
made once per test and equation and released after the test; a call without one (a host NumPy
reference, plain numbers) runs the plain function, as there is nothing of that backend to
compile. Compilation errors are not caught: an equation that cannot be compiled fails its test,
never falls back to eager. The one exception is a limit of the compiler documented in the
equation's record (`Limit(..., compiled=True)`, with its upstream link): the test is skipped
with that reason.
"""

from __future__ import annotations

import collections
import functools
import os

import array_api_compat
import pytest

import spec
from backends._base import is_array

#: the environment variable that switches compiled mode on (1) or off (0, unset)
ENV_VAR = "SPEC_COMPILE"
#: the tiers whose tests call the compiled equations
TIERS = ("P", "X")

_ON, _OFF = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def enabled() -> bool:
    """Whether `SPEC_COMPILE` asks for compiled mode; ValueError for an unclear value."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value not in _ON + _OFF:
        raise ValueError(f"${ENV_VAR} must be 1 (compiled) or 0 (eager), got {value!r}")
    return value in _ON


def active(tier: str) -> bool:
    """Whether the tests of `tier` run the equations compiled in this run."""
    return tier in TIERS and enabled()


def describe(backend_list, compile_mode: bool) -> str:
    """One line for a report: which compiler ran tiers P and X, or that the run was eager."""
    if not compile_mode:
        return f"no (eager; {ENV_VAR}=1 runs tiers P and X through backend.compile)"
    compilers = "; ".join(f"{b.id}: {b.compiler}" for b in backend_list)
    return f"{compilers} (tiers P and X, {ENV_VAR}=1)"


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


class CompiledEquations:
    """The public equations of `spec` as one backend's compiler runs them, by name, for one
    test of `tier`. `calls` counts the calls that went through the compiler, per equation."""

    def __init__(self, backend, tier: str) -> None:
        self.backend = backend
        self.tier = tier
        self.calls: collections.Counter[str] = collections.Counter()
        self._records = spec.catalogue()
        self._compiled: dict[str, object] = {}
        self._wrappers = {name: self._wrap(name, rec.func) for name, rec in self._records.items()}

    def __getitem__(self, name: str):
        return self._wrappers[name]

    def items(self):
        return self._wrappers.items()

    def is_for_backend(self, args: tuple, kwargs: dict) -> bool:
        """Whether a call holds an array of this backend, or names its namespace."""
        xp = self.backend.xp
        return any(leaf is xp or (is_array(leaf) and array_api_compat.array_namespace(leaf) is xp)
                   for leaf in _leaves((args, kwargs)))

    def release(self) -> None:
        """Drop the compiled functions, and let the backend free their code (after a test)."""
        self._compiled.clear()
        self.backend.release_compiled()

    def compiled(self, name: str):
        """`backend.compile` of the equation `name`, made on first use; a skip where the
        record documents that this backend's compiler cannot run it."""
        if name not in self._compiled:
            rec = self._records[name]
            limit = next((x for x in rec.limits if x.compiled
                          and x.applies(self.backend.id, self.tier, "", compiled=True)), None)
            if limit is not None:
                pytest.skip(f"{name} through {self.backend.compiler} on {self.backend.id}: "
                            f"{limit.reason} ({limit.link})")
            self._compiled[name] = self.backend.compile(rec.func)
        return self._compiled[name]

    def _wrap(self, name: str, fn):
        @functools.wraps(fn)
        def equation(*args, **kwargs):
            if not self.is_for_backend(args, kwargs):
                return fn(*args, **kwargs)
            compiled = self.compiled(name)
            self.calls[name] += 1
            return compiled(*args, **kwargs)

        return equation
