"""Independent references written with plain NumPy geometry (no piecewise code)."""
import numpy as np


def lines_of_shallow(W0, b0, activation="relu"):
    """Lines a.x + c = 0 (rows [a1, a2, c]) that the first hidden layer puts in the plane."""
    W0, b0 = np.asarray(W0, np.float64), np.asarray(b0, np.float64)
    if activation == "hardtanh":
        return np.concatenate([np.c_[W0.T, b0 - 1.0], np.c_[W0.T, b0 + 1.0]])
    if activation == "maxout2":
        return np.c_[(W0[..., 0] - W0[..., 1]).T, b0[:, 0] - b0[:, 1]]
    return np.c_[W0.T, b0]


def regions_in_box(lines, lo, hi):
    """1 + (#lines crossing the open box) + (#pairwise crossings inside the open box).

    Valid when no three lines meet in one point inside the box (true for random real weights)."""
    lines = np.asarray(lines, np.float64)
    corners = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [lo[0], hi[1]], [hi[0], hi[1]]])
    vals = corners @ lines[:, :2].T + lines[:, 2]
    crossing = (vals.min(0) < 0) & (vals.max(0) > 0)
    n_cross = 0
    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            A = np.array([lines[i, :2], lines[j, :2]])
            if abs(np.linalg.det(A)) < 1e-12:
                continue
            p = np.linalg.solve(A, -np.array([lines[i, 2], lines[j, 2]]))
            if lo[0] < p[0] < hi[0] and lo[1] < p[1] < hi[1]:
                n_cross += 1
    return 1 + int(crossing.sum()) + n_cross


def breakpoints_on_segment(W0, b0, p0, p1):
    """Parameters t in (0, 1) where the first-layer units of a shallow net change sign along p0 + t (p1 - p0)."""
    a = (np.asarray(p1) - np.asarray(p0)) @ W0
    c = np.asarray(p0) @ W0 + b0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -c / a
    t = t[np.isfinite(t)]
    return np.unique(t[(t > 0) & (t < 1)])


def sawtooth_params(L):
    """Telgarsky's sawtooth t(x) = 2 relu(x) - 4 relu(x - 1/2) composed L times (width 2, depth L)."""
    params = [(np.array([[1.0, 1.0]]), np.array([0.0, -0.5]))]
    for _ in range(L - 1):
        params.append((np.array([[2.0, 2.0], [-4.0, -4.0]]), np.array([0.0, -0.5])))
    params.append((np.array([[2.0], [-4.0]]), np.zeros(1)))
    return tuple(params)


def montufar_params(widths, n0=2, radius=0.2):
    """Montufar et al. (2014) folding net on [0,1]^n0 (as described in shared/SCIENCE.md), built here
    independently of the library: layers l < L fold each coordinate p = n_l // n0 times; the last layer
    is n_L lines tangent to a circle around the centre, angles in [0, pi/2]."""
    params, prev = [], None  # prev: (p, units per group) of the previous folding layer
    for li, w in enumerate(widths[:-1]):
        p = w // n0
        W = np.zeros((n0 if prev is None else prev[1], w))
        b = np.zeros(w)
        for j in range(n0):
            for k in range(p):
                col = j * p + k
                b[col] = -k
                if prev is None:
                    W[j, col] = p
                else:
                    pp = prev[0]
                    for kk in range(pp):
                        W[j * pp + kk, col] = p * (1.0 if kk == 0 else 2.0 * (-1) ** kk)
        params.append((W, b))
        prev = (p, w)
    nL = widths[-1]
    pp = prev[0]
    theta = (np.arange(nL) + 0.5) * (np.pi / 2) / nL
    dirs = np.stack([np.cos(theta), np.sin(theta)])  # (2, nL) for n0 = 2
    W = np.zeros((prev[1], nL))
    for j in range(n0):
        for kk in range(pp):
            W[j * pp + kk] = (1.0 if kk == 0 else 2.0 * (-1) ** kk) * dirs[j]
    b = -0.5 * dirs.sum(0) - radius
    params.append((W, b))
    params.append((np.ones((nL, 1)), np.zeros(1)))
    return tuple(params)


def lp_region_count(W_list, b_list, lo, hi):
    """Brute force: number of ReLU activation patterns whose region has nonempty interior in the box
    [lo, hi]^n, by one linear program per candidate pattern (scipy HiGHS). Only for tiny nets."""
    from itertools import product

    from scipy.optimize import linprog

    widths = [W.shape[1] for W in W_list]
    count = 0
    for bits in product((0, 1), repeat=sum(widths)):
        # margin LP: maximise t s.t. s_j * z_j(x) >= t for all units, box constraints, t <= 1
        n = W_list[0].shape[0]
        A, c0 = np.eye(n), np.zeros(n)  # h = x @ A + c0 on the region
        rows, rhs = [], []
        off = 0
        for W, b in zip(W_list, b_list):
            G, e = A @ W, c0 @ W + b
            s = np.array(bits[off:off + W.shape[1]])
            sign = np.where(s == 1, 1.0, -1.0)
            for j in range(W.shape[1]):  # -sign*(x.G_j + e_j) + t <= 0
                if np.abs(G[:, j]).max() <= 1e-12:  # constant on the region: its state is fixed (0 at z = 0)
                    if (s[j] == 1) != (e[j] > 1e-12):
                        rows.append(np.r_[np.zeros(len(G)), 1.0])  # infeasible with t > 0
                        rhs.append(0.0)
                    continue
                rows.append(np.r_[-sign[j] * G[:, j], np.linalg.norm(G[:, j])])
                rhs.append(sign[j] * e[j])
            A, c0 = G * s, e * s
            off += W.shape[1]
        if not rows:  # every unit is constant and consistent with the pattern: the whole box
            count += 1
            continue
        res = linprog(np.r_[np.zeros(n), -1.0], A_ub=np.array(rows), b_ub=np.array(rhs),
                      bounds=[(lo, hi)] * n + [(None, 1.0)], method="highs")
        if res.status == 0 and -res.fun > 1e-9:
            count += 1
    return count


def flats_meeting_box(W0, b0, lo, hi):
    """Regions of an arrangement of hyperplanes in general position inside the open box [lo, hi]^n:
    the sum over k = 0..n of the number of k-subsets whose common flat meets the open box (each tested
    with an LP that maximises the distance to the box's faces)."""
    from itertools import combinations

    from scipy.optimize import linprog

    n, m = W0.shape
    total = 1
    for k in range(1, n + 1):
        for S in combinations(range(m), k):
            S = list(S)
            res = linprog(np.r_[np.zeros(n), -1.0],
                          A_ub=np.r_[np.c_[np.eye(n), np.ones(n)], np.c_[-np.eye(n), np.ones(n)]],
                          b_ub=np.r_[np.full(n, hi), np.full(n, -lo)],
                          A_eq=np.c_[W0[:, S].T, np.zeros(k)], b_eq=-b0[S],
                          bounds=[(None, None)] * n + [(None, 1.0)], method="highs")
            if res.status == 0 and -res.fun > 1e-9:
                total += 1
    return total


def regions_in_box_exact(lines, lo, hi):
    """Regions of the open box [lo, hi] (2-D) cut by lines a.x + c = 0, in exact rational arithmetic (the
    lines' float64 coefficients taken as the exact numbers they are): lines are added one by one, and a line
    that crosses the open box adds one region per piece the earlier lines cut it into (distinct crossing points
    strictly inside the box, plus one); a line equal to an earlier one adds nothing. Concurrent, parallel and
    duplicate lines are all counted right; no tolerance anywhere."""
    from fractions import Fraction as Q

    L = [tuple(Q(float(v)) for v in row) for row in np.asarray(lines, np.float64)]
    lo = [Q(float(v)) for v in lo]
    hi = [Q(float(v)) for v in hi]
    corners = [(lo[0], lo[1]), (hi[0], lo[1]), (lo[0], hi[1]), (hi[0], hi[1])]

    def inside(p):
        return lo[0] < p[0] < hi[0] and lo[1] < p[1] < hi[1]

    def same(l1, l2):
        return l1[0] * l2[1] == l1[1] * l2[0] and l1[0] * l2[2] == l1[2] * l2[0] and l1[1] * l2[2] == l1[2] * l2[1]

    regions, kept = 1, []
    for a in L:
        if a[0] == 0 and a[1] == 0:
            continue
        vals = [a[0] * x + a[1] * y + a[2] for x, y in corners]
        if not (min(vals) < 0 < max(vals)):
            continue  # misses the open box (or only touches its boundary)
        if any(same(a, b) for b in kept):
            continue
        pts = set()
        for b in kept:
            det = a[0] * b[1] - a[1] * b[0]
            if det == 0:
                continue
            p = ((a[1] * b[2] - a[2] * b[1]) / det, (a[2] * b[0] - a[0] * b[2]) / det)
            if inside(p):
                pts.add(p)
        regions += len(pts) + 1
        kept.append(a)
    return regions
