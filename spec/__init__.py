"""AI Math Spec: the equations of modern AI, written once against the Array API standard.

Every public equation is a short, pure function whose namespace comes from its inputs, so the
same code runs on NumPy, CuPy, PyTorch, JAX, Dask and array-api-strict::

    >>> import numpy as np, spec
    >>> spec.softmax(np.asarray([0.0, 0.0]))
    array([0.5, 0.5])

`spec.catalogue()` returns the registry record of every equation: formula, sources, errata,
identities and the inputs the conformance suite uses.
"""

from . import _chapters
from ._registry import CHAPTERS, SEEDS, TIERS, Equation, catalogue
from ._validate import value_checks

__version__ = "0.1.0"

_EQUATIONS: list[str] = []
for _module in _chapters.MODULES:
    for _name in _module.__all__:
        globals()[_name] = getattr(_module, _name)
        _EQUATIONS.append(_name)

__all__ = ["CHAPTERS", "SEEDS", "TIERS", "Equation", "catalogue", "value_checks",
           *sorted(_EQUATIONS)]
