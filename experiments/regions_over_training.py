"""Regions over training: 2-input ReLU nets on the TensorFlow Playground circle data, and 64-input nets on
the digits, counted exactly on [-1,1]^2 (scaled data) and on a plane through three digits, at checkpoints.
Hanin & Rolnick: the count stays near its initial order.

python experiments/regions_over_training.py [--quick]  ->  results/regions_over_training.json, .png
"""
import os

import piecewise as pw
from piecewise import plot
from _common import parser, write_json


def main():
    a = parser(__doc__).parse_args()
    steps, ck = (200, 2) if a.quick else (2000, 8)
    seeds = (0,) if a.quick else (0, 1, 2)
    X, y = pw.datasets.playground("circle", 500, seed=0)
    X = X / 5.0  # into [-1, 1]^2
    circle = pw.sweep.sweep(2, depths=(2, 3), widths=(16,), seeds=seeds, n_out=2,
                            training=pw.sweep.Training(X, y, steps=steps, checkpoints=ck, lr=3e-3))
    D, t = pw.datasets.digits()
    digits = pw.sweep.sweep(64, depths=(2, 3), widths=(32,), seeds=seeds, n_out=10, domain=pw.plane(D[[0, 1, 2]]),
                            training=pw.sweep.Training(D, t, steps=steps // 2, checkpoints=ck, lr=3e-3))
    res = {"circle": circle, "digits": digits,
           "circle_summary": pw.sweep.summarize(circle), "digits_summary": pw.sweep.summarize(digits)}
    for name, rows in (("circle", circle), ("digits", digits)):
        for s in pw.sweep.summarize(rows):
            print(name, s)
    plt = plot._plt()
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for axi, (name, rows) in zip(ax, (("circle [-1,1]^2", circle), ("digits: plane through 3 images", digits))):
        for d in sorted({r["depth"] for r in rows}):
            S = [s for s in pw.sweep.summarize(rows) if s["depth"] == d]
            N = rows[0]["width"] * d
            axi.errorbar([s["step"] for s in S], [s["mean"] / N**2 for s in S], [s["std"] / N**2 for s in S],
                         marker="o", label=f"depth {d}, N = {N}")
        axi.set(xlabel="training step", ylabel="activation regions / N^2", title=name)
        axi.legend()
    fig.tight_layout()
    plot.save(fig, os.path.join(a.out, "regions_over_training.png"))
    print(write_json(a.out, "regions_over_training", res))


if __name__ == "__main__":
    main()
