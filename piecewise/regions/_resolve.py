"""Where float64 cannot decide: the engine's exact decisions (on top of :mod:`.rational`).

The engine classifies the vertices of a cell against a hyperplane in float64 with an error bound
(:mod:`piecewise.numerics`). A vertex whose value the bound does not separate from zero is *undecided*; this
module decides it exactly. It knows

* what every facet label is: a box facet, or a split event of the engine's :class:`~._engine.Events` table,
  whose meta data (stage, unit, breakpoint or pair of max pieces) and the activation pattern of any cell that
  carries it determine its hyperplane exactly (:meth:`ExactNet.unit_plane`);
* what defines a vertex: its facet labels (the backend's ``vertex_labels``), d independent ones of which meet
  there;
* the pattern of every stage-start cell (the engine's packed words), hence the exact hyperplane of a query.

The exact network (Python integers) is built on first use, so counts that float64 decides entirely pay
nothing. A count that needs more than :data:`LIMIT` exact decisions is refused with a clear error.
"""
from __future__ import annotations

import numpy as np

from ..errors import PiecewiseError
from . import rational

LIMIT = 2_000_000  # exact decisions per enumeration before it is refused


class Resolver:
    """Exact decisions for one enumeration of ``staged`` on ``domain`` (see the module docstring).

    ``layout``: (bits per unit, stage widths) of the engine's packed pattern words."""

    def __init__(self, staged, domain, events, layout):
        self.staged, self.domain, self.events = staged, domain, events
        self.bits, self.widths = layout
        self.d = None if domain is None else domain.dim
        self._net = None
        self.count = 0
        self.stage = None
        self.words = None
        self.extra = None  # the current stage's states (rows, w) int8, for the output stage (decision boundaries)

    @property
    def net(self) -> rational.ExactNet:
        if self._net is None:
            self._net = rational.ExactNet(self.staged, self.domain)
        return self._net

    def begin(self, stage: int, words):
        """Queries of stage ``stage`` (1-based; ``len(stages) + 1``: the output) on rows with patterns ``words``
        (rows, n_words) uint32 (the states of every stage before it)."""
        self.stage, self.words = stage, words

    def states(self, row: int) -> list:
        """The per-stage states (int arrays) of a stage-start row, for the stages before the current one."""
        return unpack_row(self.words[row], self.bits, self.widths, self.stage - 1)

    def _tick(self, k: int = 1):
        self.count += k
        if self.count > LIMIT:
            raise PiecewiseError(
                f"more than {LIMIT:,} signs of this arrangement are too close to zero for float64 and were decided "
                "exactly, which is too slow to go on: the domain is far larger than the network's features (try a "
                "smaller box) or the network is degenerate at a scale float64 cannot resolve")

    def label_plane(self, label: int, states) -> tuple:
        """Integer hyperplane (d + 1,) of a facet label for a cell with these earlier states."""
        if label < 0:
            return self.net.box_plane(label)
        s, unit, sub = self.events.meta_of(label)
        return self.net.unit_plane(s, unit, sub, states)

    def query_plane(self, unit: int, sub: int, sign: int, states) -> tuple:
        """The current stage's hyperplane for ``unit`` and ``sub`` (breakpoint index or max pair), times sign."""
        q = self.net.unit_plane(self.stage, unit, sub, states)
        return q if sign > 0 else tuple(-x for x in q)

    def _defining(self, labels, states):
        H = [self.label_plane(lab, states) for lab in labels]
        idx = rational.independent(H, self.d)
        if len(idx) < self.d:
            raise RuntimeError(f"internal error: a vertex lies on only {len(idx)} independent facets in {self.d}-D")
        return [H[i] for i in idx]

    def resolve(self, cls, sure, valid, rows, labels, query):
        """Decide the undecided vertices in place: cls, sure (B, K) from :func:`decide`, rows (B,) the cells'
        stage-start rows, ``labels(b, k)``: the facet labels of vertex k of cell b, ``query(b, states)``: the
        exact hyperplane of cell b's query."""
        bi, ki = np.nonzero(valid & ~sure)
        if not len(bi):
            return
        self._tick(len(bi))
        memo = {}
        for b, k in zip(bi.tolist(), ki.tolist()):
            if b not in memo:
                st = self.states(int(rows[b]))
                memo[b] = (st, query(b, st))
            st, q = memo[b]
            cls[b, k] = self.sign_at_vertex(q, labels(b, k), st, int(rows[b]))

    def sign_at_vertex(self, q, labels, states, row: int) -> int:
        """Sign of the query plane q at the vertex of the facet ``labels`` of a cell of stage-start row ``row``
        (with these earlier states), exactly."""
        return rational.sign_at(q, self._defining(labels, states))

    def point(self, row: int, labels, qplane_fn):
        """The exact point where the facets ``labels`` and the query meet, rounded: (x (d,), error bound)."""
        self._tick()
        st = self.states(int(row))
        H = [self.label_plane(lab, st) for lab in labels] + [qplane_fn(st)]
        idx = rational.independent(H[::-1], self.d)  # the query first: it must be among the d
        H = [H[::-1][i] for i in idx]
        if len(H) < self.d:
            raise RuntimeError("internal error: an edge and a crossing hyperplane do not meet in one point")
        return rational.to_float_point(rational.intersection(H))


def unpack_row(words, bits: int, widths, n_stages: int) -> list:
    """The states of the first ``n_stages`` stages (int64 arrays) from one row of the engine's packed words
    (``bits`` per unit, the layout of :class:`._engine.Packer`); of many rows (R, n_words): (R, width) each."""
    w = np.asarray(words, np.uint32)
    ph = 16 // bits
    n = int(sum(widths[:n_stages]))
    u = np.arange(n)
    half, pos = np.divmod(u, ph)
    word, hw = np.divmod(half, 2)
    shift = hw * 16 + pos * bits
    s = (w[..., word] >> shift.astype(np.uint32)) & np.uint32((1 << bits) - 1)
    out, o = [], 0
    for width in widths[:n_stages]:
        out.append(s[..., o:o + width].astype(np.int64))
        o += width
    return out


def absmax_last(x):
    """max |x| over the last axis, as a loop of elementwise maxima: NumPy reduces a short last axis (d = 2 or
    3) element by element, about 10x slower."""
    x = np.asarray(x)
    if x.shape[-1] == 0:
        return np.zeros(x.shape[:-1])
    out = np.abs(x[..., 0])
    for i in range(1, x.shape[-1]):
        np.maximum(out, np.abs(x[..., i]), out=out)
    return out


def decide(V, n, D, g, e, Dg, De, d: int):
    """Float64 signs of the affine functions ``u -> u.g + e`` (one per cell: g (B, d), e (B,)) at the vertices
    V (B, K, d) (n (B,) valid, D (B, K) their error bounds), with coefficient error bounds Dg, De (B,).
    Returns (f (B, K), tol (B, K), cls int8 (B, K), sure bool (B, K)): cls is 1 / -1 where float64 is sure, 0
    where it is not (then ``sure`` is False, except for a value 0 whose error bound is 0: a proven zero).
    The expressions (and their order) are the compiled kernel's."""
    from ..numerics import vertex_tolerance, vertex_values

    K = V.shape[1]
    valid = np.arange(K)[None, :] < n[:, None]
    f = vertex_values(V, g, e)
    absg = np.abs(g[:, 0])
    for i in range(1, d):
        absg = absg + np.abs(g[:, i])
    A, B, C = vertex_tolerance(absg, np.abs(e), Dg, De, d)
    vinf = absmax_last(V)
    tol = (A[:, None] + B[:, None] * vinf) + C[:, None] * D
    cls = np.zeros(f.shape, np.int8)
    up, dn = valid & (f > tol), valid & (f < -tol)
    cls[up], cls[dn] = 1, -1
    sure = up | dn | (valid & (tol == 0.0) & (f == 0.0)) | ~valid
    return f, tol, cls, sure
