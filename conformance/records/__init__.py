"""The evidence for each equation, in one typed record (the OpInfo idea, kept out of `spec/`).

`spec/<chapter>.py` holds the promise: each equation, its formula, and its `@equation(...)`
metadata (identities, limits). This package holds what the tests, the benchmarks, the checker
and the docs read to hold the equation to it:

- sample inputs (small typical calls) and reference inputs (extremes, zero sizes, broadcast
  shapes), as builders `builder(xp, dtype, device) -> list[Sample]`;
- error inputs, `builder(xp, dtype, device) -> list[ErrorCase]`;
- derivative cases (tier D), as `DerivativeCase` values;
- the ulp budget per dtype of tier R;
- the frameworks' own kernels that compute the same thing (`Native`).

One module per chapter (`conformance/records/<chapter>.py`) files its records with the
decorators below; `get(name)` returns the record of one equation and `all_records()` every one,
after importing every chapter module. Builders use only the standard (`xp.asarray` on Python
literals), so the same record serves every backend.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import spec
from spec._registry import CHAPTERS

__all__ = [
    "DerivativeCase", "ErrorCase", "Native", "Record", "Sample", "all_records", "budget",
    "derivative", "errors", "get", "natives", "references", "sample_array", "samples",
    "ulp_budget",
]


@dataclass(frozen=True)
class Sample:
    """One call: positional arrays, keyword options, and what makes it interesting.

    `proves` names the identities of tier R (or X) this input is the evidence for (the
    `extreme_logits` identity is proven by the ±1e4 logits, say); tier R's `accuracy`
    identity is proven by every input and needs no name.
    """

    args: tuple
    kwargs: dict = field(default_factory=dict)
    note: str = ""
    proves: tuple[str, ...] = ()


@dataclass(frozen=True)
class ErrorCase:
    """A bad call and the exception it must raise (type and a regex of its message)."""

    args: tuple
    kwargs: dict
    exc: type[Exception]
    match: str
    note: str


@dataclass(frozen=True)
class DerivativeCase:
    """One tier-D check: ∂⟨c, fn(args)⟩/∂args[argnum] by SymPy, autograd and differences.

    `make_args(seed)` returns the host NumPy arguments (float arrays are differentiated,
    integer ones held fixed); `closed(xp, args, c)`, when given, is the spec's own closed-form
    vector-Jacobian product, which must agree too; `assumptions` are SymPy assumptions for the
    traced symbols (`{"positive": True}` where the equation needs positive inputs).
    `identities` are the keys of tier D the case proves (default: every D identity of the
    equation), `seeds` the random inputs it is checked at.
    """

    equation: str
    fn: Callable
    make_args: Callable[[int], list]
    argnum: int = 0
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    closed: Callable | None = None
    assumptions: Mapping[str, Any] = field(default_factory=dict)
    identities: tuple[str, ...] | None = None
    seeds: tuple[int, ...] = (0, 1)
    label: str = ""

    @property
    def id(self) -> str:
        return self.equation + (f"[{self.label}]" if self.label else "")


@dataclass(frozen=True)
class Native:
    """A framework's own kernel for the equation: `library` ('torch', 'jax', 'scipy', …),
    the dotted `name` users know it by, and `adapter`, which takes the library module and
    returns a callable with the spec's signature (or None where the library lacks it)."""

    library: str
    name: str
    adapter: Callable[[Any], Callable | None]
    note: str = ""


InputBuilder = Callable[[Any, Any, Any], list]


@dataclass
class Record:
    """Everything the suite holds an equation to, besides its identities (those are in spec)."""

    name: str
    chapter: str
    samples: InputBuilder | None = None
    references: InputBuilder | None = None
    errors: InputBuilder | None = None
    derivatives: list[DerivativeCase] = field(default_factory=list)
    ulp_budget: dict[str, float] = field(default_factory=dict)
    natives: list[Native] = field(default_factory=list)

    @property
    def equation(self):
        return spec.catalogue()[self.name]


def sample_array(xp, values, dtype, device):
    """An input for a builder: Python literals as an array of `dtype` on `device`."""
    return xp.asarray(values, dtype=dtype, device=device)


_RECORDS: dict[str, Record] = {}


def _record(func_or_name) -> Record:
    name = func_or_name if isinstance(func_or_name, str) else func_or_name.__name__
    catalogue = spec.catalogue()
    if name not in catalogue:
        raise KeyError(f"{name!r} is not a registered equation")
    if name not in _RECORDS:
        _RECORDS[name] = Record(name=name, chapter=catalogue[name].chapter)
    return _RECORDS[name]


def _attach(attr: str, func) -> Callable[[InputBuilder], InputBuilder]:
    def attach(builder: InputBuilder) -> InputBuilder:
        record = _record(func)
        if getattr(record, attr) is not None:
            raise ValueError(f"{record.name} already has {attr}")
        setattr(record, attr, builder)
        return builder

    return attach


def samples(func):
    """Decorator: `builder(xp, dtype, device) -> list[Sample]`, small typical calls."""
    return _attach("samples", func)


def references(func):
    """Decorator: `builder(xp, dtype, device) -> list[Sample]`, extreme and edge-case calls."""
    return _attach("references", func)


def errors(func):
    """Decorator: `builder(xp, dtype, device) -> list[ErrorCase]`, bad calls."""
    return _attach("errors", func)


def derivative(*cases: DerivativeCase) -> None:
    """File tier-D cases with their equations' records."""
    for case in cases:
        _record(case.equation).derivatives.append(case)


def budget(table: Mapping[str, Mapping[str, float]]) -> None:
    """File tier R's ulp budgets: equation name → {dtype: ulps}."""
    for name, per_dtype in table.items():
        _record(name).ulp_budget.update(per_dtype)


def natives(func, *kernels: Native) -> None:
    """File the frameworks' own kernels that compute `func`."""
    _record(func).natives.extend(kernels)


_LOADED = False


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    for chapter in CHAPTERS:
        importlib.import_module(f"{__name__}.{chapter}")
    _LOADED = True


def get(name: str) -> Record:
    """The record of one equation (every chapter's records are loaded on first use)."""
    _load()
    return _record(name)


def all_records() -> dict[str, Record]:
    """Every equation's record, in catalogue order."""
    _load()
    return {name: _record(name) for name in spec.catalogue()}


def ulp_budget(name: str, dtype: str) -> float:
    """Tier R's budget for `name` in `dtype` (KeyError if the record declares none).

    float16 and bfloat16 budgets, unless the record declares its own (with a reason), are
    derived from the float32 budget (`tolerances.low_precision_budget`)."""
    from .. import tolerances

    table = get(name).ulp_budget or tolerances.ULP_BUDGET.get(name, {})
    if dtype not in table and dtype in ("float16", "bfloat16") and "float32" in table:
        return tolerances.low_precision_budget(table["float32"], dtype)
    try:
        return table[dtype]
    except KeyError:
        raise KeyError(f"{name} declares no ulp budget for {dtype}") from None
