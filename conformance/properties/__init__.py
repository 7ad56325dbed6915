"""Tier P identities as checks of *an implementation*.

A property is a function `check(impl, t)`: `impl` is the implementation under test, called
with the equation's signature (the spec's own `spec.<name>`, a framework's kernel behind an
adapter, or a user's candidate), and `t` is a `Trial`, which knows the backend, the dtype
and where the inputs come from. Written this way, the same check runs:

- on the spec itself, in `conformance/test_properties.py` (Hypothesis draws the inputs);
- on explicit inputs kept as `Example`s (counter-examples Hypothesis once found), so every
  profile tries them on every run;
- on a candidate, in `conformance.check` (the report card of someone's kernel).

Each chapter files its properties in `conformance/properties/<chapter>.py` with `@prop`,
naming the identity keys (declared in the equation's `@equation(identities=...)`) the check
proves. Everything else a check needs (other equations, as references) it takes from `spec`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

import spec
from spec._registry import CHAPTERS

from .. import tolerances
from ..helpers import assert_close, np64, skip_if_limited, to_backend
from ..precision import finfo
from ..settings import ALL_DTYPES, LOW_DTYPES

__all__ = ["ALL_DTYPES", "Example", "Property", "Trial", "all_properties", "for_equation",
           "prop", "within"]


@dataclass(frozen=True)
class Example:
    """Explicit inputs for a property: the value of each `t.draw(..., label=...)` by label.

    `dtype` restricts the example to the dtype it was found in, when it is only meaningful
    there (a float32 subnormal, say); it runs on every backend. Without a `dtype`, float
    arrays are cast to the dtype of the run. `note` says where it came from
    (the backend, the profile, the date).
    """

    values: Mapping[str, Any]
    dtype: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Property:
    """A tier-P check of one equation and the identity keys it proves."""

    equation: str
    identities: tuple[str, ...]
    check: Callable
    #: dtypes the check runs in (None: float32 and float64, where the equation declares
    #: them; a property that holds in float16 and bfloat16 too says `dtypes=ALL_DTYPES`)
    dtypes: tuple[str, ...] | None = None
    #: whether the check draws inputs (Hypothesis) or is one fixed computation
    draws: bool = True
    examples: tuple[Example, ...] = ()
    #: whether the check needs the spec's own internals (not runnable on a candidate)
    spec_only: bool = False

    @property
    def name(self) -> str:
        return self.check.__name__

    @property
    def id(self) -> str:
        return f"{self.equation}:{self.name}"

    def applies_to(self, dtype: str) -> bool:
        declared = spec.catalogue()[self.equation].dtypes
        wanted = self.dtypes if self.dtypes is not None else ("float32", "float64")
        return dtype in wanted and dtype in declared


_PROPERTIES: dict[str, list[Property]] = {}


def prop(func, *identities: str, dtypes=None, draws: bool = True,
         examples: tuple[Example, ...] = (), spec_only: bool = False):
    """Decorator: file `check(impl, t)` as a property of `func` proving `identities`."""
    name = func if isinstance(func, str) else func.__name__
    rec = spec.catalogue().get(name)
    if rec is None:
        raise KeyError(f"{name!r} is not a registered equation")
    declared = {i.key for i in rec.identities_in("P")}
    unknown = [key for key in identities if key not in declared]
    if not identities or unknown:
        raise ValueError(f"a property of {name} must name identities of its tier P "
                         f"({', '.join(sorted(declared)) or 'none declared'}); "
                         f"got {unknown or '()'}")

    def register(check: Callable) -> Callable:
        entry = Property(name, tuple(identities), check,
                         tuple(dtypes) if dtypes is not None else None, draws, tuple(examples),
                         spec_only)
        bucket = _PROPERTIES.setdefault(name, [])
        if any(p.name == entry.name for p in bucket):
            raise ValueError(f"{name} has two properties named {entry.name}")
        bucket.append(entry)
        return check

    return register


_LOADED = False


def _load() -> None:
    global _LOADED
    if not _LOADED:
        for chapter in CHAPTERS:
            try:
                importlib.import_module(f"{__name__}.{chapter}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{__name__}.{chapter}":
                    raise
        _LOADED = True


def all_properties() -> list[Property]:
    """Every property, in catalogue order."""
    _load()
    return [p for name in spec.catalogue() for p in _PROPERTIES.get(name, ())]


def for_equation(name: str) -> list[Property]:
    _load()
    return list(_PROPERTIES.get(name, ()))


class Trial:
    """One run of a property: the backend and dtype under test, and the source of inputs.

    `draw(strategy, label)` is Hypothesis's `data.draw` in a property test and a look-up of
    the example's values in an explicit example. The helpers keep the checks short: `on`
    moves host arrays to the backend, `np` brings a result back as float64 NumPy, `close`
    compares within the dtype's tolerance (tolerances.py).
    """

    def __init__(self, backend, dtype: str, draw: Callable | None = None, equation: str = ""):
        self.backend = backend
        self.dtype = dtype
        self.equation = equation
        self._draw = draw

    @classmethod
    def replaying(cls, backend, dtype: str, example: Example, equation: str = "") -> Trial:
        def draw(strategy, label=None):
            if label not in example.values:
                raise KeyError(f"the example has no value for the draw labelled {label!r}")
            value = example.values[label]
            if isinstance(value, np.ndarray):
                # an example for every dtype holds its floats in float64: cast to the trial's
                floats = value.dtype.kind == "f" and example.dtype is None
                return value.astype(dtype) if floats else np.array(value, copy=True)
            return value
        return cls(backend, dtype, draw, equation)

    @property
    def xp(self):
        return self.backend.xp

    @property
    def eps(self) -> float:
        """The dtype's machine epsilon (bfloat16's too)."""
        return float(finfo(self.dtype).eps)

    @property
    def low(self) -> bool:
        """Whether the run is in a low precision (float16, bfloat16)."""
        return self.dtype in LOW_DTYPES

    @property
    def tol(self) -> tolerances.Tol:
        """The dtype's tolerance for values (tolerances.VALUES)."""
        return tolerances.values(self.dtype)

    @property
    def grad_tol(self) -> tolerances.Tol:
        """The dtype's tolerance for gradients (tolerances.GRADS)."""
        return tolerances.grads(self.dtype)

    def draw(self, strategy, label: str):
        if self._draw is None:
            raise TypeError("this property was declared draws=False; it cannot draw inputs")
        return self._draw(strategy, label=label)

    def on(self, *host):
        """Host NumPy arrays (or nested parameters) on the backend; one value for one input."""
        moved = [to_backend(self.backend, a) for a in host]
        return moved[0] if len(moved) == 1 else moved

    def np(self, x) -> np.ndarray:
        """A backend result as float64 NumPy (host values pass through)."""
        return np64(self.backend, x)

    def skip_if_limited(self, note: str = "") -> None:
        """Skip where the equation's record documents a limit of this backend in tier P for
        the input `note` ("" = every input)."""
        skip_if_limited(self.backend, self.equation, "P", note)

    def close(self, actual, expected, *, kind: str = "values", tol=None, what: str = ""):
        assert_close(self.backend, actual, expected, self.dtype, kind=kind, tol=tol, what=what)


def run(prop_: Property, impl: Callable, backend, dtype: str, draw: Callable | None) -> None:
    """Run one property on `impl` (the tests and the checker call this)."""
    prop_.check(impl, Trial(backend, dtype, draw, prop_.equation))


def within(actual, desired, atol, rtol=0.0, what: str = "") -> None:
    """|actual − desired| ≤ atol + rtol·|desired| elementwise, with an array `atol` (an error
    bound per element), which numpy.testing.assert_allclose does not take; equal infinities
    pass."""
    a, d = np.broadcast_arrays(np.asarray(actual, dtype=np.float64),
                               np.asarray(desired, dtype=np.float64))
    bound = np.broadcast_to(np.asarray(atol, dtype=np.float64) + rtol * np.abs(d), a.shape)
    bad = ~((np.abs(a - d) <= bound) | (a == d))
    assert not np.any(bad), (f"{what}: got {a[bad]}, want {d[bad]}, off by "
                             f"{np.abs(a - d)[bad]} > {bound[bad]}")
