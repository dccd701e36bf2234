"""Jacobian fields, per-cell Jacobians and analytic log-determinants (float64)."""
from __future__ import annotations

import numpy as np

from ..errors import PiecewiseError
from ..nets import MLP, Params
from ..regions import enumerate_cells
from ..regions.domain import Domain
from .layers import require_square_map


def _act64(act, z):
    """The activation applied in float64 (JAX truncates to float32 unless x64 is on)."""
    import jax

    with jax.enable_x64(True):
        return np.asarray(act(jax.numpy.asarray(z)))


def _log_abs_derivative(act, z):
    """log |s'(z)| of an elementwise activation, stable for large |z| (float64 NumPy)."""
    softplus = lambda t: np.logaddexp(0.0, t)  # noqa: E731
    if act.name == "tanh":  # log(1 - tanh^2 z) = 2 (log 2 - |z| - softplus(-2|z|))
        a = np.abs(z)
        return 2.0 * (np.log(2.0) - a - softplus(-2.0 * a))
    if act.name == "sigmoid":  # log s(z) + log s(-z)
        return -softplus(-z) - softplus(z)
    if act.name == "softplus":  # log sigmoid(z)
        return -softplus(-z)
    if act.name == "leaky_relu":
        return np.where(z > 0, 0.0, np.log(abs(act.slope)) if act.slope != 0 else -np.inf)
    raise PiecewiseError(f"no elementwise log-derivative for {act}")


def log_abs_det(net: MLP, params: Params, x) -> np.ndarray:
    """log |det J(x)| of a network whose layers are all square (float64, analytic per layer):
    ``sum_l log|det W_l| + sum_j log|s'(z_lj)|``. Finite where a float32 ``slogdet`` of a saturated tanh net
    returns -inf. x: (m, n) -> (m,). Evaluate off the kinks of leaky ReLU (the derivative there is one-sided)."""
    x = np.atleast_2d(np.asarray(x, np.float64))
    out = np.zeros(len(x))
    h = x
    for i, (W, b) in enumerate(params):
        W, b = np.asarray(W, np.float64), np.asarray(b, np.float64)
        if W.ndim != 2 or W.shape[0] != W.shape[1]:
            raise PiecewiseError(f"log_abs_det needs square layers; layer {i} has shape {W.shape}")
        out += np.linalg.slogdet(W)[1]
        z = h @ W + b
        if i < len(params) - 1:
            out += _log_abs_derivative(net.activation, z).sum(-1)
            h = _act64(net.activation, z)
    return out


def jacobian_field(net: MLP, params: Params, domain: Domain, resolution: int = 128) -> dict:
    """Jacobian statistics on a grid of a 2D box or plane (float64): ``det``, ``sign``, ``sigma_min``,
    ``condition`` (arrays (r, r)), and ``singular`` (sigma_min <= sigma_max * max(m, n) * eps). For
    piecewise-linear nets grid points on a kink are left out (NaN), never differentiated there."""
    import jax
    import jax.numpy as jnp

    from ..patterns import classify
    from ..regions.grid import grid_points

    require_square_map(net, "jacobian_field")
    X = grid_points(domain, resolution).reshape(-1, net.n_in)
    with jax.enable_x64(True):
        p = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a, np.float64)), params)
        J = np.asarray(jax.vmap(jax.jacfwd(lambda x: net.apply(p, x)))(jnp.asarray(X)))
    s = np.linalg.svd(J, compute_uv=False)
    det = np.linalg.det(J)
    if net.activation.piecewise_linear:
        _, valid = classify(net, params, X, np.eye(net.n_in))
        det[~valid] = np.nan
        s[~valid] = np.nan
    shape = (resolution, resolution)
    smin, smax = s[:, -1], s[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = np.where(smin > 0, smax / np.where(smin > 0, smin, 1.0), np.inf)
    cond[np.isnan(smin)] = np.nan
    return {"det": det.reshape(shape), "sign": np.sign(det).reshape(shape), "sigma_min": smin.reshape(shape),
            "condition": cond.reshape(shape),
            "singular": (smin <= smax * net.n_in * np.finfo(np.float64).eps).reshape(shape), "domain": domain}


def cell_jacobians(net: MLP, params: Params, domain: Domain) -> dict:
    """Per exact cell (float64): ``det``, ``sigma_min``, ``condition`` of the network's Jacobian with respect
    to the input (boxes), plus the cells' ``interior_points``. Exact: one affine map per cell, no kinks."""
    require_square_map(net, "cell_jacobians")
    if domain.kind != "box":
        raise PiecewiseError("cell_jacobians works on boxes (the input Jacobian needs the full input space)")
    cx = enumerate_cells(net, params, domain, progress=False)
    J = cx.jacobian()  # (C, n_out, n_in)
    s = np.linalg.svd(J, compute_uv=False)
    with np.errstate(divide="ignore"):
        cond = np.where(s[:, -1] > 0, s[:, 0] / np.where(s[:, -1] > 0, s[:, -1], 1.0), np.inf)
    return {"det": np.linalg.det(J), "sigma_min": s[:, -1], "condition": cond, "jacobian": J,
            "interior_points": cx.interior_points(), "cells": cx.regions}
