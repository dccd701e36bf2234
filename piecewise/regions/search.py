"""Every activation region of a box in any dimension, bounded or not (the whole input space ``R^n``): a search
over the region graph, regions expanded in batches, facets decided by shared points, rays and a batched
simplex (HiGHS through highspy, or scipy, where those cannot tell).

A region is its activation pattern. Under a pattern every pre-activation is affine in the input x, so the
region is the polyhedron where each unit keeps its state: for an elementwise unit with breakpoints
``b_1 < ... < b_m`` in state ``k``, ``b_k <= z <= b_{k+1}``; for a max unit whose piece ``r`` wins,
``z_r >= z_b`` for every other piece ``b`` (rows ``a.x + c >= 0``). Two regions are neighbours when they share
a facet (a face of dimension n - 1); the graph is connected, so a breadth-first search from one region reaches
every region of the domain. The search takes up to :data:`BATCH` regions at a time from its queue and
computes their rows together (one batched product per stage). Per region:

1. **an interior point** ``x`` with every row positive beyond its rounding bound: the point it was reached by,
   or the centroid of the points of its facets shared by regions already expanded (on two or more facets of
   a convex region, strictly inside), whichever is deeper; else the centre of the largest ball inside the
   region (one HiGHS LP);
2. **shared facets**: the facet by which a region was reached is the facet of the region across, and the
   point that proved it there proves it here (certified again in this region's rows); each facet is decided
   from one side only;
3. **rays** from ``x`` towards each row's hyperplane: the first hyperplane a ray hits at a point where every
   other row is positive beyond its bound is a facet (the point proves it);
4. **a batched simplex for every remaining unit row** (:func:`_lp_batch`, vectorised over the rows of the whole
   batch): min ``a_j.y`` over the other rows from ``x``; a point of the other rows where row j is negative
   makes the segment from ``x`` cross a facet halfway, a point that passes the float64 margin test; an
   optimal basis whose multipliers bound row j from below by more than :data:`DELTA` of the region's scale
   shows it redundant. What it cannot settle (closer bounds, iteration limits, points that fail the margin
   test) goes to HiGHS: the largest ball centred on the row's hyperplane inside the other rows
   (``max t : a_j.y + c_j = 0, a_i.y + c_i >= t |a_i|``); a facet if its optimum point passes the margin
   test, not one if the optimum is <= 1e-9 of the region's scale or infeasible (the row only touches the
   region or misses it); anything between is counted in ``undecided`` (and ``exact`` is False);
5. **the neighbour** across each facet: every other row is positive at the facet's point, so every other
   unit keeps its state across it -- the pattern with that unit in its other state, and a point just across
   (checked as that region's interior point when it is expanded).

A region with duplicate rows, a unit at a breakpoint on the whole region or max units is expanded on its own
(the same steps, with its neighbours' patterns from a forward pass at a point across, proven inside them).
Degenerate rules, as in the vertex engine: a row that is identically zero on a region (a unit that is zero
on the whole cell) never splits it (its state is the one the forward pass gives at zero: ties decided once);
rows with one hyperplane and side (duplicate units, units that repeat an earlier boundary) are one facet,
crossed together; a hyperplane that only touches a region is no facet. Rounding bounds are those of
:mod:`piecewise.numerics` (the magnitudes summed through the network), and the LPs work in the region's own
scale (rows normalised, coordinates centred at the interior point and divided by its scale), so rescaling
the inputs, a layer or the output changes no decision. ``workers > 1`` expands batches on forked processes:
the same regions and edges (as patterns; their order, points and the figures of how facets were decided
can differ).
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..errors import PiecewiseError
from ..numerics import SAFETY, gamma

T_NONE = 1e-9  # LP optimum (in the region's scale) at or below which a row is no facet
DUP = 1e-11  # rows whose normalised coefficients agree this closely are one hyperplane


@dataclass(frozen=True, eq=False)
class SpaceBox:
    """A box with possibly infinite sides, ``lo <= x <= hi`` (float64 (n_in,) each, ``-inf``/``inf`` allowed):
    the whole input space when every side is infinite. Build with :func:`space`."""

    lo: np.ndarray
    hi: np.ndarray
    kind: str = "space"

    @property
    def n_in(self) -> int:
        return int(self.lo.shape[0])

    @property
    def dim(self) -> int:
        return self.n_in

    @property
    def bounded(self) -> bool:
        return bool(np.all(np.isfinite(self.lo)) and np.all(np.isfinite(self.hi)))

    @property
    def whole(self) -> bool:
        return bool(np.all(np.isneginf(self.lo)) and np.all(np.isposinf(self.hi)))

    def describe(self) -> dict:
        def num(v):
            return [float(t) if np.isfinite(t) else ("inf" if t > 0 else "-inf") for t in v]

        return {"kind": "whole space" if self.whole else "box", "lo": num(self.lo), "hi": num(self.hi)}

    def measure(self) -> float:
        return float(np.prod(self.hi - self.lo))

    def rows(self):
        """The box's finite sides as rows ``a.x + c >= 0``: A (S, n), c (S,) (``x_k - lo_k``, ``hi_k - x_k``)."""
        n = self.n_in
        A, c = [], []
        for k in range(n):
            e = np.zeros(n)
            e[k] = 1.0
            if np.isfinite(self.lo[k]):
                A.append(e); c.append(-self.lo[k])
            if np.isfinite(self.hi[k]):
                A.append(-e); c.append(self.hi[k])
        return np.array(A).reshape(-1, n), np.array(c)


def space(lo=-np.inf, hi=np.inf, n_in: int | None = None) -> SpaceBox:
    """The box ``[lo, hi]^n_in`` whose sides may be infinite (scalars or arrays of length n_in); the default is
    the whole input space ``R^n_in``."""
    from .domain import box_bounds

    lo, hi = box_bounds(lo, hi, n_in)
    if np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
        raise PiecewiseError("box bounds contain NaN")
    if np.any(np.isposinf(lo)) or np.any(np.isneginf(hi)):
        raise PiecewiseError("box bounds: LO cannot be +inf nor HI -inf")
    if np.any(hi <= lo):
        raise PiecewiseError(f"empty box: need LO < HI, got LO={lo.tolist()} HI={hi.tolist()}")
    return SpaceBox(lo, hi)


# -- the network under one pattern ------------------------------------------------------------------------
class _Affine:
    """Affine maps of every pre-activation of a StagedNet under given states, their magnitude bounds, and the
    rows (a.x + c >= 0) that keep every unit in its state."""

    def __init__(self, staged):
        self.net = staged
        self.n = staged.n_in
        self.absW = [{j: np.abs(A) for j, A in st.weights.items()} for st in staged.stages]
        self.abs_out = {j: np.abs(A) for j, A in staged.out_weights.items()}
        fan = [sum(A.shape[0] for A in st.weights.values()) for st in staged.stages]
        self.g = gamma(sum(f + 3 for f in fan) + 2 * self.n + 8) * SAFETY
        self.pieces = []
        for st in staged.stages:
            act = st.activation
            if st.groups is not None:
                self.pieces.append(None)
                continue
            slopes = np.asarray(act.slopes, np.float64)
            consts = np.zeros_like(slopes)
            if act.name == "hardtanh":
                consts = np.array([-1.0, 0.0, 1.0])
            self.pieces.append((slopes, consts, np.asarray(act.breakpoints, np.float64)))
        # the batched rows' columns: per stage, per breakpoint (elementwise) or piece (max), every unit
        self.offsets = np.cumsum([0] + [st.width for st in staged.stages])
        self.width = int(self.offsets[-1])
        self.has_max = any(st.groups is not None for st in staged.stages)
        cs, cu = [], []
        for s, st in enumerate(staged.stages):
            blocks = st.groups.shape[1] if st.groups is not None else len(self.pieces[s][2])
            for _ in range(blocks):
                cs.append(np.full(st.width, s))
                cu.append(np.arange(st.width))
        self.col_stage = np.concatenate(cs).astype(np.int64) if cs else np.zeros(0, np.int64)
        self.col_unit = np.concatenate(cu).astype(np.int64) if cu else np.zeros(0, np.int64)
        self.col_global = self.offsets[self.col_stage] + self.col_unit  # index into a concatenated pattern

    def split(self, K):
        """Per-stage states (a list of int32 (B, width_s)) of concatenated patterns K (B, width)."""
        K = np.asarray(K)
        return [K[:, a:b].astype(np.int32) for a, b in zip(self.offsets[:-1], self.offsets[1:])]

    def maps_batch(self, states):
        """Pre-activation maps of B regions at once: per stage (G (B, n, m), E (B, m), MG, ME) (a stage reading
        only the input has G, MG of shape (1, n, m)), under ``states`` (per stage int arrays (B, width_s))."""
        B = states[0].shape[0] if states else 1
        H, off, MH, Moff = [None], [None], [None], [None]
        out = []
        for s, (st, k) in enumerate(zip(self.net.stages, states)):
            G = E = MG = ME = None
            for j, A in st.weights.items():
                aA = self.absW[s][j]
                if j == 0:
                    g, mg = A[None], aA[None]
                    e = me = None
                else:
                    g, e, mg, me = H[j] @ A, off[j] @ A, MH[j] @ aA, Moff[j] @ aA
                G = g if G is None else G + g
                MG = mg if MG is None else MG + mg
                if e is not None:
                    E = e if E is None else E + e
                    ME = me if ME is None else ME + me
            E = np.broadcast_to(st.bias, (B, st.m)) if E is None else E + st.bias
            ME = np.broadcast_to(np.abs(st.bias), (B, st.m)) if ME is None else ME + np.abs(st.bias)
            out.append((G, E, MG, ME))
            if st.groups is not None:
                idx = st.groups[np.arange(st.width)[None, :], k]  # (B, width)
                Gb = np.broadcast_to(G, (B,) + G.shape[1:])
                MGb = np.broadcast_to(MG, (B,) + MG.shape[1:])
                H.append(np.take_along_axis(Gb, idx[:, None, :], 2))
                MH.append(np.take_along_axis(MGb, idx[:, None, :], 2))
                off.append(np.take_along_axis(E, idx, 1))
                Moff.append(np.take_along_axis(ME, idx, 1))
            else:
                slopes, consts, _ = self.pieces[s]
                sl = slopes[k]
                if st.slopes is not None:
                    sl = np.where(k == 1, 1.0, st.slopes[None, :])
                cs = consts[k]
                H.append(G * sl[:, None, :]); off.append(E * sl + cs)
                MH.append(MG * np.abs(sl)[:, None, :]); Moff.append(ME * np.abs(sl) + np.abs(cs))
        return out

    def rows_batch(self, states, stage_maps):
        """The rows of B regions in the fixed column layout (``col_stage``, ``col_unit``): A (B, P, n), c (B, P),
        magnitudes MA (B, P, n), MC (B, P), ``active`` (B, P) (the columns that are rows of each region: a unit's
        state has a row per breakpoint next to it, a max unit one per piece other than its winner, repeats
        excluded) and ``target`` (B, P) int64, the unit's state across the row."""
        n = self.n
        B = states[0].shape[0] if states else 1
        As, cs, MAs, MCs, act, tgt = [], [], [], [], [], []
        for s, (st, k, (G, E, MG, ME)) in enumerate(zip(self.net.stages, states, stage_maps)):
            Gt = np.broadcast_to(np.swapaxes(G, 1, 2), (B, st.m, n))
            MGt = np.broadcast_to(np.swapaxes(MG, 1, 2), (B, st.m, n))
            if st.groups is not None:
                w = st.width
                win = st.groups[np.arange(w)[None, :], k]  # (B, w)
                Gw = np.take_along_axis(Gt, win[:, :, None], 1)
                MGw = np.take_along_axis(MGt, win[:, :, None], 1)
                Ew, MEw = np.take_along_axis(E, win, 1), np.take_along_axis(ME, win, 1)
                for b in range(st.groups.shape[1]):
                    other = st.groups[:, b]
                    first = np.all(st.groups[:, :b] != other[:, None], axis=1) if b else np.ones(w, bool)
                    act.append((other[None, :] != win) & first[None, :])
                    As.append(Gw - Gt[:, other]); cs.append(Ew - E[:, other])
                    MAs.append(MGw + MGt[:, other]); MCs.append(MEw + ME[:, other])
                    tgt.append(np.full((B, w), b, np.int64))
                continue
            _, _, bp = self.pieces[s]
            for r, beta in enumerate(bp):
                lower, upper = k == r + 1, k == r  # state r + 1: z - beta >= 0; state r: beta - z >= 0
                sign = np.where(lower, 1.0, -1.0)
                act.append(lower | upper)
                As.append(sign[:, :, None] * Gt); cs.append(sign * (E - beta))
                MAs.append(MGt); MCs.append(ME + abs(beta))
                tgt.append(np.where(lower, r, r + 1).astype(np.int64))
        if not As:
            z = np.zeros((B, 0))
            return np.zeros((B, 0, n)), z, np.zeros((B, 0, n)), z, np.zeros((B, 0), bool), np.zeros((B, 0), np.int64)
        return (np.concatenate(As, 1), np.concatenate(cs, 1), np.concatenate(MAs, 1), np.concatenate(MCs, 1),
                np.concatenate(act, 1), np.concatenate(tgt, 1))

    def maps(self, states):
        """Pre-activation maps (G (n, m_s), E (m_s,), MG, ME) per stage, and the output map (J (n, n_out),
        c (n_out,), MJ, Mc), under ``states`` (a list of int arrays (width_s,))."""
        n = self.n
        H, off, MH, Moff = [np.eye(n)], [np.zeros(n)], [np.eye(n)], [np.zeros(n)]
        out = []
        for s, (st, k) in enumerate(zip(self.net.stages, states)):
            G = E = MG = ME = None
            for j, A in st.weights.items():
                aA = self.absW[s][j]
                g, e, mg, me = H[j] @ A, off[j] @ A, MH[j] @ aA, Moff[j] @ aA
                G, E = (g, e) if G is None else (G + g, E + e)
                MG, ME = (mg, me) if MG is None else (MG + mg, ME + me)
            E = E + st.bias
            ME = ME + np.abs(st.bias)
            out.append((G, E, MG, ME))
            if st.groups is not None:
                idx = st.groups[np.arange(st.width), k]
                H.append(G[:, idx]); off.append(E[idx]); MH.append(MG[:, idx]); Moff.append(ME[idx])
            else:
                slopes, consts, _ = self.pieces[s]
                sl = slopes[k]
                if st.slopes is not None:
                    sl = np.where(k == 1, 1.0, st.slopes)
                cs = consts[k]
                H.append(G * sl); off.append(E * sl + cs); MH.append(MG * np.abs(sl)); Moff.append(ME * np.abs(sl) + np.abs(cs))
        J = c = MJ = Mc = None
        for j, A in self.net.out_weights.items():
            aA = self.abs_out[j]
            g, e, mg, me = H[j] @ A, off[j] @ A, MH[j] @ aA, Moff[j] @ aA
            J, c = (g, e) if J is None else (J + g, c + e)
            MJ, Mc = (mg, me) if MJ is None else (MJ + mg, Mc + me)
        return out, (J, c + self.net.out_bias, MJ, Mc + np.abs(self.net.out_bias))

    def rows(self, states, stage_maps):
        """Rows of the region: A (M, n), c (M,), magnitudes MA (M, n), MC (M,), and meta (M, 3) int64
        (stage, unit, state after crossing the row)."""
        As, cs, MAs, MCs, meta = [], [], [], [], []
        for s, (st, k, (G, E, MG, ME)) in enumerate(zip(self.net.stages, states, stage_maps)):
            if st.groups is not None:
                w = st.width
                win = st.groups[np.arange(w), k]
                for b in range(st.groups.shape[1]):
                    other = st.groups[:, b]
                    # a piece that repeats the winner's entry, or an earlier piece's entry, adds no row
                    keep = (other != win) & np.all(st.groups[:, :b] != other[:, None], axis=1) if b else (other != win)
                    u = np.nonzero(keep)[0]
                    if not u.size:
                        continue
                    As.append((G[:, win[u]] - G[:, other[u]]).T)
                    cs.append(E[win[u]] - E[other[u]])
                    MAs.append((MG[:, win[u]] + MG[:, other[u]]).T)
                    MCs.append(ME[win[u]] + ME[other[u]])
                    meta.append(np.stack([np.full(u.size, s), u, np.full(u.size, b)], 1))
                continue
            _, _, bp = self.pieces[s]
            for r, beta in enumerate(bp):
                lower = np.nonzero(k == r + 1)[0]  # state r + 1 lies above breakpoint r: z - beta >= 0
                upper = np.nonzero(k == r)[0]  # state r lies below it: beta - z >= 0
                for u, sign, target in ((lower, 1.0, r), (upper, -1.0, r + 1)):
                    if not u.size:
                        continue
                    As.append(sign * G[:, u].T)
                    cs.append(sign * (E[u] - beta))
                    MAs.append(MG[:, u].T)
                    MCs.append(ME[u] + abs(beta))
                    meta.append(np.stack([np.full(u.size, s), u, np.full(u.size, target)], 1))
        if not As:
            n = self.n
            return np.zeros((0, n)), np.zeros(0), np.zeros((0, n)), np.zeros(0), np.zeros((0, 3), np.int64)
        return (np.concatenate(As), np.concatenate(cs), np.concatenate(MAs), np.concatenate(MCs),
                np.concatenate(meta).astype(np.int64))

    def states(self, x):
        return [np.asarray(s, np.int32) for s in self.net.states(np.asarray(x, np.float64))]


# -- linear programs ----------------------------------------------------------------------------------------
_HIGHS = None
_OWNER = None  # the _LP whose model the instance holds


def _highs(highspy):
    """The process's one HiGHS instance (each region passes its model to it), built with stdout silenced: its
    constructor prints a banner that would corrupt ``--json`` output."""
    global _HIGHS
    if _HIGHS is None:
        import os
        import sys

        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        h.setOptionValue("output_flag", False)
        h.setOptionValue("presolve", "off")
        _HIGHS = h
    return _HIGHS


class _LP:
    """max t s.t. N y + d >= t (rows i != j), N_j y + d_j = 0, t <= 1: one model per region, one row made an
    equality per solve (HiGHS through highspy, warm started; scipy's linprog where highspy is missing)."""

    def __init__(self, N, d):
        self.N, self.d = N, d
        self.M, self.n = N.shape
        try:
            import highspy
        except ImportError:
            self.h = None
            return
        inf = highspy.kHighsInf
        h = _highs(highspy)
        lp = highspy.HighsLp()
        n, M = self.n, self.M
        lp.num_col_, lp.num_row_ = n + 1, M
        lp.col_cost_ = np.r_[np.zeros(n), -1.0]
        lp.col_lower_ = np.full(n + 1, -inf)
        lp.col_upper_ = np.r_[np.full(n, inf), 1.0]
        lp.row_lower_ = -d
        lp.row_upper_ = np.full(M, inf)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = np.arange(M + 1) * (n + 1)
        lp.a_matrix_.index_ = np.tile(np.arange(n + 1), M)
        lp.a_matrix_.value_ = np.c_[N, -np.ones((M, 1))].ravel()
        self.h, self.inf, self.hs, self.lp = h, inf, highspy, lp
        self._activate()

    def _activate(self):
        """Make this model the one the shared HiGHS instance holds (another region's LP may have replaced it)."""
        global _OWNER
        if _OWNER is not self:
            self.h.passModel(self.lp)
            _OWNER = self

    def solve(self, j, others_off=()):
        """(t*, y*) of the LP with row j an equality (rows in ``others_off``, duplicates of j, dropped), or
        (-inf, None) when infeasible."""
        if self.h is None:
            return self._scipy(j, others_off)
        self._activate()
        h, inf = self.h, self.inf
        h.changeCoeff(j, self.n, 0.0)
        h.changeRowBounds(j, -self.d[j], -self.d[j])
        for i in others_off:
            h.changeRowBounds(i, -inf, inf)
        h.run()
        status = h.getModelStatus()
        ok = status == self.hs.HighsModelStatus.kOptimal
        t = y = None
        if ok:
            sol = np.asarray(h.getSolution().col_value)
            t, y = float(sol[-1]), sol[:-1].copy()
        h.changeCoeff(j, self.n, -1.0)
        h.changeRowBounds(j, -self.d[j], inf)
        for i in others_off:
            h.changeRowBounds(i, -self.d[i], inf)
        if not ok:
            return -math.inf, None
        return t, y

    def chebyshev(self):
        """The largest ball inside every row: (t*, y*)."""
        if self.h is None:
            return self._scipy(None, ())
        self._activate()
        self.h.run()
        if self.h.getModelStatus() != self.hs.HighsModelStatus.kOptimal:
            return -math.inf, None
        sol = np.asarray(self.h.getSolution().col_value)
        return float(sol[-1]), sol[:-1].copy()

    def _scipy(self, j, off):
        from scipy.optimize import linprog

        keep = np.ones(self.M, bool)
        keep[list(off)] = False
        if j is not None:
            keep[j] = False
        A_ub = np.c_[-self.N[keep], np.ones(int(keep.sum()))]
        b_ub = self.d[keep]
        kw = {}
        if j is not None:
            kw = {"A_eq": np.r_[self.N[j], 0.0][None], "b_eq": [-self.d[j]]}
        r = linprog(np.r_[np.zeros(self.n), -1.0], A_ub=A_ub, b_ub=b_ub, bounds=[(None, None)] * self.n + [(None, 1.0)],
                    method="highs", **kw)
        if r.status != 0:
            return -math.inf, None
        return float(r.x[-1]), r.x[:-1]


# -- the search -------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class RegionGraph:
    """Every activation region of a box (bounded or not) found by the region-graph search (:func:`search`).

    Attributes:
      domain: the :class:`SpaceBox` searched.
      points: (R, n_in) float64, a point strictly inside each region (every row positive beyond its bound).
      states: per stage an int32 array (R, width_s): each region's activation pattern.
      patterns: (R, n_words) uint32, the patterns packed as :func:`piecewise.patterns.pack_states` packs them.
      edges: (P, 2) int64, pairs of regions sharing a facet (i < j), and ``edge_units`` (P, 2) int64 the
        (stage, unit) of one unit whose boundary the facet lies on.
      seconds, lps (LPs solved: batched simplex and HiGHS), lps_highs (those by HiGHS), rays (facets proven by
      a ray, without an LP), shared (facets proven by the point of the region across), undecided (LP decisions
      that float64 could not settle: each is one facet taken as absent; the count is exact when 0), workers.
    """

    net: object
    domain: SpaceBox
    points: np.ndarray
    states: list
    patterns: np.ndarray
    edges: np.ndarray
    edge_units: np.ndarray
    seconds: float
    lps: int
    rays: int
    undecided: int
    shared: int = 0
    lps_highs: int = 0
    workers: int = 1
    algorithm: str = "region-graph search (facets by shared points, rays and batched LPs; HiGHS where they cannot tell)"
    measure: np.ndarray | None = None
    _maps: object = field(default=None, repr=False)

    @property
    def regions(self) -> int:
        return int(self.points.shape[0])

    def __len__(self):
        return self.regions

    @property
    def exact(self) -> bool:
        return self.undecided == 0

    def adjacency(self, kind: str = "scipy"):
        """The region graph: a scipy.sparse CSR matrix (R, R) of 0/1 (``kind="scipy"``) or a networkx Graph
        (``kind="networkx"``; nodes carry ``point``, edges ``unit``)."""
        R = self.regions
        if kind == "networkx":
            import networkx as nx

            g = nx.Graph()
            for i in range(R):
                g.add_node(i, point=self.points[i])
            for (a, b), u in zip(self.edges, self.edge_units):
                g.add_edge(int(a), int(b), unit=(int(u[0]), int(u[1])))
            return g
        from scipy.sparse import coo_matrix

        e = self.edges
        m = coo_matrix((np.ones(2 * len(e)), (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])), shape=(R, R))
        return m.tocsr()

    def output_maps(self):
        """Each region's affine output map: J (R, n_in, n_out), c (R, n_out), float64."""
        aff = _Affine(self.net)
        Js, cs = [], []
        for i in range(self.regions):
            _, (J, c, _, _) = aff.maps([s[i] for s in self.states])
            Js.append(J)
            cs.append(c)
        return np.array(Js), np.array(cs)

    def same_map(self) -> np.ndarray:
        """bool (P,): whether the two regions of each edge have the same affine output map (float64 where its
        bounds prove a difference; exact rational arithmetic otherwise)."""
        per_region = [[s[i] for s in self.states] for i in range(self.regions)]
        return _same_maps(self.net, _Affine(self.net), per_region, self.edges)

    def linear_regions(self) -> tuple[int, np.ndarray]:
        """(number of linear regions, label per region): connected unions of facet-sharing regions with one
        affine output map."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        keep = self.same_map() if len(self.edges) else np.zeros(0, bool)
        e = self.edges[keep]
        R = self.regions
        n, labels = connected_components(coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(R, R)),
                                          directed=False)
        return int(n), labels

    def components(self, labels) -> int:
        """Number of connected components of the union of the regions where ``labels`` (R,) is True (e.g. a
        class's regions when the class is constant on each of them), through shared facets."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        labels = np.asarray(labels, bool)
        idx = np.nonzero(labels)[0]
        if not idx.size:
            return 0
        pos = -np.ones(self.regions, np.int64)
        pos[idx] = np.arange(idx.size)
        e = self.edges[labels[self.edges[:, 0]] & labels[self.edges[:, 1]]]
        g = coo_matrix((np.ones(len(e)), (pos[e[:, 0]], pos[e[:, 1]])), shape=(idx.size, idx.size))
        return int(connected_components(g, directed=False)[0])

    def to_json(self, linear: bool = False) -> dict:
        out = {"regions": self.regions, "method": "exact", "algorithm": self.algorithm,
               "seconds": round(self.seconds, 4), "domain": self.domain.describe(), "exact": self.exact,
               "undecided": self.undecided, "facets": int(len(self.edges)), "lps": self.lps,
               "facets_by_ray": self.rays, "facets_shared": self.shared, "lps_highs": self.lps_highs,
               "workers": self.workers,
               "measure_total": float(np.sum(self.measure)) if self.measure is not None else None}
        if linear:
            out["linear_regions"] = self.linear_regions()[0]
        return out

    def save_cells(self, path) -> str:
        """Write ``points`` (R, n_in), ``patterns`` (R, n_words), ``edges`` (P, 2), ``edge_units`` (P, 2) and,
        where computed, ``measure`` (R,) to a .npz; returns the path."""
        import os

        from ..files import atomic_open

        path = os.fspath(path)
        if not path.endswith(".npz"):
            raise PiecewiseError(f"--cells: the file must end in .npz, got {path!r}")
        arrays = {"points": self.points, "patterns": self.patterns, "edges": self.edges, "edge_units": self.edge_units}
        if self.measure is not None:
            arrays["measure"] = self.measure
        with atomic_open(path, "wb") as f:
            np.savez(f, **arrays)
        return path


class _ExactMaps:
    """The output map of a pattern in exact rational arithmetic (float64 weights are exact rationals)."""

    def __init__(self, staged):
        self.net = staged
        fr = np.vectorize(Fraction, otypes=[object])
        self.W = [{j: fr(A) for j, A in st.weights.items()} for st in staged.stages]
        self.b = [fr(st.bias) for st in staged.stages]
        self.Wo = {j: fr(A) for j, A in staged.out_weights.items()}
        self.bo = fr(staged.out_bias)
        self.fr = fr

    def map_of(self, states):
        n = self.net.n_in
        eye = np.array([[Fraction(int(i == j)) for j in range(n)] for i in range(n)], dtype=object)
        H, off = [eye], [np.array([Fraction(0)] * n, dtype=object)]
        for s, (st, k) in enumerate(zip(self.net.stages, states)):
            G = sum(H[j] @ A for j, A in self.W[s].items())
            E = self.b[s] + sum(off[j] @ A for j, A in self.W[s].items())
            if st.groups is not None:
                idx = st.groups[np.arange(st.width), k]
                H.append(G[:, idx]); off.append(E[idx])
                continue
            act = st.activation
            sl = np.asarray(act.slopes, np.float64)[k]
            if st.slopes is not None:
                sl = np.where(k == 1, 1.0, st.slopes)
            cs = np.array([-1.0, 0.0, 1.0])[k] if act.name == "hardtanh" else np.zeros(len(k))
            sl, cs = self.fr(sl), self.fr(cs)
            H.append(G * sl); off.append(E * sl + cs)
        J = sum(H[j] @ A for j, A in self.Wo.items())
        c = self.bo + sum(off[j] @ A for j, A in self.Wo.items())
        return tuple(J.ravel().tolist()) + tuple(c.tolist())


def _require_pl(net, params) -> None:
    if params is not None:
        from ..activations import get_activation

        if not get_activation(net.activation).piecewise_linear:
            raise PiecewiseError(f"activation {net.activation} is not piecewise linear: it has no activation regions")


BATCH = 256  # regions expanded together (one set of array operations, one batch of LPs)


def search(net, params=None, domain: SpaceBox | None = None, *, x0=None, progress: bool | None = None,
           max_regions: int = 10_000_000, workers: int = 1) -> RegionGraph:
    """Every activation region of ``net`` in ``domain`` (default: the whole input space), by a search over the
    region graph (module docstring).

    Args:
      net, params: an MLP and its params, a graph (``params=None``; composed into stages), or a StagedNet.
      domain: a :class:`SpaceBox` (:func:`space`; any side may be infinite) or a finite
        :func:`~piecewise.regions.box`.
      x0: the starting point (n_in,) (default: the box's centre, or 0 / a finite side in each coordinate).
      progress: a progress bar with regions found and the frontier (None: on a terminal, for longer runs).
      max_regions: refuse (PiecewiseError) past this many regions.
      workers: processes expanding batches of regions (1: in this process; more: forked worker processes, so
        not on Windows; fork a process that runs JAX only if you accept JAX's warning about it).
        The regions and edges do not depend on it (as patterns: their order and points may, and the figures
        ``lps``, ``rays`` and ``shared``).
    Returns:
      :class:`RegionGraph`.
    """
    from ..staged import as_staged

    t0 = time.perf_counter()
    _require_pl(net, params)
    if not (isinstance(workers, (int, np.integer)) and workers >= 1):
        raise PiecewiseError(f"workers must be a positive integer, got {workers!r}")
    staged = as_staged(net, params)
    n = staged.n_in
    if domain is None:
        domain = space(n_in=n)
    if not isinstance(domain, SpaceBox):
        if getattr(domain, "kind", None) != "box":
            raise PiecewiseError(f"the region-graph search takes a box (bounded or not), got a {domain.kind}")
        lo, hi = domain.exact if domain.exact is not None else (domain.origin, domain.origin + np.diag(domain.axes))
        domain = space(lo, hi)
    if domain.n_in != n:
        raise PiecewiseError(f"the box lives in R^{domain.n_in} but the network has {n} inputs")
    aff = _Affine(staged)
    BA, Bc = domain.rows()  # the box's sides: rows with no unit to cross
    box = (BA, Bc, np.abs(BA), np.abs(Bc))

    if x0 is None:  # a generic point: inside a finite side's range, near a half-infinite side's end, near 0
        rng = np.random.default_rng(12345)
        lo, hi = domain.lo, domain.hi
        fin = np.isfinite(lo) & np.isfinite(hi)
        x0 = np.zeros(n)
        x0[fin] = lo[fin] + (hi[fin] - lo[fin]) * rng.uniform(0.3, 0.7, int(fin.sum()))
        only_lo = np.isfinite(lo) & ~fin
        only_hi = np.isfinite(hi) & ~fin
        x0[only_lo] = lo[only_lo] + np.maximum(1.0, np.abs(lo[only_lo])) * rng.uniform(0.5, 1.5, int(only_lo.sum()))
        x0[only_hi] = hi[only_hi] - np.maximum(1.0, np.abs(hi[only_hi])) * rng.uniform(0.5, 1.5, int(only_hi.sum()))
        free = ~np.isfinite(lo) & ~np.isfinite(hi)
        x0[free] = rng.normal(size=int(free.sum())) * 1e-3
    x0 = np.asarray(x0, np.float64)
    if x0.shape != (n,) or not np.all(np.isfinite(x0)):
        raise PiecewiseError(f"x0 must be a finite point of shape ({n},), got shape {x0.shape}")

    g = _Graph(max_regions)
    g.add(_concat(aff.states(x0)), x0, None)
    bar = _bar(progress)
    try:
        _run(g, aff, box, bar, workers)
    finally:
        if bar is not None:
            bar.close()
    K = np.array(g.K, np.int32).reshape(len(g.K), aff.width)
    states = aff.split(K)
    patterns = _pack(staged, K)
    E = np.array(sorted(g.edges), np.int64).reshape(-1, 2)
    U = np.array([g.edges[tuple(e)] for e in E.tolist()], np.int64).reshape(-1, 2)
    st = g.stats
    return RegionGraph(staged, domain, np.array(g.pts).reshape(-1, n), states, patterns, E, U,
                       time.perf_counter() - t0, st["lps"], st["rays"], st["undecided"], shared=st["shared"],
                       lps_highs=st["highs"], workers=int(workers))


def _pack(staged, K) -> np.ndarray:
    """Patterns K (R, width) packed into uint32 words (R, n_words) as :func:`piecewise.patterns.pack_states`
    packs them (in NumPy: no JAX import)."""
    from .buffers import Packer

    bits = max([st.activation.bits for st in staged.stages] or [1])
    packer = Packer(int(K.shape[1]), bits)
    words = np.zeros((len(K), packer.n_words), np.uint32)
    return packer.add(words, np.asarray(K)) if K.shape[1] else words


def _concat(states) -> np.ndarray:
    """One region's per-stage states as one int16 pattern (width,); its bytes are the region's key."""
    return np.concatenate([np.asarray(s, np.int16).ravel() for s in states]) if len(states) else np.zeros(0, np.int16)


class _Graph:
    """The search's state: regions (pattern, point), the facets shared with regions not yet expanded, the edges
    found and the queue of regions to expand."""

    def __init__(self, max_regions):
        self.max_regions = max_regions
        self.seen, self.K, self.pts, self.shared, self.taken = {}, [], [], [], []
        self.edges, self.queue = {}, deque()
        self.stats = {"lps": 0, "rays": 0, "undecided": 0, "shared": 0, "highs": 0}

    def add(self, krow, x, entry):
        """Index of the region with pattern krow (int16 (width,)), added with point x if new; ``entry``
        (((stage, unit), p): a point p on its facet on that unit's boundary) is kept for its expansion."""
        key = krow.tobytes()
        j = self.seen.get(key)
        if j is None:
            if len(self.pts) >= self.max_regions:
                raise PiecewiseError(f"more than max_regions={self.max_regions:,} regions: raise max_regions")
            j = self.seen[key] = len(self.pts)
            self.K.append(krow)
            self.pts.append(x)
            self.shared.append([entry] if entry is not None else [])
            self.taken.append(False)
            self.queue.append(j)
        elif entry is not None and not self.taken[j]:
            self.shared[j].append(entry)
        return j

    def take(self, size):
        """The next regions to expand (at most ``size``): (indices, patterns (B, width), points (B, n), their
        shared facets as arrays: region in the batch, stage, unit (E,) and point (E, n))."""
        idx = [self.queue.popleft() for _ in range(min(size, len(self.queue)))]
        eb, es, eu, ep = [], [], [], []
        for b, r in enumerate(idx):
            self.taken[r] = True
            for (s_, u_), p in self.shared[r]:
                eb.append(b); es.append(s_); eu.append(u_); ep.append(p)
            self.shared[r] = None
        n = len(self.pts[idx[0]]) if idx else 0
        ent = (np.array(eb, np.int64), np.array(es, np.int64), np.array(eu, np.int64), np.array(ep).reshape(-1, n))
        return idx, np.array([self.K[r] for r in idx]), np.array([self.pts[r] for r in idx]), ent

    def apply(self, idx, out):
        """Record a batch's expansion (:func:`_expand_batch`'s result)."""
        X, (fb, Kn, Q, fs, fu, fp), stats = out
        for key, v in stats.items():
            self.stats[key] += v
        for b, r in enumerate(idx):
            self.pts[r] = X[b]
        for t, (b, s_, u_) in enumerate(zip(fb.tolist(), fs.tolist(), fu.tolist())):
            r = idx[b]
            j = self.add(Kn[t], Q[t], ((s_, u_), fp[t]))
            if j != r:
                e = (min(r, j), max(r, j))
                if e not in self.edges:
                    self.edges[e] = (s_, u_)


_WORK = None  # (aff, box) of the search whose forked workers expand batches


def _work(args):
    aff, box = _WORK
    return _expand_batch(aff, box, *args)


def _run(g, aff, box, bar, workers):
    """Expand regions in batches until the queue is empty. With ``workers > 1``, once the queue holds
    ``workers`` batches, in rounds: a batch for each of ``workers - 1`` forked processes (they inherit the
    network; the search itself imports no JAX, whose threads make a fork unsafe) and one expanded here
    meanwhile, the results applied in a fixed order (the same regions and edges as one process finds)."""
    def step(idx, out):
        g.apply(idx, out)
        if bar is not None:
            bar.update(len(idx))
            bar.set_postfix_str(f"frontier {len(g.queue)}", refresh=False)

    while g.queue and (workers == 1 or len(g.queue) < workers * BATCH):
        idx, K, X, ent = g.take(BATCH)
        step(idx, _expand_batch(aff, box, K, X, ent))
    if not g.queue:
        return
    import multiprocessing as mp

    global _WORK
    try:
        ctx = mp.get_context("fork")
    except ValueError as err:
        raise PiecewiseError("workers > 1 needs the fork start method (Linux, macOS)") from err
    _WORK = (aff, box)
    try:
        with ctx.Pool(workers - 1) as pool:
            while g.queue:
                size = max(8, min(BATCH, -(-len(g.queue) // workers)))  # small frontiers: a batch for everyone
                sent = []
                for _ in range(workers - 1):
                    if g.queue:
                        idx, K, X, ent = g.take(size)
                        sent.append((idx, pool.apply_async(_work, ((K, X, ent),))))
                mine = None
                if g.queue:
                    idx, K, X, ent = g.take(size)
                    mine = (idx, _expand_batch(aff, box, K, X, ent))
                for idx, res in sent:
                    step(idx, res.get())
                if mine is not None:
                    step(*mine)
    finally:
        _WORK = None


def _bar(progress):
    import sys

    if progress is False or (progress is None and not sys.stderr.isatty()):
        return None
    from tqdm.auto import tqdm

    return tqdm(desc="regions", unit=" regions", leave=False)


# -- one batch of regions --------------------------------------------------------------------------------------
DELTA = 1e-6  # a dual bound (in the region's scale) at or above which a row is redundant without HiGHS
EPS_MU = 1e-11  # multipliers this close to zero count as zero in the batched simplex
EPS_RATE = 1e-13  # rows changing this slowly along an edge do not block it


def _lp_batch(N, d, j, skip, max_iter=None):
    """Is row ``j`` of ``{y : N y + d >= 0}`` a facet? For L polyhedra at once, by a primal simplex from the
    interior point y = 0 (every row positive there), vectorised over the L instances.

    Each instance minimises ``N_j . y`` over the other rows (those not in ``skip``): the basis starts as an
    orthonormal frame whose first row is N_j (free directions, which leave the basis first), so the first step
    is the ray from 0 towards row j's hyperplane; each pivot moves along an edge to the first row it meets.
    The search stops as soon as row j reaches ``-d_j`` (or the edge is unbounded): then the point found lies in
    the other rows with row j negative (the segment from 0 to it crosses the facet halfway). At an optimal
    point with nonnegative multipliers ``mu`` of the rows in the basis (recomputed by a fresh solve; free
    directions still in it must have none), ``N_j . y + d_j >= d_j - mu . d_basis`` on the polyhedron, and a
    bound >= :data:`DELTA` proves row j redundant.

    Args:
      N: (L, M, n) float64 unit rows (zero rows are fine), d: (L, M) their values at y = 0 (positive),
      j: (L,) int the row asked about, skip: (L, M) bool rows that are no constraints.
    Returns:
      status (L,) int8: 1 a point below row j was found, 0 row j is redundant, -1 undecided (iteration limit,
      degenerate or close: left to HiGHS); y (L, n) the point (status 1); hj (L,) row j's value there.
    """
    L, M, n = N.shape
    if max_iter is None:
        max_iter = 4 * (M + n) + 10
    ar = np.arange(L)
    g = N[ar, j].copy()
    dj = d[ar, j].copy()
    u = g.copy()
    u[:, 0] += np.where(g[:, 0] >= 0, 1.0, -1.0)  # Householder reflection: its first row is -+ g
    B = np.eye(n)[None] - 2.0 * u[:, :, None] * u[:, None, :] / np.einsum("li,li->l", u, u)[:, None, None]
    Binv = B.copy()  # symmetric and orthogonal
    slot = np.full((L, n), -1, np.int64)  # the row in each basis position (-1: a free direction)
    y = np.zeros((L, n))
    h = d.copy()
    hj = dj.copy()
    block = ~skip
    block[ar, j] = False
    inb = np.zeros((L, M), bool)
    status = np.full(L, -1, np.int8)
    out_y = np.zeros((L, n))
    out_h = np.zeros(L)
    idx = ar
    for it in range(max_iter):
        if not idx.size:
            break
        m = idx.size
        a = np.arange(m)
        mu = np.einsum("lik,li->lk", Binv, g)  # N_j = B^T mu
        free = slot < 0
        ps = np.where(free, np.abs(mu), -1.0)
        kp = np.argmax(ps, 1)
        has_p = ps[a, kp] > EPS_MU
        rs = np.where(free, np.inf, mu)
        kr = np.argmin(rs, 1)
        has_r = rs[a, kr] < -EPS_MU
        k = np.where(has_p, kp, kr)
        sigma = np.where(has_p, -np.sign(mu[a, kp]), 1.0)
        opt = ~has_p & ~has_r
        col = Binv[a, :, k]
        e = sigma[:, None] * col  # the edge direction: row j decreases along it
        rate = np.einsum("lmn,ln->lm", N, e)
        cand = block & ~inb & (rate < -EPS_RATE)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(cand, h / np.where(cand, -rate, 1.0), np.inf)
            ib = np.argmin(step, 1)
            t = step[a, ib]
            grate = np.einsum("ln,ln->l", g, e)
            tt = np.where(grate < 0, (hj + dj) / -grate, np.inf)
        reach = ~opt & (tt <= t)
        fin = opt | reach
        if fin.any():
            f = np.nonzero(fin)[0]
            o = idx[f]
            r = reach[f]
            yy = y[f] + np.where(r, tt[f], 0.0)[:, None] * e[f]
            out_y[o] = yy
            out_h[o] = np.where(r, -dj[f], hj[f])
            st = np.where(r, 1, -1).astype(np.int8)
            v = hj[f]
            st[opt[f] & (v < -DELTA)] = 1
            q = np.nonzero(opt[f] & (v >= DELTA))[0]
            if q.size:  # the multipliers again, by a fresh solve; free directions left must have none
                fq = f[q]
                mu2 = np.linalg.solve(np.swapaxes(B[fq], 1, 2), g[fq][:, :, None])[:, :, 0]
                fr = free[fq]
                db = np.where(fr, 0.0, np.take_along_axis(d[fq], np.maximum(slot[fq], 0), 1))
                bound = dj[fq] - np.einsum("lk,lk->l", np.where(fr, 0.0, mu2), db)
                good = np.all(np.where(fr, np.abs(mu2) <= EPS_MU, mu2 >= -EPS_MU), 1) & (bound >= DELTA)
                st[q[good]] = 0
            status[o] = st
        kk = np.nonzero(~fin)[0]
        if not kk.size:
            break
        if kk.size < m:
            idx, N, d, g, dj = idx[kk], N[kk], d[kk], g[kk], dj[kk]
            B, Binv, slot, y, h, hj, block, inb = B[kk], Binv[kk], slot[kk], y[kk], h[kk], hj[kk], block[kk], inb[kk]
            k, e, t, ib, col, rate, grate = k[kk], e[kk], t[kk], ib[kk], col[kk], rate[kk], grate[kk]
        a = np.arange(idx.size)
        y = y + t[:, None] * e
        h = h + t[:, None] * rate
        hj = hj + t * grate
        Ni = N[a, ib]
        piv = np.einsum("ln,ln->l", Ni, col)
        w = np.einsum("ln,lnk->lk", Ni, Binv)
        w[a, k] -= 1.0
        Binv = Binv - col[:, :, None] * w[:, None, :] / piv[:, None, None]  # row k of B replaced by N_ib
        B[a, k] = Ni
        old = slot[a, k]
        real = old >= 0
        inb[a[real], old[real]] = False
        inb[a, ib] = True
        slot[a, k] = ib
        h[a, ib] = 0.0
        if (it + 1) % n == 0:  # refresh the inverse and the row values
            Binv = np.linalg.inv(B)
            h = d + np.einsum("lmn,ln->lm", N, y)
            hj = dj + np.einsum("ln,ln->l", g, y)
    return status, out_y, out_h


def _certify_batch(P, b, i, A, c, MA, MC, nrm, valid, g):
    """:func:`_certify` for many (point, region, row) at once: points P (T, n), regions b (T,) and rows i (T,)
    of the batch's padded rows A (B, M, n), c, MA, MC, nrm (B, M) and ``valid`` (B, M). Returns (ok (T,),
    the points projected onto their rows' hyperplanes (T, n))."""
    T = len(b)
    ok = np.zeros(T, bool)
    out = np.zeros((T, A.shape[2]))
    for s in range(0, T, 2048):
        bb, ii, p = b[s:s + 2048], i[s:s + 2048], P[s:s + 2048]
        a = np.arange(len(bb))
        Ab = A[bb]
        ai = Ab[a, ii]
        ni = nrm[bb, ii]
        p = p - ((np.einsum("tn,tn->t", ai, p) + c[bb, ii]) / ni ** 2)[:, None] * ai
        h = np.einsum("tmn,tn->tm", Ab, p) + c[bb]
        err = g * (np.einsum("tmn,tn->tm", MA[bb], np.abs(p)) + MC[bb])
        shift = (np.abs(h[a, ii]) + err[a, ii]) / ni
        others = valid[bb].copy()
        others[a, ii] = False
        ok[s:s + 2048] = np.all((h - err - nrm[bb] * shift[:, None] > 0) | ~others, axis=1)
        out[s:s + 2048] = p
    return ok, out


def _expand_batch(aff, box, K, X, ent):
    """Expand B regions: patterns K (B, width) int16, points X (B, n), and the facets shared by regions expanded
    before, ``ent`` = (region in the batch, stage, unit (E,), a point on the facet (E, n)).

    Returns (points (B, n), neighbours, stats): the neighbours found as arrays (region in the batch (F,),
    pattern (F, width), a point inside it (F, n), the facet's stage and unit (F,), a point on it (F, n)). A
    region with a duplicate hyperplane, a unit at a breakpoint on the whole region, max units or no proven
    interior point is expanded on its own (:func:`_expand_one`); the others together: rows, shared facets,
    rays and LPs as arrays."""
    stats = {"lps": 0, "rays": 0, "undecided": 0, "shared": 0, "highs": 0}
    Bn, n = K.shape[0], aff.n
    X = np.array(X, np.float64).reshape(Bn, n)
    eb, es, eu, ep = ent
    found = []

    def entries(b):
        return [((s_, u_), p) for s_, u_, p in zip(es[eb == b].tolist(), eu[eb == b].tolist(), ep[eb == b])]

    def packed():
        if not found:
            return (np.zeros(0, np.int64), np.zeros((0, K.shape[1]), K.dtype), np.zeros((0, n)), np.zeros(0, np.int64),
                    np.zeros(0, np.int64), np.zeros((0, n)))
        fb, kn, q, su, p = zip(*found)
        su = np.array(su, np.int64).reshape(-1, 2)
        return np.array(fb, np.int64), np.array(kn), np.array(q), su[:, 0], su[:, 1], np.array(p)

    if aff.has_max:
        for b in range(Bn):
            X[b] = _expand_one(aff, box, K[b], X[b], entries(b), stats, found, b)
        return X, packed(), stats
    states = aff.split(K)
    A, c, MA, MC, act, tgt = aff.rows_batch(states, aff.maps_batch(states))
    P = A.shape[1]
    nz = np.any(A != 0.0, axis=2)
    live, const = act & nz, act & ~nz
    tol = aff.g * MC
    if np.any(const & (c < -tol)):
        raise PiecewiseError("internal: a region whose constant row is negative (please report)")
    tie = np.any(const & (c <= tol), axis=1)  # a unit at a breakpoint on the whole region
    BA, Bc, BM, BMc = box
    Sb = BA.shape[0]
    A = np.concatenate([np.where(live[..., None], A, 0.0), np.broadcast_to(BA, (Bn, Sb, n))], 1)
    c = np.concatenate([np.where(live, c, 1.0), np.broadcast_to(Bc, (Bn, Sb))], 1)
    MA = np.concatenate([np.where(live[..., None], MA, 0.0), np.broadcast_to(BM, (Bn, Sb, n))], 1)
    MC = np.concatenate([np.where(live, MC, 0.0), np.broadcast_to(BMc, (Bn, Sb))], 1)
    valid = np.concatenate([live, np.ones((Bn, Sb), bool)], 1)
    nrm = np.linalg.norm(A, axis=2)
    nrm[~valid] = 1.0
    N = A / nrm[..., None]
    uv = valid[:, :P]
    gcol = aff.col_global
    facet = np.zeros((Bn, P), bool)  # rows proven to be facets, with a point on each
    known = np.zeros((Bn, P), bool)  # ... whose region across is known (it shared the facet)
    fpt = np.zeros((Bn, P, n))

    def settle(bs, cols, pts, ok, kind):
        """Record proven facets (the first point per region and row)."""
        bs, cols, pts = bs[ok], cols[ok], pts[ok]
        new = ~facet[bs, cols]
        bs, cols, pts = bs[new], cols[new], pts[new]
        _, first = np.unique(bs * P + cols, return_index=True)
        bs, cols, pts = bs[first], cols[first], pts[first]
        facet[bs, cols] = True
        fpt[bs, cols] = pts
        if kind == "shared":
            known[bs, cols] = True
        stats[kind] += int(len(bs))

    def margins(Y):
        """Rows (B, M) at the points Y (B, n), their rounding bounds, and each point's smallest margin (B,)
        (row minus bound, over |a|: negative where the point is not proven inside)."""
        h = np.einsum("bmn,bn->bm", A, Y) + c
        err = aff.g * (np.einsum("bmn,bn->bm", MA, np.abs(Y)) + MC)
        return h, err, np.min(np.where(valid, (h - err) / nrm, np.inf), axis=1)

    def centre(Y, w0):
        """Y, or the centroid of Y (weight w0 (B,)) and the regions' facet points where that is deeper: facet
        points on two or more facets average to a point strictly inside (the region is convex)."""
        k = facet.sum(1)
        C = (w0[:, None] * Y + np.einsum("bp,bpn->bn", facet, fpt)) / np.maximum(w0 + k, 1)[:, None]
        use = (k + w0 >= 2) & (margins(C)[2] > margins(Y)[2])
        return np.where(use[:, None], C, Y)

    # 1. facets shared by the regions across them (expanded before): certified again in this region's rows
    if eb.size:
        hit = (gcol[None, :] == (aff.offsets[es] + eu)[:, None]) & uv[eb] & ~tie[eb, None]  # (E, P)
        te, tc = np.nonzero(hit)
        ok, pp = _certify_batch(ep[te], eb[te], tc, A, c, MA, MC, nrm, valid, aff.g)
        settle(eb[te], tc, pp, ok, "shared")
    # the point it was reached by (just across a facet) or the shared facets' centroid, whichever is deeper
    X = centre(X, (margins(X)[2] > 0).astype(float))
    h, err, mx = margins(X)
    dist, e_ = h / nrm, err / nrm
    # duplicates: unit rows with one hyperplane and side (or close to it: undecided) need the one-by-one path
    Nu = N[:, :P]
    par = np.einsum("bin,bjn->bij", Nu, Nu) >= 1.0 - 1e-12
    par[:, np.arange(P), np.arange(P)] = False
    dd = np.abs(dist[:, :P, None] - dist[:, None, :P])
    ee = e_[:, :P, None] + e_[:, None, :P]
    dup = np.any(par & (dd <= ee), axis=(1, 2))
    slow = dup | tie | ~(mx > 0)
    near = par & (dd > ee) & (dd <= 1e3 * ee)
    stats["undecided"] += int(np.triu(near[~slow], 1).sum())
    for b in np.nonzero(slow)[0]:
        stats["shared"] -= int(facet[b].sum())
        X[b] = _expand_one(aff, box, K[b], X[b], entries(b), stats, found, b)
    facet[slow] = False
    fast = np.nonzero(~slow)[0]
    if not fast.size or not P:
        return X, packed(), stats
    S = np.maximum(_median(dist[:, :P], uv), 1e-300)  # each region's scale near its point
    # 2. rays from x towards each unit row's hyperplane: the first one hit, clear of the others, is a facet
    Nf = N[fast]
    V = -np.einsum("bin,bjn->bij", Nf, Nf[:, :P])  # (F, M, P): rate of row i along the ray towards row j
    with np.errstate(divide="ignore", invalid="ignore"):
        T = np.where((V < 0) & valid[fast][:, :, None], dist[fast][:, :, None] / np.where(V < 0, -V, 1.0), np.inf)
    i1 = np.argmin(T, 1)  # (F, P)
    t1 = np.take_along_axis(T, i1[:, None, :], 1)[:, 0]
    t2 = np.partition(T, 1, axis=1)[:, 1] if T.shape[1] > 1 else np.full_like(t1, np.inf)
    good = uv[fast] & np.isfinite(t1) & (i1 < P) & (t2 > t1 * (1 + 1e-6))
    fb, fj = np.nonzero(good)
    if fb.size:
        bs, cols = fast[fb], i1[fb, fj]
        keep = ~facet[bs, cols]
        fb, fj, bs, cols = fb[keep], fj[keep], bs[keep], cols[keep]
        pts = X[bs] - t1[fb, fj][:, None] * N[bs, fj]
        ok, pp = _certify_batch(pts, bs, cols, A, c, MA, MC, nrm, valid, aff.g)
        settle(bs, cols, pp, ok, "rays")
    # 3. every other unit row: the batched simplex, HiGHS where it cannot decide
    lb, lj = np.nonzero((uv & ~facet)[fast])
    lb = fast[lb]
    if lb.size:
        stats["lps"] += int(lb.size)
        dl = dist[lb] / S[lb, None]
        dl[~valid[lb]] = 1.0
        status, y, hj = _lp_batch(N[lb], dl, lj, ~valid[lb])
        isf = np.nonzero(status == 1)[0]
        z = y[isf] * (dl[isf, lj[isf]] / (dl[isf, lj[isf]] - hj[isf]))[:, None]  # halfway along the segment
        pts = X[lb[isf]] + S[lb[isf], None] * z
        ok, pp = _certify_batch(pts, lb[isf], lj[isf], A, c, MA, MC, nrm, valid, aff.g)
        facet[lb[isf][ok], lj[isf][ok]] = True
        fpt[lb[isf][ok], lj[isf][ok]] = pp[ok]
        cache = {}
        for q in np.sort(np.r_[np.nonzero(status == -1)[0], isf[~ok]]):
            b, j = int(lb[q]), int(lj[q])
            if b not in cache:
                cache[b] = (np.nonzero(valid[b])[0], [None])
            rows, lp = cache[b]
            ri = int(np.searchsorted(rows, j))
            p = _lp_facet(ri, [ri], A[b, rows], c[b, rows], MA[b, rows], MC[b, rows], nrm[b, rows], N[b, rows],
                          dist[b, rows], float(S[b]), X[b], aff.g, stats, lp)
            if p is not None:
                facet[b, j] = True
                fpt[b, j] = p - (A[b, j] @ p + c[b, j]) / nrm[b, j] ** 2 * A[b, j]
    X[fast] = centre(X, np.ones(Bn))[fast]  # the point kept: the centroid of the point and its facets', if deeper
    # 4. across each new facet: the pattern with the row's unit in its other state (every other row is positive
    # at the facet's point, so every other unit keeps its state), and a point just across
    fb, fc = np.nonzero(facet & ~known)
    p = fpt[fb, fc]
    hp = np.einsum("tmn,tn->tm", A[fb], p) + c[fb]
    others = valid[fb].copy()
    others[np.arange(fb.size), fc] = False
    m = np.min(np.where(others, hp / nrm[fb], np.inf), axis=1) if fb.size else np.zeros(0)
    m = np.where(np.isfinite(m), m, S[fb])
    q = p - 0.5 * m[:, None] * N[fb, fc]
    Kn = K[fb].copy()
    Kn[np.arange(fb.size), gcol[fc]] = tgt[fb, fc]
    if found:  # the regions expanded on their own first
        f0 = packed()
        return X, tuple(np.concatenate([a, b]) for a, b in
                        zip(f0, (fb, Kn, q, aff.col_stage[fc], aff.col_unit[fc], p))), stats
    return X, (fb, Kn, q, aff.col_stage[fc], aff.col_unit[fc], p), stats


def _median(V, mask):
    """Median of each row of V (B, M) over its entries where mask (B, M) holds (1.0 where none does)."""
    cnt = mask.sum(1)
    Vs = np.sort(np.where(mask, V, np.inf), axis=1)
    lo = np.maximum((cnt - 1) // 2, 0)
    hi = np.maximum(cnt // 2, 0)
    a = np.arange(V.shape[0])
    med = 0.5 * (Vs[a, np.minimum(lo, V.shape[1] - 1)] + Vs[a, np.minimum(hi, V.shape[1] - 1)]) if V.shape[1] else np.ones(len(a))
    return np.where(cnt > 0, med, 1.0)


def _lp_facet(ri, group, A, c, MA, MC, nrm, N, dist, S, x, g, stats, lp):
    """Row ri's facet by HiGHS (the largest ball centred on its hyperplane inside the other rows, again in the
    facet's own scale while its optimum point cannot be certified): a point of the facet, or None (no facet,
    or undecided: then counted). ``lp``: a one-element list caching the region's model."""
    if lp[0] is None:
        lp[0] = _LP(N, dist / S)
    stats["lps"] += 1
    stats["highs"] += 1
    t, y = lp[0].solve(ri, others_off=group[1:])
    if y is None or t <= T_NONE:
        return None
    p = x + S * y
    ok = _certify(p, ri, group, A, c, MA, MC, nrm, g)
    none = False
    for _ in range(3):  # a small facet: the LP again, centred on its point, in the facet's own scale
        if ok:
            break
        p = p - (A[ri] @ p + c[ri]) / nrm[ri] ** 2 * A[ri]
        S1 = max(t * S, 1e-300)
        t1, y1 = _LP(N, (A @ p + c) / nrm / S1).solve(ri, others_off=group[1:])
        stats["lps"] += 1
        stats["highs"] += 1
        if y1 is None or t1 <= T_NONE:  # in its own scale the row only touches the region
            none = True
            break
        p, t, S = p + S1 * y1, t1, S1
        ok = _certify(p, ri, group, A, c, MA, MC, nrm, g)
    if ok:
        return p
    if not none:
        stats["undecided"] += 1
    return None


def _expand_one(aff, box, krow, x, entries, stats, found, b):
    """Expand one region on its own (any net, degenerate rows included): its point (n,) is returned (the centre
    of its largest ball where x is not a proven interior point), its neighbours appended to ``found`` as
    (b, pattern, point inside it, (stage, unit), point on the facet)."""
    BA, Bc, BM, BMc = box
    states = [s[0] for s in aff.split(krow[None])]
    stage_maps, _ = aff.maps(states)
    A, c, MA, MC, meta = aff.rows(states, stage_maps)
    # rows that are constant on the region (zero gradient) never split it
    nz = np.any(A != 0.0, axis=1)
    const_bad = ~nz & (c < 0)
    if np.any(const_bad & (c < -aff.g * MC)):
        raise PiecewiseError("internal: a region whose constant row is negative (please report)")
    A, c, MA, MC, meta = A[nz], c[nz], MA[nz], MC[nz], meta[nz]
    nu = A.shape[0]
    A = np.concatenate([A, BA])
    c = np.concatenate([c, Bc])
    MA = np.concatenate([MA, BM])
    MC = np.concatenate([MC, BMc])
    if A.shape[0] == 0:
        return x
    nrm = np.linalg.norm(A, axis=1)

    def margins(p):
        h = A @ p + c
        err = aff.g * (MA @ np.abs(p) + MC)
        return h, err

    h, err = margins(x)
    if not np.all(h > err):
        # not a proven interior point (reached by a step that was too short): the centre of the largest ball
        S = max(float(np.abs(x).max()), 1.0)
        lp = _LP(A / nrm[:, None], (h / nrm) / S)
        stats["lps"] += 1
        stats["highs"] += 1
        t, y = lp.chebyshev()
        ok = y is not None and t > T_NONE
        if ok:
            x2 = x + S * y
            h2, err2 = margins(x2)
            ok = np.all(h2 > err2)
        if not ok:
            stats["undecided"] += 1
            return x
        x, h, err = x2, h2, err2
    dist = h / nrm  # distances to the rows' hyperplanes
    S = max(float(np.median(dist[:nu])) if nu else 1.0, 1e-300)  # the region's scale near x
    N = A / nrm[:, None]
    # rows on one hyperplane and side: one facet
    groups = _duplicate_groups(N[:nu], dist[:nu], (err / nrm)[:nu], stats)
    rep = {g[0]: g for g in groups}
    member = np.arange(nu)
    for g in groups:
        member[g] = g[0]
    facets = {}  # representative row -> a point on the facet
    for (es, eu), ep in entries:  # facets shared by the regions across them, with the points that proved them
        hit = np.nonzero((meta[:nu, 0] == es) & (meta[:nu, 1] == eu))[0]
        for i in hit:
            ri = int(member[i])
            if ri not in facets and _certify(ep, ri, rep[ri], A, c, MA, MC, nrm, aff.g):
                facets[ri] = None  # the region across is known: it shared this facet
                stats["shared"] += 1
                break
    # 2. rays from x towards each unit row's hyperplane: the first hit, if clear of the other rows, is a facet
    V = -(N @ N[:nu].T)  # (M, nu): rate of change of row i's distance along the ray towards row j
    with np.errstate(divide="ignore", invalid="ignore"):
        T = np.where(V < 0, dist[:, None] / -V, np.inf)
    for j in range(nu):
        col = T[:, j].copy()
        i = int(np.argmin(col))
        if not np.isfinite(col[i]) or i >= nu:
            continue
        ri = member[i]
        if ri in facets:
            continue
        ti = col[i]
        col[rep[ri]] = np.inf
        if np.min(col) <= ti * (1 + 1e-6):
            continue
        p = x - ti * N[j]
        if _certify(p, ri, rep[ri], A, c, MA, MC, nrm, aff.g):
            facets[ri] = p
            stats["rays"] += 1
    # 3. one LP per remaining row (group)
    lp = [None]
    for ri, g in rep.items():
        if ri in facets:
            continue
        p = _lp_facet(ri, g, A, c, MA, MC, nrm, N, dist, S, x, aff.g, stats, lp)
        if p is not None:
            facets[ri] = p
    # 4. across each facet: the pattern a forward pass gives just beyond it
    key = krow.tobytes()
    for ri, p in facets.items():
        if p is None:
            continue
        g = rep[ri]
        hp = A @ p + c
        others = np.ones(A.shape[0], bool)
        others[g] = False
        m = np.min(hp[others] / nrm[others]) if others.any() else 1.0
        p = p - (A[ri] @ p + c[ri]) / nrm[ri] ** 2 * A[ri]
        for f in (0.5, 0.25, 0.75, 0.1, 0.9, 0.01):  # a point across, proven inside its region by its own rows
            q = p - f * m * N[ri]
            st = aff.states(q)
            kn = _concat(st)
            if kn.tobytes() != key and _inside(aff, st, q, BA, Bc, BM, BMc):
                found.append((b, kn, q, (int(meta[ri, 0]), int(meta[ri, 1])), p))
                break
        else:
            stats["undecided"] += 1
    return x


def _inside(aff, states, q, BA, Bc, BM, BMc) -> bool:
    """Whether every non-constant row of the region ``states`` (and every side of the box) is positive at q
    beyond its rounding bound, and no constant row is negative: q proves the pattern is a region."""
    sm, _ = aff.maps(states)
    A, c, MA, MC, _ = aff.rows(states, sm)
    A, c, MA, MC = np.concatenate([A, BA]), np.concatenate([c, Bc]), np.concatenate([MA, BM]), np.concatenate([MC, BMc])
    h = A @ q + c
    err = aff.g * (MA @ np.abs(q) + MC)
    live = np.any(A != 0.0, axis=1)
    return bool(np.all(h[live] > err[live]) and np.all(c[~live] >= 0))


def _certify(p, ri, group, A, c, MA, MC, nrm, g) -> bool:
    """Whether p proves that row ri's hyperplane bounds the region in a facet: p projected onto the hyperplane
    (in float64), and then moved onto it exactly, keeps every other row (those of ri's group excepted)
    positive beyond its rounding bound."""
    p = p - (A[ri] @ p + c[ri]) / nrm[ri] ** 2 * A[ri]
    h = A @ p + c
    err = g * (MA @ np.abs(p) + MC)
    shift = (abs(h[ri]) + err[ri]) / nrm[ri]  # distance from p to the exact hyperplane, at most
    others = np.ones(A.shape[0], bool)
    others[group] = False
    return bool(np.all(h[others] - err[others] - nrm[others] * shift > 0))


def _duplicate_groups(N, d, e, stats):
    """Groups of unit rows with one hyperplane and side: normalised coefficients N (M, n), distances d (M,) of
    the interior point from the hyperplanes and their rounding bounds e (M,). Rows are one hyperplane when
    their normals agree to 1e-12 and their distances within the bounds; rows that are close to that but not
    within it count as undecided. A list of index lists, each group's first index its representative."""
    M = N.shape[0]
    groups, used = [], np.zeros(M, bool)
    if M == 0:
        return groups
    G = N @ N.T
    for a in range(M):
        if used[a]:
            continue
        par = (G[a] >= 1.0 - 1e-12) & ~used
        close = np.abs(d - d[a]) <= e + e[a]
        same = np.nonzero(par & close)[0]
        near = np.nonzero(par & ~close & (np.abs(d - d[a]) <= 1e3 * (e + e[a])))[0]
        if near.size:
            stats["undecided"] += int(near.size)
        used[same] = True
        groups.append([int(i) for i in same])
    return groups


# -- low dimension: the vertex engine on a box shown to meet every region -----------------------------------
VERTEX_DIM = 4  # the whole space of up to this many inputs is counted by the vertex engine on a box (at 5-6 the
# search is 3-14x faster: boxes grown for deep nets mean several enumerations and LPs for unclear sides)


@dataclass(eq=False)
class BoxedSpace:
    """The regions of an unbounded box counted by the vertex engine on a finite box ``box`` that meets every one
    of them (:func:`count_space`). ``cells``: the exact :class:`~piecewise.regions.cells.CellComplex` on that
    box (its cells are the regions, cut by the box); ``checked``: regions touching the box's artificial sides,
    whose facets in the whole domain were all shown (by LPs) to lead to regions the box meets."""

    net: object
    domain: SpaceBox
    box: object
    cells: object
    checked: int
    lps: int
    undecided: int
    seconds: float
    extra_edges: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    by_edges: int = 0  # boundary regions cleared by the edge test (no LP)
    algorithm: str = "vertex engine on a box shown to meet every region (the facets of its boundary regions by LPs)"

    @property
    def regions(self) -> int:
        return self.cells.regions

    def __len__(self):
        return self.regions

    @property
    def exact(self) -> bool:
        return self.undecided == 0

    @property
    def points(self):
        return self.cells.points

    @property
    def patterns(self):
        return self.cells.patterns

    def linear_regions(self) -> tuple[int, np.ndarray]:
        """Linear regions of the whole domain: the box complex's facet pairs with one map, and the facets of
        the boundary regions outside the box."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        cx = self.cells
        pairs = cx.adjacency
        pairs = pairs[cx.same_map(pairs)]
        extra = self.extra_edges
        if len(extra):
            aff = _Affine(self.net)
            states = aff.states(cx.points)
            keep = _same_maps(self.net, aff, [[s[i] for s in states] for i in range(cx.regions)], extra)
            pairs = np.concatenate([pairs, extra[keep]])
        C = cx.regions
        n, labels = connected_components(coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(C, C)),
                                          directed=False)
        return int(n), labels

    def to_json(self, linear: bool = False) -> dict:
        out = {"regions": self.regions, "method": "exact", "algorithm": self.algorithm,
               "seconds": round(self.seconds, 4), "domain": self.domain.describe(), "exact": self.exact,
               "undecided": self.undecided, "box": self.box.describe(), "boundary_regions_checked": self.checked,
               "boundary_regions_by_edges": self.by_edges,
               "lps": self.lps, "measure_total": float("inf") if not self.domain.bounded else self.domain.measure()}
        if linear:
            out["linear_regions"] = self.linear_regions()[0]
        return out

    def save_cells(self, path) -> str:
        """The box complex's cells (:func:`~piecewise.regions.cells.save_cells`); ``measure`` is that of each
        region (inf where a region is unbounded: it touches an infinite side of the box)."""
        import os

        from ..files import atomic_open

        cx = self.cells
        meas = np.asarray(cx.measure, np.float64).copy()
        meas[self._unbounded] = np.inf
        arrays = {"points": cx.points, "patterns": np.asarray(cx.patterns), "measure": meas}
        path = os.fspath(path)
        if not path.endswith(".npz"):
            raise PiecewiseError(f"--cells: the file must end in .npz, got {path!r}")
        with atomic_open(path, "wb") as f:
            np.savez(f, **arrays)
        return path

    _unbounded: np.ndarray = field(default=None, repr=False)


TIGHT, CLEAR = 1e-10, 1e-9  # row distances (relative to |w|) of rows through a vertex w, and of rows clear of it


def _edges_batch(aff, states, V, nv, box, art, chunk: int = 8192):
    """Regions meeting the box's artificial sides whose vertices all lie inside the box, shown by their edges.

    A region passes when every vertex of its cell on those sides is where one edge of the region (n - 1 rows
    through it, clearly) leaves the box and runs to infinity inside the region (no other row decreases along
    it), and the cell has a vertex inside the box: then every vertex of the region lies inside the box, so each
    of its facets meets the box's interior (a facet of a pointed polyhedron holds a vertex) and leads to a
    region the box meets. Where such an edge ends at a vertex beyond the box, the box must grow; where the
    test cannot tell (degenerate or unclear vertices, or no vertex inside the box), the LPs decide.

    Args:
      aff: the network's :class:`_Affine`; states: per stage (R, width_s), the regions' states.
      V: (R, K, n) their cells' vertices in the box's centred coordinates, nv (R,) their counts.
      box: the finite box (for input coordinates); art: (n,) bool, its artificial sides.
    Returns:
      verdict (R,) int8 (1 passes, 2 grow, 0 unclear) and grow points (R, n) (input coordinates, twice as far
      as the vertex beyond the box, where verdict is 2); a region's verdict is the one its first vertex that
      is unclear or grows gives, in vertex order."""
    R, Kmax, n = V.shape
    verdict = np.ones(R, np.int8)
    growpt = np.zeros((R, n))
    if R == 0:
        return verdict, growpt
    valid = np.arange(Kmax)[None, :] < nv[:, None]
    on = (np.abs(V) >= 0.5 * (1 - 1e-12)) & valid[..., None]
    at = np.any(on & art, -1)  # (R, K): vertices on an artificial side
    at_all = np.all(at | ~valid, 1)
    at_any = np.any(at, 1)
    verdict[at_all] = 0
    A, c, _, _, act, _ = aff.rows_batch(states, aff.maps_batch(states))
    live = act & np.any(A != 0.0, axis=2)
    nrm = np.linalg.norm(A, axis=2)
    nrm[~live] = 1.0
    N = A / nrm[..., None]
    rb, kb = np.nonzero(at & (~at_all & at_any)[:, None])  # (region, vertex) pairs to test, in vertex order
    first = np.full(R, np.iinfo(np.int64).max)  # the first deciding vertex of each region
    out = np.zeros(len(rb), np.int8)  # per pair: 0 fine, 1 unclear, 2 grows
    gp = np.zeros((len(rb), n))
    for s in range(0, len(rb), chunk):
        r, k = rb[s:s + chunk], kb[s:s + chunk]
        vc = V[r, k]
        w = box.points_c(vc)
        o = on[r, k]
        scale = np.maximum(np.abs(w).max(1), 1e-300)
        lv = live[r]
        dist = (np.einsum("tmn,tn->tm", A[r], w) + c[r]) / nrm[r] / scale[:, None]
        tight = lv & (np.abs(dist) <= TIGHT)
        unclear = np.any(lv & (np.abs(dist) > TIGHT) & (np.abs(dist) < CLEAR), 1)
        osum = o.sum(1)
        res = np.where(unclear | (tight.sum(1) + osum != n), 1, 0).astype(np.int8)
        q = np.nonzero((res == 0) & (osum == 1))[0]  # one side, n - 1 rows: an edge of the region leaves the box
        if q.size:
            kq = np.argmax(o[q] & art, 1)
            if n > 1:
                idx = np.argsort(~tight[q], axis=1, kind="stable")[:, :n - 1]
                Nt = np.take_along_axis(N[r[q]], idx[:, :, None], 1)
                _, sv, vt = np.linalg.svd(Nt)
                e = vt[:, -1]
                bad = sv[:, -1] < 1e-8
            else:
                e = np.ones((q.size, 1))
                bad = np.zeros(q.size, bool)
            ek = e[np.arange(q.size), kq]
            bad |= np.abs(ek) < 1e-8
            e = e * (np.sign(ek) * np.sign(vc[q, kq]))[:, None]
            rate = np.einsum("tmn,tn->tm", N[r[q]], e)
            other = lv[q] & ~tight[q]
            bad |= np.any(other & (np.abs(rate) < 1e-12), 1)
            hit = other & (rate < 0)
            grows = ~bad & hit.any(1)
            with np.errstate(divide="ignore", invalid="ignore"):
                tmin = np.min(np.where(hit, dist[q] * scale[q, None] / np.where(hit, -rate, 1.0), np.inf), 1)
            res[q[bad]] = 1
            res[q[grows]] = 2
            gp[s + q[grows]] = w[q[grows]] + 2.0 * tmin[grows, None] * e[grows]
        out[s:s + chunk] = res
    dec = np.nonzero(out)[0]
    if dec.size:
        np.minimum.at(first, rb[dec], dec)
        hitr = np.nonzero(first < len(rb))[0]
        verdict[hitr] = np.where(out[first[hitr]] == 2, 2, 0)
        growpt[hitr] = gp[first[hitr]]
    return verdict, growpt


def _same_maps(staged, aff, states, pairs) -> np.ndarray:
    """bool (P,): whether the regions of each pair (P, 2) (states: per region a list of per-stage states) have
    one affine output map: float64 proves a difference beyond its bounds, exact rationals decide the rest."""
    cache, exact = {}, None
    out = np.zeros(len(pairs), bool)
    for p, (a, b) in enumerate(np.asarray(pairs).tolist()):
        for i in (a, b):
            if i not in cache:
                cache[i] = aff.maps(states[i])[1]
        Ja, ca, Ma, Mca = cache[a]
        Jb, cb, Mb, Mcb = cache[b]
        tol = aff.g * (np.abs(Ma).sum() + np.abs(Mb).sum() + np.abs(Mca).sum() + np.abs(Mcb).sum())
        diff = max(np.abs(Ja - Jb).max() if Ja.size else 0.0, np.abs(ca - cb).max() if ca.size else 0.0)
        if diff > tol:
            continue
        exact = exact or _ExactMaps(staged)
        out[p] = exact.map_of(states[a]) == exact.map_of(states[b])
    return out


def _boxed(net, params, domain: SpaceBox, progress, t0):
    """Count with the vertex engine on growing finite boxes until every region touching the box's artificial
    sides has all its facets (in the whole domain) leading to regions the box meets (module docstring of
    :func:`count_space`)."""
    from ..staged import as_staged
    from .domain import box
    from .vertex import enumerate_finite as enumerate_cells

    staged = as_staged(net, params)
    aff = _Affine(staged)
    st0 = staged.stages[0] if staged.stages else None
    R = 1.0
    if st0 is not None and 0 in st0.weights:  # the first stage's hyperplanes' distances from 0
        W = st0.weights[0]
        nrm = np.linalg.norm(W, axis=0)
        ok = nrm > 0
        if ok.any():
            R = max(R, 4.0 * float(np.max(np.abs(st0.bias[ok]) / nrm[ok])))
    fin = np.isfinite(domain.lo) & np.isfinite(domain.hi)
    scale = float(np.max(np.abs(np.r_[domain.lo[np.isfinite(domain.lo)], domain.hi[np.isfinite(domain.hi)], 1.0])))
    R = max(R, 4.0 * scale)
    lps = undecided = fast = 0
    for attempt in range(12):
        lo = np.where(np.isfinite(domain.lo), domain.lo, -R)
        hi = np.where(np.isfinite(domain.hi), domain.hi, R)
        B = box(lo, hi)
        cx = enumerate_cells(net, params, B, progress=progress)
        pts = cx.points
        states = aff.states(pts)
        per_region = [[s[i] for s in states] for i in range(cx.regions)]
        keys = {_concat(st).tobytes(): i for i, st in enumerate(per_region)}
        # cells with a vertex on an artificial side
        V, nv = cx.vertices_c, cx.n_vertices
        valid = np.arange(V.shape[1])[None, :] < nv[:, None]
        art = ~fin
        on_side = np.abs(V[..., art]) >= 0.5 * (1 - 1e-9)
        boundary = np.nonzero(np.any(np.any(on_side, -1) & valid, -1))[0]
        BA, Bc = domain.rows()  # the boundary regions' facets are sought in the whole domain
        boxrows = (BA, Bc, np.abs(BA), np.abs(Bc))
        missing = []
        edges = {}
        stats = {"lps": 0, "rays": 0, "undecided": 0, "shared": 0, "highs": 0}
        verdict, growpt = _edges_batch(aff, [s_[boundary] for s_ in states], V[boundary], nv[boundary], B, art)
        fast += int(np.sum(verdict == 1))
        grows = np.nonzero(verdict == 2)[0]
        grow = growpt[grows[0]] if grows.size else None  # an edge ends at a vertex beyond the box: grow it
        unclear = boundary[verdict == 0].tolist()
        if grow is None:
            for s0 in range(0, len(unclear), BATCH):  # the unclear ones: all their facets, by LPs
                rs = unclear[s0:s0 + BATCH]
                Kb = np.array([_concat(per_region[r]) for r in rs])
                none = (np.zeros(0, np.int64),) * 3 + (np.zeros((0, aff.n)),)
                _, (fb, Kn, Q, _, _, _), st = _expand_batch(aff, boxrows, Kb, pts[rs], none)
                for k, v in st.items():
                    stats[k] += v
                for t, b in enumerate(fb.tolist()):
                    j = keys.get(Kn[t].tobytes(), -1)
                    if j < 0:
                        missing.append(Q[t])
                    else:
                        edges[(min(rs[b], j), max(rs[b], j))] = None
                if missing:
                    break
        if grow is not None:
            missing.append(grow)
        lps += stats["lps"]
        if not missing:
            undecided += stats["undecided"]
            extra = np.array(sorted(edges), np.int64).reshape(-1, 2)
            unb = np.zeros(cx.regions, bool)
            unb[boundary] = True
            return BoxedSpace(staged, domain, B, cx, int(boundary.size), lps, undecided, time.perf_counter() - t0,
                              extra_edges=extra, by_edges=fast, _unbounded=unb)
        R = max(16.0 * R, 4.0 * float(np.max(np.abs(missing[0]))))
        fast = 0
    raise PiecewiseError("the vertex engine's box could not be grown to meet every region (vertices beyond "
                         f"|x| = {R:.3g}): use the region-graph search (count_space(..., algorithm='search'))")


def count_space(net, params, domain: SpaceBox | None = None, *, algorithm: str = "auto",
                progress: bool | None = None, workers: int = 1):
    """Every activation region of a box whose sides may be infinite (default the whole input space R^n), in
    any input dimension. ``algorithm``: ``"vertex"`` -- the vertex engine on a finite box grown until every
    region that touches its artificial sides has all its facets in the whole domain (one LP each, as in
    :func:`search`) leading to regions the box meets; then the box meets every region (the region graph is
    connected) -- ``"search"`` (:func:`search`), or ``"auto"``: the vertex engine up to
    :data:`VERTEX_DIM` inputs, the search beyond (where the vertex engine's boxes, grown far for deep nets, cost
    more than the search). ``workers``: the search's processes (:func:`search`). Returns a :class:`BoxedSpace`
    or a :class:`RegionGraph` (both with ``regions``, ``algorithm``, ``exact``, ``to_json``, ``linear_regions``,
    ``save_cells``)."""
    from ..staged import as_staged

    t0 = time.perf_counter()
    if algorithm not in ("auto", "vertex", "search"):
        raise PiecewiseError(f"algorithm must be auto, vertex or search, got {algorithm!r}")
    _require_pl(net, params)
    n = net.n_in
    if domain is None:
        domain = space(n_in=n)
    if domain.n_in != n:
        raise PiecewiseError(f"the box lives in R^{domain.n_in} but the network has {n} inputs")
    if algorithm == "auto":
        algorithm = "vertex" if n <= VERTEX_DIM else "search"
    if algorithm == "vertex":
        if n > 6:
            raise PiecewiseError(f"the vertex engine takes boxes of up to 6 inputs, the network has {n}: use the search")
        if params is None and not hasattr(net, "stages"):
            net = as_staged(net)
        return _boxed(net, params, domain, progress, t0)
    return search(net, params, domain, progress=progress, workers=workers)
