"""Exact enumeration of a graph's regions with its affine nodes kept as operators, depth first, in chunks of
cells that fit a memory budget.

The staged view (:meth:`piecewise.graph.Graph.to_staged`) composes every convolution into a dense matrix,
which real networks cannot afford (a width-16 CIFAR ResNet-18: 16,384^2 numbers per stage). Here each chunk of
cells carries the affine maps of the graph values that later nodes still read (``(C, d + 1, *shape)`` each,
:mod:`.opmaps`); affine nodes act on them as operators, every ``act`` / ``max`` node is a stage whose cells are
split exactly as the staged engine splits them (the compiled kernel for elementwise stages, float64 error
bounds and the exact fallback of :mod:`._resolve` for the signs it cannot decide; :func:`._engine.max_unit`
for max-pool and maxout), and the new cells go on to the next stage in sub-chunks sized so that the maps of
every level of the search fit ``memory_budget`` together. Stage numbers, units and their hyperplanes'
orientation are those of ``to_staged`` (:func:`piecewise.graph.act_stage`), so patterns, events and exact
decisions agree with the staged engine.

Error bounds: per chunk and graph value, the magnitudes of its maps (over the chunk's cells) and bounds of
their rounding errors, propagated node by node (:mod:`.opmaps`, :mod:`piecewise.numerics`): per unit (the
operator with absolute weights) and, beside them, Euclidean bounds per map column (row and operator norms,
:mod:`.l2bounds`); each unit takes the smaller. Through a deep convolutional network the per-unit bounds grow
by about sqrt(fan-in) per layer, the Euclidean ones by the layer's norm.
"""
from __future__ import annotations

import time

import numpy as np

from ..errors import PiecewiseError
from ..numerics import SAFETY, U, gamma
from . import _ckernel, _engine, jaxmaps, opmaps, parallel
from ._engine import _Ctx, _stage
from .buffers import Cells, Events, Packer, concat_geo
from .pieces import flat_sides
from .program import EXACT_UNITS_LIMIT, Program
from ._resolve import Resolver

DEFAULT_BUDGET = 2 * 2**30  # bytes: the maps and cells in flight (a 1.3-million-cell 3-D count peaks at 2.4 GB RSS)


def check_budget(memory_budget) -> float:
    """The memory budget in bytes (None: :data:`DEFAULT_BUDGET`); a one-line error for anything else than a
    positive finite number."""
    if memory_budget is None:
        return float(DEFAULT_BUDGET)
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, float, np.integer, np.floating)):
        raise PiecewiseError(f"memory budget must be a number of bytes, got {memory_budget!r}")
    b = float(memory_budget)
    if not (np.isfinite(b) and b > 0):
        raise PiecewiseError(f"memory budget must be a positive number of bytes, got {memory_budget!r}")
    return b


def parse_size(text: str) -> float:
    """Bytes from the CLI's ``--memory-budget``: a bare number is GB (10^9 bytes: ``4``, ``0.5``); or with a
    unit, k/M/G/T + B (steps of 10^3) or + iB (steps of 2^10): ``512MB``, ``3GiB``."""
    import re

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(([kKmMgGtT]?)(i?)[bB])?\s*", str(text))
    if not m:
        raise PiecewiseError(f"--memory-budget: cannot read {text!r} as a size (e.g. 4 (GB), 512MB, 3GiB)")
    base = 1024.0 if m.group(4) else 1000.0
    k = ("kmgt".find(m.group(3).lower()) + 1 if m.group(3) else 0) if m.group(2) else 3
    return check_budget(float(m.group(1)) * base ** k)


# -- a chunk of cells with the maps of the values later nodes read ---------------------------------------
class _Chunk:
    """Cells (the backend's padded geometry), their pattern words (C, n_words), maps ``vals`` {node: (C, d + 1,
    size)} and per value the bounds ``err`` {node: (Eg, Ee)} of the maps' rounding errors (size,) each."""

    def __init__(self, geo, words, vals, err, cerr=None, prev=None, root=None, l2=None):
        self.geo, self.words, self.vals, self.err = geo, words, vals, err
        # per value: (Lg, Le) bounds of sum over the gradient columns of ||error||_2, and of the offset's
        self.l2 = {} if l2 is None else l2
        self.root = root  # batched domains: the domain of each cell (C,), else None
        self.dd = False  # maps are double-double (regions/ddmaps.py): DD values, no float64 bounds to carry
        self.prev = prev  # the previous stage's states of these cells (C, w), for max stages right after it
        self.cerr = {} if cerr is None else cerr  # per-cell error bounds of stage outputs {node: (Eg, Ee) (C, size)}

    @property
    def size(self) -> int:
        return len(self.geo[1])


def _mags(M):
    """Magnitudes over the cells of maps M (C, d + 1, *shape): (|gradient|_1 max, |offset| max), (size,) each."""
    C, d1 = M.shape[:2]
    M = M.reshape(C, d1, -1)
    d = d1 - 1
    g = np.abs(M[:, 0])
    for i in range(1, d):
        g = g + np.abs(M[:, i])
    return g.max(0), np.abs(M[:, d]).max(0)


def _cell_mags(M):
    """Per cell magnitudes of maps M (C, d + 1, *shape): (|gradient|_1, |offset|), (C, size) each."""
    C, d1 = M.shape[:2]
    M = M.reshape(C, d1, -1)
    g = np.abs(M[:, 0])
    for i in range(1, d1 - 1):
        g = g + np.abs(M[:, i])
    return g, np.abs(M[:, d1 - 1])


def _rows_bounds(prog, s, chunk, rows, Dg, De):
    """Per-row bounds of stage s's pre-activations: :func:`_row_errors` for float64 maps; for double-double
    maps the chunk's own (already near 2^-100 of the magnitudes)."""
    if chunk.dd:
        return np.broadcast_to(Dg, (len(rows), len(Dg))).copy(), np.broadcast_to(De, (len(rows), len(De))).copy()
    return _row_errors(prog, s, chunk, rows)


def _row_errors(prog, s, chunk, rows):
    """Per-row error bounds (Dg, De), (r, m) each, of stage s's pre-activations on the chunk's cells ``rows``:
    the segment before stage s re-evaluated on the bounds alone, from each cell's own errors of the stage
    outputs it reads (a relu unit off on a cell is an exact 0 there) and each cell's own magnitudes."""
    nodes = prog.graph.nodes
    E = {}

    def err_of(i):
        if i in E:
            return E[i]
        if i in chunk.cerr:
            Eg, Ee = chunk.cerr[i]
            E[i] = (Eg[rows], Ee[rows])
        else:
            Eg, Ee = chunk.err[i]
            E[i] = (np.broadcast_to(Eg, (len(rows), len(Eg))), np.broadcast_to(Ee, (len(rows), len(Ee))))
        return E[i]

    for k in prog.segments[s]:
        nd = nodes[k]
        if nd.op == "const":
            z = np.zeros((len(rows), nd.size))
            E[k] = (z, z)
            continue
        if k in prog.identity:
            E[k] = err_of(nd.inputs[0])
            continue
        ins = [chunk.vals[i][rows] for i in nd.inputs]
        t = opmaps.terms(nd, [v.shape[1:] for v in ins])
        c = gamma(t + 3) if t else 0.0
        r_in = []
        for i, v in zip(nd.inputs, ins):
            Hg, He = _cell_mags(v)
            Eg, Ee = err_of(i)
            r_in.append(np.stack([Eg, Ee, c * Hg, c * He], 1).reshape(len(rows) * 4, *v.shape[2:]))
        out = opmaps.apply(nd, r_in, absolute=True).reshape(len(rows), 4, -1)
        E[k] = _out_bounds(prog, k, out[:, 0], out[:, 1], out[:, 2], out[:, 3],
                           [chunk.l2.get(i) for i in nd.inputs], c)[:2]
    st = prog.stages[s]
    Eg, Ee = err_of(st.src)
    if st.groups is None and st.in_scale is not None:
        a, b = st.in_scale
        Hg, He = _cell_mags(chunk.vals[st.src][rows])
        Eg = np.abs(a) * Eg + 2 * U * np.abs(a) * Hg
        Ee = np.abs(a) * Ee + 2 * U * (np.abs(a) * He + np.abs(b))
    return np.asarray(Eg) * SAFETY, np.asarray(Ee) * SAFETY


def _affine(prog, k, chunk, threads):
    """Evaluate affine node k on a chunk: its maps and their error bounds."""
    nd = prog.graph.nodes[k]
    C, d1 = chunk.size, None
    if nd.op == "const":
        any_v = next(iter(chunk.vals.values()))
        d1 = any_v.shape[1]
        M = np.zeros((C, d1, *nd.shape))
        M[:, d1 - 1] = nd.attrs["value"]
        z = np.zeros(nd.size)
        if chunk.dd:
            from .ddmaps import DD

            return DD(M), None
        chunk.l2[k] = (0.0, 0.0)
        return M, (z, z)
    if k in prog.identity:
        if nd.inputs[0] in chunk.l2:
            chunk.l2[k] = chunk.l2[nd.inputs[0]]
        return chunk.vals[nd.inputs[0]], chunk.err[nd.inputs[0]]
    if chunk.dd:
        return _affine_dd(nd, chunk), None
    ins = [chunk.vals[i] for i in nd.inputs]
    M = opmaps.apply_maps(nd, ins, threads, jaxmaps.linear if prog.maps == "jax" else None)
    # error bounds: |op| of the errors (propagated) and of gamma * magnitudes (this node's rounding)
    t = opmaps.terms(nd, [v.shape[1:] for v in ins])
    c = gamma(t + 3) if t else 0.0
    rows = []
    for i, v in zip(nd.inputs, ins):
        Hg, He = _mags(v)
        Eg, Ee = chunk.err[i]
        rows.append(np.stack([Eg, Ee, c * Hg, c * He]).reshape(4, *v.shape[2:]))
    P = opmaps.apply(nd, rows, absolute=True).reshape(4, -1)
    Eg, Ee, chunk.l2[k] = _out_bounds(prog, k, P[0], P[1], P[2], P[3], [chunk.l2.get(i) for i in nd.inputs], c,
                                      d=ins[0].shape[1] - 1)
    return M, (Eg, Ee)


def _frame_l2(err, d: int):
    """Euclidean bounds (Lg, Le) of the frame's errors from their per-input bounds."""
    return np.sqrt(d) * SAFETY * _norm(err[0]), _norm(err[1])


def _norm(v) -> float:
    return float(np.sqrt(np.dot(v, v))) * SAFETY if np.size(v) else 0.0


def _finite_min(a: float, b: float) -> float:
    return b if (np.isfinite(b) and b < a) else a


def _out_bounds(prog, k, Pg, Pe, Rg, Re, Ls, c, d=None):
    """Error bounds of affine node k's output from the per-unit propagated errors (Pg, Pe) and this node's
    rounding (Rg, Re) (|op| applied to the inputs' bounds and to gamma * magnitudes): per unit the smaller of
    the per-unit and the Euclidean bound (row norm times the inputs' ``Ls``), and (``d`` given) the output's
    Euclidean bounds (Lg, Le): the operator norm times the inputs', plus the rounding's, or the norm of the
    per-unit bounds, whichever is smaller. Returns (Eg, Ee, (Lg, Le))."""
    nd = prog.graph.nodes[k]
    b = opmaps.bias(nd)
    if b is not None:
        Re = Re + (c + U) * np.broadcast_to(np.abs(b), nd.shape).reshape(-1)
    nrm = prog.norms(k)
    have = all(L is not None and np.isfinite(L[0]) and np.isfinite(L[1]) for L in Ls)
    if have and all(rn is not None for rn, _ in nrm):
        Pg = np.minimum(Pg, sum(rn * L[0] for (rn, _), L in zip(nrm, Ls)))
        Pe = np.minimum(Pe, sum(rn * L[1] for (rn, _), L in zip(nrm, Ls)))
    Eg, Ee = (Pg + Rg) * SAFETY, (Pe + Re) * SAFETY
    if d is None:
        return Eg, Ee, None
    sd = np.sqrt(d) * SAFETY
    Lg, Le = sd * _norm(Eg), _norm(Ee)
    if have and all(np.isfinite(o) for _, o in nrm):
        Lg = _finite_min(Lg, (sum(o * L[0] for (_, o), L in zip(nrm, Ls)) + sd * _norm(Rg)) * SAFETY)
        Le = _finite_min(Le, (sum(o * L[1] for (_, o), L in zip(nrm, Ls)) + _norm(Re)) * SAFETY)
    return Eg, Ee, (Lg, Le)


def _affine_dd(nd, chunk):
    """An affine node on a chunk's double-double maps (all cells and columns batched)."""
    from .ddmaps import apply_node, dd_add_const

    ins = [chunk.vals[i] for i in nd.inputs]
    C, d1 = ins[0].shape[:2]
    y = apply_node(nd, [v.reshape(C * d1, *v.shape[2:]) for v in ins]).reshape(C, d1, *nd.shape)
    b = opmaps.bias(nd)
    if b is not None:
        off = dd_add_const(y[:, d1 - 1], np.broadcast_to(b, (C, *nd.shape)))
        y.hi[:, d1 - 1], y.lo[:, d1 - 1], y.E[:, d1 - 1] = off.hi, off.lo, off.E
    return y


def _preact_dd(st, Z):
    """Stage pre-activations from double-double maps: (G, E) the float64 high parts the kernel reads, their
    error bounds (Dg, De) per unit (max over the chunk's cells of |lo| + E), and the DD maps (C, d + 1, m)."""
    from .ddmaps import dd_add_const, dd_scale

    C, d1 = Z.shape[:2]
    Z = Z.reshape(C, d1, -1)
    if st.groups is None and st.in_scale is not None:
        a, b = st.in_scale
        Z = dd_scale(Z, a[None, None, :])
        off = dd_add_const(Z[:, d1 - 1], np.broadcast_to(b, (C, len(b))))
        Z.hi[:, d1 - 1], Z.lo[:, d1 - 1], Z.E[:, d1 - 1] = off.hi, off.lo, off.E
    err = Z.err()
    G = np.ascontiguousarray(Z.hi[:, : d1 - 1])
    E = np.ascontiguousarray(Z.hi[:, d1 - 1])
    if C:
        Dg, De = err[:, : d1 - 1].sum(1).max(0), err[:, d1 - 1].max(0)
    else:
        Dg = De = np.zeros(Z.shape[-1])
    return G, E, Dg * SAFETY, De * SAFETY, Z


def _stage_out_dd(st, Z, p, state):
    """The stage node's double-double value on the new cells (parent rows p, states (N, w))."""
    from .ddmaps import dd_add_const, dd_scale

    N = len(p)
    d1 = Z.shape[1]
    Zp = Z[p]
    if st.groups is not None:
        gi = st.groups[np.arange(st.width)[None, :], state.astype(np.intp)]  # (N, w)
        idx = np.broadcast_to(gi[:, None, :], (N, d1, st.width))
        return Zp.map(lambda t: np.take_along_axis(t, idx, 2))
    cols = np.arange(st.m)[None, :]
    s = state.astype(np.intp)
    sl, k = st.slope[s, cols], st.const[s, cols]
    h = dd_scale(Zp, sl[:, None, :])
    off = dd_add_const(h[:, d1 - 1], k)
    h.hi[:, d1 - 1], h.lo[:, d1 - 1], h.E[:, d1 - 1] = off.hi, off.lo, off.E
    if st.out is not None:
        a, b = st.out
        h = dd_scale(h, a[None, None, :])
        off = dd_add_const(h[:, d1 - 1], np.broadcast_to(b, (N, len(b))))
        h.hi[:, d1 - 1], h.lo[:, d1 - 1], h.E[:, d1 - 1] = off.hi, off.lo, off.E
    return h


def _preact(st, Z, err, L=None):
    """The stage's pre-activation maps (C, d, m), (C, m), bounds (Dg, De) from its input's maps, and their
    Euclidean bounds (Lg, Le) (from the input's ``L``; None: from the per-unit bounds)."""
    C, d1 = Z.shape[:2]
    Z = Z.reshape(C, d1, -1)
    Eg, Ee = err
    sd = np.sqrt(d1 - 1) * SAFETY
    if st.groups is None and st.in_scale is not None:
        a, b = st.in_scale
        Hg, He = _mags(Z)
        Z = Z * a
        Z[:, d1 - 1] += b
        Rg, Re = 2 * U * np.abs(a) * Hg, 2 * U * (np.abs(a) * He + np.abs(b))
        Eg = np.abs(a) * Eg + Rg
        Ee = np.abs(a) * Ee + Re
        if L is not None:
            amax = float(np.abs(a).max(initial=0.0))
            L = ((amax * L[0] + sd * _norm(Rg)) * SAFETY, (amax * L[1] + _norm(Re)) * SAFETY)
    G = np.ascontiguousarray(Z[:, : d1 - 1].reshape(C, d1 - 1, -1))
    E = np.ascontiguousarray(Z[:, d1 - 1])
    Dg, De = Eg * SAFETY, Ee * SAFETY
    Lg, Le = sd * _norm(Dg), _norm(De)
    if L is not None:
        Lg, Le = _finite_min(Lg, L[0]), _finite_min(Le, L[1])
    return G, E, Dg, De, (Lg, Le)


def _stage_out(st, G, E, Dg, De, p, state, L=None):
    """The stage node's value (maps (N, d + 1, *shape)) on the new cells (parent rows p, states), its bounds,
    per-cell bounds (or None) and Euclidean bounds (from the pre-activations' ``L``)."""
    N = len(p)
    d = G.shape[1]
    sd = np.sqrt(d) * SAFETY
    if st.groups is not None:
        gi = st.groups[np.arange(st.width)[None, :], state.astype(np.intp)]  # (N, w)
        Gp, Ep = G[p], E[p]
        h = np.empty((N, d + 1, st.width))
        h[:, :d] = np.take_along_axis(Gp, gi[:, None, :], 2)
        h[:, d] = np.take_along_axis(Ep, gi, 1)
        eg, ee = Dg[st.groups].max(1), De[st.groups].max(1)
        Lo = (sd * _norm(eg), _norm(ee))
        if L is not None:  # a selection of entries, each at most ``mult`` times
            mult = np.sqrt(float(np.bincount(st.groups.ravel()).max(initial=0))) * SAFETY
            Lo = (_finite_min(Lo[0], mult * L[0]), _finite_min(Lo[1], mult * L[1]))
        return h, (eg, ee), None, Lo
    cols = np.arange(st.m)[None, :]
    s = state.astype(np.intp)
    sl, k = st.slope[s, cols], st.const[s, cols]  # (N, m)
    h = np.empty((N, d + 1, st.m))
    np.take(G, p, axis=0, out=h[:, :d])
    h[:, :d] *= sl[:, None, :]
    np.take(E, p, axis=0, out=h[:, d])
    h[:, d] *= sl
    h[:, d] += k
    smax, kmax = np.abs(st.slope).max(0), np.abs(st.const).max(0)
    # magnitudes per stage-start row (C rows, fewer than the N new cells): |slope * x| = |slope| |x|
    Gm, Em = np.abs(G).sum(1), np.abs(E)  # (C, m)
    Hg, He = (Gm.max(0), Em.max(0)) if len(G) else (np.zeros(st.m), np.zeros(st.m))
    Rg, Re = U * smax * Hg, 2 * U * (smax * He + kmax)
    eg = smax * Dg + Rg
    ee = smax * De + Re
    if L is not None:
        sm = float(smax.max(initial=0.0))
        L = ((sm * L[0] + sd * _norm(Rg)) * SAFETY, (sm * L[1] + _norm(Re)) * SAFETY)
    # per cell: a unit whose piece has slope and constant 0 (relu off) is an exact 0, with no error
    asl, ak = np.abs(sl), np.abs(k)
    Hgc = asl * Gm[p]
    Hec = asl * Em[p] + ak  # a bound of |offset| (enough for error bounds)
    cg = asl * Dg + U * Hgc
    ce = asl * De + 2 * U * (Hec + ak)
    if st.out is not None:
        a, b = st.out
        Hg2, He2 = smax * Hg, smax * He + kmax
        h *= a
        h[:, d] += b
        Rg, Re = U * np.abs(a) * Hg2, 2 * U * (np.abs(a) * He2 + np.abs(b))
        eg = np.abs(a) * eg + Rg
        ee = np.abs(a) * ee + Re
        if L is not None:
            am = float(np.abs(a).max(initial=0.0))
            L = ((am * L[0] + sd * _norm(Rg)) * SAFETY, (am * L[1] + _norm(Re)) * SAFETY)
        cg = np.abs(a) * cg + U * np.abs(a) * Hgc
        ce = np.abs(a) * ce + 2 * U * (np.abs(a) * Hec + np.abs(b))
    eg, ee = eg * SAFETY, ee * SAFETY
    Lo = (sd * _norm(eg), _norm(ee))
    if L is not None:
        Lo = (_finite_min(Lo[0], L[0] * SAFETY), _finite_min(Lo[1], L[1] * SAFETY))
    return h, (eg, ee), (cg * SAFETY, ce * SAFETY), Lo


class _Result:
    """Finished cells: patterns and, if ``keep``, geometry and output maps; otherwise one point inside each
    cell (the mean of its vertices, in centred coordinates) and, if ``measure``, its measure in u."""

    def __init__(self, keep: bool, kind: str, measure: bool, keep_geo: bool = False):
        self.keep, self.kind, self.want_measure, self.keep_geo = keep, kind, measure, keep_geo
        self.words, self.geo, self.J, self.c, self.points, self.measure = [], [], [], [], [], []
        self.roots = []
        self.DJ = self.Dc = None
        self.n = 0
        self.chunks = 0
        self.live = self.peak = 0  # bytes of maps held by the chunks of every level now, and at most

    def add(self, words, geo, J=None, c=None, DJ=None, Dc=None, root=None):
        self.n += len(words)
        self.words.append(words)
        if root is not None:
            self.roots.append(root)
        if self.keep_geo:
            self.geo.append(geo)
        if self.keep:
            self.geo.append(geo)
            self.J.append(J)
            self.c.append(c)
            self.DJ = DJ if self.DJ is None else np.maximum(self.DJ, DJ)
            self.Dc = Dc if self.Dc is None else np.maximum(self.Dc, Dc)
            return
        V, n = geo[0], geo[1]
        valid = np.arange(V.shape[1])[None, :] < n[:, None]
        self.points.append(np.where(valid[..., None], V, 0.0).sum(1) / n[:, None])
        if self.want_measure:
            self.measure.append(_measures(self.kind, geo))


def _measures(kind, geo):
    """Measures in u of padded cells."""
    V, n = geo[0], geo[1]
    if kind == "interval":
        return V[:, 1, 0] - V[:, 0, 0]
    if kind == "polygon":
        from .polygons import polygon_area

        return polygon_area(V, n)
    from .polytopes import volumes

    return volumes(V, n, geo[2])


def enumerate_graph(graph, domain, *, memory_budget: float | None = None, keep_cells: bool = True,
                    progress=None, threads: int | None = None, max_cells: int = 50_000_000,
                    measure: bool | None = None, net=None, precision: str = "auto"):
    """Exact activation regions of a :class:`~piecewise.graph.Graph` on ``domain`` (module docstring).

    Args:
      memory_budget: bytes for the cells' maps of all levels of the search (default :data:`DEFAULT_BUDGET`).
      keep_cells: keep every cell's geometry and output map (a :class:`~piecewise.regions.cells.CellComplex`);
        False: only each cell's pattern, one point inside it and (``measure``; default: on 1-D and 2-D
        domains) its measure (a :class:`RegionCount`: counts of millions of cells).
      net: what the result reports as its network (default the graph).
      precision: the cells' maps in ``"float64"`` (signs its error bounds cannot decide go to the exact or
        double-double fallback one by one), ``"double-double"`` (about 100 bits: the error bounds stay small
        through deep networks; a product costs about 12-14 float64 ones), or ``"auto"``: float64 first, and the
        search restarts in double-double when more than :data:`DD_SWITCH` signs needed a graph too large for
        exact arithmetic (with Euclidean bounds, the benchmarks' ResNet-18 needs none). The result's ``engine``
        says which ran.
    Returns:
      a CellComplex, or (keep_cells False) a :class:`RegionCount`.
    """
    from .cells import CellComplex
    from .polygons import _Poly2D, _Seg1D
    from .polytopes import Polytopes

    t0 = time.perf_counter()
    budget = check_budget(memory_budget)
    if domain.n_in != graph.n_in:
        raise PiecewiseError(f"the {domain.kind} lives in R^{domain.n_in} but the network has {graph.n_in} inputs")
    threads = max(1, int(parallel.default_threads() if threads is None else threads))
    prog = Program(graph)
    d = domain.dim
    backend = Polytopes if d >= 3 else (_Poly2D if d == 2 else _Seg1D)
    kind = "polytope" if d >= 3 else ("polygon" if d == 2 else "interval")
    packer = Packer(prog.n_units, prog.bits)
    from .rational import frame_errors

    if precision not in ("auto", "float64", "double-double"):
        raise PiecewiseError(f"precision must be 'auto', 'float64' or 'double-double', got {precision!r}")
    use_dd = precision == "double-double"
    offsets = np.cumsum([0] + [st.width for st in prog.stages])
    while True:
        events = Events(d)
        if use_dd:
            from .ddmaps import frame_dd

            root = _Chunk(backend.init(d), np.zeros((1, packer.n_words), np.uint32),
                          {0: frame_dd(domain).reshape(1, d + 1, *graph.input_shape)}, {0: None})
            root.dd = True
        else:
            M0 = np.concatenate([domain.axes, domain.center[None]], 0)[None]  # (1, d + 1, n_in)
            root = _Chunk(backend.init(d), np.zeros((1, packer.n_words), np.uint32),
                          {0: M0.reshape(1, d + 1, *graph.input_shape)}, {0: frame_errors(domain)})
            root.l2[0] = _frame_l2(root.err[0], d)
        res = _Result(keep_cells, kind, (d <= 2) if measure is None else bool(measure))
        resolver = _GraphResolver(graph, prog, domain, events)
        resolver.switch = None if (use_dd or precision == "float64") else DD_SWITCH
        bar = _bar(progress, len(prog.stages))
        try:
            _dfs(prog, 0, root, backend, events, packer, offsets, resolver, res, budget / (len(prog.stages) + 1),
                 threads, max_cells, bar)
            break
        except _Restart:  # float64's bounds decide too little in this network: its maps in double-double
            use_dd = True
        finally:
            if bar is not None:
                bar.close()
    words = _concat_free(res.words, packer.n_words)
    stats = {"algorithm": "operators", "precision": "double-double" if use_dd else "float64",
             "maps": jaxmaps.describe(prog.maps),
             "memory_budget": int(budget), "chunks": res.chunks, "peak_map_bytes": int(res.peak),
             "fallback_signs": int(resolver.count)}
    if not keep_cells:
        pts = np.concatenate(res.points) if res.points else np.zeros((0, d))
        meas = np.concatenate(res.measure) * domain.measure() if res.measure else None
        return RegionCount(graph if net is None else net, domain, words, pts, meas, time.perf_counter() - t0,
                           stats)
    geo = concat_geo(res.geo, backend.KAXIS, backend.PAD)
    J, c = np.concatenate(res.J), np.concatenate(res.c)
    layout = (prog.bits, [st.width for st in prog.stages])
    cx = CellComplex.build(graph, domain, geo, words, J, c, (res.DJ, res.Dc), events.finish(),
                           time.perf_counter() - t0, None, kind, staged=None, layout=layout)
    cx.engine = stats
    return cx


def _concat_free(parts: list, width: int) -> np.ndarray:
    """The rows of ``parts`` (arrays (n_i, width)) in one array, each part dropped from the list once copied
    (the patterns of 31k cells of a 139k-unit net are 0.55 GB: no second copy of them at once)."""
    out = np.empty((sum(len(a) for a in parts), width), parts[0].dtype if parts else np.uint32)
    o = 0
    parts.reverse()
    while parts:
        a = parts.pop()
        out[o:o + len(a)] = a
        o += len(a)
    return out


class RegionCount:
    """The result of a count that kept no cells (``keep_cells=False``): ``regions``, ``patterns`` (C, n_words),
    ``points_c`` (C, d) one point inside each cell (centred domain coordinates; :attr:`points` in input
    coordinates), ``measure`` (C,) in the domain's units (None where not computed), ``seconds``,
    ``to_json()`` and ``save_cells(path)``."""

    kind = "count"

    def __init__(self, net, domain, words, points_c, measure, seconds, engine=None):
        from .cells import _duplicates

        self.net, self.domain, self.patterns, self.points_c = net, domain, words, points_c
        self.measure, self.seconds, self.engine = measure, seconds, engine
        dup = _duplicates(words)
        if dup:
            raise RuntimeError(f"internal error: {dup} duplicate activation patterns among {len(words)} cells")

    @property
    def regions(self) -> int:
        return int(len(self.patterns))

    @property
    def points(self) -> np.ndarray:
        """One point inside each cell, input coordinates (C, n_in)."""
        return self.domain.points_c(self.points_c)

    def to_json(self, linear: bool = False) -> dict:
        if linear:
            raise PiecewiseError("linear regions need the cells' maps: count with keep_cells=True")
        out = {"regions": self.regions, "method": "exact", "seconds": round(self.seconds, 4),
               "domain": self.domain.describe()}
        if self.measure is not None:
            out["measure_total"] = float(self.measure.sum())
        if self.engine:
            out["engine"] = dict(self.engine)
        return out

    def save_cells(self, path) -> str:
        """Write the cells to ``path`` (.npz): :func:`piecewise.regions.cells.save_cells`."""
        from .cells import save_cells

        return save_cells(self, path)


def _bar(progress, n):
    if progress is False:
        return None
    import sys

    from tqdm.auto import tqdm

    if progress is None and not sys.stderr.isatty():
        return None
    return tqdm(total=None, desc="exact cells (graph)", unit="cell", leave=False)


DD_SWITCH = 2_000  # signs sent one by one to the double-double fallback before a float64 search restarts in dd


class _Restart(Exception):
    """Too many float64 signs needed the one-by-one fallback: run the search with double-double maps."""


class _ExactNeeded(Exception):
    """A batched search met a sign that float64 cannot decide (the exact resolver works on one domain)."""


class _GraphResolver(Resolver):
    """The exact resolver over the graph's staged form, built only when a sign needs it (and refused for
    graphs too large for the dense exact network)."""

    def __init__(self, graph, prog, domain, events):
        super().__init__(None, domain, events, (prog.bits, [st.width for st in prog.stages]))
        self.graph, self.prog = graph, prog
        self.dd = domain is not None and domain.dim == 2 and prog.n_units > EXACT_UNITS_LIMIT
        self._ddnet = None

    # double-double decisions for graphs too large for exact arithmetic (2-D domains) ---------------------
    def _dd(self):
        if self._ddnet is None:
            from .ddmaps import DDNet

            self._ddnet = DDNet(self.graph, self.prog, self.domain)
        return self._ddnet

    def label_plane(self, label: int, states):
        if not self.dd:
            return super().label_plane(label, states)
        from fractions import Fraction

        from .ddmaps import DDPlane

        if label < 0:
            i = -1 - label
            g = [Fraction(0)] * 2
            g[i % 2] = Fraction(2)
            return DDPlane(([*g, Fraction(1 if i < 2 else -1)], 0.0))
        s, unit, sub = self.events.meta_of(label)
        from .ddmaps import DDPlane as P

        return P(self._dd().unit_plane(s, unit, sub, states))

    def query_plane(self, unit: int, sub: int, sign: int, states):
        if not self.dd:
            return super().query_plane(unit, sub, sign, states)
        from .ddmaps import DDPlane

        coef, delta = self._dd().unit_plane(self.stage, unit, sub, states)
        return DDPlane(([c if sign > 0 else -c for c in coef], delta))

    def _dd_pair(self, planes):
        """Two planes among ``planes`` (the first preferred) whose gradients are independent."""
        for i in range(len(planes)):
            for j in range(i + 1, len(planes)):
                (a, b, _), (c, d_, _) = planes[i][0], planes[j][0]
                if a * d_ - b * c != 0:
                    return [planes[i], planes[j]]
        raise RuntimeError("internal error: a vertex lies on only one independent facet in 2-D")

    def begin(self, stage: int, words):
        super().begin(stage, words)
        self._states, self._vertices = {}, {}

    def states(self, row: int) -> list:
        if not self.dd:
            return super().states(row)
        st = self._states.get(row)
        if st is None:
            st = self._states[row] = super().states(row)
        return st

    def _dd_sign(self, q, H, key=None) -> int:
        from .ddmaps import certified_at, certified_vertex

        vx = self._vertices.get(key) if key is not None else None
        if vx is None:
            vx = certified_vertex(H)
            if key is not None and vx is not None:
                self._vertices[key] = vx
        r = None if vx is None else certified_at(q, vx)
        if r is None or abs(r[0]) <= r[1]:
            self._dd_refuse()
        return 1 if r[0] > 0 else -1

    switch = None

    def _switch(self, k: int):
        self.n_dd = getattr(self, "n_dd", 0) + k
        if self.switch is not None and self.n_dd > self.switch:
            raise _Restart()

    def _dd_refuse(self):
        raise PiecewiseError(
            "a sign of this arrangement is within the error bound of zero even in double-double arithmetic "
            f"(this graph has {self.prog.n_units:,} units; exact arithmetic is implemented for up to "
            f"{EXACT_UNITS_LIMIT:,}): the count cannot be certified")

    def resolve(self, cls, sure, valid, rows, labels, query):
        if not self.dd:
            return super().resolve(cls, sure, valid, rows, labels, query)
        bi, ki = np.nonzero(valid & ~sure)
        if not len(bi):
            return
        self._switch(len(bi))
        units = getattr(query, "units", None)
        if units is not None:  # one unit per pair b, breakpoint query.sub: all pairs of a row and vertex at once
            self._tick(len(bi))
            return self._dd_resolve_units(cls, bi, ki, rows, labels, np.asarray(units), int(query.sub))
        return super().resolve(cls, sure, valid, rows, labels, query)  # vertex by vertex: sign_at_vertex

    def sign_at_vertex(self, q, labels, states, row: int) -> int:
        if not self.dd:
            return super().sign_at_vertex(q, labels, states, row)
        key = (row, tuple(sorted(int(x) for x in labels)))
        H = None if key in self._vertices else self._dd_pair([self.label_plane(lab, states) for lab in labels])
        return self._dd_sign(q, H, key)

    def _dd_resolve_units(self, cls, bi, ki, rows, labels, units, sub):
        from .ddmaps import certified_vertex, values_at

        st0 = self.prog.stages[self.stage - 1]
        bp = float(st0.act.breakpoints[sub])
        groups = {}
        for b, k in zip(bi.tolist(), ki.tolist()):
            labs = labels(b, k)
            key = (int(rows[b]), tuple(sorted(int(x) for x in labs)))
            groups.setdefault(key, ([], labs))[0].append((b, k))
        for key, (items, labs) in groups.items():
            row = key[0]
            st = self.states(row)
            vx = self._vertices.get(key)
            if vx is None:
                vx = certified_vertex(self._dd_pair([self.label_plane(lab, st) for lab in labs]))
                if vx is None:
                    raise PiecewiseError("a vertex of this arrangement is too ill-conditioned for double-double "
                                         "arithmetic: the count cannot be certified")
                self._vertices[key] = vx
            dd = self._dd()
            z = dd.preact_from(self.stage - 1, dd.values_before(self.stage - 1, st)[st0.src])
            b_idx = np.array([b for b, _ in items])
            k_idx = np.array([k for _, k in items])
            v, bound = values_at(z, units[b_idx], bp, vx)
            if np.any(np.abs(v) <= bound):
                self._dd_refuse()
            cls[b_idx, k_idx] = np.where(v > 0, 1, -1)

    def point(self, row: int, labels, qplane_fn):
        if not self.dd:
            return super().point(row, labels, qplane_fn)
        from .ddmaps import SAFE, _solve2

        self._tick()
        self._switch(1)
        st = self.states(int(row))
        H = self._dd_pair([qplane_fn(st)] + [self.label_plane(lab, st) for lab in labels])
        X, kinv = _solve2([H[0][0], H[1][0]])
        dmax = max(H[0][1], H[1][1])
        k = float(kinv) * SAFE
        if k * 2 * dmax >= 0.5:
            raise PiecewiseError("a crossing of this arrangement is too ill-conditioned for double-double "
                                 "arithmetic: the count cannot be certified")
        x1 = float(abs(X[0]) + abs(X[1])) * SAFE
        dx = k / (1 - 2 * k * dmax) * dmax * (x1 + 1) * SAFE
        x = np.array([float(X[0]), float(X[1])])
        import math

        return x, dx + math.ulp(float(np.abs(x).max()) or 1e-300)

    @property
    def net(self):
        if self._net is None:
            if self.domain is None:
                raise _ExactNeeded()
            if self.prog.n_units > EXACT_UNITS_LIMIT:  # (2-D domains use double-double before this)
                raise PiecewiseError(
                    f"some signs of this arrangement are too close to zero for float64, and the exact fallback is "
                    f"implemented for graphs of up to {EXACT_UNITS_LIMIT:,} units (this one has "
                    f"{self.prog.n_units:,}): the count cannot be certified")
            from . import rational

            self.staged = self.graph.to_staged()
            self._net = rational.ExactNet(self.staged, self.domain)
        return self._net


def _dfs(prog, s, chunk, backend, events, packer, offsets, resolver, res, per_level, threads, max_cells, bar):
    """Process ``chunk`` from stage s on (module docstring)."""
    res.chunks += 1
    held = sum(v.nbytes for v in chunk.vals.values())
    res.live += held
    try:
        _dfs_chunk(prog, s, chunk, backend, events, packer, offsets, resolver, res, per_level, threads, max_cells,
                   bar)
    finally:
        res.live -= held


def _dfs_chunk(prog, s, chunk, backend, events, packer, offsets, resolver, res, per_level, threads, max_cells, bar):
    for k in prog.segments[s]:
        chunk.vals[k], chunk.err[k] = _affine(prog, k, chunk, threads)
    extra = sum(chunk.vals[k].nbytes for k in prog.segments[s] if k in chunk.vals)
    res.peak = max(res.peak, res.live + extra)
    if s == len(prog.stages):  # the output
        out = chunk.vals[prog.graph.output]
        C, d1 = out.shape[:2]
        out = out.reshape(C, d1, -1)
        if chunk.dd:
            e = out.err()
            Eg, Ee = (e[:, : d1 - 1].sum(1).max(0), e[:, d1 - 1].max(0)) if C else (0.0, 0.0)
            out = out.hi
        else:
            Eg, Ee = chunk.err[prog.graph.output]
        geo = [a[:C] for a in chunk.geo]
        res.add(chunk.words, geo, np.ascontiguousarray(out[:, : d1 - 1]), np.ascontiguousarray(out[:, d1 - 1]),
                Eg, Ee, root=chunk.root)
        if bar is not None:
            bar.update(C)
        if res.n > max_cells:
            raise PiecewiseError(f"more than max_cells={max_cells:,} cells: use a smaller domain or the grid method")
        return
    st = prog.stages[s]
    if chunk.dd:
        G, E, Dg, De, Zdd = _preact_dd(st, chunk.vals[st.src])
        Lpre = None  # double-double maps carry no float64 bounds
    else:
        G, E, Dg, De, Lpre = _preact(st, chunk.vals[st.src], chunk.err[st.src], chunk.l2.get(st.src))
    _engine._check_finite((G, E, Dg, De), f"stage {s + 1}'s pre-activations")
    geo, p, state = _split(prog, st, s, chunk, G, E, Dg, De, backend, events, resolver, threads, max_cells)
    if not res.keep and s == len(prog.stages) - 1:  # a count: the last stage's cells need no maps
        words = chunk.words[p].copy()
        _add_states(packer, words, state, int(offsets[s]))
        res.add(words, [a[: len(p)] for a in geo], root=None if chunk.root is None else chunk.root[p])
        if bar is not None:
            bar.update(len(p))
        if res.n > max_cells:
            raise PiecewiseError(f"more than max_cells={max_cells:,} cells: use a smaller domain or the grid method")
        return
    # the new cells in sub-chunks that fit this level's share of the budget
    live = [k for k in chunk.vals if prog.last[k] > st.node]
    # what this level holds while its sub-chunks run: the live maps and the pre-activations, nothing else
    before = sum(v.nbytes for v in chunk.vals.values())
    for k in [k for k in chunk.vals if k not in live]:
        del chunk.vals[k]
        chunk.cerr.pop(k, None)
    held = sum(v.nbytes for v in chunk.vals.values()) + G.nbytes + E.nbytes + (Zdd.nbytes if chunk.dd else 0)
    res.live += held - before
    try:
        _subchunks(prog, s, st, chunk, live, G, E, Dg, De, Lpre,
                   Zdd if chunk.dd else None, geo, p, state, backend, events, packer, offsets, resolver, res,
                   per_level, threads, max_cells, bar)
    finally:
        res.live -= held - before


def _subchunks(prog, s, st, chunk, live, G, E, Dg, De, Lpre, Zdd, geo, p, state, backend, events, packer, offsets,
               resolver, res, per_level, threads, max_cells, bar):
    """Stage s's new cells (parent rows p, states) in sub-chunks that fit one level's share of the budget, each
    searched from stage s + 1 on."""
    d1 = G.shape[1] + 1
    per_cell = ((3 if chunk.dd else 1) * 8 * d1 * (sum(int(np.prod(chunk.vals[k].shape[2:])) for k in live)
                                                 + 2 * st.m)
                + 8 * packer.n_words + backend.bytes_per_cell(d1 - 1))  # maps, patterns, geometry
    B = max(1, int(per_level // max(per_cell, 1)))
    N = len(p)
    for b0 in range(0, N, B):
        sl = slice(b0, min(b0 + B, N))
        pb = p[sl]
        vals = {k: chunk.vals[k][pb] for k in live}
        err = {k: chunk.err[k] for k in live}
        l2 = {k: chunk.l2[k] for k in live if k in chunk.l2}
        cerr = {k: tuple(a[pb] for a in chunk.cerr[k]) for k in live if k in chunk.cerr}
        if chunk.dd:
            vals[st.node], err[st.node] = _stage_out_dd(st, Zdd, pb, state[sl]), None
        else:
            vals[st.node], err[st.node], ce, l2[st.node] = _stage_out(st, G, E, Dg, De, pb, state[sl], Lpre)
            if ce is not None:
                cerr[st.node] = ce
        vals[st.node] = vals[st.node].reshape(len(pb), d1, *prog.graph.nodes[st.node].shape)
        words = chunk.words[pb].copy()
        _add_states(packer, words, state[sl], int(offsets[s]))
        sub = _Chunk([a[sl] for a in geo], words, vals, err, cerr, state[sl],
                     None if chunk.root is None else chunk.root[pb], l2)
        sub.dd = chunk.dd
        _dfs(prog, s + 1, sub, backend, events, packer, offsets, resolver, res, per_level, threads, max_cells, bar)
        del sub, vals


def _add_states(packer, words, states, offset: int):
    """OR the states (N, w) of units offset.. into words (the Packer's layout), without moving its cursor."""
    saved = packer.offset
    packer.offset = offset
    try:
        packer.add(words, states)
    finally:
        packer.offset = saved


def _split(prog, st, s, chunk, G, E, Dg, De, backend, events, resolver, threads, max_cells):
    """Split the chunk's cells by stage s: (padded geometry of the new cells, their rows in the chunk, states).
    Float64 decides with the chunk's bounds where it can (the compiled kernel); the rest with each row's own
    bounds (:func:`_row_errors`), then exactly."""
    C0 = chunk.size
    resolver.begin(s + 1, chunk.words)
    ctx = _Ctx(backend, resolver, s + 1, Dg, De, events)
    ctx.threads = threads
    if st.groups is not None and s > 0 and chunk.prev is not None:
        pst = prog.stages[s - 1]
        if st.src == pst.node and pst.groups is None and pst.out is None:  # max-pool right after a relu
            from .stagemaps import MaxSource, _bp_values

            ctx.maxsrc = MaxSource(s, np.arange(st.m), chunk.prev, pst.slope, pst.const,
                                   _bp_values(pst.slope, pst.const, pst.act.breakpoints))
    check = Cells(chunk.geo, backend.KAXIS, backend.PAD, max_cells, 1.0)._check
    kernel = st.groups is None and getattr(backend, "KERNEL", None) and _ckernel.available()
    if kernel:
        rag0 = _ckernel.Ragged.from_padded(chunk.geo, C0)
        rag, p, state, deferred = _ckernel.stage(backend, rag0, G, E, Dg, De, s + 1, st.act, flat_sides(st.act),
                                                 events, _NoBar(), threads, max_cells, parallel.pmap, check)
        if len(deferred):
            deferred = np.sort(deferred)
            dctx = ctx.with_rows(deferred, *_rows_bounds(prog, s, chunk, deferred, Dg, De), C0)
            sub = Cells(rag0.take(deferred).padded(), backend.KAXIS, backend.PAD, max_cells, 1.0)
            geo2, p2, s2 = _stage(sub, _StageView(st), G, E, _NoBar(), 0.0, deferred, dctx)
            rag = _ckernel.Ragged.concat([rag, _ckernel.Ragged.from_padded(geo2, len(p2))])
            p, state = np.concatenate([p, p2]), np.concatenate([state, s2])
        return rag.padded(), p, state
    rows = np.arange(C0)
    ctx = ctx.with_rows(rows, *_rows_bounds(prog, s, chunk, rows, Dg, De), C0)
    cells = Cells([a.copy() for a in chunk.geo], backend.KAXIS, backend.PAD, max_cells, 1.0)
    return _stage(cells, _StageView(st), G, E, _NoBar(), 0.0, rows, ctx)


class _StageView:
    """What :func:`._engine._stage` reads of a stage: activation, groups, width, m."""

    def __init__(self, st):
        self.activation, self.groups, self.width, self.m = st.act, st.groups, st.width, st.m


class _NoBar:
    def update(self, k):
        pass


def enumerate_graph_many(graph, domains, *, memory_budget: float | None = None, progress=None,
                         threads: int | None = None, max_cells: int = 50_000_000):
    """The cells of many small 2-D domains of one graph in one batched search (local complexity at many
    points): every domain's root cell carries its own frame, so the cells of all domains share the chunks
    and their operator passes. Returns one ``(V, n, words)`` per domain: vertices in the domain's centred
    coordinates (C, K, 2), counts (C,), patterns (C, n_words). Where float64 leaves a sign undecided (the exact
    resolver works on one domain at a time) the batch is halved until that domain is alone, and it alone is
    enumerated by itself."""
    from .cells import _duplicates
    from .polygons import _Poly2D
    from .rational import frame_errors

    domains = list(domains)
    if not domains:
        return []
    for dm in domains:
        if dm.n_in != graph.n_in or dm.dim != 2:
            raise PiecewiseError(f"batched domains must be 2-D slices of R^{graph.n_in}, got a {dm.dim}-D {dm.kind} "
                                 f"in R^{dm.n_in}")
    budget = check_budget(memory_budget)
    threads = max(1, int(parallel.default_threads() if threads is None else threads))
    prog = Program(graph)
    backend, d, N = _Poly2D, 2, len(domains)
    events = Events(d)
    packer = Packer(prog.n_units, prog.bits)
    M0 = np.stack([np.concatenate([dm.axes, dm.center[None]], 0) for dm in domains])  # (N, 3, n_in)
    errs = [frame_errors(dm) for dm in domains]
    eA, ec = np.max([e[0] for e in errs], 0), np.max([e[1] for e in errs], 0)
    geo0 = backend.init(d)
    geo = [np.repeat(a, N, 0) for a in geo0]
    root = _Chunk(geo, np.zeros((N, packer.n_words), np.uint32), {0: M0.reshape(N, d + 1, *graph.input_shape)},
                  {0: (eA, ec)}, root=np.arange(N), l2={0: _frame_l2((eA, ec), d)})
    res = _Result(False, "polygon", False, keep_geo=True)
    resolver = _GraphResolver(graph, prog, None, events)
    bar = _bar(progress, len(prog.stages))
    offsets = np.cumsum([0] + [st.width for st in prog.stages])
    split = False
    try:
        _dfs(prog, 0, root, backend, events, packer, offsets, resolver, res, budget / (len(prog.stages) + 1),
             threads, max_cells, bar)
    except _ExactNeeded:  # some domain needs the one-domain resolver: halve the batch until it is alone
        split = True
    finally:
        if bar is not None:
            bar.close()
    if split:  # outside the except clause: its traceback (the search's frames and maps) is gone
        del root, res, events, resolver, geo, M0
        if N > 1:
            kw = dict(memory_budget=budget, progress=False, threads=threads, max_cells=max_cells)
            return (enumerate_graph_many(graph, domains[: N // 2], **kw)
                    + enumerate_graph_many(graph, domains[N // 2:], **kw))
        cx = enumerate_graph(graph, domains[0], memory_budget=budget, progress=False, threads=threads,
                             max_cells=max_cells)
        return [(cx.vertices_c, cx.n_vertices, cx.patterns)]
    g = concat_geo(res.geo, backend.KAXIS, backend.PAD)
    words = np.concatenate(res.words)
    roots = np.concatenate(res.roots)
    order = np.argsort(roots, kind="stable")
    bounds = np.searchsorted(roots[order], np.arange(N + 1))
    out = []
    for i in range(N):
        sel = order[bounds[i]:bounds[i + 1]]
        w = words[sel]
        dup = _duplicates(w)
        if dup:
            raise RuntimeError(f"internal error: {dup} duplicate activation patterns among {len(w)} cells")
        out.append((g[0][sel], g[1][sel], w))
    return out
