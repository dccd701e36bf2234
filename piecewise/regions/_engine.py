"""The stage-by-stage engine of exact enumeration (its kernel: the crossing tests and the splits of elementwise
and max stages), shared by the 1-D/2-D polygon backend (:mod:`.polygons`) and the n-D polytope backend
(:mod:`.polytopes`); its buffers are in :mod:`.buffers`, the stages' affine maps in :mod:`.stagemaps`, the
threads in :mod:`.parallel`, the per-activation rules in :mod:`.pieces`.

The network is a :class:`~piecewise.staged.StagedNet` (an MLP is the chain :func:`~piecewise.staged.from_mlp`).
The domain is parametrised by ``u`` in the unit cube [0, 1]^d. Starting from the cube, stage by stage and
unit by unit, every cell that a unit's boundary crosses is split along it, exactly, in float64:

* elementwise stages (relu, leaky_relu / PReLU, abs, hardtanh): the hyperplanes ``z_j = bp`` for every
  breakpoint ``bp`` of the activation (:attr:`~piecewise.activations.Activation.breakpoints`);
* max stages (maxout, max-pool: ``h_i = max_r z[groups[i, r]]``): for each piece ``r`` of unit ``i`` the
  part of the cell where that piece is the largest (clipping by the k - 1 half-spaces ``z_r >= z_r'``).

Inside a cell every pre-activation is affine in ``u`` (``u -> u.g + e``), so the values at the cell's vertices
decide everything. **A unit splits a cell only if some vertex is strictly on each side** (beyond
:func:`~piecewise.numerics.affine_tol`, the one tolerance, applied by :func:`~piecewise.numerics.sides`). A
boundary through a vertex, along an edge or a facet, several boundaries through one point, dead units,
duplicate or parallel units, and pre-activations identically on a breakpoint over a whole cell are therefore
counted right without special cases. Ties that hold on a whole cell are decided once, here:

* an elementwise unit identically on a breakpoint takes its state *at* the breakpoint
  (:func:`flat_sides`, read from :meth:`Activation.states`);
* max pieces that tie on a whole cell go to the lowest index (the argmax's first-index rule).

A unit can only cross a cell whose ancestor it crosses, so each unit looks only at the descendants of the
ancestors it crosses, found with one batched product over all cells (:func:`_crossings`); the ancestors are
re-taken (one more batched product for the remaining units) whenever the cells of a stage have doubled, so
the per-unit work stays proportional to the cells the unit can cut.

Both cores: the descendants of different stage-start cells never interact, so from
:data:`PARALLEL_MIN_CELLS` stage-start cells on, a stage's cells are split among the engine's threads
(:func:`.parallel.default_threads`: the cores the process may run on)
(NumPy releases the GIL inside its kernels), each with its own buffers; the event table is shared (locked).
The maps of a stage are computed in blocks on the same threads. Results do not depend on the split.

The compiled kernel (:mod:`._ckernel`, ``_kernel.c``, built at install where a C compiler is found): an
elementwise stage runs there, stage-start cell by stage-start cell (each unit tested against the cell in one
vectorised pass, then only the crossing units split its pieces), with the same rules and float64
expressions as the NumPy functions below, so its cells are bit-identical to theirs (tests/test_kernel.py).
Between kernel stages the cells stay ragged (:class:`._ckernel.Ragged`), not padded to the largest vertex
count. Max stages and the 1-D backend always run in NumPy; without the kernel everything does.

Memory: per cell the engine keeps its geometry (backend arrays), a parent index, the sides fixed within the
current stage and the packed pattern words. The affine maps of earlier stages' outputs are kept lazily
(:class:`.stagemaps._StageMap`: the stage-start pre-activation maps, indexed by ancestor, and the per-cell states,
int8), and evaluated in blocks of cells when a later stage or the output reads them.

Every new facet gets a *label*: the id of the split event that created it (elementwise splits: one id per
cell cut; max stages: one id per stage-start cell, unit and class of coinciding lines ``z_r = z_r'``).
Both cells on the two sides of any facet of the final complex carry that facet with the same label (later
splits only subdivide it), which is how adjacency is found without comparing every pair of cells. The
hyperplane of every event (``u.g + e = 0``) is kept in an :class:`.buffers.Events` table.
"""
from __future__ import annotations

import numpy as np

from ..activations import Activation
from ..errors import PiecewiseError
from .._shared import UNSET_LABEL
from ..numerics import U
from . import _ckernel, parallel
from ._resolve import Resolver, absmax_last, decide
from .buffers import Cells, Events, Packer, _pad_axis1, concat_geo
from .parallel import default_threads
from .pieces import flat_sides, piece_tables, state_bits as _bits
from .stagemaps import _InputMap, _StageMap, _max_source, affine_of, row_bounds


# -- buffers of cells -----------------------------------------------------------------------------------


# -- lazy affine maps of the stages' outputs -----------------------------------------------------------




# -- pattern words -------------------------------------------------------------------------------------


# -- the stages ----------------------------------------------------------------------------------------
def values(V, g, e):
    """Values at the vertices V (c, K, d) of c -> c.g + e: g (c, d), e (c,) -> (c, K)."""
    f = e[:, None] + V[..., 0] * g[:, 0, None]
    for i in range(1, V.shape[-1]):
        f = f + V[..., i] * g[:, i, None]
    return f


def _valid(n, K):
    return np.arange(K)[None, :] < n[:, None]


class _Ctx:
    """What the NumPy path of one stage needs for its decisions: the backend (its clip and vertex labels),
    the exact resolver, the stage (1-based), the pre-activations' error bounds Dg, De (m,) and the events."""

    def __init__(self, backend, resolver, stage: int, Dg, De, events, rows=None):
        self.backend, self.resolver, self.stage, self.Dg, self.De, self.events = backend, resolver, stage, Dg, De, events
        self.rows = rows  # None, or (pos (C0,) row -> index or -1, Dg_rows, De_rows): per-row bounds
        self.maxsrc = None  # a MaxSource when the stage's max pieces are the previous stage's outputs
        self.threads = 1  # the engine's threads, for the compiled parts that take them

    def with_rows(self, rows, Dg_rows, De_rows, n_rows: int):
        """A copy with per-row error bounds (tighter than the stage's: a unit that is off on a cell contributes
        exactly 0) for the stage-start rows ``rows``."""
        pos = np.full(n_rows, -1, np.intp)
        pos[rows] = np.arange(len(rows))
        out = _Ctx(self.backend, self.resolver, self.stage, self.Dg, self.De, self.events, (pos, Dg_rows, De_rows))
        out.maxsrc, out.threads = self.maxsrc, self.threads
        return out

    def bounds(self, rows, units, pairs: bool = False):
        """Error bounds (Dg, De) of units' coefficients on stage-start rows (B,): for every row the units
        ``units`` (a slice, an array or one unit: (B, w') or (B,)), or with ``pairs`` unit ``units[t]`` on row
        ``rows[t]`` ((B,))."""
        rows = np.asarray(rows)
        if pairs:
            dg, de = np.array(self.Dg[units], np.float64), np.array(self.De[units], np.float64)
        else:
            sh = (len(rows), *np.shape(self.Dg[units]))
            dg = np.array(np.broadcast_to(self.Dg[units], sh), np.float64)
            de = np.array(np.broadcast_to(self.De[units], sh), np.float64)
        if self.rows is None:
            return dg, de
        pos, Dr, Er = self.rows
        have = np.nonzero(pos[rows] >= 0)[0]
        if len(have):
            pr = pos[rows[have]]
            if pairs:
                u = np.asarray(units)[have]
                dg[have], de[have] = Dr[pr, u], Er[pr, u]
            elif isinstance(units, slice) or np.ndim(units) == 0:
                dg[have], de[have] = Dr[pr, units], Er[pr, units]
            else:  # only the entries asked for (not whole rows: a max stage asks for k of m units at a time)
                u = np.asarray(units)[None, :]
                dg[have], de[have] = Dr[pr[:, None], u], Er[pr[:, None], u]
        return dg, de

    def signs(self, geo, rows, g, e, Dg, De, query, on_label=None, pre=None):
        """Signs at the vertices of the batch ``geo`` (backend geometry, rows (B,) stage-start rows) of the
        affine functions (g (B, d), e (B,), error bounds Dg, De (B,)): (f, tol, cls, sure) as
        :func:`._resolve.decide`, with every undecided sign decided exactly (``query(b, states)``: the exact
        hyperplane of cell b's function). ``on_label`` (B,): a facet label whose hyperplane is cell b's
        function's own zero set (a coinciding max-piece boundary): its vertices are exactly 0."""
        V, n, D = geo[0], geo[1], geo[-1]
        f, tol, cls, sure = decide(V, n, D, g, e, Dg, De, V.shape[-1])
        done = sure.copy()  # decided (sure: decided by float64, so crossings there are interpolated)
        if on_label is not None and not done.all():
            on = self.backend_on_label(geo, on_label) & ~done
            cls[on], done[on], sure[on] = 0, True, True
        if pre is not None and not done.all():
            pre(cls, done, sure, f)
        if not done.all():
            vl = self.backend.vertex_labels
            self.resolver.resolve(cls, done, _valid(n, V.shape[1]), rows, lambda b, k: vl(geo, b, k), query)
        return f, tol, cls, sure

    def vertices_on_unit(self, geo, stage: int, unit: int):
        """Which vertices (B, K) carry a facet label made by ``unit`` of ``stage`` (they lie on its breakpoint
        ``q`` (B, K), exactly), combinatorially."""
        ev = self.events.finish()
        meta = ev.meta
        B, K = geo[1].shape[0], geo[0].shape[1]
        valid = np.arange(K)[None, :] < geo[1][:, None]

        def hit(labels):
            lab = np.asarray(labels)
            ok = lab >= 0
            m = meta[np.where(ok, lab, 0)]
            return ok & (m[..., 0] == stage) & (m[..., 1] == unit), m[..., 2]

        if len(geo) == 5:  # polytopes: the slots of the label
            inc, flab = geo[2], geo[3]
            h, q = hit(flab)  # (B, 64)
            bits = np.where(h, np.uint64(1) << np.arange(flab.shape[1], dtype=np.uint64), np.uint64(0))
            mask = np.bitwise_or.reduce(bits, axis=1)
            on = valid & ((inc & mask[:, None]) != 0)
            qv = np.where(h, q, -1).max(1)
            return on, np.broadcast_to(qv[:, None], (B, K))
        L = geo[2]
        h, q = hit(L)
        if self.backend.KAXIS == (True, False, True, True):  # polygons: the edges before and after a vertex
            prev = (np.arange(K)[None, :] - 1) % np.maximum(geo[1][:, None], 1)
            hp = np.take_along_axis(h, prev, 1)
            qp = np.take_along_axis(q, prev, 1)
            return valid & (h | hp), np.where(h, q, qp)
        return valid & h, q

    def backend_on_label(self, geo, labels):
        """Which vertices (B, K) lie on the facet labelled ``labels[b]`` of their cell (combinatorially)."""
        L = geo[2]
        K = L.shape[1]
        valid = np.arange(K)[None, :] < geo[1][:, None]
        lab = np.asarray(labels)[:, None]
        if self.backend.KAXIS == (True, False, True, True):  # polygons: the edges before and after a vertex
            prev = np.take_along_axis(L, (np.arange(K)[None, :] - 1) % np.maximum(geo[1][:, None], 1), 1)
            return valid & ((L == lab) | (prev == lab))
        if len(geo) == 4:  # intervals: the end points' labels
            return L == lab
        inc, flab = geo[2], geo[3]  # polytopes: the slots carrying the label
        slot_bits = np.where(flab == lab, np.uint64(1) << np.arange(flab.shape[1], dtype=np.uint64), np.uint64(0))
        mask = np.bitwise_or.reduce(slot_bits, axis=1)
        return valid & ((inc & mask[:, None]) != 0)

    def point_fn(self, rows, query):
        """``exact_point(b, labels)`` for a backend's clip: the exact crossing for cell b of the batch."""
        return lambda b, labs: self.resolver.point(rows[b], labs, lambda st: query(b, st))

    def aux(self, rows, query, g, e, dg, de):
        """What a backend's clip needs besides the geometry: the exact crossing (``exact``), the float
        hyperplanes of labels (``planes``) and of the cut (``cut``: g (B, d), e (B,), dg (B,), de (B,))."""
        return _Aux(self.point_fn(rows, query), self.events.planes_err, (g, e, dg, de))


class _Aux:
    __slots__ = ("exact", "planes", "cut")

    def __init__(self, exact, planes, cut):
        self.exact, self.planes, self.cut = exact, planes, cut


def _crossings(cells, G, E, root, units, bps, flat, ctx, block: int = 1 << 21):
    """Which units each cell's vertices see strictly on both sides of each breakpoint, and the side of the
    others: G (P, d, w), E (P, w) the units' maps on the cells ``root`` (C,), restricted to ``units`` (a
    slice). Returns ([cross (C, w') bool], [side (C, w') int8]) per breakpoint. Every sign is decided (float64
    with its error bound, exactly where that does not suffice).

    Cells are taken in blocks of similar vertex count, each padded only to its own largest count (about
    ``block`` values per array)."""
    from ..numerics import vertex_tolerance

    V, n, D = cells.live(0), cells.live(1), cells.live(len(cells.geo) - 1)
    j_all = np.arange(E.shape[1])[units]
    w = j_all.size
    d = V.shape[-1]
    cross = [np.empty((len(n), w), bool) for _ in bps]
    side = [np.empty((len(n), w), np.int8) for _ in bps]
    order = np.argsort(n, kind="stable")
    s = 0
    while s < len(n):
        idx = order[s:s + max(1, block // (int(n[order[s]]) * max(w, 1)))]
        K = int(n[idx].max())  # the counts are sorted: shrink the block if its last cells are larger
        idx = order[s:s + max(1, block // (K * max(w, 1)))]
        K = int(n[idx].max())
        s += len(idx)
        valid = _valid(n[idx], K)
        Vb = V[idx, :K]
        Db = D[idx, :K]
        r = root[idx]
        Gb = G[r][:, :, units]
        Eb = E[r][:, units]
        absg = np.abs(Gb[:, 0])
        for i in range(1, d):
            absg = absg + np.abs(Gb[:, i])
        vinf = absmax_last(Vb)
        Dg, De = ctx.bounds(r, units)  # (b, w')
        for q, bp in enumerate(bps):
            e = Eb - bp
            f = e[:, None, :] + Vb[:, :, 0, None] * Gb[:, None, 0, :]
            for i in range(1, d):
                f = f + Vb[:, :, i, None] * Gb[:, None, i, :]
            A, B, C = vertex_tolerance(absg, np.abs(e), Dg, De, d)
            tol = (A[:, None, :] + B[:, None, :] * vinf[..., None]) + C[:, None, :] * Db[..., None]
            vm = valid[..., None]
            up_v, dn_v = vm & (f > tol), vm & (f < -tol)
            up, dn = up_v.any(1), dn_v.any(1)
            und = vm & ~up_v & ~dn_v & ~((tol == 0.0) & (f == 0.0))
            bi, ji = np.nonzero(und.any(1))
            if len(bi):  # decide the undecided (cell, unit) pairs exactly
                cls = np.where(up_v, 1, np.where(dn_v, -1, 0)).astype(np.int8)[bi, :, ji]
                sure = ~und[bi, :, ji]
                gi = idx[bi]
                vl = ctx.backend.vertex_labels
                uj = j_all[ji]
                qf = lambda t, st, uj=uj, q=q: ctx.resolver.query_plane(int(uj[t]), q, 1, st)  # noqa: E731
                qf.units, qf.sub = uj, q  # for resolvers that decide many units of one row at once
                ctx.resolver.resolve(cls, sure, valid[bi], r[bi], lambda t, k: vl(cells.geo, int(gi[t]), k), qf)
                up[bi, ji], dn[bi, ji] = (cls > 0).any(1), (cls < 0).any(1)
            cross[q][idx] = up & dn
            side[q][idx] = np.where(up, np.int8(1), np.where(dn, np.int8(0), flat[q]))
    return cross, side


def _split_unit(cells: Cells, ctx, cand, g, e, unit: int, q: int, col):
    """Split the cells ``cand`` that the zero set of c -> c.g + e crosses (g (c, d), e (c,) per candidate):
    unit ``unit`` at breakpoint ``q`` of the stage."""
    n = cells.geo[1][cand]
    K = int(n.max())
    geo = cells.take(cand, K)
    rows = cells.parent[cand]
    query = lambda b, st: ctx.resolver.query_plane(unit, q, 1, st)  # noqa: E731
    m = len(cand)
    dg, de = ctx.bounds(rows, unit)  # (m,)
    with np.errstate(divide="ignore", invalid="ignore"):
        f, tol, cls, sure = ctx.signs(geo, rows, g, e, dg, de, query)
        k = np.nonzero((cls > 0).any(1) & (cls < 0).any(1))[0]
        if not len(k):
            return
        # the events keep the stage's bounds (as the compiled kernel's do: the same vertices' error bounds)
        ids = events_add(ctx.events, g[k], e[k], ctx.stage, unit, q, ctx.Dg[unit], ctx.De[unit])
        geo_k = [a[k] for a in geo]
        plus, minus = ctx.backend.clip(geo_k, f[k], tol[k], cls[k], sure[k], ids,
                                       ctx.aux(rows[k], lambda b, st: query(0, st), g[k], e[k], dg[k], de[k]))
    cells.split(cand[k], plus, minus, col)


def events_add(events, g, e, stage, unit, sub, dg, de):
    P = len(e)
    return events.add(g, e, stage, np.broadcast_to(unit, (P,)), np.broadcast_to(sub, (P,)), dg, de)


def elementwise_stage(cells: Cells, ctx, act: Activation, G, E, bar, regrow: float = 2.0):
    """Split by every unit of an elementwise PL stage; returns the states (C, w) int8 of the cells afterwards.

    Call :meth:`Cells.new_stage` first (``w * len(breakpoints)`` side columns). G (P, d, w), E (P, w): the
    units' pre-activation maps on the stage-start cells (``cells.parent``). The
    units are taken in chunks: at the start of a chunk, one batched product over the current cells (the
    chunk's *ancestors*, ``cells.anc``) finds which ancestors each unit of the chunk crosses, so a unit looks
    only at the descendants of those; a new chunk starts once the cells have grown ``regrow`` times. At the
    end of a chunk every cell's side of each of its units is settled (``cells.side``)."""
    bps = act.breakpoints
    nb, w = len(bps), G.shape[-1]
    flat = flat_sides(act)
    j0 = 0
    while j0 < w:
        cells.anc = np.arange(len(cells.parent))
        size0 = cells.size
        root = cells.parent[:size0]
        j1 = w
        cross0, anc = _crossings(cells, G, E, root, slice(j0, j1), bps, flat, ctx)
        if j0 == 0:
            _refuse_if_too_many(cells, cross0)
        j = j0
        while j < j1:
            for q, bp in enumerate(bps):
                cand = np.nonzero(cross0[q][cells.anc[: cells.size], j - j0])[0]
                if len(cand):
                    p = cells.parent[cand]
                    _split_unit(cells, ctx, cand, G[p, :, j], E[p, j] - bp, j, q, j * nb + q)
            bar.update(1)
            j += 1
            if cells.size > regrow * size0 + 64:
                break
        _settle_sides(cells, ctx, G, E, bps, flat, cross0, anc, j0, j)
        j0 = j
    return cells.side[: cells.size].reshape(cells.size, w, nb).sum(-1, dtype=np.int8)


def _settle_sides(cells, ctx, G, E, bps, flat, cross0, anc, j0, j1):
    """Fill ``cells.side`` for units j0..j1-1: a side fixed by a split is kept; a cell whose ancestor the unit
    does not cross inherits the ancestor's side; the rest (ancestor crossed, this piece not) lie on one side:
    look at their vertices (identically on the breakpoint: the state at the breakpoint, ``flat``)."""
    nb = len(bps)
    p, a = cells.parent[: cells.size], cells.anc[: cells.size]
    for q, bp in enumerate(bps):
        cols = np.arange(j0, j1) * nb + q
        side = cells.side[: cells.size, cols]
        cp = cross0[q][a, : j1 - j0]
        todo = side < 0
        side = np.where(todo & ~cp, anc[q][a, : j1 - j0], side)
        ci, uj = np.nonzero(todo & cp)
        del cp, todo
        if len(ci):
            K = int(cells.geo[1][ci].max())
            geo = cells.take(ci, K)
            units = j0 + uj
            pc = p[ci]
            g, e = G[pc, :, units], E[pc, units] - bp
            dg, de = ctx.bounds(pc, units, pairs=True)
            _, _, cls, _ = ctx.signs(geo, pc, g, e, dg, de,
                                     lambda b, st: ctx.resolver.query_plane(int(units[b]), q, 1, st))
            up, down = (cls > 0).any(1), (cls < 0).any(1)
            side[ci, uj] = np.where(up, 1, np.where(down, 0, flat[q]))
        cells.side[: cells.size, cols] = side


def _line_classes(g, e, rows, ctx, unit: int, zero=None, pairs=None):
    """For lines (P, L, d), (P, L) per stage-start row: the index of the first line with the same zero set
    as each, (P, L), so that coinciding max-piece boundaries share one label. Float64 proposes candidates
    (proportional to 1e-9); two pairs (a, b), (a, c) whose other pieces b, c are both proven identically 0 on
    the row (``zero`` (P, k): coefficients 0 with error bound 0, e.g. relu units off) are the same line z_a;
    exact arithmetic confirms the other candidates."""
    a = np.concatenate([g, e[..., None]], -1)
    nz = absmax_last(a) > 0  # a pair whose difference is computed exactly 0 is no line: a class of its own
    a = a / np.maximum(absmax_last(a), 1e-300)[..., None]
    L = a.shape[1]
    cls = np.tile(np.arange(L), (a.shape[0], 1))
    for q in range(L - 1, -1, -1):
        for r in range(q):
            prop = (absmax_last(a[:, q] - a[:, r]) <= 1e-9) | (absmax_last(a[:, q] + a[:, r]) <= 1e-9)
            prop &= nz[:, q] & nz[:, r]
            cls[:, q] = np.where(prop & (r < cls[:, q]), r, cls[:, q])
    for p, q in zip(*np.nonzero(cls != np.arange(L)[None, :])):
        r = int(cls[p, q])
        if zero is not None:
            (a1, b1), (a2, b2) = pairs[q], pairs[r]
            common = {a1, b1} & {a2, b2}
            if len(common) == 1:
                c = common.pop()
                o1, o2 = ({a1, b1} - {c}).pop(), ({a2, b2} - {c}).pop()
                if zero[p, o1] and zero[p, o2]:
                    continue  # both lines are exactly z_c = 0 (up to sign)
        st = ctx.resolver.states(int(rows[p]))
        u = ctx.resolver.query_plane(unit, int(q), 1, st)
        v = ctx.resolver.query_plane(unit, r, 1, st)
        if any(u[i] * v[k] != u[k] * v[i] for i in range(len(u)) for k in range(i + 1, len(u))):
            cls[p, q] = q  # not the same line after all
    return cls


def max_unit(cells: Cells, ctx, G, E, unit: int, pieces):
    """Split cells by the argmax of one max unit: G (P, d, k), E (P, k) of its pieces per stage-start cell
    (``pieces`` (k,): their indices among the stage's pre-activations, for their error bounds ``ctx.bounds``);
    appends the unit's state to ``cells.lab``."""
    kaxis, pad, clip = ctx.backend.KAXIS, ctx.backend.PAD, ctx.backend.clip
    geo0 = cells.take(slice(0, cells.size))
    rows, p = np.unique(cells.parent[: cells.size], return_inverse=True)  # this part's stage-start cells
    G, E = G[rows], E[rows]
    lab0 = cells.lab[: cells.size]
    k = G.shape[-1]
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    pidx = {pr: t for t, pr in enumerate(pairs)}
    gl = np.stack([G[:, :, i] - G[:, :, j] for i, j in pairs], 1)  # (P0, L, d)
    el = np.stack([E[:, i] - E[:, j] for i, j in pairs], 1)
    pa, pb = np.array([i for i, _ in pairs]), np.array([j for _, j in pairs])
    Dg, De = ctx.bounds(rows, np.asarray(pieces))  # (P0, k)
    zero = (Dg == 0) & (De == 0) & np.all(G == 0, axis=1) & (E == 0)  # pieces proven identically 0 on a row
    cls = _line_classes(gl, el, rows, ctx, unit, zero, pairs)
    gdg = (Dg[:, pa] + Dg[:, pb]) + 2 * U * np.abs(gl).sum(-1)  # (P0, L): the differences' own rounding
    gde = (De[:, pa] + De[:, pb]) + 2 * U * np.abs(el)
    # event ids per (stage-start row, line class), registered only when the line first cuts a cell: most
    # pairs never do, and the event table lives as long as the count (a VGG plane made tens of millions)
    ids = np.full((len(G), len(pairs)), UNSET_LABEL, np.int64)

    def ensure(r, t):
        new = ids[r, t] == UNSET_LABEL
        if new.any():
            key = np.unique(np.stack([r[new], t[new]], 1), axis=0)
            rr, tt = key[:, 0], key[:, 1]
            ids[rr, tt] = events_add(ctx.events, gl[rr, tt], el[rr, tt], ctx.stage, unit, tt, gdg[rr, tt],
                                     gde[rr, tt])
        return ids[r, t]
    parts, parents, labels = [], [], []
    for i in range(k):
        geo, alive, prow = geo0, np.ones(len(p), bool), rows[p]
        for j in range(k):
            if j == i:
                continue
            t = pidx[(min(i, j), max(i, j))]
            sgn = 1 if i < j else -1
            g, e = sgn * gl[p, t], sgn * el[p, t]
            dg, de = gdg[p, t], gde[p, t]
            query = lambda b, st, t=t, sgn=sgn: ctx.resolver.query_plane(unit, t, sgn, st)  # noqa: E731
            pre = None
            if ctx.maxsrc is not None:  # pieces known exactly at a vertex: the pair's sign without arithmetic
                def pre(cls_, done_, sure_, f_, i=i, j=j, geo=geo, prow=prow):
                    ki, vi = ctx.maxsrc.known(ctx, geo, prow, int(pieces[i]))
                    kj, vj = ctx.maxsrc.known(ctx, geo, prow, int(pieces[j]))
                    both = ki & kj & ~done_
                    sg = np.sign(vi - vj).astype(np.int8)  # exact: comparisons of float64 values
                    cls_[both] = sg[both]
                    done_[both] = True
                    # interpolate only where float64 has the same strict sign (or the vertex is on the cut)
                    sure_[both & ((sg == 0) | (np.sign(f_) == sg))] = True
            with np.errstate(divide="ignore", invalid="ignore"):
                f, tol, c, sure = ctx.signs(geo, prow, g, e, dg, de, query, on_label=ids[p, cls[p, t]], pre=pre)
                big, small = (c > 0).any(1), (c < 0).any(1)
                alive &= big | (~big & ~small & (j > i))  # a tie on the whole cell goes to the lowest index
                cut = alive & big & small
                if cut.any():
                    idx = np.nonzero(cut)[0]
                    lid = ensure(p[idx], cls[p[idx], t])
                    piece = clip([a[idx] for a in geo], f[idx], tol[idx], c[idx], sure[idx], lid,
                                 ctx.aux(prow[idx], lambda b, st, q=query: q(0, st), g[idx], e[idx], dg[idx],
                                         de[idx]))[0]
                    geo = [a.copy() for a in geo]
                    for r, (a, b) in enumerate(zip(geo, piece)):
                        if kaxis[r] and b.shape[1] > a.shape[1]:
                            geo[r] = a = _pad_axis1(a, b.shape[1], pad[r])
                        elif kaxis[r] and b.shape[1] < a.shape[1]:
                            b = _pad_axis1(b, a.shape[1], pad[r])
                        a[idx] = b
        a = np.nonzero(alive)[0]
        parts.append([x[a] for x in geo])
        parents.append(rows[p[a]])
        labels.append(np.c_[lab0[a], np.full(len(a), i, np.int8)])
    cells.reset(concat_geo(parts, kaxis, pad), np.concatenate(parents), np.concatenate(labels))


def run(staged, domain, backend, *, max_cells: int, bar, threads: int | None = None):
    """Enumerate the cells of ``staged`` on ``domain`` with ``backend`` (module with ``init(d)``, ``clip``,
    ``vertex_labels``, ``KAXIS``, ``PAD``, ``BYTES_PER_CELL``) in the domain's centred coordinates. Returns
    (cells, words, J, c, (DJ, Dc), events): the live geometry (padded arrays, or the compiled kernel's ragged
    cells, :class:`._ckernel.Ragged`), packed patterns (C, n_words) uint32, the output's affine map
    ``y = c @ J + c0`` (J (C, d, n_out)), the error bounds DJ, Dc (n_out,) of its gradients (``|.|_1`` over d)
    and offsets (any cell) and the event table."""
    threads = max(1, int(default_threads() if threads is None else threads))
    d = domain.dim
    events = Events(d)
    cells = Cells(backend.init(d), backend.KAXIS, backend.PAD, max_cells, backend.bytes_per_cell(d))
    stages = staged.stages
    last = {0: 0}
    for s, st in enumerate(stages, 1):
        for j in st.weights:
            last[j] = s
    for j in staged.out_weights:
        last[j] = len(stages) + 1
    sources = {0: _InputMap(domain)}
    bits = max([_bits(st) for st in stages] or [1])
    packer = Packer(sum(st.width for st in stages), bits)
    resolver = Resolver(staged, domain, events, (bits, [st.width for st in stages]))
    words = np.zeros((1, packer.n_words), np.uint32)
    for s, st in enumerate(stages, 1):
        C0 = cells.size
        with np.errstate(over="ignore", invalid="ignore"):
            G, E, Dg, De = affine_of(st.weights, st.bias, sources, C0, threads=threads)
        _check_finite((Dg, De, G, E), f"stage {s}'s pre-activations")
        resolver.begin(s, words)
        ctx = _Ctx(backend, resolver, s, Dg, De, events)
        ctx.threads = threads
        ctx.maxsrc = _max_source(st, s, sources)
        n_parts = threads if C0 >= PARALLEL_MIN_CELLS else 1
        kernel = st.groups is None and getattr(backend, "KERNEL", None) and _ckernel.available()
        if not kernel and cells.rag is not None:
            cells.unrag()
        if kernel:
            rag0 = cells.rag if cells.rag is not None else _ckernel.Ragged.from_padded(cells.geo, C0)
            cells.rag = None
            rag, p, state, deferred = _ckernel.stage(backend, rag0, G, E, Dg, De, s, st.activation,
                                                     flat_sides(st.activation), events, bar, threads, max_cells,
                                                     parallel.pmap, cells._check)
            if len(deferred):  # stage-start cells with a sign float64 could not decide: the NumPy path, with each
                deferred = np.sort(deferred)  # row's own error bounds, exactly where those do not decide
                dctx = ctx.with_rows(deferred, *row_bounds(st.weights, st.bias, sources, deferred), C0)
                sub = Cells(rag0.take(deferred).padded(), backend.KAXIS, backend.PAD, max_cells, cells.bpc)
                geo2, p2, s2 = _stage(sub, st, G, E, bar, 0.0, deferred, dctx)
                rag = _ckernel.Ragged.concat([rag, _ckernel.Ragged.from_padded(geo2, len(p2))])
                p, state = np.concatenate([p, p2]), np.concatenate([state, s2])
                cells._check(len(p))
            del rag0
            parts = None
        else:  # the NumPy path (max stages, or no kernel), with each row's own error bounds
            ctx = ctx.with_rows(np.arange(C0), *row_bounds(st.weights, st.bias, sources, np.arange(C0)), C0)
            if n_parts == 1:
                parts = [_stage(cells, st, G, E, bar, 1.0, np.arange(C0), ctx)]
            else:  # the stage-start cells' descendants are independent: split them among the threads
                subsets = [np.arange(t, C0, n_parts) for t in range(n_parts)]
                subcells = [Cells([a[idx] for a in cells.geo], backend.KAXIS, backend.PAD, max_cells, cells.bpc)
                            for idx in subsets]
                cells.reset([a[:1] for a in cells.geo], np.zeros(1, np.intp), np.zeros((1, 0), np.int8))  # free
                parts = parallel.pmap(lambda t, G=G, E=E: _stage(subcells[t], st, G, E, bar, 1.0 / n_parts, subsets[t],
                                                         ctx), range(n_parts), n_parts)
                del subcells
        if parts is None:  # the kernel's cells stay ragged until a NumPy stage or the end needs them padded
            total = len(p)
            cells.reset(None, p, np.zeros((total, 0), np.int8), rag=rag)
            del rag
        else:
            total = sum(len(pa) for _, pa, _ in parts)
            cells._check(total)
            p = np.concatenate([pa for _, pa, _ in parts])  # stage-start cell (row of G, E) of every new cell
            state = np.concatenate([sa for _, _, sa in parts])
            geo = parts[0][0] if len(parts) == 1 else concat_geo([g for g, _, _ in parts], backend.KAXIS, backend.PAD)
            cells.reset(geo, p, np.zeros((total, 0), np.int8))
        del parts
        if st.groups is not None:
            new = _StageMap(G, E, p, state, Dg, De, groups=st.groups)
        else:
            S_, K_ = piece_tables(st.activation, st.m, st.slopes)
            new = _StageMap(G, E, p, state, Dg, De, S_, K_)
            new.bps = tuple(st.activation.breakpoints)
        for j in [j for j in sources if last.get(j, 0) <= s and j != 0]:
            del sources[j]
        for src in sources.values():
            src.reindex(p)
        words = packer.add(words[p], state)
        if s < len(stages):
            _guard(total, stages[s], d, cells, bar)
        if last.get(s, 0) > s:
            sources[s] = new
        del G, E, new, state
    with np.errstate(over="ignore", invalid="ignore"):
        J, c, DJ, Dc = affine_of(staged.out_weights, staged.out_bias, sources, cells.size, output=True,
                                 threads=threads)
    _check_finite((DJ, Dc, J, c), "the network's output")
    geo = cells.rag if cells.rag is not None else [a[: cells.size] for a in cells.geo]  # ragged: padded on use
    return geo, words, J, c, (DJ, Dc), events.finish()


def _check_finite(arrays, what: str):
    """Refuse (one line) when the coefficients or their error bounds overflow float64 on this domain."""
    if not all(np.isfinite(a).all() for a in arrays):
        raise PiecewiseError(f"{what} overflow float64 on this domain (coefficients beyond 1e308): use a smaller "
                             "box or slice")


def _guard(after: int, nxt, d: int, cells: Cells, bar):
    """Before the next stage: refuse (clear error, with the figures) if its affine maps alone, which are
    certain to be allocated (cells x d x width floats, and the geometry already held), would pass the free
    memory. Cell counts are checked where they are known: a stage refuses as soon as the lower bound of its
    first crossing test passes ``max_cells`` (:func:`_refuse_if_too_many`), and the buffers never grow past
    it (:meth:`Cells._check`). (A prediction from the growth of the previous stage refused feasible counts:
    a wide stage after a narrow one says nothing of the narrow stage after it.)"""
    need = after * cells.bpc + 2 * after * (d + 1) * nxt.m * 8
    free = _free_memory()
    if hasattr(bar, "set_postfix_str"):
        bar.set_postfix_str(f"{after:,} cells")
    if free is not None and need > 0.8 * free:
        raise PiecewiseError(
            f"{after:,} cells and the next stage's maps need ~{need / 1e9:.1f} GB, {free / 1e9:.1f} GB free: use "
            "the grid method (--method grid), a smaller box, or fewer tiles' worth of domain per run (--tiles)")


def _refuse_if_too_many(cells: Cells, cross0):
    """At the start of an elementwise stage: each unit crossing a cell adds at least one cell, so the stage
    ends with at least ``cells + crossings`` cells; refuse now if that passes ``max_cells``."""
    low = cells.size + int(sum(int(np.count_nonzero(c)) for c in cross0))
    if low > cells.max_cells:
        raise PiecewiseError(
            f"more than max_cells={cells.max_cells:,} cells: this stage gives at least {low:,} (about "
            f"{cells.bpc / 1e3:.1f} kB each, {low * cells.bpc / 1e9:.2f} GB): use the grid method (--method grid), a "
            "smaller domain, or raise max_cells")


def _free_memory():
    import os

    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


PARALLEL_MIN_CELLS = 2048  # split a stage among threads from this many stage-start cells


class _Frac:
    """Progress in fractions of a unit (each thread does its share of every unit)."""

    def __init__(self, bar, frac):
        self.bar, self.frac = bar, frac

    def update(self, k):
        self.bar.update(k * self.frac)


def _stage(cells: Cells, st, G, E, bar, frac, start, ctx):
    """One stage on ``cells``, whose rows of G, E are ``start``: (geo, stage-start index, states int8)."""
    bar = _Frac(bar, frac)
    if st.groups is not None:
        cells.new_stage(0, start)
        winner = _max_winners(cells, ctx, st, G, E)  # by map row (each stage-start cell has its own)
        for i in range(st.width):
            w = winner[:, i]
            if np.all(w >= 0):  # one piece wins on every stage-start cell: no cell is split by this unit
                cells.lab = np.c_[cells.lab[: cells.size], w[cells.parent[: cells.size]].astype(np.int8)]
            else:
                gi = st.groups[i]
                wc = w[cells.parent[: cells.size]]
                if np.all(wc < 0):
                    max_unit(cells, ctx, G[:, :, gi], E[:, gi], i, gi)
                else:  # only the cells whose winner float64 could not name go through the unit's split
                    geo = cells.take(slice(0, cells.size))
                    par, lab = cells.parent[: cells.size], cells.lab[: cells.size]
                    keep, todo = np.nonzero(wc >= 0)[0], np.nonzero(wc < 0)[0]
                    kept = [a[keep] for a in geo], par[keep], np.c_[lab[keep], wc[keep].astype(np.int8)]
                    cells.reset([a[todo] for a in geo], par[todo], lab[todo])
                    max_unit(cells, ctx, G[:, :, gi], E[:, gi], i, gi)
                    cells.reset(concat_geo([kept[0], cells.take(slice(0, cells.size))], cells.kaxis, cells.pad),
                                np.concatenate([kept[1], cells.parent[: cells.size]]),
                                np.concatenate([kept[2], cells.lab[: cells.size]]))
            bar.update(1)
        state = cells.lab[: cells.size].astype(np.int8)
    else:
        cells.new_stage(st.width * len(st.activation.breakpoints), start)
        state = elementwise_stage(cells, ctx, st.activation, G, E, bar)
    return [a[: cells.size] for a in cells.geo], cells.parent[: cells.size].copy(), state


MAX_PREFILTER_ELEMS = 1 << 22  # (cells x vertices x units) per block of the max-stage prefilter


def _max_winners(cells: Cells, ctx, st, G, E) -> np.ndarray:
    """For every stage-start cell and max unit (w,): the piece whose region is the whole cell, where the signs
    at the cell's vertices prove it, or -1; indexed by the cells' map rows (rows of G, E: one per stage-start
    cell). Such a unit splits neither that cell nor any part of it, so the stage splits by the other units only.

    Piece i wins the cell when, against every other piece j, the difference z_i - z_j is >= 0 at every vertex
    (the cell is convex, the difference affine: >= 0 on the whole cell) and, for j < i, > 0 at some vertex: a
    tie on the whole cell goes to the lowest index, as :func:`max_unit` breaks it (and where it would split, it
    keeps only the winner's piece). A vertex's sign is float64's with its error bound, a proven 0 (both pieces
    0 with error bound 0), or, when the pieces are the previous relu stage's outputs (``ctx.maxsrc``), exact
    from their known values (a unit off, or a vertex on the unit's own boundary): a pool window's off units and
    the vertices on a unit's breakpoint are where float64 alone cannot tell. Vectorised over units in blocks."""
    from ..numerics import vertex_tolerance

    geo = cells.take(slice(0, cells.size))
    V, n, D = geo[0], geo[1], geo[-1]
    C, K, d = V.shape
    rows = cells.parent[: cells.size]
    w, k = st.groups.shape
    out = np.full((len(G), w), -1, np.int64)
    if C == 0 or k < 2 or len(np.unique(rows)) != C:
        return out
    winner = np.full((C, w), -1, np.int64)
    valid = np.arange(K)[None, :] < n[:, None]
    vm = valid[..., None]
    vinf = absmax_last(V)
    step = max(1, MAX_PREFILTER_ELEMS // max(C * K * k, 1))
    on_labels = _vertex_units(ctx, geo) if ctx.maxsrc is not None else None
    if getattr(ctx.backend, "KERNEL", None) and _ckernel.available():  # the same rule, compiled
        known = None
        if ctx.maxsrc is not None:
            ms = ctx.maxsrc
            s_ = ms.states[rows][:, ms.units].astype(np.intp)  # (C, m): the state of each piece's unit
            known = (ms.slope[s_, ms.units] == 0.0, ms.const[s_, ms.units], ms.units, None, None)
            if on_labels is not None:
                vu, vq = on_labels
                known = known[:3] + (vu, ms.bp_values[np.clip(vq, 0, len(ms.bp_values) - 1)])
        Dg, De = ctx.bounds(rows, slice(None))  # (C, m)
        out[rows] = _ckernel.max_winners(V, n, D, vinf, rows, G, E, Dg, De, st.groups, known,
                                         ctx.threads)
        return out
    Gr, Er = G[rows], E[rows]
    for u0 in range(0, w, step):
        units = np.arange(u0, min(u0 + step, w))
        gi = st.groups[units]  # (w', k)
        Gp, Ep = Gr[:, :, gi], Er[:, gi]  # (C, d, w', k), (C, w', k)
        Dg, De = ctx.bounds(rows, gi.reshape(-1))
        Dg, De = Dg.reshape(C, len(units), k), De.reshape(C, len(units), k)
        kn = kv = None
        if ctx.maxsrc is not None:
            kn, kv = _known_values(ctx.maxsrc, rows, gi, valid, on_labels)  # (C, K, w', k)
        ok = np.ones((C, len(units), k), bool)
        for i in range(k):
            for j in range(i + 1, k):
                g = Gp[..., i] - Gp[..., j]  # (C, d, w')
                e = Ep[..., i] - Ep[..., j]
                absg = np.abs(g).sum(1)
                dg = (Dg[..., i] + Dg[..., j]) + 2 * U * absg
                de = (De[..., i] + De[..., j]) + 2 * U * np.abs(e)
                fv = np.einsum("ckd,cdu->cku", V, g) + e[:, None]  # the pair's difference as the engine computes it
                A, B, Cc = vertex_tolerance(absg, np.abs(e), dg, de, d)
                tol = (A[:, None] + B[:, None] * vinf[..., None]) + Cc[:, None] * D[..., None]
                up, dn = fv > tol, fv < -tol
                und = ~up & ~dn & ~((tol == 0.0) & (fv == 0.0))
                if kn is not None:  # both values known exactly: their comparison is the sign
                    both = kn[..., i] & kn[..., j]
                    up = np.where(both, kv[..., i] > kv[..., j], up)
                    dn = np.where(both, kv[..., i] < kv[..., j], dn)
                    und &= ~both
                und, big, small = (vm & und).any(1), (vm & up).any(1), (vm & dn).any(1)  # (C, w')
                ok[..., i] &= ~und & ~small  # i >= j on the cell (a tie goes to i, the lower index)
                ok[..., j] &= ~und & ~big & small  # j >= i on the cell, and j > i somewhere
        winner[:, units] = np.where(ok.any(-1), ok.argmax(-1), -1)
    out[rows] = winner
    return out


def _vertex_units(ctx, geo):
    """The previous stage's units whose boundary each vertex lies on, by its facet labels, with the breakpoint:
    (unit (C, K, S), breakpoint (C, K, S)), -1 where a label is no event of that stage; S labels per vertex
    (polygons: the edges before and after it; intervals: its own label). None for other backends."""
    meta = ctx.events.finish().meta
    L = geo[2]
    if ctx.backend.KAXIS == (True, False, True, True):  # polygons
        K = L.shape[1]
        prev = (np.arange(K)[None, :] - 1) % np.maximum(geo[1][:, None], 1)
        labs = np.stack([L, np.take_along_axis(L, prev, 1)], -1)
    elif len(geo) == 4 and not any(ctx.backend.KAXIS):  # intervals
        labs = L[..., None]
    else:
        return None
    ok = (labs >= 0) & (labs < len(meta))  # (all a cell's labels are registered events or box facets)
    if not ok.any():
        return np.full(labs.shape, -1, np.int64), np.zeros(labs.shape, np.int64)
    m = meta[np.where(ok, labs, 0)]
    ok &= m[..., 0] == ctx.maxsrc.stage
    return np.where(ok, m[..., 1], -1), np.where(ok, m[..., 2], 0)


def _known_values(ms, rows, gi, valid, on_labels):
    """(known (C, K, w', k), value) of the pieces ``gi`` (w', k) at the cells' vertices (:class:`MaxSource`:
    a unit flat on the cell has its constant everywhere, one on its own boundary the activation's value at
    that breakpoint)."""
    u = ms.units[gi]  # (w', k): the previous stage's unit of each piece
    s_ = ms.states[rows][:, u].astype(np.intp)  # (C, w', k)
    flat = ms.slope[s_, u] == 0.0
    kn = valid[:, :, None, None] & flat[:, None]
    kv = np.where(flat, ms.const[s_, u], 0.0)[:, None].repeat(valid.shape[1], 1)
    if on_labels is not None:
        vu, vq = on_labels
        bpv = ms.bp_values[np.clip(vq, 0, len(ms.bp_values) - 1)]  # (C, K, S)
        for t in range(vu.shape[-1]):
            on = valid[:, :, None, None] & (vu[:, :, t, None, None] == u) & ~kn
            kn |= on
            kv = np.where(on, bpv[:, :, t, None, None], kv)
    return kn, kv


# -- a cheap estimate before a long run ------------------------------------------------------------------
def _grid_patterns(staged, X) -> int:
    """Number of distinct state tuples of ``staged`` at the points X (P, n_in), float64 NumPy."""
    hs = [X]
    keys = []
    for st in staged.stages:
        z = st.bias + sum(hs[j] @ A for j, A in st.weights.items())
        if st.groups is not None:
            pieces = z[:, st.groups]
            s = np.argmax(pieces, -1)
            h = np.take_along_axis(pieces, s[..., None], -1)[..., 0]
        else:
            S_, K_ = piece_tables(st.activation, st.m, st.slopes)
            s = np.zeros(z.shape, np.int8)
            h = S_[0] * z + K_[0]
            for q, bp in enumerate(st.activation.breakpoints, 1):
                above = z > bp
                s += above
                h = np.where(above, S_[q] * z + K_[q], h)
        keys.append(s.astype(np.int8))
        hs.append(h)
    if not keys:
        return 1
    P = np.ascontiguousarray(np.concatenate(keys, 1))
    return len(np.unique(P.view(np.dtype((np.void, P.shape[1]))), axis=0))


def estimate_cells(staged, domain, points: int = 2**13) -> tuple[int, int]:
    """(lower bound, estimate) of the number of cells: distinct patterns on grids of about ``points`` and
    ``points / 2^d`` points of the domain, extrapolated by one more halving of the spacing (the count of a
    grid grows towards the exact one as the spacing shrinks)."""
    d = domain.dim
    R = max(2, int(round(points ** (1.0 / d))))
    counts = []
    for r in (max(2, R // 2), R):
        t = (np.arange(r) + 0.5) / r
        U = np.stack(np.meshgrid(*[t] * d, indexing="ij"), -1).reshape(-1, d)
        counts.append(_grid_patterns(staged, domain.points(U)))
    lo = counts[1]
    return lo, int(lo + 2 ** (d - 1) * max(lo - counts[0], 0))
