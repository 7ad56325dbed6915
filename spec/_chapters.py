"""Imports every chapter module so that the registry is complete (used by `catalogue()`)."""

from . import losses, probability  # noqa: F401
