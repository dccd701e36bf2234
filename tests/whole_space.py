"""An independent count of all activation regions of a ReLU MLP in the whole input space R^n (no piecewise code).

A breadth-first search over the region graph, the method of the whole-space searches in the literature
(relucent, Serra et al.'s enumeration): a region is its activation pattern; under a pattern the network is
affine, so every unit's pre-activation is an affine function of x and the region is the polyhedron where each
has the pattern's sign. For each unit, one linear program (scipy HiGHS) finds the largest ball inside the
region whose centre lies on that unit's hyperplane (a facet iff the radius is positive); a point just across
the facet gives the neighbour's pattern, evaluated by a plain NumPy forward pass. The region graph of R^n is
connected, so the search finds every region. Float64 LPs with a margin: for random (general position) nets
at unit scale only. ``facets=True`` also gives each region's number of facets (units whose LP radius is
positive): the degrees of its region graph.
"""
from __future__ import annotations

from collections import deque

import numpy as np
from scipy.optimize import linprog


def _pattern(Ws, bs, x):
    h, out = x, []
    for W, b in zip(Ws, bs):
        z = h @ W + b
        out.append(z > 0)
        h = np.maximum(z, 0.0)
    return np.concatenate(out)


def _rows(Ws, bs, pat, n):
    """Affine pre-activations (G (N, n), e (N,)) of every unit under the pattern, and its signs (N,)."""
    A, c = np.eye(n), np.zeros(n)
    G, E, off = [], [], 0
    for W, b in zip(Ws, bs):
        g, e = A @ W, c @ W + b
        G.append(g.T)
        E.append(e)
        s = pat[off:off + W.shape[1]].astype(float)
        A, c = g * s, e * s
        off += W.shape[1]
    return np.concatenate(G), np.concatenate(E), np.where(pat, 1.0, -1.0)


def count_whole_space(Ws, bs, seed: int = 0, bound: float = 1e6, margin: float = 1e-9, facets: bool = False):
    """Regions of R^n of the ReLU MLP with hidden layers ``Ws``, ``bs`` (h = relu(h @ W + b)). With
    ``facets=True``: (count, {pattern bytes (bool, units of all layers in order): number of its facets})."""
    Ws = [np.asarray(W, np.float64) for W in Ws]
    bs = [np.asarray(b, np.float64) for b in bs]
    n = Ws[0].shape[0]
    x0 = np.random.default_rng(seed).normal(size=n)
    start = _pattern(Ws, bs, x0)
    seen = {start.tobytes()}
    todo = deque([start])
    degree = {}
    while todo:
        pat = todo.popleft()
        degree[pat.tobytes()] = 0
        G, E, sg = _rows(Ws, bs, pat, n)
        nrm = np.linalg.norm(G, axis=1)
        live = nrm > 1e-12  # units constant on the region bound nothing
        for j in np.nonzero(live)[0]:
            # centre y on unit j's hyperplane, ball of radius t inside every other unit's half-space
            others = live.copy()
            others[j] = False
            A_ub = np.c_[-sg[others, None] * G[others], nrm[others]]
            b_ub = sg[others] * E[others]
            res = linprog(np.r_[np.zeros(n), -1.0], A_ub=A_ub, b_ub=b_ub, A_eq=np.r_[G[j], 0.0][None],
                          b_eq=[-E[j]], bounds=[(-bound, bound)] * n + [(None, 1.0)], method="highs")
            if res.status != 0 or -res.fun <= margin:
                continue
            y, t = res.x[:n], -res.fun
            degree[pat.tobytes()] += 1
            step = min(t, 1e-3) * 0.5 * G[j] / nrm[j]
            nb = _pattern(Ws, bs, y - sg[j] * step)
            key = nb.tobytes()
            if key not in seen:
                seen.add(key)
                todo.append(nb)
    return (len(seen), degree) if facets else len(seen)
