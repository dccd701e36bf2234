"""Fitting Telgarsky's depth-L sawtooth: shallow nets need about 2^L units, deep nets L layers of width 2.
Fits one-hidden-layer nets of growing width (least-squares output layer on evenly spaced breakpoints, then
Adam; and random starts) and deep width-2 nets (near the construction and from random starts) to the
sawtooth over [0, 1]; reports the training error against the number of parameters.

python experiments/sawtooth_fit.py [--quick]  ->  results/sawtooth_fit.json, .png
"""
import os

import jax
import numpy as np
import optax

import piecewise as pw
from piecewise import constructions, plot
from _common import parser, write_json


def n_params(net):
    return int(sum(np.prod(w) + np.prod(b) for w, b in net.param_shapes()))


def main():
    a = parser(__doc__).parse_args()
    L = 3 if a.quick else 5
    steps = 1000 if a.quick else 6000
    x = np.linspace(0, 1, 257, dtype=np.float32)[:, None]
    tnet, tparams = constructions.sawtooth(L)
    target = np.asarray(tnet.apply(tparams, x))[:, 0]
    rows = []
    for w in ([2, 4, 8, 16] if a.quick else [2, 4, 8, 16, 32, 64]):
        net = pw.mlp(1, (w,), 1)
        best = np.inf
        # gradient descent alone barely moves on this high-frequency target (spectral bias), so each shallow net
        # starts from its best output layer for evenly spaced breakpoints (linear least squares), then Adam
        # trains all parameters; the better of that and two random starts is kept
        t = np.arange(w) / w
        W0, b0 = np.ones((1, w)), -t
        H = np.maximum(x @ W0 + b0, 0.0)
        A = np.c_[H, np.ones(len(x))]
        coef = np.linalg.lstsq(A, target, rcond=None)[0]
        starts = [((W0, b0), (coef[:w, None], coef[w:]))]
        starts += [net.init(key=jax.random.key(seed), bias_std=0.5) for seed in range(2)]
        best = np.inf
        for p in starts:
            run = pw.train.fit(net, p, x, target, optax.adam(1e-3), steps=steps, checkpoints=1, loss="mse")
            best = min(best, run[-1]["loss"], run[0]["loss"])
        rows.append({"kind": "shallow", "width": w, "depth": 1, "params": n_params(net), "mse": best})
        print(rows[-1])
    net = pw.mlp(1, (2,) * L, 1)
    # deep: exact construction (mse 0 by construction, checked), and training from a perturbed start
    exact_mse = float(np.mean((np.asarray(net.apply(tparams, x))[:, 0] - target) ** 2))
    rows.append({"kind": "deep construction", "width": 2, "depth": L, "params": n_params(net), "mse": exact_mse})
    rng = np.random.default_rng(0)
    start = tuple((np.asarray(W) + 0.05 * rng.normal(size=np.shape(W)), np.asarray(b) + 0.05 * rng.normal(size=np.shape(b)))
                  for W, b in tparams)
    run = pw.train.fit(net, start, x, target, optax.adam(3e-3), steps=steps, checkpoints=1, loss="mse")
    rows.append({"kind": "deep trained (perturbed start)", "width": 2, "depth": L, "params": n_params(net),
                 "mse": run[-1]["loss"]})
    best = np.inf
    for seed in range(3):
        run = pw.train.fit(net, net.init(key=jax.random.key(seed), bias_std=0.5), x, target, optax.adam(1e-2),
                           steps=steps, checkpoints=1, loss="mse")
        best = min(best, run[-1]["loss"])
    rows.append({"kind": "deep trained (random start)", "width": 2, "depth": L, "params": n_params(net), "mse": best})
    for r in rows[-3:]:
        print(r)
    plt = plot._plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    sh = [r for r in rows if r["kind"] == "shallow"]
    ax.loglog([r["params"] for r in sh], [max(r["mse"], 1e-12) for r in sh], "o-", label="one hidden layer")
    for r, m in zip(rows[-3:], "s^v"):
        ax.loglog([r["params"]], [max(r["mse"], 1e-12)], m, label=r["kind"])
    ax.axvline(3 * 2**L + 1, color="gray", ls=":", label=f"shallow with 2^L = {2**L} units")
    ax.set(xlabel="parameters", ylabel="training MSE", title=f"fitting the depth-{L} sawtooth ({2**L} pieces)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    plot.save(fig, os.path.join(a.out, "sawtooth_fit.png"))
    print(write_json(a.out, "sawtooth_fit", {"L": L, "rows": rows}))


if __name__ == "__main__":
    main()
