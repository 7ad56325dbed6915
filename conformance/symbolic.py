"""Tier S and the symbolic half of tier D: the spec's own code traced on SymPy expressions.

`trace(fn, ...)` runs an equation unchanged on the `sympy` backend. `assert_equal` proves two
expression arrays equal element by element: first `cancel(expand(·, power_exp=True))` (fast,
enough for exponential families once `Max` is replaced by a free symbol), then `simplify` as a
fallback. `free_max` replaces every `Max(...)` by a fresh symbol: a result that is proven
equal to the textbook form *with an arbitrary symbol in place of the max* is in particular
independent of the shift, which is exactly the shift-invariance argument.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy as sp

import backends


@functools.cache
def backend():
    return backends.get("sympy")


def symbols(name: str, shape, **assumptions):
    return backend().symbols(name, shape, **assumptions)


def ints(values):
    xp = backend().xp
    return xp.asarray(values, dtype=xp.int64)


def exprs(x) -> np.ndarray:
    """The object array of expressions behind a symbolic array (or a scalar as 0-d)."""
    return np.asarray(x.to_expr(), dtype=object)


def flat(x) -> list:
    return list(exprs(x).reshape(-1))


def free_max(array: np.ndarray, name: str = "m"):
    """Replace each distinct Max(...) in `array` by a fresh real symbol m0, m1, …"""
    maxima = sorted({m for e in array.reshape(-1) for m in sp.sympify(e).atoms(sp.Max)},
                    key=sp.default_sort_key)
    subs = {m: sp.Symbol(f"{name}{i}", real=True) for i, m in enumerate(maxima)}
    out = np.empty(array.shape, dtype=object)
    for idx in np.ndindex(array.shape):
        out[idx] = sp.sympify(array[idx]).xreplace(subs)
    return out, list(subs.values())


def _rationalise(e):
    """Recognise the code's float constants (0.5, 1/√(2π) as a double) as the exact numbers
    they stand for (to 1e-15), so that an exact proof remains possible."""
    return e.xreplace({f: sp.nsimplify(f, [sp.pi], tolerance=1e-15) for f in e.atoms(sp.Float)})


def is_zero(e) -> bool:
    e = sp.sympify(e)
    if e == 0:
        return True
    for candidate in (e, _rationalise(e)) if e.atoms(sp.Float) else (e,):
        c = sp.cancel(sp.expand(candidate, power_exp=True, log=True, force=True))
        if c == 0 or sp.simplify(c) == 0:
            return True
    return False


def assert_equal(lhs, rhs, what: str = "") -> None:
    lhs = np.asarray(lhs, dtype=object)
    rhs = np.broadcast_to(np.asarray(rhs, dtype=object), lhs.shape)
    for idx in np.ndindex(lhs.shape):
        diff = sp.sympify(lhs[idx]) - sp.sympify(rhs[idx])
        assert is_zero(diff), f"{what}: not proven at {idx}: {lhs[idx]} ≠ {rhs[idx]}"
