"""The cell complex returned by exact enumeration, and linear regions.

A :class:`CellComplex` holds, for every activation region (cell) of the domain:

* ``vertices`` in the domain's parameter coordinates ``u`` (padded (C, K, d), ``n_vertices`` valid);
  :meth:`CellComplex.cell_vertices` gives them in input coordinates;
* ``patterns`` (packed words, :mod:`piecewise.patterns`);
* ``measure``: length (1D) or area (2D) in input coordinates (for a plane slice, area within the plane);
* the network's affine map on the cell, ``y = u @ jacobian_u + offset`` (``jacobian_u`` (C, d, n_out)).

Linear regions (:meth:`CellComplex.linear_regions`) merge cells that share a facet (an edge in 2D, an
end point in 1D) and carry the same affine map, then take connected components. Cells that touch only at
a vertex are not merged.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import PiecewiseError
from ..nets import check_params
from .domain import Domain, check_domain

AFFINE_RTOL = 1e-8  # two affine maps are equal when they agree to this relative tolerance
GEOM_TOL = 1e-9  # geometric tolerance in the unit parameter square, for shared edges


def prepare_exact(net, params, domain) -> list:
    """Validate an exact enumeration's inputs (PL activation, shapes, domain, finite weights) and return
    the params as float64 NumPy (W, b) pairs. Shared by both engines."""
    if not net.activation.piecewise_linear:
        raise PiecewiseError(f"activation {net.activation} is not piecewise linear: it has no activation regions")
    check_params(net, params)
    check_domain(domain, net.n_in)
    P = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params]
    for i, (W, b) in enumerate(P):
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            raise PiecewiseError(f"W{i} or b{i} contains NaN or inf")
    return P


class ComplexBase:
    """What the 2D cell complex and the n-D polytope complex share: JSON, input Jacobians, affine groups and
    connected components. Subclasses provide ``regions``, ``domain``, ``jacobian_u``, ``offset``, ``measure``,
    ``seconds`` and ``linear_regions``."""

    def jacobian(self) -> np.ndarray:
        """The network's Jacobian on each cell with respect to the input, (C, n_out, n_in), for boxes
        (axes invertible); for slices and segments use ``jacobian_u`` (derivative along the slice)."""
        if self.domain.kind != "box":
            raise ValueError("the input Jacobian is defined for boxes; use jacobian_u along a slice")
        inv = np.linalg.inv(self.domain.axes)  # (n, n): u = (x - origin) @ inv, so du_n/dx_i = inv[i, n]
        return np.einsum("in,cno->coi", inv, self.jacobian_u)

    def affine_groups(self) -> np.ndarray:
        """Group id per cell: cells with the same affine map (to AFFINE_RTOL) share an id."""
        A = np.concatenate([self.jacobian_u.reshape(self.regions, -1), self.offset], 1)
        scale = max(np.abs(A).max(), 1e-300)
        q = np.round(A / (scale * AFFINE_RTOL)).astype(np.int64)
        return np.unique(q, axis=0, return_inverse=True)[1].ravel()

    def _components(self, pairs) -> tuple[int, np.ndarray]:
        """Connected components of the cells under the given adjacent pairs (union-find): (count, labels)."""
        parent = np.arange(self.regions)

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for i, j in pairs:
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
        roots = np.array([find(i) for i in range(self.regions)])
        labels = np.unique(roots, return_inverse=True)[1].ravel()
        return (int(labels.max()) + 1 if len(labels) else 0), labels

    def to_json(self, linear: bool = False) -> dict:
        out = {"regions": self.regions, "method": "exact", "seconds": round(self.seconds, 4),
               "domain": self.domain.describe(), "measure_total": float(self.measure.sum())}
        if linear:
            out["linear_regions"] = self.linear_regions()[0]
        return out


@dataclass
class CellComplex(ComplexBase):
    net: object
    domain: Domain = field(repr=False)
    vertices: np.ndarray = field(repr=False)  # (C, K, d) in u
    n_vertices: np.ndarray = field(repr=False)  # (C,)
    patterns: np.ndarray = field(repr=False)  # (C, n_words) uint32
    jacobian_u: np.ndarray = field(repr=False)  # (C, d, n_out)
    offset: np.ndarray = field(repr=False)  # (C, n_out)
    measure: np.ndarray = field(repr=False)  # (C,)
    seconds: float = 0.0
    params: object = field(default=None, repr=False)  # the float64 parameters the cells were built from

    @classmethod
    def build(cls, net, domain, V, n, words, J, c, seconds, params=None):
        d = V.shape[-1]
        if d == 2:
            k = np.arange(V.shape[1])
            nxt = np.where(k[None, :] + 1 < n[:, None], k[None, :] + 1, 0)
            Vn = np.take_along_axis(V, nxt[..., None], 1)
            valid = k[None, :] < n[:, None]
            area_u = 0.5 * np.sum(np.where(valid, V[..., 0] * Vn[..., 1] - Vn[..., 0] * V[..., 1], 0.0), 1)
        else:
            area_u = V[:, 1, 0] - V[:, 0, 0]
        cx = cls(net, domain, V, n, words, J, c, area_u * domain.measure(), seconds, params)
        uniq = np.unique(np.ascontiguousarray(words).view(np.dtype((np.void, words.dtype.itemsize * words.shape[1]))))
        if len(uniq) != len(n):  # convex regions have unique patterns: a duplicate would mean a bug
            raise RuntimeError(f"internal error: {len(n) - len(uniq)} duplicate activation patterns among {len(n)} cells")
        return cx

    @property
    def regions(self) -> int:
        """Number of activation regions meeting the domain."""
        return int(len(self.n_vertices))

    def __len__(self):
        return self.regions

    def cell_vertices(self, i: int) -> np.ndarray:
        """Vertices of cell i in input coordinates, (n_vertices, n_in) (counter-clockwise in the domain's u)."""
        return self.domain.points(self.vertices[i, : self.n_vertices[i]])

    def interior_points(self) -> np.ndarray:
        """A point inside every cell (vertex average), input coordinates (C, n_in)."""
        valid = np.arange(self.vertices.shape[1])[None, :] < self.n_vertices[:, None]
        u = (self.vertices * valid[..., None]).sum(1) / self.n_vertices[:, None]
        return self.domain.points(u)

    # -- linear regions --------------------------------------------------------------------------------
    def adjacent_pairs(self, candidates: np.ndarray | None = None) -> np.ndarray:
        """Pairs (i, j), i < j, of cells sharing a facet; only among cells of the same ``candidates`` label
        when given. (P, 2) int array."""
        labels = np.zeros(len(self), np.int64) if candidates is None else np.asarray(candidates)
        order = np.argsort(labels, kind="stable")
        bounds = np.flatnonzero(np.diff(labels[order])) + 1
        out = []
        for grp in np.split(order, bounds):
            if len(grp) > 1:
                out.append(self._adjacent_within(grp))
        return np.concatenate(out) if out else np.zeros((0, 2), np.int64)

    def _adjacent_within(self, grp: np.ndarray) -> np.ndarray:
        V, n = self.vertices[grp], self.n_vertices[grp]
        if V.shape[-1] == 1:
            lo, hi = V[:, 0, 0], V[:, 1, 0]
            i, j = np.nonzero(np.abs(hi[:, None] - lo[None, :]) <= GEOM_TOL)
            pairs = np.stack([grp[i], grp[j]], 1)
            return np.sort(pairs, 1)
        valid = np.arange(V.shape[1])[None, :] < n[:, None]
        big = np.where(valid[..., None], V, np.nan)
        lo, hi = np.nanmin(big, 1), np.nanmax(big, 1)
        res = []
        for s in range(0, len(grp), 512):  # candidate pairs by touching bounding boxes, in blocks
            a = np.arange(s, min(s + 512, len(grp)))
            touch = np.all((lo[a, None] <= hi[None] + GEOM_TOL) & (lo[None] <= hi[a, None] + GEOM_TOL), -1)
            touch &= a[:, None] < np.arange(len(grp))[None]
            ia, jb = np.nonzero(touch)
            if len(ia):
                ok = _share_edge(V[a[ia]], n[a[ia]], V[jb], n[jb])
                res.append(np.stack([grp[a[ia][ok]], grp[jb[ok]]], 1))
        return np.concatenate(res) if res else np.zeros((0, 2), np.int64)

    def linear_regions(self) -> tuple[int, np.ndarray]:
        """(number of linear regions, region label per cell): connected unions of facet-sharing cells with
        one affine map."""
        return self._components(self.adjacent_pairs(self.affine_groups()))


def _share_edge(A, na, B, nb) -> np.ndarray:
    """For pairs of convex polygons (A[i], B[i]), whether they share a boundary segment of positive length."""
    P, Ka, _ = A.shape
    Kb = B.shape[1]
    ka, kb = np.arange(Ka), np.arange(Kb)
    an = np.take_along_axis(A, np.where(ka[None] + 1 < na[:, None], ka[None] + 1, 0)[..., None], 1)
    bn = np.take_along_axis(B, np.where(kb[None] + 1 < nb[:, None], kb[None] + 1, 0)[..., None], 1)
    va = ka[None] < na[:, None]
    vb = kb[None] < nb[:, None]
    da = an - A  # (P, Ka, 2)
    la = np.linalg.norm(da, axis=-1)
    ua = da / np.where(la > 0, la, 1.0)[..., None]
    nrm = np.stack([-ua[..., 1], ua[..., 0]], -1)
    # distance of B's edge end points to A's edge lines, and their positions along A's edges
    rel0 = B[:, None, :, :] - A[:, :, None, :]  # (P, Ka, Kb, 2)
    rel1 = bn[:, None, :, :] - A[:, :, None, :]
    d0 = np.abs(np.einsum("pakx,pax->pak", rel0, nrm))
    d1 = np.abs(np.einsum("pakx,pax->pak", rel1, nrm))
    t0 = np.einsum("pakx,pax->pak", rel0, ua)
    t1 = np.einsum("pakx,pax->pak", rel1, ua)
    overlap = np.minimum(np.maximum(t0, t1), la[..., None]) - np.maximum(np.minimum(t0, t1), 0.0)
    ok = (d0 <= GEOM_TOL) & (d1 <= GEOM_TOL) & (overlap > GEOM_TOL) & va[:, :, None] & vb[:, None, :]
    return ok.any((1, 2))
