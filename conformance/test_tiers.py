"""Tiers X, E and R for every registered equation, driven by its registry record.

X: the record's sample and reference inputs give the same outputs on the backend under test
as on NumPy (on NumPy itself: as on array-api-strict), and the inputs are left untouched; with
SPEC_COMPILE=1 the backend runs the equation compiled, the reference eagerly.
E: every declared bad input raises the declared exception with the declared message, and
arrays from two libraries are refused. R: the outputs are within the equation's ulp budget
of the mpmath oracle.
"""

from __future__ import annotations

import numpy as np
import pytest

import backends
import spec
from conformance import oracles, records, settings
from conformance.helpers import (
    assert_close,
    build,
    host,
    kwargs_on,
    limit_reason,
    tier_cases,
    to_backend,
)
from conformance.precision import as_float32, round_to

CATALOGUE = spec.catalogue()


def _proven(name: str, tier: str) -> tuple[str, ...]:
    """The identities of `tier` a generic test of `name` proves. Tier X: all of them (each
    says the backends agree). Tier R: `accuracy` (every input measures it) and each identity
    an input of the record names in `proves` (the ±1e4 logits prove `extreme_logits`)."""
    keys = [i.key for i in CATALOGUE[name].identities_in(tier)]
    if tier != "R":
        return tuple(keys)
    named = {key for dtype in ("float32", "float64") for case in tier_cases(name, dtype)
             for key in case.proves}
    return tuple(k for k in keys if k == "accuracy" or k in named)


def _params(tier: str):
    return [pytest.param(name, id=name, marks=pytest.mark.spec(
        name, tier=tier, identities=_proven(name, tier) if tier in "RX" else ()))
            for name, rec in CATALOGUE.items() if tier in rec.tiers]


def _reference_backend(backend):
    if backend.id != "numpy":
        return host()
    try:
        return backends.get("array_api_strict")
    except backends.BackendUnavailable as exc:
        pytest.skip(f"tier X on numpy compares with array_api_strict: {exc}")


def _leaves(out) -> list:
    """The arrays (and plain numbers/strings) of a result, in order: equations may return a
    tuple (an update and its new state), a list of pairs (gradients), or a mapping."""
    if isinstance(out, dict):
        return [x for key in sorted(out) for x in _leaves(out[key])]
    if isinstance(out, (list, tuple)):
        return [x for item in out for x in _leaves(item)]
    return [out]


def _is_number(x) -> bool:
    """A plain Python result (a count, a label), as opposed to an array or a NumPy scalar."""
    return (isinstance(x, (bool, int, float, str)) and not isinstance(x, np.generic)) or x is None


def _excuse(request, excused: list[str], ran: int) -> None:
    """Inputs a documented limit excuses are left out one by one: the test passes on the rest
    (the report notes what was left out), and is skipped only if no input was left to run."""
    if not excused:
        return
    if not ran:
        pytest.skip("; ".join(excused))
    request.node.user_properties.append(("spec_excused", tuple(excused)))


@pytest.mark.parametrize("name", _params("X"))
def test_cross_backend(backend, dtype, name, request):
    rec = CATALOGUE[name]
    reference = _reference_backend(backend)
    excused, ran = [], 0
    for case in tier_cases(name, dtype):
        if reason := limit_reason(rec, backend, "X", case):
            excused.append(f"{case.note}: {reason}")
            continue
        ran += 1
        host_args = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a
                     for a in case.args]
        args = [to_backend(backend, a) for a in case.args]
        # spec.<name>, not rec.func: with SPEC_COMPILE=1 it is the backend's compiled equation
        got = getattr(spec, name)(*args, **kwargs_on(backend, case.kwargs))
        want = rec.func(*[to_backend(reference, a) for a in case.args],
                        **kwargs_on(reference, case.kwargs))
        got_leaves, want_leaves = _leaves(got), _leaves(want)
        assert len(got_leaves) == len(want_leaves), f"{name} [{case.note}] output structure"
        for g, w in zip(got_leaves, want_leaves):
            if _is_number(g):
                assert g == w, f"{name} [{case.note}]: {g!r} != {w!r}"
                continue
            assert_close(backend, g, reference.to_numpy(w), dtype, what=f"{name} [{case.note}]")
            assert tuple(g.shape) == tuple(w.shape), f"{name} [{case.note}] shape"
        for original, passed in zip(host_args, args):
            if isinstance(original, np.ndarray):
                np.testing.assert_array_equal(backend.to_numpy(passed), original,
                                              err_msg=f"{name} modified its input")
    _excuse(request, excused, ran)


@pytest.mark.parametrize("name", _params("E"))
def test_error_inputs(backend, dtype, name):
    rec = CATALOGUE[name]
    cases = build(records.get(name).errors, dtype)
    assert len(cases) >= 3, f"{name} declares only {len(cases)} error inputs"
    for case in cases:
        args = [to_backend(backend, a) for a in case.args]
        with pytest.raises(case.exc, match=case.match) as info:
            rec.func(*args, **kwargs_on(backend, case.kwargs))
        assert type(info.value) is case.exc, f"{name} [{case.note}] raised {info.value!r}"


def _array_arity(rec, dtype):
    sample = build(records.get(rec.name).samples, dtype)[0]
    return sample, [i for i, a in enumerate(sample.args) if isinstance(a, np.ndarray)]


def _multi_array_params():
    return [p for p in _params("E") if len(_array_arity(CATALOGUE[p.values[0]], "float64")[1]) > 1]


@pytest.mark.parametrize("name", _multi_array_params())
def test_mixed_libraries_refused(backend, name):
    """Arrays from two libraries are a TypeError (for equations taking two or more arrays)."""
    rec = CATALOGUE[name]
    sample, positions = _array_arity(rec, "float64")
    if backend.is_symbolic:
        pytest.skip("the symbolic backend is not a numeric library to mix")
    other = host() if backend.id != "numpy" else _reference_backend(backend)
    args = [to_backend(backend, a) for a in sample.args]
    args[positions[-1]] = to_backend(other, sample.args[positions[-1]])
    with pytest.raises(TypeError, match="arrays from two libraries"):
        rec.func(*args, **sample.kwargs)


@pytest.mark.parametrize("name", _params("R"))
def test_reference_accuracy(backend, dtype, name, request):
    rec = CATALOGUE[name]
    oracle = oracles.ORACLES[name]
    budget = records.ulp_budget(name, dtype)
    excused, ran = [], 0
    for case in tier_cases(name, dtype):
        if reason := limit_reason(rec, backend, "R", case):
            excused.append(f"{case.note}: {reason}")
            continue
        ran += 1
        got = backend.to_numpy(rec.func(*[to_backend(backend, a) for a in case.args],
                                        **kwargs_on(backend, case.kwargs)))
        want = oracle(*case.args, **case.kwargs)
        floor = oracles.scale_floor(name, want, case.args, case.kwargs)
        err = oracles.ulp_error(got, want, np.dtype(dtype), floor=floor)
        worst = float(np.max(err)) if err.size else 0.0
        assert worst <= budget, (
            f"{name} [{case.note}] on {backend.id} {dtype}: {worst:.1f} ulp > budget {budget}"
            f"\n got  {got!r}\n want {want!r}"
        )
    _excuse(request, excused, ran)



# ------------------------------------------------------------------ low precision (X and R)
def _low_params(tier: str):
    """(equation, dtype) for every equation of `tier` that declares float16 or bfloat16."""
    return [pytest.param(name, dtype, id=f"{name}-{dtype}", marks=pytest.mark.spec(
        name, tier=tier, identities=_proven(name, tier)))
        for name, rec in CATALOGUE.items() if tier in rec.tiers
        for dtype in settings.LOW_DTYPES if dtype in rec.dtypes]


def _has_low(backend, dtype):
    if dtype not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no {dtype}")


if _low_params("X"):
    @pytest.mark.parametrize(("name", "low"), _low_params("X"))
    def test_cross_backend_low_precision(backend, name, low, request):
        """float16 and bfloat16: the backend's result equals the host's float32 result on the
        same inputs, rounded once to the dtype (the dtype policy), to one ulp of the dtype."""
        dtype = low  # (not `dtype`, the fixture the plugin gives float32 and float64)
        _has_low(backend, dtype)
        rec = CATALOGUE[name]
        excused, ran = [], 0
        for case in tier_cases(name, dtype):
            if reason := limit_reason(rec, backend, "X", case):
                excused.append(f"{case.note}: {reason}")
                continue
            ran += 1
            args = [to_backend(backend, a) for a in case.args]
            got = getattr(spec, name)(*args, **kwargs_on(backend, case.kwargs))
            want = rec.func(*as_float32(list(case.args)), **as_float32(case.kwargs))
            got_leaves, want_leaves = _leaves(got), _leaves(want)
            assert len(got_leaves) == len(want_leaves), f"{name} [{case.note}] output structure"
            for g, w in zip(got_leaves, want_leaves):
                if _is_number(g):
                    assert g == w, f"{name} [{case.note}]: {g!r} != {w!r}"
                    continue
                host_g = backend.to_numpy(g)
                if np.asarray(w).dtype.kind == "f":
                    assert host_g.dtype.name == dtype, (
                        f"{name} [{case.note}] returned {host_g.dtype} for {dtype} inputs")
                    w = round_to(w, dtype)
                assert_close(backend, host_g, w, dtype, what=f"{name} [{case.note}]")
                assert tuple(g.shape) == tuple(np.shape(w)), f"{name} [{case.note}] shape"
            for original, passed in zip(case.args, args):
                if isinstance(original, np.ndarray):
                    np.testing.assert_array_equal(backend.to_numpy(passed), original,
                                                  err_msg=f"{name} modified its input")
        _excuse(request, excused, ran)


if _low_params("R"):
    @pytest.mark.parametrize(("name", "low"), _low_params("R"))
    def test_reference_accuracy_low_precision(backend, name, low, request):
        """float16 and bfloat16 against mpmath at the (exact) low-precision inputs, in ulps of
        the dtype measured from the correctly rounded value (budgets: records.ulp_budget)."""
        dtype = low
        _has_low(backend, dtype)
        rec = CATALOGUE[name]
        budget = records.ulp_budget(name, dtype)
        excused, ran = [], 0
        for case in tier_cases(name, dtype):
            if reason := limit_reason(rec, backend, "R", case):
                excused.append(f"{case.note}: {reason}")
                continue
            ran += 1
            got = backend.to_numpy(rec.func(*[to_backend(backend, a) for a in case.args],
                                            **kwargs_on(backend, case.kwargs)))
            exact = as_float32(list(case.args)), as_float32(case.kwargs)
            want = oracles.ORACLES[name](*exact[0], **exact[1])
            floor = oracles.scale_floor(name, want, *exact)
            err = oracles.ulp_error(got, round_to(want, dtype), dtype, floor=floor)
            worst = float(np.max(err)) if err.size else 0.0
            assert worst <= budget, (
                f"{name} [{case.note}] on {backend.id} {dtype}: {worst:.1f} ulp from the "
                f"correctly rounded value > budget {budget}\n got  {got!r}\n want {want!r}")
        _excuse(request, excused, ran)
