"""The chapter modules, in catalogue order; importing them fills the registry."""

from . import (
    activations,
    alignment,
    attention,
    decoding,
    diffusion,
    embeddings,
    layers,
    linalg,
    losses,
    normalization,
    optim,
    probability,
    scaling,
    transformer,
)

MODULES = (linalg, probability, activations, losses, layers, optim, normalization, embeddings,
           attention, transformer, decoding, alignment, diffusion, scaling)
