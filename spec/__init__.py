"""AI Math Spec: the equations of modern AI, written once against the Array API standard.

Every public equation is a short, pure function whose namespace comes from its inputs, so the
same code runs on NumPy, CuPy, PyTorch, JAX, Dask and array-api-strict::

    >>> import numpy as np, spec
    >>> spec.softmax(np.asarray([0.0, 0.0]))
    array([0.5, 0.5])

`spec.catalogue()` returns the registry record of every equation: formula, sources, errata,
identities and the inputs the conformance suite uses.
"""

from ._registry import CHAPTERS, SEEDS, TIERS, Equation, catalogue
from ._validate import value_checks
from .losses import softmax_cross_entropy, softmax_cross_entropy_grad
from .probability import (
    bayes_posterior,
    cross_entropy,
    entropy,
    kl_divergence,
    log_softmax,
    logsumexp,
    normal_pdf,
    perplexity,
    softmax,
    softmax_jacobian,
    softmax_vjp,
)

__version__ = "0.1.0"

__all__ = [
    "CHAPTERS",
    "SEEDS",
    "TIERS",
    "Equation",
    "bayes_posterior",
    "catalogue",
    "cross_entropy",
    "entropy",
    "kl_divergence",
    "log_softmax",
    "logsumexp",
    "normal_pdf",
    "perplexity",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_grad",
    "softmax_jacobian",
    "softmax_vjp",
    "value_checks",
]
