"""Domains on which regions are counted: boxes, 2D plane slices, segments.

Every domain is an affine image of the unit cube: ``x = origin + u @ axes`` with ``u`` in ``[0, 1]^d``
(``axes`` is (d, n_in)). The exact engine works in the *centred* coordinates ``c = u - 1/2`` in
``[-1/2, 1/2]^d``, ``x = center + c @ axes``: near the domain's centre they keep every digit of a point
however large the domain is (a box of 1e12 loses nothing around 0). A box [lo, hi]^n has ``axes = (hi - lo) I``; the plane through p0, p1, p2 is
``p0 + s (p1 - p0) + t (p2 - p0)``, ``s, t`` in [0, 1] (Hanin & Rolnick's slices through three inputs);
a segment is ``p0 + s (p1 - p0)``. Regions of a slice are the cells of the network restricted to it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import PiecewiseError


@dataclass(frozen=True, eq=False)
class Domain:
    """``x = origin + u @ axes``, ``u`` in the unit cube [0, 1]^d. Build with :func:`box`, :func:`plane`,
    :func:`segment`."""

    kind: str
    origin: np.ndarray  # (n_in,) float64
    axes: np.ndarray  # (d, n_in) float64
    # the float64 numbers that define the domain exactly, when origin + axes are rounded from them: a box's
    # corners (lo, hi), a plane's three points, a segment's two (exact enumeration works on this exact set)
    exact: tuple | None = field(default=None, repr=False)

    @property
    def dim(self) -> int:
        return self.axes.shape[0]

    @property
    def n_in(self) -> int:
        return self.axes.shape[1]

    def points(self, u) -> np.ndarray:
        """Map parameter coordinates u (..., d) to input points (..., n_in), float64."""
        return self.origin + np.asarray(u, np.float64) @ self.axes

    @property
    def center(self) -> np.ndarray:
        """The point at u = 1/2 (c = 0): ``origin + axes.sum(0) / 2`` (exact for symmetric boxes)."""
        return self.origin + 0.5 * self.axes.sum(0)

    def points_c(self, c) -> np.ndarray:
        """Map centred coordinates c = u - 1/2 (..., d) to input points (..., n_in), float64."""
        return self.center + np.asarray(c, np.float64) @ self.axes

    def describe(self) -> dict:
        """JSON-ready description."""
        if self.kind == "box":
            hi = self.exact[1] if self.exact is not None else self.origin + np.diag(self.axes)
            return {"kind": "box", "lo": self.origin.tolist(), "hi": np.asarray(hi).tolist()}
        pts = [self.origin] + [self.origin + a for a in self.axes]
        return {"kind": self.kind, "points": [p.tolist() for p in pts]}

    def measure(self) -> float:
        """Length / area / volume of the domain (d-dimensional): the product of the axes' singular values
        (exact products of the sides for a box; no overflow of the Gram determinant on large domains)."""
        if self.kind == "box":
            return float(np.prod(np.abs(np.diag(self.axes))))
        return float(np.prod(np.linalg.svd(self.axes, compute_uv=False)))


def _finite(name, a):
    if not np.all(np.isfinite(a)):
        raise PiecewiseError(f"{name} contains NaN or inf")


def box_bounds(lo, hi, n_in: int | None = None):
    """Box bounds as float64 arrays (n_in,) each, broadcast from scalars or arrays of length n_in."""
    lo = np.asarray(lo, np.float64)
    hi = np.asarray(hi, np.float64)
    if n_in is None:
        n_in = max(lo.size, hi.size)
    try:
        return np.broadcast_to(lo, (n_in,)).copy(), np.broadcast_to(hi, (n_in,)).copy()
    except ValueError:
        raise PiecewiseError(f"box bounds have {lo.size} and {hi.size} entries, the network has {n_in} inputs") from None


def box(lo, hi, n_in: int | None = None) -> Domain:
    """The box [lo, hi]^n_in (scalars) or the product of intervals [lo_i, hi_i] (arrays of length n_in)."""
    lo, hi = box_bounds(lo, hi, n_in)
    _finite("box", np.concatenate([lo, hi]))
    if np.any(hi <= lo):
        raise PiecewiseError(f"empty box: need LO < HI, got LO={lo.tolist()} HI={hi.tolist()}")
    with np.errstate(over="ignore"):
        width = hi - lo
    if not np.all(np.isfinite(width)):
        raise PiecewiseError(f"the box is too large for float64: its width HI - LO overflows (LO={lo.tolist()} "
                             f"HI={hi.tolist()})")
    return Domain("box", lo, np.diag(width), exact=(lo, hi))


def plane(p0, p1=None, p2=None) -> Domain:
    """The 2D slice p0 + s (p1 - p0) + t (p2 - p0), s, t in [0, 1]. Accepts three points or one (3, n_in) array."""
    P = np.asarray(p0 if p1 is None else [p0, p1, p2], np.float64)
    if P.ndim != 2 or P.shape[0] != 3:
        raise PiecewiseError(f"a plane needs 3 points as a (3, n_in) array, got shape {P.shape}")
    _finite("plane points", P)
    axes = P[1:] - P[0]
    if np.linalg.matrix_rank(axes, tol=1e-12 * max(1.0, np.abs(axes).max())) < 2:
        raise PiecewiseError("plane points are collinear (or equal): they span no 2D slice")
    return Domain("plane", P[0].copy(), axes, exact=(P[0].copy(), P[1].copy(), P[2].copy()))


def segment(p0, p1) -> Domain:
    """The segment p0 + s (p1 - p0), s in [0, 1]."""
    P = np.asarray([p0, p1], np.float64)
    if P.ndim != 2:
        raise PiecewiseError(f"a segment needs 2 points of equal dimension, got shape {P.shape}")
    _finite("segment points", P)
    if np.all(P[1] == P[0]):
        raise PiecewiseError("segment end points are equal")
    return Domain("segment", P[0].copy(), (P[1] - P[0])[None, :], exact=(P[0].copy(), P[1].copy()))


def check_domain(domain: Domain, n_in: int) -> None:
    if domain.n_in != n_in:
        raise PiecewiseError(f"the {domain.kind} lives in R^{domain.n_in} but the network has {n_in} inputs")
