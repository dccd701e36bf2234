"""Regions of piecewise-linear networks: domains, sampled (grid) counts."""
from .domain import Domain as Domain, box as box, plane as plane, segment as segment
from .grid import GridCount as GridCount, count_grid as count_grid, grid_points as grid_points
from .cells import CellComplex as CellComplex
from .exact import enumerate_cells as enumerate_cells
