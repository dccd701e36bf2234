"""ReLU-layer injectivity (Puthawala et al., JMLR 2022): an exact decision by linear programs, a per-point
preimage test, and the sufficient construction W = [B, -B D]."""
from __future__ import annotations

import numpy as np

from ..errors import PiecewiseError
from .results import InjectivityResult


def relu_layer_injective(W, b=None, *, tol: float = 1e-9) -> InjectivityResult:
    """Exact decision: is ``x -> relu(x @ W + b)`` (W (n, m), b (m,)) injective on R^n?

    Rows w_j are the columns of W. Not injective iff rank W < n, or some n - 1 independent rows span a
    hyperplane H for which ``{x : w_j . x + b_j <= -t for every row w_j not in H}`` is feasible with t > 0
    (then x and x + eps v, v normal to H, collide: the rows in H do not see v, the others stay off).
    One LP per hyperplane spanned by rows (scipy HiGHS), at most C(m, n - 1); its margin t is measured against
    the inputs' own length scale (the farthest hyperplane from the origin), and the rank against the largest
    singular value, so rescaling x or the layer changes no verdict. Every "no" carries a witness {x1, x2}
    checked in exact arithmetic (:meth:`~piecewise.invertibility.exact.ExactPL.collision`); when that check
    fails the answer is None (undecided).
    """
    from itertools import combinations

    from scipy.optimize import linprog

    W = np.asarray(W, np.float64)
    n, m = W.shape
    b = np.zeros(m) if b is None else np.asarray(b, np.float64)
    if b.shape != (m,):
        raise PiecewiseError(f"b must have shape ({m},), got {b.shape}")
    from ..activations import get_activation
    from ..staged import Stage, StagedNet
    from .exact import ExactPL

    exact = ExactPL(StagedNet(n, (Stage(get_activation("relu"), {0: W}, b),), {1: np.eye(m)}, np.zeros(m)))
    nrm = np.linalg.norm(W, axis=0)
    # the inputs' own length scale: the farthest hyperplane from the origin (1 when every bias is 0: then the
    # LP below is invariant under scaling x, and any length will do)
    dist = np.abs(b) / np.where(nrm > 0, nrm, 1.0)
    L = float(dist.max()) if np.any(dist > 0) else 1.0

    def checked(x, v, t):
        """x and x + eps v collide for eps up to t (the LP's margin): checked in exact arithmetic."""
        for eps in t * 10.0 ** -np.arange(0, 5):
            w = exact.collision(x, x + eps * v)
            if w is not None:
                return w
        return None

    smax = np.linalg.svd(W, compute_uv=False).max() if W.size else 0.0
    rank = np.linalg.matrix_rank(W, tol=tol * smax) if smax > 0 else 0
    if rank < n:
        v = np.linalg.svd(W.T)[2][-1]  # W^T v = 0: every x moves along v unseen
        return _no(checked(np.zeros(n), v, L), 0, f"rank W = {rank} < n = {n}")
    rows = W.T / np.linalg.norm(W.T, axis=1, keepdims=True).clip(1e-300)
    seen, lps, unverified = set(), 0, None
    for S in combinations(range(m), n - 1):
        A = W.T[list(S)]
        if n > 1 and np.linalg.matrix_rank(A, tol=tol * np.abs(A).max()) < n - 1:
            continue
        v = np.linalg.svd(A, full_matrices=True)[2][-1] if n > 1 else np.ones(1)  # normal of H
        in_H = np.abs(rows @ v) <= tol
        key = tuple(np.nonzero(in_H)[0])
        if key in seen:
            continue
        seen.add(key)
        out = ~in_H
        lps += 1
        if not out.any():
            return _no(checked(np.zeros(n), v, L), lps, "every row lies in one hyperplane")
        # in units without scale: unit rows, x = L xi, margin t = L tau (so the LP is the same for rescaled
        # inputs or a rescaled layer)
        norms = np.linalg.norm(W.T[out], axis=1)
        res = linprog(np.r_[np.zeros(n), -1.0], A_ub=np.c_[W.T[out] / norms[:, None], np.ones(len(norms))],
                      b_ub=-b[out] / norms / L, bounds=[(None, None)] * n + [(None, 1.0)], method="highs")
        if res.status == 0 and -res.fun > tol:
            x = L * res.x[:n]
            w = checked(x, v, -L * res.fun)
            why = f"the rows {list(key)} span a hyperplane and all other units can be off"
            if w is not None:
                return _no(w, lps, why)
            unverified = unverified or why
    if unverified is not None:
        return _no(None, lps, unverified)
    return InjectivityResult(True, "for every hyperplane spanned by rows, the other units cannot all be off", None, lps)


def _no(witness, lps, reason) -> InjectivityResult:
    """A "no" with its verified witness, or undecided (None) when the exact check of the collision failed."""
    if witness is None:
        return InjectivityResult(None, f"undecided: {reason}, but the collision could not be verified in exact "
                                       "arithmetic (ill-conditioned weights)", {"layer": 0, "reason": reason}, lps)
    return InjectivityResult(False, reason, witness, lps)


def relu_preimage_is_point(W, b, x0, *, tol: float = 1e-9) -> bool:
    """Per-point test: is the preimage of relu(x0 @ W + b) the single point x0? (The active rows must span
    R^n, or the inactive units tight at x0 must block every direction of their null space.)"""
    from scipy.linalg import null_space
    from scipy.optimize import linprog

    W = np.asarray(W, np.float64)
    b = np.asarray(b, np.float64)
    z = np.asarray(x0, np.float64) @ W + b
    scale = tol * (np.abs(W).sum(0) * np.abs(x0).max() + np.abs(b))  # relative to the magnitudes summed
    active = z > scale
    N = null_space(W.T[active]) if active.any() else np.eye(W.shape[0])
    if N.shape[1] == 0:
        return True
    tight = np.abs(z) <= scale
    G = W.T[tight] @ N  # moving by N y keeps the active outputs; tight inactive units need G y <= 0
    for i in range(N.shape[1]):
        for sgn in (1.0, -1.0):
            c = np.zeros(N.shape[1])
            c[i] = -sgn
            res = linprog(c, A_ub=G if len(G) else None, b_ub=np.zeros(len(G)) if len(G) else None,
                          bounds=[(-1, 1)] * N.shape[1], method="highs")
            if res.status == 0 and -res.fun > tol:
                return False
    return True


def injective_relu_layer(B, D=None) -> np.ndarray:
    """The sufficient construction W = [B, -B D] (columns: rows B^T and -D B^T), B invertible, D positive
    diagonal: x -> relu(x @ W) is injective. Returns W (n, 2n)."""
    B = np.asarray(B, np.float64)
    n = B.shape[0]
    D = np.eye(n) if D is None else np.diag(np.asarray(D, np.float64))
    if np.any(np.diag(D) <= 0):
        raise PiecewiseError("D must be a positive diagonal")
    return np.c_[B, -B @ D]


