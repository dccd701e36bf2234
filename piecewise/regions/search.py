"""Every activation region of a box in any dimension, bounded or not (the whole input space ``R^n``): a search
over the region graph, one linear program per candidate facet (HiGHS through highspy, or scipy).

A region is its activation pattern. Under a pattern every pre-activation is affine in the input x, so the
region is the polyhedron where each unit keeps its state: for an elementwise unit with breakpoints
``b_1 < ... < b_m`` in state ``k``, ``b_k <= z <= b_{k+1}``; for a max unit whose piece ``r`` wins,
``z_r >= z_b`` for every other piece ``b`` (rows ``a.x + c >= 0``). Two regions are neighbours when they share
a facet (a face of dimension n - 1); the graph is connected, so a breadth-first search from one region reaches
every region of the domain. Per region:

1. **an interior point** ``x`` with every row positive beyond its rounding bound (the point it was reached by;
   else the centre of the largest ball inside the region, one LP);
2. **cheap certificates**: a ray from ``x`` towards each row's hyperplane; the first hyperplane it hits at a
   point where every other row is positive beyond its bound is a facet (the point proves it) -- in high
   dimension most facets are found this way, without an LP;
3. **one LP per remaining unit row**: the largest ball centred on the row's hyperplane inside the other rows
   (``max t : a_j.y + c_j = 0, a_i.y + c_i >= t |a_i|``); a facet if its optimum point passes the same
   float64 margin test, not one if the optimum is <= 1e-9 of the region's scale or infeasible (the row only
   touches the region or misses it); anything between is counted in ``undecided`` (and ``exact`` is False);
4. **the neighbour** across each facet: the pattern at a point just across it (a forward pass), which is
   checked as that region's interior point when it is processed.

Degenerate rules, as in the vertex engine: a row that is identically zero on a region (a unit that is zero
on the whole cell) never splits it (its state is the one the forward pass gives at zero: ties decided once);
rows with one hyperplane and side (duplicate units, units that repeat an earlier boundary) are one facet,
crossed together; a hyperplane that only touches a region is no facet. Rounding bounds are those of
:mod:`piecewise.numerics` (the magnitudes summed through the network), and the LPs work in the region's own
scale (rows normalised, coordinates centred at the interior point and divided by its scale), so rescaling
the inputs, a layer or the output changes no decision.
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
      bounded_sides: whether the domain is bounded (then every region is bounded).
      seconds, lps (LPs solved), rays (facets proven by a ray, without an LP), undecided (LP decisions that
      float64 could not settle: each is one facet taken as absent; the count is exact when 0).
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
    algorithm: str = "region-graph search (one HiGHS LP per candidate facet)"
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
               "facets_by_ray": self.rays,
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


def _key(states) -> bytes:
    return b"".join(np.asarray(s, np.int16).tobytes() for s in states)


def search(net, params=None, domain: SpaceBox | None = None, *, x0=None, progress: bool | None = None,
           max_regions: int = 10_000_000) -> RegionGraph:
    """Every activation region of ``net`` in ``domain`` (default: the whole input space), by a search over the
    region graph (module docstring).

    Args:
      net, params: an MLP and its params, a graph (``params=None``; composed into stages), or a StagedNet.
      domain: a :class:`SpaceBox` (:func:`space`; any side may be infinite) or a finite
        :func:`~piecewise.regions.box`.
      x0: the starting point (n_in,) (default: the box's centre, or 0 / a finite side in each coordinate).
      progress: a progress bar with regions found and the frontier (None: on a terminal, for longer runs).
      max_regions: refuse (PiecewiseError) past this many regions.
    Returns:
      :class:`RegionGraph`.
    """
    from ..staged import as_staged
    from ..patterns import pack_states

    t0 = time.perf_counter()
    _require_pl(net, params)
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
    BM, BMc = np.abs(BA), np.abs(Bc)

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

    seen: dict = {}
    pts, sts = [], []
    edges: dict = {}
    queue = deque()
    stats = {"lps": 0, "rays": 0, "undecided": 0}

    entry = []  # per region: ((stage, unit), point) of the facet it was entered by (None for the first)

    def add(states, x, entry_unit=None):
        k = _key(states)
        if k in seen:
            return seen[k]
        if len(pts) >= max_regions:
            raise PiecewiseError(f"more than max_regions={max_regions:,} regions: raise max_regions")
        seen[k] = len(pts)
        entry.append(entry_unit)
        pts.append(x)
        sts.append(states)
        queue.append(len(pts) - 1)
        return seen[k]

    add(aff.states(x0), x0)
    bar = _bar(progress)
    try:
        while queue:
            r = queue.popleft()
            _expand(r, aff, pts, sts, entry, add, edges, stats, BA, Bc, BM, BMc)
            if bar is not None:
                bar.update(1)
                if bar.n % 64 == 0:
                    bar.set_postfix_str(f"frontier {len(queue)}")
    finally:
        if bar is not None:
            bar.close()
    states = [np.array([s[i] for s in sts], np.int32).reshape(len(sts), -1) for i in range(len(staged.stages))]
    patterns = np.asarray(pack_states(staged, states, xp=np)) if sts else np.zeros((0, 1), np.uint32)
    E = np.array(sorted(edges), np.int64).reshape(-1, 2)
    U = np.array([edges[tuple(e)] for e in E.tolist()], np.int64).reshape(-1, 2)
    return RegionGraph(staged, domain, np.array(pts).reshape(-1, n), states, patterns, E, U,
                       time.perf_counter() - t0, stats["lps"], stats["rays"], stats["undecided"])


def _bar(progress):
    import sys

    if progress is False or (progress is None and not sys.stderr.isatty()):
        return None
    from tqdm.auto import tqdm

    return tqdm(desc="regions", unit=" regions", leave=False)


def _expand(r, aff, pts, sts, entry, add, edges, stats, BA, Bc, BM, BMc):
    """Find the facets of region r, add its neighbours, record its edges."""
    states = sts[r]
    x = pts[r]
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
        return
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
        t, y = lp.chebyshev()
        ok = y is not None and t > T_NONE
        if ok:
            x2 = x + S * y
            h2, err2 = margins(x2)
            ok = np.all(h2 > err2)
        if not ok:
            stats["undecided"] += 1
            return
        x, h, err = x2, h2, err2
        pts[r] = x
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
    if entry[r] is not None:  # the facet the region was entered by, with the point that proved it
        (es, eu), ep = entry[r]
        hit = np.nonzero((meta[:nu, 0] == es) & (meta[:nu, 1] == eu))[0]
        for i in hit:
            ri = int(member[i])
            if _certify(ep, ri, rep[ri], A, c, MA, MC, nrm, aff.g):
                facets[ri] = ep
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
    lp = None
    for ri, g in rep.items():
        if ri in facets:
            continue
        if lp is None:
            lp = _LP(N, dist / S)
        stats["lps"] += 1
        t, y = lp.solve(ri, others_off=g[1:])
        if y is None or t <= T_NONE:
            continue
        p = x + S * y
        ok = _certify(p, ri, g, A, c, MA, MC, nrm, aff.g)
        none = False
        for _ in range(3):  # a small facet: the LP again, centred on its point, in the facet's own scale
            if ok:
                break
            p = p - (A[ri] @ p + c[ri]) / nrm[ri] ** 2 * A[ri]
            S1 = max(t * S, 1e-300)
            t1, y1 = _LP(N, (A @ p + c) / nrm / S1).solve(ri, others_off=g[1:])
            stats["lps"] += 1
            if y1 is None or t1 <= T_NONE:  # in its own scale the row only touches the region
                none = True
                break
            p, t, S = p + S1 * y1, t1, S1
            ok = _certify(p, ri, g, A, c, MA, MC, nrm, aff.g)
        S = max(float(np.median(dist[:nu])) if nu else 1.0, 1e-300)
        if ok:
            facets[ri] = p
        elif not none:
            stats["undecided"] += 1
    # 4. across each facet: the pattern a forward pass gives just beyond it
    for ri, p in facets.items():
        g = rep[ri]
        hp = A @ p + c
        others = np.ones(A.shape[0], bool)
        others[g] = False
        m = np.min(hp[others] / nrm[others]) if others.any() else 1.0
        p = p - (A[ri] @ p + c[ri]) / nrm[ri] ** 2 * A[ri]
        found = None
        for f in (0.5, 0.25, 0.75, 0.1, 0.9, 0.01):  # a point across, proven inside its region by its own rows
            q = p - f * m * N[ri]
            st = aff.states(q)
            if _key(st) != _key(states) and _inside(aff, st, q, BA, Bc, BM, BMc):
                found = (st, q)
                break
        if found is None:
            stats["undecided"] += 1
            continue
        j = add(*found, entry_unit=((int(meta[ri, 0]), int(meta[ri, 1])), p))
        if j != r:
            e = (min(r, j), max(r, j))
            if e not in edges:
                edges[e] = (int(meta[ri, 0]), int(meta[ri, 1]))


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
VERTEX_DIM = 4  # the whole space of up to this many inputs is counted by the vertex engine on a box


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


def _edges_stay(aff, states, W, Vc, art):
    """For a region meeting the box's artificial sides: True when every vertex of its cell on those sides
    (W (k, n) input coordinates, Vc (k, n) centred) is where one edge of the region (n - 1 rows through it,
    clearly) leaves the box and runs to infinity inside the region (no other row decreases along it), and the
    cell has a vertex inside the box: then every vertex of the region lies inside the box, so each of its
    facets meets the box's interior (a facet of a pointed polyhedron holds a vertex) and leads to a region the
    box meets. A point (n,) beyond the box where such an edge ends at a vertex (grow the box); None when the
    test cannot tell (degenerate or unclear vertices: then the LPs decide)."""
    n = W.shape[1]
    on = np.abs(Vc) >= 0.5 * (1 - 1e-12)
    side = on & art[None, :]
    at = side.any(1)
    if at.all() or not at.any():
        return None if at.all() else True
    sm, _ = aff.maps(states)
    A, c, _, _, _ = aff.rows(states, sm)
    live = np.any(A != 0.0, axis=1)
    A, c = A[live], c[live]
    nrm = np.linalg.norm(A, axis=1)
    N = A / nrm[:, None]
    for w, vc, sd, o in zip(W[at], Vc[at], side[at], on[at]):
        scale = max(float(np.abs(w).max()), 1e-300)
        dist = (A @ w + c) / nrm / scale
        tight = np.abs(dist) <= TIGHT
        if np.any((np.abs(dist) > TIGHT) & (np.abs(dist) < CLEAR)) or tight.sum() + o.sum() != n:
            return None  # unclear, or more hyperplanes through the vertex than its dimension allows
        if o.sum() > 1:  # a face of the region of dimension > 1 meeting a lower face of the box: no edge
            continue
        k = int(np.nonzero(sd)[0][0])
        if n > 1:
            _, sv, vt = np.linalg.svd(N[tight])
            if sv[-1] < 1e-8:
                return None
            e = vt[-1]
        else:
            e = np.ones(1)
        out = np.sign(vc[k])
        if abs(e[k]) < 1e-8:
            return None
        e = e * np.sign(e[k]) * out
        rate = N[~tight] @ e
        if np.any(np.abs(rate) < 1e-12):
            return None
        hit = rate < 0
        if hit.any():
            t = np.min(dist[~tight][hit] * scale / -rate[hit])
            return w + 2.0 * t * e
    return True


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
    from .exact import enumerate_cells

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
        keys = {_key(st): i for i, st in enumerate(per_region)}
        # cells with a vertex on an artificial side
        V, nv = cx.vertices_c, cx.n_vertices
        valid = np.arange(V.shape[1])[None, :] < nv[:, None]
        art = ~fin
        on_side = np.abs(V[..., art]) >= 0.5 * (1 - 1e-9)
        boundary = np.nonzero(np.any(np.any(on_side, -1) & valid, -1))[0]
        BA, Bc = domain.rows()  # the boundary regions' facets are sought in the whole domain
        pts_l = [pts[i] for i in range(cx.regions)]
        sts_l = list(per_region)
        entry = [None] * cx.regions
        missing = []
        edges = {}
        stats = {"lps": 0, "rays": 0, "undecided": 0}

        def add(st, x, entry_unit=None):
            k = _key(st)
            if k in keys:
                return keys[k]
            missing.append(x)
            return -1

        grow = None
        for r in boundary:
            verdict = _edges_stay(aff, per_region[int(r)], B.points_c(V[r, :nv[r]]), V[r, :nv[r]], art)
            if verdict is True:
                fast += 1
                continue
            if verdict is not None:  # an edge of the region ends at a vertex beyond the box: grow it
                grow = verdict
                break
            _expand(int(r), aff, pts_l, sts_l, entry, add, edges, stats, BA, Bc, np.abs(BA), np.abs(Bc))
            if missing:
                break
        if grow is not None:
            missing.append(grow)
        lps += stats["lps"]
        if not missing:
            undecided += stats["undecided"]
            extra = np.array([e for e in edges if -1 not in e], np.int64).reshape(-1, 2)
            unb = np.zeros(cx.regions, bool)
            unb[boundary] = True
            return BoxedSpace(staged, domain, B, cx, int(boundary.size), lps, undecided, time.perf_counter() - t0,
                              extra_edges=extra, by_edges=fast, _unbounded=unb)
        R = max(16.0 * R, 4.0 * float(np.max(np.abs(missing[0]))))
        fast = 0
    raise PiecewiseError("the vertex engine's box could not be grown to meet every region (vertices beyond "
                         f"|x| = {R:.3g}): use the region-graph search (count_space(..., algorithm='search'))")


def count_space(net, params, domain: SpaceBox | None = None, *, algorithm: str = "auto",
                progress: bool | None = None):
    """Every activation region of a box whose sides may be infinite (default the whole input space R^n), in
    any input dimension. ``algorithm``: ``"vertex"`` -- the vertex engine on a finite box grown until every
    region that touches its artificial sides has all its facets in the whole domain (one LP each, as in
    :func:`search`) leading to regions the box meets; then the box meets every region (the region graph is
    connected) -- ``"search"`` (:func:`search`), or ``"auto"``: the vertex engine up to
    :data:`VERTEX_DIM` inputs, the search beyond. Returns a :class:`BoxedSpace` or a :class:`RegionGraph`
    (both with ``regions``, ``algorithm``, ``exact``, ``to_json``, ``linear_regions``, ``save_cells``)."""
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
    return search(net, params, domain, progress=progress)
