"""Regions at initialisation vs the number of neurons N (log-log), for several depths: Hanin & Rolnick
predict growth like N^{n0} (N^2 for these 2-input nets), nearly independent of depth.

python experiments/regions_vs_neurons.py [--quick]  ->  results/regions_vs_neurons.json, .png
"""
import os

import numpy as np

import piecewise as pw
from piecewise import plot
from _common import parser, write_json


def main():
    a = parser(__doc__).parse_args()
    Ns = (8, 16, 32) if a.quick else (8, 16, 32, 64, 128)
    depths = (1, 2) if a.quick else (1, 2, 4)
    seeds = (0, 1) if a.quick else (0, 1, 2)
    res = {"setup": "2-input ReLU, He init, biases N(0, 0.1^2), [-1,1]^2, exact counts", "rows": [], "slopes": {}}
    for d in depths:
        means = []
        for N in Ns:
            rows = pw.sweep.sweep(2, depths=(d,), widths=(N // d,), seeds=seeds)
            m = float(np.mean([r["regions"] for r in rows]))
            means.append(m)
            res["rows"].append({"depth": d, "N": N, "regions": [r["regions"] for r in rows], "mean": m})
            print(res["rows"][-1])
        slope = float(np.polyfit(np.log(Ns), np.log(means), 1)[0])
        res["slopes"][str(d)] = slope
        print(f"depth {d}: log-log slope {slope:.2f} (Hanin-Rolnick: 2)")
    plt = plot._plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for d in depths:
        R = [r for r in res["rows"] if r["depth"] == d]
        ax.loglog([r["N"] for r in R], [r["mean"] for r in R], "o-",
                  label=f"depth {d} (slope {res['slopes'][str(d)]:.2f})")
    ref = np.array(Ns, float)
    ax.loglog(ref, ref**2 * res["rows"][0]["mean"] / Ns[0] ** 2, "k:", label="N^2")
    ax.set(xlabel="neurons N", ylabel="activation regions in [-1,1]^2 (exact)", title="regions at init vs N")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plot.save(fig, os.path.join(a.out, "regions_vs_neurons.png"))
    print(write_json(a.out, "regions_vs_neurons", res))


if __name__ == "__main__":
    main()
