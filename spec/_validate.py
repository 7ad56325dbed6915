"""Input checks with clear messages, identical on every backend.

Structural checks (namespace, dtype, rank, shape, axis, options) run before any arithmetic and
never look at data. Value checks (a negative probability, a label out of range) must read the
data: they run on concrete arrays, also on lazy Dask arrays (a small reduction is computed),
and are skipped inside a trace (jax.jit) or on symbolic arrays, where values are unknown.
`value_checks(False)` switches them off for timing.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import operator

import array_api_compat

_VALUE_CHECKS = contextvars.ContextVar("spec_value_checks", default=True)


@contextlib.contextmanager
def value_checks(enabled: bool):
    """Turn the data-dependent input checks on or off inside a `with` block."""
    token = _VALUE_CHECKS.set(bool(enabled))
    try:
        yield
    finally:
        _VALUE_CHECKS.reset(token)


def device(x):
    """The device an array lives on (array-api-compat's portable accessor)."""
    return array_api_compat.device(x)


def _kind(x) -> str:
    t = type(x)
    return f"{t.__module__.split('.')[0]}.{t.__name__}"


def namespace(**arrays):
    """The one array namespace of the named arrays; TypeError if they come from two libraries."""
    for name, x in arrays.items():
        if not array_api_compat.is_array_api_obj(x):
            raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    try:
        return array_api_compat.array_namespace(*arrays.values())
    except TypeError:
        kinds = ", ".join(f"{name} is {_kind(x)}" for name, x in arrays.items())
        raise TypeError(
            f"arrays from two libraries: {kinds}; move them to one library first"
        ) from None


def floating(xp, x, name: str) -> None:
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating dtype, got {x.dtype}")


def integer(xp, x, name: str) -> None:
    if not xp.isdtype(x.dtype, "integral"):
        raise TypeError(f"{name} must have an integer dtype (class indices), got {x.dtype}")


def same_dtype(x, y, names: str) -> None:
    if x.dtype != y.dtype:
        raise TypeError(f"{names} must have the same dtype, got {x.dtype} and {y.dtype}")


def min_ndim(x, n: int, name: str) -> None:
    if x.ndim < n:
        raise ValueError(f"{name} must have at least {n} dimension(s), got shape {tuple(x.shape)}")


def integer_option(value, name: str, *, what: str = "an integer") -> int:
    """A Python int from an integer option (ints and 0-d integer arrays; bools refused).

    Range checks stay with the caller, who knows the domain and says it in its own words.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be {what}, got a bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}") from None


def axis_index(x, axis, name: str) -> int:
    """Normalise `axis` to a non-negative index into `x`'s dimensions."""
    return axis_of_shape(tuple(x.shape), axis, name)


def axis_of_shape(shape: tuple, axis, name: str) -> int:
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be an integer, got {axis!r}") from None
    if not -len(shape) <= axis < len(shape):
        raise ValueError(
            f"axis {axis} is out of range for {name} with shape {shape} "
            f"({len(shape)} dimension(s))"
        )
    return axis % len(shape)


def nonempty_axis(x, axis: int, name: str) -> None:
    if x.shape[axis] == 0:
        raise ValueError(f"{name} has length 0 along axis {axis} (shape {tuple(x.shape)})")


def broadcastable(x, y, names: str) -> tuple[int, ...]:
    """The broadcast shape of x and y, or ValueError naming both shapes."""
    out = []
    for a, b in zip(reversed((1,) * (y.ndim - x.ndim) + tuple(x.shape)),
                    reversed((1,) * (x.ndim - y.ndim) + tuple(y.shape)), strict=True):
        if a != b and 1 not in (a, b):
            raise ValueError(
                f"{names} must have broadcastable shapes, got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        out.append(b if a == 1 else a)
    return tuple(reversed(out))


def same_shape(x, y, names: str) -> None:
    if tuple(x.shape) != tuple(y.shape):
        raise ValueError(f"{names} must have the same shape, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")


def choice(value, allowed: tuple, name: str) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


def positive_number(value, name: str, *, allow_inf: bool = False) -> float:
    """A Python real > 0 (finite unless allow_inf), else ValueError/TypeError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not (value > 0) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be a positive{'' if allow_inf else ' finite'} number, "
                         f"got {value!r}")
    return float(value)


def _checkable(x) -> bool:
    if not _VALUE_CHECKS.get():
        return False
    if array_api_compat.is_jax_array(x) and any(
        "Tracer" in cls.__name__ for cls in type(x).__mro__
    ):
        return False  # a tracer inside jax.jit or jax.grad: values are unknown
    if getattr(x, "device", None) == "sympy":
        return False
    return True


def check_values(xp, x, bad, message: str) -> None:
    """Raise ValueError(message) if `bad(x)` (a boolean array) has any True element.

    `bad` is a function so that nothing is computed where values cannot be checked.
    """
    if _checkable(x) and bool(xp.any(bad(x))):
        raise ValueError(message)


def nonnegative(xp, x, name: str) -> None:
    """ValueError if x holds a negative number (NaN passes: it propagates as the math says)."""
    message = f"{name} must be non-negative (a probability or a weight); it holds negative values"
    check_values(xp, x, lambda a: a < 0, message)
