"""Tier D, generic: every derivative case of conformance/records/ (see derivatives.py).

For each case, the SymPy derivative of the spec's traced code (lambdified into the backend's
namespace), float64 central differences on the backend, autograd where the backend has it,
and the spec's closed-form gradient where it has one all agree.
"""

from __future__ import annotations

import pytest

import spec
from conformance import derivatives, records


def _params():
    out = []
    for name, rec in records.all_records().items():
        d_keys = tuple(i.key for i in spec.catalogue()[name].identities_in("D"))
        for case in rec.derivatives:
            keys = case.identities if case.identities is not None else d_keys
            for seed in case.seeds:
                out.append(pytest.param(case, seed, id=f"{case.id}-seed{seed}",
                                        marks=pytest.mark.spec(name, tier="D", identities=keys)))
    return out


@pytest.mark.parametrize(("case", "seed"), _params())
def test_derivatives_agree(backend, case, seed):
    derivatives.check_agreement(backend, case.id, case.fn, case.make_args(seed), case.argnum,
                                dict(case.kwargs), case.closed, dict(case.assumptions),
                                seed=seed)
