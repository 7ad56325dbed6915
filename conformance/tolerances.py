"""Every tolerance of the suite, per dtype, in one place, each with its reason.

Values and gradients are separate: a gradient is compared against autograd (a different
order of operations) and against finite differences (which carry their own truncation
error), so it gets more room than a value. An equation may override an entry only with a
reason written beside it. Nothing here is ever widened to make a failing test pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tol:
    rtol: float
    atol: float


_EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}

#: results of one equation on one backend against the same equation elsewhere (tier X) or a
#: property that holds exactly in real arithmetic (tier P). 64 eps relative covers the
#: rounding of a reduction over the ≤ 64 elements the strategies draw plus an exp/log;
#: the absolute part (8 eps) covers results that should be 0 (sums of ±terms of size ≤ 1).
VALUES = {name: Tol(rtol=64 * eps, atol=8 * eps) for name, eps in _EPS.items()}

#: analytic gradients against autograd or the SymPy derivative evaluated on the backend:
#: one more level of operations than a value, so 4× the value tolerance.
GRADS = {name: Tol(rtol=256 * eps, atol=32 * eps) for name, eps in _EPS.items()}

#: central differences in float64 with h = ε^(1/3)·max(1, |x|): truncation error
#: ~ h²·|f'''|/6 ≈ 1e-11 and rounding error ~ ε|f|/h ≈ 1e-11 for inputs of order 1, so 1e-7
#: relative with a 1e-9 floor leaves two orders of margin without hiding a wrong formula
#: (a wrong gradient is wrong by O(1)).
FINITE_DIFFERENCE = Tol(rtol=1e-7, atol=1e-9)

#: tier R's ulp budgets, per equation and dtype, live with each equation's record
#: (conformance/records/<chapter>.py, `budget({...})`); chapters not yet moved there keep
#: theirs beside their oracles (conformance/oracles_<chapter>.py), loaded below.
ULP_BUDGET: dict[str, dict[str, float]] = {}


def _load_chapters() -> None:
    """Chapters keep their ulp budgets beside their oracles (conformance/oracles_<chapter>.py)."""
    import importlib

    from .oracles import CHAPTER_MODULES

    for module_name in CHAPTER_MODULES:
        try:
            module = importlib.import_module(f"{__package__}.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{module_name}":
                raise
            continue
        ULP_BUDGET.update(getattr(module, "ULP_BUDGET", {}))


_load_chapters()


def values(dtype: str) -> Tol:
    return VALUES[dtype]


def grads(dtype: str) -> Tol:
    return GRADS[dtype]
