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


def forward64(net, params=None):
    """The float64 map X (m, n_in) -> (m, n_out) of an MLP (smooth ones too), a graph or a StagedNet."""
    if params is None or hasattr(net, "to_staged"):
        from ..staged import as_staged

        sn = as_staged(net, params)
        return lambda X: sn.forward(np.asarray(X, np.float64))[0]
    return lambda X: apply64(net, params, X)


def verified(f, x1, x2) -> dict | None:
    """``{"x1", "x2"}`` if x1 != x2 and f(x1) = f(x2) in float64 (relative to the outputs' size), else None.
    ``f`` maps points (m, n_in) to outputs (m, n_out) in float64 (:func:`forward64`)."""
    x1, x2 = np.asarray(x1, np.float64), np.asarray(x2, np.float64)
    if not (np.all(np.isfinite(x1)) and np.all(np.isfinite(x2))):
        return None
    if np.abs(x1 - x2).max() <= DISTINCT_RTOL * (1 + np.abs(x1).max()):
        return None
    y = f(np.stack([x1, x2]))
    if np.abs(y[0] - y[1]).max() <= WITNESS_RTOL * (1 + np.abs(y).max()):
        return {"x1": x1.tolist(), "x2": x2.tolist()}
    return None
