"""The affine maps of a :class:`~piecewise.staged.StagedNet`'s stages on the cells, kept lazily: the
stage-start pre-activation maps indexed by ancestor and the per-cell states (:class:`_StageMap`), evaluated in
blocks of cells when a later stage or the output reads them, with their float64 error bounds
(:mod:`piecewise.numerics`). A graph's maps are operators instead (:mod:`.opmaps`, :mod:`.graph_engine`)."""
from __future__ import annotations

import numpy as np

from ..numerics import SAFETY, gamma, propagate
from . import _ckernel, parallel

BLOCK = 8192  # cells per block when evaluating lazy affine maps


DIFF_MAX_OUT = 16  # maps by differences only into this many outputs (wider: the dense GEMM is faster here)


SPLIT_PAIR_COST = 8  # a (cell, varying unit) term costs about this many dense columns (a loop, not a GEMM)


def _max_over_rows(G, E):
    """Bounds of the largest ``|g|_1`` and ``|e|`` of every unit over the rows: G (P, d, w), E (P, w) -> (w,),
    (w,) (``sum_i max_rows |g_i|``: two reductions, no temporary array)."""
    if not len(E):
        return np.zeros(E.shape[1]), np.zeros(E.shape[1])
    gmax = np.maximum(G.max(0), -G.min(0)).sum(0)
    return gmax, np.maximum(E.max(0), -E.min(0))


class _InputMap:
    """The input on every cell: x = c @ axes + center (centred coordinates)."""

    def __init__(self, domain):
        from .rational import frame_errors

        self.M, self.m = domain.axes, domain.center
        self.width = domain.n_in
        # the float64 axes and centre against the domain's exact frame (rounded when computed from its corners)
        eA, ec = frame_errors(domain)
        self.bounds = (np.abs(self.M).sum(0), np.abs(self.m), eA, ec)

    def reindex(self, p):
        pass

    def cell_bounds(self, rows):
        """Per current cell (rows (r,)): the bounds of :attr:`bounds`, (r, n_in) each (the same for all)."""
        return tuple(np.broadcast_to(b, (len(rows), len(b))) for b in self.bounds)

    def apply(self, A, n: int, output: bool, threads: int = 1):
        """``h @ A`` on all ``n`` current cells: (g (n, d, m), e (n, m))."""
        g, e = self.M @ A, self.m @ A
        b = lambda x: np.broadcast_to(x, (n, *x.shape))  # noqa: E731
        return b(g), b(e)


class _StageMap:
    """A stage's output on every current cell, kept lazily: the stage-start maps G (P, d, w), E (P, w) of
    its pre-activations (indexed by stage-start cell), for each stage-end cell its stage-start ancestor
    ``anc`` and states ``state`` (int8), and ``cur``: the stage-end cell of every current cell. ``bounds``:
    per output unit, bounds over all cells of the magnitudes (``|g|_1``, ``|e|``) and errors of its computed
    coefficients (:func:`piecewise.numerics.propagate`), from the pre-activations' error bounds Dg, De.

    A later stage reads ``h @ A`` through :meth:`apply`, one of three ways (the same terms summed in different
    orders, all within the same error bound):

    * *fixed plus varying* (elementwise stages, where it is cheaper than dense, :meth:`_split`): within a
      stage-start cell only the units that cross it change state. Their *fixed* terms are one GEMM over
      the P stage-start rows (P d w m), and each cell adds the terms of its *varying* units (pairs x d x
      m, in the compiled kernel's ``pw_extras``). Only the product's own terms are added, so a map that
      is 0 (all units off) stays exactly 0;
    * *dense*: per cell, the ancestor's map with the cell's slopes, times A (C d w m multiply-adds);
    * *by differences*, for the output map of max stages only (at most :data:`DIFF_MAX_OUT` outputs): the
      map of one reference cell per stage-start cell plus signed corrections for the pieces that differ
      (their terms are at most twice the pieces' own, which the bounds count: three times the largest)."""

    def __init__(self, G, E, anc, state, Dg, De, slope=None, const=None, groups=None):
        self.G, self.E, self.anc, self.state = G, E, anc, state
        self.slope, self.const, self.groups = slope, const, groups
        self.cur = None  # None: the identity (no later stage has split the cells yet)
        self.width = state.shape[1]
        self._diff = None
        self._tab = None
        self._var = None
        self._refc = None
        Mg, Me = _max_over_rows(G, E)
        self._pre = (Mg, Me, Dg, De)
        if groups is not None:
            big = lambda a: a[groups].max(-1)  # noqa: E731
            self.bounds = (3 * big(Mg), 3 * big(Me), big(Dg), big(De))
        else:
            smax, kmax = np.abs(slope).max(0), np.abs(const).max(0)
            self.bounds = (smax * Mg, smax * Me + kmax, smax * Dg, smax * De)

    def reindex(self, p):
        self.cur = p if self.cur is None else self.cur[p]

    def cell_bounds(self, rows):
        """Per current cell (rows (r,)): bounds (Hg, He, Eg, Ee), (r, w) each, of its own output's magnitudes
        and errors: a unit whose piece has slope and constant 0 (relu off) is exactly 0 there, with no error."""
        c = np.asarray(rows) if self.cur is None else self.cur[np.asarray(rows)]
        a, st = self.anc[c], self.state[c].astype(np.intp)
        Mg = np.abs(self.G[a, 0])
        for i in range(1, self.G.shape[1]):
            Mg = Mg + np.abs(self.G[a, i])
        Me = np.abs(self.E[a])
        _, _, Dg, De = self._pre
        if self.groups is not None:
            gi = self.groups[np.arange(self.width)[None, :], st]  # the chosen piece
            Mg, Me = np.take_along_axis(Mg, gi, 1), np.take_along_axis(Me, gi, 1)
            return 3 * Mg, 3 * Me, Dg[gi], De[gi]
        cols = np.arange(self.width)[None, :]
        sl, k = np.abs(self.slope[st, cols]), np.abs(self.const[st, cols])
        return sl * Mg, sl * Me + k, sl * Dg, sl * De

    def _h(self, a, s, tables=None):
        """Gradient (n, d, w) and offset (n, w) of the stage's output for stage-start rows a and states s
        (``tables``: slope and constant per piece, (q, w) each; default the stage's own)."""
        cols = np.arange(self.width)[None, :]
        if self.groups is not None:  # max stage: the chosen piece's map
            Ga, Ea = self.G[a], self.E[a]
            gi = self.groups[cols, s]
            return np.take_along_axis(Ga, gi[:, None, :], 2), np.take_along_axis(Ea, gi, 1)
        slope, const = self._tables() if tables is None else tables
        if _ckernel.available():
            return _ckernel.hmap(a, s, self._Gc(), self._Ec(), slope, const)
        Ga, Ea = self.G[a], self.E[a]
        sl, k = slope[0], const[0]  # (w,): piece 0, then the pieces above each breakpoint
        for q in range(1, len(slope)):
            above = s >= q
            sl, k = np.where(above, slope[q], sl), np.where(above, const[q], k)
        Ga *= sl[:, None, :]
        Ea *= sl
        Ea += k
        return Ga, Ea

    def _tables(self):
        if self._tab is None:
            self._tab = (np.ascontiguousarray(self.slope, np.float64), np.ascontiguousarray(self.const, np.float64))
        return self._tab

    def _Gc(self):
        if not self.G.flags.c_contiguous:
            self.G = np.ascontiguousarray(self.G)
        return self.G

    def _Ec(self):
        if not self.E.flags.c_contiguous:
            self.E = np.ascontiguousarray(self.E)
        return self.E

    def _vary(self):
        """Per stage-start row, the units whose state is not the same in all its stage-end cells (CSR:
        indptr (P + 1,), units), the mask (P, w), and the reference cell of each row."""
        if self._var is None:
            P = len(self.G)
            ref = self._ref()
            if _ckernel.available():
                vary = _ckernel.vary(self.anc, self.state, ref, P)
            else:
                e_idx, j = np.nonzero(self.state != self.state[ref[self.anc]])
                vary = np.zeros((P, self.width), bool)
                vary[self.anc[e_idx], j] = True
            rows, units = np.nonzero(vary)
            indptr = np.zeros(P + 1, np.int64)
            np.cumsum(np.bincount(rows, minlength=P), out=indptr[1:])
            self._var = (indptr, units.astype(np.int64), vary, ref)
        return self._var

    def _split(self, A, n: int, threads: int):
        """``h @ A`` as the fixed units' terms once per stage-start row (one GEMM over P rows, not n) plus,
        per cell, the terms of the units whose state varies within its stage-start cell. Only the product's
        own terms are added (in another order than the dense GEMM), so a map that is 0 stays exactly 0.
        Returns None where the dense product is cheaper."""
        indptr, units, vary, ref = self._vary()
        P, d, w, m = len(self.G), self.G.shape[1], self.width, A.shape[1]
        rows = np.arange(n) if self.cur is None else self.cur  # the stage-end cell of each current cell
        cnt = np.diff(indptr)[self.anc[rows]]
        pairs = int(cnt.sum())
        if P * w + SPLIT_PAIR_COST * pairs >= n * w:
            return None
        slope, const = self._tables()
        zero = (np.vstack([slope, np.zeros((1, w))]), np.vstack([const, np.zeros((1, w))]))
        s_ref = self.state[ref].copy()
        s_ref[vary] = len(slope)  # the varying units take the all-zero piece in the base
        A = np.ascontiguousarray(A, np.float64)
        if m <= DIFF_MAX_OUT:  # few outputs (the network's output): the fixed terms summed unit by unit
            B, Be = self._base_small(s_ref, zero, A, threads)
        else:
            B, Be = self._blocked(np.arange(P), A, threads, lambda cb: self._h(cb, s_ref[cb], zero))
        if _ckernel.available():
            g, e = np.empty((n, d, m)), np.empty((n, m))

            def one(r0):
                r1 = min(r0 + BLOCK, n)
                _ckernel.extras(rows[r0:r1], self.anc, self.state, indptr, units, self._Gc(), self._Ec(), slope,
                                const, A, B, Be, g[r0:r1], e[r0:r1])

            parallel.pmap(one, range(0, n, BLOCK), threads)
            return g, e
        a = self.anc[rows]  # the same sums in NumPy, in the same order (unit by unit within each cell)
        g, e = B[a], Be[a]
        del B, Be
        for t in range(int(cnt.max()) if n else 0):
            r = np.nonzero(cnt > t)[0]
            c, aa = rows[r], a[r]
            j = units[indptr[aa] + t]
            st = self.state[c, j]
            sl, k = slope[st, j], const[st, j]
            nz = (sl != 0.0) | (k != 0.0)
            r, aa, j, sl, k = r[nz], aa[nz], j[nz], sl[nz], k[nz]
            Aj = A[j]
            for i in range(d):
                coef = self.G[aa, i, j] * sl
                g[r, i] += coef[:, None] * Aj
            e[r] += (self.E[aa, j] * sl + k)[:, None] * Aj
        return g, e

    def _base_small(self, s_ref, tables, A, threads: int):
        """The fixed units' terms per stage-start row into few outputs, summed unit by unit (no per-cell
        map materialised, no GEMM): B (P, d, m), Be (P, m)."""
        P, d, w, m = len(self.G), self.G.shape[1], self.width, A.shape[1]
        B, Be = np.zeros((P, d, m)), np.zeros((P, m))
        slope, const = tables
        if _ckernel.available():
            G, E = self._Gc(), self._Ec()

            def one(r0):
                r1 = min(r0 + BLOCK, P)
                _ckernel.base(slice(r0, r1), G, E, s_ref[r0:r1], slope, const, A, None, B[r0:r1], Be[r0:r1], None)

            parallel.pmap(one, range(0, P, BLOCK), threads)
            return B, Be
        for j in range(w):  # the same sums in NumPy, in the same order (adding the skipped zeros changes nothing)
            sl, k = slope[s_ref[:, j], j], const[s_ref[:, j], j]
            coef = self.G[:, :, j] * sl[:, None]
            B += coef[..., None] * A[j]
            Be += (self.E[:, j] * sl + k)[:, None] * A[j]
        return B, Be

    def _ref(self):
        """The first stage-end cell of each stage-start cell (P,)."""
        if self._refc is None:
            C, P = len(self.anc), len(self.G)
            self._refc = np.zeros(P, np.intp)
            self._refc[self.anc[::-1]] = np.arange(C)[::-1]
        return self._refc

    def _differences(self):
        if self._diff is None:
            ref = self._ref()
            rs = self.state[ref[self.anc]]
            e_idx, j = np.nonzero(self.state != rs)
            self._diff = (ref, e_idx, j, self.state[e_idx, j].astype(np.intp), rs[e_idx, j].astype(np.intp))
        return self._diff

    def apply(self, A, n: int, output: bool, threads: int = 1):
        """``h @ A`` on the ``n`` current cells: (g (n, d, m), e (n, m)). ``output``: the network's output map
        (max stages may then use differences, see the class)."""
        C, P = len(self.anc), len(self.G)
        d, w, m = self.G.shape[1], self.width, A.shape[1]
        if self.groups is None:
            out = self._split(A, n, threads)
            if out is not None:
                return out
        if not output or m > DIFF_MAX_OUT:  # differences only for the output's map (see the class)
            return self._dense(A, n, threads)
        ref, e_idx, j, s_new, s_ref = self._differences()
        if len(e_idx) * (d + 1) > 0.2 * max(C - P, 0) * d * w:
            return self._dense(A, n, threads)
        B, Be = self._blocked(ref, A, threads)
        a = self.anc[e_idx]
        if self.groups is not None:
            gn, gr = self.groups[j, s_new], self.groups[j, s_ref]
            dG, dE = self.G[a, :, gn] - self.G[a, :, gr], self.E[a, gn] - self.E[a, gr]
        else:
            ds = self.slope[s_new, j] - self.slope[s_ref, j]
            dG = self.G[a, :, j] * ds[:, None]
            dE = self.E[a, j] * ds + (self.const[s_new, j] - self.const[s_ref, j])
        starts = np.flatnonzero(np.r_[True, e_idx[1:] != e_idx[:-1]]) if len(e_idx) else np.zeros(0, np.intp)

        def correction(vals, AA):
            """sum over each cell's differing units of vals * A[unit] (pairs are sorted by cell), per
            current cell. No scipy.sparse: importing it would cost a cold run 0.15 s."""
            out = np.zeros((C, AA.shape[1]))
            if len(starts):
                out[e_idx[starts]] = np.add.reduceat(vals[:, None] * AA[j], starts, axis=0)
            return out if self.cur is None else out[self.cur]

        rows = self.anc if self.cur is None else self.anc[self.cur]
        g = B[rows]
        for k in range(d):
            g[:, k] += correction(dG[:, k], A)
        e = Be[rows]
        e += correction(dE, A)
        return g, e

    def _dense(self, A, n: int, threads: int):
        return self._blocked(np.arange(n) if self.cur is None else self.cur, A, threads)

    def _blocked(self, c, A, threads: int, h=None):
        """``h @ A`` on the stage-end cells c, one block of cells at a time (the cells' own maps are made
        block by block, in reused memory, on the engine's threads). ``h(cb)``: the maps of a block (default:
        the cells' own, :meth:`_h`)."""
        n, d, w, m = len(c), self.G.shape[1], self.width, A.shape[1]
        g = np.empty((n, d, m))
        e = np.empty((n, m))

        def one(r0):
            r1 = min(r0 + BLOCK, n)
            cb = c[r0:r1]
            M, mm = self._h(self.anc[cb], self.state[cb]) if h is None else h(cb)
            np.matmul(M.reshape(-1, w), A, out=g[r0:r1].reshape(-1, m))
            np.matmul(mm, A, out=e[r0:r1])

        parallel.pmap(one, range(0, n, BLOCK), threads)
        return g, e


def _own(x):
    """x itself if it is a writable array of its own, else a copy (the input's terms are broadcast views)."""
    if x is None or (x.flags.writeable and x.base is None):
        return x
    return np.array(x)


def affine_of(weights: dict, bias, sources: dict, n_cells: int, output: bool = False, threads: int = 1):
    """The affine maps ``z = c @ G + E`` on the ``n_cells`` current cells of ``bias + sum_j h_j @ A_j``:
    G (C, d, m), E (C, m), and bounds (Dg, De), (m,) each, of their coefficients' rounding errors over all
    cells (:func:`piecewise.numerics.propagate`). ``output``: the network's output map."""
    G = E = None
    srcb = []
    n_terms = 1
    for j, A in weights.items():
        A = np.asarray(A, np.float64)
        g, e = sources[j].apply(A, n_cells, output, threads)
        srcb.append((np.abs(A), *sources[j].bounds))
        n_terms += A.shape[0]
        if G is None:
            G, E = _own(g), _own(e)
        else:
            G += g
            E += e
    E += bias
    Dg, De = propagate(srcb, np.abs(np.asarray(bias, np.float64)), n_terms)
    return G, E, Dg, De


def _max_source(st, s: int, sources: dict):
    """A :class:`MaxSource` when max stage ``st`` (stage s) selects the previous elementwise stage's outputs
    (weights a 0/1 selection from stage s - 1, no bias), else None."""
    if st.groups is None or set(st.weights) != {s - 1} or np.any(st.bias) or s - 1 not in sources:
        return None
    prev = sources[s - 1]
    A = np.asarray(st.weights[s - 1])
    if not isinstance(prev, _StageMap) or prev.groups is not None or prev.cur is not None:
        return None
    if not (np.all((A == 0) | (A == 1)) and np.all(A.sum(0) == 1)):
        return None
    return MaxSource(s - 1, A.argmax(0), prev.state, prev.slope, prev.const,
                     _bp_values(prev.slope, prev.const, prev.bps))


def _bp_values(slope, const, bps):
    """The activation's value at each breakpoint (continuity: the left piece at its right end), (nb,), from
    the piece tables of unit 0 (every unit has the same breakpoints and values there: relu, leaky and PReLU 0,
    hardtanh -1 and 1)."""
    return np.array([slope[q, 0] * bp + const[q, 0] for q, bp in enumerate(bps)])


def row_bounds(weights: dict, bias, sources: dict, rows):
    """Per stage-start row (current cells ``rows``): error bounds (Dg, De), (r, m) each, of the coefficients of
    ``z = bias + sum_j h_j @ A_j``, from each cell's own magnitudes and errors (:meth:`_StageMap.cell_bounds`):
    at most the stage's bounds of :func:`affine_of`, and 0 for a unit whose inputs are all exact zeros there."""
    n_terms = 1 + sum(np.asarray(A).shape[0] for A in weights.values())
    c = gamma(n_terms + 3)
    Dg = De = None
    for j, A in weights.items():
        Hg, He, Eg, Ee = sources[j].cell_bounds(rows)
        absA = np.abs(np.asarray(A, np.float64))
        dg, de = (c * Hg + Eg) @ absA, (c * He + Ee) @ absA
        Dg = dg if Dg is None else Dg + dg
        De = de if De is None else De + de
    return Dg * SAFETY, (De + c * np.abs(np.asarray(bias, np.float64))) * SAFETY


class MaxSource:
    """A max stage whose pieces are the previous elementwise stage's outputs themselves (a max-pool right after
    a relu: ``z = h_prev`` selected, no rounding). Then a piece's value is known exactly at a vertex where its
    unit is flat on the cell (slope 0: relu off gives 0) or on the unit's own boundary (the activation's value
    at its breakpoint), and the sign of a pair of pieces there needs no arithmetic. ``stage``: the previous
    stage (1-based), ``units`` (m,): the previous stage's unit of each piece, ``states`` (rows, w_prev): its
    states on the stage-start rows, ``slope``, ``const``: its piece tables, ``bp_values`` (nb,): the
    activation at each breakpoint."""

    def __init__(self, stage, units, states, slope, const, bp_values):
        self.stage, self.units, self.states = stage, np.asarray(units), states
        self.slope, self.const, self.bp_values = slope, const, np.asarray(bp_values, np.float64)

    def known(self, ctx, geo, rows, piece):
        """(known (B, K) bool, value (B, K)) of piece ``piece`` (index among the stage's pre-activations) at the
        vertices of the batch geo (stage-start rows ``rows``)."""
        u = int(self.units[piece])
        st = self.states[rows, u].astype(np.intp)
        flat = self.slope[st, u] == 0.0
        B, K = geo[1].shape[0], geo[0].shape[1]
        known = np.zeros((B, K), bool)
        value = np.zeros((B, K))
        known[flat] = np.arange(K)[None, :] < geo[1][flat, None]
        value[flat] = self.const[st[flat], u][:, None]
        on, q = ctx.vertices_on_unit(geo, self.stage, u)
        take = on & ~known
        known |= take
        value = np.where(take, self.bp_values[np.clip(q, 0, len(self.bp_values) - 1)], value)
        return known, value
