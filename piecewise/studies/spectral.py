"""Frequency principle (Xu et al. 2019) and spectral bias (Rahaman et al. 2019): networks fit the low
frequencies of a target first.

The measure: on a uniform training grid of n points, the complex DFT ``f_hat[k] = sum_j f(x_j) e^{-2 pi i jk/n}``
of the target and ``h_hat`` of the network output; the relative error at frequency index k is

    Delta(k) = |h_hat[k] - f_hat[k]| / |f_hat[k]|.

A frequency has *converged* at the first recorded step where Delta(k) < 0.1.

Setups (Xu et al. 2019; Rahaman et al. 2019): F-principle — sin x + sin 3x + sin 5x on 101 points of [-pi, pi) (endpoint left
out so the grid is one period and the three peaks fall exactly on DFT indices 1, 3, 5), tanh
1-200-200-200-100-1, weights and biases ~ N(0, 1/200) (std 200^-1/2), Adam 2e-4, full batch. Spectral
bias — lambda(z) = sum_i A_i sin(2 pi k_i z + phi_i), k = 5, 10, ..., 50, A_i = 0.1 i (rising with k),
phi_i fixed random, 200 points of [0, 1), ReLU with five hidden layers of 256, Adam 3e-4.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..errors import PiecewiseError
from ..nets import mlp
from ._common import train_scan

THRESHOLD = 0.1


def dft(values) -> np.ndarray:
    """Complex DFT along the last axis (numpy's convention, no normalisation). values (..., n) -> (..., n)."""
    return np.fft.fft(np.asarray(values, np.float64), axis=-1)


def peak_frequencies(target, n_peaks: int) -> np.ndarray:
    """The ``n_peaks`` DFT indices k in 1..n/2 with the largest |f_hat[k]|, ascending. target (n,)."""
    f = np.abs(dft(target))
    n = f.shape[-1]
    half = f[1 : n // 2 + 1]
    if n_peaks < 1 or n_peaks > half.size:
        raise PiecewiseError(f"n_peaks must be in 1..{half.size}, got {n_peaks}")
    return np.sort(np.argsort(-half, kind="stable")[:n_peaks] + 1)


def relative_error(outputs, target, ks) -> np.ndarray:
    """Delta(k) = |h_hat[k] - f_hat[k]| / |f_hat[k]| for each k in ``ks``.

    outputs: (..., n) network values on the grid (any leading axes, e.g. one row per recorded step);
    target: (n,); ks: (K,) int. Returns (..., K) float64.
    """
    ks = np.asarray(ks, int)
    fh = dft(target)[ks]
    if np.any(np.abs(fh) == 0):
        raise PiecewiseError("the target has no energy at one of the requested frequencies")
    hh = dft(outputs)[..., ks]
    return np.abs(hh - fh) / np.abs(fh)


def converged_step(steps, deltas, threshold: float = THRESHOLD) -> list:
    """First recorded step with Delta(k) < threshold, per frequency (None if never).
    steps (T,), deltas (T, K) -> list of K ints or None."""
    steps = np.asarray(steps)
    deltas = np.asarray(deltas)
    out = []
    for j in range(deltas.shape[1]):
        hit = np.nonzero(deltas[:, j] < threshold)[0]
        out.append(int(steps[hit[0]]) if hit.size else None)
    return out


def _normal_init(net, key, std):
    params = []
    for ws, bs in net.param_shapes():
        key, kw, kb = jax.random.split(key, 3)
        params.append((std * jax.random.normal(kw, ws), std * jax.random.normal(kb, bs)))
    return tuple(params)


def fit_spectrum(net, params, x, target, ks, optimizer, *, steps, record_every, progress=None, desc="training"):
    """Train ``net`` by full-batch MSE on (x, target) and record Delta(k) every ``record_every`` steps.
    Returns ``{"steps", "delta" (T, K), "loss", "params", "output" (final, (n,))}``."""
    X = jnp.asarray(x, jnp.float32)[:, None]
    y = jnp.asarray(target, jnp.float32)

    def loss(p):
        return jnp.mean((net.apply(p, X)[:, 0] - y) ** 2)

    run = train_scan(loss, params, optimizer, steps=steps, record_every=record_every,
                     probe=lambda p: net.apply(p, X)[:, 0], progress=progress, desc=desc)
    return {"steps": run["steps"], "delta": relative_error(run["probe"], target, ks), "loss": run["loss"],
            "params": run["params"], "output": run["probe"][-1]}


def frequency_principle_setup(quick: bool = False) -> dict:
    n = 101
    x = -np.pi + 2 * np.pi * np.arange(n) / n
    target = np.sin(x) + np.sin(3 * x) + np.sin(5 * x)
    return {"x": x, "target": target, "widths": (200, 200, 200, 100), "activation": "tanh", "init_std": 200 ** -0.5,
            "lr": 2e-4, "steps": 1500 if quick else 12000, "record_every": 25 if quick else 50}


def spectral_bias_setup(quick: bool = False) -> dict:
    n = 200
    z = np.arange(n) / n
    ks = np.arange(5, 55, 5)
    amps = 0.1 * np.arange(1, 11)
    phis = np.random.default_rng(0).uniform(0, 2 * np.pi, ks.size)
    target = (amps[:, None] * np.sin(2 * np.pi * ks[:, None] * z + phis[:, None])).sum(0)
    return {"x": z, "target": target, "frequencies": ks, "amplitudes": amps, "phases": phis,
            "widths": (256,) * 5, "activation": "relu", "lr": 3e-4, "steps": 3000 if quick else 20000,
            "record_every": 25 if quick else 100}


def run_frequency_principle(quick: bool = False, progress=None, seed: int = 0) -> dict:
    s = frequency_principle_setup(quick)
    ks = peak_frequencies(s["target"], 3)
    net = mlp(1, s["widths"], 1, s["activation"])
    params = _normal_init(net, jax.random.key(seed), s["init_std"])
    run = fit_spectrum(net, params, s["x"], s["target"], ks, optax.adam(s["lr"]), steps=s["steps"],
                       record_every=s["record_every"], progress=progress, desc="frequency principle")
    return {**run, "setup": s, "frequencies": ks, "converged_step": converged_step(run["steps"], run["delta"])}


def run_spectral_bias(quick: bool = False, progress=None, seed: int = 0) -> dict:
    s = spectral_bias_setup(quick)
    ks = s["frequencies"]
    net = mlp(1, s["widths"], 1, s["activation"])
    params = net.init(key=jax.random.key(seed), scheme="he", bias_std=0.0)
    # first-layer biases ~ U(-1, 1) (PyTorch's default for fan-in 1), so the kinks spread over the data
    b0 = jax.random.uniform(jax.random.key(seed + 100), params[0][1].shape, minval=-1.0, maxval=1.0)
    params = ((params[0][0], b0),) + tuple(params[1:])
    run = fit_spectrum(net, params, s["x"], s["target"], ks, optax.adam(s["lr"]), steps=s["steps"],
                       record_every=s["record_every"], progress=progress, desc="spectral bias")
    return {**run, "setup": s, "frequencies": ks, "converged_step": converged_step(run["steps"], run["delta"])}


def plot_delta(ax, steps, delta, ks, title):
    """Heat map of Delta(k) over training (rows: frequencies, columns: recorded steps)."""
    im = ax.imshow(np.clip(delta.T, 0, 1), aspect="auto", origin="lower", cmap="viridis_r", vmin=0, vmax=1,
                   extent=[steps[0], steps[-1], -0.5, len(ks) - 0.5], interpolation="nearest")
    ax.set_yticks(range(len(ks)), [str(int(k)) for k in ks])
    ax.set(xlabel="training step", ylabel="frequency index k", title=title)
    ax.figure.colorbar(im, ax=ax, label="relative error Δ(k) (clipped at 1)")
    return im
