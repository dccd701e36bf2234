"""Smooth nets R^n -> R^n that fail the layer theorem: a proof of injectivity, or collisions.

* **Gale--Nikaido** (:func:`gale_nikaido`): a net with one hidden layer, y = tanh(x @ W0 + b0) @ W1 + b1 (also
  sigmoid, softplus), has the Jacobian ``J(x) = sum_j d_j u_j v_j^T`` with d_j = s'(z_j) > 0, u_j the j-th row
  of W1 and v_j the j-th column of W0. By Cauchy--Binet every principal minor of ``A J`` (A a fixed invertible
  matrix) is ``sum_S prod_{j in S} d_j det((A U)_{K,S}) det(V_{K,S})``: if for every index set K all these
  coefficients are >= 0 and one is > 0 (exact rationals), ``A J(x)`` is a P-matrix at every x, so A f and f
  are injective on R^n (Gale & Nikaido 1965, on every box, hence on R^n) and f is a homeomorphism onto its
  image (invariance of domain). A is tried as I, -I and M^-1 with M = W1^T W0^T: the test is then the same
  for f and for c f (c != 0) and for the inputs rescaled.
* **Constructive**: if layers 0..i-1 are homeomorphisms (square, nonsingular, strictly monotone) and layer i
  is singular or narrowing (its W (n_i, m) has a vector v with v @ W = 0), then h and h + t v have the same
  image; inverting the earlier layers on both (they are in the image for small t) gives x1 != x2 with
  f(x1) = f(x2). This covers a singular first layer at once (no earlier layers).
* **Search**: otherwise, multi-start Newton solves of f(x2) = f(x1) from starts away from x1.

Every collision is checked by evaluating the network in float64 before it is returned, relative to the map's
own scale (:func:`piecewise.invertibility.witness.verified`). With a box (``domain``) collisions are looked
for, and accepted, only inside it.
"""
from __future__ import annotations

from fractions import Fraction
from itertools import combinations
from math import comb

import numpy as np

from ..nets import MLP, Params
from .exact import solve
from .inverses import _inverse_activation, invert_newton
from .witness import error64, forward64, jacobian64, verified

GN_MAX_MINORS = 20000  # Gale--Nikaido: give up beyond this many coefficient determinants


def _hidden(net, params, x, upto: int) -> np.ndarray:
    """Output of the first ``upto`` hidden layers at x (float64)."""
    from .jacobians import _act64

    h = np.asarray(x, np.float64)
    for W, b in params[:upto]:
        h = _act64(net.activation, h @ np.asarray(W, np.float64) + np.asarray(b, np.float64))
    return h


def _invert_prefix(net, params, h, upto: int) -> np.ndarray:
    """Undo the first ``upto`` hidden layers (each square and nonsingular, strictly monotone activation)."""
    for W, b in reversed(params[:upto]):
        z = _inverse_activation(net.activation, h)
        h = np.linalg.solve(np.asarray(W, np.float64).T, z - np.asarray(b, np.float64))
    return h


def _checker(net, params, domain=None):
    """``check(x1, x2)``: the float64 collision test of :func:`verified`, and (with a box) both points inside."""
    f, jac, err = forward64(net, params), jacobian64(net, params), error64(net, params)

    def inside(x):
        if domain is None:
            return True
        lo, hi = domain.origin, domain.origin + np.diag(domain.axes)
        slack = 1e-12 * (hi - lo)
        return bool(np.all(x >= lo - slack) and np.all(x <= hi + slack))

    def check(x1, x2):
        if not (inside(np.asarray(x1)) and inside(np.asarray(x2))):
            return None
        return verified(f, x1, x2, jac, err)
    return check


def _first_layer_points(params, Z) -> np.ndarray:
    """Input points whose first-layer pre-activations are (least squares) Z (k, m): ``(Z - b0) @ pinv(W0)``;
    they scale with the inputs (W0 / s gives points s times larger)."""
    W0, b0 = np.asarray(params[0][0], np.float64), np.asarray(params[0][1], np.float64)
    return (Z - b0) @ np.linalg.pinv(W0)


def constructive_collision(net: MLP, params: Params, report, domain=None) -> dict | None:
    """The constructive collision described in the module docstring, from a layer-theorem report
    (:class:`~piecewise.invertibility.results.LayerReport`); None if it does not apply or fails the check.
    ``domain``: a box both points must lie in (x1 is then taken at its centre and near it)."""
    i = report.first_failure["layer"]
    W = np.asarray(params[i][0], np.float64)
    if W.ndim != 2:
        return None
    u, s, vt = np.linalg.svd(W, full_matrices=True)  # v @ W = 0 for the left singular vectors of s = 0
    rank = int(np.sum(s > s.max() * max(W.shape) * np.finfo(np.float64).eps)) if s.size else 0
    if rank >= W.shape[0]:
        return None  # widening or full rank: nothing collapses at this layer
    v = u[:, -1]
    check = _checker(net, params, domain)
    if domain is not None:
        c = domain.center
        starts = [c, c + 0.1 * domain.axes.sum(0) / 2]
    else:
        m0 = np.asarray(params[0][0]).shape[1]
        starts = [np.zeros(net.n_in), _first_layer_points(params, np.full((1, m0), 0.1))[0]]
    if i > 0:
        L = 1.0  # steps in hidden activations: unchanged by rescaled inputs or outputs
    elif domain is not None:
        L = float(np.diag(domain.axes).min()) / 2  # steps in x: the box's size
    else:  # steps in x: the length over which the first layer's pre-activations change by about 1
        L = float(np.abs(np.linalg.pinv(W)).max()) or 1.0
    for x1 in starts:
        h1 = _hidden(net, params, x1, i)
        for t in L * 10.0 ** -np.arange(0, 8):
            try:
                x2 = _invert_prefix(net, params, h1 + t * v, i)
            except Exception:  # noqa: BLE001 - outside the earlier layers' image: try a smaller step
                continue
            w = check(x1, x2)
            if w is not None:
                return w
    return None


def search_collision(net: MLP, params: Params, *, domain=None, targets: int = 24, starts: int = 8,
                     seed: int = 0) -> dict | None:
    """Multi-start Newton search for x2 != x1 with f(x2) = f(x1). Without a box, ``targets`` points x1 whose
    first-layer pre-activations are uniform in [-2.5, 2.5] (so the search follows the inputs' scale), each
    solved from ``starts`` starts at distances from a quarter to twice their spread; with a box (``domain``),
    targets and starts uniform in it. Returns a checked collision or None."""
    rng = np.random.default_rng(seed)
    n = net.n_in
    if domain is not None:
        lo, w = domain.origin, np.diag(domain.axes)
        X1 = lo + rng.uniform(size=(targets, n)) * w
        scale = None
    else:
        m = np.asarray(params[0][0]).shape[1]
        X1 = _first_layer_points(params, rng.uniform(-2.5, 2.5, (targets, m)))
        scale = float(np.abs(X1 - X1.mean(0)).max()) or 1.0
    f = forward64(net, params)
    check = _checker(net, params, domain)
    Y = f(X1)
    X0 = []
    for k in range(starts):
        if scale is None:
            X0.append(lo + rng.uniform(size=(targets, n)) * w)
        else:
            d = rng.normal(size=(targets, n))
            X0.append(X1 + d * (scale * 2.0 ** (k % 4 - 2)) / np.linalg.norm(d, axis=1, keepdims=True))
    X0 = np.concatenate(X0)  # (starts * targets, n): one Newton solve for all starts
    T1, TY = np.tile(X1, (starts, 1)), np.tile(Y, (starts, 1))
    X2, res = invert_newton(net, params, TY, X0)
    ref = np.abs(f(X0) - TY).max(1)  # how far the start's image was: the residual must shrink well below it
    for t in np.nonzero(np.isfinite(res) & (res <= 1e-6 * ref))[0]:
        wit = check(T1[t], X2[t])
        if wit is not None:
            return wit
    return None


# -- Gale--Nikaido -------------------------------------------------------------------------------------------
def _fdet(M) -> Fraction:
    """Determinant of a square matrix of Fractions (Gaussian elimination)."""
    A = [list(r) for r in M]
    n = len(A)
    det = Fraction(1)
    for c in range(n):
        p = next((r for r in range(c, n) if A[r][c] != 0), None)
        if p is None:
            return Fraction(0)
        if p != c:
            A[c], A[p] = A[p], A[c]
            det = -det
        det *= A[c][c]
        for r in range(c + 1, n):
            if A[r][c] != 0:
                fct = A[r][c] / A[c][c]
                A[r] = [a - fct * b for a, b in zip(A[r], A[c])]
    return det


def _mat(a) -> list:
    return [[Fraction(float(v)) for v in row] for row in np.asarray(a, np.float64)]


def _mul(A, B) -> list:
    return [[sum(A[i][k] * B[k][j] for k in range(len(B))) for j in range(len(B[0]))] for i in range(len(A))]


def gale_nikaido(net: MLP, params: Params) -> str | None:
    """A proof that a one-hidden-layer tanh / sigmoid / softplus net R^n -> R^n is injective on R^n (module
    docstring), as a certificate sentence, or None when the sufficient condition does not hold."""
    if len(params) != 2 or net.activation.name not in ("tanh", "sigmoid", "softplus"):
        return None
    W0, W1 = np.asarray(params[0][0], np.float64), np.asarray(params[1][0], np.float64)
    n, m = W0.shape
    if W1.shape != (m, n) or sum(comb(n, k) * comb(m, k) for k in range(1, n + 1)) > GN_MAX_MINORS:
        return None
    Um, V = _mat(W1.T), _mat(W0)  # (n, m): column j is u_j, resp. v_j
    M = _mul(Um, [list(r) for r in zip(*V)])  # W1^T W0^T: the Jacobian's form with every d_j = 1
    eye = [[Fraction(int(i == j)) for j in range(n)] for i in range(n)]
    cands = [("I", eye), ("-I", [[-v for v in r] for r in eye])]
    if _fdet(M) != 0:
        cols = [solve(M, [eye[r][j] for r in range(n)])[0] for j in range(n)]  # M^-1, column by column
        cands.append(("M^-1", [[cols[j][i] for j in range(n)] for i in range(n)]))
    Vdets = {}
    for name, A in cands:
        UA = _mul(A, Um)
        ok = True
        for k in range(1, n + 1):
            for K in combinations(range(n), k):
                pos = False
                for S in combinations(range(m), k):
                    key = (K, S)
                    if key not in Vdets:
                        Vdets[key] = _fdet([[V[i][j] for j in S] for i in K])
                    dv = Vdets[key]
                    if dv == 0:
                        continue
                    c = _fdet([[UA[i][j] for j in S] for i in K]) * dv
                    if c < 0:
                        ok = False
                        break
                    pos = pos or c > 0
                if not (ok and pos):
                    ok = False
                    break
            if not ok:
                break
        if ok:
            pre = "" if name == "I" else f"premultiplied by {name}, "
            return ("proven on the whole input space (Gale-Nikaido): the Jacobian W1^T diag(s'(z)) W0^T, " + pre +
                    "is a P-matrix for every positive diagonal (each principal minor is a sum of products of the "
                    "s'(z_j) > 0 with exact coefficients det(U_KS) det(V_KS) >= 0, not all 0), so the map is "
                    "injective on R^n (Gale & Nikaido 1965) and a homeomorphism onto its image (invariance of "
                    "domain)")
    return None
