"""Exact enumeration of activation regions on segments (1D) and 2D boxes / plane slices.

The domain is parametrised by ``u`` in [0, 1]^d (see :mod:`.domain`). Cells are convex polygons
(intervals in 1D) in ``u``. Starting from the whole domain, layer by layer and unit by unit, every cell
that a unit's boundary crosses is split along it, exactly, in float64:

* relu, leaky_relu, abs: the line ``z = 0``; hardtanh: the lines ``z = -1`` and ``z = 1``;
* maxout (rank k): for each piece ``i`` the part of the cell where ``z_i >= z_j`` for all ``j``
  (clipping by the k - 1 half-planes; a tie that holds on the whole cell goes to the lowest index).

Inside a cell every pre-activation is affine in ``u``, so the values at the cell's vertices decide
everything. **A unit splits a cell only if some vertex is strictly on each side**: beyond
``rtol(float64) * (|g|_1 + |e|)`` for the cell's affine function ``u -> u.g + e`` (a bound on its size over
the unit parameter cube; :mod:`piecewise.numerics`). A boundary
through a vertex, along an edge, along the box's edge, several boundaries through one point, dead units,
duplicate or parallel units, and pre-activations that are identically on a breakpoint over a whole cell
(then the state *at* the breakpoint is taken) are therefore counted right without special cases.

After the last layer each cell carries its activation pattern, its vertices, its area and the network's
affine map on it. Activation regions are convex, so one cell = one region; the engine checks that no
two cells share a pattern.
"""
from __future__ import annotations

import time

import numpy as np

from ..errors import PiecewiseError
from ..nets import MLP, Params
from ..numerics import rtol
from ..patterns import pack_states
from .cells import CellComplex, prepare_exact
from .domain import Domain


def _clip2d(V, n, f, tol):
    """Split convex polygons by the zero set of f: the part where f >= 0 and the part where f <= 0
    (|f| <= tol counts as 0). V (B, K, 2) counter-clockwise vertices, n (B,) vertex counts, f (B, K) values
    at the vertices, tol (B, 1). Returns ((V+, n+), (V-, n-)), counter-clockwise, at most n + 2 vertices."""
    B, K = f.shape
    k = np.arange(K)
    valid = k[None, :] < n[:, None]
    fz = np.where(np.abs(f) <= tol, 0.0, f)
    nxt = np.where(k[None, :] + 1 < n[:, None], k[None, :] + 1, 0)
    fn = np.take_along_axis(fz, nxt, 1)
    cross = valid & (fz * fn < 0)
    t = np.where(cross, fz / np.where(cross, fz - fn, 1.0), 0.0)
    Vn = np.take_along_axis(V, nxt[..., None], 1)
    pts = np.stack([V, V + t[..., None] * (Vn - V)], 2).reshape(B, 2 * K, 2)
    out = []
    for keep in (valid & (fz >= 0), valid & (fz <= 0)):
        mask = np.stack([keep, cross], -1).reshape(B, 2 * K)
        pos = np.cumsum(mask, 1) - 1
        n2 = mask.sum(1)
        Vo = np.zeros((B, max(int(n2.max()) if B else 0, 1), 2))
        bi, si = np.nonzero(mask)
        Vo[bi, pos[bi, si]] = pts[bi, si]
        out.append((Vo, n2))
    return out


def _clip1d(V, n, f, tol):
    """Split intervals [V0, V1] (V (B, 2, 1)) where f changes sign: ((V+, n), (V-, n))."""
    fz = np.where(np.abs(f) <= tol, 0.0, f)
    f0, f1 = fz[:, 0], fz[:, 1]
    cross = f0 * f1 < 0
    t = np.where(cross, f0 / np.where(cross, f0 - f1, 1.0), 0.0)
    x = V[:, 0, 0] + t * (V[:, 1, 0] - V[:, 0, 0])
    out = []
    for g0, g1 in ((f0, f1), (-f0, -f1)):
        lo = np.where(cross & (g0 < 0), x, V[:, 0, 0])
        hi = np.where(cross & (g1 < 0), x, V[:, 1, 0])
        out.append((np.stack([lo, hi], 1)[..., None], n.copy()))
    return out


class _State:
    """Cells during enumeration, in buffers with spare capacity (grown by doubling, outside any loop over
    cells): vertices V (cap, K, d), counts n, ``parent`` (the cell at the start of the current layer, whose
    affine maps the cell shares), ``side`` (per unit and breakpoint of the current layer: the side fixed by
    a split, or -1) and ``lab`` (maxout labels). Rows ``[:size]`` are live."""

    def __init__(self, V, n, max_cells: int):
        self.max_cells = max_cells
        self.reset(V, n, np.arange(len(n)), np.zeros((len(n), 0), np.int32))

    def reset(self, V, n, parent, lab):
        self.V, self.n, self.parent, self.lab = V, n, parent, lab
        self.side = np.zeros((len(n), 0), np.int8)
        self.size = len(n)

    def live(self):
        s = self.size
        return self.V[:s], self.n[:s], self.parent[:s]

    def new_layer(self, n_side_cols: int):
        s = self.size
        self.reset(self.V[:s], self.n[:s], np.arange(s), np.zeros((s, 0), np.int32))
        self.side = np.full((s, n_side_cols), -1, np.int8)

    def _reserve(self, extra: int, K: int):
        cap, Kc = len(self.n), self.V.shape[1]
        need = self.size + extra
        if need <= cap and K <= Kc:
            return
        if need > self.max_cells:
            raise PiecewiseError(f"more than max_cells={self.max_cells:,} cells (about 3.4 kB each): count on a smaller "
                                 f"domain, raise max_cells, or use the grid method")
        cap2, K2 = (max(need, 2 * cap) if need > cap else cap), max(K, Kc)
        V = np.zeros((cap2, K2, self.V.shape[2]))
        V[: self.size, :Kc] = self.V[: self.size]
        grow = lambda a: np.concatenate([a[: self.size], np.zeros((cap2 - self.size, *a.shape[1:]), a.dtype)])
        self.V, self.n, self.parent, self.side, self.lab = V, grow(self.n), grow(self.parent), grow(self.side), grow(self.lab)

    def split(self, idx, Vp, n_p, Vm, n_m, col: int):
        """Cells ``idx`` become their + pieces (Vp, n_p); their - pieces (Vm, n_m) are appended."""
        self._reserve(len(idx), max(Vp.shape[1], Vm.shape[1]))
        a = np.arange(self.size, self.size + len(idx))
        self.V[idx] = 0.0
        self.V[idx, : Vp.shape[1]] = Vp
        self.V[a, : Vm.shape[1]] = Vm
        self.n[idx], self.n[a] = n_p, n_m
        self.parent[a] = self.parent[idx]
        self.side[a] = self.side[idx]
        self.lab[a] = self.lab[idx]
        self.side[idx, col], self.side[a, col] = 1, 0
        self.size += len(idx)


def _values(V, g, e):
    """Values at the vertices V (c, K, d) of u -> u.g + e: g (c, d), e (c,) -> (c, K)."""
    f = e[:, None] + V[..., 0] * g[:, 0, None]
    for i in range(1, V.shape[-1]):
        f = f + V[..., i] * g[:, i, None]
    return f


def _split_unit(st: _State, clip, cand, g, e, tol_r, col):
    """Split the cells ``cand`` that the zero set of u -> u.g + e crosses (g (c, d), e (c,) per candidate)."""
    V, n = st.V[cand], st.n[cand]
    f = _values(V, g, e)
    tol = (tol_r * (np.abs(g).sum(-1) + np.abs(e)))[:, None]
    valid = np.arange(f.shape[1])[None, :] < n[:, None]
    crossed = np.any(valid & (f > tol), 1) & np.any(valid & (f < -tol), 1)
    if not crossed.any():
        return
    k = np.nonzero(crossed)[0]
    (Vp, n_p), (Vm, n_m) = clip(V[k], n[k], f[k], tol[k])
    st.split(cand[k], Vp, n_p, Vm, n_m, col)


def _extremes(V, n, G, E, block: int = 4096):
    """Max and min over each cell's vertices of every unit: V (P, K, d), G (P, d, w), E (P, w) -> (P, w) x 2.

    Cells are taken in order of vertex count, each block padded only to its own largest count."""
    hi = np.empty(E.shape)
    lo = np.empty(E.shape)
    order = np.argsort(n, kind="stable")
    for s in range(0, len(n), block):
        idx = order[s:s + block]
        K = int(n[idx].max())
        Vb = V[idx, :K]
        Vb = np.where((np.arange(K)[None, :] < n[idx, None])[..., None], Vb, Vb[:, :1])  # pad with vertex 0
        f = V_dot(Vb, G[idx])
        f += E[idx, None, :]
        hi[idx] = f.max(1)
        lo[idx] = f.min(1)
    return hi, lo


def V_dot(V, G):
    """(P, K, d) x (P, d, w) -> (P, K, w) for small d, without numpy's per-matrix matmul overhead."""
    f = V[:, :, 0, None] * G[:, None, 0, :]
    for i in range(1, V.shape[-1]):
        f += V[:, :, i, None] * G[:, None, i, :]
    return f


def _elementwise_layer(st: _State, clip, act, G, E, tol_r, bar):
    """Split by every unit of an elementwise PL layer; returns the states (C, w) of the cells afterwards.

    A unit can only cross a cell whose layer-start ancestor it crosses, so each unit looks only at the
    descendants of the ancestors it crosses (found with one batched product at the layer start)."""
    bps = act.breakpoints
    nb, w = len(bps), G.shape[-1]
    st.new_layer(w * nb)
    V0, n0, _ = st.live()
    hi0, lo0 = _extremes(V0, n0, G, E)
    gsum = np.abs(G).sum(1)
    tol0 = [tol_r * (gsum + np.abs(E - bp)) for bp in bps]
    cross0 = [(hi0 - bp > t) & (lo0 - bp < -t) for bp, t in zip(bps, tol0)]
    for j in range(w):
        for q, bp in enumerate(bps):
            cand = np.nonzero(cross0[q][st.parent[: st.size], j])[0]
            if len(cand):
                p = st.parent[cand]
                _split_unit(st, clip, cand, G[p, :, j], E[p, j] - bp, tol_r, j * nb + q)
        bar.update(1)
    V, n, p = st.live()
    s = np.zeros((len(n), w), np.int32)
    for q, bp in enumerate(bps):
        # a side fixed by a split is kept; a cell whose ancestor the unit does not cross inherits the
        # ancestor's side; the rest (ancestor crossed, this piece not) lie on one side: look at their vertices.
        # On the breakpoint itself (a flat unit) the state at the breakpoint is taken (above -1, not above 0, 1).
        flat_side = 1 if bp < 0 else 0
        side = st.side[: st.size, q::nb].astype(np.int32)
        anc = np.where(hi0 - bp > tol0[q], 1, np.where(lo0 - bp < -tol0[q], 0, flat_side))
        todo = side < 0
        side = np.where(todo & ~cross0[q][p], anc[p], side)
        ci, uj = np.nonzero(todo & cross0[q][p])
        if len(ci):
            pc = p[ci]
            f = _values(V[ci], G[pc, :, uj], E[pc, uj] - bp)
            t = (tol_r * (np.abs(G[pc, :, uj]).sum(-1) + np.abs(E[pc, uj] - bp)))[:, None]
            valid = np.arange(f.shape[1])[None, :] < n[ci, None]
            up = np.any(valid & (f > t), 1)
            down = np.any(valid & (f < -t), 1)
            side[ci, uj] = np.where(up, 1, np.where(down, 0, flat_side))
        s += side
    return s


def _maxout_unit(st: _State, clip, G, E, tol_r):
    """Split cells by the argmax of one maxout unit: G (P, d, k), E (P, k); appends its label to st.lab."""
    V0, n0, p = st.live()
    lab0 = st.lab[: st.size]
    k = G.shape[-1]
    Vs, ns, parents, labels = [], [], [], []
    for i in range(k):
        V, n, alive = V0, n0, np.ones(len(p), bool)
        for j in range(k):
            if j == i:
                continue
            g = G[p, :, i] - G[p, :, j]
            e = E[p, i] - E[p, j]
            tol = (tol_r * (np.abs(g).sum(-1) + np.abs(e)))[:, None]
            f = np.einsum("ckd,cd->ck", V, g) + e[:, None]
            vmask = np.arange(V.shape[1])[None, :] < n[:, None]
            big = np.any(vmask & (f > tol), 1)
            small = np.any(vmask & (f < -tol), 1)
            flat = ~big & ~small
            alive &= big | (flat & (j > i))  # a tie on the whole cell goes to the lowest index
            cut = alive & big & small
            if cut.any():
                idx = np.nonzero(cut)[0]
                Vc, nc = clip(V[idx], n[idx], f[idx], tol[idx])[0]
                Kn = max(V.shape[1], Vc.shape[1])
                V = np.pad(V, ((0, 0), (0, Kn - V.shape[1]), (0, 0)))
                V[idx] = np.pad(Vc, ((0, 0), (0, Kn - Vc.shape[1]), (0, 0)))
                n = n.copy()
                n[idx] = nc
        a = np.nonzero(alive)[0]
        Vs.append(V[a])
        ns.append(n[a])
        parents.append(p[a])
        labels.append(np.c_[lab0[a], np.full(len(a), i, np.int32)])
    Kn = max(v.shape[1] for v in Vs)
    st.reset(np.concatenate([np.pad(v, ((0, 0), (0, Kn - v.shape[1]), (0, 0))) for v in Vs]),
             np.concatenate(ns), np.concatenate(parents), np.concatenate(labels))


def enumerate_cells(net: MLP, params: Params, domain: Domain, *, progress: bool | None = None,
                    max_cells: int = 2_000_000) -> CellComplex:
    """Exact activation regions of ``net`` on ``domain`` (float64).

    Args:
      net, params: any piecewise-linear activation (relu, leaky_relu, abs, hardtanh, maxout).
      domain: :func:`~piecewise.regions.segment`, a 2D :func:`~piecewise.regions.box` of a 2-input net,
        a :func:`~piecewise.regions.plane` slice of any input dimension, or a box of 3 or more inputs
        (handed to :func:`~piecewise.regions.exact_nd.enumerate_cells_nd`; meant for 3-4 inputs and small
        nets).
      max_cells: refuse (PiecewiseError) rather than exhaust memory past this many cells.
    Returns:
      :class:`~piecewise.regions.cells.CellComplex` (1D, 2D) or
      :class:`~piecewise.regions.exact_nd.PolytopeComplex` (3D and up).
    """
    t0 = time.perf_counter()
    d = domain.dim
    if d > 2:
        from .exact_nd import enumerate_cells_nd

        return enumerate_cells_nd(net, params, domain, progress=progress, max_cells=max_cells)
    P = prepare_exact(net, params, domain)
    act = net.activation
    clip = _clip2d if d == 2 else _clip1d
    tol_r = rtol(np.float64)
    unit = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]) if d == 2 else np.array([[0.0], [1.0]])
    st = _State(unit[None].copy(), np.array([len(unit)]), max_cells)
    # the input representation on each layer-start cell: h = u @ M + m
    M, m = domain.axes[None], domain.origin[None]
    layer_states = []
    from tqdm.auto import tqdm

    bar = tqdm(total=net.n_neurons, desc="exact cells", unit="unit", leave=False,
               disable=(not progress) if progress is not None else (True if net.n_neurons < 64 else None))
    for W, b in P[:-1]:
        if W.ndim == 3:  # maxout: (n, w, k)
            G = np.einsum("cdn,nwk->cdwk", M, W)
            E = np.einsum("cn,nwk->cwk", m, W) + b
            st.new_layer(0)
            for j in range(W.shape[1]):
                _maxout_unit(st, clip, G[:, :, j], E[:, j], tol_r)
                bar.update(1)
            s, p = st.lab[: st.size], st.parent[: st.size]
            M = np.take_along_axis(G[p], s[:, None, :, None], -1)[..., 0]
            m = np.take_along_axis(E[p], s[..., None], -1)[..., 0]
        else:
            G = (M.reshape(-1, M.shape[-1]) @ W).reshape(M.shape[0], d, -1)  # (C, d, w), one GEMM
            E = m @ W + b
            s = _elementwise_layer(st, clip, act, G, E, tol_r, bar)
            p = st.parent[: st.size]
            slope = np.asarray(act.slopes)[s]
            const = np.asarray((-1.0, 0.0, 1.0) if act.name == "hardtanh" else (0.0, 0.0))[s]
            M = G[p] * slope[:, None, :]
            m = E[p] * slope + const
        layer_states = [ls[p] for ls in layer_states] + [s]
    bar.close()
    Wo, bo = P[-1]
    J = M @ Wo  # (C, d, n_out): output = u @ J + c
    c = m @ Wo + bo
    V, n, _ = st.live()
    words = pack_states(net, layer_states, np) if layer_states else np.zeros((len(n), 1), np.uint32)
    cx = CellComplex.build(net, domain, V, n, words, J, c, time.perf_counter() - t0, tuple(P))
    return cx
