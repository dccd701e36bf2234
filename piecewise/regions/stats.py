"""Statistics of an exact cell complex: sizes, vertices per cell, density, distances to boundaries,
local complexity, decision boundaries."""
from __future__ import annotations

import numpy as np

from ..numerics import rtol


def decision_boundary(cx, output: int = 0) -> list[np.ndarray]:
    """Pieces of the zero set of network output ``output`` in a 2D complex: a list of (2, 2) segments in the
    domain's u coordinates (one per cell the zero set crosses). In 1D: the points, as (1, 1) arrays."""
    V, n = cx.vertices, cx.n_vertices
    f = np.einsum("ckd,cd->ck", V, cx.jacobian_u[:, :, output]) + cx.offset[:, output][:, None]
    K = V.shape[1]
    k = np.arange(K)
    valid = k[None] < n[:, None]
    scale = np.abs(cx.jacobian_u[:, :, output]).sum(1) + np.abs(cx.offset[:, output])
    tol = rtol(np.float64) * scale[:, None]
    fz = np.where(np.abs(f) <= tol, 0.0, f)
    nxt = np.where(k[None] + 1 < n[:, None], k[None] + 1, 0)
    fn = np.take_along_axis(fz, nxt, 1)
    Vn = np.take_along_axis(V, nxt[..., None], 1)
    cross = valid & (fz * fn < 0)
    t = np.where(cross, fz / np.where(cross, fz - fn, 1.0), 0.0)
    pts = V + t[..., None] * (Vn - V)
    on = valid & (fz == 0)
    segs = []
    for c in np.nonzero((cross | on).any(1))[0]:
        p = np.concatenate([pts[c][cross[c]], V[c][on[c]]])
        if V.shape[-1] == 1:
            segs.extend(q[None] for q in p)
        elif len(p) >= 2:
            # the zero set of an affine function in a convex cell is a segment: take its two extreme points
            d = p - p[0]
            far = p[np.argmax(np.linalg.norm(d, axis=1))]
            q = p[np.argmax(np.linalg.norm(p - far, axis=1))]
            if np.linalg.norm(q - far) > 0:
                segs.append(np.stack([far, q]))
    return segs


def summary(cx) -> dict:
    """Counts and size statistics of a complex: regions, total measure, regions per unit measure, the
    distribution of cell measures (length/area) and of vertices per cell. JSON-ready."""
    m = np.asarray(cx.measure, float)
    nv = np.asarray(cx.n_vertices)
    q = np.quantile(m, [0.0, 0.1, 0.5, 0.9, 1.0]) if len(m) else np.zeros(5)
    return {"regions": cx.regions, "measure_total": float(m.sum()),
            "regions_per_unit_measure": float(cx.regions / m.sum()) if m.sum() > 0 else None,
            "measure_quantiles": dict(zip(["min", "q10", "median", "q90", "max"], map(float, q))),
            "vertices_per_cell": {int(k): int(v) for k, v in zip(*np.unique(nv, return_counts=True))}}


def _segments_x(cx, i):
    """Edges of cell i in input coordinates, excluding edges on the domain's boundary: (E, 2, n_in)."""
    u = cx.vertices[i, : cx.n_vertices[i]]
    un = np.roll(u, -1, axis=0)
    if u.shape[1] == 1:  # 1D: the end points, except those on the domain's ends
        keep = (np.abs(u[:, 0]) > 1e-12) & (np.abs(u[:, 0] - 1) > 1e-12)
        p = cx.domain.points(u[keep])
        return np.stack([p, p], 1)
    on_edge = np.zeros(len(u), bool)
    for ax in range(u.shape[1]):
        for v in (0.0, 1.0):
            on_edge |= (np.abs(u[:, ax] - v) <= 1e-12) & (np.abs(un[:, ax] - v) <= 1e-12)
    return np.stack([cx.domain.points(u[~on_edge]), cx.domain.points(un[~on_edge])], 1)


def _point_segment_distance(x, seg):
    """Distances from x (n,) to segments seg (E, 2, n)."""
    a, b = seg[:, 0], seg[:, 1]
    ab = b - a
    L2 = np.einsum("en,en->e", ab, ab)
    t = np.clip(np.einsum("en,en->e", x - a, ab) / np.where(L2 > 0, L2, 1.0), 0.0, 1.0)
    return np.linalg.norm(a + t[:, None] * ab - x, axis=1)


def locate(cx, points) -> np.ndarray:
    """Index of the cell containing each point (input coordinates, on the domain), -1 on a boundary or
    outside every cell. Uses the float64 activation pattern of the point."""
    from ..patterns import classify

    words, valid = classify(cx.net, _params_of(cx), np.asarray(points, float), cx.domain.axes)
    index = {row.tobytes(): i for i, row in enumerate(cx.patterns)}
    return np.array([index.get(w.tobytes(), -1) if v else -1 for w, v in zip(words, valid)])


def _params_of(cx):
    if cx.params is None:
        raise ValueError("this complex was built without its parameters")
    return cx.params


def distance_to_boundary(cx, points) -> np.ndarray:
    """Distance (input coordinates, within the slice) from each point to the nearest region boundary inside
    the domain (the domain's own edges do not count). 0 for points on a boundary."""
    pts = np.asarray(points, float)
    cells = locate(cx, pts)
    out = np.zeros(len(pts))
    for k, (x, c) in enumerate(zip(pts, cells)):
        if c < 0:
            continue
        seg = _segments_x(cx, c)
        out[k] = _point_segment_distance(x, seg).min() if len(seg) else np.inf
    return out


def local_complexity(cx, points, radius: float) -> np.ndarray:
    """Number of regions meeting the ball of ``radius`` (within the slice) around each point."""
    pts = np.asarray(points, float)
    cells = locate(cx, pts)
    counts = np.zeros(len(pts), int)
    for k, (x, c0) in enumerate(zip(pts, cells)):
        n = 0
        for i in range(cx.regions):
            if i == c0:
                n += 1
                continue
            u = cx.vertices[i, : cx.n_vertices[i]]
            seg = np.stack([cx.domain.points(u), cx.domain.points(np.roll(u, -1, axis=0))], 1)
            if _point_segment_distance(x, seg).min() <= radius:
                n += 1
        counts[k] = n
    return counts
