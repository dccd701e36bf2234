"""Exact homeomorphism check of a piecewise-linear map R^n -> R^n, on a box or on the whole input space.

Enumerate the cells, take the sign of each cell's Jacobian determinant (exact: :func:`.exact.det_signs`), and

- a cell with det J = 0 gives a collision inside it (x and x + eps v, v in the kernel);
- two preimages of one target point (targets near every cell's boundary; every cell's affine system solved)
  give a collision; this finds second sheets of coherently oriented maps too;
- a map that is not coherently oriented (dets of both signs) folds somewhere: walking from a cell of one
  sign to a cell of the other, the crossing where the sign flips gives x1 on one side and x2 = the other
  cell's affine inverse of f(x1) on the other;
- **whole input space** (``domain="whole"``): a box is chosen that provably contains every vertex of the
  cell complex of R^n (:func:`auto_box`); if the first stage's weights have rank n every cell of R^n is
  pointed, so it has a vertex and meets the box: the box's cells are all the cells of R^n. A coherently
  oriented PL map of R^n has a degree equal to the number of preimages of any generic point; exactly one
  (counted exactly over every cell, each taken as the whole polyhedron of its pattern) means degree 1: the map
  is a homeomorphism of R^n (SCIENCE.md, PL maps). Two or more give an exact collision;
- **on a box**: a coherently oriented map that is injective on the box's boundary has degree 1 inside: it
  is a homeomorphism of the box onto its image (proven for 1D and 2D boxes -- the image of the boundary is
  a simple closed curve: no two pieces that are not neighbours along the boundary meet, not even at one point,
  and no two neighbours fold back onto each other; for 3D and up the boundary test is replaced by counting
  preimages of sample targets, which is reported as sampled, not proven).

Every "no" carries a collision checked in exact arithmetic (:meth:`.exact.ExactPL.collision`: f(x1) = f(x2*)
exactly, x2 its float64 rounding); when theory says "no" but no collision passes that check, the answer is None
(undecided) with the reason. No decision uses an absolute tolerance: tolerances are in the box's own
coordinates u in [0, 1]^d or relative to the image's size, so rescaling the inputs (W0 / s on a box s times
larger) or multiplying the output by c != 0 changes no verdict. Coherent orientation does not imply
injectivity for n >= 2 (the map that doubles angles has det > 0 on every cell and two preimages of every
generic point).
"""
from __future__ import annotations

import numpy as np

from ..errors import PiecewiseError
from ..nets import MLP, Params
from ..numerics import U
from ..regions import box as _box
from ..regions import enumerate_cells
from ..regions.domain import Domain
from ..staged import Stage, StagedNet, as_staged
from .exact import ExactPL, centred_to_input, count_preimages, det_signs
from .layers import require_square_map
from .results import HomeoResult, describe_box
from .witness import forward64

DET_RTOL = 1e-12  # float64 screening only (inverses): |det J| <= DET_RTOL * prod of column norms is "singular"
WHOLE = "whole"  # the ``domain`` that asks for the whole input space


def _dets(cx) -> np.ndarray:
    J = np.swapaxes(cx.jacobian_u, -1, -2)  # (C, n_out, d): derivative along the domain's axes
    return np.linalg.det(J) if J.shape[-1] > 1 else J[:, 0, 0]


def _singular(cx, dets) -> np.ndarray:
    """Float64 screening of singular cells (relative: invariant under rescaling inputs and outputs)."""
    J = np.swapaxes(cx.jacobian_u, -1, -2)
    scale = np.prod(np.linalg.norm(J, axis=-1), axis=-1)
    return np.abs(dets) <= DET_RTOL * scale


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


def _find_collision(f, confirm, cx, ok, max_targets: int = 20000):
    """Solve every cell's affine system for target points; two preimages in different cells = a collision
    (confirmed exactly). ``ok`` (C,) bool: the cells with nonsingular Jacobians."""
    U_ = _targets(cx)
    if len(U_) > max_targets:
        U_ = U_[np.random.default_rng(1).choice(len(U_), max_targets, replace=False)]
    J = np.swapaxes(cx.jacobian_u, -1, -2)  # (C, n, d) with d = n
    out_cells = np.nonzero(ok)[0]
    if not len(out_cells):
        return None
    Jinv = np.linalg.inv(J[out_cells])
    for start in range(0, len(U_), 512):
        Ub = U_[start:start + 512]
        Yb = f(cx.domain.points(Ub))  # the targets' images: the network (exact map) at the points
        Uc = np.einsum("cdn,tcn->tcd", Jinv, Yb[:, None, :] - cx.offset[out_cells][None])
        T = len(Ub)
        _, cc = np.meshgrid(np.arange(T), np.arange(len(out_cells)), indexing="ij")
        inside = _cell_contains(cx, out_cells[cc.ravel()], Uc.reshape(-1, Uc.shape[-1])).reshape(T, -1)
        inside &= np.all((Uc >= -1e-12) & (Uc <= 1 + 1e-12), axis=-1)
        for t in np.nonzero(inside.sum(1) >= 2)[0]:
            cs = np.nonzero(inside[t])[0]
            pts = Uc[t, cs]
            for a in range(len(cs)):  # two preimages that are really different points
                for b in range(a + 1, len(cs)):
                    if np.linalg.norm(pts[a] - pts[b]) > 1e-7:
                        w = confirm(cx.domain.points(pts[a]), cx.domain.points(pts[b]))
                        if w is not None:
                            return w
    return None


# -- the image of a 2-D box's boundary --------------------------------------------------------------------
def _boundary_segments_2d(cx):
    """Pieces of the box's boundary (u_a, u_b (S, 2)) with their images (y_a, y_b (S, 2)) and a bound on the
    images' rounding errors (max-norm)."""
    ua, ub, ya, yb = [], [], [], []
    err = 0.0
    for i in range(cx.regions):
        V = cx.vertices_c[i, : cx.n_vertices[i]]
        Vn = np.roll(V, -1, axis=0)
        on = np.any((np.abs(V) == 0.5) & (V == Vn), axis=1)  # both ends on the same side of the box
        if not on.any():
            continue
        J, off = cx.jacobian_u[i], cx.offset_c[i]
        for a, b in zip(V[on], Vn[on]):
            ua.append(a + 0.5)
            ub.append(b + 0.5)
            ya.append(a @ J + off)
            yb.append(b @ J + off)
        mag = np.abs(off) + 0.5 * np.abs(J).sum(0)
        e = 8 * U * mag + (cx.offset_err if cx.offset_err is not None else 0.0) \
            + 0.5 * (cx.jacobian_err if cx.jacobian_err is not None else 0.0)
        err = max(err, float(np.max(e)))
    ua, ub, ya, yb = (np.array(v, np.float64).reshape(-1, 2) for v in (ua, ub, ya, yb))
    return ua, ub, ya, yb, err


def _cross(a, b):
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _point_segment(P, A, B):
    """Distance from points P to segments AB (broadcasting (..., 2)) and the segment parameter t in [0, 1]."""
    d = B - A
    L2 = np.einsum("...i,...i->...", d, d)
    t = np.clip(np.einsum("...i,...i->...", P - A, d) / np.where(L2 > 0, L2, 1.0), 0.0, 1.0)
    Q = A + t[..., None] * d
    return np.linalg.norm(P - Q, axis=-1), t


def _boundary_candidates_2d(cx):
    """Candidate self-contacts of the image of the box's boundary (a closed PL curve): yields pairs (u1, u2) of
    distinct boundary parameter points whose images (nearly) meet. None at all: the curve is simple.

    Two pieces that are not neighbours along the boundary must stay apart -- crossing, touching at one point
    (a vertex of one on the other, or two vertices together) and overlapping all count; two neighbours (one
    common end point) must not fold back along one line; a piece must not collapse to a point. "Apart" is
    relative: farther than 1e-9 of the image's extent plus the images' rounding error bound."""
    ua, ub, A, B, err = _boundary_segments_2d(cx)
    S = len(ua)
    if S == 0:
        return
    Y = np.concatenate([A, B])
    ext = float(np.ptp(Y, axis=0).max())
    tol = 1e-9 * ext + 4.0 * err
    d = B - A
    lens = np.linalg.norm(d, axis=1)
    for i in np.nonzero(lens <= tol)[0]:  # a piece of positive length mapped to (nearly) one point
        yield ua[i], ub[i]
    utol = 1e-12
    for i in range(S):
        j = np.arange(i + 1, S)
        if not len(j):
            break
        share = np.zeros((len(j), 2, 2), bool)  # share[:, p, q]: end p of i (a, b) is end q of j
        for p, Pi in enumerate((ua[i], ub[i])):
            for q, Pj in enumerate((ua[j], ub[j])):
                share[:, p, q] = np.abs(Pj - Pi).max(-1) <= utol
        nshared = share.sum((1, 2))
        # pieces that are not neighbours: any contact
        far = j[nshared == 0]
        if len(far):
            o1 = _cross(d[i], A[far] - A[i])
            o2 = _cross(d[i], B[far] - A[i])
            o3 = _cross(d[far], A[i] - A[far])
            o4 = _cross(d[far], B[i] - A[far])
            proper = (o1 * o2 < 0) & (o3 * o4 < 0)
            cands = [_point_segment(A[far], A[i], B[i]), _point_segment(B[far], A[i], B[i]),
                     _point_segment(A[i], A[far], B[far]), _point_segment(B[i], A[far], B[far])]
            dist = np.stack([c[0] for c in cands], 1)
            which = dist.argmin(1)
            hit = proper | (dist.min(1) <= tol)
            for r in np.nonzero(hit)[0]:
                jj = far[r]
                if proper[r]:
                    den = _cross(d[i], d[jj])
                    w = A[jj] - A[i]
                    s, t = _cross(w, d[jj]) / den, _cross(w, d[i]) / den
                else:
                    k = which[r]
                    tt = cands[k][1][r]
                    s, t = [(tt, 0.0), (tt, 1.0), (0.0, tt), (1.0, tt)][k]
                p1 = ua[i] + s * (ub[i] - ua[i])
                p2 = ua[jj] + t * (ub[jj] - ua[jj])
                if np.abs(p1 - p2).max() > 1e-9:
                    yield p1, p2
        # neighbours (one common end): they must not fold back onto each other along one line
        for r in np.nonzero(nshared == 1)[0]:
            jj = j[r]
            p, q = np.argwhere(share[r])[0]
            Pi, Oi = (A[i], B[i]) if p == 0 else (B[i], A[i])  # the common end and the other end
            Pj, Oj = (A[jj], B[jj]) if q == 0 else (B[jj], A[jj])
            di, dj = Oi - Pi, Oj - Pj
            li, lj = np.linalg.norm(di), np.linalg.norm(dj)
            if li <= tol or lj <= tol:
                continue
            if abs(_cross(di, dj)) <= tol * (li + lj) and di @ dj > 0:
                m = 0.5 * min(li, lj)
                si, sj = m / li, m / lj
                ui0, ui1 = (ua[i], ub[i]) if p == 0 else (ub[i], ua[i])
                uj0, uj1 = (ua[jj], ub[jj]) if q == 0 else (ub[jj], ua[jj])
                yield ui0 + si * (ui1 - ui0), uj0 + sj * (uj1 - uj0)


def _to_u(domain: Domain, X) -> np.ndarray:
    """Input points of a box -> its parameter coordinates u."""
    return (np.asarray(X, np.float64) - domain.origin) @ np.linalg.inv(domain.axes)


def _null_witness(confirm, cx, c: int, u0: np.ndarray):
    """Collision inside a cell with a singular Jacobian: u0 and u0 + eps v, v in the kernel (u coordinates),
    for step sizes from a tenth of the cell's size down."""
    J = np.swapaxes(cx.jacobian_u[c], -1, -2)
    v = np.linalg.svd(J)[2][-1]  # right singular vector of the smallest singular value
    size = np.ptp(cx.vertices[c, : cx.n_vertices[c]], axis=0).max()
    for eps in size * 10.0 ** -np.arange(1, 10):
        w = confirm(cx.domain.points(u0), cx.domain.points(u0 + eps * v))
        if w is not None:
            return w
    return None


def _states(sn, X) -> np.ndarray:
    """Activation states of points X (m, n_in) in float64, (m, units) int."""
    return np.concatenate(sn.states(X), -1)


def _fold_witness(sn, f, confirm, a, b, samples: int = 65):
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
            w = confirm(x1, x2)
            if w is not None:
                return w
    return None


def _fold_witnesses(sn, f, confirm, cx, signs, pairs: int = 24):
    """Try fold witnesses between nearby cells of opposite determinant sign (interior points)."""
    X = cx.interior_points()
    pos, neg = np.nonzero(signs > 0)[0], np.nonzero(signs < 0)[0]
    if not len(pos) or not len(neg):
        return None
    D = np.linalg.norm(X[pos][:, None] - X[neg][None], axis=-1)
    for k in np.argsort(D, axis=None)[:pairs]:
        i, j = np.unravel_index(k, D.shape)
        w = _fold_witness(sn, f, confirm, X[pos[i]], X[neg[j]])
        if w is not None:
            return w
    return None


# -- a box holding every vertex of the arrangement ----------------------------------------------------------
def _homogenized(sn: StagedNet, R: float, k: int, sigma: float) -> StagedNet | None:
    """The network in the projective chart of the outside of [-R, R]^n where sigma x_k = |x|_inf: inputs
    (w, s) with ``x = (R / s) (sigma e_k + w)`` (w the other n - 1 coordinates, s > 0). Every pre-activation of
    the chart's network is (s / R) times the original's at x (activations with every breakpoint at 0 and max
    units are positively homogeneous), so the two have the same activation pattern at corresponding points,
    and since x <-> (w, s) is a projective map, the same cells and vertices. Each bias b becomes the weight
    b / R of the input s (exact: R is a power of two). None if an activation has a breakpoint other than 0."""
    n = sn.n_in
    others = [i for i in range(n) if i != k]

    def lift(weights, bias):
        m = bias.shape[0]
        new = {j: A for j, A in weights.items() if j != 0}
        A0 = weights.get(0)
        lin = A0[others] if A0 is not None else np.zeros((n - 1, m))
        const = sigma * A0[k] if A0 is not None else np.zeros(m)
        new[0] = np.vstack([lin, (bias / R)[None]])
        return dict(sorted(new.items())), const

    stages = []
    for st in sn.stages:
        if st.groups is None and tuple(st.activation.breakpoints or ()) != (0.0,):
            return None
        w, c = lift(st.weights, st.bias)
        stages.append(Stage(st.activation, w, c, st.groups, st.slopes))
    w, c = lift(sn.out_weights, sn.out_bias)
    return StagedNet(n, tuple(stages), w, c)


def _genuine_vertices(cx) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of a complex that are vertices of the arrangement, not of the box: no coordinate on the box's
    boundary (the engine keeps those at exactly -1/2 or 1/2). Centred coordinates (V, d) and error bounds (V,)."""
    K = cx.vertices_c.shape[1]
    valid = np.arange(K)[None] < cx.n_vertices[:, None]
    V = cx.vertices_c[valid]
    E = cx.vertex_err[valid] if cx.vertex_err is not None else np.zeros(len(V))
    keep = ~np.any(np.abs(V) == 0.5, axis=1)
    return V[keep], np.asarray(E, np.float64)[keep]


def _outer_extent(sn: StagedNet, R: float) -> float | None:
    """An upper bound of |x|_inf over the vertices of the cell complex of R^n with |x|_inf > R / 4 (0 if there
    are none; inf if float64 cannot bound them at this R), from the 2n charts of :func:`_homogenized` on the
    boxes w in [-2, 2]^(n-1), s in [0, 4] (they overlap and cover every point with |x|_inf >= R / 4, and a
    vertex of R^n there is a vertex strictly inside one of them). None: an activation is not homogeneous."""
    n = sn.n_in
    dom = _box(np.r_[np.full(n - 1, -2.0), 0.0], np.r_[np.full(n - 1, 2.0), 4.0])
    out = 0.0
    for k in range(n):
        for sigma in (1.0, -1.0):
            g = _homogenized(sn, R, k, sigma)
            if g is None:
                return None
            cx = enumerate_cells(g, None, dom, progress=False)
            V, E = _genuine_vertices(cx)
            if not len(V):
                continue
            u = V + 0.5
            s_lo = 4.0 * (u[:, -1] - E)
            w_hi = np.abs(-2.0 + 4.0 * u[:, :-1]).max(1, initial=0.0) + 4.0 * E
            if np.any(s_lo <= 0):
                return float("inf")
            out = max(out, float((R * np.maximum(1.0, w_hi) / s_lo).max()) * (1 + 2.0**-30))
    return out


def _pointed(sn: StagedNet) -> bool:
    """Whether the first stage's hyperplane normals (its weights; for max units the differences of their pieces)
    have rank n (exact): then every cell is a pointed polyhedron (it lies in a region of the first stage's
    hyperplanes, whose normals span R^n), so it has a vertex."""
    from ..regions.rational import Dyadic, independent

    if not sn.stages:
        return True  # one cell: R^n itself
    st = sn.stages[0]
    W = st.weights[0]
    if st.groups is not None:  # max units: the cells' walls are z_a = z_b, normals the differences of pieces
        W = np.concatenate([W[:, g[1:]] - W[:, g[:1]] for g in st.groups], 1)
    return len(independent(Dyadic.of(W).N.T.tolist(), sn.n_in)) == sn.n_in


def _whole_space_box(sn: StagedNet, max_rounds: int = 8, progress=None):
    """(box, cells on it or None, found, reason): the box [-R, R]^n, R a power of two, whose inner half
    provably holds every vertex of the cell complex of R^n (found True), or the largest box tried."""
    R = 1.0
    n = sn.n_in
    why = ""
    for _ in range(max_rounds):
        dom = _box(-R, R, n)
        cx = enumerate_cells(sn, None, dom, progress=progress)
        outer = _outer_extent(sn, R)
        if outer is None:
            why = "an activation is not positively homogeneous (hardtanh): no bound on the far vertices"
            break
        if not np.isfinite(outer):
            why = "some vertices lie too far for float64 to bound"
            R *= 2.0**20
            continue
        V, E = _genuine_vertices(cx)
        inner = float((2 * R * (np.abs(V).max(1) + E)).max()) if len(V) else 0.0
        vmax = max(inner, outer)
        if vmax <= 0:
            return dom, cx, True, ""
        e = int(np.ceil(np.log2(2.0 * vmax * (1 + 2.0**-20))))
        if e > 1000:
            why = "some vertices lie too far for float64 boxes"
            break
        Rf = 2.0**e
        if Rf == R:
            return dom, cx, True, ""
        return _box(-Rf, Rf, n), None, True, ""
    # the fallback: grow until a round has no vertex outside the box's inner half (not a proof)
    if not why:
        why = "some vertices lie too far for float64 to bound"
    R = 1.0
    for _ in range(max_rounds):
        dom = _box(-R, R, n)
        cx = enumerate_cells(sn, None, dom, progress=progress)
        V, E = _genuine_vertices(cx)
        if not len(V) or (2 * R * np.abs(V).max()) <= R / 2:
            break
        R *= 4.0
    return dom, cx, False, why


def auto_box(net, params: Params | None = None, *, max_rounds: int = 8) -> tuple[Domain, bool]:
    """A box [-R, R]^n (R a power of two) whose inner half contains every vertex of the cell complex of R^n.
    Returns (box, found): ``found`` is True when that is proven -- every vertex of the complex outside
    [-R0/4, R0/4]^n is a vertex strictly inside one of 2n projective charts of the outside of [-R0, R0]^n
    (:func:`_homogenized`, enumerated exactly), and every vertex inside is one of the cells' on the box --, and
    False when no bound could be established (activations with a breakpoint other than 0, such as hardtanh, or
    vertices beyond float64's reach after ``max_rounds`` tries); then the box is the first [-4^k, 4^k]^n whose
    inner half holds the vertices found on it, and the caller must say so."""
    sn = as_staged(net, params)
    dom, _, found, _ = _whole_space_box(sn, max_rounds)
    return dom, found


# -- the decision -----------------------------------------------------------------------------------------
def _exact_pair(domain, ca, cb) -> dict:
    """A witness from two exact preimages (centred rationals) of one point."""
    xa, xb = centred_to_input(domain, ca), centred_to_input(domain, cb)
    return {"x1": [float(v) for v in xa], "x2": [float(v) for v in xb], "x1_exact": [str(v) for v in xa],
            "x2_exact": [str(v) for v in xb]}


def pl_homeomorphism(net, params: Params | None = None, domain: Domain | str | None = None, *,
                     progress: bool | None = None) -> HomeoResult:
    """Exact homeomorphism check of a piecewise-linear network R^n -> R^n (module docstring). ``domain``: a box
    (default [-1, 1]^n: the verdict is about that box), or ``"whole"``: the whole input space, decided on a box
    that provably holds every vertex of the cell complex (:func:`auto_box`; if no such box can be found the
    verdict is about the largest box tried, and the certificate says so). ``net``: an MLP spec with its
    ``params``, or a graph / StagedNet (params None). ``witness`` of a False verdict is an exact collision."""
    if isinstance(net, MLP) and not net.activation.piecewise_linear:
        raise PiecewiseError(f"pl_homeomorphism needs a piecewise-linear activation, got {net.activation}")
    sn = as_staged(net, params)
    require_square_map(sn)
    f = forward64(sn)
    confirm = ExactPL(sn).collision
    whole, cx, note = False, None, ""
    if isinstance(domain, str):
        if domain != WHOLE:
            raise PiecewiseError(f"domain must be a box or {WHOLE!r}, got {domain!r}")
        domain, cx, found, why = _whole_space_box(sn, progress=progress)
        whole = found and _pointed(sn)
        if not whole:
            why = why or "the first stage's weights have rank < n: cells may hold lines and miss the box"
            note = (f" [decided on the box {describe_box(domain.describe())} only, not on the whole input space: "
                    f"{why}; outside the box nothing is decided]")
    domain = domain if domain is not None else _box(-1.0, 1.0, sn.n_in)
    if domain.kind != "box":
        raise PiecewiseError("the homeomorphism check runs on a box")
    if cx is None or cx.domain is not domain:
        cx = enumerate_cells(sn, None, domain, progress=progress)
    signs = det_signs(cx)
    sing = signs == 0
    pos, neg = int(np.sum(signs > 0)), int(np.sum(signs < 0))
    coherent = bool(not sing.any() and (pos == 0 or neg == 0))
    scope = "R^n" if whole else "box"
    info = dict(coherently_oriented=coherent, cells=cx.regions, domain=domain.describe(), scope=scope,
                det_sign_counts={"positive": pos, "negative": neg, "zero": int(sing.sum())})
    no = lambda w, why: HomeoResult(False, why + note, witness=w, **info)  # noqa: E731
    if sing.any():
        Uc = _to_u(domain, cx.interior_points())
        for c in np.nonzero(sing)[0][:50]:
            w = _null_witness(confirm, cx, int(c), Uc[c])
            if w is not None:
                return no(w, f"cell {int(c)} has a singular Jacobian (det 0): the map collapses it")
    w = _find_collision(f, confirm, cx, ~sing)
    if w is not None:
        return no(w, "collision found: two preimages of one point"
                     + ("" if coherent else " (the map is not coherently oriented: it folds)"))
    if pos and neg:
        w = _fold_witnesses(sn, f, confirm, cx, signs)
        if w is not None:
            return no(w, "collision found across a fold: neighbouring cells with Jacobian determinants of "
                         "opposite signs")
    if not coherent:
        why = ("Jacobian determinants of both signs" if pos and neg else "cells with a singular Jacobian")
        return HomeoResult(None, f"undecided: {why} rule out injectivity in exact arithmetic, but no collision "
                                 "passed the exact check" + note,
                           witness={"layer": None, "reason": why}, **info)
    d = domain.dim
    if whole:
        order = np.argsort(-cx.measure, kind="stable")[:8]
        for t in order.tolist():
            try:
                pre, generic = count_preimages(cx, int(t))
            except PiecewiseError as e:
                return HomeoResult(None, f"undecided: coherently oriented, but the exact preimage count failed ({e})",
                                   witness={"layer": None, "reason": "exact preimage count failed"}, **info)
            if not generic:
                continue
            if len(pre) == 1:
                return HomeoResult(True, f"proven on the whole input space R^{d}: every vertex of the cell complex "
                                         f"lies in the box {describe_box(info['domain'])} (bounded exactly through "
                                         f"{2 * d} projective charts of its outside) and every cell is pointed, so "
                                         f"its {cx.regions} cells are all the cells of R^{d}; every cell's Jacobian "
                                         "determinant has the same sign (exact) and a generic point has exactly one "
                                         "preimage (exact), so the degree is 1 and the map is a homeomorphism of "
                                         f"R^{d} onto R^{d}", **info)
            if len(pre) >= 2:
                (_, ca), (_, cb) = pre[0], pre[1]
                xa = centred_to_input(domain, ca)
                xb = centred_to_input(domain, cb)
                w = confirm(np.array([float(v) for v in xa]), np.array([float(v) for v in xb])) \
                    or _exact_pair(domain, ca, cb)
                return no(w, f"collision found: a generic point has {len(pre)} preimages in R^{d} (exact), so the "
                             f"coherently oriented map has degree {len(pre)}")
        return HomeoResult(None, "undecided: coherently oriented, but no generic target point was found for the "
                                 "exact preimage count", witness={"layer": None, "reason": "no generic target"},
                           **info)
    if d == 1:
        return HomeoResult(True, "proven on the interval: every piece has a slope of the same sign (strictly "
                                 "monotone)" + note, **info)
    if d == 2:
        candidates = 0
        for u1, u2 in _boundary_candidates_2d(cx):
            candidates += 1
            w = confirm(domain.points(u1), domain.points(u2))
            if w is not None:
                return no(w, "collision on the box's boundary (its image is not a simple curve)")
        if candidates:
            return HomeoResult(None, f"undecided: the image of the box's boundary seems to meet itself "
                                     f"({candidates} candidate points) but no collision passed the exact check"
                                     + note,
                               witness={"layer": None, "reason": "unverified boundary self-contact"}, **info)
        return HomeoResult(True, "proven on the box: coherently oriented and injective on the box's boundary, so "
                                 "the degree is 1 and every point of the image has exactly one preimage (what "
                                 "happens outside the box is not decided)" + note, **info)
    info["scope"] = "box, sampled"
    # sampling can refute invertibility, never certify it (SCIENCE.md): undecided, with what was seen
    return HomeoResult(None, "undecided on the box (sampled, not proven): coherently oriented and every sampled "
                             "target point near every cell's boundary has exactly one preimage" + note,
                       witness={"layer": None, "reason": "only sampled"}, **info)
