"""The one place where "zero" is defined.

A pre-activation ``z`` is *on a boundary* when ``|z - breakpoint| <= rtol(dtype) * scale``, where
``scale`` bounds the magnitude of the terms that were summed to get ``z`` (``|b| + sum_k |W_kj| max|h|``).
A relative test is used because the absolute size of pre-activations varies with the weights.

- float32 (fast grid passes): ``rtol = 2**-19`` (about 1.9e-6, ten times the largest float32 error seen on
  He-init nets up to 8 x 64 and 3 x 128, measured against this scale; tests re-measure it). A point
  that comes this close to a boundary in float32 is not trusted and is re-evaluated in float64.
- float64 (re-checks and exact enumeration): ``rtol = 1e-10``; float64 rounding of an MLP of moderate
  depth stays several orders of magnitude below it.

Exact enumeration works with affine functions ``u -> u.g + e`` of the domain's parameter coordinates
``u`` in the unit cube; :func:`affine_tol` is their boundary tolerance (``|g|_1 + |e|`` bounds the function
on the cube) and :func:`sides` the one rule that says whether such a function is strictly positive /
strictly negative somewhere on a cell (given its values at the cell's vertices). Two affine maps of the
network on neighbouring cells are equal when their gradients agree within :func:`rtol` of the pair's own
size (:func:`gradients_equal`). Points of the unit parameter cube coincide within :data:`U_ATOL`.
"""
from __future__ import annotations

import numpy as np

_RTOL = {np.dtype(np.float32): 2.0**-19, np.dtype(np.float64): 1e-10}

#: two points of the unit parameter cube (exact enumeration's coordinates) coincide within this distance
U_ATOL = 1e-12


def rtol(dtype) -> float:
    """Relative tolerance used to decide that a pre-activation sits on a breakpoint."""
    dt = np.dtype(dtype)
    if dt not in _RTOL:
        raise ValueError(f"unsupported dtype {dt}: use float32 or float64")
    return _RTOL[dt]


def affine_tol(g, e, axis: int = -1, dtype=np.float64):
    """Boundary tolerance of affine functions ``u -> u.g + e`` on the unit cube: ``rtol * (|g|_1 + |e|)``.

    g (..., d) with the coordinates on ``axis``, e the matching shape without it -> e's shape."""
    return rtol(dtype) * (np.abs(g).sum(axis) + np.abs(e))


def sides(f, tol, valid):
    """Whether an affine function is strictly above / strictly below zero somewhere on each cell.

    f (B, K) values at the cells' vertices, tol (B,) or (B, 1), valid (B, K) which vertices exist.
    Returns (up, down), bool (B,) each. A cell is cut iff ``up & down``; neither means the function is
    identically zero on the cell (within the tolerance)."""
    t = np.reshape(tol, (len(f), 1)) if np.ndim(tol) else tol
    return np.any(valid & (f > t), 1), np.any(valid & (f < -t), 1)


#: float64 rounding of a sum of terms, relative to the sum of their magnitudes (fan-in up to ~1000 x eps)
SUM_RTOL = 1e-13


def gradients_equal(Ja, Jb, Sa=None, Sb=None, dtype=np.float64):
    """Pairs of affine maps with equal gradients: Ja, Jb (P, d, n_out) -> bool (P,).

    Output by output, relative to the pair's own size: ``|Ja - Jb| <= rtol * (max|Ja| + max|Jb|)`` (max over
    the d coordinates), plus the rounding that a sum of large cancelling terms can leave,
    ``SUM_RTOL * (Sa + Sb)`` when the term bounds ``Sa, Sb`` (``sum |M| @ |W|``, same shape) are given. A
    pair of exactly zero gradients is equal."""
    own = np.abs(Ja).max(1, keepdims=True) + np.abs(Jb).max(1, keepdims=True)
    tol = rtol(dtype) * own
    if Sa is not None:
        tol = tol + SUM_RTOL * (Sa + Sb)
    return np.all(np.abs(Ja - Jb) <= tol, axis=(1, 2))
