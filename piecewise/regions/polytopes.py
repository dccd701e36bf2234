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

The compiled kernel (``_kernel.c``, :mod:`._ckernel`) does this same split cell by cell in C (same
classification, edge test, slot rule and interpolation; bit-identical results), and keeps the cells ragged
between stages; :class:`~piecewise.regions.cells.CellComplex` pads them only when ``vertices`` is read.
The NumPy form below runs where the kernel is not built, and for max stages.

Costs of the NumPy form are whole-array operations over the batch: O(B K^2) for the candidate pairs, O(P K) for the third-
vertex test of the P candidates, no SVD, no LP. Volumes (``measure``) are computed on first use, and facet
adjacency between cells (for linear regions) uses the facet labels: two cells can share a facet only if
they carry a facet with the same label on opposite sides and the two facets' bounding boxes meet (pairs
found in bounded memory: boxes once per facet, chunks, a sweep over labels cut into many pieces); that the
two facets overlap in dimension d - 1 is then decided by one small LP (SciPy HiGHS) per candidate pair,
unless they share d affinely independent vertices.
"""
from __future__ import annotations

import numpy as np

from ..errors import PiecewiseError
from ..numerics import residual_bound
from .._shared import F as _F, NOLAB as _NOLAB

U_ATOL = 1e-12  # margin of the bounding-box filter of candidate facet pairs (generous: a filter only)

F = _F  # facet slots per cell (bits of one uint64)
NOLAB = np.int32(_NOLAB)
_ONE = np.uint64(1)


_BYTE_POP = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def _popcount(a):
    """Set bits of uint64 arrays (NumPy >= 2 has it built in; a byte table otherwise)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(a)
    a = np.ascontiguousarray(a, np.uint64)
    return _BYTE_POP[a.view(np.uint8)].reshape(*a.shape, 8).sum(-1, dtype=np.uint8)


def _cube(d):
    X = np.array(np.meshgrid(*[[-0.5, 0.5]] * d, indexing="ij")).reshape(d, -1).T  # (2^d, d), centred cube
    inc = np.zeros(len(X), np.uint64)
    for i in range(d):
        inc |= np.where(X[:, i] == -0.5, _ONE << np.uint64(i), np.uint64(0))
        inc |= np.where(X[:, i] == 0.5, _ONE << np.uint64(d + i), np.uint64(0))
    flab = np.full(F, NOLAB, np.int32)
    flab[: 2 * d] = -1 - np.arange(2 * d)
    return X, inc, flab


def _bits(inc):
    """(..., ) uint64 -> (..., 64) bool, bit s at index s."""
    return np.unpackbits(inc[..., None].view(np.uint8), axis=-1, bitorder="little").astype(bool)


class Polytopes:
    """Backend (see the module docstring). geo = [X (B, K, d), n (B,), inc (B, K) uint64, flab (B, 64) int32,
    D (B, K) vertex error bounds (max-norm, :mod:`piecewise.numerics`)]."""

    KAXIS = (True, False, True, False, True)
    PAD = (0.0, 0, np.uint64(0), NOLAB, 0.0)
    KERNEL = "polytope"  # elementwise stages run in the compiled kernel when it is built (_ckernel)

    @staticmethod
    def bytes_per_cell(d):
        K = 3 * 2**min(d, 4)
        return K * (8 * d + 16) + 4 * F + 64

    @staticmethod
    def init(d):
        if d > 16:
            raise PiecewiseError(f"the exact engine handles boxes up to 16 inputs, got {d}: use the grid method")
        X, inc, flab = _cube(d)
        return [X[None], np.array([len(X)]), inc[None], flab[None], np.zeros((1, len(X)))]

    @staticmethod
    def vertex_labels(geo, b, k):
        """The labels of the facet slots vertex k of cell b lies on (d independent ones among them define it)."""
        inc, flab = int(geo[2][b, k]), geo[3][b]
        return [int(flab[s]) for s in range(F) if (inc >> s) & 1 and flab[s] != NOLAB]

    @staticmethod
    def clip(geo, f, tol, cls, sure, ids, aux, block: int = 2048):
        """Split polytopes (see the module docstring); cells in blocks of similar vertex count, each block
        padded only to its own largest count (the pair test is quadratic in it). ``aux``: the exact crossing of
        an edge whose end points float64 could not classify (``aux.exact(b, labels)``), the float hyperplanes
        of labels and of the cut (for the new vertices' error bounds)."""
        n = geo[1]
        if len(n) <= block and n.max() == geo[0].shape[1]:
            return _clip(geo, f, tol, cls, sure, ids, aux)
        order = np.argsort(n, kind="stable")
        plus, minus = [], []
        for s in range(0, len(n), block):
            o = order[s:s + block]
            K = int(n[o].max())
            sub = type(aux)(lambda b, labs, o=o: aux.exact(o[b], labs), aux.planes, tuple(a[o] for a in aux.cut))
            p, m = _clip([a[o, :K] if ka else a[o] for a, ka in zip(geo, Polytopes.KAXIS)], f[o, :K], tol[o, :K],
                         cls[o, :K], sure[o, :K], ids[o], sub)
            plus.append(p)
            minus.append(m)
        from .buffers import concat_geo

        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        P = concat_geo(plus, Polytopes.KAXIS, Polytopes.PAD)
        M = concat_geo(minus, Polytopes.KAXIS, Polytopes.PAD)
        return [a[inv] for a in P], [a[inv] for a in M]


def _clip(geo, f, tol, cls, sure, ids, aux):
    X, n, inc, flab, D = geo
    B, K, d = X.shape
    valid = np.arange(K)[None, :] < n[:, None]
    pos = valid & (cls > 0)
    neg = valid & (cls < 0)
    zero = valid & (cls == 0)
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
    Xi, Xj = X[bi, i], X[bi, j]
    Xn = Xi + t[:, None] * (Xj - Xi)
    Dn = _new_vertex_error(Xn, bi, cm, flab, aux) if len(bi) else np.zeros(0)
    unsure = ~(sure[bi, i] & sure[bi, j])
    for r in np.nonzero(unsure)[0].tolist():
        b, c = int(bi[r]), int(cm[r])
        labs = [int(flab[b, s]) for s in range(F) if (c >> s) & 1 and flab[b, s] != NOLAB]
        Xn[r], Dn[r] = aux.exact(b, labs)
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
        D2 = np.zeros((B, K2))
        b0, k0 = np.nonzero(keep)
        p0 = (np.cumsum(keep, 1) - 1)[b0, k0]
        X2[b0, p0] = X[b0, k0]
        I2[b0, p0] = inc_z[b0, k0]
        D2[b0, p0] = D[b0, k0]
        p1 = nk[bi] + rank
        X2[bi, p1] = Xn
        I2[bi, p1] = incn
        D2[bi, p1] = Dn
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
        out.append([X2, n2, I2, fl, D2])
    return out


def _new_vertex_error(Xn, bi, cm, flab, aux):
    """Error bounds of new vertices Xn (m, d) on the edges with common facets cm (m,) of cells bi (m,): from
    the residuals of those facets' hyperplanes and the cut's (:func:`piecewise.numerics.residual_bound`)."""
    bits = _bits(cm)  # (m, 64)
    labs = np.where(bits, flab[bi], NOLAB)
    bits &= labs != NOLAB
    R = int(bits.sum(1).max()) if len(bi) else 0
    # the facets' labels first (in slot order), padded, then the cut
    order = np.argsort(~bits, axis=1, kind="stable")[:, :R]
    lab = np.take_along_axis(labs, order, 1)
    valid = np.take_along_axis(bits, order, 1)
    g, e, dg, de = aux.planes(np.where(valid, lab, -1))
    cg, ce, cdg, cde = (a[bi] for a in aux.cut)
    G = np.concatenate([g, cg[:, None]], 1)
    E = np.concatenate([e, ce[:, None]], 1)
    DG = np.concatenate([dg, cdg[:, None]], 1)
    DE = np.concatenate([de, cde[:, None]], 1)
    ok = np.concatenate([valid, np.ones((len(bi), 1), bool)], 1)
    return residual_bound(Xn, G, E, DG, DE, ok)


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


_PAIR_CHUNK = 1 << 18  # candidate (-, +) pairs per box-test chunk: temporaries of a few MB each
_ELEM_CHUNK = 1 << 21  # elements (rows x K x d, or x 64) per chunk of the per-cell / per-facet passes
_SWEEP_ROWS = 32  # minus facets per block of the sweep over a large label group


def _facet_entries(X, n, inc, flab):
    """The facets of every cell: (ci, si) (cell, slot) of slots tight at >= d valid vertices with an event
    label (box facets excluded), and the vertex centroids of the cells; computed in blocks of cells."""
    C, K, d = X.shape
    step = max(1, _ELEM_CHUNK // max(K * max(F, d), 1))
    facet = np.empty((C, F), bool)
    cen = np.empty((C, d))
    for c0 in range(0, C, step):
        sl = slice(c0, c0 + step)
        valid = np.arange(K)[None, :] < n[sl, None]
        facet[sl] = _bits(np.where(valid, inc[sl], np.uint64(0))).sum(1) >= d
        cen[sl] = (X[sl] * valid[..., None]).sum(1) / n[sl, None]
    facet &= flab >= 0
    ci, si = np.nonzero(facet)
    return ci, si, cen


def _facet_mask(n, inc, c, s):
    """Which valid vertices of cell c lie on its slot s: bool (K,) (rows of cells c and slots s if arrays)."""
    K = inc.shape[1]
    c, s = np.asarray(c), np.asarray(s)
    on = ((inc[c] >> s.astype(np.uint64)[..., None]) & _ONE).astype(bool)
    return on & (np.arange(K) < np.asarray(n[c])[..., None])


def _facet_boxes(X, n, inc, ci, si):
    """Bounding boxes (lo, hi), (E, d) each, of the facets (ci, si): over the facets' own vertices (every
    facet has at least d of them), in blocks of facets."""
    E = len(ci)
    C, K, d = X.shape
    lo, hi = np.empty((E, d)), np.empty((E, d))
    step = max(1, _ELEM_CHUNK // max(K, 1))
    for e0 in range(0, E, step):
        sl = slice(e0, e0 + step)
        r, k = np.nonzero(_facet_mask(n, inc, ci[sl], si[sl]))  # row-major: grouped by facet
        V = X[ci[sl][r], k]
        start = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        if len(start) != len(ci[sl]):
            raise RuntimeError("internal error: a facet without vertices")
        lo[sl] = np.minimum.reduceat(V, start, axis=0)
        hi[sl] = np.maximum.reduceat(V, start, axis=0)
    return lo, hi


def _boxes_meet(lo_a, hi_a, lo_b, hi_b):
    """The bounding-box test of candidate pairs (rows of a against rows of b, broadcasting)."""
    return np.all((np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b)) > -U_ATOL, -1)


def _small_groups_pairs(groups, lo, hi):
    """All (-, +) pairs of several small label groups ``(s0, m, s1)`` (minus rows s0..m-1, plus rows
    m..s1-1 of the sorted facet list), vectorised, keeping those whose boxes meet: (a, b) row indices."""
    s0, m, s1 = (np.asarray(x, np.int64) for x in zip(*groups))
    p = s1 - m
    cnt = (m - s0) * p
    g = np.repeat(np.arange(len(cnt)), cnt)
    t = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    a = s0[g] + t // p[g]
    b = m[g] + t % p[g]
    ok = _boxes_meet(lo[a], hi[a], lo[b], hi[b])
    return a[ok], b[ok]


def _width_classes(rows, lo, hi, k):
    """``rows`` split by the width of their boxes along axis k (factors of two around the median, at most
    11 classes), each sorted by lo[:, k]: [(rows, lo[rows, k], largest width)]."""
    w = hi[rows, k] - lo[rows, k]
    med = max(float(np.median(w)), 1e-300)
    cls = np.clip(np.floor(np.log2(np.maximum(w, med / 32)) - np.log2(med)), -4, 6)
    out = []
    for v in np.unique(cls):
        r = rows[cls == v]
        r = r[np.argsort(lo[r, k], kind="stable")]
        out.append((r, lo[r, k], float((hi[r, k] - lo[r, k]).max())))
    return out


def _big_group_pairs(s0, m, s1, lo, hi):
    """The (-, +) pairs of one large label group whose boxes meet, without forming all of them: a sweep
    along the axis where the facets are narrowest. Both sides are split into classes of similar width
    along it and sorted by their low end; blocks of minus rows are tested only against the window of each
    plus class that can reach them along that axis (conservatively: the window is wider than the test's
    tolerance and rounding), with the exact box test, in chunks of at most ``_PAIR_CHUNK`` pairs; yields
    (a, b) row indices chunk by chunk."""
    grp = slice(s0, s1)
    span = np.maximum(hi[grp].max(0) - lo[grp].min(0), 0.0)
    width = (hi[grp] - lo[grp]).mean(0)
    k = int(np.argmax(span / np.maximum(width, 1e-9)))
    scale = max(1.0, float(np.abs(lo[grp]).max()), float(np.abs(hi[grp]).max()))
    margin = 4 * U_ATOL + 16 * np.finfo(float).eps * scale  # more than the test's tolerance and rounding
    plus = _width_classes(np.arange(m, s1), lo, hi, k)
    for A, _, _ in _width_classes(np.arange(s0, m), lo, hi, k):
        for r0 in range(0, len(A), _SWEEP_ROWS):
            ar = A[r0:r0 + _SWEEP_ROWS]
            lo_min, hi_max = lo[ar, k].min() - margin, hi[ar, k].max() + margin
            cols = max(1, _PAIR_CHUNK // len(ar))
            for B, lob, W in plus:
                # along k a plus box meets a row's only if lo_b <= hi_a and lo_a <= hi_b <= lo_b + W
                w0 = int(np.searchsorted(lob, lo_min - W, side="left"))
                w1 = int(np.searchsorted(lob, hi_max, side="right"))
                for c0 in range(w0, w1, cols):
                    bc = B[c0:min(c0 + cols, w1)]
                    i, j = np.nonzero(_boxes_meet(lo[ar, None], hi[ar, None], lo[None, bc], hi[None, bc]))
                    yield ar[i], bc[j]


def _candidate_pairs(lab, side, lo, hi):
    """Row pairs (a, b) of the facet list (sorted by label, then side) with the same label, a on the - side
    and b on the + side, whose bounding boxes meet, yielded in chunks: small label groups several at a
    time, all their pairs formed at once; large ones by :func:`_big_group_pairs`. Memory stays bounded
    whatever the group sizes."""
    bounds = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1], True])
    s0, s1 = bounds[:-1], bounds[1:]
    m = s0 + np.add.reduceat((~side).astype(np.int64), s0) if len(s0) else s0
    both = (m > s0) & (m < s1)
    s0, m, s1 = s0[both], m[both], s1[both]
    cnt = (m - s0) * (s1 - m)
    batch, total = [], 0
    for g0, g1, g2, c in zip(s0.tolist(), m.tolist(), s1.tolist(), cnt.tolist()):
        if c > _PAIR_CHUNK // 4:
            yield from _big_group_pairs(g0, g1, g2, lo, hi)
            continue
        if batch and total + c > _PAIR_CHUNK:
            yield _small_groups_pairs(batch, lo, hi)
            batch, total = [], 0
        batch.append((g0, g1, g2))
        total += c
    if batch:
        yield _small_groups_pairs(batch, lo, hi)


def adjacency_nd(X, n, inc, flab, events, keep=None) -> np.ndarray:
    """Pairs (i, j), i < j, of cells sharing a facet (a common face of dimension d - 1). Candidates carry a
    facet with the same label on opposite sides and the two facets' bounding boxes meet; ``keep(pairs) ->
    bool`` filters them before the exact test (linear regions pass the gradient test, so the LPs run only
    where they can matter).

    Memory stays bounded however many pieces a label's facet was cut into: the boxes are computed once per
    facet, the (-, +) pairs of a label are formed in chunks (large groups by a sweep along one axis), and
    the vertex masks of the two facets only for the pairs that reach the exact test."""
    ci, si, cen = _facet_entries(X, n, inc, flab)
    if not len(ci):
        return np.zeros((0, 2), np.int64)
    lab = flab[ci, si].astype(np.int64)
    g, e = events.plane(lab)
    side = np.einsum("pd,pd->p", cen[ci], g) + e > 0
    order = np.lexsort((side, lab))
    ci, si, lab, side = ci[order], si[order], lab[order], side[order]
    lo, hi = _facet_boxes(X, n, inc, ci, si)
    # the candidates through keep, in chunks of about _PAIR_CHUNK pairs
    kept, buf, nbuf = [], [], 0

    def flush():
        a = np.concatenate([x for x, _ in buf])
        b = np.concatenate([y for _, y in buf])
        if keep is not None and len(a):
            k = np.asarray(keep(np.stack([ci[a], ci[b]], 1)), bool)
            a, b = a[k], b[k]
        kept.append((a, b))

    for a, b in _candidate_pairs(lab, side, lo, hi):
        buf.append((a, b))
        nbuf += len(a)
        if nbuf >= _PAIR_CHUNK:
            flush()
            buf, nbuf = [], 0
    if buf:
        flush()
    if not kept:
        return np.zeros((0, 2), np.int64)
    a = np.concatenate([x for x, _ in kept])
    b = np.concatenate([y for _, y in kept])
    pairs = np.stack([ci[a], ci[b]], 1)
    found = set()
    for (ca, cb), ra, rb in zip(pairs.tolist(), a.tolist(), b.tolist()):
        key = (ca, cb) if ca < cb else (cb, ca)
        if key in found:  # already adjacent through another label: its answer cannot change
            continue
        fa = _facet_mask(n, inc, ca, si[ra])
        fb = _facet_mask(n, inc, cb, si[rb])
        if _facets_overlap(X, n, inc, flab, events, ca, cb, lab[ra], fa, fb):
            found.add(key)
    if not found:
        return np.zeros((0, 2), np.int64)
    return np.array(sorted(found), np.int64)


def _facets_overlap(X, n, inc, flab, events, a, b, L, fa, fb) -> bool:
    """Whether the facets on label L of cells a and b overlap in dimension d - 1: they share d affinely
    independent vertices, or the largest ball inside both (within L's hyperplane) has a positive radius
    relative to the facets' size (one LP, SciPy HiGHS, in coordinates centred and scaled to the two facets,
    so the answer does not depend on the domain's scale). An LP that fails is retried with HiGHS's other
    methods; if all fail the count is refused with the solver's message (never a silent "no")."""
    d = X.shape[2]
    Va, Vb = X[a][fa], X[b][fb]
    pts = np.concatenate([Va, Vb])
    x0 = pts.mean(0)
    scale = float(np.abs(pts - x0).max()) or 1.0
    Ya, Yb = (Va - x0) / scale, (Vb - x0) / scale
    # shortcut: d common vertices spanning the facet's hyperplane -> both contain their simplex
    dist = np.abs(Ya[:, None, :] - Yb[None, :, :]).max(-1)
    common = Ya[(dist <= 1e-12).any(1)]
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
    c = np.concatenate(rhs) - A @ x0
    A = A * scale
    nrm = np.maximum(np.linalg.norm(A, axis=1), 1e-300)
    A, c = A / nrm[:, None], c / nrm
    g, e = events.plane(np.array([L]))
    ge = g[0] * scale
    gn = max(float(np.linalg.norm(ge)), 1e-300)
    beq = (-e[0] - g[0] @ x0) / gn
    msg = ""
    for method in ("highs", "highs-ds", "highs-ipm"):
        res = linprog(np.r_[np.zeros(d), -1.0], A_ub=np.c_[A, np.ones(len(A))], b_ub=c,
                      A_eq=np.r_[ge / gn, 0.0][None], b_eq=[beq], bounds=[(None, None)] * d + [(None, 1.0)],
                      method=method)
        if res.status == 0:
            return bool(-res.fun > 1e-9)
        if res.status == 2:  # infeasible: the facets do not meet
            return False
        msg = res.message
    raise PiecewiseError(f"the linear program deciding whether two cells share a facet failed ({msg}): linear regions "
                         "cannot be counted for this complex")
