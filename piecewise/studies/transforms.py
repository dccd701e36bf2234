"""A layer as five operations on space (seed 002). For a 2 -> 2 layer h = act(x W + b) with W = U S V^T
(SVD; row-vector convention, so x W = ((x U) S) V^T):

1. x U — a rotation (or reflection, if det U < 0),
2. · S — scaling along the axes by the singular values,
3. · V^T — a second rotation (or reflection),
4. + b — a translation,
5. act — the activation bends space (tanh squashes it into the open square (-1, 1)^2).

Steps 1-4 are affine (lines stay lines, parallel stays parallel); only step 5 bends. The study draws a grid and
two-class data through each stage, then trains the same 2-2(-2) tanh net from one initialisation with SGD,
momentum and Adam, and from several initialisations with Adam, and records how each moves the first layer
(its rotation angles, singular values and translation over training).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..datasets import spirals
from ..nets import mlp
from ._common import train_scan

STAGES = ("input", "rotate (U)", "scale (S)", "rotate (V^T)", "translate (+b)", "bend (act)")


def decompose(W) -> dict:
    """SVD of a 2x2 W = U diag(S) V^T, with each rotation's angle (radians) and reflection flag."""
    U, S, Vt = np.linalg.svd(np.asarray(W, np.float64))
    ang = lambda R: float(np.arctan2(R[1, 0], R[0, 0]))  # noqa: E731
    return {"U": U, "S": S, "Vt": Vt, "angle_U": ang(U), "angle_Vt": ang(Vt),
            "reflect_U": bool(np.linalg.det(U) < 0), "reflect_Vt": bool(np.linalg.det(Vt) < 0)}


def stages(W, b, points, act=np.tanh) -> list:
    """The points after each of the five operations: list of 6 arrays (m, 2), the first the input."""
    d = decompose(W)
    P = [np.asarray(points, np.float64)]
    P.append(P[-1] @ d["U"])
    P.append(P[-1] * d["S"])
    P.append(P[-1] @ d["Vt"])
    P.append(P[-1] + np.asarray(b, np.float64))
    P.append(act(P[-1]))
    return P


def grid_lines(lo=-1.0, hi=1.0, lines=11, samples=60) -> list:
    """Grid lines as (samples, 2) polylines."""
    t = np.linspace(lo, hi, samples)
    out = []
    for c in np.linspace(lo, hi, lines):
        out.append(np.c_[t, np.full_like(t, c)])
        out.append(np.c_[np.full_like(t, c), t])
    return out


def setup(quick: bool = False) -> dict:
    return {"widths": (2, 2), "turns": 0.5, "n": 300, "steps": 1000 if quick else 5000,
            "record_every": 50 if quick else 100,
            "optimizers": {"sgd": 0.3, "momentum": 0.05, "adam": 0.02},
            "inits": {"glorot": dict(scheme="glorot", bias_std=0.0), "he": dict(scheme="he", bias_std=0.5),
                      "small": dict(scheme="lecun", bias_std=0.0, scale=0.1)}}


def _make_opt(name, lr):
    return {"sgd": optax.sgd(lr), "momentum": optax.sgd(lr, momentum=0.9), "adam": optax.adam(lr)}[name]


def train_layer(s, opt_name: str, init_name: str, *, seed: int = 0, progress=None) -> dict:
    """Train a 2-(2 tanh)-(2 tanh)-2 classifier; record the first layer (W, b) over training."""
    X, y = spirals(s["n"], turns=s["turns"], seed=seed)
    net = mlp(2, s["widths"], 2, "tanh")
    kw = dict(s["inits"][init_name])
    scale = kw.pop("scale", 1.0)
    p0 = net.init(key=jax.random.key(seed), **kw)
    p0 = jax.tree_util.tree_map(lambda a: a * scale, p0)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(net.apply(p, Xj), yj).mean()  # noqa: E731
    run = train_scan(loss, p0, _make_opt(opt_name, s["optimizers"][opt_name]), steps=s["steps"],
                     record_every=s["record_every"], probe=lambda p: jnp.concatenate([p[0][0].ravel(), p[0][1]]),
                     progress=progress, desc=f"{opt_name}/{init_name}")
    Ws = run["probe"][:, :4].reshape(-1, 2, 2)
    bs = run["probe"][:, 4:]
    dec = [decompose(W) for W in Ws]
    acc = float(np.mean(np.asarray(net.apply(run["params"], Xj)).argmax(-1) == y))
    return {"optimizer": opt_name, "init": init_name, "accuracy": acc, "loss": float(run["loss"][-1]),
            "steps": run["steps"], "loss_curve": run["loss"], "W": Ws, "b": bs,
            "singular_values": np.array([d["S"] for d in dec]), "angle_U": np.array([d["angle_U"] for d in dec]),
            "angle_Vt": np.array([d["angle_Vt"] for d in dec]),
            "distance_moved": float(np.linalg.norm(np.c_[Ws[-1].ravel()[None], bs[-1][None]] -
                                                   np.c_[Ws[0].ravel()[None], bs[0][None]])),
            "net": net, "params": run["params"], "X": X, "y": y}
