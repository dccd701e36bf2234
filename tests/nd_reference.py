"""The first n-D engine, kept as an independent reference for the tests (recursive, one cell at a time,
an SVD per candidate edge): exact enumeration of activation regions of an MLP on a box, in float64.
Use :func:`piecewise.regions.enumerate_cells`; this module is slow and returns only counts, patterns,
vertices and volumes.

Each cell is a convex polytope kept in both representations: inequalities ``A x <= c`` and its vertices,
with the incidence of vertices on inequalities. Splitting by a hyperplane ``f(x) = h.x + e = 0``:
vertices with ``f > tol`` go to the + piece, ``f < -tol`` to the - piece, ``|f| <= tol`` to both, and every
*edge* between a + and a - vertex gives a new vertex on the hyperplane. Two vertices span an edge iff the
inequalities tight at both have rank n - 1 (the algebraic adjacency test; it holds for degenerate,
non-simple polytopes and with redundant inequalities). A unit splits a cell only if some vertex lies
strictly on each side (here: beyond 1e-10 times ``|h|_1 + |e|`` on the unit cube, a float tolerance fit for
the unit-scale nets the tests give it).

Cells are processed depth first, one layer-start cell at a time, so memory stays small.
"""
from __future__ import annotations

import time

import numpy as np

from piecewise.errors import PiecewiseError
from piecewise.nets import MLP, Params
from piecewise.patterns import pack_states
from piecewise.regions.pieces import flat_sides, piece_tables
from piecewise.regions.cells import prepare_exact
from piecewise.regions.domain import Domain


def affine_tol(g, e):
    """The reference's own "zero": 1e-10 (|g|_1 + |e|) for u -> u.g + e on the unit cube."""
    return 1e-10 * (np.abs(g).sum(-1) + np.abs(e))

class _Poly:
    __slots__ = ("A", "c", "X", "inc")

    def __init__(self, A, c, X, inc):
        self.A, self.c, self.X, self.inc = A, c, X, inc  # (r, n), (r,), (m, n), (m, r) bool

    @classmethod
    def cube(cls, n):
        A = np.concatenate([-np.eye(n), np.eye(n)])
        c = np.concatenate([np.zeros(n), np.ones(n)])
        X = np.array(np.meshgrid(*[[0.0, 1.0]] * n, indexing="ij")).reshape(n, -1).T
        return cls(A, c, X, np.abs(X @ A.T - c) <= 1e-12)

    def split(self, f, tol):
        """(+ piece, - piece) for the values f (m,) of an affine function at the vertices; None if empty."""
        n = self.X.shape[1]
        pos, neg = f > tol, f < -tol
        on = ~pos & ~neg
        i, j = np.nonzero(pos[:, None] & neg[None, :])
        new_X = np.zeros((0, n))
        new_inc = np.zeros((0, len(self.c)), bool)
        if len(i):
            common = self.inc[i] & self.inc[j]  # (p, r)
            masked = np.where(common[..., None], self.A[None], 0.0)
            sv = np.linalg.svd(masked, compute_uv=False)  # (p, min(r, n))
            scale = np.maximum(sv[:, :1], 1e-300)
            rank = np.sum(sv > 1e-9 * scale, axis=1)
            edge = rank == n - 1
            i, j, common = i[edge], j[edge], common[edge]
            t = f[i] / (f[i] - f[j])
            new_X = self.X[i] + t[:, None] * (self.X[j] - self.X[i])
            new_inc = common
        # the hyperplane as a new inequality row for each piece; the old rows keep their incidences
        inc_new_row = np.concatenate([on, np.ones(len(new_X), bool)])
        X_all = np.concatenate([self.X, new_X])
        inc_all = np.concatenate([self.inc, new_inc])
        pieces = []
        for keep_old, sign in ((pos | on, 1.0), (neg | on, -1.0)):
            keep = np.concatenate([keep_old, np.ones(len(new_X), bool)])
            # -sign (h.x + e) <= 0 is the new inequality; stored through the caller's (h, e)
            pieces.append((X_all[keep], np.c_[inc_all[keep], inc_new_row[keep]], sign))
        return pieces


def _row_of(h, e, sign):
    """Inequality row for sign * (h.x + e) >= 0  <=>  -sign h.x <= sign e."""
    return -sign * h, sign * e


def _prune(poly: _Poly) -> _Poly:
    """Drop inequalities tight at fewer than n vertices (not facets): keeps the description small."""
    n = poly.X.shape[1]
    keep = poly.inc.sum(0) >= n
    return _Poly(poly.A[keep], poly.c[keep], poly.X, poly.inc[:, keep])


def _cut(poly: _Poly, h, e, tol):
    """Split poly by h.x + e = 0 if some vertex is strictly on each side: list of (piece, side) or None."""
    f = poly.X @ h + e
    if not (np.any(f > tol) and np.any(f < -tol)):
        return None
    out = []
    for X, inc, sign in poly.split(f, tol):
        a, b = _row_of(h, e, sign)
        out.append((_prune(_Poly(np.vstack([poly.A, a]), np.append(poly.c, b), X, inc)), 1 if sign > 0 else 0))
    return out


def _keep_positive(poly: _Poly, h, e, tol):
    """The part of poly where h.x + e >= 0: poly itself, a piece, or None (no interior)."""
    f = poly.X @ h + e
    if not np.any(f > tol):
        return None
    if not np.any(f < -tol):
        return poly
    X, inc, sign = poly.split(f, tol)[0]
    a, b = _row_of(h, e, 1.0)
    return _prune(_Poly(np.vstack([poly.A, a]), np.append(poly.c, b), X, inc))


def enumerate_cells_reference(net: MLP, params: Params, domain: Domain, *, progress: bool | None = None,
                       max_cells: int = 2_000_000):
    """Exact activation regions of ``net`` on a box (or any affine image of a cube) of dimension >= 1.

    Returns a :class:`~piecewise.regions.cells.CellComplex`. Intended for 3 or 4 inputs and small
    networks (thousands of cells); 1D and 2D domains are faster with :func:`enumerate_cells`.
    """
    t0 = time.perf_counter()
    P = prepare_exact(net, params, domain)[1]
    act = net.activation
    d = domain.dim
    from tqdm.auto import tqdm

    bar = tqdm(desc="exact cells (n-D)", unit="cell", leave=False,
               disable=(not progress) if progress is not None else None)
    cells = []

    def recurse(poly, layer, M, m, states):
        if layer == len(P) - 1:
            if len(cells) >= max_cells:
                raise PiecewiseError(f"more than max_cells={max_cells:,} cells: use a smaller domain or the grid method")
            cells.append((poly, states, M @ P[-1][0], m @ P[-1][0] + P[-1][1]))
            bar.update(1)
            return
        W, b = P[layer]
        if W.ndim == 3:  # maxout
            G = np.einsum("dn,nwk->dwk", M, W)
            E = np.einsum("n,nwk->wk", m, W) + b
            items = [(poly, [])]
            for j in range(W.shape[1]):
                nxt = []
                for pc, lab in items:
                    k = W.shape[2]
                    for i in range(k):
                        piece = pc
                        for jj in range(k):
                            if jj == i or piece is None:
                                continue
                            h, e = G[:, j, i] - G[:, j, jj], E[j, i] - E[j, jj]
                            tol = affine_tol(h, e)
                            f = piece.X @ h + e
                            if not np.any(f > tol) and not np.any(f < -tol):  # tie on the whole cell
                                piece = piece if jj > i else None
                            else:
                                piece = _keep_positive(piece, h, e, tol)
                        if piece is not None:
                            nxt.append((piece, lab + [i]))
                items = nxt
            for pc, lab in items:
                s = np.array(lab, np.int32)
                idx = np.arange(W.shape[1])
                recurse(pc, layer + 1, G[:, idx, s], E[idx, s], states + [s])
            return
        G, E = M @ W, m @ W + b
        bps = act.breakpoints
        flat = flat_sides(act)
        S_tab, K_tab = piece_tables(act, W.shape[1])
        items = [(poly, {})]
        for j in range(W.shape[1]):
            for q, bp in enumerate(bps):
                tol = affine_tol(G[:, j], E[j] - bp)
                nxt = []
                for pc, side in items:
                    cut = _cut(pc, G[:, j], E[j] - bp, tol)
                    if cut is None:
                        nxt.append((pc, side))
                    else:
                        nxt.extend((piece, {**side, (j, q): sd}) for piece, sd in cut)
                items = nxt
        for pc, side in items:
            s = np.zeros(W.shape[1], np.int32)
            for j in range(W.shape[1]):
                for q, bp in enumerate(bps):
                    if (j, q) in side:
                        s[j] += side[(j, q)]
                        continue
                    tol = affine_tol(G[:, j], E[j] - bp)
                    f = pc.X @ G[:, j] + E[j] - bp
                    s[j] += 1 if f.max() > tol else (0 if f.min() < -tol else flat[q])
            slope = S_tab[s, np.arange(len(s))]
            const = K_tab[s, np.arange(len(s))]
            recurse(pc, layer + 1, G * slope, E * slope + const, states + [s])

    recurse(_Poly.cube(d), 0, domain.axes, domain.origin, [])
    bar.close()
    return PolytopeComplex.build(net, domain, cells, time.perf_counter() - t0, tuple(P))


class PolytopeComplex:
    """Result of the reference engine: per cell its vertices (u), pattern words and volume (input coordinates)."""

    def __init__(self, net, domain, vertices_u, patterns, jacobian_u, offset, measure, seconds, params, halfspaces):
        self.net, self.domain, self.params = net, domain, params
        self.halfspaces = halfspaces  # per cell (A, c): A u <= c in the cube's coordinates
        self.vertices_u, self.patterns = vertices_u, patterns
        self.jacobian_u, self.offset, self.measure, self.seconds = jacobian_u, offset, measure, seconds

    @classmethod
    def build(cls, net, domain, cells, seconds, params):
        from scipy.spatial import ConvexHull

        d = domain.dim
        vol_u = []
        for poly, _, _, _ in cells:
            if d == 1:
                vol_u.append(float(np.ptp(poly.X[:, 0])))
            else:
                vol_u.append(float(ConvexHull(poly.X).volume))
        states = [np.stack([s[layer] for _, s, _, _ in cells]) for layer in range(net.depth)] if cells else []
        words = pack_states(net, states, np) if states else np.zeros((len(cells), 1), np.uint32)
        uniq = np.unique(np.ascontiguousarray(words).view(np.dtype((np.void, 4 * words.shape[1]))))
        if len(uniq) != len(cells):
            raise RuntimeError(f"internal error: {len(cells) - len(uniq)} duplicate patterns among {len(cells)} cells")
        return cls(net, domain, [poly.X for poly, _, _, _ in cells], words,
                   np.stack([J for _, _, J, _ in cells]), np.stack([c for _, _, _, c in cells]),
                   np.asarray(vol_u) * domain.measure(), seconds, params, [(p.A, p.c) for p, _, _, _ in cells])

    @property
    def regions(self) -> int:
        return len(self.vertices_u)
