"""Regions of piecewise-linear networks: domains, sampled (grid) counts."""
from .._lazy import module_getattr as _module_getattr

# imported on first use (PEP 562): the exact path needs no JAX, the grid's does
_EXPORTS = {
    "Domain": ".domain", "box": ".domain", "plane": ".domain", "segment": ".domain",
    "GridCount": ".grid", "count_grid": ".grid", "grid_points": ".grid",
    "CellComplex": ".cells",
    "enumerate_cells": ".exact",
    "space": ".search", "count_space": ".search", "search": ".search", "RegionGraph": ".search",
}
__all__ = sorted(_EXPORTS)
__getattr__ = _module_getattr(__name__, _EXPORTS)


def __dir__():
    return sorted(set(globals()) | set(__all__))
