"""Collisions of smooth (or any) nets R^n -> R^n that fail the layer theorem.

* **Constructive**: if layers 0..i-1 are homeomorphisms (square, nonsingular, strictly monotone) and layer i
  is singular or narrowing (its W (n_i, m) has a vector v with v @ W = 0), then h and h + t v have the same
  image; inverting the earlier layers on both (they are in the image for small t) gives x1 != x2 with
  f(x1) = f(x2). This covers a singular first layer at once (no earlier layers).
* **Search**: otherwise, multi-start Newton solves of f(x2) = f(x1) from starts away from x1.

Every collision is checked by evaluating the network in float64 before it is returned.
"""
from __future__ import annotations

import numpy as np

from ..nets import MLP, Params
from .inverses import _inverse_activation, invert_newton
from .witness import forward64, verified


def _hidden(net, params, x, upto: int) -> np.ndarray:
    """Output of the first ``upto`` hidden layers at x (float64)."""
    from .jacobians import _act64

    h = np.asarray(x, np.float64)
    for W, b in params[:upto]:
        h = _act64(net.activation, h @ np.asarray(W, np.float64) + np.asarray(b, np.float64))
    return h


def _invert_prefix(net, params, h, upto: int) -> np.ndarray:
    """Undo the first ``upto`` hidden layers (each square and nonsingular, strictly monotone activation)."""
    for W, b in reversed(params[:upto]):
        z = _inverse_activation(net.activation, h)
        h = np.linalg.solve(np.asarray(W, np.float64).T, z - np.asarray(b, np.float64))
    return h


def constructive_collision(net: MLP, params: Params, report) -> dict | None:
    """The constructive collision described in the module docstring, from a layer-theorem report
    (:class:`~piecewise.invertibility.results.LayerReport`); None if it does not apply or fails the check."""
    i = report.first_failure["layer"]
    W = np.asarray(params[i][0], np.float64)
    if W.ndim != 2:
        return None
    u, s, vt = np.linalg.svd(W, full_matrices=True)  # v @ W = 0 for the left singular vectors of s = 0
    rank = int(np.sum(s > s.max() * max(W.shape) * np.finfo(np.float64).eps)) if s.size else 0
    if rank >= W.shape[0]:
        return None  # widening or full rank: nothing collapses at this layer
    v = u[:, -1]
    f = forward64(net, params)
    for x1 in (np.zeros(net.n_in), 0.1 * np.ones(net.n_in)):
        h1 = _hidden(net, params, x1, i)
        for t in 10.0 ** -np.arange(0, 8):
            try:
                x2 = _invert_prefix(net, params, h1 + t * v, i)
            except Exception:  # noqa: BLE001 - outside the earlier layers' image: try a smaller step
                continue
            w = verified(f, x1, x2)
            if w is not None:
                return w
    return None


def search_collision(net: MLP, params: Params, *, targets: int = 24, starts: int = 8, scale: float = 2.0,
                     seed: int = 0) -> dict | None:
    """Multi-start Newton search for x2 != x1 with f(x2) = f(x1): ``targets`` points x1 in [-scale, scale]^n,
    each solved from ``starts`` starts at distances scale/4 .. 2 scale. Returns a checked collision or None."""
    rng = np.random.default_rng(seed)
    n = net.n_in
    X1 = rng.uniform(-scale, scale, (targets, n))
    f = forward64(net, params)
    Y = f(X1)
    for k in range(starts):
        d = rng.normal(size=(targets, n))
        d *= (scale * 2.0 ** (k % 4 - 2)) / np.linalg.norm(d, axis=1, keepdims=True)
        X2, res = invert_newton(net, params, Y, X1 + d)
        for t in np.nonzero(res <= 1e-10 * (1 + np.abs(Y).max(1)))[0]:
            w = verified(f, X1[t], X2[t])
            if w is not None:
                return w
    return None
