"""Statistics of an exact cell complex: sizes, vertices per cell, density, distances to boundaries,
local complexity, decision boundaries."""
from __future__ import annotations

import numpy as np

from ..numerics import rtol


def decision_boundary(cx, output: int = 0) -> list[np.ndarray]:
    """Pieces of the zero set of network output ``output`` in a 2D complex: a list of (2, 2) segments in the
    domain's u coordinates (one per cell the zero set crosses). In 1D: the points, as (1, 1) arrays."""
    V, n = cx.vertices, cx.n_vertices
    f = np.einsum("ckd,cd->ck", V, cx.jacobian_u[:, :, output]) + cx.offset[:, output][:, None]
    K = V.shape[1]
    k = np.arange(K)
    valid = k[None] < n[:, None]
    scale = np.abs(cx.jacobian_u[:, :, output]).sum(1) + np.abs(cx.offset[:, output])
    tol = rtol(np.float64) * scale[:, None]
    fz = np.where(np.abs(f) <= tol, 0.0, f)
    nxt = np.where(k[None] + 1 < n[:, None], k[None] + 1, 0)
    fn = np.take_along_axis(fz, nxt, 1)
    Vn = np.take_along_axis(V, nxt[..., None], 1)
    cross = valid & (fz * fn < 0)
    t = np.where(cross, fz / np.where(cross, fz - fn, 1.0), 0.0)
    pts = V + t[..., None] * (Vn - V)
    on = valid & (fz == 0)
    segs = []
    for c in np.nonzero((cross | on).any(1))[0]:
        p = np.concatenate([pts[c][cross[c]], V[c][on[c]]])
        if V.shape[-1] == 1:
            segs.extend(q[None] for q in p)
        elif len(p) >= 2:
            # the zero set of an affine function in a convex cell is a segment: take its two extreme points
            d = p - p[0]
            far = p[np.argmax(np.linalg.norm(d, axis=1))]
            q = p[np.argmax(np.linalg.norm(p - far, axis=1))]
            if np.linalg.norm(q - far) > 0:
                segs.append(np.stack([far, q]))
    return segs
