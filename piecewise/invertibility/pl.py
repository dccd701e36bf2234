"""Exact homeomorphism check of a piecewise-linear map R^n -> R^n on a box, with verified collision witnesses.

Enumerate the cells, take each cell's Jacobian determinant (float64), and

- a cell with det J = 0 gives a collision inside it (x and x + eps v, v in the kernel);
- two preimages of one target point (targets near every cell's boundary; every cell's affine system solved)
  give a collision; this finds second sheets of coherently oriented maps too;
- a map that is not coherently oriented (dets of both signs) folds somewhere: walking from a cell of one
  sign to a cell of the other, the crossing where the sign flips gives x1 on one side and x2 = the other
  cell's affine inverse of f(x1) on the other;
- a coherently oriented map that is injective on the box's boundary has degree 1 inside: it is a
  homeomorphism of the box onto its image (proven for 1D and 2D boxes; for 3D and up the boundary test
  is replaced by counting preimages of sample targets, which is reported as sampled, not proven).

Every "no" carries a collision {x1, x2} checked by evaluating the network in float64 (:mod:`.witness`);
when theory says "no" but no collision passes that check, the answer is None (undecided) with the reason.
Coherent orientation does not imply injectivity for n >= 2 (the map that doubles angles has det > 0 on
every cell and two preimages of every generic point).
"""
from __future__ import annotations

import numpy as np

from ..errors import PiecewiseError
from ..nets import MLP, Params
from ..regions import box as _box
from ..regions import enumerate_cells
from ..regions.domain import Domain
from ..staged import as_staged
from .layers import require_square_map
from .results import HomeoResult
from .witness import forward64, verified

DET_RTOL = 1e-12  # |det J| <= DET_RTOL * prod of row norms counts as singular


def _dets(cx) -> np.ndarray:
    J = np.swapaxes(cx.jacobian_u, -1, -2)  # (C, n_out, d): derivative along the domain's axes
    return np.linalg.det(J) if J.shape[-1] > 1 else J[:, 0, 0]


def _singular(cx, dets) -> np.ndarray:
    J = np.swapaxes(cx.jacobian_u, -1, -2)
    scale = np.prod(np.linalg.norm(J, axis=-1), axis=-1)
    return np.abs(dets) <= DET_RTOL * np.maximum(scale, 1e-300)


def _cell_contains_2d(cx, cells, U, tol=1e-10):
    """For (target, cell) pairs: is the parameter point U[t] (T, 2) inside polygon ``cells[t]``?"""
    V = cx.vertices[cells]
    n = cx.n_vertices[cells]
    K = V.shape[1]
    k = np.arange(K)
    nxt = np.where(k[None] + 1 < n[:, None], k[None] + 1, 0)
    Vn = np.take_along_axis(V, nxt[..., None], 1)
    e = Vn - V
    cross = e[..., 0] * (U[:, None, 1] - V[..., 1]) - e[..., 1] * (U[:, None, 0] - V[..., 0])
    return np.all((cross >= -tol) | (k[None] >= n[:, None]), axis=1)


def _cell_contains(cx, cells, U, tol=1e-10):
    if cx.domain.dim == 2:
        return _cell_contains_2d(cx, cells, U, tol)
    if cx.domain.dim == 1:
        return (U[:, 0] >= cx.vertices[cells, 0, 0] - tol) & (U[:, 0] <= cx.vertices[cells, 1, 0] + tol)
    return cx.contains(cells, U, tol)


def _targets(cx) -> np.ndarray:
    """Parameter points inside every cell, close to its boundary (near its vertices and near the midpoints of
    consecutive vertices: edge midpoints of a polygon) and at its centre: a fold or a second sheet shows up as
    a second preimage of their images."""
    pts = []
    for i in range(cx.regions):
        V = cx.vertices[i, : cx.n_vertices[i]]
        c = V.mean(0)
        mids = (V + np.roll(V, -1, axis=0)) / 2
        for P in (V, mids):
            pts.append(c + (1 - 1e-3) * (P - c))
        pts.append(c[None])
    return np.concatenate(pts)


def _find_collision(f, cx, dets, max_targets: int = 20000):
    """Solve every cell's affine system for target points; two preimages in different cells = a collision."""
    U = _targets(cx)
    if len(U) > max_targets:
        U = U[np.random.default_rng(1).choice(len(U), max_targets, replace=False)]
    J = np.swapaxes(cx.jacobian_u, -1, -2)  # (C, n, d) with d = n
    ok = ~_singular(cx, dets)
    Jinv = np.zeros_like(J)
    Jinv[ok] = np.linalg.inv(J[ok])
    out_cells = np.nonzero(ok)[0]
    for start in range(0, len(U), 512):
        Ub = U[start:start + 512]
        # the targets' images: evaluate the network (exact map) at the points
        Xb = cx.domain.points(Ub)
        Yb = f(Xb)
        # preimages in every cell: u = Jinv (y - offset)
        Uc = np.einsum("cdn,tcn->tcd", Jinv[out_cells], Yb[:, None, :] - cx.offset[out_cells][None])
        T = len(Ub)
        tt, cc = np.meshgrid(np.arange(T), np.arange(len(out_cells)), indexing="ij")
        inside = _cell_contains(cx, out_cells[cc.ravel()], Uc.reshape(-1, Uc.shape[-1])).reshape(T, -1)
        inbox = np.all((Uc >= -1e-12) & (Uc <= 1 + 1e-12), axis=-1)
        inside &= inbox
        for t in np.nonzero(inside.sum(1) >= 2)[0]:
            cs = np.nonzero(inside[t])[0]
            pts = Uc[t, cs]
            # two preimages that are really different points
            for a in range(len(cs)):
                for b in range(a + 1, len(cs)):
                    if np.linalg.norm(pts[a] - pts[b]) > 1e-7:
                        w = verified(f, cx.domain.points(pts[a]), cx.domain.points(pts[b]))
                        if w is not None:
                            return w
    return None


def _boundary_collisions_2d(cx):
    """Candidate self-intersections of the image of the box's boundary (a closed PL curve): yields pairs
    (u1, u2) of boundary parameter points whose images meet. None at all: the curve is simple."""
    segs = []  # (u_a, u_b, y_a, y_b)
    for i in range(cx.regions):
        V = cx.vertices[i, : cx.n_vertices[i]]
        Vn = np.roll(V, -1, axis=0)
        for a, b in zip(V, Vn):
            for ax in range(2):
                for val in (0.0, 1.0):
                    if abs(a[ax] - val) <= 1e-12 and abs(b[ax] - val) <= 1e-12:
                        ya = a @ cx.jacobian_u[i] + cx.offset[i]
                        yb = b @ cx.jacobian_u[i] + cx.offset[i]
                        segs.append((a, b, ya, yb))
    if not segs:
        return
    A = np.array([s[2] for s in segs])
    B = np.array([s[3] for s in segs])
    ua = np.array([s[0] for s in segs])
    ub = np.array([s[1] for s in segs])
    d = B - A
    scale = 1e-9 * (1 + np.abs(np.concatenate([A, B])).max())
    for i in range(len(segs)):
        # segment i against all j: solve A_i + s d_i = A_j + t d_j
        den = d[i, 0] * d[:, 1] - d[i, 1] * d[:, 0]
        w = A - A[i]
        s = (w[:, 0] * d[:, 1] - w[:, 1] * d[:, 0]) / np.where(den == 0, 1, den)
        t = (w[:, 0] * d[i, 1] - w[:, 1] * d[i, 0]) / np.where(den == 0, 1, den)
        hit = (den != 0) & (s > 1e-9) & (s < 1 - 1e-9) & (t > 1e-9) & (t < 1 - 1e-9)
        hit[i] = False
        # parameter points: shared end points of neighbouring segments are not collisions
        for j in np.nonzero(hit)[0]:
            p1 = ua[i] + s[j] * (ub[i] - ua[i])
            p2 = ua[j] + t[j] * (ub[j] - ua[j])
            if np.linalg.norm(p1 - p2) > 1e-9:
                yield p1, p2
        # collinear overlaps (den == 0): two boundary pieces mapped onto the same segment
        par = (den == 0) & (np.arange(len(segs)) != i)
        for j in np.nonzero(par)[0]:
            cr = w[j, 0] * d[i, 1] - w[j, 1] * d[i, 0]
            if abs(cr) > scale * (1 + np.linalg.norm(d[i])):
                continue
            L2 = d[i] @ d[i]
            if L2 == 0:
                continue
            t0, t1 = sorted([(A[j] - A[i]) @ d[i] / L2, (B[j] - A[i]) @ d[i] / L2])
            lo, hi = max(t0, 0.0), min(t1, 1.0)
            if hi - lo > 1e-9:
                m = 0.5 * (lo + hi)
                y = A[i] + m * d[i]
                tj = ((y - A[j]) @ d[j]) / (d[j] @ d[j])
                p1 = ua[i] + m * (ub[i] - ua[i])
                p2 = ua[j] + tj * (ub[j] - ua[j])
                if np.linalg.norm(p1 - p2) > 1e-9:
                    yield p1, p2


def _to_u(domain: Domain, X) -> np.ndarray:
    """Input points of a box -> its parameter coordinates u."""
    return (np.asarray(X, np.float64) - domain.origin) @ np.linalg.inv(domain.axes)


def _null_witness(f, cx, c: int, u0: np.ndarray):
    """Collision inside a cell with a singular Jacobian: u0 and u0 + eps v, v in the kernel (u coordinates),
    for step sizes from a tenth of the cell's size down."""
    J = np.swapaxes(cx.jacobian_u[c], -1, -2)
    v = np.linalg.svd(J)[2][-1]  # right singular vector of the smallest singular value
    size = np.ptp(_to_u(cx.domain, cx.cell_vertices(c)), axis=0).max()
    for eps in size * 10.0 ** -np.arange(1, 10):
        w = verified(f, cx.domain.points(u0), cx.domain.points(u0 + eps * v))
        if w is not None:
            return w
    return None


def _states(sn, X) -> np.ndarray:
    """Activation states of points X (m, n_in) in float64, (m, units) int."""
    return np.concatenate(sn.states(X), -1)


def _fold_witness(sn, f, a, b, samples: int = 65):
    """Walk the segment from a to b (input points in cells whose Jacobian determinants have opposite signs);
    at every crossing between two cells, if their determinants have opposite signs (a fold), take x1 just
    before the crossing and x2 = the next cell's affine inverse of f(x1), and check the collision."""
    ts = np.linspace(0.0, 1.0, samples)
    S = _states(sn, a + ts[:, None] * (b - a))
    for i in np.nonzero(np.any(S[1:] != S[:-1], axis=1))[0]:
        lo, hi, s_lo = ts[i], ts[i + 1], S[i]
        for _ in range(60):  # bisect to the first state change after ts[i]
            mid = 0.5 * (lo + hi)
            if np.array_equal(_states(sn, (a + mid * (b - a))[None])[0], s_lo):
                lo = mid
            else:
                hi = mid
        p_lo = a + lo * (b - a)
        # points well inside each side for the Jacobians (the crossing itself is a kink)
        q_lo, q_hi = a + (lo - 1e-9) * (b - a), a + (hi + 1e-9) * (b - a)
        J1, J2 = sn.jacobian(q_lo), sn.jacobian(q_hi)
        d1, d2 = np.linalg.det(J1), np.linalg.det(J2)
        if not d1 * d2 < 0:
            continue
        y_hi = f(q_hi[None])[0]
        for delta in 10.0 ** -np.arange(3, 10):
            x1 = p_lo - delta * (b - a)
            y1 = f(x1[None])[0]
            x2 = q_hi + np.linalg.solve(J2, y1 - y_hi)  # the other side's affine map, inverted
            w = verified(f, x1, x2)
            if w is not None:
                return w
    return None


def _fold_witnesses(sn, f, cx, dets, sing, pairs: int = 24):
    """Try fold witnesses between nearby cells of opposite determinant sign (interior points)."""
    X = cx.interior_points()
    pos = np.nonzero((dets > 0) & ~sing)[0]
    neg = np.nonzero((dets < 0) & ~sing)[0]
    if not len(pos) or not len(neg):
        return None
    D = np.linalg.norm(X[pos][:, None] - X[neg][None], axis=-1)
    for k in np.argsort(D, axis=None)[:pairs]:
        i, j = np.unravel_index(k, D.shape)
        w = _fold_witness(sn, f, X[pos[i]], X[neg[j]])
        if w is not None:
            return w
    return None


def pl_homeomorphism(net, params: Params | None = None, domain: Domain | None = None, *,
                     progress: bool | None = None) -> HomeoResult:
    """Exact homeomorphism check of a piecewise-linear network R^n -> R^n on a box (default [-1, 1]^n); see
    the module docstring. ``net``: an MLP spec with its ``params``, or a graph / StagedNet (params None).
    ``witness`` of a False verdict is a collision verified in float64."""
    if isinstance(net, MLP) and not net.activation.piecewise_linear:
        raise PiecewiseError(f"pl_homeomorphism needs a piecewise-linear activation, got {net.activation}")
    sn = as_staged(net, params)
    require_square_map(sn)
    f = forward64(sn)
    domain = domain if domain is not None else _box(-1.0, 1.0, sn.n_in)
    if domain.kind != "box":
        raise PiecewiseError("the homeomorphism check runs on a box")
    cx = enumerate_cells(net, params, domain, progress=progress) if isinstance(net, MLP) else \
        enumerate_cells(sn, None, domain, progress=progress)
    dets = _dets(cx)
    sing = _singular(cx, dets)
    pos, neg = int(np.sum((dets > 0) & ~sing)), int(np.sum((dets < 0) & ~sing))
    coherent = bool(not sing.any() and (pos == 0 or neg == 0))
    info = dict(coherently_oriented=coherent, cells=cx.regions, domain=domain.describe(),
                det_sign_counts={"positive": pos, "negative": neg, "zero": int(sing.sum())})
    no = lambda w, why: HomeoResult(False, why, witness=w, **info)  # noqa: E731
    if sing.any():
        U = _to_u(domain, cx.interior_points())
        for c in np.nonzero(sing)[0][:50]:
            w = _null_witness(f, cx, int(c), U[c])
            if w is not None:
                return no(w, f"cell {int(c)} has a singular Jacobian (det 0): the map collapses it")
    w = _find_collision(f, cx, dets)
    if w is not None:
        return no(w, "collision found: two preimages of one point"
                     + ("" if coherent else " (the map is not coherently oriented: it folds)"))
    if pos and neg:
        w = _fold_witnesses(sn, f, cx, dets, sing)
        if w is not None:
            return no(w, "collision found across a fold: neighbouring cells with Jacobian determinants of "
                         "opposite signs")
    if not coherent:
        why = ("Jacobian determinants of both signs" if pos and neg else "cells with a singular Jacobian")
        return HomeoResult(None, f"undecided: {why} rule out injectivity in exact arithmetic, but no collision "
                                 "passed the float64 check (the map may be too ill-conditioned)",
                           witness={"layer": None, "reason": why}, **info)
    d = domain.dim
    if d == 1:
        return HomeoResult(True, "proven on the interval: every piece has a slope of the same sign (strictly "
                                 "monotone)", **info)
    if d == 2:
        candidates = 0
        for u1, u2 in _boundary_collisions_2d(cx):
            candidates += 1
            w = verified(f, domain.points(u1), domain.points(u2))
            if w is not None:
                return no(w, "collision on the box's boundary (its image is not a simple curve)")
        if candidates:
            return HomeoResult(None, f"undecided: the image of the box's boundary seems to cross itself "
                                     f"({candidates} candidate points) but no collision passed the float64 check",
                               witness={"layer": None, "reason": "unverified boundary self-intersection"}, **info)
        return HomeoResult(True, "proven on the box: coherently oriented and injective on the box's boundary, so "
                                 "the degree is 1 and every point of the image has exactly one preimage (what "
                                 "happens outside the box is not decided)", **info)
    return HomeoResult(True, "sampled on the box, not proven: coherently oriented and every sampled target point "
                             "near every cell's boundary has exactly one preimage", **info)


def auto_box(net, params: Params | None = None, *, max_rounds: int = 8) -> tuple[Domain, bool]:
    """A box [-R, R]^n (R = 1, 4, 16, ...) whose inner half contains every vertex of the cell complex that is
    not on the box's boundary, so every bounded feature of the arrangement lies well inside. Returns
    (box, found): ``found`` is False when even the last box tried (R = 4^(max_rounds - 1)) has vertices
    outside its inner half; that box is returned and the caller must say so."""
    if not isinstance(net, MLP):
        net, params = as_staged(net, params), None
    R = 1.0
    for _ in range(max_rounds):
        dom = _box(-R, R, net.n_in)
        cx = enumerate_cells(net, params, dom, progress=False)
        X = np.concatenate([cx.cell_vertices(i) for i in range(cx.regions)])
        U = _to_u(dom, X)
        inner = np.all((U > 1e-9) & (U < 1 - 1e-9), axis=1)
        if not inner.any() or np.abs(X[inner]).max() <= R / 2:
            return dom, True
        R *= 4.0
    return dom, False
