"""``piecewise demo``: the main job on an embedded default (no input files).

Random He-initialised 2-input ReLU networks (biases N(0, 0.1^2), fixed seeds) on the square [-1, 1]^2:

1. activation regions against depth and width;
2. deep against shallow at an equal number of neurons N, beside the general-position maximum of a
   shallow net, 1 + N + C(N, 2) (Zaslavsky);
3. the exact cells of one network, with its decision boundary.

Counts are exact (float64 cell enumeration, :func:`piecewise.enumerate_cells`).
Writes ``summary.json`` and PNG figures into the results folder and prints where.
"""
from __future__ import annotations

import json
import os
import time

import jax
import numpy as np

from . import plot
from .bounds import zaslavsky
from .nets import mlp
from .regions import box, enumerate_cells

SEEDS = (0, 1, 2)


def _cells(widths, seed):
    net = mlp(2, widths, 1, "relu")
    params = net.init(key=jax.random.key(seed), bias_std=0.1)
    return enumerate_cells(net, params, box(-1.0, 1.0, 2), progress=False)


def run_demo(out_dir: str = "results/demo", quick: bool = False) -> dict:
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    depths = (1, 2, 3, 4)
    widths = (8, 16) if quick else (8, 16, 32)
    n_total = 24 if quick else 48
    shapes = [(n_total,), (n_total // 2,) * 2, (n_total // 3,) * 3, (n_total // 4,) * 4, (n_total // 6,) * 6]
    jobs = [("depth_width", (w,) * d, s) for w in widths for d in depths for s in SEEDS]
    jobs += [("deep_shallow", sh, s) for sh in shapes for s in SEEDS]
    results: dict[tuple, list[int]] = {}
    for kind, sh, s in tqdm(jobs, desc="counting regions", unit="net"):
        results.setdefault((kind, sh), []).append(_cells(sh, s).regions)

    grid_rows = [{"depth": d, "width": w, "regions": results[("depth_width", (w,) * d)],
                  "mean": float(np.mean(results[("depth_width", (w,) * d)]))} for w in widths for d in depths]
    ds_rows = [{"widths": list(sh), "depth": len(sh), "regions": results[("deep_shallow", sh)],
                "mean": float(np.mean(results[("deep_shallow", sh)]))} for sh in shapes]
    shallow_max = zaslavsky(n_total, 2)

    print(f"\nActivation regions of random 2-input ReLU nets on [-1,1]^2 (exact; mean of seeds {list(SEEDS)})")
    print("width | " + " | ".join(f"depth {d:>2}" for d in depths))
    for w in widths:
        print(f"{w:5d} | " + " | ".join(f"{np.mean(results[('depth_width', (w,) * d)]):8.1f}" for d in depths))
    print(f"\nDeep vs shallow at N = {n_total} neurons (shallow general-position maximum in R^2: {shallow_max})")
    for r in ds_rows:
        print(f"  widths {'x'.join(map(str, r['widths'])):>12}: {r['mean']:8.1f}   per seed {r['regions']}")

    os.makedirs(out_dir, exist_ok=True)
    plt = plot._plt()
    fig, ax = plt.subplots(1, 2, figsize=(11, 4.2))
    for w in widths:
        ax[0].plot(depths, [np.mean(results[("depth_width", (w,) * d)]) for d in depths], "o-", label=f"width {w}")
    ax[0].set(xlabel="depth (hidden layers)", ylabel="activation regions in [-1,1]^2",
              title="regions vs depth (exact)")
    ax[0].legend()
    ax[1].plot([r["depth"] for r in ds_rows], [r["mean"] for r in ds_rows], "o-", label="random init (mean)")
    ax[1].axhline(shallow_max, color="gray", ls="--", label=f"shallow max 1+N+C(N,2) = {shallow_max}")
    ax[1].set(xlabel="depth at fixed N", ylabel="activation regions", title=f"deep vs shallow, N = {n_total}")
    ax[1].legend()
    fig.tight_layout()
    files = [plot.save(fig, os.path.join(out_dir, "regions_vs_depth.png"))]
    cx = _cells((16, 16, 16), 0)
    files.append(plot.save(plot.cell_map(cx, title=f"2-16x3-1 ReLU: {cx.regions} activation regions (exact), "
                                                   "red: decision boundary"),
                           os.path.join(out_dir, "cells.png")))
    summary = {"setup": {"inputs": 2, "activation": "relu", "init": "he normal", "bias_std": 0.1,
                         "domain": [-1.0, 1.0], "seeds": list(SEEDS),
                         "method": "exact (activation regions)"},
               "depth_width": grid_rows, "deep_vs_shallow": {"neurons": n_total, "shallow_max": shallow_max,
                                                              "rows": ds_rows},
               "seconds": round(time.perf_counter() - t0, 2)}
    path = os.path.join(out_dir, "summary.json")
    with open(path + ".tmp", "w") as f:
        json.dump(summary, f, indent=1)
    os.replace(path + ".tmp", path)
    files.append(path)
    print(f"\nresults written to {os.path.abspath(out_dir)}: " + ", ".join(os.path.basename(f) for f in files))
    return summary
