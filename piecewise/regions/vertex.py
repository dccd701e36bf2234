"""The vertex engine's driver on a finite domain of 1 to 6 dimensions: it checks the arguments, picks the
geometry backend (:mod:`.polygons` for 1-D and 2-D, :mod:`.polytopes` beyond), runs the stage-by-stage
engine (:mod:`._engine`) or, for a graph or a count too large for the budget, the operator engine
(:mod:`.graph_engine`), and builds the complex (:mod:`.cells`). The public entry point, which also sends
unbounded and high-dimensional boxes to the region-graph search, is :func:`piecewise.regions.exact.enumerate_cells`.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from ..errors import PiecewiseError
from . import _engine, graph_engine
from .cells import CellComplex, prepare_exact
from .pieces import state_bits
from .polygons import _Poly2D, _Seg1D


def enumerate_finite(net, params, domain, *, progress: bool | None = None, max_cells: int | None = None,
                     threads: int | None = None, keep_cells: bool = True, memory_budget: float | None = None,
                     measure: bool | None = None):
    """:func:`~piecewise.regions.exact.enumerate_cells` on a segment, a 2-D box or plane, or a box of 3 to 6
    inputs (same arguments and results)."""
    from ..staged import StagedNet

    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1):
        raise PiecewiseError(f"threads must be a positive integer, got {threads!r}")
    if max_cells is not None and (isinstance(max_cells, bool) or not isinstance(max_cells, (int, np.integer))
                                  or max_cells < 1):
        raise PiecewiseError(f"max_cells must be a positive integer, got {max_cells!r}")
    budget = graph_engine.check_budget(memory_budget)
    limit = max_cells if max_cells is not None else (2_000_000 if keep_cells else 2**62)
    is_graph = params is None and hasattr(net, "to_staged") and not isinstance(net, StagedNet)
    if is_graph:
        prepare_exact(net, params, domain, compose=False)
        return graph_engine.enumerate_graph(net, domain, memory_budget=budget, keep_cells=keep_cells,
                                            progress=progress, threads=threads, max_cells=limit, measure=measure)
    if not keep_cells and params is not None:  # an MLP count: depth first if its cells would not fit the budget
        staged, P = prepare_exact(net, params, domain)
        lower, est = _engine.estimate_cells(staged, domain)
        backend = Polytopes_if(domain.dim)
        per_cell = backend.bytes_per_cell(domain.dim) + 8 * (domain.dim + 1) * (max(staged.widths) + staged.n_out)
        if est * per_cell * ESTIMATE_SLACK > budget:
            from ..graph import from_mlp

            return graph_engine.enumerate_graph(from_mlp(net, P), domain, memory_budget=budget, keep_cells=False,
                                                progress=progress, threads=threads, max_cells=limit,
                                                measure=measure, net=net)
    d = domain.dim
    if d >= 3:
        from .polytopes import Polytopes

        cx = _enumerate(net, params, domain, Polytopes, "polytope", progress, limit, threads)
    else:
        cx = _enumerate(net, params, domain, _Poly2D if d == 2 else _Seg1D, "polygon" if d == 2 else "interval",
                        progress, limit, threads)
    if keep_cells:
        return cx
    keep_measure = (d <= 2) if measure is None else bool(measure)  # volumes of n-D cells only when asked
    return graph_engine.RegionCount(cx.net, domain, cx.patterns, cx.points_c,
                                    cx.measure if keep_measure else None, cx.seconds,
                                    {"algorithm": "vertex engine (breadth first)"})


# The grid estimate of a domain's cells (_engine.estimate_cells) falls short of the exact count: 2.6-15.6x on
# He-init nets of 2-4 inputs, 41x on a 3-32x8-1 net (32,653 estimated, 1,340,988 cells). A count keeps its cells
# breadth first only when even this many times the estimate fits the memory budget; beyond, depth first.
ESTIMATE_SLACK = 64


def Polytopes_if(d):
    """The backend of a d-dimensional domain."""
    if d >= 3:
        from .polytopes import Polytopes

        return Polytopes
    return _Poly2D if d == 2 else _Seg1D


class _NoBar:
    """What the engine calls on a bar, doing nothing (counts with no bar shown)."""

    def __init__(self, *args, **kwargs):
        pass

    def update(self, n=1):
        pass

    def set_postfix_str(self, s="", refresh=True):
        pass

    def close(self):
        pass


def _enumerate(net, params, domain, backend, kind, progress, max_cells, threads=None):
    t0 = time.perf_counter()
    staged, P = prepare_exact(net, params, domain)
    d = domain.dim

    n_units = sum(st.width for st in staged.stages)
    big = n_units >= 64
    show = progress if progress is not None else (big and sys.stderr.isatty())
    if big:  # a cheap grid lower bound first, to refuse early (on a terminal or not)
        lower, _ = _engine.estimate_cells(staged, domain)
        bpc = backend.bytes_per_cell(d)
        if lower > max_cells:
            raise PiecewiseError(
                f"this domain has at least {lower:,} activation regions (found on a grid; at least "
                f"{lower * bpc / 1e9:.1f} GB), more than max_cells={max_cells:,}: use the grid method "
                f"(--method grid), a smaller box, or raise max_cells")
    # No predicted total of cells: the grid's extrapolation (_engine.estimate_cells) fell 2.6x to 15x short of
    # the exact counts of He-init nets (a grid of 8,192 points cannot see more cells than it has points). The
    # bar counts the units done (the one total known in advance), and its postfix shows the cells reached after
    # each stage (_engine._guard); no ETA: a unit of a later stage splits more cells than one of an earlier one.
    if show:
        from tqdm.auto import tqdm
    else:
        tqdm = _NoBar  # no bar: tqdm is not even imported (a cold count's start)
    bar = tqdm(total=n_units, desc=f"exact cells ({d}-D, {len(staged.stages)} stages)", unit="unit", leave=False,
               disable=not show, bar_format="{desc}: {n:.0f}/{total} units |{bar}| [{elapsed}]{postfix}")
    try:
        geo, words, J, c, DJ, events = _engine.run(staged, domain, backend, max_cells=max_cells, bar=bar,
                                                   threads=threads)
    finally:
        bar.close()
    layout = (max([state_bits(st) for st in staged.stages] or [1]), [st.width for st in staged.stages])
    return CellComplex.build(net if params is not None else staged, domain, geo, words, J, c, DJ, events,
                             time.perf_counter() - t0, P, kind, staged=staged, layout=layout)
