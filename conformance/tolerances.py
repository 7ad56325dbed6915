"""Every tolerance of the suite, per dtype, in one place, each with its reason.

Values and gradients are separate: a gradient is compared against autograd (a different
order of operations) and against finite differences (which carry their own truncation
error), so it gets more room than a value. An equation may override an entry only with a
reason written beside it. Nothing here is ever widened to make a failing test pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tol:
    rtol: float
    atol: float


_EPS = {"float32": float(np.finfo(np.float32).eps), "float64": float(np.finfo(np.float64).eps)}
#: float16 (10 stored significand bits) and bfloat16 (7): their machine epsilons
_LOW_EPS = {"float16": 2.0**-10, "bfloat16": 2.0**-7}
#: the absolute spacing of a low precision's smallest numbers: float16's subnormal step
#: 2⁻²⁴; bfloat16 has float32's exponent range, so its step is negligible beside 8 eps32
_LOW_STEP = {"float16": 2.0**-24, "bfloat16": 0.0}

#: results of one equation on one backend against the same equation elsewhere (tier X) or a
#: property that holds exactly in real arithmetic (tier P). 64 eps relative covers the
#: rounding of a reduction over the ≤ 64 elements the strategies draw plus an exp/log;
#: the absolute part (8 eps) covers results that should be 0 (sums of ±terms of size ≤ 1).
VALUES = {name: Tol(rtol=64 * eps, atol=8 * eps) for name, eps in _EPS.items()}

#: analytic gradients against autograd or the SymPy derivative evaluated on the backend:
#: one more level of operations than a value, so 4× the value tolerance.
GRADS = {name: Tol(rtol=256 * eps, atol=32 * eps) for name, eps in _EPS.items()}

#: low precisions. The dtype policy computes in float32 and rounds the result once, so two
#: results from the same inputs (two backends; an identity's two sides) are each within half
#: an ulp of float32 values that agree to float32's tolerance: they differ by at most one ulp
#: of the low dtype (≤ eps relative) plus float32's tolerance, and by one subnormal step near 0.
VALUES.update({name: Tol(rtol=eps + VALUES["float32"].rtol,
                         atol=VALUES["float32"].atol + _LOW_STEP[name])
               for name, eps in _LOW_EPS.items()})
GRADS.update({name: Tol(rtol=eps + GRADS["float32"].rtol,
                        atol=GRADS["float32"].atol + _LOW_STEP[name])
              for name, eps in _LOW_EPS.items()})

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


def low_precision_budget(float32_budget: float, dtype: str) -> float:
    """Tier R's budget in a low precision, in its ulps measured from the correctly rounded
    value, derived from the float32 budget: the result is a float32 value within
    `float32_budget` float32 ulps of the truth, rounded once. Its distance from the correctly
    rounded value is at most one ulp (the two roundings fall either side of a tie) plus the
    float32 error in the low dtype's ulps (eps32/eps_low of them per float32 ulp), rounded up.
    """
    return 1 + math.ceil(float32_budget * _EPS["float32"] / _LOW_EPS[dtype])


def values(dtype: str) -> Tol:
    return VALUES[dtype]


def grads(dtype: str) -> Tol:
    return GRADS[dtype]
