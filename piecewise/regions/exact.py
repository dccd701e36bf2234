"""Exact enumeration of activation regions: the public entry point, and the 1-D / 2-D polygon backend.

:func:`enumerate_cells` takes an MLP (``net, params``) or any :class:`~piecewise.staged.StagedNet`
(``staged, None``) and a domain: a segment, a 2-D box, a 2-D plane slice through any input dimension, or a
box of 3 or more inputs. The stage-by-stage driver and its rules (the one tolerance, whole-cell ties) are in
:mod:`._engine`; this module holds the backend for 1-D and 2-D domains, where cells are intervals and convex
polygons in ``u`` (counter-clockwise vertices, padded arrays ``V (C, K, 2)`` with counts ``n``), split by
vectorised clipping of all crossed cells at once. Each polygon edge ``k`` (vertex k to k+1) carries the
label of the split event that created it (:mod:`._engine`); adjacency across edges is found by sweeping each
label's edges along their line (:func:`adjacency_2d`). Boxes of 3 or more inputs go to the polytope backend
of :mod:`.exact_nd`.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from ..errors import PiecewiseError
from ..numerics import residual_bound
from . import _engine
from .cells import CellComplex, prepare_exact
from .domain import Domain

NOLAB = np.int32(-(2**30))  # padding of edge labels


def ring_next(n, K):
    """Index of the next vertex of each polygon slot, cyclically: n (B,) counts -> (B, K). The one place the
    polygon's next-vertex rule is written."""
    k = np.arange(K)
    return np.where(k[None, :] + 1 < n[:, None], k[None, :] + 1, 0)


def polygon_area(V, n):
    """Signed areas (counter-clockwise > 0) of padded polygons V (C, K, 2), n (C,)."""
    Vn = np.take_along_axis(V, ring_next(n, V.shape[1])[..., None], 1)
    valid = np.arange(V.shape[1])[None, :] < n[:, None]
    return 0.5 * np.sum(np.where(valid, V[..., 0] * Vn[..., 1] - Vn[..., 0] * V[..., 1], 0.0), 1)


class _Poly2D:
    """Backend: convex polygons. geo = [V (B, K, 2), n (B,), L (B, K) int32 edge labels, D (B, K) vertex error
    bounds (max-norm, :mod:`piecewise.numerics`)]."""

    KAXIS = (True, False, True, True)
    PAD = (0.0, 0, NOLAB, 0.0)
    KERNEL = "polygon"  # elementwise stages run in the compiled kernel when it is built (_ckernel)

    @staticmethod
    def bytes_per_cell(d):
        return 16 * 40 + 8 * 4 + 200

    @staticmethod
    def init(d):
        V = np.array([[[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]])
        L = np.array([[-2, -3, -4, -1]], np.int32)  # c1 = -1/2, c0 = 1/2, c1 = 1/2, c0 = -1/2 (see _engine.Events)
        return [V, np.array([4]), L, np.zeros((1, 4))]

    @staticmethod
    def vertex_labels(geo, b, k):
        """The labels of the two edges that meet at vertex k of polygon b (they define it)."""
        n = int(geo[1][b])
        L = geo[2][b]
        return [int(L[(k - 1) % n]), int(L[k])]

    @staticmethod
    def clip(geo, f, tol, cls, sure, ids, aux):
        """Split polygons by the zero set of f: the part where f >= 0 and the part where f <= 0, from the signs
        ``cls`` (B, K) of the vertices (1, -1, or 0: on the cut; exact where float64 could not decide).
        Returns (plus geo, minus geo), counter-clockwise, at most n + 2 vertices; the new edge along the cut
        carries the label ``ids`` (B,), the others keep their edge's label. A crossing of an edge whose end
        points float64 decided (``sure``) is interpolated, its error bounded by the residuals of the edge's
        line and the cut (``aux.planes``, ``aux.cut``, :func:`piecewise.numerics.residual_bound`); any other
        crossing is the exact intersection of the two, ``aux.exact(b, [label])`` -> (x (2,), bound)."""
        V, n, L, D = geo
        exact_point = aux.exact
        B, K = f.shape
        valid = np.arange(K)[None, :] < n[:, None]
        nxt = ring_next(n, K)
        cn = np.take_along_axis(cls, nxt, 1)
        cross = valid & (cls.astype(np.int16) * cn < 0)
        fn = np.take_along_axis(f, nxt, 1)
        Vn = np.take_along_axis(V, nxt[..., None], 1)
        t = np.where(cross, f / np.where(cross, f - fn, 1.0), 0.0)
        X = V + t[..., None] * (Vn - V)
        bi, ki = np.nonzero(cross)
        DX = np.zeros((B, K))
        if len(bi):
            sn = np.take_along_axis(sure, nxt, 1)
            ok = sure[bi, ki] & sn[bi, ki]
            b1, k1 = bi[ok], ki[ok]
            if len(b1):
                gl, el, dgl, del_ = aux.planes(L[b1, k1])
                cg, ce, cdg, cde = (a[b1] for a in aux.cut)
                DX[b1, k1] = residual_bound(X[b1, k1], np.stack([gl, cg], 1), np.stack([el, ce], 1),
                                            np.stack([dgl, cdg], 1), np.stack([del_, cde], 1),
                                            np.ones((len(b1), 2), bool))
            for b2, k2 in zip(bi[~ok].tolist(), ki[~ok].tolist()):
                X[b2, k2], DX[b2, k2] = exact_point(b2, [int(L[b2, k2])])
        pts = np.stack([V, X], 2).reshape(B, 2 * K, 2)
        dpts = np.stack([D, DX], 2).reshape(B, 2 * K)
        src = np.repeat(np.arange(K), 2)
        on_cut = np.stack([cls == 0, np.ones_like(cross)], -1).reshape(B, 2 * K)
        # both pieces in one pass: rows [0, B) are the + pieces, [B, 2B) the - pieces
        keep = np.concatenate([valid & (cls >= 0), valid & (cls <= 0)])
        mask = np.stack([keep, np.concatenate([cross, cross])], -1).reshape(2 * B, 2 * K)
        pos = np.cumsum(mask, 1) - 1
        n2 = mask.sum(1)
        K2 = max(int(n2.max()) if B else 0, 1)
        Vo = np.zeros((2 * B, K2, 2))
        Do = np.zeros((2 * B, K2))
        oc = np.zeros((2 * B, K2), bool)
        so = np.zeros((2 * B, K2), np.intp)
        bi, si = np.nonzero(mask)
        pi = pos[bi, si]
        b0 = bi % B if B else bi
        Vo[bi, pi] = pts[b0, si]
        Do[bi, pi] = dpts[b0, si]
        oc[bi, pi] = on_cut[b0, si]
        so[bi, pi] = src[si]
        ocn = np.take_along_axis(oc, ring_next(n2, K2), 1)
        L2 = np.concatenate([L, L])
        Lo = np.where(oc & ocn, np.concatenate([ids, ids])[:, None].astype(np.int32), np.take_along_axis(L2, so, 1))
        Lo[np.arange(K2)[None, :] >= n2[:, None]] = NOLAB
        return [[Vo[:B], n2[:B], Lo[:B], Do[:B]], [Vo[B:], n2[B:], Lo[B:], Do[B:]]]


class _Seg1D:
    """Backend: intervals. geo = [V (B, 2, 1), n (B,) = 2, L (B, 2) end point labels, D (B, 2) error bounds]."""

    KAXIS = (False, False, False, False)
    PAD = (0.0, 0, NOLAB, 0.0)

    @staticmethod
    def bytes_per_cell(d):
        return 240

    @staticmethod
    def init(d):
        return [np.array([[[-0.5], [0.5]]]), np.array([2]), np.array([[-1, -2]], np.int32), np.zeros((1, 2))]

    @staticmethod
    def vertex_labels(geo, b, k):
        return [int(geo[2][b, k])]

    @staticmethod
    def clip(geo, f, tol, cls, sure, ids, aux):
        V, n, L, D = geo
        exact_point = aux.exact
        c0, c1 = cls[:, 0], cls[:, 1]
        f0, f1 = f[:, 0], f[:, 1]
        cross = c0.astype(np.int16) * c1 < 0
        t = np.where(cross, f0 / np.where(cross, f0 - f1, 1.0), 0.0)
        x = V[:, 0, 0] + t * (V[:, 1, 0] - V[:, 0, 0])
        dx = np.zeros(len(x))
        ci = np.nonzero(cross)[0]
        if len(ci):
            ok = sure[ci, 0] & sure[ci, 1]
            c = ci[ok]
            if len(c):
                cg, ce, cdg, cde = (a[c] for a in aux.cut)
                dx[c] = residual_bound(x[c, None], cg[:, None], ce[:, None], cdg[:, None], cde[:, None],
                                       np.ones((len(c), 1), bool))
            for b2 in ci[~ok].tolist():
                p, dx[b2] = exact_point(b2, [])
                x[b2] = p[0]
        out = []
        for s0, s1 in ((c0, c1), (-c0, -c1)):  # the + piece, then the - piece
            lo_cut, hi_cut = cross & (s0 < 0), cross & (s1 < 0)
            lo = np.where(lo_cut, x, V[:, 0, 0])
            hi = np.where(hi_cut, x, V[:, 1, 0])
            Lab = np.stack([np.where(lo_cut, ids, L[:, 0]), np.where(hi_cut, ids, L[:, 1])], 1).astype(np.int32)
            Dd = np.stack([np.where(lo_cut, dx, D[:, 0]), np.where(hi_cut, dx, D[:, 1])], 1)
            out.append([np.stack([lo, hi], 1)[..., None], n.copy(), Lab, Dd])
        return out


def adjacency_1d(V) -> np.ndarray:
    """Pairs of intervals sharing an end point (the intervals tile the segment): (P, 2), i < j."""
    order = np.argsort(V[:, 0, 0], kind="stable")
    pairs = np.stack([order[:-1], order[1:]], 1)
    return np.sort(pairs, 1)


def edge_overlaps(V, n, L, events, D=None, exact_point=None):
    """Pieces of boundary shared by two polygons: ``(cells (P, 2), lo (P,), hi (P,), label (P,))`` with the
    shared segment ``[lo, hi]`` along the label's line (parameter of :func:`line_point`).

    Edges with the same label lie on one line (the event's, from ``events``); along it the edges of the
    cells on each side tile the event's segment, so every edge overlaps the other side's edge that is
    active at its start (the last one starting at or before it) or one that starts inside it -- which finds
    the first. One sort, no pairwise search. A pair whose overlap is within the rounding of its end points
    (``D``: the vertices' error bounds) of zero is decided exactly (``exact_point(cell, labels)`` -> the exact
    vertex) when given, by the float64 overlap otherwise."""
    from ..numerics import U

    K = V.shape[1]
    has = (np.arange(K)[None, :] < n[:, None]) & (L >= 0)
    ci, ki = np.nonzero(has)
    empty = (np.zeros((0, 2), np.int64), np.zeros(0), np.zeros(0), np.zeros(0, np.int64))
    if not len(ci):
        return empty
    lab = L[ci, ki].astype(np.int64)
    kn = ring_next(n, K)[ci, ki]
    a = V[ci, ki]
    b = V[ci, kn]
    direc = _line_dir(events, lab)
    t0 = np.einsum("ij,ij->i", a, direc)
    t1 = np.einsum("ij,ij->i", b, direc)
    if D is None:
        e0 = e1 = np.zeros(len(ci))
    else:
        e0 = 1.5 * D[ci, ki] + 8 * U * np.abs(a).max(1)
        e1 = 1.5 * D[ci, kn] + 8 * U * np.abs(b).max(1)
    side = t1 > t0
    lo, hi = np.minimum(t0, t1), np.maximum(t0, t1)
    err = np.maximum(e0, e1)
    k_lo = np.where(side, ki, kn)  # the vertex at each end
    k_hi = np.where(side, kn, ki)
    order = np.lexsort((lo, lab))
    ci, lab, side, lo, hi, err, k_lo, k_hi = (x[order] for x in (ci, lab, side, lo, hi, err, k_lo, k_hi))
    idx = np.arange(len(ci))
    start = np.maximum.accumulate(np.where(np.r_[True, lab[1:] != lab[:-1]], idx, 0))
    last_a = np.maximum.accumulate(np.where(side, idx, -1))
    last_b = np.maximum.accumulate(np.where(~side, idx, -1))
    other = np.where(side, last_b, last_a)
    ok = other >= start
    i, o = idx[ok], other[ok]
    slo, shi = np.maximum(lo[i], lo[o]), np.minimum(hi[i], hi[o])
    margin = 2 * (err[i] + err[o])
    good = (shi - slo > margin) & (ci[i] != ci[o])
    unsure = np.nonzero((np.abs(shi - slo) <= margin) & (ci[i] != ci[o]))[0]
    if len(unsure):
        # edges that meet where the line crosses one unit's boundary: no overlap, proven (:func:`_touches`)
        touch = _touches(L, n, ci, lab, k_lo, k_hi, lo, hi, err, events, i[unsure], o[unsure])
        good[unsure[touch]] = False
        unsure = unsure[~touch]
    if len(unsure):
        if exact_point is None:
            good[unsure] = shi[unsure] > slo[unsure]
        else:
            good[unsure] = [_exact_overlap(exact_point, events, n, L, ci, lab, k_lo, k_hi, int(i[t]), int(o[t]))
                            for t in unsure.tolist()]
    i, o = i[good], o[good]
    return np.sort(np.stack([ci[i], ci[o]], 1), 1), slo[good], shi[good], lab[i]


def _touches(L, n, ci, lab, k_lo, k_hi, lo, hi, err, events, I, O) -> np.ndarray:
    """For edge pairs (I, O) (rows of :func:`edge_overlaps`' sorted lists, on one line ``lab``): whether they
    share no segment of positive length, proven without arithmetic. The end of one edge and the start of the
    other are vertices where the line meets a boundary of the same unit at the same level (same stage, unit and
    breakpoint or piece pair; or the same box facet), and each edge is longer than four times its end points'
    rounding (so the float order of its ends is the true one). Then they cannot overlap: the unit's
    pre-activation is continuous, so on a common segment of the line the two cells' affine forms of it would
    agree and reach that level at the same point, which would be both the end of one edge and the start of the
    other."""
    meta = events.finish().meta

    def key(r, k):
        c = ci[r]
        a = L[c, (k - 1) % n[c]].astype(np.int64)
        b = L[c, k].astype(np.int64)
        other = np.where(a == lab[r], b, a)
        m = meta[np.maximum(other, 0)]
        neg = other < 0
        return (np.where(neg, -1, m[:, 0]), np.where(neg, other, m[:, 1]), np.where(neg, 0, m[:, 2]))

    long = (hi[I] - lo[I] > 4 * err[I]) & (hi[O] - lo[O] > 4 * err[O])
    out = np.zeros(len(I), bool)
    for x, y in ((I, O), (O, I)):
        a = key(x, k_lo[x])
        b = key(y, k_hi[y])
        out |= (a[0] == b[0]) & (a[1] == b[1]) & (a[2] == b[2])
    return out & long


def _exact_overlap(exact_point, events, n, L, ci, lab, k_lo, k_hi, i, o) -> bool:
    """Whether edges i and o (rows of :func:`edge_overlaps`' sorted lists, same label) overlap in a segment of
    positive length, from their exact end points."""
    def ends(r):
        c = int(ci[r])
        out = []
        for k in (int(k_lo[r]), int(k_hi[r])):
            nk = int(n[c])
            out.append(exact_point(c, [int(L[c, (k - 1) % nk]), int(L[c, k])]))
        return out

    (a0, a1), (b0, b1) = ends(i), ends(o)
    # position along the line: the direction of any vector between two distinct points of it
    pts = [a0, a1, b0, b1]
    base = a0
    direc = next([p[0] - base[0], p[1] - base[1]] for p in pts if p != base)

    def t(p):
        return (p[0] - base[0]) * direc[0] + (p[1] - base[1]) * direc[1]

    lo_a, hi_a = sorted((t(a0), t(a1)))
    lo_b, hi_b = sorted((t(b0), t(b1)))
    return max(lo_a, lo_b) < min(hi_a, hi_b)


def _line_dir(events, lab):
    g, _ = events.plane(lab)
    direc = np.stack([-g[:, 1], g[:, 0]], 1)
    return direc / np.maximum(np.linalg.norm(direc, axis=1, keepdims=True), 1e-300)


def line_point(events, lab, t):
    """Points at parameter t (P,) along the lines of labels lab (P,) (as in :func:`edge_overlaps`): (P, 2)."""
    g, e = events.plane(lab)
    foot = -(e / np.maximum(np.einsum("ij,ij->i", g, g), 1e-300))[:, None] * g
    return foot + t[:, None] * _line_dir(events, lab)


def adjacency_2d(V, n, L, events, D=None, exact_point=None) -> np.ndarray:
    """Pairs (i, j), i < j, of polygons sharing a boundary segment of positive length (:func:`edge_overlaps`)."""
    pairs = edge_overlaps(V, n, L, events, D, exact_point)[0]
    return np.unique(pairs, axis=0) if len(pairs) else np.zeros((0, 2), np.int64)


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
        :func:`piecewise.regions._engine.default_threads`; a Dask tile task uses 1: each task has one core).
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
    from ..staged import StagedNet
    from . import graph_engine
    from .search import SpaceBox, count_space, search

    if isinstance(domain, SpaceBox):  # sides at infinity (the whole input space): the search or a proven box
        return count_space(net, params, domain, progress=progress)
    if domain.kind == "box" and domain.dim > 6:  # beyond the polytope backend: the region-graph search
        return search(net, params, domain, progress=progress)
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
        from .exact_nd import Polytopes

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
        from .exact_nd import Polytopes

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
    layout = (max([_engine._bits(st) for st in staged.stages] or [1]), [st.width for st in staged.stages])
    return CellComplex.build(net if params is not None else staged, domain, geo, words, J, c, DJ, events,
                             time.perf_counter() - t0, P, kind, staged=staged, layout=layout)
