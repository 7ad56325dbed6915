r"""Layers and networks (§5 of EQUATIONS.md)."""

from __future__ import annotations

__all__: list[str] = []
