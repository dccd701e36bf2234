"""Statistics of an exact cell complex (any :class:`~piecewise.regions.cells.CellComplex`): sizes, vertices per
cell, density, distances to boundaries, local complexity, and the classifier's decision boundary.

Decision boundary. For a network with several outputs (logits) the decision is the argmax; the boundary is
where the top two logits tie. For one output it is the level set ``y = threshold`` (:mod:`piecewise.decision`:
0.5, the level that training and accuracy use for 0/1 labels; scores (threshold, y), so that the class index is
the predicted class).
Inside a cell the logits are affine, so each cell is split exactly into the pieces where each class wins
(the same clipping as a max unit of the engine, :func:`piecewise.regions._engine.max_unit`, ties on a whole
piece to the lowest class); the boundary is every piece of edge shared by two pieces of different classes
-- inside cells and along cell edges alike. 1-D and 2-D domains.
"""
from __future__ import annotations

import numpy as np


def _pieces_by_class(cx, threshold=None):
    """Split every cell by the argmax of its logits: (geo, parent cell, class, events) of the pieces (in the
    complex's centred coordinates). The signs are decided as the engine decides them (float64 with error
    bounds, exactly where those do not suffice)."""
    from ._engine import _Ctx, max_unit
    from .buffers import Cells, Events
    from ._resolve import Resolver
    from .polygons import _Poly2D, _Seg1D

    if cx.kind not in ("polygon", "interval"):
        raise ValueError("the decision boundary is computed on 1-D and 2-D complexes (segments, boxes, plane slices)")
    from ..decision import THRESHOLD, logits

    t = THRESHOLD if threshold is None else float(threshold)
    Dg, De = cx.jacobian_err, cx.offset_err
    if cx.jacobian_u.shape[-1] == 1:  # one output: scores (t, y), class 1 iff y > t
        Dg, De = np.r_[0.0, Dg], np.r_[0.0, De]
    J, c = logits(cx.jacobian_u, cx.offset_c, t)
    backend = _Poly2D if cx.kind == "polygon" else _Seg1D
    ev = Events(cx.dim)
    if cx.events is not None:
        src = cx.events.finish()
        ev.g, ev.e, ev.n = src.g.copy(), src.e.copy(), len(src.e)
        ev.meta, ev.dg, ev.de = src.meta.copy(), src.dg.copy(), src.de.copy()
    staged = cx._exactness()[1]
    bits, widths = cx.layout
    res = Resolver(staged, cx.domain, ev, (bits, widths))
    res.net.threshold = t
    res.begin(len(staged.stages) + 1, cx.patterns)
    ctx = _Ctx(backend, res, len(staged.stages) + 1, Dg, De, ev)
    geo = [cx.vertices_c, cx.n_vertices, *cx.facets, cx.vertex_err]
    cells = Cells(geo, backend.KAXIS, backend.PAD, np.iinfo(np.int64).max, 0.0)
    cells.new_stage(0)
    max_unit(cells, ctx, J, c, 0, np.arange(J.shape[-1]))
    s = cells.size
    parent = cells.parent[:s]
    from . import rational

    def exact_point(piece, labels):  # a vertex of a piece, exactly (for the edges' overlaps)
        return rational.intersection(res._defining(labels, res.states(int(parent[piece]))))

    return [a[:s] for a in cells.geo], parent, cells.lab[:s, 0].astype(np.int64), ev.finish(), exact_point


def decision_boundary(cx, detail: bool = False, threshold: float | None = None):
    """The decision boundary of the network on a 1-D or 2-D complex (module docstring).

    Returns a list of (2, 2) segments in the domain's u coordinates (2-D) or of (1, 1) points (1-D). With
    ``detail=True``: a dict with ``segments`` (S, 2, d) in u, ``cells`` (S, 2): the cells on each side of
    every segment (equal when the segment crosses a cell's interior), and ``classes`` (S, 2): the winning
    output on each side."""
    from .polygons import adjacency_1d, edge_overlaps, line_point

    geo, parent, cls, ev, exact_point = _pieces_by_class(cx, threshold)
    if cx.kind == "interval":
        pairs = adjacency_1d(geo[0])
        a, b = pairs[:, 0], pairs[:, 1]
        diff = cls[a] != cls[b]
        a, b = a[diff], b[diff]
        # the shared end point: a's right end if a lies left of b
        x = np.where(geo[0][a, 0, 0] < geo[0][b, 0, 0], geo[0][a, 1, 0], geo[0][a, 0, 0])
        seg = np.stack([x, x], 1)[..., None] + 0.5
    else:
        pairs, lo, hi, lab = edge_overlaps(geo[0], geo[1], geo[2], ev, geo[3], exact_point)
        a, b = pairs[:, 0], pairs[:, 1]
        diff = cls[a] != cls[b]
        a, b, lo, hi, lab = a[diff], b[diff], lo[diff], hi[diff], lab[diff]
        seg = np.stack([line_point(ev, lab, lo), line_point(ev, lab, hi)], 1) + 0.5
    if not detail:
        return [s[:1] if cx.kind == "interval" else s for s in seg]
    return {"segments": seg, "cells": np.stack([parent[a], parent[b]], 1), "classes": np.stack([cls[a], cls[b]], 1)}


def decision_summary(cx) -> dict:
    """The decision boundary in numbers: ``length`` (input coordinates, within the slice; in 1-D the number
    of points), ``cells`` (cells that meet it), ``crossing_cells`` (cells whose interior it crosses) and
    ``segments``. JSON-ready."""
    db = decision_boundary(cx, detail=True)
    seg, cells = db["segments"], db["cells"]
    if cx.kind == "interval":
        length = float(len(seg))
    else:
        length = float(np.linalg.norm((seg[:, 1] - seg[:, 0]) @ cx.domain.axes, axis=1).sum())
    inside = cells[:, 0] == cells[:, 1]
    return {"length": length, "cells": int(len(np.unique(cells))), "crossing_cells": int(len(np.unique(cells[inside, 0]))),
            "segments": int(len(seg))}


def summary(cx) -> dict:
    """Counts and size statistics of a complex: regions, total measure, regions per unit measure, the
    distribution of cell measures (length/area/volume) and of vertices per cell; for 1-D and 2-D complexes
    also the decision boundary (:func:`decision_summary`). JSON-ready."""
    m = np.asarray(cx.measure, float)
    nv = np.asarray(cx.n_vertices)
    q = np.quantile(m, [0.0, 0.1, 0.5, 0.9, 1.0]) if len(m) else np.zeros(5)
    out = {"regions": cx.regions, "measure_total": float(m.sum()),
           "regions_per_measure": float(cx.regions / m.sum()) if m.sum() > 0 else None,
           "measure_quantiles": dict(zip(["min", "q10", "median", "q90", "max"], map(float, q))),
           "vertices_per_cell": {int(k): int(v) for k, v in zip(*np.unique(nv, return_counts=True))}}
    if cx.kind in ("polygon", "interval"):
        out["decision_boundary"] = decision_summary(cx)
    return out


def _interior_edges(cx):
    """Boundary pieces between cells (the domain's own edges excluded), in input coordinates: (E, 2, n_in)
    segments and (E, 2) the two cells of each (1-D: degenerate segments at the end points)."""
    if cx.kind == "interval":
        pairs = cx.adjacency
        V = cx.vertices_c
        a, b = pairs[:, 0], pairs[:, 1]
        x = np.where(V[a, 0, 0] < V[b, 0, 0], V[a, 1, 0], V[a, 0, 0])  # the shared end point
        p = cx.domain.points_c(x[:, None])
        return np.stack([p, p], 1), pairs
    if cx.kind != "polygon":
        raise ValueError("distances and local complexity are computed on 1-D and 2-D complexes")
    from .polygons import edge_overlaps, line_point

    pairs, lo, hi, lab = edge_overlaps(cx.vertices_c, cx.n_vertices, cx.facets[0], cx.events, cx.vertex_err,
                                       cx._exact_points())
    seg = np.stack([line_point(cx.events, lab, lo), line_point(cx.events, lab, hi)], 1)
    return cx.domain.points_c(seg), pairs


def _point_segment_distance(x, seg):
    """Distances from points x (P, n) to segments seg (E, 2, n): (P, E)."""
    a, b = seg[:, 0], seg[:, 1]
    ab = b - a
    L2 = np.einsum("en,en->e", ab, ab)
    t = np.clip(np.einsum("pen,en->pe", x[:, None, :] - a[None], ab) / np.where(L2 > 0, L2, 1.0), 0.0, 1.0)
    return np.linalg.norm(a[None] + t[..., None] * ab[None] - x[:, None, :], axis=-1)


def locate(cx, points) -> np.ndarray:
    """Index of the cell containing each point (input coordinates, on the domain), -1 on a boundary or
    outside every cell. Uses the float64 activation pattern of the point (MLP complexes)."""
    from ..patterns import classify

    words, valid = classify(cx.net, cx.params, np.asarray(points, float), cx.domain.axes)
    index = {row.tobytes(): i for i, row in enumerate(cx.patterns)}
    return np.array([index.get(w.tobytes(), -1) if v else -1 for w, v in zip(words, valid)])


def _params_of(cx):
    if cx.params is None:
        raise ValueError("this complex was built without MLP parameters")
    return cx.params


def distance_to_boundary(cx, points, block: int = 256) -> np.ndarray:
    """Distance (input coordinates, within the slice) from each point to the nearest region boundary inside
    the domain (the domain's own edges do not count). 0 for points on a boundary; inf if there is none."""
    pts = np.asarray(points, float)
    cells = locate(cx, pts)
    seg, pairs = _interior_edges(cx)
    out = np.zeros(len(pts))
    for s in range(0, len(pts), block):
        sl = slice(s, s + block)
        c = cells[sl]
        D = _point_segment_distance(pts[sl], seg) if len(seg) else np.full((len(c), 0), np.inf)
        mine = (pairs[None, :, 0] == c[:, None]) | (pairs[None, :, 1] == c[:, None])
        d = np.where(mine, D, np.inf).min(1, initial=np.inf)
        out[sl] = np.where(c < 0, 0.0, d)
    return out


def local_complexity(cx, points, radius: float) -> np.ndarray:
    """Number of regions meeting the ball of ``radius`` (within the slice) around each point, exactly: a cell
    meets the ball iff the point lies in it or one of the cell's edges comes within ``radius``."""
    pts = np.asarray(points, float)
    cells = locate(cx, pts)
    seg, pairs = _all_edges(cx)
    counts = np.zeros(len(pts), int)
    for k, (x, c0) in enumerate(zip(pts, cells)):
        near = _point_segment_distance(x[None], seg)[0] <= radius
        hit = set(pairs[near].tolist())
        if c0 >= 0:
            hit.add(int(c0))
        counts[k] = len(hit)
    return counts


def _all_edges(cx):
    """Every edge of every cell in input coordinates, (E, 2, n_in), and its cell (E,)."""
    if cx.kind == "interval":
        V = cx.vertices_c
        p = cx.domain.points_c(V[:, :, 0:1].reshape(-1, 1))
        return np.stack([p, p], 1), np.repeat(np.arange(cx.regions), 2)
    if cx.kind != "polygon":
        raise ValueError("distances and local complexity are computed on 1-D and 2-D complexes")
    from .polygons import ring_next

    V, n = cx.vertices_c, cx.n_vertices
    K = V.shape[1]
    ci, ki = np.nonzero(np.arange(K)[None, :] < n[:, None])
    a = V[ci, ki]
    b = V[ci, ring_next(n, K)[ci, ki]]
    return np.stack([cx.domain.points_c(a), cx.domain.points_c(b)], 1), ci
