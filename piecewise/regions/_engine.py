"""The stage-by-stage driver of exact enumeration, shared by the 1-D/2-D polygon backend (:mod:`.exact`) and
the n-D polytope backend (:mod:`.exact_nd`).

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
:data:`PARALLEL_MIN_CELLS` stage-start cells on, a stage's cells are split among :data:`THREADS` threads
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
(:class:`_StageMap`: the stage-start pre-activation maps, indexed by ancestor, and the per-cell states,
int8), and evaluated in blocks of cells when a later stage or the output reads them.

Every new facet gets a *label*: the id of the split event that created it (elementwise splits: one id per
cell cut; max stages: one id per stage-start cell, unit and class of coinciding lines ``z_r = z_r'``).
Both cells on the two sides of any facet of the final complex carry that facet with the same label (later
splits only subdivide it), which is how adjacency is found without comparing every pair of cells. The
hyperplane of every event (``u.g + e = 0``) is kept in an :class:`Events` table.
"""
from __future__ import annotations

import functools

import numpy as np

from ..activations import Activation
from ..errors import PiecewiseError
from ..numerics import affine_tol, sides
from . import _ckernel

BLOCK = 8192  # cells per block when evaluating lazy affine maps
DIFF_MAX_OUT = 16  # maps by differences only into this many outputs (wider: the dense GEMM is faster here)
SPLIT_PAIR_COST = 8  # a (cell, varying unit) term costs about this many dense columns (a loop, not a GEMM)


# -- per-activation rules (one place) -------------------------------------------------------------------
def flat_sides(act: Activation) -> np.ndarray:
    """Side (1 above, 0 below) taken for each breakpoint by a unit identically on it: the state *at* the
    breakpoint, from :meth:`Activation.states` (relu at 0 -> 0; hardtanh at -1 -> above, at 1 -> below)."""
    bps = np.asarray(act.breakpoints, np.float64)
    st = np.asarray(act.states(bps, np))
    return (st > np.arange(len(bps))).astype(np.int8)


@functools.lru_cache(maxsize=None)
def _pieces(act: Activation):
    bps = np.asarray(act.breakpoints, np.float64)
    sl = np.asarray(act.slopes, np.float64)
    reps = np.concatenate([[bps[0] - 1.0], (bps[:-1] + bps[1:]) / 2, [bps[-1] + 1.0]])  # one z per piece
    vals = np.asarray(act(reps, np), np.float64)
    return sl, vals - sl * reps


def piece_tables(act: Activation, width: int, slopes=None) -> tuple[np.ndarray, np.ndarray]:
    """Slope and constant of an elementwise PL activation on each piece: (n_pieces, width) each, so that
    ``act(z) = slope[q] * z + const[q]`` on piece ``q``. ``slopes`` (width,): per-unit negative slopes
    (PReLU). Constants come from the activation itself (continuity), not from hard-coded values."""
    sl, const = _pieces(act)
    S = np.repeat(sl[:, None], width, 1)
    K = np.repeat(const[:, None], width, 1)
    if slopes is not None:
        S[0] = np.asarray(slopes, np.float64)  # leaky_relu: piece 0 is the negative side, constant 0
    return S, K


# -- buffers of cells -----------------------------------------------------------------------------------
class Cells:
    """Cells during enumeration, in buffers with spare capacity (grown by doubling). ``geo`` is the
    backend's list of per-cell arrays (first axis cells; arrays flagged in ``kaxis`` have a vertex axis 1
    that grows as needed, padded with ``pad``); ``n`` = geo[1] is the vertex count. Also ``parent`` (the
    cell at the start of the current stage), ``side`` (per unit and breakpoint of the current stage: the
    side fixed by a split, or -1) and ``lab`` (max-stage labels). Rows ``[:size]`` are live."""

    def __init__(self, geo, kaxis, pad, max_cells: int, bytes_per_cell: float):
        self.kaxis, self.pad, self.max_cells, self.bpc = kaxis, pad, max_cells, bytes_per_cell
        self.geo = list(geo)
        self.rag = None
        self.size = len(geo[1])
        self.parent = np.arange(self.size)
        self.anc = np.arange(self.size)  # the cell at the last re-rooting within the stage
        self.side = np.zeros((self.size, 0), np.int8)
        self.lab = np.zeros((self.size, 0), np.int8)

    def unrag(self):
        """The kernel's ragged cells as the backend's padded geometry."""
        self.geo, self.rag = self.rag.padded(), None

    def live(self, i: int):
        return self.geo[i][: self.size]

    def take(self, idx, K=None):
        """The geometry of cells ``idx``; vertex axes cut to K (the largest count among them) if given."""
        return [a[idx, :K] if (K is not None and ka) else a[idx] for a, ka in zip(self.geo, self.kaxis)]

    def new_stage(self, n_side_cols: int, start=None):
        """Start a stage; ``start``: the rows of the stage's maps (G, E) of the current cells (default:
        their own indices)."""
        s = self.size
        self.geo = [a[:s] for a in self.geo]
        self.parent = np.arange(s) if start is None else np.array(start[:s], np.intp)
        self.anc = np.arange(s)
        self.side = np.full((s, n_side_cols), -1, np.int8)
        self.lab = np.zeros((s, 0), np.int8)

    def reset(self, geo, parent, lab, rag=None):
        """The cells of the next stage: padded geometry ``geo``, or (geo None) the compiled kernel's ragged
        cells ``rag`` (:class:`._ckernel.Ragged`), kept so until :meth:`unrag`."""
        self._check(len(parent))
        self.geo = None if geo is None else list(geo)
        self.rag = rag
        self.parent, self.lab = parent, lab
        self.anc = np.arange(len(parent))
        self.side = np.zeros((len(parent), 0), np.int8)
        self.size = len(parent)

    def _check(self, need: int):
        if need > self.max_cells:
            raise PiecewiseError(
                f"more than max_cells={self.max_cells:,} cells (about {self.bpc / 1e3:.1f} kB each, "
                f"{need * self.bpc / 1e9:.2f} GB): use the grid method (--method grid), a smaller domain, or raise max_cells")

    def _fit(self, *lists):
        """Pad the geometry buffers and the given lists of arrays so their vertex axes agree."""
        out = [list(x) for x in lists]
        for i in range(len(self.geo)):
            if self.kaxis[i]:
                K = max([self.geo[i].shape[1]] + [x[i].shape[1] for x in out])
                if self.geo[i].shape[1] < K:
                    self.geo[i] = _pad_axis1(self.geo[i], K, self.pad[i])
                for x in out:
                    if x[i].shape[1] < K:
                        x[i] = _pad_axis1(x[i], K, self.pad[i])
        return out

    def _reserve(self, extra: int):
        need = self.size + extra
        cap = len(self.geo[1])
        if need <= cap:
            return
        self._check(need)
        cap2 = min(max(need, 2 * cap), max(need, self.max_cells))
        grow = lambda a: np.concatenate([a[: self.size], np.zeros((cap2 - self.size, *a.shape[1:]), a.dtype)])
        self.geo = [grow(a) for a in self.geo]
        self.parent, self.side, self.lab = grow(self.parent), grow(self.side), grow(self.lab)
        self.anc = grow(self.anc)

    def split(self, idx, plus, minus, col: int):
        """Cells ``idx`` become their + pieces; their - pieces are appended. ``col``: the side column."""
        self._reserve(len(idx))
        plus, minus = self._fit(plus, minus)
        a = np.arange(self.size, self.size + len(idx))
        for g, p, m in zip(self.geo, plus, minus):
            g[idx] = p
            g[a] = m
        self.parent[a] = self.parent[idx]
        self.anc[a] = self.anc[idx]
        self.side[a] = self.side[idx]
        self.lab[a] = self.lab[idx]
        self.side[idx, col], self.side[a, col] = 1, 0
        self.size += len(idx)


def _pad_axis1(a, K, value):
    out = np.full((a.shape[0], K, *a.shape[2:]), value, a.dtype)
    out[:, : a.shape[1]] = a
    return out


def concat_geo(parts, kaxis, pad):
    """Concatenate lists of geometry arrays along cells, padding vertex axes."""
    out = []
    for i in range(len(parts[0])):
        arrs = [p[i] for p in parts]
        if kaxis[i]:
            K = max(a.shape[1] for a in arrs)
            arrs = [_pad_axis1(a, K, pad[i]) if a.shape[1] < K else a for a in arrs]
        out.append(np.concatenate(arrs))
    return out


class Events:
    """Hyperplanes ``u.g + e = 0`` of the split events, by label id (>= 0). Box facets have labels
    ``-1 - i`` (``u_i = 0``) and ``-1 - d - i`` (``u_i = 1``)."""

    def __init__(self, d: int):
        import threading

        self.d = d
        self.g = np.zeros((0, d))
        self.e = np.zeros(0)
        self._parts = []
        self.n = 0
        self._lock = threading.Lock()

    def add(self, g, e) -> np.ndarray:
        """Register hyperplanes (g (P, d), e (P,)); returns their ids (P,). Thread-safe."""
        with self._lock:
            start = self.n
            self.n += len(e)
            self._parts.append((start, np.asarray(g, np.float64), np.asarray(e, np.float64)))
        return np.arange(start, start + len(e))

    def finish(self):
        with self._lock:
            if self._parts:
                parts = sorted(self._parts, key=lambda t: t[0])
                self.g = np.concatenate([self.g] + [p[1] for p in parts])
                self.e = np.concatenate([self.e] + [p[2] for p in parts])
                self._parts = []
        return self

    def plane(self, labels):
        """(g, e) of the given labels (box facets included): (P, d), (P,)."""
        self.finish()
        labels = np.asarray(labels)
        d = self.d
        g = np.zeros((len(labels), d))
        e = np.zeros(len(labels))
        ev = labels >= 0
        g[ev], e[ev] = self.g[labels[ev]], self.e[labels[ev]]
        bi = -1 - labels[~ev]
        gb = np.zeros((len(bi), d))
        gb[np.arange(len(bi)), bi % d] = 1.0
        g[~ev], e[~ev] = gb, np.where(bi >= d, -1.0, 0.0)
        return g, e


# -- lazy affine maps of the stages' outputs -----------------------------------------------------------
class _InputMap:
    """The input on every cell: x = u @ axes + origin."""

    def __init__(self, domain):
        self.M, self.m = domain.axes, domain.origin
        self.width = domain.n_in

    def reindex(self, p):
        pass

    def apply(self, A, n: int, want_scale: bool, threads: int = 1):
        """The terms of ``h @ A`` on all ``n`` current cells: (g (n, d, m), e (n, m), scale or None)."""
        g, e = self.M @ A, self.m @ A
        s = np.abs(self.M) @ np.abs(A) if want_scale else None
        b = lambda x: None if x is None else np.broadcast_to(x, (n, *x.shape))  # noqa: E731
        return b(g), b(e), b(s)


class _StageMap:
    """A stage's output on every current cell, kept lazily: the stage-start maps G (P, d, w), E (P, w) of
    its pre-activations (indexed by stage-start cell), for each stage-end cell its stage-start ancestor
    ``anc`` and states ``state`` (int8), and ``cur``: the stage-end cell of every current cell.

    A later stage reads ``h @ A`` through :meth:`apply`, one of three ways (same values up to rounding):

    * *fixed plus varying* (elementwise stages, where it is cheaper than dense, :meth:`_split`): within a
      stage-start cell only the units that cross it change state. Their *fixed* terms are one GEMM over
      the P stage-start rows (P d w m), and each cell adds the terms of its *varying* units (pairs x d x
      m, in the compiled kernel's ``pw_extras``). Only the product's own terms are added, so a map that
      is 0 (all units off) stays exactly 0, and the scale is the plain sum of the terms' magnitudes;
    * *dense*: per cell, the ancestor's map with the cell's slopes, times A (C d w m multiply-adds);
    * *by differences*, for the output map of max stages only (at most :data:`DIFF_MAX_OUT` outputs): the
      map of one reference cell per stage-start cell plus signed corrections for the pieces that differ.
      Corrections leave rounding residues where the true map is 0, so the output's term scale includes
      their magnitudes; not used for the maps of later stages, which need those exact zeros."""

    def __init__(self, G, E, anc, state, slope=None, const=None, groups=None):
        self.G, self.E, self.anc, self.state = G, E, anc, state
        self.slope, self.const, self.groups = slope, const, groups
        self.cur = None  # None: the identity (no later stage has split the cells yet)
        self.width = state.shape[1]
        self._diff = None
        self._tab = None
        self._var = None
        self._refc = None

    def reindex(self, p):
        self.cur = p if self.cur is None else self.cur[p]

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

    def _split(self, A, n: int, threads: int, want_scale: bool = False):
        """``h @ A`` as the fixed units' terms once per stage-start row (one GEMM over P rows, not n) plus,
        per cell, the terms of the units whose state varies within its stage-start cell. Only the product's
        own terms are added (in another order than the dense GEMM), so a map that is 0 stays exactly 0
        (an earlier form, a reference cell's map plus signed differences, left rounding residues there);
        the scale (``want_scale``) is the same sum of the terms' magnitudes as the dense ``|dh/du| @ |A|``.
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
        aA = np.abs(A) if want_scale else None
        if m <= DIFF_MAX_OUT:  # few outputs (the network's output): the fixed terms summed unit by unit
            B, Be, Bs = self._base_small(s_ref, zero, A, aA, threads)
        else:
            B, Be, Bs = self._blocked(np.arange(P), A, want_scale, threads, lambda cb: self._h(cb, s_ref[cb], zero))
        if _ckernel.available():
            g, e = np.empty((n, d, m)), np.empty((n, m))
            sc = np.empty((n, d, m)) if want_scale else None

            def one(r0):
                r1 = min(r0 + BLOCK, n)
                _ckernel.extras(rows[r0:r1], self.anc, self.state, indptr, units, self._Gc(), self._Ec(), slope,
                                const, A, B, Be, g[r0:r1], e[r0:r1], aA, Bs, None if sc is None else sc[r0:r1])

            _pmap(one, range(0, n, BLOCK), threads)
            return g, e, sc
        a = self.anc[rows]  # the same sums in NumPy, in the same order (unit by unit within each cell)
        g, e = B[a], Be[a]
        sc = Bs[a] if want_scale else None
        del B, Be, Bs
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
                if want_scale:
                    sc[r, i] += np.abs(coef)[:, None] * aA[j]
            e[r] += (self.E[aa, j] * sl + k)[:, None] * Aj
        return g, e, sc

    def _base_small(self, s_ref, tables, A, aA, threads: int):
        """The fixed units' terms per stage-start row into few outputs, summed unit by unit (no per-cell
        map materialised, no GEMM): B (P, d, m), Be (P, m), Bs (term scale, if aA is given) or None."""
        P, d, w, m = len(self.G), self.G.shape[1], self.width, A.shape[1]
        B, Be = np.zeros((P, d, m)), np.zeros((P, m))
        Bs = np.zeros((P, d, m)) if aA is not None else None
        slope, const = tables
        if _ckernel.available():
            G, E = self._Gc(), self._Ec()

            def one(r0):
                r1 = min(r0 + BLOCK, P)
                _ckernel.base(slice(r0, r1), G, E, s_ref[r0:r1], slope, const, A, aA, B[r0:r1], Be[r0:r1],
                              None if Bs is None else Bs[r0:r1])

            _pmap(one, range(0, P, BLOCK), threads)
            return B, Be, Bs
        for j in range(w):  # the same sums in NumPy, in the same order (adding the skipped zeros changes nothing)
            sl, k = slope[s_ref[:, j], j], const[s_ref[:, j], j]
            coef = self.G[:, :, j] * sl[:, None]
            B += coef[..., None] * A[j]
            if Bs is not None:
                Bs += np.abs(coef)[..., None] * aA[j]
            Be += (self.E[:, j] * sl + k)[:, None] * A[j]
        return B, Be, Bs

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

    def apply(self, A, n: int, want_scale: bool, threads: int = 1):
        """The terms of ``h @ A`` on the ``n`` current cells: (g (n, d, m), e (n, m), scale (n, d, m) or
        None). The scale bounds the magnitudes of the terms that were summed to get g (for the rounding
        allowance of the output's map): ``|dh/du| @ |A|`` when dense; by differences, the reference's
        scale plus the magnitudes of the corrections (they may cancel: a cell whose units are all off gets
        a gradient of rounding size, not an exact 0, and its scale says how large that rounding can be)."""
        C, P = len(self.anc), len(self.G)
        d, w, m = self.G.shape[1], self.width, A.shape[1]
        if self.groups is None:
            out = self._split(A, n, threads, want_scale)
            if out is not None:
                return out
        if not want_scale or m > DIFF_MAX_OUT:  # differences only for the output's map (see the class)
            return self._dense(A, n, want_scale, threads)
        ref, e_idx, j, s_new, s_ref = self._differences()
        if len(e_idx) * (d + 1) > 0.2 * max(C - P, 0) * d * w:
            return self._dense(A, n, want_scale, threads)
        B, Be, Bs = self._blocked(ref, A, want_scale, threads)
        a = self.anc[e_idx]
        if self.groups is not None:
            gn, gr = self.groups[j, s_new], self.groups[j, s_ref]
            Gn, Gr = self.G[a, :, gn], self.G[a, :, gr]
            dG, dE = Gn - Gr, self.E[a, gn] - self.E[a, gr]
            dS = np.abs(Gn) + np.abs(Gr)
            del Gn, Gr
        else:
            ds = self.slope[s_new, j] - self.slope[s_ref, j]
            Gj = self.G[a, :, j]
            dG = Gj * ds[:, None]
            dE = self.E[a, j] * ds + (self.const[s_new, j] - self.const[s_ref, j])
            dS = np.abs(Gj) * np.abs(ds)[:, None]
            del Gj
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
        s = Bs[rows]
        aA = np.abs(A)
        for k in range(d):
            s[:, k] += correction(dS[:, k], aA)
        return g, e, s

    def _dense(self, A, n: int, want_scale: bool, threads: int):
        return self._blocked(np.arange(n) if self.cur is None else self.cur, A, want_scale, threads)

    def _blocked(self, c, A, want_scale: bool, threads: int, h=None):
        """``h @ A`` (and its scale) on the stage-end cells c, one block of cells at a time (the cells' own
        maps are made block by block, in reused memory, on the engine's threads). ``h(cb)``: the maps of a
        block (default: the cells' own, :meth:`_h`)."""
        n, d, w, m = len(c), self.G.shape[1], self.width, A.shape[1]
        g = np.empty((n, d, m))
        e = np.empty((n, m))
        s = np.empty((n, d, m)) if want_scale else None
        aA = np.abs(A) if want_scale else None

        def one(r0):
            r1 = min(r0 + BLOCK, n)
            cb = c[r0:r1]
            M, mm = self._h(self.anc[cb], self.state[cb]) if h is None else h(cb)
            M = M.reshape(-1, w)
            np.matmul(M, A, out=g[r0:r1].reshape(-1, m))
            np.matmul(mm, A, out=e[r0:r1])
            if want_scale:
                np.abs(M, out=M)
                np.matmul(M, aA, out=s[r0:r1].reshape(-1, m))

        _pmap(one, range(0, n, BLOCK), threads)
        return g, e, s


def _own(x):
    """x itself if it is a writable array of its own, else a copy (the input's terms are broadcast views)."""
    if x is None or (x.flags.writeable and x.base is None):
        return x
    return np.array(x)


def affine_of(weights: dict, bias, sources: dict, n_cells: int, want_scale: bool = False, threads: int = 1):
    """The affine maps ``z = u @ G + E`` on the ``n_cells`` current cells of ``bias + sum_j h_j @ A_j``:
    G (C, d, m), E (C, m), and the term scale ``sum |dh_j/du| @ |A_j|`` (C, d, m) if ``want_scale``."""
    G = E = S = None
    for j, A in weights.items():
        g, e, s = sources[j].apply(np.asarray(A, np.float64), n_cells, want_scale, threads)
        if G is None:
            G, E, S = _own(g), _own(e), _own(s)
        else:
            G += g
            E += e
            if want_scale:
                S += s
    E += bias
    return G, E, S


def _pmap(fn, items, threads: int):
    """Run fn over items on ``threads`` of the engine's worker threads (NumPy releases the GIL in its kernels)."""
    items = list(items)
    if threads <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    return list(_pool(threads).map(fn, items))


THREADS = 2  # default worker threads (the machine's cores); enumerate_cells(threads=1) turns threading off
_POOLS: dict = {}


def _pool(n: int):
    if n not in _POOLS:
        from concurrent.futures import ThreadPoolExecutor

        _POOLS[n] = ThreadPoolExecutor(n, thread_name_prefix="piecewise-exact", initializer=_one_blas_thread)
    return _POOLS[n]


def _one_blas_thread():
    """In the engine's worker threads, BLAS runs on one thread: the blocks are already spread over the cores,
    and OpenBLAS's own threads on top of them oversubscribed the machine (2-128x4: 1.2 s -> 1.05 s). Uses
    OpenBLAS's per-thread setting (``openblas_set_num_threads_local``, OpenBLAS >= 0.3.27, as bundled with
    NumPy) where it is loaded; otherwise nothing changes."""
    import ctypes

    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line}
    except OSError:
        return
    for path in sorted(paths):
        try:
            fn = ctypes.CDLL(path).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
        fn(1)


# -- pattern words -------------------------------------------------------------------------------------
class Packer:
    """Packs per-unit states into uint32 words, ``bits`` per unit, in the layout of
    :func:`piecewise.patterns.pack_states` (units counted over all stages; each word is two 16-bit halves of
    ``16 // bits`` units)."""

    def __init__(self, n_units: int, bits: int):
        if bits > 16:
            raise PiecewiseError("too many states per unit to pack (at most 2^16)")
        self.bits, self.ph = bits, 16 // bits
        self.n_words = max(1, -(-n_units // (2 * self.ph)))
        self.offset = 0

    def add(self, words, states):
        """OR the states (C, w) of the next ``w`` units into words (C, n_words) in place."""
        w = states.shape[1]
        if self.bits == 1 and w and len(states):  # unit u is bit u % 32 of word u // 32: pack bytes directly
            o = self.offset
            b = np.zeros((len(states), o % 32 + w), bool)
            np.not_equal(states, 0, out=b[:, o % 32:])
            packed = np.packbits(b, axis=1, bitorder="little")
            nb = -(-packed.shape[1] // 4) * 4
            if nb > packed.shape[1]:
                packed = np.concatenate([packed, np.zeros((len(packed), nb - packed.shape[1]), np.uint8)], 1)
            k0 = o // 32
            words[:, k0:k0 + nb // 4] |= np.ascontiguousarray(packed).view("<u4").astype(np.uint32, copy=False)
            self.offset += w
            return words
        u = self.offset + np.arange(w)
        half, pos = np.divmod(u, self.ph)
        word, shift = np.divmod(half, 2)
        shift = shift * 16 + pos * self.bits
        s = states.astype(np.uint32) << shift.astype(np.uint32)
        for k in np.unique(word):
            words[:, k] |= np.bitwise_or.reduce(s[:, word == k], axis=1)
        self.offset += w
        return words


# -- the stages ----------------------------------------------------------------------------------------
def values(V, g, e):
    """Values at the vertices V (c, K, d) of u -> u.g + e: g (c, d), e (c,) -> (c, K)."""
    f = e[:, None] + V[..., 0] * g[:, 0, None]
    for i in range(1, V.shape[-1]):
        f = f + V[..., i] * g[:, i, None]
    return f


def _valid(n, K):
    return np.arange(K)[None, :] < n[:, None]


def _crossings(V, n, G, E, root, units, bps, flat, block: int = 1024):
    """Which units each cell's vertices see strictly on both sides of each breakpoint, and the side of the
    others: V (C, K, d); G (P, d, w), E (P, w) the units' maps on the cells ``root`` (C,), restricted to
    ``units``. Returns ([cross (C, w') bool], [side (C, w') int8]) per breakpoint.

    Cells are taken in blocks of similar vertex count, each padded only to its own largest count."""
    w = np.arange(E.shape[1])[units].size
    cross = [np.empty((len(n), w), bool) for _ in bps]
    side = [np.empty((len(n), w), np.int8) for _ in bps]
    order = np.argsort(n, kind="stable")
    for s in range(0, len(n), block):
        idx = order[s:s + block]
        K = int(n[idx].max())
        Vb = V[idx, :K]
        Vb = np.where(_valid(n[idx], K)[..., None], Vb, Vb[:, :1])  # pad with vertex 0
        r = root[idx]
        Gb = G[r][:, :, units]
        Eb = E[r][:, units]
        f = Vb[:, :, 0, None] * Gb[:, None, 0, :]
        for i in range(1, Vb.shape[-1]):
            f += Vb[:, :, i, None] * Gb[:, None, i, :]
        hi, lo = f.max(1), f.min(1)
        for q, bp in enumerate(bps):
            e = Eb - bp
            t = affine_tol(Gb, e, axis=1)
            up, down = hi + e > t, lo + e < -t
            cross[q][idx] = up & down
            side[q][idx] = np.where(up, np.int8(1), np.where(down, np.int8(0), flat[q]))
    return cross, side


def _split_unit(cells: Cells, clip, cand, g, e, col, events: Events):
    """Split the cells ``cand`` that the zero set of u -> u.g + e crosses (g (c, d), e (c,) per candidate)."""
    n = cells.geo[1][cand]
    K = int(n.max())
    V = cells.geo[0][cand, :K]
    f = values(V, g, e)
    tol = affine_tol(g, e)
    up, down = sides(f, tol, _valid(n, K))
    k = np.nonzero(up & down)[0]
    if not len(k):
        return
    ids = events.add(g[k], e[k])
    plus, minus = clip(cells.take(cand[k], K), f[k], tol[k], ids)
    cells.split(cand[k], plus, minus, col)


def elementwise_stage(cells: Cells, clip, act: Activation, G, E, events: Events, bar, regrow: float = 2.0):
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
        # which ancestors each remaining unit crosses, in blocks of units to bound memory
        j1 = w
        cross0, anc = _crossings(cells.live(0), cells.live(1), G, E, root, slice(j0, j1), bps, flat)
        if j0 == 0:
            _refuse_if_too_many(cells, cross0)
        j = j0
        while j < j1:
            for q, bp in enumerate(bps):
                cand = np.nonzero(cross0[q][cells.anc[: cells.size], j - j0])[0]
                if len(cand):
                    p = cells.parent[cand]
                    _split_unit(cells, clip, cand, G[p, :, j], E[p, j] - bp, j * nb + q, events)
            bar.update(1)
            j += 1
            if cells.size > regrow * size0 + 64:
                break
        _settle_sides(cells, G, E, bps, flat, cross0, anc, j0, j)
        j0 = j
    return cells.side[: cells.size].reshape(cells.size, w, nb).sum(-1, dtype=np.int8)


def _settle_sides(cells, G, E, bps, flat, cross0, anc, j0, j1):
    """Fill ``cells.side`` for units j0..j1-1: a side fixed by a split is kept; a cell whose ancestor the unit
    does not cross inherits the ancestor's side; the rest (ancestor crossed, this piece not) lie on one side:
    look at their vertices (identically on the breakpoint: the state at the breakpoint, ``flat``)."""
    nb = len(bps)
    V, n, p, a = cells.live(0), cells.live(1), cells.parent[: cells.size], cells.anc[: cells.size]
    for q, bp in enumerate(bps):
        cols = np.arange(j0, j1) * nb + q
        side = cells.side[: cells.size, cols]
        cp = cross0[q][a, : j1 - j0]
        todo = side < 0
        side = np.where(todo & ~cp, anc[q][a, : j1 - j0], side)
        ci, uj = np.nonzero(todo & cp)
        del cp, todo
        if len(ci):
            pc = p[ci]
            g, e = G[pc, :, j0 + uj], E[pc, j0 + uj] - bp
            up, down = sides(values(V[ci], g, e), affine_tol(g, e), _valid(n[ci], V.shape[1]))
            side[ci, uj] = np.where(up, 1, np.where(down, 0, flat[q]))
        cells.side[: cells.size, cols] = side


def _line_classes(g, e):
    """For lines (P, L, d), (P, L) per cell: the index of the first line proportional to each (same zero
    set), (P, L). Used so that coinciding max-piece boundaries share one label."""
    a = np.concatenate([g, e[..., None]], -1)
    a = a / np.maximum(np.abs(a).max(-1, keepdims=True), 1e-300)
    L = a.shape[1]
    cls = np.tile(np.arange(L), (a.shape[0], 1))
    for q in range(L - 1, -1, -1):
        for r in range(q):
            prop = (np.abs(a[:, q] - a[:, r]).max(-1) <= 1e-9) | (np.abs(a[:, q] + a[:, r]).max(-1) <= 1e-9)
            cls[:, q] = np.where(prop & (r < cls[:, q]), r, cls[:, q])
    return cls


def max_unit(cells: Cells, clip, G, E, events: Events, kaxis, pad):
    """Split cells by the argmax of one max unit: G (P, d, k), E (P, k) of its pieces per stage-start cell;
    appends the unit's state to ``cells.lab``."""
    geo0 = cells.take(slice(0, cells.size))
    rows, p = np.unique(cells.parent[: cells.size], return_inverse=True)  # this part's stage-start cells
    G, E = G[rows], E[rows]
    lab0 = cells.lab[: cells.size]
    k = G.shape[-1]
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    pidx = {pr: t for t, pr in enumerate(pairs)}
    gl = np.stack([G[:, :, i] - G[:, :, j] for i, j in pairs], 1)  # (P0, L, d)
    el = np.stack([E[:, i] - E[:, j] for i, j in pairs], 1)
    cls = _line_classes(gl, el)
    ids = events.add(gl.reshape(-1, gl.shape[-1]), el.reshape(-1)).reshape(len(G), len(pairs))
    parts, parents, labels = [], [], []
    for i in range(k):
        geo, alive = geo0, np.ones(len(p), bool)
        for j in range(k):
            if j == i:
                continue
            t = pidx[(min(i, j), max(i, j))]
            sgn = 1.0 if i < j else -1.0
            g, e = sgn * gl[p, t], sgn * el[p, t]
            tol = affine_tol(g, e)
            f = values(geo[0], g, e)
            big, small = sides(f, tol, _valid(geo[1], geo[0].shape[1]))
            alive &= big | (~big & ~small & (j > i))  # a tie on the whole cell goes to the lowest index
            cut = alive & big & small
            if cut.any():
                idx = np.nonzero(cut)[0]
                lid = ids[p[idx], cls[p[idx], t]]
                piece = clip([a[idx] for a in geo], f[idx], tol[idx], lid)[0]
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
    ``KAXIS``, ``PAD``, ``BYTES_PER_CELL``). Returns (cells, words, J, c, S, events): the live geometry (padded
    arrays, or the compiled kernel's ragged cells, :class:`._ckernel.Ragged`), packed
    patterns (C, n_words) uint32, the output's affine map ``y = u @ J + c`` (J (C, d, n_out)), its term
    scale S (C, d, n_out) and the event table."""
    threads = max(1, int(THREADS if threads is None else threads))
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
    words = np.zeros((1, packer.n_words), np.uint32)
    for s, st in enumerate(stages, 1):
        C0 = cells.size
        G, E, _ = affine_of(st.weights, st.bias, sources, C0, threads=threads)
        for j in [j for j in sources if last.get(j, 0) <= s and j != 0]:
            del sources[j]
        n_parts = threads if C0 >= PARALLEL_MIN_CELLS else 1
        kernel = st.groups is None and getattr(backend, "KERNEL", None) and _ckernel.available()
        if not kernel and cells.rag is not None:
            cells.unrag()
        if kernel:
            rag = cells.rag if cells.rag is not None else _ckernel.Ragged.from_padded(cells.geo, C0)
            cells.rag = None
            rag, p, state = _ckernel.stage(backend, rag, G, E, st.activation, flat_sides(st.activation), events, bar,
                                           threads, max_cells, _pmap, cells._check)
            parts = None
        elif n_parts == 1:
            parts = [_stage(cells, st, G, E, events, backend, bar, 1.0, np.arange(C0))]
        else:  # the stage-start cells' descendants are independent: split them among the threads
            subsets = [np.arange(t, C0, n_parts) for t in range(n_parts)]
            subcells = [Cells([a[idx] for a in cells.geo], backend.KAXIS, backend.PAD, max_cells, cells.bpc)
                        for idx in subsets]
            cells.reset([a[:1] for a in cells.geo], np.zeros(1, np.intp), np.zeros((1, 0), np.int8))  # free
            parts = _pmap(lambda t, G=G, E=E: _stage(subcells[t], st, G, E, events, backend, bar, 1.0 / n_parts,
                                                     subsets[t]),
                          range(n_parts), n_parts)
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
            new = _StageMap(G, E, p, state, groups=st.groups)
        else:
            S_, K_ = piece_tables(st.activation, st.m, st.slopes)
            new = _StageMap(G, E, p, state, S_, K_)
        for src in sources.values():
            src.reindex(p)
        words = packer.add(words[p], state)
        if s < len(stages):
            _guard(total, stages[s], d, cells, bar)
        if last.get(s, 0) > s:
            sources[s] = new
        del G, E, new, state
    J, c, S = affine_of(staged.out_weights, staged.out_bias, sources, cells.size, want_scale=True, threads=threads)
    geo = cells.rag if cells.rag is not None else [a[: cells.size] for a in cells.geo]  # ragged: padded on use
    return geo, words, J, c, S, events.finish()


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


def _stage(cells: Cells, st, G, E, events, backend, bar, frac, start):
    """One stage on ``cells``, whose rows of G, E are ``start``: (geo, stage-start index, states int8)."""
    bar = _Frac(bar, frac)
    if st.groups is not None:
        cells.new_stage(0, start)
        for i in range(st.width):
            gi = st.groups[i]
            max_unit(cells, backend.clip, G[:, :, gi], E[:, gi], events, backend.KAXIS, backend.PAD)
            bar.update(1)
        state = cells.lab[: cells.size].astype(np.int8)
    else:
        cells.new_stage(st.width * len(st.activation.breakpoints), start)
        state = elementwise_stage(cells, backend.clip, st.activation, G, E, events, bar)
    return [a[: cells.size] for a in cells.geo], cells.parent[: cells.size].copy(), state


def _bits(st) -> int:
    k = st.groups.shape[1] if st.groups is not None else st.activation.n_states
    return max(1, (k - 1).bit_length())


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
