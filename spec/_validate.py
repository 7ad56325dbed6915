"""Input checks with clear messages, identical on every backend.

Structural checks (namespace, device, dtype, rank, shape, axis, options) run before any
arithmetic and never look at data. Value checks (a negative probability, a label out of range)
must read the data: they run on concrete arrays, also on lazy Dask arrays (a small reduction is
computed), and are skipped inside a trace (jax.jit) or on symbolic arrays, where values are
unknown. `value_checks(False)` switches them off for timing.

The dtype policy (EQUATIONS.md, conventions) lives here too: `widen` gives the precision an
equation computes in (float16 and bfloat16 → float32, float32 and float64 unchanged) and
`narrow` returns a result in the caller's dtype, rounded once; `indices` turns integer labels
of any width into int64 (values as written, never wrapped), or refuses them.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
import operator
import sys

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


def _is_masked(x) -> bool:
    """A NumPy masked array (recognised without importing NumPy): its mask would be ignored."""
    return any(cls.__name__ == "MaskedArray" and cls.__module__.startswith("numpy.ma")
               for cls in type(x).__mro__)


def namespace(**arrays):
    """The one array namespace of the named arrays.

    TypeError if one is not an array (a list, an `np.matrix`, a NumPy masked array, whose mask
    the equations could not honour) or if they come from two libraries; ValueError if they sit
    on two devices (naming both).
    """
    for name, x in arrays.items():
        if _is_masked(x):
            raise TypeError(f"{name} must be an array, got a NumPy masked array (its mask would "
                            f"be ignored); pass {name}.filled(value) or {name}.compressed()")
        if not array_api_compat.is_array_api_obj(x):
            raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    try:
        xp = array_api_compat.array_namespace(*arrays.values())
    except TypeError:
        kinds = ", ".join(f"{name} is {_kind(x)}" for name, x in arrays.items())
        raise TypeError(
            f"arrays from two libraries: {kinds}; move them to one library first"
        ) from None
    if len(arrays) > 1:
        same_device(**arrays)
    return xp


def namespace_or_numpy(xp, name: str = "xp"):
    """The namespace an array-free constructor builds in: `xp` if given, else NumPy (through
    array-api-compat), as SciPy's array-API functions default. NumPy is loaded only here, when
    a caller gives no namespace; TypeError if `xp` is not an array namespace."""
    if xp is None:
        import array_api_compat.numpy as np_xp

        return np_xp
    if not hasattr(xp, "asarray") or not hasattr(xp, "arange"):
        raise TypeError(f"{name} must be an array namespace (such as array_api_compat.numpy, "
                        f"torch or jax.numpy), got {type(xp).__name__}")
    return xp


def same_device(**arrays) -> None:
    """ValueError naming both devices if the named arrays do not all sit on one device.

    An array whose device is not known yet (None: a JAX tracer under `jax.grad` or `jax.jit`)
    is placed where its computation runs and is not compared."""
    placed = [(name, device(x)) for name, x in arrays.items()]
    placed = [(name, where) for name, where in placed if where is not None]
    if not placed:
        return
    first_name, where = placed[0]
    for name, other in placed[1:]:
        if other != where:
            raise ValueError(f"arrays on two devices: {first_name} is on {where}, {name} on "
                             f"{other}; move them to one device first")


def floating(xp, x, name: str) -> None:
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating dtype, got {x.dtype}")


def integer(xp, x, name: str) -> None:
    if not xp.isdtype(x.dtype, "integral"):
        raise TypeError(f"{name} must have an integer dtype (class indices), got {x.dtype}")


def indices(xp, x, name: str, *, upper: int | None = None, what: str = "class indices"):
    """Integer labels, token ids or positions of any width as int64, values as written.

    Every signed or unsigned width is accepted (uint8 labels, uint16 token streams): the
    values are widened to int64 before anything compares or indexes with them, so a label 300
    stays 300 and is never wrapped. With `upper`, values must lie in [0, upper) (ValueError
    naming the range); an unsigned value ≥ 2⁶³ widens to a negative int64 and is refused as out
    of range too.
    """
    integer(xp, x, name)
    if x.dtype != xp.int64:
        x = xp.astype(x, xp.int64)
    if upper is not None:
        check_values(xp, x, lambda y: (y < 0) | (y >= upper),
                     f"{name} must be {what} in [0, {upper}); some are out of range")
    return x


def _bits(xp, dtype) -> int:
    try:
        return xp.finfo(dtype).bits
    except (TypeError, ValueError, AttributeError):  # a namespace without finfo (symbolic)
        return 64


def working_dtype(xp, dtype):
    """The dtype an equation computes in for inputs of `dtype`: float16 and bfloat16 widen to
    float32 (their reductions, squares, angles and sums of exponentials would overflow or lose
    every digit), float32 and float64 stay as they are."""
    return xp.float32 if _bits(xp, dtype) < 32 else dtype


def widen(xp, *arrays):
    """The arrays in their working precision (`working_dtype`), and the dtype to return in.

    Use at an equation's entry, after the checks: ``x, dtype = v.widen(xp, x)`` or
    ``(q, k), dtype = v.widen(xp, q, k)``; end with ``return v.narrow(xp, out, dtype)``.
    """
    dtype = arrays[0].dtype
    work = working_dtype(xp, dtype)
    wide = [a if a.dtype == work or not xp.isdtype(a.dtype, "real floating")
            else xp.astype(a, work) for a in arrays]
    return (wide[0] if len(wide) == 1 else wide), dtype


def narrow(xp, out, dtype):
    """A result computed in the working precision, rounded once to the caller's `dtype`
    (arrays inside tuples, lists and dicts too; integer and boolean results are left alone)."""
    if isinstance(out, dict):
        return {key: narrow(xp, value, dtype) for key, value in out.items()}
    if isinstance(out, tuple) and hasattr(out, "_fields"):
        return type(out)(*(narrow(xp, value, dtype) for value in out))
    if isinstance(out, (list, tuple)):
        return type(out)(narrow(xp, value, dtype) for value in out)
    if (array_api_compat.is_array_api_obj(out) and out.dtype != dtype
            and xp.isdtype(out.dtype, "real floating")):
        return xp.astype(out, dtype)
    return out


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


def broadcast_shapes(*shapes: tuple, names: str) -> tuple[int, ...]:
    """The broadcast shape of `shapes` by the standard's rule (shapes aligned on the right; on
    each axis the sizes other than 1 agree), or ValueError naming them. A size None (unknown,
    as Dask's may be) gives None. Written here because array-api-extra deprecates its
    `broadcast_shapes` for the 2025.12 `xp.broadcast_shapes`, which needs a namespace."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(-ndim, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis} - {1}
        if None in sizes:
            out.append(None)
        elif len(sizes) > 1:
            shown = " and ".join(str(tuple(s)) for s in shapes)
            raise ValueError(f"{names} must have broadcastable shapes, got {shown}")
        else:
            out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def broadcastable(x, y, names: str) -> tuple[int, ...]:
    """The broadcast shape of x and y, or ValueError naming both shapes."""
    return broadcast_shapes(tuple(x.shape), tuple(y.shape), names=names)


def rows_fit(shape: tuple, lead: tuple, length: int) -> bool:
    """Whether `shape` is (..., length), one row per sequence, with leading axes that broadcast
    to `lead` without enlarging it (positions and padding masks per batch row)."""
    rows = tuple(shape[:-1])
    return (len(shape) >= 1 and shape[-1] == length and len(rows) <= len(lead)
            and all(m in (1, n) for m, n in zip(reversed(rows), reversed(lead))))


def same_shape(x, y, names: str) -> None:
    if tuple(x.shape) != tuple(y.shape):
        raise ValueError(f"{names} must have the same shape, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")


def choice(value, allowed: tuple, name: str) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


def is_bool(value) -> bool:
    """A Python bool or NumPy's (`numpy.bool`, `numpy.bool_` before NumPy 2)."""
    return isinstance(value, bool) or type(value).__name__ in ("bool", "bool_")


def is_real_number(value) -> bool:
    """Any real number type (int, float, NumPy's scalars, `fractions.Fraction`), never a
    bool (NumPy's neither)."""
    return isinstance(value, numbers.Real) and not is_bool(value)


def real_number(value, name: str) -> float:
    """A real option as a Python float (`is_real_number`); TypeError otherwise."""
    if not is_real_number(value):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def default_float(xp, device):
    """The namespace's default real floating dtype on `device` (float64, torch: float32)."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:
        return xp.float64
    return info().default_dtypes(device=device)["real floating"]


def dtype_option(xp, dtype, device, kinds=("real floating",), name: str = "dtype"):
    """A dtype option: None → the default floating dtype; else a dtype of `kinds` (of
    `xp.isdtype`), TypeError otherwise."""
    if dtype is None:
        return default_float(xp, device)
    try:  # a dtype object of the namespace (some namespaces also take names: not portable)
        ok = not isinstance(dtype, str) and xp.isdtype(dtype, kinds)
    except (TypeError, ValueError, AttributeError):
        ok = False
    if not ok:
        raise TypeError(f"{name} must be a {' or '.join(kinds)} dtype of the array namespace, "
                        f"got {dtype!r}")
    return dtype


def positive_number(value, name: str, *, allow_inf: bool = False) -> float:
    """A real number > 0 (finite unless allow_inf) as a Python float, else ValueError/TypeError."""
    value = real_number(value, name)
    if not (value > 0) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be a positive{'' if allow_inf else ' finite'} number, "
                         f"got {value!r}")
    return float(value)


def _checkable(x) -> bool:
    if not _VALUE_CHECKS.get():
        return False
    # array-api-compat's is_lazy_array says True for every JAX array, concrete ones too (it
    # errs on the side of caution), which would switch the checks off on JAX altogether: a
    # tracer is told by its class instead, as JAX's own error messages do
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


def values_known(x) -> bool:
    """Whether `x`'s values can be read now, cheaply: a concrete array of an eager library
    (symbolic arrays included, whose predicates SymPy decides). False for a tracer inside
    jax.jit or jax.grad, whose values do not exist yet, and for a lazy Dask array, where
    reading one value computes the whole graph behind it. Equations use it to take a cheap
    path when the values allow it, so, unlike the value checks, `value_checks(False)` does not
    change it.

    array-api-compat's `is_lazy_array` decides, except for JAX: it says True for every JAX
    array, concrete ones too (erring on the side of caution), so a tracer is told by its class
    there, as in `_checkable`; a symbolic array (device "sympy") is known without probing it,
    which `is_lazy_array` would do with a comparison SymPy cannot decide."""
    if array_api_compat.is_jax_array(x):
        return not any("Tracer" in cls.__name__ for cls in type(x).__mro__)
    if getattr(x, "device", None) == "sympy":
        return True
    if array_api_compat.is_torch_array(x) and _torch_compiling():
        return False  # reading a value while torch.compile traces (.item()) breaks its graph
    return not array_api_compat.is_lazy_array(x)


def _torch_compiling() -> bool:
    """Whether torch.compile is tracing the call (torch is imported already where a torch
    array exists: it is looked up, never imported, here)."""
    torch = sys.modules.get("torch")
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and compiler.is_compiling())
