"""`conformance.check(candidate, "softmax", backend="torch", dtypes=(...))`: the report card of
any implementation of an equation (a user's kernel, a framework's own).

    >>> import conformance.check            # or: from conformance import check
    >>> card = conformance.check(my_softmax, "softmax", backend="torch",
    ...                          dtypes=("float32", "bfloat16"))
    >>> card.passed
    True
    >>> print(card.to_markdown())

This module is callable (it *is* the `check` function, so `conformance.check(...)` reads as
the issue writes it); `from conformance.check import check` works as well. The machinery is in
`conformance/checker/` (sections, card, the declared inputs); the command line is
``python -m conformance --candidate softmax=package.module:function [--backend ID]``.
"""

from __future__ import annotations

import sys
import types

from .checker import PROFILES, SECTIONS, Card, check, load_candidate
from .checker.card import AccuracyResult, EdgeResult, GradientResult, PropertyResult, VariantResult

__all__ = ["PROFILES", "SECTIONS", "AccuracyResult", "Card", "EdgeResult", "GradientResult",
           "PropertyResult", "VariantResult", "check", "load_candidate"]


class _CallableModule(types.ModuleType):
    """The module, callable as `check` itself."""

    def __call__(self, *args, **kwargs) -> Card:
        return check(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
