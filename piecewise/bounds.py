"""Closed-form region counts and bounds (exact Python integers).

Sources are given per function; see also ``shared/SCIENCE.md``.
"""
from __future__ import annotations

from math import comb


def zaslavsky(n_hyperplanes: int, dim: int) -> int:
    """Regions of R^dim cut by ``n_hyperplanes`` affine hyperplanes in general position (Zaslavsky 1975):
    ``sum_{j=0}^{dim} C(n, j)``. This is the maximum for a one-hidden-layer ReLU net with n units."""
    if n_hyperplanes < 0 or dim < 0:
        raise ValueError("n_hyperplanes and dim must be >= 0")
    return sum(comb(n_hyperplanes, j) for j in range(dim + 1))
