"""Exact arithmetic for the verdicts on piecewise-linear maps: collisions, determinant signs, preimage counts.

Every weight of a network is a float64, that is an exact dyadic rational, and so is every float64 input point.
Within one activation region the network is an affine map whose coefficients are exact dyadic rationals
(:class:`piecewise.regions.rational.ExactNet`), so a PL network can be evaluated at a rational point without
rounding (the region of the point is found stage by stage from exact pre-activations), and an affine system
of one region can be solved in rationals (:class:`fractions.Fraction`). This gives

* :meth:`ExactPL.collision` -- a collision ``f(x1) = f(x2*)`` that holds exactly: for float64 candidates
  (x1, x2) the affine system of x2's region is solved exactly for a point x2* near x2 with the image f(x1),
  and f(x2*) is evaluated exactly. No tolerance is involved, so the check does not depend on the scale of the
  inputs or of the outputs. The witness is ``{"x1", "x2", "x2_exact"}``: x1 as given, x2 = x2* rounded to
  float64 and ``x2_exact`` the rationals of x2* as strings ``"p/q"``;
* :func:`det_signs` -- the sign of every cell's Jacobian determinant: float64 with a rigorous error bound
  (Hadamard's inequality over the columns and the engine's bound on the gradients' errors), exact for the
  cells the bound cannot decide;
* :func:`count_preimages` -- the exact preimages of one target point over every cell of a complex, each cell
  extended to the whole polyhedron of its activation pattern in R^n (not clipped to the box).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..numerics import U
from ..regions import rational
from ..staged import as_staged
from ..regions.rational import Dyadic

_MAX_EXACT_CELLS = 20000  # exact work (one forward pass in Python integers per cell) beyond this: refuse


def fractions(x) -> list:
    """The exact rationals of a float64 vector."""
    return [Fraction(float(v)) for v in np.asarray(x, np.float64).ravel()]


def _eval(M: Dyadic, X) -> np.ndarray:
    """Values (m,) (object array of Fractions) at the rational point X (d,) of the affine maps M (d + 1, m)
    (rows 0..d-1 the gradient, row d the offset)."""
    d = len(X)
    N = M.N
    z = np.dot(np.array(X, object), N[:d]) + N[d] if d else N[d].copy()
    return z * (Fraction(2) ** M.k)


def _generic(st, z) -> bool:
    """Whether no unit of the stage sits on a breakpoint (elementwise) or on a tie of its pieces (max)."""
    if st.groups is not None:
        for g in st.groups:
            vals = [z[j] for j in set(g.tolist())]
            if vals.count(max(vals)) > 1:
                return False
        return True
    bps = st.activation.breakpoints or ()
    return not any(v == Fraction(float(bp)) for bp in bps for v in z.tolist())


def solve(A, b):
    """All solutions of ``A x = b`` in rationals (A: r lists of d Fractions, b: r Fractions): ``(p, N)`` with p a
    particular solution (d,) and N a basis (list of (d,) lists) of the null space, or None if inconsistent."""
    r, d = len(A), (len(A[0]) if A else 0)
    M = [list(map(Fraction, row)) + [Fraction(bi)] for row, bi in zip(A, b)]
    piv_cols, row = [], 0
    for c in range(d):
        p = next((i for i in range(row, r) if M[i][c] != 0), None)
        if p is None:
            continue
        M[row], M[p] = M[p], M[row]
        pv = M[row][c]
        M[row] = [v / pv for v in M[row]]
        for i in range(r):
            if i != row and M[i][c] != 0:
                f = M[i][c]
                M[i] = [a - f * bb for a, bb in zip(M[i], M[row])]
        piv_cols.append(c)
        row += 1
        if row == r:
            break
    if any(all(v == 0 for v in M[i][:d]) and M[i][d] != 0 for i in range(r)):
        return None
    x = [Fraction(0)] * d
    for i, c in enumerate(piv_cols):
        x[c] = M[i][d]
    free = [c for c in range(d) if c not in piv_cols]
    basis = []
    for fc in free:
        v = [Fraction(0)] * d
        v[fc] = Fraction(1)
        for i, c in enumerate(piv_cols):
            v[c] = -M[i][fc]
        basis.append(v)
    return x, basis


class ExactPL:
    """A piecewise-linear :class:`~piecewise.staged.StagedNet` evaluated exactly at rational points of its
    input space (input coordinates x)."""

    def __init__(self, sn):
        self.sn = sn
        n = sn.n_in
        self.n = n
        self.net = rational.ExactNet(sn, frame=(Dyadic.of(np.zeros(n)), Dyadic.of(np.eye(n))))

    def locate(self, X) -> tuple[list, bool]:
        """The per-stage states of the rational point X (n,) (those :meth:`Stage.states` assigns, ties to the
        lowest piece as everywhere in the library) and whether X is generic (no unit on a breakpoint or tie)."""
        states, generic = [], True
        for s, st in enumerate(self.sn.stages, 1):
            z = _eval(self.net.preact(s, states), X)
            generic = generic and _generic(st, z)
            states.append(np.asarray(st.states(z), np.int64))
        return states, generic

    def affine(self, states) -> tuple[list, list]:
        """The exact affine map of the region with ``states``: ``y = X @ G + e``, G (n, n_out) and e (n_out,)
        as lists of Fractions."""
        M = self.net.output(states)
        sc = Fraction(2) ** M.k
        G = [[Fraction(int(v)) * sc for v in row] for row in M.N[: self.n]]
        e = [Fraction(int(v)) * sc for v in M.N[self.n]]
        return G, e

    def value(self, X) -> list:
        """f(X) exactly (list of n_out Fractions)."""
        states, _ = self.locate(X)
        return list(_eval(self.net.output(states), X))

    def collision(self, x1, x2) -> dict | None:
        """An exact collision near the float64 candidates x1, x2 (module docstring), or None."""
        x1, x2 = np.asarray(x1, np.float64), np.asarray(x2, np.float64)
        if not (np.all(np.isfinite(x1)) and np.all(np.isfinite(x2))) or np.array_equal(x1, x2):
            return None
        X1 = fractions(x1)
        y1 = self.value(X1)
        G, e = self.affine(self.locate(fractions(x2))[0])
        n, m = self.n, len(e)
        sol = solve([[G[i][j] for i in range(n)] for j in range(m)], [y1[j] - e[j] for j in range(m)])
        if sol is None:
            return None
        p, basis = sol
        X2 = p
        if basis:  # a singular region: the solution nearest x2 (any choice of t gives an exact solution)
            B = np.array([[float(v) for v in b] for b in basis]).T  # (n, k)
            t, *_ = np.linalg.lstsq(B, x2 - np.array([float(v) for v in p]), rcond=None)
            T = fractions(t)
            X2 = [p[i] + sum(T[k] * basis[k][i] for k in range(len(basis))) for i in range(n)]
        if X2 == X1 or self.value(X2) != y1:
            return None
        return {"x1": x1.tolist(), "x2": [float(v) for v in X2], "x2_exact": [str(v) for v in X2]}


# -- determinant signs ------------------------------------------------------------------------------------
def det_signs(cx) -> np.ndarray:
    """Exact sign (-1, 0, 1) of every cell's Jacobian determinant, (C,) int8. float64 ``det`` decides a cell
    when ``|det|`` exceeds a bound on its error: the columns j_k (d,) of ``jacobian_u`` carry errors of at most
    ``e_k`` (the engine's ``jacobian_err``) plus the backward error of the LU factorisation, so by Hadamard
    ``|det(J + E) - det(J)| <= prod(|j_k| + e_k) - prod |j_k|``. The others are computed exactly
    (:meth:`CellComplex.exact_gradient`, integer determinants)."""
    J = np.asarray(cx.jacobian_u, np.float64)  # (C, d, n): columns are outputs
    C, d, n = J.shape
    if C == 0:
        return np.zeros(0, np.int8)
    det = np.linalg.det(J) if d > 1 else J[:, 0, 0]
    col = np.linalg.norm(J, axis=1)  # (C, n)
    err = np.asarray(cx.jacobian_err if cx.jacobian_err is not None else np.full(n, np.inf), np.float64)
    lu = 4.0 * d * d * 2.0**d * U * col.max(1, keepdims=True)
    with np.errstate(over="ignore", invalid="ignore"):
        bound = (np.prod(col + err + lu, axis=1) - np.prod(col, axis=1)) * (1 + 1e-6) + 1e-300
    sure = np.isfinite(bound) & (np.abs(det) > bound)
    out = np.where(sure, np.sign(det), 0).astype(np.int8)
    todo = np.nonzero(~sure)[0]
    if len(todo) > _MAX_EXACT_CELLS:
        from ..errors import PiecewiseError

        raise PiecewiseError(f"{len(todo)} cells have Jacobian determinants too close to 0 for float64: too many "
                             "to decide exactly")
    for i in todo.tolist():
        g = cx.exact_gradient(i)  # Dyadic (d, n): the common power of two does not change the sign
        out[i] = np.sign(rational.det(g.N.tolist()))
    return out


# -- preimages over a whole complex -------------------------------------------------------------------------
def _where(st, z, want) -> int:
    """Where pre-activations z (object (m,)) of one stage lie against the stage's pattern ``want``: 1 strictly
    inside its piece for every unit, -1 in the closure only (some unit on a breakpoint or tie), 0 outside."""
    want = np.asarray(want, np.int64)
    out = 1
    if st.groups is not None:
        for i, g in enumerate(st.groups):
            top = z[g[want[i]]]
            others = [z[j] for j in set(g.tolist()) if j != g[want[i]]]
            if any(v > top for v in others):
                return 0
            if any(v == top for v in others):
                out = -1
        return out
    bps = [Fraction(float(b)) for b in (st.activation.breakpoints or ())]
    for v, q in zip(z.tolist(), want.tolist()):
        lo = bps[q - 1] if q >= 1 else None
        hi = bps[q] if q < len(bps) else None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            return 0
        if v == lo or v == hi:
            out = -1
    return out


def _inside(net, staged, states, c) -> int:
    """1 if the rational point c lies strictly inside the (unclipped) polyhedron of the activation pattern
    ``states`` (every pre-activation of that pattern strictly on its side), -1 if on its boundary, 0 if outside."""
    out = 1
    for s, st in enumerate(staged.stages, 1):
        w = _where(st, _eval(net.preact(s, states), c), states[s - 1])
        if w == 0:
            return 0
        out = min(out, w)
    return out


def count_preimages(cx, target_cell: int):
    """The preimages of y0 = f(c0), c0 the vertex average of cell ``target_cell``, over every cell of the complex
    ``cx``, each cell taken as the whole polyhedron of its pattern in R^n (exact). Needs a square map and cells
    with nonsingular Jacobians. Returns ``(points, generic)``: the preimages as (cell, rational centred point)
    pairs, and whether the count is valid (False: c0 or a preimage lies on a cell boundary: pick another
    target)."""
    staged = cx.staged if cx.staged is not None else as_staged(cx.net, cx.params)
    net = rational.ExactNet(staged, cx.domain)
    d = cx.dim
    c0 = fractions(cx.interior_c()[target_cell])
    st0 = cx.cell_states(target_cell)
    if _inside(net, staged, st0, c0) != 1:
        return [], False
    y0 = list(_eval(net.output(st0), c0))
    found = []
    if cx.regions > _MAX_EXACT_CELLS:
        from ..errors import PiecewiseError

        raise PiecewiseError(f"{cx.regions} cells: too many for the exact preimage count")
    for i in range(cx.regions):
        sts = cx.cell_states(i)
        M = net.output(sts)
        sc = Fraction(2) ** M.k
        A = [[Fraction(int(M.N[r, j])) * sc for r in range(d)] for j in range(M.N.shape[1])]
        b = [y0[j] - Fraction(int(M.N[d, j])) * sc for j in range(M.N.shape[1])]
        sol = solve(A, b)
        if sol is None:
            continue
        p, basis = sol
        if basis:
            return [], False  # a singular cell: the caller handles those before counting
        where = _inside(net, staged, sts, p)
        if where == -1:
            return [], False
        if where == 1:
            found.append((i, p))
    return found, True


def centred_to_input(domain, c) -> list:
    """A rational point in a domain's centred coordinates -> input coordinates, exactly (list of Fractions)."""
    center, axes = rational.domain_frame(domain)
    sc, sa = Fraction(2) ** center.k, Fraction(2) ** axes.k
    n = len(center.N)
    return [Fraction(int(center.N[j])) * sc + sum(c[i] * Fraction(int(axes.N[i, j])) * sa for i in range(len(c)))
            for j in range(n)]
