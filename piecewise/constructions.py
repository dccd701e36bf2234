"""Networks that attain the lower bounds of :mod:`piecewise.bounds`.

Each function returns ``(net, params)`` (float64 NumPy params, usable everywhere in the library and
with :func:`piecewise.save_npz`). Counts are of activation regions inside the unit cube [0, 1]^n0 (where
they also equal the linear regions).
"""
from __future__ import annotations

import numpy as np

from .nets import MLP, mlp


def _out(width: int):
    return np.ones((width, 1)), np.zeros(1)


def sawtooth(L: int) -> tuple[MLP, tuple]:
    """Telgarsky's sawtooth: ``t(x) = 2 relu(x) - 4 relu(x - 1/2)`` composed L times (width 2, depth L).
    2^L pieces on [0, 1], breakpoints at i / 2^L; the output is the sawtooth itself."""
    if int(L) < 1:
        raise ValueError(f"L must be >= 1, got {L}")
    layers = [(np.array([[1.0, 1.0]]), np.array([0.0, -0.5]))]
    layers += [(np.array([[2.0, 2.0], [-4.0, -4.0]]), np.array([0.0, -0.5])) for _ in range(int(L) - 1)]
    layers.append((np.array([[2.0], [-4.0]]), np.zeros(1)))
    return mlp(1, (2,) * int(L), 1, "relu"), tuple(layers)


def _fold_coefficients(p: int) -> np.ndarray:
    """c_0 = 1, c_k = 2 (-1)^k: sum_k c_k relu(p y - k) maps each of the p intervals [k/p, (k+1)/p] onto [0, 1]."""
    return np.array([1.0] + [2.0 * (-1) ** k for k in range(1, p)])


def _general_position_directions(n0: int, m: int) -> np.ndarray:
    """m unit vectors in the closed positive orthant of R^n0, any n0 of them independent (n0 = 1: all 1;
    n0 = 2: angles spread over [0, pi/2]; larger n0: moment-curve points, normalised)."""
    if n0 == 1:
        return np.ones((1, m))
    if n0 == 2:
        theta = (np.arange(m) + 0.5) * (np.pi / 2) / m
        return np.stack([np.cos(theta), np.sin(theta)])
    t = 1.0 + np.arange(m) / max(m, 1)
    D = np.stack([t**i for i in range(n0)])
    return D / np.linalg.norm(D, axis=0)


def montufar_folding(n0: int, widths, radius: float = 0.2) -> tuple[MLP, tuple]:
    """Montufar, Pascanu, Cho, Bengio (2014) construction on [0, 1]^n0, attaining
    :func:`piecewise.bounds.montufar2014_lower` (checked by exact counts for n0 = 1, 2, 3).

    Layers l < L: n0 groups of p = n_l // n0 units; unit k of group j computes relu(p y_j - k); the folded
    coordinate sum_k c_k relu(p y_j - k) (absorbed into the next layer's weights) maps each of the p
    intervals onto [0, 1]; spare units (n_l mod n0) get zero weights and a negative bias (dead). The last
    layer is n_L hyperplanes tangent to a sphere of ``radius`` around the cube's centre, in general
    position, whose whole arrangement lies inside the open cube (for n0 = 1: n_L points in (0, 1)).

    The count is of *activation* regions. Linear regions are fewer: the cells where every last-layer unit
    is off (h_L = 0) on the two sides of a fold carry the same constant map and merge (n0 = 2, widths
    (6, 6, 6): 1782 activation regions, 1726 linear regions)."""
    n0 = int(n0)
    widths = tuple(int(w) for w in widths)
    if n0 < 1 or not widths or any(w < n0 for w in widths[:-1]) or widths[-1] < 1:
        raise ValueError(f"need n_l >= n0 = {n0} for the folding layers, got widths {widths}")
    layers, prev = [], None  # prev = (p, fan_out) of the previous folding layer
    for w in widths[:-1]:
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
                    W[j * pp:(j + 1) * pp, col] = p * _fold_coefficients(pp)
        b[n0 * p:] = -1.0  # spare units: dead
        layers.append((W, b))
        prev = (p, w)
    nL = widths[-1]
    if n0 == 1:
        W1 = np.ones((1, nL))
        b1 = -(np.arange(nL) + 1.0) / (nL + 1.0)
    else:
        D = _general_position_directions(n0, nL)
        W1 = D
        b1 = -0.5 * D.sum(0) - radius
    if prev is None:
        W, b = W1, b1
    else:
        pp = prev[0]
        W = np.zeros((prev[1], nL))
        for j in range(n0):
            W[j * pp:(j + 1) * pp] = _fold_coefficients(pp)[:, None] * W1[j][None, :]
        b = b1
    layers.append((W, b))
    layers.append(_out(nL))
    return mlp(n0, widths, 1, "relu"), tuple(layers)


def maxout_folding(n0: int, L: int, k: int) -> tuple[MLP, tuple]:
    """Rank-k maxout net with L layers of width n0 attaining :func:`piecewise.bounds.maxout_lower`
    (2^(n0 (L-1)) k^n0 regions in [0, 1]^n0). Layers 1..L-1: unit j computes max(2 y_j - 1, 1 - 2 y_j)
    = |2 y_j - 1| (the other k - 2 pieces are the constant -1, never the maximum); layer L: unit j computes
    max_i (i y_j - i (i + 1) / (2k)), i < k, with kinks at i / k."""
    n0, L, k = int(n0), int(L), int(k)
    if n0 < 1 or L < 1 or k < 2:
        raise ValueError(f"need n0 >= 1, L >= 1, k >= 2; got {n0}, {L}, {k}")
    layers = []
    for _ in range(L - 1):
        W = np.zeros((n0, n0, k))
        b = np.full((n0, k), -1.0)
        for j in range(n0):
            W[j, j, 0], b[j, 0] = 2.0, -1.0
            W[j, j, 1], b[j, 1] = -2.0, 1.0
        layers.append((W, b))
    W = np.zeros((n0, n0, k))
    b = np.zeros((n0, k))
    i = np.arange(k)
    for j in range(n0):
        W[j, j] = i
        b[j] = -i * (i + 1) / (2.0 * k)
    layers.append((W, b))
    layers.append(_out(n0))
    return mlp(n0, (n0,) * L, 1, f"maxout:{k}"), tuple(layers)


def shallow_general_position(n0: int, n: int, *, seed: int = 0) -> tuple[MLP, tuple]:
    """One hidden layer of n ReLU units whose hyperplanes are in general position and all pass near the
    centre of [0, 1]^n0 (random directions, offsets so each hyperplane goes through a random point of the
    inner cube [0.4, 0.6]^n0). Its region count in R^n0 is :func:`piecewise.bounds.zaslavsky`; inside the
    cube it is the number of intersection flats that meet the cube."""
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(int(n0), int(n)))
    D /= np.linalg.norm(D, axis=0)
    anchors = rng.uniform(0.4, 0.6, size=(int(n), int(n0)))
    b = -np.einsum("ki,ik->i", D, anchors)
    return mlp(n0, (n,), 1, "relu"), ((D, b), _out(n))


def _serra_fold(p: int):
    """Breakpoints t (p,), facings f (p,) (+1: relu(y - t), -1: relu(t - y)), coefficients c (p,) and constant
    c0 such that g(y) = sum_k c_k relu(f_k (y - t_k)) + c0 maps each of the p + 1 intervals of [0, 1] onto
    [0, 1] (slopes alternate in sign). Needs p >= 3: one unit must face left and cover the start while the
    others face right, and the slopes must satisfy S_0 = -sum_{left} c_k (solved by the interval lengths)."""
    if p < 3:
        raise ValueError("a fold with p + 1 pieces from p units needs p >= 3")
    special = p if p % 2 == 1 else p - 1  # index of the left-facing breakpoint (1-based), see the docstring
    a = 1.0 / (p + 4)
    lengths = np.full(p + 1, (1.0 - 5.0 * a) / (p - 2))
    lengths[0] = a
    lengths[special] = lengths[special - 1] = 2.0 * a  # 1/l_0 = 1/l_{s-1} + 1/l_s
    t = np.cumsum(lengths)[:-1]
    S = (-1.0) ** np.arange(p + 1) / lengths  # slope on each interval
    c = np.diff(S)  # slope change at each breakpoint = c_k for either facing
    f = np.ones(p)
    f[special - 1] = -1.0
    c0 = -np.sum(c[f < 0] * t[f < 0])  # g(0) = 0
    return t, f, c, c0


def serra_folding(n0: int, widths) -> tuple[MLP, tuple]:
    """A construction attaining Serra, Tjandraatmadja & Ramalingam (2018)'s lower bound
    :func:`piecewise.bounds.serra2018_lower` = prod_{l<L} (floor(n_l / n0) + 1)^n0 * sum_j C(n_L, j) on
    [0, 1]^n0 (checked by exact counts). Each folding layer gives every coordinate p + 1 pieces from
    p = floor(n_l / n0) units: p - 1 units face right and one faces left, so no interval is flat; this needs
    p >= 3, which is the hypothesis n_l >= 3 n0. The last layer is as in :func:`montufar_folding`."""
    n0 = int(n0)
    widths = tuple(int(w) for w in widths)
    if any(w < 3 * n0 for w in widths[:-1]) or widths[-1] < 1:
        raise ValueError(f"serra_folding needs n_l >= 3 n0 = {3 * n0} before the last layer, got {widths}")
    layers, prev = [], None  # prev = (p, fan_out, c, c0) of the previous folding layer
    for w in widths[:-1]:
        p = w // n0
        t, f, c, c0 = _serra_fold(p)
        W = np.zeros((n0 if prev is None else prev[1], w))
        b = np.zeros(w)
        for j in range(n0):
            cols = slice(j * p, (j + 1) * p)
            # unit k: relu(f_k (y_j - t_k)), with y_j the previous folded coordinate sum_k' c'_k' h_k' + c0'
            if prev is None:
                W[j, cols] = f
                b[cols] = -f * t
            else:
                pp, _, cp, c0p = prev
                W[j * pp:(j + 1) * pp, cols] = np.outer(cp, f)
                b[cols] = f * (c0p - t)
        b[n0 * p:] = -1.0  # spare units: dead
        layers.append((W, b))
        prev = (p, w, c, c0)
    nL = widths[-1]
    if n0 == 1:
        W1, b1 = np.ones((1, nL)), -(np.arange(nL) + 1.0) / (nL + 1.0)
    else:
        W1 = _general_position_directions(n0, nL)
        b1 = -0.5 * W1.sum(0) - 0.2
    if prev is None:
        W, b = W1, b1
    else:
        pp, fan, cp, c0p = prev
        W = np.zeros((fan, nL))
        for j in range(n0):
            W[j * pp:(j + 1) * pp] = cp[:, None] * W1[j][None, :]
        b = b1 + c0p * W1.sum(0)
    layers.append((W, b))
    layers.append(_out(nL))
    return mlp(n0, widths, 1, "relu"), tuple(layers)


def angle_doubling() -> tuple[MLP, tuple]:
    """A ReLU net R^2 -> R^2 that is coherently oriented but not injective: the plane is cut into 6 cones
    by 3 lines through 0, and the ray at angle k pi/3 goes to angle 2k pi/3, linearly on each cone. Every
    cone has det J > 0, yet every generic point has two preimages. Hidden units
    relu(+-n_i . x) for the 3 line normals; output weights solved so the 6 rays land where they should."""
    ang = np.array([0.0, np.pi / 3, 2 * np.pi / 3])
    normals = np.stack([-np.sin(ang), np.cos(ang)])
    W0 = np.c_[normals, -normals]
    k = np.arange(6)
    rays = np.stack([np.cos(k * np.pi / 3), np.sin(k * np.pi / 3)], 1)
    images = np.stack([np.cos(2 * k * np.pi / 3), np.sin(2 * k * np.pi / 3)], 1)
    W1 = np.linalg.solve(np.maximum(rays @ W0, 0.0), images)
    return mlp(2, (6,), 2, "relu"), ((W0, np.zeros(6)), (W1, np.zeros(2)))
