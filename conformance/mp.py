"""Exact conversions between NumPy and mpmath, shared by every oracle module.

`mp` turns one element into an exact mpf, `f64` rounds an mpf correctly to float64 (subnormals
included), and `at_dps` runs an oracle at DPS significant digits, restoring mpmath's precision.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import mpmath
import numpy as np

#: significant decimal digits of every oracle evaluation (~166 bits, 3× float64's 53).
DPS = 50


def mp(x) -> mpmath.mpf:
    """One NumPy element as an exact mpf (floats via float(), integers via int())."""
    if isinstance(x, (np.integer, np.bool_, int, bool)):
        return mpmath.mpf(int(x))
    return mpmath.mpf(float(x))


def f64(x) -> float:
    """An mpf rounded correctly (to nearest, ties to even) to float64, subnormals included."""
    if mpmath.isnan(x):
        return math.nan
    if mpmath.isinf(x):
        return math.inf if x > 0 else -math.inf
    if x == 0:
        return 0.0
    sign, man, exp, _ = x._mpf_  # |x| = man·2^exp (mpf.man_exp drops the sign)
    man = -man if sign else man
    top = abs(man).bit_length() + exp  # 2^(top−1) ≤ |x| < 2^top
    if top > 1025:
        return math.copysign(math.inf, man)
    if top < -1076:  # below half the smallest subnormal 2^−1074
        return math.copysign(0.0, man)
    try:
        # Python's int → float and int / int are correctly rounded, subnormal results included.
        return float(man << exp) if exp >= 0 else man / (1 << -exp)
    except OverflowError:
        return math.copysign(math.inf, man)


def at_dps(fn: Callable) -> Callable:
    """Run `fn` at DPS digits, restoring mpmath's precision afterwards."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with mpmath.workdps(DPS):
            return fn(*args, **kwargs)

    return wrapper
