"""A small CNN and an MLP of similar size on scikit-learn's 8x8 digits: exact activation regions on a plane
through three training digits at initialisation and over training, and local complexity (exact, on 2-D
diamonds in random planes, beside the sampled cross-polytope estimate) at training vs test points.

Both nets are plain JAX functions, read into piecewise graphs by tracing (piecewise.io._jaxpr), so no
framework is needed. CNN: conv 3x3 (1->4, padding 1) -> relu -> max-pool 2 -> dense 64->10.
MLP: 64 -> 10 -> relu -> 10. (CNN 690 parameters, MLP 760.)

python experiments/digits_cnn.py [--quick]  ->  results/digits_cnn.json, results/digits_cnn.png
"""
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import piecewise as pw
from piecewise import plot
from piecewise.io._jaxpr import from_jax
from piecewise.regions.local_complexity import local_complexity
from _common import parser, write_json


def cnn_init(key):
    k1, k2 = jax.random.split(key)
    return {"conv": jax.random.normal(k1, (4, 1, 3, 3)) * (2 / 9) ** 0.5, "cb": jnp.zeros(4),
            "W": jax.random.normal(k2, (64, 10)) * (2 / 64) ** 0.5, "b": jnp.zeros(10)}


def cnn_apply(p, x):  # x (64,)
    h = jax.lax.conv_general_dilated(x.reshape(1, 1, 8, 8), p["conv"], (1, 1), ((1, 1), (1, 1)))
    h = jax.nn.relu(h + p["cb"].reshape(1, 4, 1, 1))
    h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    return h.reshape(-1) @ p["W"] + p["b"]


def mlp_init(key):
    k1, k2 = jax.random.split(key)
    return {"W1": jax.random.normal(k1, (64, 10)) * (2 / 64) ** 0.5, "b1": jnp.zeros(10),
            "W2": jax.random.normal(k2, (10, 10)) * (2 / 10) ** 0.5, "b2": jnp.zeros(10)}


def mlp_apply(p, x):
    return jax.nn.relu(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]


def train(apply, params, X, y, steps, checkpoints):
    opt = optax.adam(1e-2)
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        def loss(p):
            logits = jax.vmap(lambda x: apply(p, x))(X)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        l, g = jax.value_and_grad(loss)(params)
        u, state = opt.update(g, state)
        return optax.apply_updates(params, u), state, l

    out = [(0, params)]
    for t in range(1, steps + 1):
        params, state, _ = step(params, state)
        if t in checkpoints:
            out.append((t, params))
    return out


def accuracy(apply, p, X, y):
    return float(np.mean(np.argmax(np.asarray(jax.vmap(lambda x: apply(p, x))(X)), 1) == y))


def main():
    a = parser(__doc__).parse_args()
    steps = 60 if a.quick else 600
    ck = sorted({steps // 4, steps // 2, steps})
    n_lc = 4 if a.quick else 20
    radius = 0.5
    X, y = pw.datasets.digits()
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(X))
    tr, te = idx[:1200], idx[1200:]
    plane = pw.plane(X[tr[:3]].astype(np.float64))
    res = {"steps": [0] + ck, "radius": radius, "plane_digits": [int(t) for t in tr[:3]], "nets": {}}
    for name, init, apply in (("cnn", cnn_init, cnn_apply), ("mlp", mlp_init, mlp_apply)):
        p0 = init(jax.random.key(0))
        rows = []
        for t, p in train(apply, p0, jnp.asarray(X[tr]), jnp.asarray(y[tr]), steps, set(ck)):
            g = from_jax(lambda x, p=p: apply(p, x), (64,), source=name)
            t0 = time.perf_counter()
            cx = pw.enumerate_cells(g.to_staged(), None, plane)
            lc_tr = local_complexity(g, None, X[tr[:n_lc]], radius, planes=1, seed=1, sampled_dim=16)
            lc_te = local_complexity(g, None, X[te[:n_lc]], radius, planes=1, seed=1, sampled_dim=16)
            row = {"step": t, "regions_plane": cx.regions, "seconds": round(time.perf_counter() - t0, 2),
                   "train_acc": accuracy(apply, p, X[tr], y[tr]), "test_acc": accuracy(apply, p, X[te], y[te]),
                   "lc_train": lc_tr.summary(), "lc_test": lc_te.summary()}
            rows.append(row)
            print(name, t, row["regions_plane"], "acc", round(row["train_acc"], 3), round(row["test_acc"], 3),
                  "LC train/test exact", row["lc_train"]["exact_regions"]["mean"], row["lc_test"]["exact_regions"]["mean"],
                  "est", row["lc_train"]["sampled_same_plane"]["mean"], row["lc_test"]["sampled_same_plane"]["mean"])
        res["nets"][name] = {"units": g.to_staged().n_units, "rows": rows}
    plt = plot._plt()
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for name, d in res["nets"].items():
        s = [r["step"] for r in d["rows"]]
        ax[0].plot(s, [r["regions_plane"] for r in d["rows"]], marker="o", label=name)
        for split, ls in (("train", "-"), ("test", "--")):
            ax[1].plot(s, [r[f"lc_{split}"]["exact_regions"]["mean"] for r in d["rows"]], ls, marker="o",
                       label=f"{name} exact, {split}")
            ax[1].plot(s, [r[f"lc_{split}"]["sampled_same_plane"]["mean"] for r in d["rows"]], ls, marker="x",
                       alpha=0.5, label=f"{name} estimate, {split}")
    ax[0].set(xlabel="training step", ylabel="activation regions", title="plane through 3 training digits")
    ax[1].set(xlabel="training step", ylabel=f"regions meeting a diamond of radius {radius}",
              title="local complexity: train vs test points")
    ax[0].legend()
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    plot.save(fig, os.path.join(a.out, "digits_cnn.png"))
    print(write_json(a.out, "digits_cnn", res))


if __name__ == "__main__":
    main()
