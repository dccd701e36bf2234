"""An independent exact region count on a 2-D plane slice, for tests of the graph, the importers and the engine.

It shares no code with piecewise: the network is evaluated by a *reference* (PyTorch's own functional ops on
a test model, or plain NumPy), which returns every nonlinear unit's pre-activation at given points, with
the option to *force* the activation pattern (so the network is affine, and every pre-activation is an
affine function of the slice coordinates u in [0, 1]^2). A pattern is a region of the slice iff its
inequalities have a full-dimensional solution (an LP with scipy.optimize.linprog: the largest inscribed disc
has radius > tol). Regions are found by a breadth-first walk across region edges, seeded from a grid:
the regions of a square form a connected adjacency graph, so the walk finds all of them.

A reference is an object with
  ``units``: a list of unit groups, each ("sign", m) -- breakpoint 0 (relu, leaky, abs) -- or
             ("clip", lo (m,), hi (m,)), or ("max", windows (m, k) int, -1 = none): units of that kind;
  ``pre(X, force=None)``: X (B, n_in) float64 -> list of (B, size_l) pre-activations (for "max" groups the
             flattened tensor the windows index into); with ``force`` (a pattern as returned by ``states``)
             the nonlinearities use the forced states instead of their own.
  ``states(pre)``: list of (B, m_l) int states.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linprog
from scipy.spatial import HalfspaceIntersection


def constraints(ref, pattern, origin, axes):
    """Rows (a, b): a . u <= b for every unit's inequality under ``pattern``; u in the unit square."""
    U = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    X = origin + U @ axes
    pre = ref.pre(X, force=[p[None] for p in pattern])
    rows_a, rows_b = [], []
    for (kind, *info), z, s in zip(ref.units, pre, pattern):
        g = np.stack([z[1] - z[0], z[2] - z[0]], -1)  # (size, 2)
        e = z[0]
        if kind == "sign":  # state 1: z >= 0 ; state 0: z <= 0
            sg = np.where(s == 1, -1.0, 1.0)[:, None]
            rows_a.append(sg * g)
            rows_b.append(-(sg[:, 0] * e))
        elif kind == "clip":
            lo, hi = info
            # state 0: z <= lo ; 1: lo <= z <= hi ; 2: z >= hi
            for mask, a_sign, bound in ((s == 0, 1.0, lo), (s == 1, -1.0, lo), (s == 1, 1.0, hi), (s == 2, -1.0, hi)):
                idx = np.nonzero(mask)[0]
                rows_a.append(a_sign * g[idx])
                rows_b.append(a_sign * (bound[idx] - e[idx]))
        else:  # max: z[win[r]] >= z[win[q]]
            win = info[0]
            sel = win[np.arange(len(win)), s]
            for q in range(win.shape[1]):
                other = win[:, q]
                ok = (other >= 0) & (other != sel)
                rows_a.append(g[other[ok]] - g[sel[ok]])
                rows_b.append(e[sel[ok]] - e[other[ok]])
    return np.concatenate(rows_a), np.concatenate(rows_b)


def inscribed(A, b):
    """Largest disc inside {u in [0,1]^2 : A u <= b}: (radius, centre)."""
    A = np.concatenate([A, np.eye(2), -np.eye(2)])
    b = np.concatenate([b, np.ones(2), np.zeros(2)])
    nrm = np.linalg.norm(A, axis=1)
    flat = nrm <= 1e-12 * max(1.0, np.abs(A).max())
    if np.any(b[flat] < -1e-9 * max(1.0, np.abs(b).max())):
        return -1.0, None
    A, b, nrm = A[~flat], b[~flat], nrm[~flat]
    res = linprog([0, 0, -1], A_ub=np.c_[A, nrm], b_ub=b, bounds=[(None, None), (None, None), (None, 1.0)],
                  method="highs")
    if res.status != 0:
        return -1.0, None
    return res.x[2], res.x[:2]


def count_plane(ref, origin, axes, seeds: int = 24, tol: float = 1e-8, max_regions: int = 20000):
    """Exact number of activation regions of the reference on the slice origin + u @ axes, u in [0, 1]^2.
    Returns (count, list of patterns as tuples of bytes)."""
    origin, axes = np.asarray(origin, float), np.asarray(axes, float)
    g = (np.arange(seeds) + 0.5) / seeds
    U = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    todo = []  # patterns still to visit

    def push(points):
        st = ref.states(ref.pre(origin + np.asarray(points).reshape(-1, 2) @ axes))
        todo.extend([s[i] for s in st] for i in range(len(points)))

    push(U)
    seen, regions = set(), {}
    while todo:
        pat = todo.pop()
        key = tuple(p.astype(np.int64).tobytes() for p in pat)
        if key in seen:
            continue
        seen.add(key)
        A, b = constraints(ref, pat, origin, axes)
        r, c = inscribed(A, b)
        if r <= tol:
            continue  # a point on a boundary: not a region
        regions[key] = pat
        if len(regions) > max_regions:
            raise RuntimeError("too many regions for the brute force")
        # vertices of the cell, then a step across the middle of every edge
        Ab = np.concatenate([A, np.eye(2), -np.eye(2)])
        bb = np.concatenate([b, np.ones(2), np.zeros(2)])
        keep = np.linalg.norm(Ab, axis=1) > 1e-12
        hs = HalfspaceIntersection(np.c_[Ab[keep], -bb[keep]], c)
        V = hs.intersections
        V = V[np.argsort(np.arctan2(V[:, 1] - c[1], V[:, 0] - c[0]))]
        steps = []
        for i in range(len(V)):
            p, q = V[i], V[(i + 1) % len(V)]
            if np.linalg.norm(q - p) < 1e-10:
                continue
            mid = (p + q) / 2
            t = (q - p) / np.linalg.norm(q - p)
            nrm = np.array([t[1], -t[0]])
            if np.dot(nrm, mid - c) < 0:
                nrm = -nrm
            for step in (1e-7, 1e-5):
                w = mid + step * nrm
                if np.all(w > 0) and np.all(w < 1):
                    steps.append(w)
        if steps:
            push(steps)
    return len(regions), list(regions)


# -- references -----------------------------------------------------------------------------------------
class TorchRef:
    """Reference for a torch model made of nn.Sequential, Linear, Conv2d, BatchNorm (eval), ReLU, LeakyReLU,
    Hardtanh, MaxPool2d, AvgPool2d, Flatten and ``Res`` blocks (``x + body(x)``), evaluated with torch's
    functional ops in float64."""

    def __init__(self, model, input_shape):
        import torch

        self.torch = torch
        self.model = model.double().eval()
        self.input_shape = tuple(input_shape)
        self.units = []
        with torch.no_grad():
            self._run(torch.zeros((1, *self.input_shape), dtype=torch.float64), None, record=True)

    def _run(self, x, force, record=False, pre=None):
        F = self.torch.nn.functional
        nn = self.torch.nn
        k = [0]

        def nxt():
            f = None if force is None else force[k[0]]
            k[0] += 1
            return f

        def run(m, x):
            if isinstance(m, nn.Sequential):
                for c in m:
                    x = run(c, x)
                return x
            if type(m).__name__ == "Res":
                return x + run(m.body, x)
            if isinstance(m, (nn.ReLU, nn.LeakyReLU)):
                z = x.reshape(x.shape[0], -1)
                if record:
                    self.units.append(("sign", z.shape[1]))
                if pre is not None:
                    pre.append(z.numpy().copy())
                f = nxt()
                s = (z > 0) if f is None else self.torch.as_tensor(f == 1)
                slope = 0.0 if isinstance(m, nn.ReLU) else m.negative_slope
                return self.torch.where(s, z, slope * z).reshape(x.shape)
            if isinstance(m, nn.Hardtanh):
                z = x.reshape(x.shape[0], -1)
                m_ = z.shape[1]
                if record:
                    self.units.append(("clip", np.full(m_, m.min_val), np.full(m_, m.max_val)))
                if pre is not None:
                    pre.append(z.numpy().copy())
                f = nxt()
                s = self._clip_states(z.numpy(), m.min_val, m.max_val) if f is None else f
                s = self.torch.as_tensor(np.broadcast_to(s, z.shape).copy())
                out = self.torch.where(s == 0, self.torch.full_like(z, m.min_val),
                                       self.torch.where(s == 2, self.torch.full_like(z, m.max_val), z))
                return out.reshape(x.shape)
            if isinstance(m, nn.MaxPool2d):
                B, C, H, W = x.shape
                if record:
                    idx = self.torch.arange(C * H * W, dtype=self.torch.float64).reshape(1, C, H, W) + 1
                    cols = F.unfold(idx, m.kernel_size, m.dilation, m.padding, m.stride)  # (1, C*kk, L)
                    kk = cols.shape[1] // C
                    self.units.append(("max", (cols.reshape(C, kk, -1).permute(0, 2, 1).reshape(-1, kk) - 1).long().numpy()))
                win = self.units[k[0]][1]
                z = x.reshape(B, -1)
                if pre is not None:
                    pre.append(z.numpy().copy())
                f = nxt()
                zz = z.numpy()
                vals = np.where(win[None] >= 0, zz[:, np.maximum(win, 0)], -np.inf)
                s = np.argmax(vals, -1) if f is None else np.broadcast_to(f, (B, len(win)))
                sel = win[np.arange(len(win))[None], s]
                out = self.torch.gather(z, 1, self.torch.as_tensor(sel))
                Ho = (H + 2 * _p(m.padding) - _p(m.dilation) * (_p(m.kernel_size) - 1) - 1) // _p(m.stride or m.kernel_size) + 1
                return out.reshape(B, C, Ho, -1)
            return m(x)  # affine layers: torch's own implementation

        out = run(self.model, x)
        return out

    @staticmethod
    def _clip_states(z, lo, hi):
        return (z >= lo).astype(np.int64) + (z > hi).astype(np.int64)

    def pre(self, X, force=None):
        pre = []
        with self.torch.no_grad():
            self._run(self.torch.as_tensor(np.asarray(X, float).reshape(-1, *self.input_shape)), force, pre=pre)
        return pre

    def forward(self, X):
        with self.torch.no_grad():
            return self._run(self.torch.as_tensor(np.asarray(X, float).reshape(-1, *self.input_shape)), None).reshape(
                len(X), -1).numpy()

    def states(self, pre):
        out = []
        for (kind, *info), z in zip(self.units, pre):
            if kind == "sign":
                out.append((z > 0).astype(np.int64))
            elif kind == "clip":
                out.append(self._clip_states(z, info[0], info[1]))
            else:
                win = info[0]
                vals = np.where(win[None] >= 0, z[:, np.maximum(win, 0)], -np.inf)
                out.append(np.argmax(vals, -1))
        return out


def _p(v):
    return v if np.ndim(v) == 0 else v[0]
