"""A contractive penalty and the disk-in-annulus "pull apart" local minimum (Olah 2014).

Nets whose layers are all 2 wide cannot separate the disk |x| < 1/3 from the annulus 2/3 < |x| < 1 (every
layer is a homeomorphism of the plane, the disk stays enclosed); trained, they settle near 80% accuracy by
stretching space hard to pull part of the disk out through the annulus, which shows as large Jacobians
at the data. The contractive penalty (Rifai et al. 2011) adds ``lam * mean_x |d h_L / d x|_F^2``, the squared
Frobenius norm of the Jacobian of the last hidden representation at the training points. The study trains
the same nets (same initial parameters) with lam = 0 and lam > 0, and a 3-wide net for reference, and
reports accuracy and the Jacobian norms at the data.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..datasets import disk_annulus
from ..nets import mlp
from ._common import train_scan


def jacobian_norms(net, params, X) -> np.ndarray:
    """Frobenius norm of the Jacobian of the last hidden representation at each point. X (m, n) -> (m,)."""
    f = lambda x: net.hidden(params, x)[-1]  # noqa: E731
    J = jax.vmap(jax.jacfwd(f))(jnp.asarray(X, jnp.float32))
    return np.asarray(jnp.sqrt(jnp.sum(J**2, axis=(-1, -2))))


def setup(quick: bool = False) -> dict:
    return {"n": 600, "nets": {"2-2-2": (2, 2, 2), "3": (3,)}, "lams": [0.0, 0.01], "seeds": 3 if quick else 10,
            "steps": 1500 if quick else 5000, "lr": 2e-2}


def train(widths, lam: float, s: dict, *, seed: int = 0, progress=False) -> dict:
    X, y = disk_annulus(s["n"], seed=seed)
    net = mlp(2, widths, 2, "tanh")
    p0 = net.init(key=jax.random.key(seed), scheme="glorot", bias_std=0.5)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def loss(p):
        ce = optax.softmax_cross_entropy_with_integer_labels(net.apply(p, Xj), yj).mean()
        if lam == 0:
            return ce
        J = jax.vmap(jax.jacfwd(lambda x: net.hidden(p, x)[-1]))(Xj)
        return ce + lam * jnp.mean(jnp.sum(J**2, axis=(-1, -2)))

    run = train_scan(loss, p0, optax.adam(s["lr"]), steps=s["steps"], progress=progress,
                     desc=f"{widths} lam={lam}")
    p = run["params"]
    jn = jacobian_norms(net, p, X)
    acc = float(np.mean(np.asarray(net.apply(p, Xj)).argmax(-1) == y))
    # fresh points: 100% on the training sample can be a thin stretch threaded between the sampled points
    Xt, yt = disk_annulus(5000, seed=seed + 1000)
    test = float(np.mean(np.asarray(net.apply(p, jnp.asarray(Xt))).argmax(-1) == yt))
    return {"widths": list(widths), "lam": lam, "seed": seed, "accuracy": acc, "test_accuracy": test, "jacobian_mean": float(jn.mean()),
            "jacobian_max": float(jn.max()), "net": net, "params": p, "X": X, "y": y}
