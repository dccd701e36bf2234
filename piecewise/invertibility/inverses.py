"""Inverses: layerwise (exact, for layerwise-certified nets), per cell (PL maps on a box), Newton (smooth)."""
from __future__ import annotations

import numpy as np

from ..errors import PiecewiseError
from ..nets import MLP, Params
from ..regions import box as _box
from ..regions import enumerate_cells
from ..regions.domain import Domain
from .layers import check_layers
from .pl import _cell_contains, _dets, _singular


def _inverse_activation(act, h):
    if act.name == "tanh":
        if np.any(np.abs(h) >= 1):
            raise PiecewiseError("point outside the image of tanh (|h| >= 1): no preimage")
        return np.arctanh(h)
    if act.name == "sigmoid":
        if np.any((h <= 0) | (h >= 1)):
            raise PiecewiseError("point outside the image of sigmoid: no preimage")
        return np.log(h) - np.log1p(-h)
    if act.name == "softplus":
        if np.any(h <= 0):
            raise PiecewiseError("point outside the image of softplus (h <= 0): no preimage")
        return h + np.log(-np.expm1(-h))
    if act.name == "leaky_relu":
        return np.where(h > 0, h, h / act.slope)
    raise PiecewiseError(f"{act} is not invertible elementwise")


def invert_layerwise(net: MLP, params: Params, y) -> np.ndarray:
    """Exact inverse of a layerwise-certified network (:func:`check_layers`): undo the output layer, then
    each hidden layer (inverse activation, then the linear map), in float64. y: (m, n) -> x (m, n)."""
    rep = check_layers(net, params)
    if not rep.certified:
        raise PiecewiseError(f"not layerwise invertible: {rep.first_failure['reason']}")
    h = np.atleast_2d(np.asarray(y, np.float64))
    for i, (W, b) in enumerate(reversed(params)):
        W, b = np.asarray(W, np.float64), np.asarray(b, np.float64)
        if i > 0:
            h = _inverse_activation(net.activation, h)
        h = np.linalg.solve(W.T, (h - b).T).T
    return h


def invert_pl(net: MLP, params: Params, y, domain: Domain | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Preimages of points y under a piecewise-linear map R^n -> R^n on a box: each cell's affine system is
    solved and the solution kept if it lies in that cell. Returns (x (m, n), found (m,) bool); where several
    cells give different solutions the first is returned (the map is then not injective)."""
    domain = domain if domain is not None else _box(-1.0, 1.0, net.n_in)
    cx = enumerate_cells(net, params, domain, progress=False)
    J = np.swapaxes(cx.jacobian_u, -1, -2)
    ok = ~_singular(cx, _dets(cx))
    cells = np.nonzero(ok)[0]
    Jinv = np.linalg.inv(J[cells])
    y = np.atleast_2d(np.asarray(y, np.float64))
    x = np.full((len(y), net.n_in), np.nan)
    found = np.zeros(len(y), bool)
    for t, yt in enumerate(y):
        U = np.einsum("cdn,cn->cd", Jinv, yt[None] - cx.offset[cells])
        inside = _cell_contains(cx, cells, U) & np.all((U >= -1e-12) & (U <= 1 + 1e-12), axis=1)
        if inside.any():
            x[t] = cx.domain.points(U[np.argmax(inside)])
            found[t] = True
    return x, found


def invert_newton(net: MLP, params: Params, y, x0=None, *, steps: int = 50, tol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Preimages of y under a smooth (or PL, off the kinks) map R^n -> R^n by Newton's method in float64,
    x <- x - a J(x)^{-1} (f(x) - y) with a halved until the residual decreases (damped), from x0 (default 0).
    Stops when every step is below ``tol`` relative to |x|_inf (a test without units: the same for rescaled
    inputs or outputs), or after ``steps`` steps.
    Returns (x, residual |f(x) - y|_inf): judge the residual relative to the map's scale
    (:func:`~piecewise.invertibility.witness.verified`); a large one means no convergence (no preimage nearby,
    or a singular Jacobian on the way)."""
    import jax
    import jax.numpy as jnp

    y = np.atleast_2d(np.asarray(y, np.float64))
    x = np.zeros_like(y) if x0 is None else np.atleast_2d(np.asarray(x0, np.float64)).copy()
    with jax.enable_x64(True):
        p = jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a, np.float64)), params)
        f = jax.jit(lambda v: net.apply(p, v))
        jac = jax.jit(jax.vmap(jax.jacfwd(lambda v: net.apply(p, v))))
        r = np.asarray(f(jnp.asarray(x))) - y
        for _ in range(steps):
            if not np.any(r):
                break
            J = np.asarray(jac(jnp.asarray(x)))
            try:
                dx = np.linalg.solve(J, r[..., None])[..., 0]
            except np.linalg.LinAlgError:  # some points have a singular Jacobian: they stop, the others go on
                dx = np.zeros_like(x)
                for t in range(len(x)):
                    try:
                        dx[t] = np.linalg.solve(J[t], r[t])
                    except np.linalg.LinAlgError:
                        pass
            # damped: halve the step (per point) until the residual decreases, at most 12 times
            a = np.ones(len(x))
            rn = np.abs(r).max(-1)
            for _ in range(12):
                xt = x - a[:, None] * dx
                rt = np.asarray(f(jnp.asarray(xt))) - y
                worse = ~(np.abs(rt).max(-1) < rn) & (rn > 0)
                if not worse.any():
                    break
                a = np.where(worse, a / 2, a)
            x, r = xt, rt
            step = a * np.abs(dx).max(-1)
            if np.all(step <= tol * np.abs(x).max(-1)) or not np.all(np.isfinite(x)):
                break
        res = np.abs(np.asarray(f(jnp.asarray(x))) - y).max(-1)
    return x, res
