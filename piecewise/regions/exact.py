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
from tqdm.auto import tqdm  # at import time: a cold count's ``seconds`` measure the enumeration, not imports

from ..errors import PiecewiseError
from ..numerics import U_ATOL
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


def edge_crossings(V, n, f, tol):
    """Where the zero set of an affine function meets the edges of polygons: V (B, K, 2), f (B, K) values
    at the vertices, tol (B, 1). Returns (fz, cross, X): values with |f| <= tol set to 0, whether edge k
    crosses zero strictly, and the crossing points (B, K, 2)."""
    K = f.shape[1]
    valid = np.arange(K)[None, :] < n[:, None]
    fz = np.where(np.abs(f) <= tol, 0.0, f)
    nxt = ring_next(n, K)
    fn = np.take_along_axis(fz, nxt, 1)
    cross = valid & (fz * fn < 0)
    t = np.where(cross, fz / np.where(cross, fz - fn, 1.0), 0.0)
    Vn = np.take_along_axis(V, nxt[..., None], 1)
    return fz, cross, V + t[..., None] * (Vn - V)


class _Poly2D:
    """Backend: convex polygons. geo = [V (B, K, 2), n (B,), L (B, K) int32 edge labels]."""

    KAXIS = (True, False, True)
    PAD = (0.0, 0, NOLAB)
    KERNEL = "polygon"  # elementwise stages run in the compiled kernel when it is built (_ckernel)

    @staticmethod
    def bytes_per_cell(d):
        return 16 * 32 + 8 * 4 + 200

    @staticmethod
    def init(d):
        V = np.array([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])
        L = np.array([[-2, -3, -4, -1]], np.int32)  # u1 = 0, u0 = 1, u1 = 1, u0 = 0 (see _engine.Events)
        return [V, np.array([4]), L]

    @staticmethod
    def clip(geo, f, tol, ids):
        """Split polygons by the zero set of f: the part where f >= 0 and the part where f <= 0 (|f| <= tol
        counts as 0). Returns (plus geo, minus geo), counter-clockwise, at most n + 2 vertices; the new
        edge along the cut carries the label ``ids`` (B,), the others keep their edge's label."""
        V, n, L = geo
        B, K = f.shape
        tol = np.reshape(tol, (B, 1))
        valid = np.arange(K)[None, :] < n[:, None]
        fz, cross, X = edge_crossings(V, n, f, tol)
        pts = np.stack([V, X], 2).reshape(B, 2 * K, 2)
        src = np.repeat(np.arange(K), 2)
        on_cut = np.stack([fz == 0, np.ones_like(cross)], -1).reshape(B, 2 * K)
        # both pieces in one pass: rows [0, B) are the + pieces, [B, 2B) the - pieces
        keep = np.concatenate([valid & (fz >= 0), valid & (fz <= 0)])
        mask = np.stack([keep, np.concatenate([cross, cross])], -1).reshape(2 * B, 2 * K)
        pos = np.cumsum(mask, 1) - 1
        n2 = mask.sum(1)
        K2 = max(int(n2.max()) if B else 0, 1)
        Vo = np.zeros((2 * B, K2, 2))
        oc = np.zeros((2 * B, K2), bool)
        so = np.zeros((2 * B, K2), np.intp)
        bi, si = np.nonzero(mask)
        pi = pos[bi, si]
        b0 = bi % B if B else bi
        Vo[bi, pi] = pts[b0, si]
        oc[bi, pi] = on_cut[b0, si]
        so[bi, pi] = src[si]
        ocn = np.take_along_axis(oc, ring_next(n2, K2), 1)
        L2 = np.concatenate([L, L])
        Lo = np.where(oc & ocn, np.concatenate([ids, ids])[:, None].astype(np.int32), np.take_along_axis(L2, so, 1))
        Lo[np.arange(K2)[None, :] >= n2[:, None]] = NOLAB
        return [[Vo[:B], n2[:B], Lo[:B]], [Vo[B:], n2[B:], Lo[B:]]]


class _Seg1D:
    """Backend: intervals. geo = [V (B, 2, 1), n (B,)] with n = 2."""

    KAXIS = (False, False)
    PAD = (0.0, 0)

    @staticmethod
    def bytes_per_cell(d):
        return 200

    @staticmethod
    def init(d):
        return [np.array([[[0.0], [1.0]]]), np.array([2])]

    @staticmethod
    def clip(geo, f, tol, ids):
        V, n = geo
        tol = np.reshape(tol, -1)
        fz = np.where(np.abs(f) <= tol[:, None], 0.0, f)
        f0, f1 = fz[:, 0], fz[:, 1]
        cross = f0 * f1 < 0
        t = np.where(cross, f0 / np.where(cross, f0 - f1, 1.0), 0.0)
        x = V[:, 0, 0] + t * (V[:, 1, 0] - V[:, 0, 0])
        out = []
        for g0, g1 in ((f0, f1), (-f0, -f1)):
            lo = np.where(cross & (g0 < 0), x, V[:, 0, 0])
            hi = np.where(cross & (g1 < 0), x, V[:, 1, 0])
            out.append([np.stack([lo, hi], 1)[..., None], n.copy()])
        return out


def adjacency_1d(V) -> np.ndarray:
    """Pairs of intervals sharing an end point (the intervals tile the segment): (P, 2), i < j."""
    order = np.argsort(V[:, 0, 0], kind="stable")
    pairs = np.stack([order[:-1], order[1:]], 1)
    return np.sort(pairs, 1)


def edge_overlaps(V, n, L, events):
    """Pieces of boundary shared by two polygons: ``(cells (P, 2), lo (P,), hi (P,), label (P,))`` with the
    shared segment ``[lo, hi]`` along the label's line (parameter of :func:`line_point`).

    Edges with the same label lie on one line (the event's, from ``events``); along it the edges of the
    cells on each side tile the event's segment, so every edge overlaps the other side's edge that is
    active at its start (the last one starting at or before it) or one that starts inside it -- which finds
    the first. One sort, no pairwise search."""
    K = V.shape[1]
    has = (np.arange(K)[None, :] < n[:, None]) & (L >= 0)
    ci, ki = np.nonzero(has)
    empty = (np.zeros((0, 2), np.int64), np.zeros(0), np.zeros(0), np.zeros(0, np.int64))
    if not len(ci):
        return empty
    lab = L[ci, ki].astype(np.int64)
    a = V[ci, ki]
    b = V[ci, ring_next(n, K)[ci, ki]]
    direc = _line_dir(events, lab)
    t0 = np.einsum("ij,ij->i", a, direc)
    t1 = np.einsum("ij,ij->i", b, direc)
    side = t1 > t0
    lo, hi = np.minimum(t0, t1), np.maximum(t0, t1)
    keep = hi - lo > U_ATOL
    ci, lab, side, lo, hi = ci[keep], lab[keep], side[keep], lo[keep], hi[keep]
    order = np.lexsort((lo, lab))
    ci, lab, side, lo, hi = ci[order], lab[order], side[order], lo[order], hi[order]
    idx = np.arange(len(ci))
    start = np.maximum.accumulate(np.where(np.r_[True, lab[1:] != lab[:-1]], idx, 0))
    last_a = np.maximum.accumulate(np.where(side, idx, -1))
    last_b = np.maximum.accumulate(np.where(~side, idx, -1))
    other = np.where(side, last_b, last_a)
    ok = other >= start
    i, o = idx[ok], other[ok]
    slo, shi = np.maximum(lo[i], lo[o]), np.minimum(hi[i], hi[o])
    good = (shi - slo > U_ATOL) & (ci[i] != ci[o])
    i, o = i[good], o[good]
    return np.sort(np.stack([ci[i], ci[o]], 1), 1), slo[good], shi[good], lab[i]


def _line_dir(events, lab):
    g, _ = events.plane(lab)
    direc = np.stack([-g[:, 1], g[:, 0]], 1)
    return direc / np.maximum(np.linalg.norm(direc, axis=1, keepdims=True), 1e-300)


def line_point(events, lab, t):
    """Points at parameter t (P,) along the lines of labels lab (P,) (as in :func:`edge_overlaps`): (P, 2)."""
    g, e = events.plane(lab)
    foot = -(e / np.maximum(np.einsum("ij,ij->i", g, g), 1e-300))[:, None] * g
    return foot + t[:, None] * _line_dir(events, lab)


def adjacency_2d(V, n, L, events) -> np.ndarray:
    """Pairs (i, j), i < j, of polygons sharing a boundary segment of positive length (:func:`edge_overlaps`)."""
    pairs = edge_overlaps(V, n, L, events)[0]
    return np.unique(pairs, axis=0) if len(pairs) else np.zeros((0, 2), np.int64)


def enumerate_cells(net, params, domain: Domain, *, progress: bool | None = None,
                    max_cells: int = 2_000_000, threads: int | None = None) -> CellComplex:
    """Exact activation regions of a piecewise-linear network on ``domain`` (float64).

    Args:
      net, params: an :class:`~piecewise.nets.MLP` and its params (relu, leaky_relu, abs, hardtanh, maxout),
        or a :class:`~piecewise.staged.StagedNet` (any PL network as nonlinear stages: residual adds,
        max-pool windows, per-unit leaky slopes) with ``params=None``.
      domain: :func:`~piecewise.regions.segment`, a 2-D :func:`~piecewise.regions.box` of a 2-input net,
        a :func:`~piecewise.regions.plane` slice of any input dimension, or a box of 3 or more inputs
        (the polytope backend of :mod:`~piecewise.regions.exact_nd`).
      progress: a progress bar over the network's units (None: only for larger nets on a terminal).
      max_cells: refuse (PiecewiseError) rather than exhaust memory past this many cells.
      threads: worker threads of the engine (default 2, the cores of the reference machine; a Dask tile
        task uses 1: each task has one core).
    Returns:
      :class:`~piecewise.regions.cells.CellComplex` (the same type in every dimension). Patterns of an
      MLP are packed as :func:`piecewise.patterns.pack_states` packs them; of a StagedNet, stage after stage
      in the same layout (the state of a max unit is the index of its largest piece, lowest on ties).
    """
    d = domain.dim
    if d >= 3:
        from .exact_nd import Polytopes

        return _enumerate(net, params, domain, Polytopes, "polytope", progress, max_cells, threads)
    return _enumerate(net, params, domain, _Poly2D if d == 2 else _Seg1D, "polygon" if d == 2 else "interval",
                      progress, max_cells, threads)


def _enumerate(net, params, domain, backend, kind, progress, max_cells, threads=None):
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1):
        raise PiecewiseError(f"threads must be a positive integer, got {threads!r}")
    t0 = time.perf_counter()
    staged, P = prepare_exact(net, params, domain)
    d = domain.dim

    n_units = sum(st.width for st in staged.stages)
    big = n_units >= 64
    show = progress if progress is not None else (big and sys.stderr.isatty())
    desc = f"exact cells ({d}-D)"
    if big and show:  # interactive: a cheap grid estimate first, to refuse early and say what to expect
        lower, est = _engine.estimate_cells(staged, domain)
        bpc = backend.bytes_per_cell(d)
        if lower > max_cells:
            raise PiecewiseError(
                f"this domain has at least {lower:,} activation regions (about {est:,} estimated, "
                f"~{est * bpc / 1e9:.1f} GB), more than max_cells={max_cells:,}: use the grid method "
                f"(--method grid), a smaller box, or raise max_cells")
        desc = f"exact cells ({d}-D, ~{est:,} expected)"
    bar = tqdm(total=n_units, desc=desc, unit="unit", leave=False, disable=not show)
    try:
        geo, words, J, c, S, events = _engine.run(staged, domain, backend, max_cells=max_cells, bar=bar, threads=threads)
    finally:
        bar.close()
    return CellComplex.build(net if params is not None else staged, domain, geo, words, J, c, S, events,
                             time.perf_counter() - t0, P, kind)
