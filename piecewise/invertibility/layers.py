"""The layer theorem (Olah 2014): x -> s(W x + b) with W square and nonsingular and s continuous and
strictly monotone is a homeomorphism onto its image; so is a composition of such layers."""
from __future__ import annotations

import numpy as np

from ..errors import PiecewiseError
from ..nets import MLP, Params, check_params
from .results import LayerReport


def check_layers(net: MLP, params: Params) -> LayerReport:
    """The layer theorem, layer by layer (float64). Each layer entry has its shape, det, sigma_min, sigma_max,
    condition number, and whether it passes; ``first_failure`` names the first layer that does not (this
    does **not** prove the network is not a homeomorphism: a ReLU net with a wide hidden layer can be one)."""
    check_params(net, params)
    act = net.activation
    layers, failure = [], None
    for i, (W, b) in enumerate(params):
        W = np.asarray(W, np.float64)
        hidden = i < len(params) - 1
        entry = {"layer": i, "shape": list(W.shape), "kind": "hidden" if hidden else "output"}
        reason = None
        if W.ndim == 3:
            reason = f"maxout layer {i} is not an elementwise activation of a square linear map"
        elif W.shape[0] != W.shape[1]:
            reason = f"layer {i} is not square ({W.shape[0]} -> {W.shape[1]})"
        else:
            s = np.linalg.svd(W, compute_uv=False)
            smin, smax = float(s.min()), float(s.max())
            entry.update({"det": float(np.linalg.det(W)), "sigma_min": smin, "sigma_max": smax,
                          "condition": float(smax / smin) if smin > 0 else float("inf")})
            if numerically_singular(smin, smax, W.shape):
                reason = f"layer {i} is numerically singular (sigma_min {smin:.3g}, sigma_max {smax:.3g})"
            elif hidden and not (act.continuous and act.strictly_monotone):
                reason = f"activation {act} of layer {i} is not strictly monotone"
        entry["passes"] = reason is None
        if reason is not None:
            entry["reason"] = reason
            failure = failure or {"layer": i, "reason": reason}
        layers.append(entry)
    return LayerReport(failure is None, layers, failure)


def require_square_map(net, what: str = "a homeomorphism R^n -> R^n") -> None:
    """Raise :class:`PiecewiseError` unless the network maps R^n -> R^n."""
    if net.n_in != net.n_out:
        raise PiecewiseError(f"{what} needs n_in = n_out: the network has {net.n_in} inputs and {net.n_out} outputs")


def numerically_singular(smin: float, smax: float, shape) -> bool:
    """sigma_min <= sigma_max * max(m, n) * eps (SCIENCE.md, invertibility numerics)."""
    return smin <= smax * max(shape) * np.finfo(np.float64).eps
