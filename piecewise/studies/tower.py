"""Tower functions (seed 001): a one-hidden-layer ReLU net with k = 2..6 units fitted to the bowl
f(x1, x2) = x1^2 + x2^2 + 3 on [-1, 1]^2. Each unit's line w . x + b = 0 cuts the square; on each cell of that
line arrangement the net is one affine piece, and the fit is built from those planar facets ("towers" are
what a few units can stack up). The linear regions of every fitted net are counted exactly
(:func:`piecewise.enumerate_cells`, then merging adjacent cells with equal affine maps).
"""
from __future__ import annotations

import jax
import numpy as np
import optax

from ..nets import mlp
from ..regions import box, enumerate_cells
from ..train import fit


def target(X):
    X = np.asarray(X)
    return X[:, 0] ** 2 + X[:, 1] ** 2 + 3.0


def setup(quick: bool = False) -> dict:
    return {"units": [2, 3, 4, 5, 6], "grid": 21 if quick else 41, "seeds": 2 if quick else 5, "lr": 1e-2,
            "steps": 1500 if quick else 5000}


def fit_tower(k: int, s: dict, *, progress=None) -> dict:
    """Best-of-seeds fit of a 2-k-1 ReLU net; returns net, params, mse, exact cells."""
    g = np.linspace(-1, 1, s["grid"], dtype=np.float32)
    X = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    y = target(X).astype(np.float32)
    net = mlp(2, (k,), 1, "relu")
    best = None
    for seed in range(s["seeds"]):
        p0 = net.init(key=jax.random.key(seed), bias_std=0.5)
        # output bias starts at the target's mean, so the units are not killed chasing the offset of 3
        p0 = (p0[0], (p0[1][0], p0[1][1] + float(y.mean())))
        run = fit(net, p0, X, y, optax.adam(s["lr"]), steps=s["steps"], checkpoints=1, loss="mse")
        if best is None or run[-1]["loss"] < best["mse"]:
            best = {"mse": run[-1]["loss"], "params": run[-1]["params"], "seed": seed}
    cx = enumerate_cells(net, best["params"], box(-1.0, 1.0, 2), progress=False)
    n_lin, _ = cx.linear_regions()
    return {"units": k, "net": net, "params": best["params"], "mse": float(best["mse"]), "seed": best["seed"],
            "activation_regions": int(cx.regions), "linear_regions": int(n_lin), "cells": cx}
