"""Condensation (Luo, Xu et al. 2021): with a small initialisation, the hidden units of a two-layer ReLU
net trained on a few points turn to a few common orientations; with a large one they stay spread out.

A unit ``a * relu(w x + b)`` (1-D input) has

* orientation ``theta = sign(b) * arccos(w / sqrt(w^2 + b^2))`` in [-pi, pi] (the direction of (w, b)),
* amplitude ``|a| * sqrt(w^2 + b^2)`` (its size in the function; positive homogeneity of ReLU).

Setup (Luo, Xu et al. 2021): width m = 1000, the 4 points x = -1, -1/3, 1/3, 1 of
f = 0.2 relu(x - 1/3) + 0.2 relu(-x - 1/3), all parameters ~ N(0, m^(-2 gamma)); small init gamma = 2,
large init gamma = 0.25; plain gradient descent on the mean squared error.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._common import train_scan

WINDOW = 0.05  # rad


def orientation_amplitude(w, b, a):
    """Orientation and amplitude of hidden units. w, b, a: (m,) -> (theta (m,), amplitude (m,)), float64."""
    w, b, a = (np.asarray(v, np.float64).ravel() for v in (w, b, a))
    r = np.hypot(w, b)
    cos = np.divide(w, r, out=np.ones_like(r), where=r > 0)
    theta = np.where(b < 0, -1.0, 1.0) * np.arccos(np.clip(cos, -1.0, 1.0))
    return theta, np.abs(a) * r


def _circ(d):
    return np.abs((d + np.pi) % (2 * np.pi) - np.pi)


def condensed_fraction(theta, amplitude, *, window: float = WINDOW, n_directions: int = 2) -> dict:
    """Share of the total amplitude that lies within +-``window`` rad of the ``n_directions`` strongest
    orientations.

    Definition: the strongest orientation is the unit orientation theta_i whose window
    [theta_i - window, theta_i + window] (circular distance) holds the largest total amplitude; the next one is
    chosen the same way among units at least 2 * window away from the ones already chosen (so the windows do
    not overlap). The fraction is (amplitude inside any chosen window) / (total amplitude), in [0, 1]; 1 means
    fully condensed onto ``n_directions`` orientations. For m units uniformly spread it is about
    n_directions * 2 * window / (2 pi) (0.032 for two windows of +-0.05 rad).

    theta, amplitude: (m,). Returns ``{"fraction", "directions" (list of theta), "mass" (per direction)}``.
    """
    theta = np.asarray(theta, np.float64)
    amp = np.asarray(amplitude, np.float64)
    total = amp.sum()
    if total <= 0:
        return {"fraction": 0.0, "directions": [], "mass": []}
    D = _circ(theta[:, None] - theta[None, :])
    mass = (D <= window) @ amp  # mass in the window centred at each unit
    available = np.ones(theta.size, bool)
    covered = np.zeros(theta.size, bool)
    dirs, masses = [], []
    for _ in range(n_directions):
        if not available.any():
            break
        i = int(np.argmax(np.where(available, mass, -1.0)))
        dirs.append(float(theta[i]))
        inside = D[i] <= window
        masses.append(float(amp[inside & ~covered].sum()))
        covered |= inside
        available &= D[i] >= 2 * window
    return {"fraction": float(amp[covered].sum() / total), "directions": dirs, "mass": masses}


def setup(quick: bool = False) -> dict:
    x = np.linspace(-1, 1, 4)
    y = 0.2 * np.maximum(x - 1 / 3, 0) + 0.2 * np.maximum(-x - 1 / 3, 0)
    return {"x": x, "y": y, "width": 1000, "gammas": {"small_init": 2.0, "large_init": 0.25},
            "lr": 0.05, "steps": 20000 if quick else 100000, "record_every": 500 if quick else 1000}


def init_params(key, m: int, gamma: float):
    """(w, b, a), each (m,) ~ N(0, m^(-2 gamma))."""
    std = float(m) ** (-gamma)
    kw, kb, ka = jax.random.split(key, 3)
    return tuple(std * jax.random.normal(k, (m,)) for k in (kw, kb, ka))


def apply(params, x):
    """Two-layer ReLU net f(x) = sum_k a_k relu(w_k x + b_k). x (n,) -> (n,)."""
    w, b, a = params
    return jax.nn.relu(x[:, None] * w + b) @ a


def train(gamma: float, s: dict, *, seed: int = 0, progress=None, lr: float | None = None) -> dict:
    x = jnp.asarray(s["x"], jnp.float32)
    y = jnp.asarray(s["y"], jnp.float32)
    p0 = init_params(jax.random.key(seed), s["width"], gamma)
    loss = lambda p: 0.5 * jnp.mean((apply(p, x) - y) ** 2)  # noqa: E731
    run = train_scan(loss, p0, optax.sgd(lr or s["lr"]), steps=s["steps"], record_every=s["record_every"],
                     progress=progress, desc=f"condensation gamma={gamma}")
    out = {}
    for when, p in (("before", p0), ("after", run["params"])):
        th, am = orientation_amplitude(*p)
        out[when] = {"theta": th, "amplitude": am, **condensed_fraction(th, am)}
    return {"gamma": gamma, "loss": float(run["loss"][-1]), "params": run["params"], **out}
