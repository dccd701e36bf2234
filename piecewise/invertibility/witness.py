"""Collision witnesses, checked by evaluating the network: the one place where a "no" is verified.

Piecewise-linear maps are checked exactly (:meth:`piecewise.invertibility.exact.ExactPL.collision`). Smooth
maps can only be checked in float64 (:func:`verified`), and the test is relative to the map's own scale, never
to an absolute ``1``: x1 != x2 collide when

    |f(x1) - f(x2)|_inf + err(x1) + err(x2)  <=  WITNESS_RTOL * max_k |J(x_k)|_inf * |x1 - x2|_inf

where ``err`` bounds the rounding error of each float64 evaluation (from the magnitudes of the terms summed
through the network, :func:`error64`) and J is the Jacobian at the points (:func:`jacobian64`): the images
agree to a fraction WITNESS_RTOL of what the map would move points this far apart, and float64 resolves that
fraction. Multiplying the output by c != 0 or rescaling the inputs (W0 / s, points s times larger) scales both
sides alike, so no verdict changes. Where float64 cannot resolve the difference (saturated tanh units, a large
constant output offset) the check fails and the answer stays undecided.
"""
from __future__ import annotations

import numpy as np

from ..numerics import U, gamma

WITNESS_RTOL = 1e-9  # see the module docstring
DISTINCT_RTOL = 1e-9  # |x1 - x2|_inf > DISTINCT_RTOL * max(|x1|_inf, |x2|_inf): two different points


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


def jacobian64(net, params):
    """The float64 Jacobian X (m, n_in) -> (m, n_out, n_in) of an MLP (jax.jacfwd with x64)."""
    import jax
    import jax.numpy as jnp

    def jac(X):
        with jax.enable_x64(True):
            p = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a, np.float64)), params)
            return np.asarray(jax.vmap(jax.jacfwd(lambda v: net.apply(p, v)))(jnp.asarray(np.asarray(X, np.float64))))
    return jac


_LIPSCHITZ = {"tanh": 1.0, "sigmoid": 0.25, "softplus": 1.0}
ACT_ULPS = 16.0  # assumed accuracy of a float64 tanh / sigmoid / softplus, in units of |value| * U


def error64(net, params):
    """A bound on the rounding error of the float64 forward pass of an MLP with an elementwise activation:
    X (m, n_in) -> (m, n_out). Per layer ``z = h @ W + b`` errs by ``gamma_{fan_in+1} (|h| @ |W| + |b|)`` plus
    the propagated error ``E_h @ |W|``; the activation adds ``Lip * E_z + ACT_ULPS * U * |act(z)|``."""
    from .jacobians import _act64

    act = net.activation
    if act.piecewise_linear:
        lip = max(abs(s) for s in act.slopes) if act.slopes else 1.0
    else:
        lip = _LIPSCHITZ.get(act.name, 1.0)
    P = [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params]

    def err(X):
        h = np.asarray(X, np.float64)
        E = np.zeros_like(h)
        for i, (W, b) in enumerate(P):
            if W.ndim != 2:
                return np.full((len(h), P[-1][1].shape[-1]), np.inf)
            z = h @ W + b
            Ez = gamma(W.shape[0] + 1) * (np.abs(h) @ np.abs(W) + np.abs(b)) + E @ np.abs(W)
            if i == len(P) - 1:
                return 2.0 * Ez
            h = _act64(act, z)
            E = lip * Ez + ACT_ULPS * U * np.abs(h)
        return 2.0 * E
    return err


def verified(f, x1, x2, jac=None, err=None) -> dict | None:
    """``{"x1", "x2"}`` if x1 != x2 collide in float64 by the relative test of the module docstring, else None.
    ``f`` maps points (m, n_in) to outputs (m, n_out) in float64 (:func:`forward64`), ``jac`` to Jacobians
    (m, n_out, n_in) (:func:`jacobian64`) and ``err`` to bounds (m, n_out) of the evaluation's rounding errors
    (:func:`error64`). Without ``jac`` the map's scale is the spread of the images of the segment x1 -> x2
    (three interior points); without ``err`` the error is taken as 64 U |f|."""
    x1, x2 = np.asarray(x1, np.float64), np.asarray(x2, np.float64)
    if not (np.all(np.isfinite(x1)) and np.all(np.isfinite(x2))):
        return None
    dx = np.abs(x1 - x2).max()
    if not dx > DISTINCT_RTOL * max(np.abs(x1).max(), np.abs(x2).max()):
        return None
    X = np.stack([x1, x2])
    y = f(X)
    if not np.all(np.isfinite(y)):
        return None
    if jac is not None:
        J = np.asarray(jac(X))
        scale = np.abs(J).sum(-1).max() * dx  # |J|_inf (max row sum) times the distance
    else:
        t = np.array([0.25, 0.5, 0.75])[:, None]
        scale = np.abs(f(x1 + t * (x2 - x1)) - y[0]).max()
    e = np.asarray(err(X)) if err is not None else 64.0 * U * np.abs(y)
    if not np.all(np.isfinite(e)) or not scale > 0:
        return None
    if np.abs(y[0] - y[1]).max() + e[0].max() + e[1].max() <= WITNESS_RTOL * scale:
        return {"x1": x1.tolist(), "x2": x2.tolist()}
    return None
