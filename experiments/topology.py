"""Topology of classes (Olah 2014): what tanh networks with narrow layers can and cannot separate, and why.

* Disk inside an annulus: nets whose hidden layers are all 2 wide (depths 1-6, several seeds) stay short of
  100%; one 3-wide layer reaches 100%. The trained 2-wide layers are square, nonsingular and tanh is strictly
  monotone, so every layer is a homeomorphism (the layer theorem, checked per net): the disk stays enclosed
  by the annulus in every representation, and the final linear readout cannot separate them.
* 1D: [-1/3, 1/3] against the outer intervals needs 2 units (1 unit: a monotone map, at most ~2/3 accuracy).
* Two spirals with 2-wide tanh layers (slightly vs strongly entangled).
* Linked tori in R^3: width 3 vs width 4.

python experiments/topology.py [--quick]  ->  results/topology.json, topology_*.png
"""
import os

import jax
import numpy as np
import optax

import piecewise as pw
from piecewise import plot
from piecewise.invertibility import check_layers
from _common import parser, write_json


def train(n_in, widths, X, y, seed, steps, lr=1e-2):
    net = pw.mlp(n_in, widths, 2, "tanh")
    params = net.init(key=jax.random.key(seed), scheme="glorot", bias_std=0.5)
    run = pw.train.fit(net, params, X, y, optax.adam(lr), steps=steps, checkpoints=1)
    p = run[-1]["params"]
    return net, p, pw.train.accuracy(net, p, X, y)


def hidden_certified(net, params):
    """Layer theorem on the hidden layers only (the readout to 2 logits is not part of the representation)."""
    hidden = pw.mlp(net.n_in, net.widths[:-1], net.widths[-1], net.activation)
    rep = check_layers(hidden, tuple(params[:-1]))
    return rep.certified, rep.first_failure


def main():
    a = parser(__doc__).parse_args()
    steps = 800 if a.quick else 4000
    seeds = (0, 1) if a.quick else (0, 1, 2, 3, 4)
    depths = (1, 2, 3) if a.quick else (1, 2, 3, 4, 5, 6)
    res = {}
    X, y = pw.datasets.disk_annulus(600 if a.quick else 1000, seed=0)
    rows = []
    for d in depths:
        for s in seeds:
            net, p, acc = train(2, (2,) * d, X, y, s, steps)
            cert, why = hidden_certified(net, p)
            rows.append({"widths": [2] * d, "seed": s, "accuracy": acc, "hidden_layers_homeomorphisms": cert,
                         "why_not": why})
    for s in seeds:
        net, p, acc = train(2, (3,), X, y, s, steps)
        rows.append({"widths": [3], "seed": s, "accuracy": acc, "hidden_layers_homeomorphisms": None, "why_not": None})
    res["disk_annulus"] = rows
    print("disk in annulus (accuracy, max over seeds / mean):")
    for w in sorted({tuple(r["widths"]) for r in rows}, key=lambda t: (t[0], len(t))):
        acc = [r["accuracy"] for r in rows if tuple(r["widths"]) == w]
        certs = [r["hidden_layers_homeomorphisms"] for r in rows if tuple(r["widths"]) == w]
        print(f"  widths {'-'.join(map(str, w)):>12}: max {max(acc):.3f} mean {np.mean(acc):.3f}  "
              f"hidden layers certified homeomorphisms: {sum(bool(c) for c in certs)}/{len(certs)}")

    # layer-by-layer representations of the best 2-wide net of depth 3 (or the deepest run)
    d_show = min(3, max(depths))
    best = max((r for r in rows if r["widths"] == [2] * d_show), key=lambda r: r["accuracy"])
    net, p, _ = train(2, (2,) * d_show, X, y, best["seed"], steps)
    reps = [np.asarray(X)] + [np.asarray(h) for h in net.hidden(p, X)]
    plt = plot._plt()
    fig, axes = plt.subplots(1, len(reps), figsize=(3.2 * len(reps), 3.2))
    for i, (ax, H) in enumerate(zip(axes, reps)):
        ax.scatter(H[:, 0], H[:, 1], c=y, s=4, cmap="coolwarm")
        ax.set_title("input" if i == 0 else f"layer {i} (tanh, 2 wide)")
    fig.suptitle(f"disk in annulus through a 2-2-2 tanh net (accuracy {best['accuracy']:.2f}): each layer is a "
                 "homeomorphism, the disk stays inside", fontsize=9)
    fig.tight_layout()
    plot.save(fig, os.path.join(a.out, "topology_layers.png"))

    X1, y1 = pw.datasets.interval_1d(300, seed=0)
    res["interval_1d"] = [{"units": u, "accuracy": max(train(1, (u,), X1, y1, s, steps)[2] for s in seeds)} for u in (1, 2)]
    print("1D intervals:", res["interval_1d"])
    sp = []
    for turns in (0.5, 1.5):
        Xs, ys = pw.datasets.spirals(400, turns=turns, seed=0)
        for d in ((2, 2, 2, 2),):
            sp.append({"turns": turns, "widths": list(d),
                       "accuracy": max(train(2, d, Xs, ys, s, steps)[2] for s in seeds)})
    res["spirals"] = sp
    print("spirals:", sp)
    Xt, yt = pw.datasets.linked_tori(600, seed=0)
    res["linked_tori"] = [{"widths": [w] * 3, "accuracy": max(train(3, (w,) * 3, Xt, yt, s, steps)[2] for s in seeds)}
                          for w in (3, 4)]
    print("linked tori:", res["linked_tori"])
    print(write_json(a.out, "topology", res))


if __name__ == "__main__":
    main()
