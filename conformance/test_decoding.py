"""§11 Language modelling and decoding: tier S, the spec's own code run on SymPy expressions
(once, independent of the backend).

Tier P is in conformance/properties/decoding.py (run by test_properties.py; the errata of 002
§10.2.3 each have a check there that the quoted form fails), tier D's case in
conformance/records/decoding.py (run by test_derivatives.py); X, E and R are driven by the
records in test_tiers.py.
"""

from __future__ import annotations

import pytest
import sympy as sp

import spec
from conformance import symbolic


# ============================================================================ tier S
@pytest.mark.spec("temperature_scale", tier="S", identities=("is_division", "unit_temperature"))
@pytest.mark.parametrize("temperature", [0.5, 2.0, 0.7])
def test_temperature_scale_is_division_symbolic(temperature):
    z = symbolic.symbols("z", (3,))
    out = symbolic.exprs(spec.temperature_scale(z, temperature=temperature))
    symbolic.assert_equal(out, [zi / sp.nsimplify(temperature) for zi in symbolic.flat(z)],
                          "z / T")
    same = symbolic.exprs(spec.temperature_scale(z, temperature=1.0))
    symbolic.assert_equal(same, symbolic.flat(z), "T = 1 is the identity")
