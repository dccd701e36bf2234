"""Double-double affine maps of single cells through a graph, with rigorous error bounds: the high-precision
fallback of the operator engine where float64 error bounds cannot decide a sign and the graph is too large
for exact rational arithmetic (a CIFAR ResNet-18).

Float64 forward error bounds grow with depth (each layer multiplies them by about ``|W| / W``, 7-10x per
stage in a random ResNet-18), so deep in a network float64 no longer certifies signs close to zero. Here a
cell's maps (d + 1 columns of every layer's shape) are recomputed with about 100 significant bits:

* values are unevaluated sums ``hi + lo`` of two float64 arrays, with a bound ``E`` (same shape) of their
  distance to the exact values of the network defined by the float64 weights;
* convolutions and dense layers use error-free splitting (Ozaki et al.): the map is cut into slices of
  ``beta`` bits per row and the weights into slices per column, so that every BLAS product of two slices is
  exact in float64; the exact products are summed in double-double and what is left out is bounded;
* additions use TwoSum (exact), products by a float64 constant Dekker's TwoProduct (exact); every rounding
  left in ``lo`` is bounded;
* error bounds propagate through the linear part with the absolute weights, as in float64, but from about
  2^-100 instead of 2^-53, which leaves room for the depth of real networks.

A sign is then decided from the exact rational value at the exact intersection of the double-double planes
and a bound of how far the true planes can move it (:class:`DDResolver`); where even that cannot decide, the
count is refused (never guessed). Implemented for 2-D domains (planes through image inputs).
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..errors import PiecewiseError
from .._shared import SAFETY, U
from . import opmaps

_SPLIT = 134217729.0  # 2^27 + 1 (Dekker / Veltkamp)
SAFE = SAFETY  # upward factor for bounds computed in float64 from nonnegative terms


def two_sum(a, b):
    """s, e with s = fl(a + b) and s + e = a + b exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _split(a):
    t = _SPLIT * a
    hi = t - (t - a)
    return hi, a - hi


def two_prod(a, b):
    """p, e with p = fl(a * b) and p + e = a * b exactly (Dekker; no FMA needed)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _check_range(*arrays):
    for a in arrays:
        m = np.abs(a).max() if a.size else 0.0
        if m > 2.0**900:
            raise PiecewiseError("double-double maps: values beyond 2^900 (the splitting would overflow)")


class DD:
    """A double-double array ``hi + lo`` with an error bound ``E`` of its distance to the exact value."""

    __slots__ = ("hi", "lo", "E")

    def __init__(self, hi, lo=None, E=None):
        self.hi = np.asarray(hi, np.float64)
        self.lo = np.zeros_like(self.hi) if lo is None else np.asarray(lo, np.float64)
        self.E = np.zeros_like(self.hi) if E is None else np.asarray(E, np.float64)

    def map(self, f):
        return DD(f(self.hi), f(self.lo), f(self.E))

    def __getitem__(self, idx):
        return DD(self.hi[idx], self.lo[idx], self.E[idx])

    def reshape(self, *shape):
        return self.map(lambda t: t.reshape(*shape))

    @property
    def shape(self):
        return self.hi.shape

    @property
    def nbytes(self) -> int:
        return 3 * self.hi.nbytes

    def err(self):
        """Bound of the distance of ``hi`` (the float64 values the engine computes with) to the exact values."""
        return (np.abs(self.lo) + self.E) * SAFE


def dd_add(x: DD, y: DD) -> DD:
    s, e = two_sum(x.hi, y.hi)
    lo = x.lo + y.lo
    r1 = U * np.abs(lo)
    lo2 = lo + e
    hi, lo3 = two_sum(s, lo2)
    return DD(hi, lo3, (x.E + y.E + r1 + U * np.abs(lo2)) * SAFE)


def dd_scale(x: DD, c) -> DD:
    """x times float64 constants c (broadcast), exact up to the rounding of the low part."""
    c = np.asarray(c, np.float64)
    if np.all((c == 1.0) | (c == 0.0)):
        return DD(x.hi * c, x.lo * c, x.E * np.abs(c))
    p, e = two_prod(x.hi, c)
    lo = x.lo * c
    r = U * np.abs(lo)
    lo2 = lo + e
    hi, lo3 = two_sum(p, lo2)
    return DD(hi, lo3, (x.E * np.abs(c) + r + U * np.abs(lo2)) * SAFE)


def dd_add_const(x: DD, b) -> DD:
    """x plus float64 constants b (broadcast)."""
    b = np.broadcast_to(np.asarray(b, np.float64), x.shape)
    s, e = two_sum(x.hi, b)
    lo = x.lo + e
    hi, lo2 = two_sum(s, lo)
    return DD(hi, lo2, (x.E + U * np.abs(lo)) * SAFE)


# -- products with error-free splitting ---------------------------------------------------------------------
BITS = 100  # the slices of both operands reach at least this many bits below each row's / column's largest entry


def _exponents(A, axis: int) -> np.ndarray:
    """e with |A| < 2^e along ``axis`` (keepdims; 0 where the row / column is zero)."""
    mu = np.abs(A).max(axis=axis, keepdims=True)
    return np.frexp(mu)[1].astype(np.int64)


def _fixed_slices(A, e, beta: int, n: int):
    """Slices of A with fixed exponents (e per row / column, broadcast): A = sum A_i + R exactly, where A_i is
    an integer multiple of 2^(e - (i + 1) beta) with |A_i| <= 2^(e - i beta) (1 + 2^-beta), and
    |R| <= 2^(e - n beta). (Each step rounds R to the unit of sigma = 2^(e - i beta + 53 - beta); R + sigma stays
    within [sigma / 2, 2 sigma], so the subtraction of sigma is exact and the unit divides the result.) The
    slices stop early where the remainder is zero."""
    out = []
    R = np.array(A, np.float64)
    for i in range(n):
        if not R.any():
            break
        p = e - i * beta + 53 - beta
        if np.any(p - 53 < -1000):
            raise PiecewiseError("double-double maps: entries below 2^-900 (exact slices would underflow)")
        sigma = np.ldexp(1.0, p)
        Ai = (R + sigma) - sigma
        R = R - Ai
        out.append(Ai)
    return out, R


def _plan(k: int):
    """(beta, slices) of products over k terms: every product of two slices at the same level i + j is an
    integer multiple of one unit and at most (2^beta + 1)^2 of them, so that a level's sum over k terms and at
    most ``slices`` slice pairs stays below 2^53 units (exact in float64, in any order); slices * beta >= BITS."""
    n = 5
    for _ in range(8):
        beta = (52 - int(math.ceil(math.log2(max(k * n, 2))))) // 2
        if beta < 8:
            raise PiecewiseError(f"double-double maps: a product over {k:,} terms is too long for exact slices")
        n2 = -(-BITS // beta)
        if n2 <= n:
            return beta, n
        n = n2
    raise RuntimeError("internal error: no slice plan")  # pragma: no cover


def _check_units(ex, ew, beta: int, S: int) -> None:
    if ex.size and ew.size and ex.min() + ew.min() - (2 * S + 2) * beta - 53 < -1000:
        raise PiecewiseError("double-double maps: products below 2^-1000 (exact slices would underflow)")


def dd_matmul(X: DD, W: np.ndarray, cut=None) -> DD:
    """X (n, k) double-double times the float64 matrix W (k, m): a DD (n, m) with error bound.

    X.hi is cut into slices with fixed exponents per row and W per column (:func:`_fixed_slices`; W's stop
    where they hold it exactly, two or three for float32 weights), every slice of X times all of W's at once
    (one BLAS product per slice of X), and the exact products summed level by level (i + j): each level's sum
    is exact, the levels are added in double-double. Left out: the remainders (bounded by their exponents
    times W's absolute column sums), X.lo's product (float64, bounded likewise) and the roundings of the
    additions; the bound E adds X's own bound times |W|.

    ``cut``: X.hi's slices made by the caller, ``(slices, ex)`` with ``ex`` (n, 1) such that |X.hi| < 2^ex per
    row and each slice i an integer multiple of 2^(ex - (i + 1) beta), the remainder below 2^(ex - S beta),
    for (beta, S) = ``_plan(k)`` (convolutions cut each map once, before im2col repeats its entries)."""
    n, k = X.lo.shape
    m = W.shape[1]
    if cut is None:
        _check_range(X.hi, W)
    if n == 0 or m == 0 or k == 0:
        z = np.zeros((n, m))
        return DD(z, z.copy(), z.copy())
    beta, S = _plan(k)
    W = np.asarray(W, np.float64)
    ew = _exponents(W, 0)  # (1, m)
    WA, WR = _fixed_slices(W, ew, beta, S)
    if cut is None:
        ex = _exponents(X.hi, 1)  # (n, 1)
        _check_units(ex, ew, beta, S)
        XA, _ = _fixed_slices(X.hi, ex, beta, S)
    else:
        XA, ex = cut
        _check_units(ex, ew, beta, S)
    nw = len(WA)
    levels = [None] * (len(XA) + nw)
    if nw:
        Wcat = np.concatenate(WA, 1) if nw > 1 else WA[0]
        for i, A in enumerate(XA):
            P = A @ Wcat  # exact: every entry a sum of k exact products of one level
            for j in range(nw):
                Pj = P[:, j * m:(j + 1) * m]
                lv = levels[i + j]
                levels[i + j] = Pj.copy() if lv is None else lv + Pj  # exact (at most S pairs per level)
    levels = [lv for lv in levels if lv is not None]
    hi = levels[0] if levels else np.zeros((n, m))
    lo = np.zeros((n, m))
    acc = np.zeros((n, m))
    for P in levels[1:]:
        hi, e = two_sum(hi, P)
        lo = lo + e
        acc += np.abs(lo)
    absW = np.abs(W)
    colW = absW.sum(0) * SAFE  # (m,): upward (nonnegative terms, relative error below 2^-20)
    colWR = np.abs(WR).sum(0) * SAFE
    row = np.ldexp(1.0, ex[:, 0])  # (n,): |X.hi| < 2^ex per row
    if cut is None:
        row[~X.hi.any(1)] = 0.0  # a zero row leaves nothing out
    # left out: X.hi @ WR + XR @ (W - WR), |XR| <= 2^(ex - S beta)
    left = np.outer(row, colWR + np.ldexp(1.0, -S * beta) * (colW + colWR))
    Plo = X.lo @ W
    lo = lo + Plo
    g = (k + 2) * U / (1 - (k + 2) * U)
    rowlo = np.abs(X.lo).max(1) if k else np.zeros(n)
    rounding = g * np.outer(rowlo, colW) + U * (acc + np.abs(lo))
    hi, lo = two_sum(hi, lo)
    E = (X.E @ absW + left + rounding) * SAFE
    return DD(hi, lo, E)


# -- graph nodes on double-double maps -----------------------------------------------------------------------
def _conv(x: DD, node, threads: int | None = None) -> DD:
    """A convolution of double-double maps x (N, C, H, W): in blocks of maps on the engine's threads; each
    map's high part is cut into slices once, with one exponent per map (its largest entry: every im2col row
    of the map shares it), before im2col repeats its entries kh * kw times."""
    from .parallel import default_threads, pmap as _pmap

    W, a = node.attrs["W"], node.attrs
    Ho, Wo, Wm = opmaps.conv_plan(x.shape, W, a)
    N, O = x.shape[0], W.shape[0]
    _check_range(x.hi, W)
    beta, S = _plan(int(np.prod(W.shape[1:])))
    out = [np.empty((N, O, Ho, Wo)) for _ in range(3)]

    def block(b0):
        b1 = min(b0 + opmaps.CONV_BLOCK, N)
        xb = x[b0:b1]
        ex = _exponents(xb.hi.reshape(b1 - b0, -1), 1)  # (n, 1): |map| < 2^ex
        XA, _ = _fixed_slices(xb.hi, ex.reshape(-1, 1, 1, 1), beta, S)
        rows = np.repeat(ex, Ho * Wo, 0)  # im2col's rows: (map, i, j)
        cols = [opmaps.im2col(t, W.shape, a, Ho, Wo) for t in (xb.lo, xb.E, *XA)]
        parts = []
        for q in range(len(Wm)):
            X = DD(cols[0][q], cols[0][q], cols[1][q])  # hi is not read: the slices stand for it
            parts.append(dd_matmul(X, Wm[q], cut=([c[q] for c in cols[2:]], rows)))
        for t, f in zip(out, ("hi", "lo", "E")):
            r = np.concatenate([getattr(o, f) for o in parts], 1) if len(parts) > 1 else getattr(parts[0], f)
            t[b0:b1] = r.reshape(b1 - b0, Ho, Wo, O).transpose(0, 3, 1, 2)

    _pmap(block, range(0, N, opmaps.CONV_BLOCK), default_threads() if threads is None else threads)
    return DD(*out)


def _sum_last(x: DD) -> DD:
    """Sum over the last axis, double-double."""
    n = x.hi.shape[-1]
    acc = DD(x.hi[..., 0], x.lo[..., 0], x.E[..., 0])
    for t in range(1, n):
        acc = dd_add(acc, DD(x.hi[..., t], x.lo[..., t], x.E[..., t]))
    return acc


def apply_node(node, ins: list) -> DD:
    """An affine node on double-double values (N, *input shape) -> (N, *node.shape), its constant included."""
    op, a = node.op, node.attrs
    if op == "const":
        raise PiecewiseError("internal error: constants are built by the caller")
    x = ins[0]
    N = x.hi.shape[0]
    if op == "dense":
        y = dd_matmul(x.map(lambda t: t.reshape(N, -1)), a["W"])
    elif op == "conv":
        y = _conv(x, node)
    elif op == "avgpool":
        idx = a["idx"]

        def gath(t):
            tf = np.concatenate([t.reshape(N, -1), np.zeros((N, 1))], 1)
            return tf[:, idx]
        y = dd_scale(_sum_last(x.map(gath)), 1.0 / a["div"])
        y.E = y.E + U * (np.abs(y.hi) + np.abs(y.lo)) * 2  # 1 / div rounded
    elif op == "global_avgpool":
        C = x.hi.shape[1]
        s = _sum_last(x.map(lambda t: t.reshape(N, C, -1)))
        cnt = x.hi.reshape(N, C, -1).shape[-1]
        y = dd_scale(s, 1.0 / cnt)
        y.E = y.E + U * (np.abs(y.hi) + np.abs(y.lo)) * 2
        y = y.map(lambda t: t.reshape(N, *node.shape))
    elif op == "scale_shift":
        y = dd_scale(x, a["scale"])
    elif op == "reshape":
        y = x.map(lambda t: t.reshape(N, *node.shape))
    elif op == "gather":
        y = x.map(lambda t: t.reshape(N, -1)[:, a["idx"]].reshape(N, *node.shape))
    elif op == "add":
        y = None
        for c, v in zip(a["coefs"], ins):
            t = v if c == 1.0 else dd_scale(v, c)
            y = t if y is None else dd_add(y, t)
    elif op == "concat":
        y = DD(*[np.concatenate([getattr(v, f) for v in ins], axis=a["axis"] + 1) for f in ("hi", "lo", "E")])
    else:
        raise PiecewiseError(f"internal error: {op} is not an affine node")
    y = y.map(lambda t: t.reshape(N, *node.shape))
    return y


def frame_dd(domain) -> DD:
    """The input map (d + 1, n_in): the exact frame (axes, centre) of the domain in double-double."""
    from .rational import domain_frame

    center, axes = domain_frame(domain)
    rows = [axes[i] for i in range(domain.dim)] + [center]
    hi, lo, E = [], [], []
    for r in rows:
        v = [Fraction(int(n)) * Fraction(2) ** r.k for n in r.N]  # a Dyadic is N * 2^k
        h = np.array([float(t) for t in v])
        l_ = np.array([float(t - Fraction(float(hh))) for t, hh in zip(v, h)])
        e = np.array([abs(float(t - Fraction(float(hh)) - Fraction(float(ll)))) for t, hh, ll in zip(v, h, l_)])
        hi.append(h)
        lo.append(l_)
        E.append(e * SAFE + 1e-300 * (e > 0))
    return DD(np.stack(hi), np.stack(lo), np.stack(E))


class DDNet:
    """Double-double maps (d + 1 rows) of a graph's stage pre-activations for single cells (given states),
    in the centred coordinates of a 2-D domain; cached by pattern prefix (a few entries)."""

    def __init__(self, graph, prog, domain, cache: int = 8):
        self.graph, self.prog, self.domain = graph, prog, domain
        self.d = domain.dim
        self._input = self._frame(domain)
        self._cache: dict = {}
        self._fast: dict = {}  # (stage, id of the states list) -> (states, values): no key bytes for the same list
        self._order: list = []
        self._size = max(cache, 2 * len(prog.stages) + 4)
        self._stage_of = {st.node: s for s, st in enumerate(prog.stages)}

    def _frame(self, domain) -> DD:
        return frame_dd(domain)

    def _key(self, states, s):
        return (s, b"".join(np.ascontiguousarray(states[t], np.int8).tobytes() for t in range(s)))

    def values_before(self, s: int, states) -> dict:
        """The double-double values {node: DD (d + 1, *shape)} of every node before stage s (0-based) under
        the states of stages < s."""
        fast = (s, id(states))
        hit = self._fast.get(fast)
        if hit is not None and hit[0] is states:
            return hit[1]
        key = self._key(states, s)
        hit = self._cache.get(key)
        if hit is not None:
            self._fast[fast] = (states, hit)
            return hit
        nodes = self.graph.nodes
        if s == 0:
            vals = {0: self._input.map(lambda t: t.reshape(self.d + 1, *self.graph.input_shape))}
            lo_node = 1
        else:
            vals = dict(self.values_before(s - 1, states))
            st = self.prog.stages[s - 1]
            vals[st.node] = self._stage_out(s - 1, vals[st.src], np.asarray(states[s - 1], np.int64))
            lo_node = st.node + 1
        hi_node = self.prog.stages[s].node if s < len(self.prog.stages) else len(nodes)
        for k in range(lo_node, hi_node):
            nd = nodes[k]
            if nd.op == "const":
                z = np.zeros((self.d + 1, *nd.shape))
                z[self.d] = nd.attrs["value"]
                vals[k] = DD(z)
            elif k in self.prog.identity:
                vals[k] = vals[nd.inputs[0]]
            elif nd.op in ("act", "max"):
                raise RuntimeError("internal error: a stage inside a segment")
            else:
                y = apply_node(nd, [vals[i] for i in nd.inputs])
                b = opmaps.bias(nd)
                if b is not None:
                    off = dd_add_const(y.map(lambda t: t[self.d]), np.broadcast_to(b, nd.shape))
                    y.hi[self.d], y.lo[self.d], y.E[self.d] = off.hi, off.lo, off.E
                vals[k] = y
        if len(self._order) >= self._size:
            self._cache.pop(self._order.pop(0), None)
        self._cache[key] = vals
        self._order.append(key)
        if len(self._fast) > 4 * self._size:
            self._fast.clear()
        self._fast[fast] = (states, vals)
        return vals

    def preact(self, s: int, states) -> DD:
        """Stage s's (0-based) pre-activation maps (d + 1, m) in the engine's orientation (a clip's input scaled)."""
        st = self.prog.stages[s]
        z = self.values_before(s, states)[st.src].map(lambda t: t.reshape(self.d + 1, -1))
        if st.groups is None and st.in_scale is not None:
            a, b = st.in_scale
            z = dd_scale(z, a)
            off = dd_add_const(z.map(lambda t: t[self.d]), b)
            z.hi[self.d], z.lo[self.d], z.E[self.d] = off.hi, off.lo, off.E
        return z

    def _stage_out(self, s: int, src: DD, state) -> DD:
        st = self.prog.stages[s]
        d1 = self.d + 1
        shape = self.graph.nodes[st.node].shape
        z = self.preact_from(s, src)
        if st.groups is not None:
            idx = st.groups[np.arange(st.width), state]
            h = z.map(lambda t: t[:, idx])
        else:
            cols = np.arange(st.m)
            sl, k = st.slope[state, cols], st.const[state, cols]
            h = dd_scale(z, sl[None, :])
            off = dd_add_const(h.map(lambda t: t[self.d]), k)
            h.hi[self.d], h.lo[self.d], h.E[self.d] = off.hi, off.lo, off.E
            if st.out is not None:
                a, b = st.out
                h = dd_scale(h, a[None, :])
                off = dd_add_const(h.map(lambda t: t[self.d]), b)
                h.hi[self.d], h.lo[self.d], h.E[self.d] = off.hi, off.lo, off.E
        return h.map(lambda t: t.reshape(d1, *shape))

    def preact_from(self, s: int, src: DD) -> DD:
        st = self.prog.stages[s]
        z = src.map(lambda t: t.reshape(self.d + 1, -1))
        if st.groups is None and st.in_scale is not None:
            a, b = st.in_scale
            z = dd_scale(z, a[None, :])
            off = dd_add_const(z.map(lambda t: t[self.d]), b)
            z.hi[self.d], z.lo[self.d], z.E[self.d] = off.hi, off.lo, off.E
        return z

    def unit_plane(self, s1: int, unit: int, sub: int, states):
        """The split event's plane (1-based stage s1) as (coefficients: d + 1 Fractions, bound of each
        coefficient's error): ``z_unit - bp_sub`` (elementwise) or ``z_a - z_b`` (max pair), the orientation of
        :meth:`.rational.ExactNet.unit_plane`."""
        from .rational import pair_of

        s = s1 - 1
        if s >= len(self.prog.stages):
            raise PiecewiseError("double-double planes of the output stage are not implemented")
        st = self.prog.stages[s]
        z = self.preact_from(s, self.values_before(s, states)[st.src])
        if st.groups is None:
            bp = float(st.act.breakpoints[sub])
            v = dd_add_const(z.map(lambda t: t[:, unit]), -bp * (np.arange(self.d + 1) == self.d))
        else:
            a, b = pair_of(st.groups.shape[1], sub)
            za = z.map(lambda t: t[:, st.groups[unit, a]])
            zb = z.map(lambda t: t[:, st.groups[unit, b]])
            v = dd_add(za, dd_scale(zb, -1.0))
        coef = [Fraction(float(h)) + Fraction(float(lo_)) for h, lo_ in zip(v.hi, v.lo)]
        return coef, float(np.max(v.E)) * SAFE


# -- decisions -------------------------------------------------------------------------------------------
def _solve2(H):
    """The exact intersection of two planes (coefficient lists of Fractions, g . c + e = 0) and the max-row-sum
    norm of the inverse of their gradient matrix."""
    (a, b, e), (c, d_, f) = H
    det = a * d_ - b * c
    if det == 0:
        return None, None
    x = (-e * d_ + b * f) / det
    y = (-a * f + c * e) / det
    kinv = max(abs(d_) + abs(b), abs(c) + abs(a)) / abs(det)
    return (x, y), kinv


def certified_vertex(H):
    """The exact intersection X of two planes H (each (coefficients, bound)), with |X|_1 and a bound dx of how
    far (max-norm) the true planes' intersection can lie from it; None where the planes are too
    ill-conditioned for their bounds."""
    (H0, d0), (H1, d1) = H
    X, kinv = _solve2([H0, H1])
    if X is None:
        return None
    x1 = float(abs(X[0]) + abs(X[1])) * SAFE
    dmax = max(d0, d1)
    k = float(kinv) * SAFE
    dA = 2 * dmax  # max-row-sum of the gradients' perturbation
    if k * dA >= 0.5:
        return None
    dx = k / (1 - k * dA) * dmax * (x1 + 1) * SAFE  # max-norm of the vertex's displacement
    return X, x1, dx


def certified_at(q, vertex):
    """(value, bound): the exact value of plane q (coefficients, bound dq) at a :func:`certified_vertex`, and a
    bound of how far the true plane at the true vertex can be from it."""
    qc, dq = q
    X, x1, dx = vertex
    v = qc[0] * X[0] + qc[1] * X[1] + qc[2]
    g1 = float(abs(qc[0]) + abs(qc[1])) * SAFE
    return v, (g1 * dx + dq * (x1 + 2 * dx + 1)) * SAFE


def certified_value(q, H):
    """(value, bound) of plane q at the intersection of the planes H (:func:`certified_vertex`,
    :func:`certified_at`); None where the planes are too ill-conditioned for their bounds."""
    vx = certified_vertex(H)
    return None if vx is None else certified_at(q, vx)


class DDPlane(tuple):
    """A plane (coefficients as Fractions, error bound) from :meth:`DDNet.unit_plane`. Not comparable exactly:
    code that needs two planes to be proven equal gets a one-line refusal."""

    def __getitem__(self, i):
        if isinstance(i, int) and i in (0, 1):
            return tuple.__getitem__(self, i)
        raise PiecewiseError("two units' boundaries coincide to within float64 in this network, and proving it "
                             "needs exact arithmetic, implemented for graphs of up to 20,000 units")

    def __len__(self):
        return 3


def values_at(z: DD, units, bp: float, vertex) -> tuple[np.ndarray, np.ndarray]:
    """Values (P,) of the planes ``z[:, units] - bp`` (z a DD (3, m) of a 2-D stage's pre-activations) at one
    :func:`certified_vertex`, computed in double-double from the vertex rounded to double-double, and bounds
    (P,) of their distance to the true planes' values at the true vertex (the planes' own bounds moved by the
    vertex's, and the arithmetic)."""
    X, x1, dx = vertex
    xh = np.array([float(X[0]), float(X[1])])
    xl = np.array([float(X[0] - Fraction(xh[0])), float(X[1] - Fraction(xh[1]))])
    gh, gl, E = z.hi[:, units], z.lo[:, units], z.E[:, units]
    eh, el = two_sum(gh[2], np.full(len(units), -bp))
    el = el + gl[2]
    p0, q0 = two_prod(gh[0], xh[0])
    p1, q1 = two_prod(gh[1], xh[1])
    small = (gh[0] * xl[0] + gl[0] * xh[0]) + (gh[1] * xl[1] + gl[1] * xh[1]) + (q0 + q1) + el
    s1, r1 = two_sum(p0, p1)
    s2, r2 = two_sum(s1, eh)
    v = s2 + (r1 + r2 + small)
    mag = np.abs(gh[0]) * abs(xh[0]) + np.abs(gh[1]) * abs(xh[1]) + np.abs(gh[2]) + abs(bp)
    small_abs = (np.abs(gh[0] * xl[0]) + np.abs(gl[0] * xh[0]) + np.abs(gh[1] * xl[1]) + np.abs(gl[1] * xh[1])
                 + np.abs(q0) + np.abs(q1) + np.abs(el) + np.abs(r1) + np.abs(r2))
    arith = 2.0**-90 * mag + 16 * U * small_abs + U * np.abs(v)  # dropped lo * lo terms, the small sums' rounding
    dq = E.max(0) * SAFE
    g1 = (np.abs(gh[0]) + np.abs(gh[1])) * SAFE + 2.0**-80 * mag
    bound = (g1 * dx + dq * (x1 + 2 * dx + 1) + arith) * SAFE
    return v, bound
