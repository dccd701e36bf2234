"""Exact arithmetic for the signs that float64 cannot decide.

Every number the engine starts from is a float64: the network's weights and biases, the activations' slopes
and breakpoints, the domain's centre and axes. Each is an exact *dyadic* rational ``m * 2^k`` (m an integer),
and sums and products of dyadic rationals stay dyadic. So within one activation region every pre-activation
of the network is, exactly, an affine function of the engine's centred coordinates ``c`` (``x = center + c @
axes``, ``c`` in [-1/2, 1/2]^d) whose coefficients are integers times one power of two. This module computes
those coefficients exactly (Python integers; :class:`Dyadic`), the hyperplanes of the facet labels, and decides
signs at the vertices of cells without rounding:

* a vertex is the intersection of d independent hyperplanes ``H`` (its defining facets: the two edges of a
  polygon vertex, d of the facets of a polytope vertex, the one facet of an interval's end point); the value
  of an affine function ``q`` there has the sign of ``det [H; q] * det H_g`` (Cramer's rule, integer
  determinants by Bareiss' fraction-free elimination);
* a new vertex on an edge whose end points float64 could not classify is the exact intersection of its
  defining hyperplanes, rounded once to float64 (:meth:`ExactNet.vertex`);
* two cells carry the same affine map iff their exact output gradients are equal (:meth:`ExactNet.output`).

The engine calls this only for the few values whose float64 error bound does not exclude zero
(:mod:`piecewise.numerics`), so the cost (a forward pass in Python integers per activation pattern, cached by
pattern prefix) is paid where the arrangement is degenerate or finer than float64, not everywhere.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..errors import PiecewiseError


class Dyadic:
    """An array of exact dyadic rationals: ``N * 2**k`` with ``N`` an object array of Python ints."""

    __slots__ = ("N", "k")

    def __init__(self, N, k: int):
        self.N, self.k = N, int(k)

    @classmethod
    def of(cls, a) -> "Dyadic":
        """The exact value of a float64 array (every float64 is m * 2^e with |m| < 2^53)."""
        a = np.asarray(a, np.float64)
        if not np.all(np.isfinite(a)):
            raise PiecewiseError("exact arithmetic needs finite numbers")
        mant, ex = np.frexp(a)
        m = (mant * 2.0**53).astype(np.int64)  # exact: |mant| < 1
        e = ex.astype(np.int64) - 53
        nz = m != 0
        if not nz.any():
            return cls(np.zeros(a.shape, object), 0)
        k = int(e[nz].min())
        N = np.empty(a.shape, object)
        flat_m, flat_s = m.ravel(), (e - k).ravel()
        N.ravel()[:] = [int(mi) << int(si) if mi else 0 for mi, si in zip(flat_m.tolist(), flat_s.tolist())]
        return cls(N, k)

    def shifted(self, k: int) -> np.ndarray:
        """N expressed with exponent k <= self.k (an object array)."""
        s = self.k - k
        if s < 0:
            raise ValueError("can only lower the exponent")
        return self.N if s == 0 else self.N * (1 << s)

    def __add__(self, other: "Dyadic") -> "Dyadic":
        k = min(self.k, other.k)
        return Dyadic(self.shifted(k) + other.shifted(k), k)

    def __sub__(self, other: "Dyadic") -> "Dyadic":
        k = min(self.k, other.k)
        return Dyadic(self.shifted(k) - other.shifted(k), k)

    def __matmul__(self, other: "Dyadic") -> "Dyadic":
        return Dyadic(self.N @ other.N, self.k + other.k)

    def __mul__(self, other: "Dyadic") -> "Dyadic":
        return Dyadic(self.N * other.N, self.k + other.k)

    def __getitem__(self, idx) -> "Dyadic":
        return Dyadic(self.N[idx], self.k)

    def to_float(self) -> np.ndarray:
        """Correctly rounded float64 values."""
        return np.array([float(Fraction(int(v)) * Fraction(2) ** self.k) for v in self.N.ravel()]).reshape(self.N.shape)


def _zeros(shape) -> Dyadic:
    return Dyadic(np.zeros(shape, object), 0)


def _stack_rows(rows) -> Dyadic:
    k = min(r.k for r in rows)
    return Dyadic(np.stack([r.shifted(k) for r in rows]), k)


# -- integer linear algebra -------------------------------------------------------------------------------
def det(M) -> int:
    """Determinant of a square matrix of Python ints (Bareiss: fraction-free, every division exact)."""
    A = [list(map(int, row)) for row in M]
    n = len(A)
    if n == 0:
        return 1
    sign, prev = 1, 1
    for i in range(n - 1):
        if A[i][i] == 0:
            p = next((r for r in range(i + 1, n) if A[r][i] != 0), None)
            if p is None:
                return 0
            A[i], A[p] = A[p], A[i]
            sign = -sign
        piv = A[i][i]
        for r in range(i + 1, n):
            ar = A[r]
            f = ar[i]
            ai = A[i]
            for c in range(i + 1, n):
                ar[c] = (ar[c] * piv - f * ai[c]) // prev
            ar[i] = 0
        prev = piv
    return sign * A[n - 1][n - 1]


def independent(rows, d: int) -> list[int]:
    """Indices of a maximal set of linearly independent gradients (the first d entries of each row), taken
    greedily in order; exact (fraction-free elimination on Python ints)."""
    basis = []  # reduced rows with their pivot column
    chosen = []
    for t, row in enumerate(rows):
        v = [int(x) for x in row[:d]]
        for piv, b in basis:
            if v[piv]:
                f, g = v[piv], b[piv]
                v = [vi * g - f * bi for vi, bi in zip(v, b)]
        nz = next((c for c in range(d) if v[c]), None)
        if nz is not None:
            basis.append((nz, v))
            chosen.append(t)
            if len(chosen) == d:
                break
    return chosen


def _sgn(x: int) -> int:
    return (x > 0) - (x < 0)


def sign_at(q, H) -> int:
    """Sign (-1, 0, 1) of the affine function ``q`` (d + 1 ints: gradient, offset) at the point where the d
    independent hyperplanes ``H`` (d rows of d + 1 ints) meet."""
    d = len(q) - 1
    Dg = det([row[:d] for row in H])
    if Dg == 0:
        raise RuntimeError("internal error: the defining hyperplanes of a vertex are not independent")
    return _sgn(det(list(H) + [q])) * _sgn(Dg)


def intersection(H) -> list[Fraction]:
    """The point where d independent hyperplanes meet (rows of d + 1 ints), exactly."""
    d = len(H)
    A = [[Fraction(int(x)) for x in row[:d]] + [Fraction(-int(row[d]))] for row in H]
    for i in range(d):
        p = next((r for r in range(i, d) if A[r][i] != 0), None)
        if p is None:
            raise RuntimeError("internal error: the defining hyperplanes of a vertex are not independent")
        A[i], A[p] = A[p], A[i]
        piv = A[i][i]
        A[i] = [x / piv for x in A[i]]
        for r in range(d):
            if r != i and A[r][i] != 0:
                f = A[r][i]
                A[r] = [x - f * y for x, y in zip(A[r], A[i])]
    return [A[i][d] for i in range(d)]


def domain_frame(domain) -> tuple[Dyadic, Dyadic]:
    """The domain's exact centre (n_in,) and axes (d, n_in), ``x = center + c @ axes`` for c in [-1/2, 1/2]^d,
    from the float64 numbers that define it (a box's corners, a plane's points; otherwise its origin and
    axes taken as exact)."""
    ex = domain.exact
    if ex is not None and domain.kind == "box":
        L, H = Dyadic.of(ex[0]), Dyadic.of(ex[1])
        c = L + H
        c.k -= 1
        w = H - L
        n = len(w.N)
        A = np.zeros((n, n), object)
        A[np.arange(n), np.arange(n)] = w.N
        return c, Dyadic(A, w.k)
    if ex is not None:
        P0 = Dyadic.of(ex[0])
        A = _stack_rows([Dyadic.of(p) - P0 for p in ex[1:]])
    else:
        P0, A = Dyadic.of(domain.origin), Dyadic.of(domain.axes)
    half = Dyadic(A.N.sum(0), A.k - 1)
    return P0 + half, A


def frame_errors(domain) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the errors of the domain's float64 axes (|.|_1 over the d rows, per input) and centre (per
    input) against its exact frame (:func:`domain_frame`): (n_in,), (n_in,)."""
    c, A = domain_frame(domain)
    dc = Dyadic.of(domain.center) - c
    dA = Dyadic.of(domain.axes) - A
    up = 1.0 + 2.0**-40
    ec = np.abs(dc.to_float()) * up
    eA = np.abs(dA.to_float()).sum(0) * up
    return eA, ec


# -- the network in exact arithmetic ----------------------------------------------------------------------
class ExactNet:
    """Exact affine maps of a :class:`~piecewise.staged.StagedNet`'s pre-activations in the centred coordinates
    of a domain (``x = center + c @ axes``), for given activation patterns.

    ``states`` arguments are lists of per-stage int arrays (at least as many stages as the question needs).
    Maps are (d + 1, width) :class:`Dyadic` arrays: rows 0..d-1 the gradient in c, row d the offset. Results
    are cached by pattern prefix (stage outputs under the same earlier states are computed once)."""

    def __init__(self, staged, domain=None, cache_size: int = 200_000, frame=None):
        from .pieces import piece_tables

        self.staged = staged
        center, axes = domain_frame(domain) if frame is None else frame
        self.d = int(axes.N.shape[0])
        d = self.d
        self._input = _stack_rows([axes[i] for i in range(d)] + [center])  # (d+1, n_in)
        self._W, self._b, self._tables, self._bps = [], [], [], []
        for st in staged.stages:
            self._W.append({j: Dyadic.of(A) for j, A in st.weights.items()})
            self._b.append(Dyadic.of(st.bias))
            if st.groups is None:
                S, K = piece_tables(st.activation, st.m, st.slopes)
                self._tables.append((Dyadic.of(S), Dyadic.of(K)))
                self._bps.append(Dyadic.of(np.asarray(st.activation.breakpoints, np.float64)))
            else:
                self._tables.append(None)
                self._bps.append(None)
        self._Wout = {j: Dyadic.of(A) for j, A in staged.out_weights.items()}
        self._bout = Dyadic.of(staged.out_bias)
        self._cache: dict = {}
        self._cache_size = cache_size
        self.threshold = 0.5  # one-output nets' decision level (piecewise.decision.THRESHOLD)

    # stage outputs ---------------------------------------------------------------------------------------
    def _key(self, states, s: int):
        return (s, b"".join(np.ascontiguousarray(states[t], np.int8).tobytes() for t in range(s)))

    def _affine(self, weights: dict, bias: Dyadic, states, upto: int) -> Dyadic:
        z = None
        for j, A in weights.items():
            t = self._h(j, states) @ A
            z = t if z is None else z + t
        off = _zeros(z.N.shape)
        off.N[self.d] = bias.N
        off.k = bias.k
        return z + off

    def _h(self, j: int, states) -> Dyadic:
        """Exact map (d + 1, width_j) of source j's output (0: the input) under ``states``."""
        if j == 0:
            return self._input
        key = self._key(states, j)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        st = self.staged.stages[j - 1]
        z = self._affine(self._W[j - 1], self._b[j - 1], states, j - 1)
        s = np.asarray(states[j - 1], np.int64)
        if st.groups is not None:
            h = z[:, st.groups[np.arange(st.width), s]]
        else:
            S, K = self._tables[j - 1]
            cols = np.arange(st.m)
            sl, k = S[s, cols], K[s, cols]
            h = z * Dyadic(sl.N[None, :], sl.k)
            off = _zeros(h.N.shape)
            off.N[self.d] = k.N
            off.k = k.k
            h = h + off
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[key] = h
        return h

    def preact(self, s: int, states) -> Dyadic:
        """Exact map (d + 1, m_s) of stage s's pre-activations (1-based) under the states of stages < s
        (cached by pattern prefix)."""
        key = ("z",) + self._key(states, s - 1)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._affine(self._W[s - 1], self._b[s - 1], states, s - 1)
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def output(self, states) -> Dyadic:
        """Exact map (d + 1, n_out) of the network's output under the states of all stages."""
        return self._affine(self._Wout, self._bout, states, len(self.staged.stages))

    # hyperplanes ----------------------------------------------------------------------------------------
    def unit_plane(self, s: int, unit: int, sub: int, states) -> tuple:
        """Integer coefficients (d + 1,) of the split event's hyperplane: elementwise stages, ``z_unit = bp_sub``
        (oriented as ``z - bp``); max stages, ``z_a = z_b`` for the sub-th pair (a < b) of the unit's pieces
        (oriented as ``z_a - z_b``). Scaled by a positive power of two (signs and zero sets unchanged)."""
        if s > len(self.staged.stages):  # the output stage (decision boundaries): pairs of scores
            y = self.output(states)
            if y.N.shape[1] == 1:  # one output: scores (threshold, y), piecewise.decision.logits
                t = Dyadic.of(np.array([self.threshold]))
                col = _zeros((self.d + 1, 1))
                col.N[self.d, 0], col.k = t.N[0], t.k
                k = min(y.k, col.k)
                y = Dyadic(np.concatenate([col.shifted(k), y.shifted(k)], 1), k)
            a, b = pair_of(y.N.shape[1], sub)
            return tuple(int(x) for x in (y[:, a] - y[:, b]).N)
        z = self.preact(s, states)
        st = self.staged.stages[s - 1]
        if st.groups is None:
            col = z[:, unit]
            bp = self._bps[s - 1][sub]
            off = _zeros(col.N.shape)
            off.N[self.d] = bp.N
            off.k = bp.k
            v = col - off
        else:
            a, b = pair_of(st.groups.shape[1], sub)
            v = z[:, st.groups[unit, a]] - z[:, st.groups[unit, b]]
        return tuple(int(x) for x in v.N)

    def box_plane(self, label: int) -> tuple:
        """Box facets (labels -1 - i: c_i = -1/2; -1 - d - i: c_i = 1/2) as integers: 2 c_i + 1, 2 c_i - 1."""
        d = self.d
        i = -1 - label
        g = [0] * d
        g[i % d] = 2
        return tuple(g + [1 if i < d else -1])


def pair_of(k: int, t: int) -> tuple[int, int]:
    """The t-th pair (a, b), a < b, of k pieces in the order (0,1), (0,2), ..., (1,2), ... ."""
    for a in range(k):
        n = k - 1 - a
        if t < n:
            return a, a + 1 + t
        t -= n
    raise ValueError("pair index out of range")


def to_float_point(P) -> tuple[np.ndarray, float]:
    """A rational point (list of Fractions) rounded to float64 (correctly, coordinate by coordinate), with a
    bound on the rounding (max-norm): half an ulp of the largest coordinate, doubled for safety."""
    x = np.array([float(p) for p in P])
    m = float(np.abs(x).max()) if len(x) else 0.0
    return x, (math.ulp(m) if m else 0.0)
