"""Exact enumeration of activation regions: the public entry point.

:func:`enumerate_cells` takes an MLP (``net, params``), any :class:`~piecewise.staged.StagedNet`
(``staged, None``) or a :class:`~piecewise.graph.Graph`, and a domain: a segment, a 2-D box, a 2-D plane slice
through any input dimension, a box of 3 or more inputs, or the whole input space. The layers below it, each
importing only those under it:

* :mod:`.vertex` -- the driver on finite domains of 1 to 6 dimensions (arguments, backend, budget);
* :mod:`.graph_engine` -- graphs: affine nodes stay operators on batched affine maps (:mod:`.opmaps`,
  double-double :mod:`.ddmaps`, Euclidean error bounds :mod:`.l2bounds`), depth first within a memory budget;
* :mod:`._engine` -- the stage-by-stage engine and its rules (the one tolerance, whole-cell ties), the MLP
  stage maps, and the compiled kernel's NumPy twin (:mod:`._ckernel`, ``_kernel.c``);
* the geometry backends: :mod:`.polygons` (intervals, convex polygons) and :mod:`.polytopes` (n-D);
* :mod:`.cells` -- the complex (regions, adjacency, linear regions, export);
* :mod:`.pieces`, :mod:`._shared`, :mod:`piecewise.numerics` -- the per-activation rules and the constants
  (written once; the C kernel is compiled with the same values).

Boxes of more than 6 inputs and unbounded boxes go to the region-graph search (:mod:`.search`).
"""
from __future__ import annotations

from .domain import Domain


def enumerate_cells(net, params, domain: Domain, *, progress: bool | None = None,
                    max_cells: int | None = None, threads: int | None = None, keep_cells: bool = True,
                    memory_budget: float | None = None, measure: bool | None = None):
    """Exact activation regions of a piecewise-linear network on ``domain`` (float64).

    Args:
      net, params: an :class:`~piecewise.nets.MLP` and its params (relu, leaky_relu, abs, hardtanh, maxout),
        a :class:`~piecewise.graph.Graph` (ONNX, PyTorch, Flax, Equinox; ``params=None``): its affine nodes
        stay operators on the cells' maps (:mod:`.graph_engine`), or a :class:`~piecewise.staged.StagedNet`
        (``params=None``).
      domain: :func:`~piecewise.regions.segment`, a 2-D :func:`~piecewise.regions.box` of a 2-input net,
        a :func:`~piecewise.regions.plane` slice of any input dimension, a box of 3 to 6 inputs (the
        polytope backend of :mod:`~piecewise.regions.exact_nd`), a box of more inputs (the region-graph search
        of :mod:`~piecewise.regions.search`), or a box with infinite sides, :func:`~piecewise.regions.space`
        (the whole input space by default: :func:`~piecewise.regions.search.count_space`).
      progress: a progress bar (None: only for larger nets on a terminal).
      max_cells: refuse (PiecewiseError) past this many cells (default 2,000,000 when the cells are kept;
        no limit for a count, ``keep_cells=False``).
      threads: worker threads of the engine (default: the cores this process may run on,
        :func:`piecewise.regions.parallel.default_threads`; a Dask tile task uses 1: each task has one core).
      keep_cells: False: a count that keeps, per cell, only its pattern, one point inside it and its measure
        (a :class:`~piecewise.regions.graph_engine.RegionCount`); the search then runs depth first in chunks
        within ``memory_budget`` wherever the cells would not fit it (millions of cells).
      memory_budget: bytes for the cells in flight (default
        :data:`~piecewise.regions.graph_engine.DEFAULT_BUDGET`, 2 GiB): graphs and counts.
      measure: whether a count computes the cells' measures (default: on 1-D and 2-D domains; the volume of
        an n-D cell costs a convex hull, 165 s for 1.3 million 3-D cells: pass True, as ``--cells`` does).
    Returns:
      :class:`~piecewise.regions.cells.CellComplex` (the same type in every dimension), or a RegionCount; for
      unbounded or high-dimensional boxes a :class:`~piecewise.regions.search.RegionGraph` or
      :class:`~piecewise.regions.search.BoxedSpace`.
      Patterns of an MLP are packed as :func:`piecewise.patterns.pack_states` packs them; of a graph or
      StagedNet, stage after stage in the same layout (the state of a max unit is the index of its largest
      piece, lowest on ties).
    """
    from .search import SpaceBox, count_space, search
    from .vertex import enumerate_finite

    if isinstance(domain, SpaceBox):  # sides at infinity (the whole input space): the search or a proven box
        return count_space(net, params, domain, progress=progress)
    if domain.kind == "box" and domain.dim > 6:  # beyond the polytope backend: the region-graph search
        return search(net, params, domain, progress=progress)
    return enumerate_finite(net, params, domain, progress=progress, max_cells=max_cells, threads=threads,
                            keep_cells=keep_cells, memory_budget=memory_budget, measure=measure)


def enumerate_cells_nd(net, params, domain, *, progress: bool | None = None, max_cells: int = 2_000_000):
    """:func:`enumerate_cells` with the polytope backend on any domain (also 1-D and 2-D; the tests use it as
    a second, independent geometry on 2-D boxes)."""
    from .polytopes import Polytopes
    from .vertex import _enumerate

    return _enumerate(net, params, domain, Polytopes, "polytope", progress, max_cells)
