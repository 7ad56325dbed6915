"""Tier D machinery: three independent derivatives of an equation.

Every check is a vector-Jacobian product: for an equation f, a cotangent c of f's output
shape, and one array argument x, the reference is ∂⟨c, f(…, x, …)⟩/∂x, computed
(a) symbolically: the spec's own code traced on SymPy, differentiated by SymPy, and the
    derivative lambdified into NumPy's namespace and evaluated in float64;
(b) by autograd, on backends that have it;
(c) by central differences in float64, with NumPy;
and the spec's closed-form derivative, where it has one, on the backend. (a) and (c) are the
references, the same on every backend; (b) and the closed form are what the backend runs.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy as sp

from . import symbolic
from .helpers import host, to_backend


def central_difference(backend, fn, args, argnum: int, cotangent, kwargs=None) -> np.ndarray:
    """∂⟨c, fn(args)⟩/∂args[argnum] by central differences in float64 on `backend`."""
    kwargs = kwargs or {}
    args = [np.array(a, dtype=np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f"
            else a for a in args]
    x = args[argnum]
    cot = np.asarray(cotangent, dtype=np.float64)

    def value(xv):
        call = list(args)
        call[argnum] = xv
        out = fn(*[to_backend(backend, a) for a in call], **kwargs)
        return float(np.sum(backend.to_numpy(out) * cot))

    grad = np.zeros_like(x)
    eps3 = np.finfo(np.float64).eps ** (1 / 3)
    for idx in np.ndindex(x.shape):
        h = eps3 * max(1.0, abs(float(x[idx])))
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        grad[idx] = (value(up) - value(down)) / (up[idx] - down[idx])
    return grad


def autograd(backend, fn, args, argnum: int, cotangent, kwargs=None) -> np.ndarray:
    kwargs = kwargs or {}
    call = [to_backend(backend, a) for a in args]
    float_positions = [i for i, a in enumerate(args)
                       if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    others = dict(enumerate(call))

    def f(*floats):
        full = dict(others)
        full.update(zip(float_positions, floats))
        return fn(*[full[i] for i in range(len(call))], **kwargs)

    cot = to_backend(backend, np.asarray(cotangent, dtype=args[argnum].dtype))
    grads = backend.vjp(f, [call[i] for i in float_positions], cot)
    return backend.to_numpy(grads[float_positions.index(argnum)])


def _lambdify_modules(xp):
    """SymPy's functions mapped to the backend's namespace (numbers fall back to `math`)."""
    import math

    import spec

    def unary(array_fn, number_fn):
        def f(x):
            return number_fn(x) if isinstance(x, (int, float)) else array_fn(x)
        return f

    def heaviside(x, h0=0.5):
        return xp.where(x > 0, xp.ones_like(x),
                        xp.where(x < 0, xp.zeros_like(x), xp.full_like(x, h0)))

    def maximum(*args):
        return functools.reduce(xp.maximum, args)

    def minimum(*args):
        return functools.reduce(xp.minimum, args)

    return [{"exp": unary(xp.exp, math.exp), "log": unary(xp.log, math.log),
             "sqrt": unary(xp.sqrt, math.sqrt), "tanh": unary(xp.tanh, math.tanh),
             "sin": unary(xp.sin, math.sin), "cos": unary(xp.cos, math.cos),
             "erf": unary(spec.erf, math.erf), "Max": maximum, "Min": minimum,
             "Heaviside": heaviside, "Abs": unary(xp.abs, abs), "pi": math.pi, "E": math.e},
            "math"]


@functools.cache
def _symbolic_vjp(fn, arg_spec: tuple, argnum: int, kwargs_items: tuple, backend_id: str):
    """Trace fn on symbols, differentiate ⟨c, f⟩ with respect to argument argnum, lambdify."""
    import backends

    xp = backends.get(backend_id).xp
    args, variables = [], []
    for i, (kind, shape, payload) in enumerate(arg_spec):
        if kind == "float":
            a = symbolic.symbols(f"a{i}", shape, **dict(payload))
            variables += symbolic.flat(a)
        else:
            a = symbolic.ints(np.asarray(payload, dtype=np.int64).reshape(shape).tolist())
        args.append(a)
    out = symbolic.exprs(fn(*args, **dict(kwargs_items))).reshape(-1)
    cot = sp.symbols(f"c0:{out.size}", real=True)
    loss = sp.Add(*[c * e for c, e in zip(cot, out)])
    target = symbolic.flat(args[argnum])
    grads = [sp.diff(loss, t) for t in target]
    return sp.lambdify([*variables, *cot], grads, modules=_lambdify_modules(xp))


def sympy_lambdified(backend, fn, args, argnum, cotangent, kwargs=None, assumptions=None):
    """∂⟨c, fn⟩/∂x from SymPy's derivative of the traced code, evaluated on `backend`."""
    kwargs = kwargs or {}
    spec_items = []
    values = []
    for a in args:
        a = np.asarray(a)
        if a.dtype.kind == "f":
            spec_items.append(("float", a.shape, tuple(sorted((assumptions or {}).items()))))
            values += list(a.reshape(-1))
        else:
            spec_items.append(("int", a.shape, tuple(a.reshape(-1).tolist())))
    f = _symbolic_vjp(fn, tuple(spec_items), argnum, tuple(sorted(kwargs.items())), backend.id)
    xp = backend.xp
    nums = [backend.asarray(np.float64(v)) for v in values]
    nums += [backend.asarray(np.float64(c)) for c in np.asarray(cotangent).reshape(-1)]
    grads = f(*nums)
    flat = [float(backend.to_numpy(xp.asarray(g)) if not isinstance(g, (int, float)) else g)
            for g in grads]
    return np.asarray(flat, dtype=np.float64).reshape(np.shape(args[argnum]))


def check_agreement(backend, name, fn, args, argnum, kwargs=None, closed=None, assumptions=None,
                    *, seed=0):
    """Tier D in one call: for a random cotangent c, ∂⟨c, fn(args)⟩/∂args[argnum] from SymPy
    (traced code, lambdified to NumPy) agrees with float64 central differences; autograd
    (where the backend has it) agrees with SymPy; and so does `closed(xp, backend_args, c)`,
    the spec's own closed-form derivative, when given.

    `args` are host NumPy arrays (float arrays are differentiable inputs, integer ones are
    held fixed); `assumptions` are SymPy assumptions for the traced symbols (positive=True
    where the equation needs positive inputs).
    """
    import pytest

    from .tolerances import FINITE_DIFFERENCE, grads

    if "float64" not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no float64, in which tier D compares derivatives")
    kwargs = kwargs or {}
    out_shape = np.shape(backend.to_numpy(fn(*[to_backend(backend, a) for a in args], **kwargs)))
    cot = np.random.default_rng(seed + 99).normal(size=out_shape)
    # the references, SymPy's derivative and the central differences, are the same float64
    # evaluation on every backend (on Dask, thousands of 0-d graphs a case for SymPy's: 35 s
    # for one attention case; on JAX, a compilation per new shape): they are computed once,
    # with NumPy. On the backend run what its users call: autograd through the spec's code and
    # the spec's closed form (and tier X checks the backend's forward values against NumPy's)
    numeric = host()
    fd = central_difference(numeric, fn, args, argnum, cot, kwargs)
    sym = sympy_lambdified(numeric, fn, args, argnum, cot, kwargs, assumptions)
    np.testing.assert_allclose(sym, fd, rtol=FINITE_DIFFERENCE.rtol, atol=FINITE_DIFFERENCE.atol,
                               err_msg=f"{name}: SymPy vs central differences")
    tol = grads("float64")
    if backend.has_autograd:
        auto = autograd(backend, fn, args, argnum, cot, kwargs)
        np.testing.assert_allclose(auto, sym, rtol=tol.rtol, atol=tol.atol,
                                   err_msg=f"{name}: autograd vs SymPy")
    if closed is not None:
        got = closed(backend.xp, [to_backend(backend, a) for a in args],
                     to_backend(backend, np.asarray(cot)))
        got = np.asarray(backend.to_numpy(got), dtype=np.float64)
        np.testing.assert_allclose(got, sym, rtol=tol.rtol, atol=tol.atol,
                                   err_msg=f"{name}: closed form vs SymPy")


def random_args(*specs):
    """`make_args(seed)` for a `DerivativeCase`: host arguments drawn from a seeded generator.

    Each spec is `(kind, shape)` or, for integers, `("labels", shape, k)` (uniform in
    [0, k)). Kinds: "real" uniform(−3, 3), "logits" normal(0, 2), "positive"
    uniform(0.1, 1), "unit" uniform(0.05, 0.95), "logprob" −uniform(0.1, 3). Each argument
    has its own stream (seed + its position), so adding an argument leaves the others alone.
    """
    draws = {
        "real": lambda rng, shape: rng.uniform(-3, 3, shape),
        "logits": lambda rng, shape: rng.normal(0, 2, shape),
        "positive": lambda rng, shape: rng.uniform(0.1, 1.0, shape),
        "unit": lambda rng, shape: rng.uniform(0.05, 0.95, shape),
        "logprob": lambda rng, shape: -rng.uniform(0.1, 3.0, shape),
    }
    for s in specs:
        if s[0] != "labels" and s[0] not in draws:
            raise ValueError(f"unknown argument kind {s[0]!r}; kinds: labels, {', '.join(draws)}")

    def make_args(seed: int) -> list:
        out = []
        for i, s in enumerate(specs):
            rng = np.random.default_rng(seed * 1000 + i)
            if s[0] == "labels":
                out.append(rng.integers(0, s[2], s[1]))
            else:
                out.append(np.asarray(draws[s[0]](rng, s[1]), dtype=np.float64))
        return out

    return make_args


def like(x, host):
    """Host values as an array of x's namespace: exact numbers on the SymPy trace, x's dtype
    and device on a backend (so a closed form or a held argument meets x where it lives)."""
    import array_api_compat

    xp = array_api_compat.array_namespace(x)
    values = np.asarray(host).tolist()
    if getattr(x, "device", None) == "sympy":
        return xp.asarray(values, dtype=xp.float64)
    return xp.asarray(values, dtype=x.dtype, device=array_api_compat.device(x))


def held(fn, fixed, **kwargs):
    """`fn` with the arguments at the positions of `fixed` (position → host array) held at
    those values and not differentiated; the returned function takes the other arguments, in
    order. Held values are made with `like` from the first free argument, so the traced code
    takes the numeric code's branches (a hard target y = 0 takes the 0·log branch). A
    `DerivativeCase` whose closed form needs the held values is filed once per seed, each
    with its own `held` function (SymPy's derivative is cached per function)."""
    fixed = dict(fixed)

    def f(*free):
        it = iter(free)
        return fn(*[like(free[0], fixed[i]) if i in fixed else next(it)
                    for i in range(len(free) + len(fixed))], **kwargs)

    f.__name__ = f"{getattr(fn, '__name__', 'fn')}_held"
    return f
