"""The 1-D and 2-D geometry backend of the vertex engine: cells are intervals and convex polygons in ``u``
(counter-clockwise vertices, padded arrays ``V (C, K, 2)`` with counts ``n``), split by vectorised clipping of
all crossed cells at once. Each polygon edge ``k`` (vertex k to k+1) carries the label of the split event that
created it (:mod:`._engine`); adjacency across edges is found by sweeping each label's edges along their line
(:func:`adjacency_2d`). Boxes of 3 or more inputs use the polytope backend (:mod:`.polytopes`); the driver
that chooses a backend is :func:`piecewise.regions.exact.enumerate_cells`.
"""
from __future__ import annotations

import numpy as np

from ..numerics import residual_bound
from .._shared import NOLAB as _NOLAB

NOLAB = np.int32(_NOLAB)  # padding of edge labels


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
        L = np.array([[-2, -3, -4, -1]], np.int32)  # c1 = -1/2, c0 = 1/2, c1 = 1/2, c0 = -1/2 (see buffers.Events)
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
