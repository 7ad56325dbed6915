r"""Tier R oracle for §14, scaling: the Chinchilla loss in exact arithmetic.

The other equations of the chapter are products of counts (6ND, 2mnp, 2Lsd·bytes, the ZeRO
partitions): they are checked in tier P against the figures of the sources (exact with Python
ints), not against an oracle. Nothing from ``spec`` is imported; inputs and the constants E, A,
B, α, β are taken at their exact values (the Python floats as doubles) and only the final value
is rounded, correctly, to float64.

``ORACLES`` maps each equation to its oracle, ``FLOORS`` to the scale of its ulp measure; the
budgets live with the records (``conformance/records/scaling.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import mpmath
import numpy as np

from .mp import DPS, f64, mp


def chinchilla_loss(n_params, n_tokens, /, *, E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28):
    n, d = np.broadcast_arrays(np.asarray(n_params, dtype=np.float64),
                               np.asarray(n_tokens, dtype=np.float64))
    out = np.empty(n.shape, dtype=np.float64)
    with mpmath.workdps(DPS):
        e, a, b, al, be = (mp(c) for c in (E, A, B, alpha, beta))
        for idx in np.ndindex(n.shape):
            out[idx] = f64(e + a / mp(n[idx]) ** al + b / mp(d[idx]) ** be)
    return out


ORACLES: dict[str, Callable] = {"chinchilla_loss": chinchilla_loss}

#: E > 0 plus two positive terms: no cancellation, each value judged relative to itself.
FLOORS: dict[str, Callable] = {"chinchilla_loss": lambda reference, args, kwargs: 0.0}
