"""Collision witnesses, checked by evaluating the network: the one place where a "no" is verified."""
from __future__ import annotations

import numpy as np

WITNESS_RTOL = 1e-9  # |f(x1) - f(x2)|_inf <= WITNESS_RTOL * (1 + |f|_inf) for a verified collision
DISTINCT_RTOL = 1e-9  # |x1 - x2| > DISTINCT_RTOL * (1 + |x1|_inf): two different points


def apply64(net, params, X) -> np.ndarray:
    """The network on points X (m, n_in) in float64."""
    import jax
    import jax.numpy as jnp

    with jax.enable_x64(True):
        p = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a, np.float64)), params)
        return np.asarray(net.apply(p, jnp.asarray(np.asarray(X, np.float64))))


def verified(net, params, x1, x2) -> dict | None:
    """``{"x1", "x2"}`` if x1 != x2 and f(x1) = f(x2) in float64 (relative to the outputs' size), else None."""
    x1, x2 = np.asarray(x1, np.float64), np.asarray(x2, np.float64)
    if not (np.all(np.isfinite(x1)) and np.all(np.isfinite(x2))):
        return None
    if np.abs(x1 - x2).max() <= DISTINCT_RTOL * (1 + np.abs(x1).max()):
        return None
    y = apply64(net, params, np.stack([x1, x2]))
    if np.abs(y[0] - y[1]).max() <= WITNESS_RTOL * (1 + np.abs(y).max()):
        return {"x1": x1.tolist(), "x2": x2.tolist()}
    return None
