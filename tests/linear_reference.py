"""An independent linear-region counter for MLPs on 2-D boxes (plain NumPy, no piecewise code).

Cells are found by naive convex-polygon splitting, one cell and one unit at a time; the network's affine
map on a cell is taken from the activation state at the cell's centroid. Two cells are neighbours when a
point just across one of the cell's edge pieces (the edge cut at every vertex of every cell that lies on it,
so T-junctions and partly overlapping edges are handled) has the other cell's activation pattern. Linear
regions are connected components of neighbours whose Jacobians agree relative to the pair's own size.

Slow (Python loops) and only for small nets with elementwise activations; good enough to be a reference.
"""
import numpy as np

_BREAKS = {"relu": (0.0,), "leaky_relu": (0.0,), "abs": (0.0,), "hardtanh": (-1.0, 1.0)}


def _act(z, act, slope):
    """Slope and constant of each unit at pre-activation z: h = s * z + k."""
    if act == "relu":
        return (z > 0).astype(float), np.zeros_like(z)
    if act == "leaky_relu":
        return np.where(z > 0, 1.0, slope), np.zeros_like(z)
    if act == "abs":
        return np.where(z > 0, 1.0, -1.0), np.zeros_like(z)
    if act == "hardtanh":
        mid = (z > -1) & (z < 1)
        return mid.astype(float), np.where(mid, 0.0, np.sign(z))
    raise ValueError(act)


def _state(z, act):
    if act == "hardtanh":
        return (z >= -1).astype(int) + (z > 1).astype(int)
    return (z > 0).astype(int)


def _split(poly, g, e, tol):
    f = poly @ g + e
    t = tol * (np.abs(g).sum() + abs(e))
    if not ((f > t).any() and (f < -t).any()):
        return [poly]
    f = np.where(np.abs(f) <= t, 0.0, f)
    pos, neg = [], []
    k = len(poly)
    for i in range(k):
        p, q, fp, fq = poly[i], poly[(i + 1) % k], f[i], f[(i + 1) % k]
        if fp >= 0:
            pos.append(p)
        if fp <= 0:
            neg.append(p)
        if fp * fq < 0:
            x = p + fp / (fp - fq) * (q - p)
            pos.append(x)
            neg.append(x)
    return [np.array(pos), np.array(neg)]


def _forward_pattern(params, x, act, slope):
    h, bits = x, []
    for W, b in params[:-1]:
        z = h @ W + b
        bits.append(_state(z, act))
        s, k = _act(z, act, slope)
        h = s * z + k
    return tuple(np.concatenate(bits, -1).tolist())


def cells_2d(params, lo, hi, act="relu", slope=0.0, tol=1e-10):
    """Activation cells of an MLP on [lo, hi]^2: list of (polygon (k, 2) ccw, pattern tuple, J (2, n_out))."""
    params = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params]
    box = np.array([[lo, lo], [hi, lo], [hi, hi], [lo, hi]], np.float64)
    cells = [(box, np.eye(2), np.zeros(2))]  # polygon, h = x @ A + c
    for W, b in params[:-1]:
        new = []
        for poly, A, c in cells:
            G, e = A @ W, c @ W + b
            pieces = [poly]
            for j in range(W.shape[1]):
                for bp in _BREAKS[act]:
                    pieces = [q for p in pieces for q in _split(p, G[:, j], e[j] - bp, tol)]
            for p in pieces:
                z = p.mean(0) @ G + e
                s, k = _act(z, act, slope)
                new.append((p, G * s, e * s + k))
        cells = new
    Wo, _ = params[-1]
    out = [(p, _forward_pattern(params, p.mean(0), act, slope), A @ Wo) for p, A, _ in cells]
    pats = [c[1] for c in out]
    assert len(set(pats)) == len(pats), "reference: two cells with one pattern"
    return out


def linear_regions_2d(params, lo, hi, act="relu", slope=0.0, rtol=1e-9):
    """(activation regions, linear regions) of an MLP on [lo, hi]^2, computed independently."""
    params = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params]
    cells = cells_2d(params, lo, hi, act, slope)
    index = {pat: i for i, (_, pat, _) in enumerate(cells)}
    allv = np.concatenate([p for p, _, _ in cells])
    eps = 1e-7 * (hi - lo)
    parent = list(range(len(cells)))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, (poly, _, J) in enumerate(cells):
        k = len(poly)
        for a in range(k):
            p, q = poly[a], poly[(a + 1) % k]
            d = q - p
            L2 = d @ d
            if L2 <= (1e-12 * (hi - lo)) ** 2:
                continue
            rel = allv - p
            t = rel @ d / L2
            dist = np.abs(rel[:, 0] * d[1] - rel[:, 1] * d[0]) / np.sqrt(L2)
            on = (dist <= 1e-9 * (hi - lo)) & (t > 1e-9) & (t < 1 - 1e-9)
            ts = np.unique(np.r_[0.0, t[on], 1.0])
            normal = np.array([d[1], -d[0]]) / np.sqrt(L2)  # outward for a ccw polygon
            for t0, t1 in zip(ts[:-1], ts[1:]):
                if t1 - t0 < 1e-9:
                    continue
                x = p + 0.5 * (t0 + t1) * d + eps * normal
                if np.any(x <= lo) or np.any(x >= hi):
                    continue  # the box's edge: no neighbour
                j = index.get(_forward_pattern(params, x, act, slope))
                assert j is not None, "reference: a point across an edge has a pattern of no cell"
                Jb = cells[j][2]
                size = max(np.abs(J).max(), np.abs(Jb).max())
                if np.abs(J - Jb).max() <= rtol * size:
                    ri, rj = find(i), find(j)
                    if ri != rj:
                        parent[max(ri, rj)] = min(ri, rj)
    roots = {find(i) for i in range(len(cells))}
    return len(cells), len(roots)
