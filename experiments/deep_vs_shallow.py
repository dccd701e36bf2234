"""Deep vs shallow at equal neuron count N: exact activation regions vs depth, at initialisation and for the
Montufar construction, with the Montufar (2014) lower and Serra (2018) upper bounds.

python experiments/deep_vs_shallow.py [--quick]  ->  results/deep_vs_shallow.json, .png
"""
import os

import numpy as np

import piecewise as pw
from piecewise import bounds, constructions, plot
from _common import parser, write_json


def main():
    a = parser(__doc__).parse_args()
    Ns = (24,) if a.quick else (24, 48, 96)
    seeds = (0, 1) if a.quick else (0, 1, 2, 3, 4)
    out = {"setup": "He init, biases N(0, 0.1^2), [-1,1]^2 for random nets, [0,1]^2 for constructions", "rows": []}
    for N in Ns:
        depths = [d for d in (1, 2, 3, 4, 6, 8) if N % d == 0 and N // d >= 2]
        for d in depths:
            sh = (N // d,) * d
            rows = pw.sweep.sweep(2, depths=(d,), widths=(N // d,), seeds=seeds)
            lower = bounds.montufar2014_lower(2, sh)
            con = None
            if lower <= 60_000:
                net, params = constructions.montufar_folding(2, sh)
                con = pw.enumerate_cells(net, params, pw.box(0.0, 1.0, 2)).regions
            out["rows"].append({"N": N, "depth": d, "width": N // d, "init": [r["regions"] for r in rows],
                                "init_mean": float(np.mean([r["regions"] for r in rows])), "construction": con,
                                "montufar2014_lower": lower, "serra2018_upper": bounds.serra2018_upper(2, sh)})
            print(out["rows"][-1])
    plt = plot._plt()
    fig, axes = plt.subplots(1, len(Ns), figsize=(5 * len(Ns), 4), squeeze=False)
    for ax, N in zip(axes[0], Ns):
        R = [r for r in out["rows"] if r["N"] == N]
        d = [r["depth"] for r in R]
        ax.semilogy(d, [r["init_mean"] for r in R], "o-", label="random init (mean)")
        c = [(r["depth"], r["construction"]) for r in R if r["construction"]]
        ax.semilogy(*zip(*c), "s-", label="Montufar construction")
        ax.semilogy(d, [r["montufar2014_lower"] for r in R], "--", label="Montufar 2014 lower")
        ax.semilogy(d, [r["serra2018_upper"] for r in R], ":", label="Serra 2018 upper")
        ax.set(xlabel="depth", ylabel="activation regions (exact)", title=f"N = {N} neurons")
        ax.legend(fontsize=7)
    fig.tight_layout()
    plot.save(fig, os.path.join(a.out, "deep_vs_shallow.png"))
    print(write_json(a.out, "deep_vs_shallow", out))


if __name__ == "__main__":
    main()
