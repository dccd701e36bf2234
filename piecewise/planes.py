"""Plane slices around a point: the three points a ``--plane P.npy`` file holds.

:func:`plane_around` gives the square of half-side ``radius`` around a centre ``x`` in two random orthonormal
directions ``v1, v2`` (Hanin & Rolnick's slices through data points; the benchmarks' slices of real nets):
``p0 = x - r (v1 + v2)``, ``p1 = x + r (v1 - v2)``, ``p2 = x - r (v1 - v2)``, so that
``p0 + s (p1 - p0) + t (p2 - p0) = x + r (2s - 1) v1 + r (2t - 1) v2`` for s, t in [0, 1]. Inputs are
flattened in C order (an image (C, H, W) is a point of R^(C H W)), as :func:`piecewise.regions.plane`
and the CLI's ``--plane`` take them. ``piecewise plane --weights F --out P.npy`` writes one.
"""
from __future__ import annotations

import numpy as np

from .errors import PiecewiseError


def random_directions(n: int, seed: int = 0) -> np.ndarray:
    """Two orthonormal directions of R^n, (2, n) float64: the QR factor of a (n, 2) standard normal draw of
    ``np.random.default_rng(seed)`` (uniform on the pairs of orthonormal vectors). Needs n >= 2."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise PiecewiseError(f"a plane needs at least 2 input dimensions, got {n!r}")
    Q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(int(n), 2)))
    return Q.T.copy()


def plane_around(x, radius: float, seed: int = 0) -> np.ndarray:
    """The three points (3, n) float64 of the square slice of half-side ``radius`` centred at ``x`` (any
    shape, flattened in C order to n entries) in the directions :func:`random_directions` ``(n, seed)``
    (module docstring: the slice's s, t in [0, 1] cover ``x + [-radius, radius]^2``)."""
    x = np.asarray(x, np.float64).reshape(-1)
    try:
        r = float(radius)
    except (TypeError, ValueError):
        raise PiecewiseError(f"radius must be a number, got {radius!r}") from None
    if not (np.isfinite(r) and r > 0):
        raise PiecewiseError(f"radius must be a positive number, got {radius!r}")
    if not np.all(np.isfinite(x)):
        raise PiecewiseError("the centre contains NaN or inf")
    v1, v2 = random_directions(x.size, seed)
    return np.stack([x - r * (v1 + v2), x + r * (v1 - v2), x - r * (v1 - v2)])
