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

import jax
import numpy as np

from ..errors import PiecewiseError
from ..nets import MLP, Params, check_params
from ..numerics import rtol
from ..patterns import pack_states
from .cells import CellComplex
from .domain import Domain, check_domain


def _clip2d(V, n, f, tol):
    """Part of each convex polygon where f >= 0 (|f| <= tol counts as 0).

    V (B, K, 2) counter-clockwise vertices, n (B,) vertex counts, f (B, K) values at the vertices,
    tol (B, 1). Returns (V', n'): at most n + 2 vertices each, counter-clockwise.
    """
    B, K = f.shape
    k = np.arange(K)
    valid = k[None, :] < n[:, None]
    fz = np.where(np.abs(f) <= tol, 0.0, f)
    nxt = np.where(k[None, :] + 1 < n[:, None], k[None, :] + 1, 0)
    fn = np.take_along_axis(fz, nxt, 1)
    Vn = np.take_along_axis(V, nxt[..., None], 1)
    keep = valid & (fz >= 0)
    cross = valid & (fz * fn < 0)
    t = np.where(cross, fz / np.where(cross, fz - fn, 1.0), 0.0)
    inter = V + t[..., None] * (Vn - V)
    mask = np.stack([keep, cross], -1).reshape(B, 2 * K)
    pts = np.stack([V, inter], 2).reshape(B, 2 * K, 2)
    pos = np.cumsum(mask, 1) - 1
    n2 = mask.sum(1)
    out = np.zeros((B, max(int(n2.max()) if B else 0, 1), 2))
    bi, si = np.nonzero(mask)
    out[bi, pos[bi, si]] = pts[bi, si]
    return out, n2


def _clip1d(V, n, f, tol):
    """Part of each interval [V0, V1] (V (B, 2, 1)) where f >= 0."""
    fz = np.where(np.abs(f) <= tol, 0.0, f)
    f0, f1 = fz[:, 0], fz[:, 1]
    cross = f0 * f1 < 0
    t = np.where(cross, f0 / np.where(cross, f0 - f1, 1.0), 0.0)
    x = V[:, 0, 0] + t * (V[:, 1, 0] - V[:, 0, 0])
    lo = np.where(cross & (f0 < 0), x, V[:, 0, 0])
    hi = np.where(cross & (f1 < 0), x, V[:, 1, 0])
    return np.stack([lo, hi], 1)[..., None], n.copy()


class _State:
    """Cells during enumeration: vertices V (C, K, d), counts n (C,), and ``parent`` (C,), the index of the
    cell at the start of the current layer (whose affine maps the cell shares)."""

    def __init__(self, V, n, parent):
        self.V, self.n, self.parent = V, n, parent
        self.lab = np.zeros((len(n), 0), np.int32)  # maxout labels of the current layer's units so far
        self.side = np.zeros((len(n), 0), np.int8)  # side of each (unit, breakpoint) fixed by a split, or -1

    def values(self, g, e):
        """Values at the vertices of the affine functions u -> u.g[c] + e[c]: g (C, d), e (C,) -> (C, K)."""
        return np.einsum("ckd,cd->ck", self.V, g) + e[:, None]

    def replace(self, idx, V_new, n_new, keep):
        """Drop cells ``idx`` (bool mask), append new cells with parents ``keep`` (indices into current)."""
        K = max(self.V.shape[1], V_new.shape[1])
        pad = lambda a: np.pad(a, ((0, 0), (0, K - a.shape[1]), (0, 0)))
        rest = ~idx
        self.V = np.concatenate([pad(self.V[rest]), pad(V_new)])
        self.n = np.concatenate([self.n[rest], n_new])
        self.parent = np.concatenate([self.parent[rest], self.parent[keep]])
        self.lab = np.concatenate([self.lab[rest], self.lab[keep]])
        self.side = np.concatenate([self.side[rest], self.side[keep]])


def _split_by(st: _State, clip, g, e, tol_r, col):
    """Split every cell crossed by the zero set of u -> u.g + e (per layer-start cell: g (P, d), e (P,)); the
    pieces remember their side (1: e + u.g >= 0) in column ``col`` of ``st.side``."""
    p = st.parent
    f = st.values(g[p], e[p])
    tol = (tol_r * (np.abs(g[p]).sum(-1) + np.abs(e[p])))[:, None]
    valid = np.arange(f.shape[1])[None, :] < st.n[:, None]
    crossed = np.any(valid & (f > tol), 1) & np.any(valid & (f < -tol), 1)
    if not crossed.any():
        return
    idx = np.nonzero(crossed)[0]
    Vp, n_p = clip(st.V[idx], st.n[idx], f[idx], tol[idx])
    Vm, n_m = clip(st.V[idx], st.n[idx], -f[idx], tol[idx])
    K = max(Vp.shape[1], Vm.shape[1])
    pad = lambda a: np.pad(a, ((0, 0), (0, K - a.shape[1]), (0, 0)))
    st.replace(crossed, np.concatenate([pad(Vp), pad(Vm)]), np.concatenate([n_p, n_m]), np.concatenate([idx, idx]))
    st.side[len(st.n) - 2 * len(idx):, col] = np.repeat(np.array([1, 0], np.int8), len(idx))


def _maxout_unit(st: _State, clip, G, E, tol_r):
    """Split cells by the argmax of one maxout unit: G (P, d, k), E (P, k); appends its label to st.lab."""
    p = st.parent
    k = G.shape[-1]
    Vs, ns, parents, labels = [], [], [], []
    for i in range(k):
        V, n, alive = st.V, st.n, np.ones(len(p), bool)
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
                Vc, nc = clip(V[idx], n[idx], f[idx], tol[idx])
                Kn = max(V.shape[1], Vc.shape[1])
                V = np.pad(V, ((0, 0), (0, Kn - V.shape[1]), (0, 0)))
                V[idx] = np.pad(Vc, ((0, 0), (0, Kn - Vc.shape[1]), (0, 0)))
                n = n.copy()
                n[idx] = nc
        a = np.nonzero(alive)[0]
        Vs.append(V[a])
        ns.append(n[a])
        parents.append(p[a])
        labels.append(np.c_[st.lab[a], np.full(len(a), i, np.int32)])
    Kn = max(v.shape[1] for v in Vs)
    st.V = np.concatenate([np.pad(v, ((0, 0), (0, Kn - v.shape[1]), (0, 0))) for v in Vs])
    st.n = np.concatenate(ns)
    st.parent = np.concatenate(parents)
    st.lab = np.concatenate(labels)


def _vertex_extremes(st: _State, G, E):
    """Max and min over each cell's vertices of every unit's value: G (P, d, w), E (P, w) -> (C, w) twice."""
    p = st.parent
    f = np.einsum("ckd,cdw->ckw", st.V, G[p]) + E[p][:, None, :]
    valid = (np.arange(st.V.shape[1])[None, :] < st.n[:, None])[..., None]
    return np.where(valid, f, -np.inf).max(1), np.where(valid, f, np.inf).min(1)


def enumerate_cells(net: MLP, params: Params, domain: Domain, *, progress: bool | None = None) -> CellComplex:
    """Exact activation regions of ``net`` on a 1D or 2D ``domain`` (float64).

    Args:
      net, params: any piecewise-linear activation (relu, leaky_relu, abs, hardtanh, maxout).
      domain: :func:`~piecewise.regions.segment`, a 2D :func:`~piecewise.regions.box` of a 2-input net,
        or a :func:`~piecewise.regions.plane` slice of any input dimension.
    Returns:
      :class:`~piecewise.regions.cells.CellComplex`.
    """
    t0 = time.perf_counter()
    act = net.activation
    if not act.piecewise_linear:
        raise PiecewiseError(f"activation {act} is not piecewise linear: it has no activation regions")
    check_params(net, params)
    check_domain(domain, net.n_in)
    d = domain.dim
    if d not in (1, 2):
        raise PiecewiseError(f"exact enumeration handles 1D and 2D domains, got a {d}-dimensional {domain.kind}")
    P = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params]
    for i, (W, b) in enumerate(P):
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            raise PiecewiseError(f"W{i} or b{i} contains NaN or inf")
    clip = _clip2d if d == 2 else _clip1d
    tol_r = rtol(np.float64)
    unit = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]) if d == 2 else np.array([[0.0], [1.0]])
    st = _State(unit[None].copy(), np.array([len(unit)]), np.zeros(1, np.int64))
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
            st.lab = np.zeros((len(st.n), 0), np.int32)
            for j in range(W.shape[1]):
                _maxout_unit(st, clip, G[:, :, j], E[:, j], tol_r)
                bar.update(1)
            s, p = st.lab, st.parent
            M = np.take_along_axis(G[p], s[:, None, :, None], -1)[..., 0]
            m = np.take_along_axis(E[p], s[..., None], -1)[..., 0]
        else:
            G = M @ W  # (C, d, w)
            E = m @ W + b
            bps = act.breakpoints
            st.side = np.full((len(st.n), W.shape[1] * len(bps)), -1, np.int8)
            for j in range(W.shape[1]):
                for q, bp in enumerate(bps):
                    _split_by(st, clip, G[:, :, j], E[:, j] - bp, tol_r, j * len(bps) + q)
                bar.update(1)
            p = st.parent
            hi, _ = _vertex_extremes(st, G, E)
            tol = tol_r * (np.abs(G[p]).sum(1) + np.abs(E[p] - np.asarray(bps)[:, None, None]).max(0))
            s = np.zeros(hi.shape, np.int32)
            for q, bp in enumerate(bps):
                # a side fixed by a split is kept; otherwise the cell lies on one side (or on the breakpoint:
                # then the state at the breakpoint is taken, which is above -1 and not above 0 or 1)
                known = st.side[:, q::len(bps)]
                free = np.where(hi - bp > tol, 1, np.where(hi - bp < -tol, 0, 1 if bp < 0 else 0))
                s += np.where(known >= 0, known, free)
            slope = np.asarray(act.slopes)[s]
            const = np.asarray((-1.0, 0.0, 1.0) if act.name == "hardtanh" else (0.0, 0.0))[s]
            M = G[p] * slope[:, None, :]
            m = E[p] * slope + const
        layer_states = [ls[st.parent] for ls in layer_states] + [s]
        st.parent = np.arange(len(st.n))
    bar.close()
    Wo, bo = P[-1]
    J = M @ Wo  # (C, d, n_out): output = u @ J + c
    c = m @ Wo + bo
    words = pack_states(net, layer_states, np) if layer_states else np.zeros((len(st.n), 1), np.uint32)
    cx = CellComplex.build(net, domain, st.V, st.n, words, J, c, time.perf_counter() - t0)
    return cx
