"""The n-D backend of exact enumeration (boxes of 3 to 6 inputs; any d >= 2 works): batched convex polytopes
in V-form with vertex-facet incidence bitsets.

Design. All cells live in padded arrays: vertices ``X (C, K, d)`` in the cube's coordinates ``u``, counts
``n (C,)``, and for every vertex a 64-bit word ``inc (C, K)`` whose bit ``s`` says that the vertex lies on the
cell's facet slot ``s``; ``flab (C, 64)`` holds the label of the hyperplane in each slot (box facets, or the
split event that created it, see :mod:`._engine`). No inequality is ever stored or solved: the
driver (:mod:`._engine`) hands this backend, for a batch of cells, the values ``f`` of an affine function at
their vertices, and the split is combinatorial and vectorised over the whole batch:

* vertices with ``f > tol`` go to the + piece, ``f < -tol`` to the - piece, ``|f| <= tol`` to both (and get
  the new facet's bit);
* every *edge* between a + and a - vertex gives a new vertex on the hyperplane (interpolated), with the
  incidences the two end points share plus the new facet. Two vertices u, v span an edge iff no third vertex
  lies on all the facets they share (the smallest face containing u and v is the intersection of those
  facets; it is an edge iff it has exactly two vertices). This test is exact for degenerate (non-simple)
  polytopes: several hyperplanes through a vertex, duplicates, facets tight at many vertices. A cheap
  filter first keeps pairs sharing at least d - 1 facets.
* the new facet takes a free slot (no vertex on it); slots tight at fewer than d vertices of a piece are not
  facets (but still valid inequalities, so the edge test stays exact) and are freed when a cell runs short
  of slots. More than 64 facets on one cell is refused with a clear error.

Costs are whole-array operations over the batch: O(B K^2) for the candidate pairs, O(P K) for the third-
vertex test of the P candidates, no SVD, no LP. Volumes (``measure``) are computed on first use, and facet
adjacency between cells (for linear regions) uses the facet labels: two cells can share a facet only if
they carry a facet with the same label on opposite sides; that the two facets overlap in dimension d - 1 is
then decided by one small LP (SciPy HiGHS) per candidate pair, unless they share d affinely independent
vertices.
"""
from __future__ import annotations

import numpy as np

from ..errors import PiecewiseError
from ..numerics import U_ATOL

F = 64  # facet slots per cell (bits of one uint64)
NOLAB = np.int32(-(2**30))
_ONE = np.uint64(1)


_BYTE_POP = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def _popcount(a):
    """Set bits of uint64 arrays (NumPy >= 2 has it built in; a byte table otherwise)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(a)
    a = np.ascontiguousarray(a, np.uint64)
    return _BYTE_POP[a.view(np.uint8)].reshape(*a.shape, 8).sum(-1, dtype=np.uint8)


def _cube(d):
    X = np.array(np.meshgrid(*[[0.0, 1.0]] * d, indexing="ij")).reshape(d, -1).T  # (2^d, d)
    inc = np.zeros(len(X), np.uint64)
    for i in range(d):
        inc |= np.where(X[:, i] == 0.0, _ONE << np.uint64(i), np.uint64(0))
        inc |= np.where(X[:, i] == 1.0, _ONE << np.uint64(d + i), np.uint64(0))
    flab = np.full(F, NOLAB, np.int32)
    flab[: 2 * d] = -1 - np.arange(2 * d)
    return X, inc, flab


def _bits(inc):
    """(..., ) uint64 -> (..., 64) bool, bit s at index s."""
    return np.unpackbits(inc[..., None].view(np.uint8), axis=-1, bitorder="little").astype(bool)


class Polytopes:
    """Backend (see the module docstring). geo = [X (B, K, d), n (B,), inc (B, K) uint64, flab (B, 64) int32]."""

    KAXIS = (True, False, True, False)
    PAD = (0.0, 0, np.uint64(0), NOLAB)

    @staticmethod
    def bytes_per_cell(d):
        K = 3 * 2**min(d, 4)
        return K * (8 * d + 8) + 4 * F + 64

    @staticmethod
    def init(d):
        if d > 16:
            raise PiecewiseError(f"the exact engine handles boxes up to 16 inputs, got {d}: use the grid method")
        X, inc, flab = _cube(d)
        return [X[None], np.array([len(X)]), inc[None], flab[None]]

    @staticmethod
    def clip(geo, f, tol, ids, block: int = 2048):
        """Split polytopes (see the module docstring); cells in blocks of similar vertex count, each block
        padded only to its own largest count (the pair test is quadratic in it)."""
        n = geo[1]
        tol = np.reshape(tol, -1)
        if len(n) <= block and n.max() == geo[0].shape[1]:
            return _clip(geo, f, tol, ids)
        order = np.argsort(n, kind="stable")
        plus, minus = [], []
        for s in range(0, len(n), block):
            o = order[s:s + block]
            K = int(n[o].max())
            p, m = _clip([a[o, :K] if ka else a[o] for a, ka in zip(geo, Polytopes.KAXIS)], f[o, :K], tol[o], ids[o])
            plus.append(p)
            minus.append(m)
        from ._engine import concat_geo

        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        P = concat_geo(plus, Polytopes.KAXIS, Polytopes.PAD)
        M = concat_geo(minus, Polytopes.KAXIS, Polytopes.PAD)
        return [a[inv] for a in P], [a[inv] for a in M]


def _clip(geo, f, tol, ids):
    X, n, inc, flab = geo
    B, K, d = X.shape
    valid = np.arange(K)[None, :] < n[:, None]
    pos = valid & (f > tol[:, None])
    neg = valid & (f < -tol[:, None])
    zero = valid & ~pos & ~neg
    used = np.bitwise_or.reduce(np.where(valid, inc, np.uint64(0)), axis=1)
    free = ~used
    if np.any(free == 0):
        raise PiecewiseError(f"a cell has more than {F} facets: the exact n-D engine cannot represent it; use the grid "
                             "method or a smaller box")
    low = free & (~free + _ONE)  # lowest free slot, as a bit
    slot = _popcount(low - _ONE).astype(np.intp)
    # candidate edges: a + vertex and a - vertex sharing at least d - 1 facets
    common = inc[:, :, None] & inc[:, None, :]
    cand = pos[:, :, None] & neg[:, None, :] & (_popcount(common) >= d - 1)
    bi, i, j = np.nonzero(cand)
    cm = common[bi, i, j]
    # an edge iff no third vertex lies on every facet the two share
    kk = np.arange(K)[None, :]
    third = ((inc[bi] & cm[:, None]) == cm[:, None]) & valid[bi] & (kk != i[:, None]) & (kk != j[:, None])
    edge = ~third.any(1)
    bi, i, j, cm = bi[edge], i[edge], j[edge], cm[edge]
    fi, fj = f[bi, i], f[bi, j]
    t = fi / (fi - fj)
    Xn = X[bi, i] + t[:, None] * (X[bi, j] - X[bi, i])
    incn = cm | low[bi]
    inc_z = np.where(zero, inc | low[:, None], inc)
    first = np.searchsorted(bi, bi)
    rank = np.arange(len(bi)) - first
    n_new = np.bincount(bi, minlength=B)
    flab2 = flab.copy()
    flab2[np.arange(B), slot] = ids
    out = []
    for keep in (pos | zero, neg | zero):
        nk = keep.sum(1)
        n2 = nk + n_new
        K2 = max(int(n2.max()), 1)
        X2 = np.zeros((B, K2, d))
        I2 = np.zeros((B, K2), np.uint64)
        b0, k0 = np.nonzero(keep)
        p0 = (np.cumsum(keep, 1) - 1)[b0, k0]
        X2[b0, p0] = X[b0, k0]
        I2[b0, p0] = inc_z[b0, k0]
        p1 = nk[bi] + rank
        X2[bi, p1] = Xn
        I2[bi, p1] = incn
        fl = flab2
        # slots tight at fewer than d vertices of a piece are not facets (still valid inequalities, so the
        # edge test stays exact); they are freed only when a cell runs short of slots
        crowded = _popcount(np.bitwise_or.reduce(I2, axis=1)) >= F - 8
        if crowded.any():
            ci = np.nonzero(crowded)[0]
            v2 = np.arange(K2)[None, :] < n2[ci, None]
            cnt = (_bits(I2[ci]) & v2[..., None]).sum(1)  # (c, 64)
            weak = cnt < d
            mask = np.packbits(weak, axis=-1, bitorder="little").view(np.uint64)[:, 0]
            I2[ci] &= ~mask[:, None]
            fl = flab2.copy()
            fl[ci] = np.where(weak, NOLAB, flab2[ci])
        out.append([X2, n2, I2, fl])
    return out


# -- after enumeration --------------------------------------------------------------------------------
def _facet_slots(inc_i, d):
    """Slots of a cell that are facets (tight at >= d vertices): bool (64,)."""
    return _bits(inc_i).sum(0) >= d


def halfspace(V, inc_i, flab_i, events):
    """``A u <= c`` of one cell from its facet labels (V (n, d) its vertices, inc_i (n,), flab_i (64,))."""
    d = V.shape[1]
    slots = np.nonzero(_facet_slots(inc_i, d) & (flab_i != NOLAB))[0]
    g, e = events.plane(flab_i[slots])
    c = V.mean(0)
    s = np.sign(g @ c + e)
    return -s[:, None] * g, s * e


def volumes(X, n, inc) -> np.ndarray:
    """Volumes in u of the cells (convex hulls of their vertices; Qhull, joggled where a thin cell trips its
    precision checks -- a relative error far below the tolerances used here)."""
    from scipy.spatial import ConvexHull, QhullError

    out = np.empty(len(n))
    for i in range(len(n)):
        try:
            out[i] = ConvexHull(X[i, : n[i]]).volume
        except QhullError:
            out[i] = ConvexHull(X[i, : n[i]], qhull_options="QJ").volume
    return out


def adjacency_nd(X, n, inc, flab, events, keep=None) -> np.ndarray:
    """Pairs (i, j), i < j, of cells sharing a facet (a common face of dimension d - 1). Candidates carry a
    facet with the same label on opposite sides; ``keep(pairs) -> bool`` filters them before the exact test
    (linear regions pass the gradient test, so the LPs run only where they can matter)."""
    C, K, d = X.shape
    valid = np.arange(K)[None, :] < n[:, None]
    bits = _bits(np.where(valid, inc, np.uint64(0)))  # (C, K, 64)
    facet = (bits.sum(1) >= d) & (flab >= 0)
    ci, si = np.nonzero(facet)
    if not len(ci):
        return np.zeros((0, 2), np.int64)
    lab = flab[ci, si].astype(np.int64)
    g, e = events.plane(lab)
    cen = (X * valid[..., None]).sum(1) / n[:, None]
    side = np.einsum("pd,pd->p", cen[ci], g) + e > 0
    order = np.lexsort((side, lab))
    ci, si, lab, side = ci[order], si[order], lab[order], side[order]
    # all (-, +) pairs within a label
    bounds = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1], True])
    pa, pb, pl, sa, sb = [], [], [], [], []
    for s0, s1 in zip(bounds[:-1], bounds[1:]):
        sd = side[s0:s1]
        m = s0 + int(np.count_nonzero(~sd))
        if m == s0 or m == s1:
            continue
        a = np.repeat(np.arange(s0, m), s1 - m)
        b = np.tile(np.arange(m, s1), m - s0)
        pa.append(ci[a]); pb.append(ci[b]); pl.append(lab[a]); sa.append(si[a]); sb.append(si[b])
    if not pa:
        return np.zeros((0, 2), np.int64)
    pa, pb, pl, sa, sb = map(np.concatenate, (pa, pb, pl, sa, sb))
    # bounding boxes of the two facets must overlap
    fa = bits[pa, :, sa] & valid[pa]
    fb = bits[pb, :, sb] & valid[pb]
    big = np.inf
    lo_a = np.where(fa[..., None], X[pa], big).min(1)
    hi_a = np.where(fa[..., None], X[pa], -big).max(1)
    lo_b = np.where(fb[..., None], X[pb], big).min(1)
    hi_b = np.where(fb[..., None], X[pb], -big).max(1)
    ok = np.all((np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b)) > -U_ATOL, 1)
    pa, pb, pl, sa, sb, fa, fb = pa[ok], pb[ok], pl[ok], sa[ok], sb[ok], fa[ok], fb[ok]
    pairs = np.stack([pa, pb], 1)
    if keep is not None:
        k = keep(pairs)
        pairs, pl, sa, sb, fa, fb = pairs[k], pl[k], sa[k], sb[k], fa[k], fb[k]
    share = np.array([_facets_overlap(X, n, inc, flab, events, a, b, L, fa_, fb_)
                      for (a, b), L, fa_, fb_ in zip(pairs, pl, fa, fb)], bool)
    pairs = np.sort(pairs[share], 1) if len(pairs) else pairs
    return np.unique(pairs, axis=0) if len(pairs) else np.zeros((0, 2), np.int64)


def _facets_overlap(X, n, inc, flab, events, a, b, L, fa, fb) -> bool:
    """Whether the facets on label L of cells a and b overlap in dimension d - 1."""
    d = X.shape[2]
    Va, Vb = X[a][fa], X[b][fb]
    # shortcut: d common vertices spanning the facet's hyperplane -> both contain their simplex
    dist = np.abs(Va[:, None, :] - Vb[None, :, :]).max(-1)
    common = Va[(dist <= U_ATOL).any(1)]
    if len(common) >= d and np.linalg.matrix_rank(common[1:] - common[0], tol=1e-9) == d - 1:
        return True
    from scipy.optimize import linprog

    rows, rhs = [], []
    for c in (a, b):
        A, cc = halfspace(X[c, : n[c]], inc[c, : n[c]], flab[c], events)
        labs = flab[c][_facet_slots(inc[c, : n[c]], d) & (flab[c] != NOLAB)]
        rows.append(A[labs != L])
        rhs.append(cc[labs != L])
    A = np.concatenate(rows)
    c = np.concatenate(rhs)
    g, e = events.plane(np.array([L]))
    norms = np.linalg.norm(A, axis=1)
    res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.c_[A, norms], b_ub=c, A_eq=np.r_[g[0], 0.0][None], b_eq=[-e[0]],
                  bounds=[(None, None)] * d + [(None, 1.0)], method="highs")
    return bool(res.status == 0 and -res.fun > 1e-9)


def enumerate_cells_nd(net, params, domain, *, progress: bool | None = None, max_cells: int = 2_000_000):
    """:func:`~piecewise.regions.enumerate_cells` with this backend on any domain (also 1-D and 2-D; the
    tests use it as a second, independent geometry on 2-D boxes)."""
    from .exact import _enumerate

    return _enumerate(net, params, domain, Polytopes, "polytope", progress, max_cells)
