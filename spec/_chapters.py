"""The chapter modules, in catalogue order; importing them fills the registry."""

from . import activations, layers, linalg, losses, optim, probability

MODULES = (linalg, probability, activations, losses, layers, optim)
