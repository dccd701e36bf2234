"""Is a network map R^n -> R^n a homeomorphism? Layer theorem, exact checks for piecewise-linear maps with
collision witnesses.

Two routes (see shared/SCIENCE.md, "Invertibility and homeomorphism"):

* :func:`check_layers` — the layer theorem: if every hidden layer ``x -> s(W x + b)`` has a square,
  nonsingular W and a continuous, strictly monotone activation, and the output layer is square and
  nonsingular, the network is a homeomorphism onto its image (onto R^n for leaky ReLU). A failing layer
  does **not** prove the network is not a homeomorphism (a ReLU net with a wide hidden layer can be one).
* :func:`pl_homeomorphism` — exact, for piecewise-linear activations on a box: enumerate the cells, take
  each cell's Jacobian determinant (float64), and

  - a cell with det J = 0 gives a collision inside it (x and x + eps v, v in the kernel);
  - a map that is not coherently oriented (dets of both signs) or has two preimages of one target point
    gives a collision found by solving every cell's affine system for target points near cell
    boundaries (every witness is re-checked by evaluating the network in float64);
  - a coherently oriented map that is injective on the box's boundary has degree 1 inside: it is a
    homeomorphism of the box onto its image (proven for 1D and 2D boxes; for 3D and up the boundary test
    is replaced by counting preimages of sample targets, which is reported as sampled, not proven).

Note the pitfall: coherent orientation does not imply injectivity for n >= 2 (the map that doubles angles
has det > 0 on every cell and two preimages of every generic point).
"""
from __future__ import annotations

import numpy as np

from .errors import PiecewiseError
from .nets import MLP, Params, check_params
from .regions import box as _box
from .regions import enumerate_cells
from .regions.domain import Domain

DET_RTOL = 1e-12  # |det J| <= DET_RTOL * prod of row norms counts as singular
WITNESS_RTOL = 1e-9  # |f(x1) - f(x2)| <= WITNESS_RTOL * scale for a verified collision


def check_layers(net: MLP, params: Params) -> dict:
    """The layer theorem, layer by layer (float64). Returns ``{"certified": bool, "layers": [...],
    "first_failure": None | {"layer": i, "reason": str}}``; each layer entry has shape, det, sigma_min,
    condition number, and whether it passes."""
    check_params(net, params)
    act = net.activation
    layers, failure = [], None
    for i, (W, b) in enumerate(params):
        W = np.asarray(W, np.float64)
        hidden = i < len(params) - 1
        entry = {"layer": i, "shape": list(W.shape), "kind": "hidden" if hidden else "output"}
        reason = None
        if W.ndim == 3:
            reason = f"maxout layer {i} is not an elementwise activation of a square linear map"
        elif W.shape[0] != W.shape[1]:
            reason = f"layer {i} is not square ({W.shape[0]} -> {W.shape[1]})"
        else:
            s = np.linalg.svd(W, compute_uv=False)
            smin, smax = float(s.min()), float(s.max())
            entry.update({"det": float(np.linalg.det(W)), "sigma_min": smin, "sigma_max": smax,
                          "condition": float(smax / smin) if smin > 0 else float("inf")})
            if smin <= smax * max(W.shape) * np.finfo(np.float64).eps:
                reason = f"layer {i} is numerically singular (sigma_min {smin:.3g}, sigma_max {smax:.3g})"
            elif hidden and not (act.continuous and act.strictly_monotone):
                reason = f"activation {act} of layer {i} is not strictly monotone"
        entry["passes"] = reason is None
        if reason is not None:
            entry["reason"] = reason
            failure = failure or {"layer": i, "reason": reason}
        layers.append(entry)
    return {"certified": failure is None, "layers": layers, "first_failure": failure}


def _dets(cx) -> np.ndarray:
    J = np.swapaxes(cx.jacobian_u, -1, -2)  # (C, n_out, d): derivative along the domain's axes
    return np.linalg.det(J) if J.shape[-1] > 1 else J[:, 0, 0]


def _singular(cx, dets) -> np.ndarray:
    J = np.swapaxes(cx.jacobian_u, -1, -2)
    scale = np.prod(np.linalg.norm(J, axis=-1), axis=-1)
    return np.abs(dets) <= DET_RTOL * np.maximum(scale, 1e-300)


def _apply64(net, params, X):
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        p = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a, np.float64)), params)
        return np.asarray(net.apply(p, jnp.asarray(np.asarray(X, np.float64))))


def _verify(net, params, x1, x2) -> bool:
    y = _apply64(net, params, np.stack([x1, x2]))
    scale = 1.0 + np.abs(y).max()
    return bool(np.linalg.norm(x1 - x2) > 1e-9 * (1 + np.abs(x1).max())
                and np.abs(y[0] - y[1]).max() <= WITNESS_RTOL * scale)


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
    out = np.empty(len(cells), bool)
    for i, (c, u) in enumerate(zip(cells, U)):
        A, b = cx.halfspaces[c]
        out[i] = np.all(A @ u <= b + tol * (1 + np.abs(b)))
    return out


def _targets(cx, per_cell: int = 6, seed: int = 0):
    """Parameter points inside every cell, close to its boundary (near vertices and edge midpoints) and at
    its centre: a fold or a second sheet shows up as a second preimage of their images."""
    rng = np.random.default_rng(seed)
    pts = []
    if hasattr(cx, "n_vertices"):
        for i in range(cx.regions):
            V = cx.vertices[i, : cx.n_vertices[i]]
            c = V.mean(0)
            mids = (V + np.roll(V, -1, axis=0)) / 2
            for P in (V, mids):
                pts.append(c + (1 - 1e-3) * (P - c))
            pts.append(c[None])
    else:
        for X in cx.vertices_u:
            c = X.mean(0)
            pick = X[rng.choice(len(X), size=min(per_cell, len(X)), replace=False)]
            pts.append(c + (1 - 1e-3) * (pick - c))
            pts.append(c[None])
    return np.concatenate(pts)


def _find_collision(net, params, cx, dets, max_targets: int = 20000):
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
        Yb = _apply64(net, params, Xb)
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
                        x1, x2 = cx.domain.points(pts[a]), cx.domain.points(pts[b])
                        if _verify(net, params, x1, x2):
                            return {"x1": x1.tolist(), "x2": x2.tolist()}
    return None


def _null_witness(net, params, cx, c):
    """Collision inside a cell with a singular Jacobian: x and x + eps v, v in the kernel."""
    J = np.swapaxes(cx.jacobian_u[c], -1, -2)
    v = np.linalg.svd(J)[2][-1]  # right singular vector of the smallest singular value (u coordinates)
    u0 = (cx.vertices[c, : cx.n_vertices[c]].mean(0) if hasattr(cx, "n_vertices") else cx.vertices_u[c].mean(0))
    for eps in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6):
        u1 = u0 + eps * v
        if _cell_contains(cx, np.array([c]), u1[None])[0]:
            x1, x2 = cx.domain.points(u0), cx.domain.points(u1)
            if _verify(net, params, x1, x2):
                return {"x1": x1.tolist(), "x2": x2.tolist()}
    return None


def _boundary_injective_2d(cx):
    """Whether the image of the box's boundary (a closed PL curve) is simple. Returns (True, None) or
    (False, (u1, u2)) with two boundary parameter points of equal image."""
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
        return True, None
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
                return False, (p1, p2)
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
                    return False, (p1, p2)
    return True, None


def pl_homeomorphism(net: MLP, params: Params, domain: Domain | None = None, *, progress: bool | None = None) -> dict:
    """Exact homeomorphism check of a piecewise-linear network R^n -> R^n on a box (default [-1, 1]^n).

    Returns a JSON-ready dict: ``homeomorphism`` (bool), ``certificate`` (how it was decided, and whether it
    is proven or sampled), ``coherently_oriented`` (bool), ``witness`` (for False: ``{"x1", "x2"}`` with
    f(x1) = f(x2), verified in float64), ``cells``, ``det_sign_counts``, ``domain``.
    """
    act = net.activation
    if not act.piecewise_linear:
        raise PiecewiseError(f"pl_homeomorphism needs a piecewise-linear activation, got {act}")
    if net.n_in != net.n_out:
        raise PiecewiseError(f"a homeomorphism R^n -> R^n needs n_in = n_out, got {net.n_in} -> {net.n_out}")
    domain = domain if domain is not None else _box(-1.0, 1.0, net.n_in)
    if domain.kind != "box":
        raise PiecewiseError("the homeomorphism check runs on a box")
    cx = enumerate_cells(net, params, domain, progress=progress)
    dets = _dets(cx)
    sing = _singular(cx, dets)
    pos, neg = int(np.sum((dets > 0) & ~sing)), int(np.sum((dets < 0) & ~sing))
    coherent = bool(not sing.any() and (pos == 0 or neg == 0))
    res = {"cells": cx.regions, "det_sign_counts": {"positive": pos, "negative": neg, "zero": int(sing.sum())},
           "coherently_oriented": coherent, "domain": domain.describe()}
    if sing.any():
        for c in np.nonzero(sing)[0][:20]:
            w = _null_witness(net, params, cx, c)
            if w is not None:
                return {**res, "homeomorphism": False, "witness": w,
                        "certificate": f"cell {int(c)} has a singular Jacobian (det 0): the map collapses it"}
    witness = _find_collision(net, params, cx, dets)
    if witness is not None:
        why = "two preimages of one point" + ("" if coherent else " (the map is not coherently oriented: it folds)")
        return {**res, "homeomorphism": False, "witness": witness, "certificate": f"collision found: {why}"}
    if not coherent:
        return {**res, "homeomorphism": False,
                "witness": {"layer": None, "reason": "Jacobian determinants of both signs (or zero) on the box"},
                "certificate": "not coherently oriented (Jacobian determinants of both signs or zero), which rules "
                               "out injectivity; no explicit collision was found inside the box"}
    d = domain.dim
    if d == 1:
        return {**res, "homeomorphism": True, "witness": None,
                "certificate": "proven on the interval: every piece has a slope of the same sign (strictly monotone)"}
    if d == 2:
        ok, pair = _boundary_injective_2d(cx)
        if ok:
            return {**res, "homeomorphism": True, "witness": None,
                    "certificate": "proven on the box: coherently oriented and injective on the box's boundary, so "
                                   "the degree is 1 and every point of the image has exactly one preimage (what "
                                   "happens outside the box is not decided)"}
        x1, x2 = domain.points(pair[0]), domain.points(pair[1])
        return {**res, "homeomorphism": False, "witness": {"x1": x1.tolist(), "x2": x2.tolist()},
                "certificate": "collision on the box's boundary (its image is not a simple curve)"}
    return {**res, "homeomorphism": True, "witness": None,
            "certificate": "sampled on the box, not proven: coherently oriented and every sampled target point "
                           "near every cell's boundary has exactly one preimage"}


def homeomorphism(net: MLP, params: Params, domain: Domain | None = None, *, progress: bool | None = None) -> dict:
    """The CLI's decision: the exact PL check when the activation is piecewise linear; otherwise the layer
    theorem (a certificate, or an undecided answer naming the first layer where it does not apply)."""
    if net.n_in != net.n_out:
        raise PiecewiseError(f"a homeomorphism R^n -> R^n needs n_in = n_out, got {net.n_in} -> {net.n_out}")
    layers = check_layers(net, params)
    if net.activation.piecewise_linear:
        if layers["certified"]:
            return {"homeomorphism": True, "coherently_oriented": True, "witness": None,
                    "certificate": "layerwise: every layer is a homeomorphism (square nonsingular weights, strictly "
                                   "monotone activation), so is their composition, on all of R^n",
                    "layers": layers["layers"]}
        out = pl_homeomorphism(net, params, domain, progress=progress)
        out["layers"] = layers["layers"]
        return out
    if layers["certified"]:
        return {"homeomorphism": True, "coherently_oriented": None, "witness": None,
                "certificate": "layerwise: every layer is a homeomorphism onto its image (square nonsingular "
                               "weights, continuous strictly monotone activation), so is their composition",
                "layers": layers["layers"]}
    return {"homeomorphism": None, "coherently_oriented": None, "witness": layers["first_failure"],
            "certificate": "undecided: the layer theorem does not apply ("
                           + layers["first_failure"]["reason"] + ") and smooth maps have no exact check here",
            "layers": layers["layers"]}


def auto_box(net: MLP, params: Params, *, max_doublings: int = 8) -> Domain:
    """A box [-R, R]^n whose inner half contains every vertex of the cell complex that is not on the box's
    boundary (so every bounded feature of the arrangement lies well inside): R = 1, 4, 16, ... ."""
    R = 1.0
    for _ in range(max_doublings):
        dom = _box(-R, R, net.n_in)
        cx = enumerate_cells(net, params, dom, progress=False)
        if hasattr(cx, "n_vertices"):
            valid = np.arange(cx.vertices.shape[1])[None] < cx.n_vertices[:, None]
            U = cx.vertices[valid]
        else:
            U = np.concatenate(cx.vertices_u)
        inner = np.all((U > 1e-9) & (U < 1 - 1e-9), axis=1)
        X = dom.points(U[inner])
        if len(X) == 0 or np.abs(X).max() <= R / 2:
            return dom
        R *= 4.0
    return dom


# -- ReLU layer injectivity (Puthawala et al., JMLR 2022) ---------------------------------------------------
def relu_layer_injective(W, b=None, *, tol: float = 1e-9) -> dict:
    """Exact decision: is ``x -> relu(x @ W + b)`` (W (n, m), b (m,)) injective on R^n?

    Rows w_j are the columns of W. Not injective iff rank W < n, or some n - 1 independent rows span a
    hyperplane H for which ``{x : w_j . x + b_j <= -t for every row w_j not in H}`` is feasible with t > 0
    (then x and x + eps v, v normal to H, collide: the rows in H do not see v, the others stay off).
    One LP per hyperplane spanned by rows (scipy HiGHS), at most C(m, n - 1). Returns ``{"injective",
    "witness": {"x1", "x2"} | None, "lps": int}``; every witness is checked by evaluating the layer.
    """
    from itertools import combinations

    from scipy.optimize import linprog

    W = np.asarray(W, np.float64)
    n, m = W.shape
    b = np.zeros(m) if b is None else np.asarray(b, np.float64)
    if b.shape != (m,):
        raise PiecewiseError(f"b must have shape ({m},), got {b.shape}")
    layer = lambda x: np.maximum(x @ W + b, 0.0)  # noqa: E731

    def checked(x, v):
        scale = 1.0 + np.abs(W).sum() * (1 + np.abs(x).max()) + np.abs(b).max()
        for eps in (1.0, 1e-1, 1e-2, 1e-3, 1e-4):
            x2 = x + eps * v
            if np.abs(layer(x) - layer(x2)).max() <= 1e-10 * scale:
                return {"x1": x.tolist(), "x2": x2.tolist()}
        return None

    rank = np.linalg.matrix_rank(W, tol=tol * max(1.0, np.abs(W).max()))
    if rank < n:
        v = np.linalg.svd(W.T)[2][-1]  # W^T v = 0: every x moves along v unseen
        return {"injective": False, "witness": checked(np.zeros(n), v), "lps": 0,
                "reason": f"rank W = {rank} < n = {n}"}
    rows = W.T / np.linalg.norm(W.T, axis=1, keepdims=True).clip(1e-300)
    seen, lps = set(), 0
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
            return {"injective": False, "witness": checked(np.zeros(n), v), "lps": lps,
                    "reason": "every row lies in one hyperplane"}
        norms = np.linalg.norm(W.T[out], axis=1)
        res = linprog(np.r_[np.zeros(n), -1.0], A_ub=np.c_[W.T[out], norms], b_ub=-b[out],
                      bounds=[(None, None)] * n + [(None, 1.0)], method="highs")
        if res.status == 0 and -res.fun > tol:
            x = res.x[:n]
            w = checked(x, v)
            if w is not None:
                return {"injective": False, "witness": w, "lps": lps,
                        "reason": f"the rows {list(key)} span a hyperplane and all other units can be off"}
    return {"injective": True, "witness": None, "lps": lps,
            "reason": "for every hyperplane spanned by rows, the other units cannot all be off"}


def relu_preimage_is_point(W, b, x0, *, tol: float = 1e-9) -> bool:
    """Per-point test: is the preimage of relu(x0 @ W + b) the single point x0? (The active rows must span
    R^n, or the inactive units tight at x0 must block every direction of their null space.)"""
    from scipy.linalg import null_space
    from scipy.optimize import linprog

    W = np.asarray(W, np.float64)
    b = np.asarray(b, np.float64)
    z = np.asarray(x0, np.float64) @ W + b
    scale = tol * (1 + np.abs(W).sum(0) * (1 + np.abs(x0).max()) + np.abs(b))
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


# -- Jacobian fields, log-determinants, inverses ---------------------------------------------------------------
def _act64(act, z):
    """The activation applied in float64 (JAX truncates to float32 unless x64 is on)."""
    import jax

    with jax.enable_x64(True):
        return np.asarray(act(jax.numpy.asarray(z)))


def _log_abs_derivative(act, z):
    """log |s'(z)| of an elementwise activation, stable for large |z| (float64 NumPy)."""
    softplus = lambda t: np.logaddexp(0.0, t)  # noqa: E731
    if act.name == "tanh":  # log(1 - tanh^2 z) = 2 (log 2 - |z| - softplus(-2|z|))
        a = np.abs(z)
        return 2.0 * (np.log(2.0) - a - softplus(-2.0 * a))
    if act.name == "sigmoid":  # log s(z) + log s(-z)
        return -softplus(-z) - softplus(z)
    if act.name == "softplus":  # log sigmoid(z)
        return -softplus(-z)
    if act.name == "leaky_relu":
        return np.where(z > 0, 0.0, np.log(abs(act.slope)) if act.slope != 0 else -np.inf)
    raise PiecewiseError(f"no elementwise log-derivative for {act}")


def log_abs_det(net: MLP, params: Params, x) -> np.ndarray:
    """log |det J(x)| of a network whose layers are all square (float64, analytic per layer):
    ``sum_l log|det W_l| + sum_j log|s'(z_lj)|``. Finite where a float32 ``slogdet`` of a saturated tanh net
    returns -inf. x: (m, n) -> (m,). Evaluate off the kinks of leaky ReLU (the derivative there is one-sided)."""
    x = np.atleast_2d(np.asarray(x, np.float64))
    out = np.zeros(len(x))
    h = x
    for i, (W, b) in enumerate(params):
        W, b = np.asarray(W, np.float64), np.asarray(b, np.float64)
        if W.ndim != 2 or W.shape[0] != W.shape[1]:
            raise PiecewiseError(f"log_abs_det needs square layers; layer {i} has shape {W.shape}")
        out += np.linalg.slogdet(W)[1]
        z = h @ W + b
        if i < len(params) - 1:
            out += _log_abs_derivative(net.activation, z).sum(-1)
            h = _act64(net.activation, z)
    return out


def _inverse_activation(act, h):
    if act.name == "tanh":
        if np.any(np.abs(h) >= 1):
            raise PiecewiseError("point outside the image of tanh (|h| >= 1): no preimage")
        return np.arctanh(h)
    if act.name == "sigmoid":
        if np.any((h <= 0) | (h >= 1)):
            raise PiecewiseError("point outside the image of sigmoid: no preimage")
        return np.log(h) - np.log1p(-h)
    if act.name == "softplus":
        if np.any(h <= 0):
            raise PiecewiseError("point outside the image of softplus (h <= 0): no preimage")
        return h + np.log(-np.expm1(-h))
    if act.name == "leaky_relu":
        return np.where(h > 0, h, h / act.slope)
    raise PiecewiseError(f"{act} is not invertible elementwise")


def invert_layerwise(net: MLP, params: Params, y) -> np.ndarray:
    """Exact inverse of a layerwise-certified network (:func:`check_layers`): undo the output layer, then
    each hidden layer (inverse activation, then the linear map), in float64. y: (m, n) -> x (m, n)."""
    rep = check_layers(net, params)
    if not rep["certified"]:
        raise PiecewiseError(f"not layerwise invertible: {rep['first_failure']['reason']}")
    h = np.atleast_2d(np.asarray(y, np.float64))
    for i, (W, b) in enumerate(reversed(params)):
        W, b = np.asarray(W, np.float64), np.asarray(b, np.float64)
        if i > 0:
            h = _inverse_activation(net.activation, h)
        h = np.linalg.solve(W.T, (h - b).T).T
    return h


def invert_pl(net: MLP, params: Params, y, domain: Domain | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Preimages of points y under a piecewise-linear map R^n -> R^n on a box: each cell's affine system is
    solved and the solution kept if it lies in that cell. Returns (x (m, n), found (m,) bool); where several
    cells give different solutions the first is returned (the map is then not injective)."""
    domain = domain if domain is not None else _box(-1.0, 1.0, net.n_in)
    cx = enumerate_cells(net, params, domain, progress=False)
    J = np.swapaxes(cx.jacobian_u, -1, -2)
    ok = ~_singular(cx, _dets(cx))
    cells = np.nonzero(ok)[0]
    Jinv = np.linalg.inv(J[cells])
    y = np.atleast_2d(np.asarray(y, np.float64))
    x = np.full((len(y), net.n_in), np.nan)
    found = np.zeros(len(y), bool)
    for t, yt in enumerate(y):
        U = np.einsum("cdn,cn->cd", Jinv, yt[None] - cx.offset[cells])
        inside = _cell_contains(cx, cells, U) & np.all((U >= -1e-12) & (U <= 1 + 1e-12), axis=1)
        if inside.any():
            x[t] = cx.domain.points(U[np.argmax(inside)])
            found[t] = True
    return x, found


def jacobian_field(net: MLP, params: Params, domain: Domain, resolution: int = 128) -> dict:
    """Jacobian statistics on a grid of a 2D box or plane (float64): ``det``, ``sign``, ``sigma_min``,
    ``condition`` (arrays (r, r)), and ``singular`` (sigma_min <= sigma_max * max(m, n) * eps). For
    piecewise-linear nets grid points on a kink are left out (NaN), never differentiated there."""
    import jax
    import jax.numpy as jnp

    from .patterns import classify
    from .regions.grid import grid_points

    if net.n_in != net.n_out:
        raise PiecewiseError("jacobian_field needs n_in = n_out")
    X = grid_points(domain, resolution).reshape(-1, net.n_in)
    with jax.enable_x64(True):
        p = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a, np.float64)), params)
        J = np.asarray(jax.vmap(jax.jacfwd(lambda x: net.apply(p, x)))(jnp.asarray(X)))
    s = np.linalg.svd(J, compute_uv=False)
    det = np.linalg.det(J)
    if net.activation.piecewise_linear:
        _, valid = classify(net, params, X, np.eye(net.n_in))
        det[~valid] = np.nan
        s[~valid] = np.nan
    shape = (resolution, resolution)
    smin, smax = s[:, -1], s[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = np.where(smin > 0, smax / np.where(smin > 0, smin, 1.0), np.inf)
    cond[np.isnan(smin)] = np.nan
    return {"det": det.reshape(shape), "sign": np.sign(det).reshape(shape), "sigma_min": smin.reshape(shape),
            "condition": cond.reshape(shape),
            "singular": (smin <= smax * net.n_in * np.finfo(np.float64).eps).reshape(shape), "domain": domain}


def invert_newton(net: MLP, params: Params, y, x0=None, *, steps: int = 50, tol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Preimages of y under a smooth (or PL, off the kinks) map R^n -> R^n by Newton's method in float64,
    x <- x - J(x)^{-1} (f(x) - y), from x0 (default 0). Returns (x, residual |f(x) - y|_inf); a large residual
    means no convergence (no preimage nearby, or a singular Jacobian on the way)."""
    import jax
    import jax.numpy as jnp

    y = np.atleast_2d(np.asarray(y, np.float64))
    x = np.zeros_like(y) if x0 is None else np.atleast_2d(np.asarray(x0, np.float64)).copy()
    with jax.enable_x64(True):
        p = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a, np.float64)), params)
        f = jax.jit(lambda v: net.apply(p, v))
        jac = jax.jit(jax.vmap(jax.jacfwd(lambda v: net.apply(p, v))))
        for _ in range(steps):
            r = np.asarray(f(jnp.asarray(x))) - y
            if np.abs(r).max() <= tol * (1 + np.abs(y).max()):
                break
            J = np.asarray(jac(jnp.asarray(x)))
            try:
                x = x - np.linalg.solve(J, r[..., None])[..., 0]
            except np.linalg.LinAlgError:
                break
        res = np.abs(np.asarray(f(jnp.asarray(x))) - y).max(-1)
    return x, res


def cell_jacobians(net: MLP, params: Params, domain: Domain) -> dict:
    """Per exact cell (float64): ``det``, ``sigma_min``, ``condition`` of the network's Jacobian with respect
    to the input (boxes), plus the cells' ``interior_points``. Exact: one affine map per cell, no kinks."""
    if net.n_in != net.n_out:
        raise PiecewiseError("cell_jacobians needs n_in = n_out")
    if domain.kind != "box":
        raise PiecewiseError("cell_jacobians works on boxes (the input Jacobian needs the full input space)")
    cx = enumerate_cells(net, params, domain, progress=False)
    J = cx.jacobian()  # (C, n_out, n_in)
    s = np.linalg.svd(J, compute_uv=False)
    with np.errstate(divide="ignore"):
        cond = np.where(s[:, -1] > 0, s[:, 0] / np.where(s[:, -1] > 0, s[:, -1], 1.0), np.inf)
    return {"det": np.linalg.det(J), "sigma_min": s[:, -1], "condition": cond, "jacobian": J,
            "interior_points": cx.interior_points(), "cells": cx.regions}
