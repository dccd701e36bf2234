"""Vector-field layers and a k-NN readout (Olah 2014, "Neural networks, manifolds and topology").

A vector-field layer moves every point along a learned field: ``x -> x + g(x)`` with
``g(x) = sum_j v_j exp(-|x - c_j|^2 / (2 sigma^2))`` — fixed anchors c_j on a grid, learned vectors v_j, a
Gaussian (smooth) interpolation. Stacking a few gives a discretised flow; then a linear softmax readout.
Compared with a tanh net of 2-wide layers on the two spirals, and with a k-NN final layer (k = 5, Euclidean)
on each net's learned representation (the input of its readout).

Homeomorphism of a vector-field layer (the i-ResNet criterion): x + g(x) is a bijection of R^2 when
Lip(g) < 1. Two figures are given: the sound bound Lip(g) <= sum_j |v_j| max|phi'| = sum_j |v_j| / (sigma
sqrt(e)) (``bound``), and the largest spectral norm of J_g over a dense grid (``sampled``, not a proof).
Training adds a penalty on ``relu(|J_g|_2 - 0.9)^2`` at the data so the sampled norm stays below 1.
tanh layers are checked by the layer theorem (:func:`piecewise.invertibility.check_layers`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..datasets import spirals
from ..nets import mlp
from ._common import train_scan

LIP_TARGET = 0.9


def anchors(k: int, lo: float = -1.3, hi: float = 1.3):
    """k x k anchor grid (k^2, 2) and the Gaussian width sigma (= the grid spacing)."""
    g = np.linspace(lo, hi, k)
    C = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    return C.astype(np.float32), float(g[1] - g[0])


def field(V, C, sigma, x):
    """g(x) for one point: V (K, 2), C (K, 2), x (2,) -> (2,)."""
    w = jnp.exp(-jnp.sum((x - C) ** 2, -1) / (2 * sigma**2))
    return w @ V


def field_jacobian(V, C, sigma, X):
    """J_g at many points, closed form: J_g(x) = -(1/sigma^2) sum_j phi_j(x) v_j (x - c_j)^T.
    X (m, 2) -> (m, 2, 2)."""
    D = X[:, None, :] - C[None, :, :]  # (m, K, 2)
    phi = jnp.exp(-jnp.sum(D**2, -1) / (2 * sigma**2))  # (m, K)
    return -jnp.einsum("mk,ki,mkj->mij", phi, V, D) / sigma**2


def layer(V, C, sigma, x):
    return x + field(V, C, sigma, x)


def spectral_norm_2x2(J):
    """Largest singular value of 2x2 matrices (..., 2, 2), closed form (differentiable)."""
    a = jnp.sum(J**2, axis=(-1, -2))
    det = J[..., 0, 0] * J[..., 1, 1] - J[..., 0, 1] * J[..., 1, 0]
    eps = 1e-12  # keeps the gradient finite at J = 0
    return jnp.sqrt(0.5 * (a + jnp.sqrt(jnp.maximum(a**2 - 4 * det**2, 0.0) + eps)) + eps)


def layer_points(V, C, sigma, X):
    """One vector-field layer on many points: X (m, 2) -> (m, 2)."""
    return X + jnp.exp(-jnp.sum((X[:, None] - C[None]) ** 2, -1) / (2 * sigma**2)) @ V


def representation(params, C, sigma, X):
    """Points after every vector-field layer: X (m, 2) -> list of (m, 2) (one per layer)."""
    reps = []
    h = X
    for V in params["V"]:
        h = jax.vmap(lambda x, V=V: layer(V, C, sigma, x))(h)
        reps.append(h)
    return reps


def apply(params, C, sigma, X):
    h = representation(params, C, sigma, X)[-1]
    return h @ params["W"] + params["b"]


def lipschitz(V, C, sigma, lo=-1.5, hi=1.5, n=121) -> dict:
    """Sound bound and dense-grid estimate of Lip(g) for one layer."""
    V = np.asarray(V, np.float64)
    bound = float(np.linalg.norm(V, axis=1).sum() / (sigma * np.sqrt(np.e)))
    g = np.linspace(lo, hi, n)
    P = jnp.asarray(np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2), jnp.float32)
    J = field_jacobian(jnp.asarray(V, jnp.float32), C, sigma, P)
    sampled = float(np.max(np.asarray(spectral_norm_2x2(J))))
    detI = np.asarray(jnp.linalg.det(J + jnp.eye(2)))
    return {"bound": bound, "sampled": sampled, "min_det_layer": float(detI.min())}


def knn_accuracy(Rtr, ytr, Rte, yte, k: int = 5) -> float:
    """k-NN (majority of the k nearest training representations, Euclidean) accuracy on the test set."""
    Rtr, Rte = np.asarray(Rtr, np.float64), np.asarray(Rte, np.float64)
    d = ((Rte[:, None, :] - Rtr[None, :, :]) ** 2).sum(-1)
    nn = np.argsort(d, axis=1, kind="stable")[:, :k]
    votes = np.asarray(ytr)[nn]
    pred = (votes.mean(1) > 0.5).astype(int)
    return float(np.mean(pred == np.asarray(yte)))


def setup(quick: bool = False) -> dict:
    return {"turns": 1.0, "n": 400, "anchors": 9 if quick else 13, "layers": 4, "penalty": 100.0,
            "steps": 1000 if quick else 6000, "lr": 1e-2, "tanh_widths": (2, 2, 2, 2), "seeds": 1 if quick else 3}


def train_vector_field(s, *, seed: int = 0, progress=None) -> dict:
    X, y = spirals(s["n"], turns=s["turns"], seed=seed)
    Xte, yte = spirals(s["n"], turns=s["turns"], seed=seed + 1000)
    C, sigma = anchors(s["anchors"])
    C = jnp.asarray(C)
    key = jax.random.key(seed)
    kW, kV = jax.random.split(key)
    p0 = {"V": [jnp.zeros((C.shape[0], 2)) for _ in range(s["layers"])],
          "W": 0.5 * jax.random.normal(kW, (2, 2)), "b": jnp.zeros(2)}
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    g = np.linspace(-1.5, 1.5, 31, dtype=np.float32)
    G = jnp.asarray(np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2))

    def loss(p):
        ce = optax.softmax_cross_entropy_with_integer_labels(apply(p, C, sigma, Xj), yj).mean()
        pen = 0.0
        for V in p["V"]:  # the field lives on all of R^2: penalise on a fixed grid covering the data and beyond
            pen = pen + jnp.mean(jax.nn.relu(spectral_norm_2x2(field_jacobian(V, C, sigma, G)) - LIP_TARGET) ** 2)
        return ce + s["penalty"] * pen

    run = train_scan(loss, p0, optax.adam(s["lr"]), steps=s["steps"], progress=progress, desc="vector-field layers")
    p = run["params"]
    acc = lambda A, b: float(np.mean(np.asarray(apply(p, C, sigma, jnp.asarray(A))).argmax(-1) == b))  # noqa: E731
    lips = [lipschitz(V, C, sigma) for V in p["V"]]
    layers = []
    for i, L in enumerate(lips):
        if L["bound"] < 1:
            verdict, how = True, "proven: sum_j |v_j| max|phi'| < 1, so x + g(x) is a bijection (i-ResNet)"
        elif L["sampled"] < 1 and L["min_det_layer"] > 0:
            verdict, how = True, "sampled, not proven: max |J_g|_2 < 1 on a dense grid of [-1.5, 1.5]^2 (i-ResNet)"
        else:
            verdict, how = None, "not shown: |J_g|_2 >= 1 somewhere on the grid"
        layers.append({"layer": i, "homeomorphism": verdict, "certificate": how, **L})
    Rtr = representation(p, C, sigma, Xj)[-1]
    Rte = representation(p, C, sigma, jnp.asarray(Xte))[-1]
    return {"train_accuracy": acc(X, y), "test_accuracy": acc(Xte, yte),
            "knn_test_accuracy": knn_accuracy(Rtr, y, Rte, yte), "layers": layers, "loss": float(run["loss"][-1]),
            "params": p, "anchors": C, "sigma": sigma, "X": X, "y": y}


def layer_theorem(net, params) -> dict:
    """:func:`piecewise.invertibility.check_layers` as a plain dict ``{"certified", "first_failure"}``."""
    try:
        from ..invertibility import check_layers
    except ImportError:  # the invertibility package re-exports it; older layouts keep it in layers.py
        from ..invertibility.layers import check_layers
    rep = check_layers(net, params)
    get = (lambda k: rep[k]) if isinstance(rep, dict) else (lambda k: getattr(rep, k))  # noqa: E731
    return {"certified": bool(get("certified")), "first_failure": get("first_failure")}


def train_tanh(s, *, seed: int = 0, progress=None) -> dict:
    from ..train import fit

    X, y = spirals(s["n"], turns=s["turns"], seed=seed)
    Xte, yte = spirals(s["n"], turns=s["turns"], seed=seed + 1000)
    net = mlp(2, s["tanh_widths"], 2, "tanh")
    best = None
    for r in range(s["seeds"]):
        p0 = net.init(key=jax.random.key(seed + r), scheme="glorot", bias_std=0.5)
        run = fit(net, p0, X, y, optax.adam(s["lr"]), steps=s["steps"], checkpoints=1, loss="xent")
        if best is None or run[-1]["loss"] < best[1]:
            best = (run[-1]["params"], run[-1]["loss"])
    p = best[0]
    acc = lambda A, b: float(np.mean(np.asarray(net.apply(p, A)).argmax(-1) == b))  # noqa: E731
    hidden = layer_theorem(net, p)  # every layer here is 2x2: each is a homeomorphism when certified
    Rtr = np.asarray(net.hidden(p, X)[-1])
    Rte = np.asarray(net.hidden(p, Xte)[-1])
    return {"train_accuracy": acc(X, y), "test_accuracy": acc(Xte, yte), "knn_test_accuracy": knn_accuracy(Rtr, y, Rte, yte),
            "layer_theorem": {"certified": hidden["certified"], "first_failure": hidden["first_failure"]},
            "loss": float(best[1]), "net": net, "params": p}
