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
