"""Tier P, generic: every property of conformance/properties/, on the spec's own equations.

A property is a check of an implementation (see conformance/properties/__init__.py); here the
implementation is `spec.<equation>`, looked up at call time so that with SPEC_COMPILE=1 it is
the backend's compiled equation. Hypothesis draws the inputs on the host; the explicit
examples each property keeps (counter-examples once found) run in every profile.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import spec
from conformance import properties, settings
from conformance.properties import Trial


def _has_example(p, dtype: str) -> bool:
    return any(e.dtype in (None, dtype) for e in p.examples)


def _params(*, draws: bool | None = None, examples: bool = False):
    out = []
    for p in properties.all_properties():
        if draws is not None and p.draws != draws:
            continue
        for dtype in settings.ALL_DTYPES:
            if p.applies_to(dtype) and (not examples or _has_example(p, dtype)):
                out.append(pytest.param(
                    (p, dtype), id=f"{p.equation}-{p.name}-{dtype}",
                    marks=pytest.mark.spec(p.equation, tier="P", identities=p.identities)))
    return out


def _dtype_on(backend, dtype):
    if dtype not in backend.float_dtypes:
        pytest.skip(f"backend {backend.id} has no {dtype}")


@pytest.mark.parametrize("case", _params(draws=True))
@given(data=st.data())
def test_property(backend, case, data):
    prop, dtype = case
    _dtype_on(backend, dtype)
    prop.check(getattr(spec, prop.equation), Trial(backend, dtype, data.draw, prop.equation))


@pytest.mark.parametrize("case", _params(draws=False))
def test_fixed_property(backend, case):
    prop, dtype = case
    _dtype_on(backend, dtype)
    prop.check(getattr(spec, prop.equation), Trial(backend, dtype, None, prop.equation))


@pytest.mark.parametrize("case", _params(examples=True))
def test_property_examples(backend, case):
    """The explicit examples of a property: inputs that once broke it, tried on every run."""
    prop, dtype = case
    _dtype_on(backend, dtype)
    for example in prop.examples:
        if example.dtype in (None, dtype):
            prop.check(getattr(spec, prop.equation),
                       Trial.replaying(backend, dtype, example, prop.equation))
