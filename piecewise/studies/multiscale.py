"""Multiscale networks (MscaleDNN, Liu, Cai & Xu 2020): the first hidden layer is split into groups, and
group j sees the input scaled by s_j = 1, 2, 4, ...; the high-frequency part of a target is then fitted far
sooner than by the same-size net whose groups all see scale 1 (spectral bias is shifted, not removed).

Model (one example, vmapped by the caller): ``h1 = act((scale_vector * (x W1)) + b1)`` where the first layer's
units carry a per-unit input scale (units split into equal groups), then ``h = act(h W + b)`` and a linear
output. The single-scale net is the same spec with every scale 1 and the same initial parameters.

Activation: ``srelu(z) = relu(z) relu(1 - z)`` (MscaleDNN's compactly supported "sReLU") or ``relu``.

Measure: on the uniform training grid, the relative error of the high-frequency band,
``||h_hat[B] - f_hat[B]|| / ||f_hat[B]||`` with B the DFT indices from ``band_start`` to n/2.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._common import train_scan
from .spectral import dft


def srelu(z):
    return jax.nn.relu(z) * jax.nn.relu(1.0 - z)


ACTS = {"relu": jax.nn.relu, "srelu": srelu}


def scales(width: int, n_scales: int) -> np.ndarray:
    """Per-unit input scales of the first layer: ``n_scales`` equal groups with 1, 2, 4, ... (width,)."""
    return 2.0 ** (np.arange(width) * n_scales // width)


def init(key, widths, *, n_in: int = 1, n_out: int = 1):
    """Params: tuple of (W, b) with W (fan_in, fan_out) ~ N(0, 2/(fan_in + fan_out)) (Glorot normal), b = 0."""
    sizes = (n_in, *widths, n_out)
    keys = jax.random.split(key, len(sizes) - 1)
    return tuple((jnp.sqrt(2.0 / (i + o)) * jax.random.normal(k, (i, o)), jnp.zeros(o))
                 for k, i, o in zip(keys, sizes[:-1], sizes[1:]))


def apply(params, x, scale, act: str = "srelu"):
    """x (n, n_in), scale (width_1,) -> (n, n_out)."""
    f = ACTS[act]
    W, b = params[0]
    h = f((x @ W) * scale + b)
    for W, b in params[1:-1]:
        h = f(h @ W + b)
    W, b = params[-1]
    return h @ W + b


def band_error(outputs, target, band) -> np.ndarray:
    """Relative error of the DFT band: ||h_hat[B] - f_hat[B]|| / ||f_hat[B]||. outputs (..., n) -> (...)."""
    band = np.asarray(band, int)
    fh = dft(target)[band]
    hh = dft(outputs)[..., band]
    return np.linalg.norm(hh - fh, axis=-1) / np.linalg.norm(fh)


def setup(quick: bool = False) -> dict:
    n = 256
    x = -1 + 2 * np.arange(n) / n
    target = np.sin(np.pi * x) + 0.5 * np.sin(24 * np.pi * x) + 0.3 * np.sin(40 * np.pi * x)
    return {"x": x, "target": target, "low_band": [1, 8], "band_start": 8, "widths": (120, 120, 120), "n_scales": 6,
            "activation": "srelu", "lr": 1e-3, "steps": 2000 if quick else 10000, "record_every": 50 if quick else 100}


def train(s: dict, multiscale: bool, *, seed: int = 0, progress=None) -> dict:
    X = jnp.asarray(s["x"], jnp.float32)[:, None]
    y = jnp.asarray(s["target"], jnp.float32)
    w1 = s["widths"][0]
    sc = jnp.asarray(scales(w1, s["n_scales"]) if multiscale else np.ones(w1), jnp.float32)
    p0 = init(jax.random.key(seed), s["widths"])
    act = s["activation"]
    f = lambda p: apply(p, X, sc, act)[:, 0]  # noqa: E731
    run = train_scan(lambda p: jnp.mean((f(p) - y) ** 2), p0, optax.adam(s["lr"]), steps=s["steps"],
                     record_every=s["record_every"], probe=f, progress=progress,
                     desc="multiscale" if multiscale else "single scale")
    n = len(s["x"])
    high = np.arange(s["band_start"], n // 2 + 1)
    low = np.arange(1, s["band_start"])
    hi_curve = band_error(run["probe"], s["target"], high)
    lo_curve = band_error(run["probe"], s["target"], low)
    return {"steps": run["steps"], "loss": run["loss"], "high_curve": hi_curve, "low_curve": lo_curve,
            "high_freq_error": float(hi_curve[-1]), "low_freq_error": float(lo_curve[-1]),
            "mse": float(run["loss"][-1]), "output": run["probe"][-1], "scales": np.asarray(sc)}
