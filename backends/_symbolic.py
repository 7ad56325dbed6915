"""A symbolic Array API namespace: NumPy object arrays of SymPy expressions.

This module is what the ``sympy`` backend hands to the spec: the *real* equations in ``spec``,
written once against the Python Array API standard (they get their namespace from
``array_api_compat.array_namespace(x)`` and call ``xp.exp``, ``xp.max``, ``xp.sum``,
``xp.where``, operators, indexing, ...), run unchanged on a :class:`SymbolicArray` and return
arrays of SymPy expressions. The project's tier-S tests then prove identities about those
expressions exactly (stable softmax equals ``exp(z_i) / sum_j exp(z_j)``, hand-derived gradients
equal true derivatives, ...) for small sizes (n <= 4).

How it works: a :class:`SymbolicArray` wraps a read-only NumPy ``dtype=object`` array whose
elements are SymPy expressions (or Python bools for the ``bool`` dtype) and defines
``__array_namespace__``, which returns this module, so ``array_namespace`` dispatches here.
Elementwise functions apply the SymPy function element by element (``np.frompyfunc``);
reductions build one flat ``sympy.Add`` / ``sympy.Mul`` / ``sympy.Max`` / ``sympy.Min`` per
output element; nothing is ever simplified, so expressions stay as the code built them.

Limits, on purpose:

* **Dtypes.** Only ``float64`` (symbolic reals), ``int64`` and ``bool`` exist; there is no
  ``float32`` (or complex), so code that asks for one learns that the backend is float64-only.
  Python ints become ``sympy.Integer``; Python floats become ``sympy.Float`` except the exactly
  representable ``0.0, 1.0, -1.0, 2.0, 0.5`` (mapped to ``0, 1, -1, 2, 1/2``) and ``inf``/``nan``
  (``sympy.oo``/``sympy.nan``), so ``0.5 * x`` stays exact. SymPy expressions given to
  :func:`asarray` count as ``float64`` (symbolic reals), SymPy booleans as ``bool``.
* **Comparisons must be decidable.** ``<``, ``==``, ``where`` conditions, ``argmax``, ``bool(x)``
  ... work when SymPy can decide them from the symbols' assumptions (numbers always can);
  otherwise they raise ``TypeError`` naming the comparison. ``isfinite``/``isnan``/``isinf``
  use SymPy's ``is_finite`` (real symbols are finite, and so is ``Max`` of them).
* **Immutable arrays.** ``x[i] = v`` raises ``TypeError``; in-place operators rebind the name.
* **Division by zero and log(0)** give IEEE-like ``+-oo``/``nan`` only when the divisor or the
  argument is literally the number zero; SymPy's own rules apply otherwise.
* Devices: the only device is the string ``"sympy"``; ``device=None`` or ``"sympy"`` is
  accepted everywhere, anything else is a ``ValueError``.

The module follows the 2023.12 standard (with a few 2024.12 additions that cost nothing, such as
``cumulative_prod`` and ``reciprocal``) plus a non-standard ``erf`` (``sympy.erf``). Helpers for
tests: :func:`symbols` (arrays of fresh real symbols), :func:`from_exprs`,
:meth:`SymbolicArray.to_expr` and :meth:`SymbolicArray.expr`.

Note for readers of the code: this module defines the namespace functions ``abs``, ``all``,
``any``, ``max``, ``min``, ``pow``, ``round``, ``sum`` and the dtype ``bool``, which shadow the
builtins inside the module, so the code below always spells the builtins ``builtins.max`` etc.
"""

from __future__ import annotations

import builtins
import math
import operator
import sys
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import sympy

__array_api_version__ = "2023.12"

_SUPPORTED_API_VERSIONS = (None, "2021.12", "2022.12", "2023.12")
_DEVICE = "sympy"


# --------------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------------
class SymbolicDType:
    """A dtype of the symbolic namespace: ``float64``, ``int64`` or ``bool``."""

    __slots__ = ("kind", "name")

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        #: the Array API kind: "real floating", "signed integer" or "bool"
        self.kind = kind

    def __repr__(self) -> str:
        return f"SymbolicDType({self.name!r})"

    def __eq__(self, other: object) -> builtins.bool:
        if isinstance(other, SymbolicDType):
            return self.name == other.name
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("SymbolicDType", self.name))


float64 = SymbolicDType("float64", "real floating")
int64 = SymbolicDType("int64", "signed integer")
bool = SymbolicDType("bool", "bool")  # the standard's name; shadows the builtin here

_FLOAT64, _INT64, _BOOL = float64, int64, bool
_DTYPES = {"bool": _BOOL, "int64": _INT64, "float64": _FLOAT64}
_KIND_RANK = {_BOOL: 0, _INT64: 1, _FLOAT64: 2}


def _promote(d1: SymbolicDType, d2: SymbolicDType) -> SymbolicDType:
    """The common dtype of two dtypes (bool < int64 < float64)."""
    return d1 if _KIND_RANK[d1] >= _KIND_RANK[d2] else d2


# --------------------------------------------------------------------------------------------
# conversion of scalars and elements
# --------------------------------------------------------------------------------------------
_EXACT_FLOATS: dict[float, sympy.Expr] = {
    0.0: sympy.S.Zero,
    1.0: sympy.S.One,
    -1.0: sympy.S.NegativeOne,
    2.0: sympy.Integer(2),
    0.5: sympy.S.Half,
}


def _float_to_expr(value: float) -> sympy.Expr:
    """A Python float as a SymPy number: exact for 0, +-1, 2, 1/2, +-inf and nan."""
    if math.isnan(value):
        return sympy.nan
    if math.isinf(value):
        return sympy.oo if value > 0 else -sympy.oo
    exact = _EXACT_FLOATS.get(value)
    return exact if exact is not None else sympy.Float(value)


def _leaf(value: Any) -> tuple[Any, str]:
    """One scalar as (element, kind) with kind in {"bool", "int", "float"}."""
    if isinstance(value, (builtins.bool, np.bool_, sympy.logic.boolalg.BooleanAtom)):
        return builtins.bool(value), "bool"
    if isinstance(value, (int, np.integer)):
        return sympy.Integer(int(value)), "int"
    if isinstance(value, (float, np.floating)):
        return _float_to_expr(float(value)), "float"
    if isinstance(value, (complex, np.complexfloating)):
        raise TypeError("the symbolic namespace has no complex dtype (float64 only)")
    if isinstance(value, sympy.Expr):
        # only numbers are checked: assumption queries on big expressions can be slow
        if value.is_number and value.is_extended_real is False and value.is_finite:
            raise TypeError(f"the symbolic namespace holds real expressions only; got {value}")
        return value, "float"
    if isinstance(value, sympy.logic.boolalg.Boolean):
        return _truth(value), "bool"
    raise TypeError(f"cannot use a {type(value).__name__} as an element of a symbolic array")


def _integer_value(el: Any) -> sympy.Integer | None:
    """``el`` as a SymPy Integer when it is an integer-valued number, else None."""
    if isinstance(el, builtins.bool):
        return sympy.Integer(int(el))
    if el.is_Integer:
        return el
    if el.is_number and el.is_finite:
        floor = sympy.floor(el)
        if (el - floor).is_zero:
            return sympy.Integer(floor)
    return None


def _to_dtype(el: Any, dtype: SymbolicDType) -> Any:
    """Convert one element (Python bool or SymPy expression) to an element of ``dtype``."""
    if dtype == _BOOL:
        return el if isinstance(el, builtins.bool) else _truth(el)
    if isinstance(el, builtins.bool):
        return sympy.Integer(int(el))
    if dtype == _INT64 and not el.is_Integer:
        value = _integer_value(el)
        if value is not None:
            return value
        if el.is_integer:
            return el
        raise ValueError(
            f"cannot convert {el} to int64: only integer-valued numbers (or expressions SymPy "
            "knows to be integers) convert"
        )
    return el


def _obj(result: Any) -> np.ndarray:
    """Whatever NumPy returned (array or lone object) as an object ndarray."""
    if isinstance(result, np.ndarray):
        return result if result.dtype == object else result.astype(object)
    out = np.empty((), dtype=object)
    out[()] = result
    return out


def _map(func: Callable[..., Any], *datas: np.ndarray) -> np.ndarray:
    """Apply a scalar function elementwise (with NumPy broadcasting) to object arrays."""
    return _obj(np.frompyfunc(func, len(datas), 1)(*datas))


def _cast_data(x: SymbolicArray, dtype: SymbolicDType) -> np.ndarray:
    if x._dtype == dtype:
        return x._data
    return _map(lambda el: _to_dtype(el, dtype), x._data)


# --------------------------------------------------------------------------------------------
# deciding comparisons
# --------------------------------------------------------------------------------------------
_REL = {
    "<": (sympy.Lt, "is_negative"),
    "<=": (sympy.Le, "is_nonpositive"),
    ">": (sympy.Gt, "is_positive"),
    ">=": (sympy.Ge, "is_nonnegative"),
    "==": (sympy.Eq, "is_zero"),
    "!=": (sympy.Ne, None),
}
_PY_OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _undecidable(what: str) -> TypeError:
    return TypeError(
        f"symbolic {what} is undecidable; SymPy cannot tell its truth value from the symbols' "
        "assumptions. The symbolic backend only evaluates decidable comparisons: compare "
        "numbers, give the symbols assumptions (e.g. positive=True), or avoid the "
        "data-dependent branch."
    )


def _decide(op: str, a: Any, b: Any) -> builtins.bool:
    """The truth of ``a op b`` as a Python bool, or TypeError when SymPy cannot decide it."""
    if isinstance(a, builtins.bool) and isinstance(b, builtins.bool):
        return _PY_OPS[op](a, b)
    if isinstance(a, builtins.bool):
        a = sympy.Integer(int(a))
    if isinstance(b, builtins.bool):
        b = sympy.Integer(int(b))
    if a is sympy.nan or b is sympy.nan:
        return op == "!="  # IEEE: nan compares unequal to everything
    constructor, attribute = _REL[op]
    try:
        relation = constructor(a, b)
    except TypeError:
        relation = None
    if relation is sympy.true:
        return True
    if relation is sympy.false:
        return False
    if a.is_finite and b.is_finite:
        difference = a - b
        if op == "!=":
            truth = difference.is_zero
            truth = None if truth is None else not truth
        else:
            truth = getattr(difference, attribute)
        if truth is not None:
            return builtins.bool(truth)
    raise _undecidable(f"comparison {a} {op} {b}")


def _truth(el: Any) -> builtins.bool:
    """The truth value of one element (nonzero for numbers), or TypeError if undecidable."""
    if isinstance(el, (builtins.bool, np.bool_)):
        return builtins.bool(el)
    if el is sympy.true or el is sympy.false:
        return builtins.bool(el)
    if isinstance(el, sympy.logic.boolalg.Boolean):
        simplified = sympy.sympify(el)
        if simplified in (sympy.true, sympy.false):
            return builtins.bool(simplified)
        raise _undecidable(f"condition {el}")
    if el is sympy.nan:
        return True
    zero = el.is_zero
    if zero is None:
        raise _undecidable(f"truth value of {el} (is it nonzero?)")
    return not zero


# --------------------------------------------------------------------------------------------
# the array
# --------------------------------------------------------------------------------------------
class _Unsupported(TypeError):
    """An operand the symbolic namespace does not know (dunders return NotImplemented)."""


class SymbolicArray:
    """An immutable n-d array of SymPy expressions (Python bools for the ``bool`` dtype).

    Make one with :func:`asarray`, :func:`from_exprs` or :func:`symbols`;
    ``SymbolicArray(obj, dtype=None)`` is the same as ``asarray(obj, dtype=dtype)``.
    """

    __slots__ = ("_data", "_dtype")
    # NumPy must defer to our reflected operators (ndarray + SymbolicArray -> __radd__).
    __array_ufunc__ = None

    def __init__(self, obj: Any, dtype: SymbolicDType | None = None) -> None:
        made = asarray(obj, dtype=dtype)
        self._data = made._data
        self._dtype = made._dtype

    @classmethod
    def _new(cls, data: np.ndarray, dtype: SymbolicDType) -> SymbolicArray:
        self = object.__new__(cls)
        data = _obj(data)
        data.flags.writeable = False
        self._data = data
        self._dtype = dtype
        return self

    # --- attributes ---------------------------------------------------------------------
    @property
    def dtype(self) -> SymbolicDType:
        return self._dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._data.shape)

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return int(self._data.size)

    @property
    def device(self) -> str:
        return _DEVICE

    @property
    def T(self) -> SymbolicArray:
        if self.ndim != 2:
            raise ValueError(f"x.T needs a 2-D array; this one is {self.ndim}-D (use x.mT)")
        return SymbolicArray._new(self._data.T, self._dtype)

    @property
    def mT(self) -> SymbolicArray:
        return matrix_transpose(self)

    def __array_namespace__(self, /, *, api_version: str | None = None) -> types.ModuleType:
        if api_version not in _SUPPORTED_API_VERSIONS:
            raise ValueError(f"the symbolic namespace implements {__array_api_version__}; "
                             f"api_version={api_version!r} is not supported")
        return sys.modules[__name__]

    def to_device(self, device: Any, /, *, stream: Any = None) -> SymbolicArray:
        _check_device(device)
        return self

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(
            "a SymbolicArray does not convert to a NumPy array implicitly (NumPy would compute "
            "on it outside the symbolic namespace); use x.to_expr() for the object array"
        )

    # --- expressions ----------------------------------------------------------------------
    def to_expr(self) -> np.ndarray:
        """A copy of the underlying NumPy object array of expressions."""
        return self._data.copy()

    def expr(self) -> Any:
        """The single expression of a 0-d (or size-1) array."""
        if self._data.size != 1:
            raise ValueError(f"expr() needs a size-1 array; this one has shape {self.shape}")
        return self._data.reshape(-1)[0]

    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", prefix="SymbolicArray(")
        return f"SymbolicArray({body}, dtype={self._dtype.name})"

    __str__ = __repr__

    # --- Python protocols -----------------------------------------------------------------
    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d SymbolicArray")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d SymbolicArray")
        return (self[i] for i in range(self.shape[0]))

    def _scalar(self, what: str) -> Any:
        if self._data.size != 1:
            raise TypeError(f"{what} needs a size-1 array; this one has shape {self.shape}")
        return self.expr()

    def __bool__(self) -> builtins.bool:
        return _truth(self._scalar("bool()"))

    def __float__(self) -> float:
        el = self._scalar("float()")
        try:
            return float(el)
        except TypeError as exc:
            raise TypeError(f"cannot convert the symbolic expression {el} to a float") from exc

    def __int__(self) -> int:
        el = self._scalar("int()")
        try:
            return int(el)
        except TypeError as exc:
            raise TypeError(f"cannot convert the symbolic expression {el} to an int") from exc

    def __index__(self) -> int:
        el = self._scalar("an index")
        if self._dtype == _FLOAT64 or (not isinstance(el, builtins.bool) and not el.is_Integer):
            raise TypeError(f"only concrete integers can be used as indices; got {el}")
        return int(el)

    # --- indexing ---------------------------------------------------------------------------
    def __getitem__(self, key: Any) -> SymbolicArray:
        parts = key if isinstance(key, tuple) else (key,)
        converted = tuple(_index_part(p) for p in parts)
        result = self._data[converted]
        return SymbolicArray._new(_obj(result), self._dtype)

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError(
            "SymbolicArray is immutable: item assignment is not supported by the symbolic "
            "namespace (build a new array, e.g. with where/concat/stack)"
        )

    # --- arithmetic -------------------------------------------------------------------------
    def __add__(self, other: Any) -> SymbolicArray:
        return _dunder(self, other, add)

    def __radd__(self, other: Any) -> SymbolicArray:
        return _dunder(other, self, add)

    def __sub__(self, other: Any) -> SymbolicArray:
        return _dunder(self, other, subtract)

    def __rsub__(self, other: Any) -> SymbolicArray:
        return _dunder(other, self, subtract)

    def __mul__(self, other: Any) -> SymbolicArray:
        return _dunder(self, other, multiply)

    def __rmul__(self, other: Any) -> SymbolicArray:
        return _dunder(other, self, multiply)

    def __truediv__(self, other: Any) -> SymbolicArray:
        return _dunder(self, other, divide)

    def __rtruediv__(self, other: Any) -> SymbolicArray:
        return _dunder(other, self, divide)

    def __floordiv__(self, other: Any) -> SymbolicArray:
        return _dunder(self, other, floor_divide)

    def __rfloordiv__(self, other: Any) -> SymbolicArray:
        return _dunder(other, self, floor_divide)

    def __mod__(self, other: Any) -> SymbolicArray:
        return _dunder(self, other, remainder)

    def __rmod__(self, other: Any) -> SymbolicArray:
        return _dunder(other, self, remainder)

    def __pow__(self, other: Any) -> SymbolicArray:
        return _dunder(self, other, pow)

    def __rpow__(self, other: Any) -> SymbolicArray:
        return _dunder(other, self, pow)

    def __matmul__(self, other: Any) -> SymbolicArray:
        return _dunder(self, other, matmul)

    def __rmatmul__(self, other: Any) -> SymbolicArray:
        return _dunder(other, self, matmul)

    def __neg__(self) -> SymbolicArray:
        return negative(self)

    def __pos__(self) -> SymbolicArray:
        return positive(self)

    def __abs__(self) -> SymbolicArray:
        return abs(self)

    # --- comparisons and logic --------------------------------------------------------------
    def __lt__(self, other: Any) -> SymbolicArray:
        return _dunder(self, other, less)

    def __le__(self, other: Any) -> SymbolicArray:
        return _dunder(self, other, less_equal)

    def __gt__(self, other: Any) -> SymbolicArray:
        return _dunder(self, other, greater)

    def __ge__(self, other: Any) -> SymbolicArray:
        return _dunder(self, other, greater_equal)

    def __eq__(self, other: Any) -> SymbolicArray:  # type: ignore[override]
        return _dunder(self, other, equal)

    def __ne__(self, other: Any) -> SymbolicArray:  # type: ignore[override]
        return _dunder(self, other, not_equal)

    __hash__ = None  # type: ignore[assignment]

    def __and__(self, other: Any) -> SymbolicArray:
        return _dunder(self, other, _bitwise("&", logical_and))

    def __rand__(self, other: Any) -> SymbolicArray:
        return _dunder(other, self, _bitwise("&", logical_and))

    def __or__(self, other: Any) -> SymbolicArray:
        return _dunder(self, other, _bitwise("|", logical_or))

    def __ror__(self, other: Any) -> SymbolicArray:
        return _dunder(other, self, _bitwise("|", logical_or))

    def __xor__(self, other: Any) -> SymbolicArray:
        return _dunder(self, other, _bitwise("^", logical_xor))

    def __rxor__(self, other: Any) -> SymbolicArray:
        return _dunder(other, self, _bitwise("^", logical_xor))

    def __invert__(self) -> SymbolicArray:
        if self._dtype != _BOOL:
            raise TypeError("~ is supported on bool arrays only (no bitwise integer operations)")
        return logical_not(self)


def _dunder(x1: Any, x2: Any, func: Callable[[Any, Any], SymbolicArray]) -> Any:
    try:
        return func(x1, x2)
    except _Unsupported:
        return NotImplemented


def _bitwise(symbol: str, logical: Callable[[Any, Any], SymbolicArray]):
    def op(x1: Any, x2: Any) -> SymbolicArray:
        a, b = _pair(x1, x2)
        if a.dtype != _BOOL or b.dtype != _BOOL:
            raise TypeError(
                f"{symbol} is supported on bool arrays only (no bitwise integer operations)"
            )
        return logical(a, b)

    return op


def _index_part(part: Any) -> Any:
    """One component of an index, in a form NumPy understands."""
    if isinstance(part, SymbolicArray):
        if part.dtype == _BOOL:
            return part._data.astype(np.bool_)
        if part.ndim == 0:
            return part.__index__()
        return _concrete_indices(part)
    if isinstance(part, slice):
        return slice(*(None if v is None else operator.index(v)
                       for v in (part.start, part.stop, part.step)))
    return part


def _concrete_indices(indices: Any) -> np.ndarray:
    """Integer indices (SymbolicArray, NumPy array or sequence) as a NumPy intp array."""
    if isinstance(indices, SymbolicArray):
        if indices.dtype != _INT64:
            raise TypeError(f"indices must have an integer dtype; got {indices.dtype.name}")
        out = np.empty(indices.shape, dtype=np.intp)
        for position, el in np.ndenumerate(indices._data):
            if not el.is_Integer:
                raise TypeError(f"only concrete integers can be used as indices; got {el}")
            out[position] = int(el)
        return out
    array = np.asarray(indices)
    if array.dtype.kind not in "iu":
        raise TypeError(f"indices must be integers; got dtype {array.dtype}")
    return array.astype(np.intp)


# --------------------------------------------------------------------------------------------
# making arrays
# --------------------------------------------------------------------------------------------
def _check_device(device: Any) -> None:
    if device is not None and device != _DEVICE:
        raise ValueError(f"the symbolic namespace has the single device 'sympy'; got {device!r}")


def _check_dtype(dtype: Any) -> SymbolicDType | None:
    if dtype is None or isinstance(dtype, SymbolicDType):
        return dtype
    raise TypeError(
        f"{dtype!r} is not a dtype of the symbolic namespace (only float64, int64 and bool)"
    )


def _nested(obj: Any) -> tuple[np.ndarray, set[str]]:
    """A nested sequence / ndarray / scalar as (object array of elements, kinds seen)."""
    if isinstance(obj, SymbolicArray):
        return obj._data, {_DTYPE_TO_KIND[obj.dtype]}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biufO":
            raise TypeError(f"cannot make a symbolic array from a NumPy {obj.dtype} array")
        out = np.empty(obj.shape, dtype=object)
        kinds: set[str] = set()
        for position, value in np.ndenumerate(obj):
            out[position], kind = _leaf(value)
            kinds.add(kind)
        return out, kinds
    if isinstance(obj, (list, tuple)):
        parts = [_nested(item) for item in obj]
        shapes = {part.shape for part, _ in parts}
        if len(shapes) > 1:
            raise ValueError(f"cannot make an array from a ragged sequence (shapes {shapes})")
        inner = shapes.pop() if shapes else ()
        out = np.empty((len(parts), *inner), dtype=object)
        kinds = set()
        for i, (part, part_kinds) in enumerate(parts):
            out[i, ...] = part
            kinds |= part_kinds
        return out, kinds
    element, kind = _leaf(obj)
    return _obj(element), {kind}


_DTYPE_TO_KIND = {_BOOL: "bool", _INT64: "int", _FLOAT64: "float"}


def _kinds_to_dtype(kinds: set[str]) -> SymbolicDType:
    if "float" in kinds or not kinds:
        return _FLOAT64
    if "int" in kinds:
        return _INT64
    return _BOOL


def asarray(
    obj: Any,
    /,
    *,
    dtype: SymbolicDType | None = None,
    device: Any = None,
    copy: builtins.bool | None = None,
) -> SymbolicArray:
    """A SymbolicArray from a SymbolicArray, scalar, SymPy expression, nested sequence or ndarray.

    Without ``dtype``: bools give ``bool``, Python/NumPy integers ``int64``, anything else
    (floats, SymPy expressions) ``float64``.
    """
    _check_device(device)
    dtype = _check_dtype(dtype)
    if isinstance(obj, SymbolicArray):
        if dtype is None or dtype == obj.dtype:
            return obj
        if copy is False:
            raise ValueError("asarray(copy=False) cannot change the dtype without a copy")
        return astype(obj, dtype)
    data, kinds = _nested(obj)
    target = dtype if dtype is not None else _kinds_to_dtype(kinds)
    return SymbolicArray._new(_map(lambda el: _to_dtype(el, target), data), target)


def from_exprs(obj: Any, dtype: SymbolicDType | None = None) -> SymbolicArray:
    """A SymbolicArray from (nested lists / object arrays of) SymPy expressions and numbers.

    Unlike :func:`asarray` the default dtype is ``float64`` even for integers (expressions are
    symbolic reals); it is ``bool`` only when every element is a boolean.
    """
    dtype = _check_dtype(dtype)
    data, kinds = _nested(obj)
    if dtype is None:
        dtype = _BOOL if kinds == {"bool"} else _FLOAT64
    return SymbolicArray._new(_map(lambda el: _to_dtype(el, dtype), data), dtype)


def symbols(
    name: str,
    shape: int | Sequence[int],
    *,
    real: builtins.bool = True,
    positive: builtins.bool = False,
    dtype: SymbolicDType | None = None,
) -> SymbolicArray:
    """An array of SymPy symbols ``name_i`` (1-D), ``name_i_j`` (2-D), ... (``name`` for 0-d).

    ``real=True`` makes them real (hence finite); ``positive=True`` adds positivity.
    ``positive=False`` means "no sign assumption", not "non-positive". ``dtype=int64`` makes
    integer symbols. SymPy caches symbols by name and assumptions, so the same call twice gives
    the same symbols.
    """
    shape_tuple = (shape,) if isinstance(shape, int) else tuple(shape)
    dtype = _check_dtype(dtype) or _FLOAT64
    if dtype == _BOOL:
        raise TypeError("symbols() makes numeric symbols (float64 or int64), not bool")
    assumptions: dict[str, builtins.bool] = {}
    if real:
        assumptions["real"] = True
    if positive:
        assumptions["positive"] = True
    if dtype == _INT64:
        assumptions["integer"] = True
    data = np.empty(shape_tuple, dtype=object)
    for position in np.ndindex(shape_tuple):
        label = "_".join([name, *(str(i) for i in position)])
        data[position] = sympy.Symbol(label, **assumptions)
    return SymbolicArray._new(data, dtype)


def _shape_tuple(shape: int | Sequence[int]) -> tuple[int, ...]:
    return (operator.index(shape),) if not isinstance(shape, (tuple, list)) else tuple(
        operator.index(s) for s in shape
    )


def _filled(shape: Any, value: Any, dtype: SymbolicDType) -> SymbolicArray:
    data = np.empty(_shape_tuple(shape), dtype=object)
    data.fill(_to_dtype(value, dtype))
    return SymbolicArray._new(data, dtype)


def full(
    shape: int | Sequence[int],
    fill_value: Any,
    *,
    dtype: SymbolicDType | None = None,
    device: Any = None,
) -> SymbolicArray:
    _check_device(device)
    dtype = _check_dtype(dtype)
    if isinstance(fill_value, SymbolicArray):
        fill_value = fill_value.expr()
    element, kind = _leaf(fill_value)
    return _filled(shape, element, dtype or _kinds_to_dtype({kind}))


def zeros(
    shape: int | Sequence[int], *, dtype: SymbolicDType | None = None, device: Any = None
) -> SymbolicArray:
    _check_device(device)
    return _filled(shape, sympy.S.Zero, _check_dtype(dtype) or _FLOAT64)


def ones(
    shape: int | Sequence[int], *, dtype: SymbolicDType | None = None, device: Any = None
) -> SymbolicArray:
    _check_device(device)
    return _filled(shape, sympy.S.One, _check_dtype(dtype) or _FLOAT64)


def empty(
    shape: int | Sequence[int], *, dtype: SymbolicDType | None = None, device: Any = None
) -> SymbolicArray:
    """Zeros: there is no uninitialised memory in a symbolic array."""
    return zeros(shape, dtype=dtype, device=device)


def full_like(
    x: SymbolicArray, /, fill_value: Any, *, dtype: SymbolicDType | None = None,
    device: Any = None,
) -> SymbolicArray:
    _check_device(device)
    if isinstance(fill_value, SymbolicArray):
        fill_value = fill_value.expr()
    element, _ = _leaf(fill_value)
    return _filled(x.shape, element, _check_dtype(dtype) or x.dtype)


def zeros_like(
    x: SymbolicArray, /, *, dtype: SymbolicDType | None = None, device: Any = None
) -> SymbolicArray:
    return full_like(x, 0, dtype=dtype, device=device)


def ones_like(
    x: SymbolicArray, /, *, dtype: SymbolicDType | None = None, device: Any = None
) -> SymbolicArray:
    return full_like(x, 1, dtype=dtype, device=device)


def empty_like(
    x: SymbolicArray, /, *, dtype: SymbolicDType | None = None, device: Any = None
) -> SymbolicArray:
    return zeros_like(x, dtype=dtype, device=device)


def arange(
    start: int | float,
    /,
    stop: int | float | None = None,
    step: int | float = 1,
    *,
    dtype: SymbolicDType | None = None,
    device: Any = None,
) -> SymbolicArray:
    _check_device(device)
    if stop is None:
        start, stop = 0, start
    values = np.arange(start, stop, step)
    return asarray(values, dtype=_check_dtype(dtype))


def linspace(
    start: Any,
    stop: Any,
    /,
    num: int,
    *,
    dtype: SymbolicDType | None = None,
    device: Any = None,
    endpoint: builtins.bool = True,
) -> SymbolicArray:
    """``num`` evenly spaced values, computed exactly: ``start + i * (stop - start) / div``."""
    _check_device(device)
    first, _ = _leaf(start)
    last, _ = _leaf(stop)
    div = (num - 1) if endpoint else num
    if num == 1:
        values = [first]
    else:
        values = [first + i * (last - first) / div for i in range(num)]
    data = np.empty(num, dtype=object)
    data[:] = values[:num]
    return asarray(data, dtype=_check_dtype(dtype) or _FLOAT64)


def eye(
    n_rows: int,
    n_cols: int | None = None,
    /,
    *,
    k: int = 0,
    dtype: SymbolicDType | None = None,
    device: Any = None,
) -> SymbolicArray:
    _check_device(device)
    return asarray(np.eye(n_rows, n_cols, k=k), dtype=_check_dtype(dtype) or _FLOAT64)


def _tri(x: SymbolicArray, k: int, lower: builtins.bool) -> SymbolicArray:
    if x.ndim < 2:
        raise ValueError("tril/triu need an array with at least 2 dimensions")
    rows, cols = x.shape[-2:]
    mask = np.tri(rows, cols, k=k if lower else k - 1, dtype=np.bool_)
    if not lower:
        mask = ~mask
    zero = _to_dtype(sympy.S.Zero, x.dtype)
    return SymbolicArray._new(np.where(mask, x._data, zero), x.dtype)


def tril(x: SymbolicArray, /, *, k: int = 0) -> SymbolicArray:
    return _tri(x, k, lower=True)


def triu(x: SymbolicArray, /, *, k: int = 0) -> SymbolicArray:
    return _tri(x, k, lower=False)


def meshgrid(*arrays: SymbolicArray, indexing: str = "xy") -> list[SymbolicArray]:
    dtype = result_type(*arrays)
    grids = np.meshgrid(*(_cast_data(a, dtype) for a in arrays), indexing=indexing)
    return [SymbolicArray._new(g, dtype) for g in grids]


# --------------------------------------------------------------------------------------------
# operands, dtype rules and elementwise functions
# --------------------------------------------------------------------------------------------
def _as_array(x: Any) -> SymbolicArray:
    if isinstance(x, SymbolicArray):
        return x
    if isinstance(x, (np.ndarray, list, tuple, int, float, np.generic, sympy.Basic)):
        return asarray(x)
    raise _Unsupported(
        f"the symbolic namespace cannot operate on a {type(x).__name__} (mixed array libraries?)"
    )


def _scalar_like(value: Any, dtype: SymbolicDType) -> SymbolicArray:
    """A Python/NumPy/SymPy scalar as a 0-d array whose dtype follows the array it meets."""
    if isinstance(value, (np.ndarray, list, tuple)):
        return asarray(value)
    if not isinstance(value, (int, float, complex, np.generic, sympy.Basic)):
        raise _Unsupported(
            f"the symbolic namespace cannot operate on a {type(value).__name__} "
            "(mixed array libraries?)"
        )
    element, kind = _leaf(value)
    if kind == "bool":
        target = dtype
    elif kind == "int":
        target = dtype if dtype != _BOOL else _INT64
    else:
        target = _FLOAT64
    return SymbolicArray._new(_obj(_to_dtype(element, target)), target)


def _pair(x1: Any, x2: Any) -> tuple[SymbolicArray, SymbolicArray]:
    if isinstance(x1, SymbolicArray) and isinstance(x2, SymbolicArray):
        return x1, x2
    if isinstance(x1, SymbolicArray):
        return x1, _scalar_like(x2, x1.dtype)
    if isinstance(x2, SymbolicArray):
        return _scalar_like(x1, x2.dtype), x2
    return _as_array(x1), _as_array(x2)


def _numeric(dtype: SymbolicDType) -> SymbolicDType:
    return _INT64 if dtype == _BOOL else dtype


def _binary(
    name: str,
    func: Callable[[Any, Any], Any],
    rule: str,
    doc: str,
) -> Callable[[Any, Any], SymbolicArray]:
    """An elementwise binary function; ``rule`` picks the dtypes.

    "arith": common numeric dtype (bool operands act as 0/1; bool with bool is an error);
    "float": float64; "compare": inputs at their common dtype, bool result;
    "logical": bool inputs (truth values), bool result.
    """
    ufunc = np.frompyfunc(func, 2, 1)

    def function(x1: Any, x2: Any, /) -> SymbolicArray:
        a, b = _pair(x1, x2)
        common = _promote(a.dtype, b.dtype)
        if rule == "arith":
            if a.dtype == _BOOL and b.dtype == _BOOL:
                raise TypeError(f"{name} of two bool arrays is not defined (use logical_*)")
            common = out = _numeric(common)
        elif rule == "float":
            common = out = _FLOAT64
        elif rule == "compare":
            out = _BOOL
        else:  # logical
            common = out = _BOOL
        result = ufunc(_cast_data(a, common), _cast_data(b, common))
        return SymbolicArray._new(_obj(result), out)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
    return function


def _unary(
    name: str, func: Callable[[Any], Any], rule: str, doc: str
) -> Callable[[Any], SymbolicArray]:
    """An elementwise unary function; ``rule`` is "float" (float64 in and out), "same" (numeric
    dtype kept; bool acts as int64), "predicate" (any dtype in, bool out) or "logical"."""
    ufunc = np.frompyfunc(func, 1, 1)

    def function(x: Any, /) -> SymbolicArray:
        a = _as_array(x)
        if rule == "float":
            into = out = _FLOAT64
        elif rule == "same":
            into = out = _numeric(a.dtype)
        elif rule == "predicate":
            into, out = a.dtype, _BOOL
        else:  # logical
            into = out = _BOOL
        return SymbolicArray._new(_obj(ufunc(_cast_data(a, into))), out)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = doc
    return function


def _is_number_zero(el: Any) -> builtins.bool:
    return el.is_Number and not el and el is not sympy.nan


def _truediv(a: Any, b: Any) -> Any:
    if _is_number_zero(b):  # IEEE-like x/0 instead of SymPy's zoo
        if a is sympy.nan or _is_number_zero(a):
            return sympy.nan
        if a.is_positive:
            return sympy.oo
        if a.is_negative:
            return -sympy.oo
    return a / b


def _log(el: Any) -> Any:
    return -sympy.oo if _is_number_zero(el) else sympy.log(el)


def _isfinite(el: Any) -> builtins.bool:
    if isinstance(el, builtins.bool):
        return True
    if el is sympy.nan:
        return False
    finite = el.is_finite
    if finite is None:
        raise _undecidable(f"isfinite({el})")
    return builtins.bool(finite)


def _isnan(el: Any) -> builtins.bool:
    if isinstance(el, builtins.bool) or el.is_finite or el.is_infinite:
        return False
    if el is sympy.nan:
        return True
    if el.is_extended_real or (el.is_extended_real is False and el.is_complex):
        return False
    raise _undecidable(f"isnan({el})")


def _isinf(el: Any) -> builtins.bool:
    if isinstance(el, builtins.bool) or el.is_finite or el is sympy.nan:
        return False
    if el.is_infinite:
        return True
    raise _undecidable(f"isinf({el})")


def _round_half_even(el: Any) -> Any:
    if not el.is_number:
        raise TypeError(f"round() of the symbolic expression {el} is not supported")
    if el is sympy.nan or el.is_infinite:
        return el
    floor = sympy.floor(el)
    fraction = el - floor
    if _decide("<", fraction, sympy.S.Half):
        return floor
    if _decide(">", fraction, sympy.S.Half):
        return floor + 1
    return floor if floor.is_even else floor + 1


def _integer_only(func: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """floor/ceil/round: integers are their own value."""
    def apply(el: Any) -> Any:
        return el if el.is_Integer else func(el)

    return apply


# elementwise: arithmetic ---------------------------------------------------------------------
add = _binary("add", operator.add, "arith", "x1 + x2 elementwise.")
subtract = _binary("subtract", operator.sub, "arith", "x1 - x2 elementwise.")
multiply = _binary("multiply", operator.mul, "arith", "x1 * x2 elementwise.")
divide = _binary("divide", _truediv, "float", "x1 / x2 elementwise (float64).")
pow = _binary("pow", operator.pow, "arith", "x1 ** x2 elementwise.")
floor_divide = _binary("floor_divide", operator.floordiv, "arith", "x1 // x2 elementwise.")
remainder = _binary("remainder", operator.mod, "arith", "x1 % x2 elementwise (sympy.Mod).")
maximum = _binary("maximum", sympy.Max, "arith", "sympy.Max(x1, x2) elementwise.")
minimum = _binary("minimum", sympy.Min, "arith", "sympy.Min(x1, x2) elementwise.")
atan2 = _binary("atan2", sympy.atan2, "float", "sympy.atan2(x1, x2) elementwise.")
hypot = _binary(
    "hypot", lambda a, b: sympy.sqrt(a**2 + b**2), "float", "sqrt(x1**2 + x2**2) elementwise."
)
logaddexp = _binary(
    "logaddexp", lambda a, b: sympy.log(sympy.exp(a) + sympy.exp(b)), "float",
    "log(exp(x1) + exp(x2)) elementwise (as written; no max shift).",
)

negative = _unary("negative", operator.neg, "same", "-x elementwise.")
positive = _unary("positive", lambda el: el, "same", "+x elementwise.")
abs = _unary("abs", sympy.Abs, "same", "sympy.Abs elementwise.")
sign = _unary("sign", sympy.sign, "same", "sympy.sign elementwise (sign(0) = 0).")
square = _unary("square", lambda el: el**2, "same", "x**2 elementwise.")
reciprocal = _unary("reciprocal", lambda el: _truediv(sympy.S.One, el), "float", "1 / x.")
conj = _unary("conj", lambda el: el, "same", "Identity: the namespace is real.")
real = _unary("real", lambda el: el, "same", "Identity: the namespace is real.")

# elementwise: transcendental -----------------------------------------------------------------
exp = _unary("exp", sympy.exp, "float", "sympy.exp elementwise.")
expm1 = _unary("expm1", lambda el: sympy.exp(el) - 1, "float", "exp(x) - 1 elementwise.")
log = _unary("log", _log, "float", "sympy.log elementwise (log(0) = -oo).")
log1p = _unary("log1p", lambda el: _log(1 + el), "float", "log(1 + x) elementwise.")
log2 = _unary("log2", lambda el: _log(el) / sympy.log(2), "float", "log(x) / log(2).")
log10 = _unary("log10", lambda el: _log(el) / sympy.log(10), "float", "log(x) / log(10).")
sqrt = _unary("sqrt", sympy.sqrt, "float", "sympy.sqrt elementwise.")
sin = _unary("sin", sympy.sin, "float", "sympy.sin elementwise.")
cos = _unary("cos", sympy.cos, "float", "sympy.cos elementwise.")
tan = _unary("tan", sympy.tan, "float", "sympy.tan elementwise.")
asin = _unary("asin", sympy.asin, "float", "sympy.asin elementwise.")
acos = _unary("acos", sympy.acos, "float", "sympy.acos elementwise.")
atan = _unary("atan", sympy.atan, "float", "sympy.atan elementwise.")
sinh = _unary("sinh", sympy.sinh, "float", "sympy.sinh elementwise.")
cosh = _unary("cosh", sympy.cosh, "float", "sympy.cosh elementwise.")
tanh = _unary("tanh", sympy.tanh, "float", "sympy.tanh elementwise.")
asinh = _unary("asinh", sympy.asinh, "float", "sympy.asinh elementwise.")
acosh = _unary("acosh", sympy.acosh, "float", "sympy.acosh elementwise.")
atanh = _unary("atanh", sympy.atanh, "float", "sympy.atanh elementwise.")
erf = _unary("erf", sympy.erf, "float", "sympy.erf elementwise (not in the standard).")

# elementwise: rounding -----------------------------------------------------------------------
floor = _unary("floor", _integer_only(sympy.floor), "same", "sympy.floor elementwise.")
ceil = _unary("ceil", _integer_only(sympy.ceiling), "same", "sympy.ceiling elementwise.")
round = _unary(
    "round", _integer_only(_round_half_even), "same",
    "Round half to even; numbers only (TypeError for symbolic expressions).",
)

# elementwise: predicates, comparisons, logic -------------------------------------------------
isfinite = _unary("isfinite", _isfinite, "predicate", "True where the element is finite.")
isnan = _unary("isnan", _isnan, "predicate", "True where the element is nan.")
isinf = _unary("isinf", _isinf, "predicate", "True where the element is +-oo (or zoo).")


def _comparison(name: str, op: str) -> Callable[[Any, Any], SymbolicArray]:
    return _binary(
        name, lambda a, b: _decide(op, a, b), "compare",
        f"x1 {op} x2 elementwise; TypeError where SymPy cannot decide it.",
    )


equal = _comparison("equal", "==")
not_equal = _comparison("not_equal", "!=")
less = _comparison("less", "<")
less_equal = _comparison("less_equal", "<=")
greater = _comparison("greater", ">")
greater_equal = _comparison("greater_equal", ">=")

logical_and = _binary("logical_and", operator.and_, "logical", "x1 and x2 elementwise.")
logical_or = _binary("logical_or", operator.or_, "logical", "x1 or x2 elementwise.")
logical_xor = _binary("logical_xor", operator.xor, "logical", "x1 xor x2 elementwise.")
logical_not = _unary("logical_not", operator.not_, "logical", "not x elementwise.")


def clip(
    x: SymbolicArray, /, min: Any = None, max: Any = None
) -> SymbolicArray:
    """``Min(Max(x, min), max)`` elementwise; the result keeps x's shape and dtype."""
    result = x
    if min is not None:
        result = maximum(result, min)
    if max is not None:
        result = minimum(result, max)
    result = broadcast_to(result, x.shape) if result.shape != x.shape else result
    return astype(result, x.dtype) if result.dtype != x.dtype else result


def where(condition: Any, x1: Any, x2: Any, /) -> SymbolicArray:
    """Elements of x1 where condition is True, else of x2 (the condition must be concrete)."""
    if isinstance(condition, SymbolicArray):
        if condition.dtype != _BOOL:
            raise TypeError(f"where() needs a bool condition; got {condition.dtype.name}")
        mask = condition._data.astype(np.bool_)
    elif isinstance(condition, (builtins.bool, np.bool_)):
        mask = np.asarray(condition, dtype=np.bool_)
    elif isinstance(condition, np.ndarray) and condition.dtype == np.bool_:
        mask = condition
    else:
        raise TypeError(f"where() needs a bool condition; got {type(condition).__name__}")
    a, b = _pair(x1, x2)
    dtype = _promote(a.dtype, b.dtype)
    return SymbolicArray._new(np.where(mask, _cast_data(a, dtype), _cast_data(b, dtype)), dtype)


# --------------------------------------------------------------------------------------------
# reductions
# --------------------------------------------------------------------------------------------
def _normalize_axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    normalized = []
    for a in axes:
        a = operator.index(a)
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(a, ndim)
        normalized.append(a % ndim)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"repeated axis in {axis!r}")
    return tuple(normalized)


def _reduce_last(data: np.ndarray, reducer: Callable[[list[Any]], Any]) -> np.ndarray:
    """Apply ``reducer`` to the list of elements along the last axis of ``data``."""
    out = np.empty(data.shape[:-1], dtype=object)
    for position in np.ndindex(out.shape):
        out[position] = reducer(list(data[position]))
    return out


def _reduce(
    x: SymbolicArray,
    axis: int | Sequence[int] | None,
    keepdims: builtins.bool,
    reducer: Callable[[list[Any]], Any],
) -> np.ndarray:
    """``reducer`` over the elements of each reduced slice; returns the object array."""
    data = x._data
    axes = _normalize_axes(axis, x.ndim)
    kept = [i for i in range(x.ndim) if i not in axes]
    moved = np.transpose(data, kept + list(axes))
    kept_shape = tuple(data.shape[i] for i in kept)
    count = math.prod(data.shape[i] for i in axes)
    out = _reduce_last(moved.reshape((*kept_shape, count)), reducer)
    if keepdims:
        out = out.reshape(tuple(1 if i in axes else n for i, n in enumerate(data.shape)))
    return out


def _sum_reducer(elements: list[Any]) -> Any:
    return sympy.Add(*elements)


def _prod_reducer(elements: list[Any]) -> Any:
    return sympy.Mul(*elements)


def sum(
    x: SymbolicArray,
    /,
    *,
    axis: int | Sequence[int] | None = None,
    dtype: SymbolicDType | None = None,
    keepdims: builtins.bool = False,
) -> SymbolicArray:
    """One flat ``sympy.Add`` per output element (0 for an empty sum)."""
    into = _check_dtype(dtype) or _numeric(x.dtype)
    source = SymbolicArray._new(_cast_data(x, _numeric(into)), _numeric(into))
    out = SymbolicArray._new(_reduce(source, axis, keepdims, _sum_reducer), _numeric(into))
    return astype(out, into) if into == _BOOL else out


def prod(
    x: SymbolicArray,
    /,
    *,
    axis: int | Sequence[int] | None = None,
    dtype: SymbolicDType | None = None,
    keepdims: builtins.bool = False,
) -> SymbolicArray:
    """One flat ``sympy.Mul`` per output element (1 for an empty product)."""
    into = _numeric(_check_dtype(dtype) or x.dtype)
    source = SymbolicArray._new(_cast_data(x, into), into)
    return SymbolicArray._new(_reduce(source, axis, keepdims, _prod_reducer), into)


def _extremum(
    x: SymbolicArray, axis: Any, keepdims: builtins.bool, func: Callable[..., Any], name: str
) -> SymbolicArray:
    def reducer(elements: list[Any]) -> Any:
        if not elements:
            raise ValueError(f"{name}() of an empty slice has no identity")
        return func(*elements)

    into = _numeric(x.dtype)
    source = SymbolicArray._new(_cast_data(x, into), into)
    out = SymbolicArray._new(_reduce(source, axis, keepdims, reducer), into)
    return astype(out, _BOOL) if x.dtype == _BOOL else out


def max(
    x: SymbolicArray, /, *, axis: int | Sequence[int] | None = None,
    keepdims: builtins.bool = False,
) -> SymbolicArray:
    """``sympy.Max`` of the reduced elements."""
    return _extremum(x, axis, keepdims, sympy.Max, "max")


def min(
    x: SymbolicArray, /, *, axis: int | Sequence[int] | None = None,
    keepdims: builtins.bool = False,
) -> SymbolicArray:
    """``sympy.Min`` of the reduced elements."""
    return _extremum(x, axis, keepdims, sympy.Min, "min")


def _count(x: SymbolicArray, axis: Any) -> int:
    return math.prod(x.shape[i] for i in _normalize_axes(axis, x.ndim))


def mean(
    x: SymbolicArray, /, *, axis: int | Sequence[int] | None = None,
    keepdims: builtins.bool = False,
) -> SymbolicArray:
    """``Add(*elements) / n`` (nan for an empty slice)."""
    n = _count(x, axis)
    source = SymbolicArray._new(_cast_data(x, _FLOAT64), _FLOAT64)
    data = _reduce(source, axis, keepdims,
                   lambda els: sympy.Add(*els) / n if n else sympy.nan)
    return SymbolicArray._new(data, _FLOAT64)


def _var_reducer(correction: Any) -> Callable[[list[Any]], Any]:
    def reducer(elements: list[Any]) -> Any:
        n = len(elements)
        if n - correction <= 0:
            return sympy.nan
        m = sympy.Add(*elements) / n
        return sympy.Add(*[(el - m) ** 2 for el in elements]) / (n - correction)

    return reducer


def var(
    x: SymbolicArray,
    /,
    *,
    axis: int | Sequence[int] | None = None,
    correction: int | float = 0.0,
    keepdims: builtins.bool = False,
) -> SymbolicArray:
    """``Add((x_i - mean)**2) / (n - correction)``."""
    c, _ = _leaf(correction)
    source = SymbolicArray._new(_cast_data(x, _FLOAT64), _FLOAT64)
    return SymbolicArray._new(_reduce(source, axis, keepdims, _var_reducer(c)), _FLOAT64)


def std(
    x: SymbolicArray,
    /,
    *,
    axis: int | Sequence[int] | None = None,
    correction: int | float = 0.0,
    keepdims: builtins.bool = False,
) -> SymbolicArray:
    """``sqrt(var(x))``."""
    return sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims))


def _arg_extremum(x: SymbolicArray, axis: int | None, keepdims: builtins.bool,
                  op: str) -> SymbolicArray:
    def reducer(elements: list[Any]) -> Any:
        if not elements:
            raise ValueError("argmax/argmin of an empty slice")
        for el in elements:
            if not isinstance(el, builtins.bool) and not el.is_comparable:
                raise TypeError(
                    f"argmax/argmin need numbers; {el} is symbolic (the index of the largest "
                    "element is undecidable)"
                )
        best = 0
        for i in range(1, len(elements)):
            if _decide(op, elements[i], elements[best]):
                best = i
        return sympy.Integer(best)

    if axis is None:
        flat = reshape(x, (-1,))
        data = _reduce(flat, 0, False, reducer)
        if keepdims:
            data = data.reshape((1,) * x.ndim)
        return SymbolicArray._new(data, _INT64)
    if not isinstance(axis, (int, np.integer)):
        raise TypeError("argmax/argmin take a single integer axis (or None)")
    return SymbolicArray._new(_reduce(x, axis, keepdims, reducer), _INT64)


def argmax(
    x: SymbolicArray, /, *, axis: int | None = None, keepdims: builtins.bool = False
) -> SymbolicArray:
    """Index of the first largest element; all elements must be numbers."""
    return _arg_extremum(x, axis, keepdims, ">")


def argmin(
    x: SymbolicArray, /, *, axis: int | None = None, keepdims: builtins.bool = False
) -> SymbolicArray:
    """Index of the first smallest element; all elements must be numbers."""
    return _arg_extremum(x, axis, keepdims, "<")


def any(
    x: SymbolicArray, /, *, axis: int | Sequence[int] | None = None,
    keepdims: builtins.bool = False,
) -> SymbolicArray:
    """Logical or over the axes (element truth values must be decidable)."""
    source = SymbolicArray._new(_cast_data(x, _BOOL), _BOOL)
    return SymbolicArray._new(_reduce(source, axis, keepdims, builtins.any), _BOOL)


def all(
    x: SymbolicArray, /, *, axis: int | Sequence[int] | None = None,
    keepdims: builtins.bool = False,
) -> SymbolicArray:
    """Logical and over the axes (element truth values must be decidable)."""
    source = SymbolicArray._new(_cast_data(x, _BOOL), _BOOL)
    return SymbolicArray._new(_reduce(source, axis, keepdims, builtins.all), _BOOL)


def count_nonzero(
    x: SymbolicArray, /, *, axis: int | Sequence[int] | None = None,
    keepdims: builtins.bool = False,
) -> SymbolicArray:
    source = SymbolicArray._new(_cast_data(x, _BOOL), _BOOL)
    return SymbolicArray._new(
        _reduce(source, axis, keepdims, lambda els: sympy.Integer(builtins.sum(els))), _INT64
    )


def _along_axis(x: SymbolicArray, axis: int, func: Callable[[list[Any]], list[Any]],
                length: int) -> np.ndarray:
    """Replace each 1-D slice along ``axis`` by ``func(slice)`` (a list of ``length``)."""
    (axis,) = _normalize_axes(axis, x.ndim)
    moved = np.moveaxis(x._data, axis, -1)
    out = np.empty((*moved.shape[:-1], length), dtype=object)
    for position in np.ndindex(moved.shape[:-1]):
        out[position] = func(list(moved[position]))
    return np.moveaxis(out, -1, axis)


def _cumulative(x: SymbolicArray, axis: int | None, dtype: SymbolicDType | None,
                include_initial: builtins.bool, combine: Callable[..., Any],
                identity: Any) -> SymbolicArray:
    if axis is None:
        if x.ndim > 1:
            raise ValueError("cumulative_sum/prod need an axis for arrays with more than 1 dim")
        axis = 0
    if x.ndim == 0:
        raise ValueError("cumulative_sum/prod need at least a 1-D array")
    into = _numeric(_check_dtype(dtype) or x.dtype)
    source = SymbolicArray._new(_cast_data(x, into), into)

    def running(elements: list[Any]) -> list[Any]:
        # each output is one flat Add/Mul of a prefix, not a chain of binary operations
        prefixes = [combine(*elements[: i + 1]) for i in range(len(elements))]
        return [identity, *prefixes] if include_initial else prefixes

    (axis,) = _normalize_axes(axis, x.ndim)
    length = x.shape[axis] + (1 if include_initial else 0)
    return SymbolicArray._new(_along_axis(source, axis, running, length), into)


def cumulative_sum(
    x: SymbolicArray,
    /,
    *,
    axis: int | None = None,
    dtype: SymbolicDType | None = None,
    include_initial: builtins.bool = False,
) -> SymbolicArray:
    """Running sums along ``axis`` (each a flat ``sympy.Add``)."""
    return _cumulative(x, axis, dtype, include_initial, sympy.Add, sympy.S.Zero)


def cumulative_prod(
    x: SymbolicArray,
    /,
    *,
    axis: int | None = None,
    dtype: SymbolicDType | None = None,
    include_initial: builtins.bool = False,
) -> SymbolicArray:
    """Running products along ``axis`` (each a flat ``sympy.Mul``)."""
    return _cumulative(x, axis, dtype, include_initial, sympy.Mul, sympy.S.One)


# --------------------------------------------------------------------------------------------
# linear algebra
# --------------------------------------------------------------------------------------------
_UF_MUL = np.frompyfunc(operator.mul, 2, 1)


def matmul(x1: Any, x2: Any, /) -> SymbolicArray:
    """Matrix product with NumPy's rules for 1-D operands and batch broadcasting; each
    element is one flat ``sympy.Add`` of products."""
    a, b = _pair(x1, x2)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul does not take 0-d arrays (use multiply)")
    dtype = _numeric(_promote(a.dtype, b.dtype))
    da, db = _cast_data(a, dtype), _cast_data(b, dtype)
    vector_a, vector_b = a.ndim == 1, b.ndim == 1
    if vector_a:
        da = da[None, :]
    if vector_b:
        db = db[:, None]
    if da.shape[-1] != db.shape[-2]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not match in the contracted dimension"
        )
    products = _UF_MUL(da[..., :, :, None], db[..., None, :, :])  # (..., n, k, m)
    out = _reduce_last(np.moveaxis(products, -2, -1), _sum_reducer)  # (..., n, m)
    if vector_a and vector_b:
        out = out[..., 0, 0]
    elif vector_a:
        out = out[..., 0, :]
    elif vector_b:
        out = out[..., 0]
    return SymbolicArray._new(out, dtype)


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> SymbolicArray:
    """Sum of ``x1 * x2`` over ``axis`` after broadcasting (the namespace is real)."""
    a, b = _pair(x1, x2)
    dtype = _numeric(_promote(a.dtype, b.dtype))
    da, db = np.broadcast_arrays(_cast_data(a, dtype), _cast_data(b, dtype))
    if da.ndim == 0:
        raise ValueError("vecdot needs arrays with at least one dimension")
    (axis,) = _normalize_axes(axis, da.ndim)
    products = _UF_MUL(np.moveaxis(da, axis, -1), np.moveaxis(db, axis, -1))
    return SymbolicArray._new(_reduce_last(_obj(products), _sum_reducer), dtype)


def tensordot(
    x1: Any, x2: Any, /, *, axes: int | tuple[Sequence[int], Sequence[int]] = 2
) -> SymbolicArray:
    a, b = _pair(x1, x2)
    if isinstance(axes, (int, np.integer)):
        n = operator.index(axes)
        axes_a, axes_b = list(range(a.ndim - n, a.ndim)), list(range(n))
    else:
        axes_a = [operator.index(i) % a.ndim for i in axes[0]]
        axes_b = [operator.index(i) % b.ndim for i in axes[1]]
    if len(axes_a) != len(axes_b):
        raise ValueError("tensordot: the two axis lists must have the same length")
    for i, j in zip(axes_a, axes_b, strict=True):
        if a.shape[i] != b.shape[j]:
            raise ValueError(f"tensordot: axis {i} of x1 and axis {j} of x2 differ in size")
    free_a = [i for i in range(a.ndim) if i not in axes_a]
    free_b = [j for j in range(b.ndim) if j not in axes_b]
    k = math.prod(a.shape[i] for i in axes_a)
    left = permute_dims(a, (*free_a, *axes_a))
    right = permute_dims(b, (*axes_b, *free_b))
    left = reshape(left, (math.prod(a.shape[i] for i in free_a), k))
    right = reshape(right, (k, math.prod(b.shape[j] for j in free_b)))
    product = matmul(left, right)
    return reshape(product, tuple(a.shape[i] for i in free_a) + tuple(b.shape[j] for j in free_b))


def matrix_transpose(x: SymbolicArray, /) -> SymbolicArray:
    if x.ndim < 2:
        raise ValueError(f"matrix_transpose needs at least 2 dimensions; got shape {x.shape}")
    return SymbolicArray._new(np.swapaxes(x._data, -1, -2), x.dtype)


def _outer(x1: Any, x2: Any, /) -> SymbolicArray:
    a, b = _pair(x1, x2)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError("outer needs two 1-D arrays")
    return multiply(a[:, None], b[None, :])


def _vector_norm(
    x: SymbolicArray,
    /,
    *,
    axis: int | Sequence[int] | None = None,
    keepdims: builtins.bool = False,
    ord: int | float = 2,
) -> SymbolicArray:
    """The p-norm over ``axis``: ``sqrt(Add(x_i**2))`` for ord=2 (real elements)."""
    source = SymbolicArray._new(_cast_data(x, _FLOAT64), _FLOAT64)
    if ord == 2:
        def reducer(els: list[Any]) -> Any:
            return sympy.sqrt(sympy.Add(*[el**2 for el in els]))
    elif ord == 1:
        def reducer(els: list[Any]) -> Any:
            return sympy.Add(*[sympy.Abs(el) for el in els])
    elif ord == math.inf:
        def reducer(els: list[Any]) -> Any:
            return sympy.Max(*[sympy.Abs(el) for el in els])
    elif ord == -math.inf:
        def reducer(els: list[Any]) -> Any:
            return sympy.Min(*[sympy.Abs(el) for el in els])
    elif ord == 0:
        def reducer(els: list[Any]) -> Any:
            return sympy.Integer(builtins.sum(_truth(el) for el in els))
    else:
        p, _ = _leaf(ord)

        def reducer(els: list[Any]) -> Any:
            return sympy.Add(*[sympy.Abs(el) ** p for el in els]) ** (1 / p)
    return SymbolicArray._new(_reduce(source, axis, keepdims, reducer), _FLOAT64)


linalg = types.SimpleNamespace(
    matmul=matmul,
    vecdot=vecdot,
    matrix_transpose=matrix_transpose,
    vector_norm=_vector_norm,
    outer=_outer,
    tensordot=tensordot,
)
"""The ``linalg`` extension (the subset that makes sense symbolically)."""


# --------------------------------------------------------------------------------------------
# manipulation
# --------------------------------------------------------------------------------------------
def reshape(
    x: SymbolicArray, /, shape: Sequence[int], *, copy: builtins.bool | None = None
) -> SymbolicArray:
    return SymbolicArray._new(np.reshape(x._data, _shape_tuple(shape)), x.dtype)


def expand_dims(x: SymbolicArray, /, *, axis: int | Sequence[int] = 0) -> SymbolicArray:
    return SymbolicArray._new(np.expand_dims(x._data, axis), x.dtype)


def squeeze(x: SymbolicArray, /, axis: int | Sequence[int]) -> SymbolicArray:
    axes = _normalize_axes(axis, x.ndim)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"cannot squeeze axis {a} of size {x.shape[a]}")
    return SymbolicArray._new(np.squeeze(x._data, axis=axes), x.dtype)


def broadcast_to(x: SymbolicArray, /, shape: Sequence[int]) -> SymbolicArray:
    return SymbolicArray._new(np.broadcast_to(x._data, _shape_tuple(shape)), x.dtype)


def broadcast_arrays(*arrays: SymbolicArray) -> list[SymbolicArray]:
    datas = np.broadcast_arrays(*(a._data for a in arrays))
    return [SymbolicArray._new(d, a.dtype) for d, a in zip(datas, arrays, strict=True)]


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(*(tuple(s) for s in shapes)))


def _common(arrays: Iterable[SymbolicArray]) -> tuple[list[np.ndarray], SymbolicDType]:
    arrays = [_as_array(a) for a in arrays]
    if not arrays:
        raise ValueError("need at least one array")
    dtype = result_type(*arrays)
    return [_cast_data(a, dtype) for a in arrays], dtype


def concat(
    arrays: Sequence[SymbolicArray], /, *, axis: int | None = 0
) -> SymbolicArray:
    datas, dtype = _common(arrays)
    if axis is None:
        datas = [d.reshape(-1) for d in datas]
        axis = 0
    return SymbolicArray._new(np.concatenate(datas, axis=axis), dtype)


def stack(arrays: Sequence[SymbolicArray], /, *, axis: int = 0) -> SymbolicArray:
    datas, dtype = _common(arrays)
    return SymbolicArray._new(np.stack(datas, axis=axis), dtype)


def unstack(x: SymbolicArray, /, *, axis: int = 0) -> tuple[SymbolicArray, ...]:
    moved = np.moveaxis(x._data, axis, 0)
    return tuple(SymbolicArray._new(part, x.dtype) for part in moved)


def moveaxis(
    x: SymbolicArray, source: int | Sequence[int], destination: int | Sequence[int], /
) -> SymbolicArray:
    return SymbolicArray._new(np.moveaxis(x._data, source, destination), x.dtype)


def permute_dims(x: SymbolicArray, /, axes: Sequence[int]) -> SymbolicArray:
    return SymbolicArray._new(np.transpose(x._data, tuple(axes)), x.dtype)


def flip(x: SymbolicArray, /, *, axis: int | Sequence[int] | None = None) -> SymbolicArray:
    return SymbolicArray._new(np.flip(x._data, axis=axis), x.dtype)


def roll(
    x: SymbolicArray,
    /,
    shift: int | Sequence[int],
    *,
    axis: int | Sequence[int] | None = None,
) -> SymbolicArray:
    return SymbolicArray._new(np.roll(x._data, shift, axis=axis), x.dtype)


def take(x: SymbolicArray, indices: Any, /, *, axis: int | None = None) -> SymbolicArray:
    if axis is None:
        if x.ndim != 1:
            raise ValueError("take() needs an axis for arrays with more than one dimension")
        axis = 0
    return SymbolicArray._new(np.take(x._data, _concrete_indices(indices), axis=axis), x.dtype)


def take_along_axis(x: SymbolicArray, indices: Any, /, *, axis: int = -1) -> SymbolicArray:
    picked = np.take_along_axis(x._data, _concrete_indices(indices), axis=axis)
    return SymbolicArray._new(picked, x.dtype)


def repeat(
    x: SymbolicArray, repeats: int | Any, /, *, axis: int | None = None
) -> SymbolicArray:
    counts = repeats if isinstance(repeats, int) else _concrete_indices(repeats)
    data = x._data.reshape(-1) if axis is None else x._data
    return SymbolicArray._new(np.repeat(data, counts, axis=0 if axis is None else axis), x.dtype)


def tile(x: SymbolicArray, repetitions: Sequence[int], /) -> SymbolicArray:
    return SymbolicArray._new(np.tile(x._data, tuple(repetitions)), x.dtype)


# --------------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------------
_KINDS: dict[str, tuple[SymbolicDType, ...]] = {
    "bool": (_BOOL,),
    "signed integer": (_INT64,),
    "unsigned integer": (),
    "integral": (_INT64,),
    "real floating": (_FLOAT64,),
    "complex floating": (),
    "numeric": (_INT64, _FLOAT64),
}


def isdtype(dtype: SymbolicDType, kind: Any) -> builtins.bool:
    """Whether ``dtype`` is of ``kind`` (a kind name, a dtype, or a tuple of those)."""
    if not isinstance(dtype, SymbolicDType):
        raise TypeError(f"isdtype() needs a dtype of the symbolic namespace; got {dtype!r}")
    if isinstance(kind, tuple):
        return builtins.any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, SymbolicDType):
        return dtype == kind
    if isinstance(kind, str):
        if kind not in _KINDS:
            raise ValueError(f"unknown dtype kind {kind!r}; known: {sorted(_KINDS)}")
        return dtype in _KINDS[kind]
    raise TypeError(f"isdtype() kind must be a str, a dtype or a tuple; got {kind!r}")


def result_type(*arrays_and_dtypes: Any) -> SymbolicDType:
    """The promoted dtype (bool < int64 < float64); Python scalars take part as their kind."""
    if not arrays_and_dtypes:
        raise ValueError("result_type() needs at least one array or dtype")
    dtypes = []
    for item in arrays_and_dtypes:
        if isinstance(item, SymbolicDType):
            dtypes.append(item)
        elif isinstance(item, SymbolicArray):
            dtypes.append(item.dtype)
        else:
            _, kind = _leaf(item)
            dtypes.append(_kinds_to_dtype({kind}))
    result = dtypes[0]
    for d in dtypes[1:]:
        result = _promote(result, d)
    return result


def can_cast(from_: SymbolicDType | SymbolicArray, to: SymbolicDType, /) -> builtins.bool:
    source = from_.dtype if isinstance(from_, SymbolicArray) else from_
    return _KIND_RANK[source] <= _KIND_RANK[to]


def astype(
    x: SymbolicArray,
    dtype: SymbolicDType,
    /,
    *,
    copy: builtins.bool = True,
    device: Any = None,
) -> SymbolicArray:
    """Convert the elements: to bool by (decidable) truth value, bool to 0/1, float64 to int64
    only for integer-valued numbers (ValueError otherwise)."""
    _check_device(device)
    dtype = _check_dtype(dtype)
    if dtype is None:
        raise TypeError("astype() needs a dtype")
    if x.dtype == dtype:
        return x
    return SymbolicArray._new(_cast_data(x, dtype), dtype)


class _FInfo:
    """float64 machine limits (NumPy's values), so code that reads finfo still runs."""

    def __init__(self) -> None:
        info = np.finfo(np.float64)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.smallest_normal = float(info.smallest_normal)
        self.tiny = float(info.tiny)
        self.dtype = _FLOAT64

    def __repr__(self) -> str:
        return f"finfo(bits={self.bits}, eps={self.eps}, dtype=float64)"


class _IInfo:
    def __init__(self) -> None:
        info = np.iinfo(np.int64)
        self.bits = int(info.bits)
        self.max = int(info.max)
        self.min = int(info.min)
        self.dtype = _INT64

    def __repr__(self) -> str:
        return "iinfo(bits=64, dtype=int64)"


def finfo(type: SymbolicDType | SymbolicArray, /) -> _FInfo:
    dtype = type.dtype if isinstance(type, SymbolicArray) else type
    if dtype != _FLOAT64:
        raise ValueError(f"finfo() needs a floating dtype; got {dtype!r}")
    return _FInfo()


def iinfo(type: SymbolicDType | SymbolicArray, /) -> _IInfo:
    dtype = type.dtype if isinstance(type, SymbolicArray) else type
    if dtype != _INT64:
        raise ValueError(f"iinfo() needs an integer dtype; got {dtype!r}")
    return _IInfo()


# --------------------------------------------------------------------------------------------
# constants and inspection
# --------------------------------------------------------------------------------------------
e = sympy.E
pi = sympy.pi
inf = sympy.oo
nan = sympy.nan
newaxis = None


class _Info:
    """What ``__array_namespace_info__()`` returns."""

    def capabilities(self) -> dict[str, Any]:
        return {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 64}

    def default_device(self) -> str:
        return _DEVICE

    def devices(self) -> list[str]:
        return [_DEVICE]

    def default_dtypes(self, *, device: Any = None) -> dict[str, SymbolicDType | None]:
        _check_device(device)
        return {
            "real floating": _FLOAT64,
            "complex floating": None,  # no complex dtype in this namespace
            "integral": _INT64,
            "indexing": _INT64,
        }

    def dtypes(self, *, device: Any = None, kind: Any = None) -> dict[str, SymbolicDType]:
        _check_device(device)
        return {name: d for name, d in _DTYPES.items() if kind is None or isdtype(d, kind)}


def __array_namespace_info__() -> _Info:
    return _Info()
