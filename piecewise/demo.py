"""``piecewise demo``: the main job on an embedded default (no input files).

1. Random He-initialised 2-input ReLU networks (biases N(0, 0.1^2), three fixed seeds) on [-1, 1]^2:
   exact activation regions against depth and width.
2. Deep against shallow at an equal number of neurons N: exact counts at initialisation beside the
   Montufar et al. (2014) construction for the same widths (counted exactly on [0, 1]^2), its lower
   bound, and the Serra et al. (2018) upper bound.
3. Constructions beside their formulas: the sawtooth (2^L pieces), Montufar folding nets, maxout folding,
   Serra folding (p + 1 pieces per coordinate from p >= 3 units).
4. Homeomorphism verdicts on embedded maps R^2 -> R^2 (layer theorem or the exact PL check, with
   collision witnesses).
5. Figures: regions against depth, deep vs shallow with the bounds (log scale), the exact cells of a
   random net and of a folding net.

Every count is exact (float64 cell enumeration). Writes ``summary.json`` and PNG figures into the results
folder and prints where.
"""
from __future__ import annotations

import os
import time

import jax
import numpy as np

from . import bounds, constructions, plot
from .nets import mlp
from .regions import box, enumerate_cells, segment

SEEDS = (0, 1, 2)


def _random_cells(widths, seed):
    net = mlp(2, widths, 1, "relu")
    params = net.init(key=jax.random.key(seed), bias_std=0.1)
    return enumerate_cells(net, params, box(-1.0, 1.0, 2), progress=False)


def _save_json(path, obj):
    from .files import write_json

    return write_json(path, obj)


def _homeo_cases():
    """Embedded maps R^2 -> R^2 with known answers, for the homeomorphism verdicts."""
    r = np.random.default_rng(0)
    pm = np.c_[np.eye(2), -np.eye(2)]
    square = tuple((np.eye(2) + 0.5 * r.normal(size=(2, 2)), 0.3 * r.normal(size=2)) for _ in range(3))
    return [
        ("leaky_relu 2-2-2-2, square layers", mlp(2, (2, 2), 2, "leaky_relu:0.1"), square),
        ("tanh 2-2-2-2, square layers", mlp(2, (2, 2), 2, "tanh"), square),
        ("relu 2-4-2 shear (hidden layer not square)", mlp(2, (4,), 2),
         ((pm, np.zeros(4)), (np.array([[1.0, 0.5], [0, 1], [-1, -0.5], [0, -1]]), np.zeros(2)))),
        ("relu 2-6-2 angle doubling (coherently oriented)", *constructions.angle_doubling()),
        ("relu 2-4-2 fold (|x1|, x2)", mlp(2, (4,), 2),
         ((pm, np.zeros(4)), (np.array([[1.0, 0], [0, 1], [1, 0], [0, -1]]), np.zeros(2)))),
    ]


def run_demo(out_dir: str = "results/demo", quick: bool = False) -> dict:
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    depths = (1, 2, 3, 4)
    widths = (8, 16) if quick else (8, 16, 32)
    n_total = 24 if quick else 48
    shapes = [(n_total,), (n_total // 2,) * 2, (n_total // 3,) * 3, (n_total // 4,) * 4, (n_total // 6,) * 6]
    saw_L = range(1, 9 if quick else 13)
    fold_shapes = [(6, 6, 6), (4, 4, 4, 4)] if not quick else [(4, 4, 4)]
    maxout_cases = [(2, 3, 3), (1, 6, 3)] if not quick else [(2, 2, 3)]
    serra_cases = [(2, (6, 6, 4)), (1, (3, 3, 3, 3))] if not quick else [(1, (3, 3, 4))]

    jobs = [("random", (w,) * d, s) for w in widths for d in depths for s in SEEDS]
    jobs += [("random", sh, s) for sh in shapes for s in SEEDS if (sh, s) not in {(j[1], j[2]) for j in jobs}]
    # constructions with at most 50,000 regions are counted (the formula grows exponentially with depth)
    jobs += [("montufar", sh, None) for sh in shapes if bounds.montufar2014_lower(2, sh) <= 50_000]
    jobs += [("sawtooth", L, None) for L in saw_L] + [("fold", sh, None) for sh in fold_shapes]
    jobs += [("maxout", c, None) for c in maxout_cases] + [("serra", c, None) for c in serra_cases]
    counts: dict = {}
    for kind, arg, seed in tqdm(jobs, desc="exact region counts", unit="net"):
        if kind == "random":
            counts.setdefault(("random", arg), []).append(_random_cells(arg, seed).regions)
        elif kind in ("montufar", "fold"):
            net, params = constructions.montufar_folding(2, arg)
            counts[(kind, arg)] = enumerate_cells(net, params, box(0.0, 1.0, 2), progress=False).regions
        elif kind == "sawtooth":
            net, params = constructions.sawtooth(arg)
            counts[(kind, arg)] = enumerate_cells(net, params, segment([0.0], [1.0]), progress=False).regions
        elif kind == "serra":
            n0, sh = arg
            net, params = constructions.serra_folding(n0, sh)
            dom = box(0.0, 1.0, n0) if n0 > 1 else segment([0.0], [1.0])
            counts[(kind, arg)] = enumerate_cells(net, params, dom, progress=False).regions
        else:
            n0, L, k = arg
            net, params = constructions.maxout_folding(n0, L, k)
            dom = box(0.0, 1.0, n0) if n0 > 1 else segment([0.0], [1.0])
            counts[(kind, arg)] = enumerate_cells(net, params, dom, progress=False).regions

    grid_rows = [{"depth": d, "width": w, "regions": counts[("random", (w,) * d)],
                  "mean": float(np.mean(counts[("random", (w,) * d)]))} for w in widths for d in depths]
    ds_rows = []
    for sh in shapes:
        ds_rows.append({"widths": list(sh), "depth": len(sh),
                        "random_init": counts[("random", sh)], "random_init_mean": float(np.mean(counts[("random", sh)])),
                        "montufar_construction": counts.get(("montufar", sh)),
                        "montufar2014_lower": bounds.montufar2014_lower(2, sh),
                        "serra2018_upper": bounds.serra2018_upper(2, sh)})
    con_rows = [{"construction": f"sawtooth L={L}", "exact": counts[("sawtooth", L)], "formula": bounds.sawtooth_pieces(L),
                 "domain": "[0,1]"} for L in saw_L]
    con_rows += [{"construction": f"Montufar folding 2-{'-'.join(map(str, sh))}", "exact": counts[("fold", sh)],
                  "formula": bounds.montufar2014_lower(2, sh), "domain": "[0,1]^2"} for sh in fold_shapes]
    con_rows += [{"construction": f"maxout folding n0={n0} L={L} k={k}", "exact": counts[("maxout", (n0, L, k))],
                  "formula": bounds.maxout_lower(n0, L, k), "domain": f"[0,1]^{n0}"} for n0, L, k in maxout_cases]
    con_rows += [{"construction": f"Serra folding n0={n0} {'-'.join(map(str, sh))}", "exact": counts[("serra", (n0, sh))],
                  "formula": bounds.serra2018_lower(n0, sh), "domain": f"[0,1]^{n0}"} for n0, sh in serra_cases]

    print(f"\n1. Exact activation regions of random 2-input ReLU nets on [-1,1]^2 (mean of seeds {list(SEEDS)})")
    print("   width | " + " | ".join(f"depth {d:>2}" for d in depths))
    for w in widths:
        print(f"   {w:5d} | " + " | ".join(f"{np.mean(counts[('random', (w,) * d)]):8.1f}" for d in depths))
    print(f"\n2. Deep vs shallow at N = {n_total} neurons (exact counts; bounds are for linear regions of R^2)")
    print(f"   {'widths':>12} | {'random init':>11} | {'construction':>12} | {'Montufar lower':>14} | {'Serra upper':>14}")
    for r in ds_rows:
        con = "-" if r["montufar_construction"] is None else str(r["montufar_construction"])
        print(f"   {'x'.join(map(str, r['widths'])):>12} | {r['random_init_mean']:11.1f} | {con:>12} | "
              f"{r['montufar2014_lower']:14d} | {r['serra2018_upper']:14d}")
    print("\n3. Constructions: exact count vs formula")
    for r in con_rows:
        ok = "ok" if r["exact"] == r["formula"] else "MISMATCH"
        print(f"   {r['construction']:>36} on {r['domain']:<8} exact {r['exact']:>7}  formula {r['formula']:>7}  {ok}")

    from .invertibility import homeomorphism

    print("\n4. Homeomorphism verdicts (maps R^2 -> R^2; PL maps decided exactly on [-1,1]^2)")
    homeo_rows = []
    for name, net, params in _homeo_cases():
        v = homeomorphism(net, params, box(-1.0, 1.0, 2)).to_json()
        homeo_rows.append({"map": name, "homeomorphism": v["homeomorphism"],
                           "coherently_oriented": v.get("coherently_oriented"), "certificate": v["certificate"],
                           "witness": v.get("witness")})
        verdict = {True: "yes", False: "no", None: "undecided"}[v["homeomorphism"]]
        extra = ""
        if v.get("witness") and "x1" in v["witness"]:
            extra = "  witness x1=" + np.array2string(np.array(v["witness"]["x1"]), precision=3) + \
                    " x2=" + np.array2string(np.array(v["witness"]["x2"]), precision=3)
        print(f"   {name:>48}: {verdict:>3}  ({v['certificate'].split(':')[0].split(' (')[0]}){extra}")

    os.makedirs(out_dir, exist_ok=True)
    plt = plot._plt()
    fig, ax = plt.subplots(1, 2, figsize=(11.5, 4.3))
    for w in widths:
        ax[0].plot(depths, [np.mean(counts[("random", (w,) * d)]) for d in depths], "o-", label=f"width {w}")
    ax[0].set(xlabel="depth (hidden layers)", ylabel="activation regions in [-1,1]^2 (exact)",
              title="random init: regions vs depth")
    ax[0].legend()
    dd = [r["depth"] for r in ds_rows]
    ax[1].semilogy(dd, [r["random_init_mean"] for r in ds_rows], "o-", label="random init (mean, [-1,1]^2)")
    mc = [(r["depth"], r["montufar_construction"]) for r in ds_rows if r["montufar_construction"]]
    ax[1].semilogy(*zip(*mc), "s-", label="Montufar construction ([0,1]^2)")
    ax[1].semilogy(dd, [r["montufar2014_lower"] for r in ds_rows], "--", label="Montufar 2014 lower bound")
    ax[1].semilogy(dd, [r["serra2018_upper"] for r in ds_rows], ":", label="Serra 2018 upper bound")
    ax[1].set(xlabel=f"depth at fixed N = {n_total}", ylabel="regions", title="deep vs shallow (activation regions)")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    files = [plot.save(fig, os.path.join(out_dir, "regions_vs_depth.png"))]
    cx = _random_cells((16, 16, 16), 0)
    files.append(plot.save(plot.cell_map(cx, title=f"random 2-16x3-1 ReLU: {cx.regions} activation regions (exact)"),
                           os.path.join(out_dir, "cells_random.png")))
    net, params = constructions.montufar_folding(2, fold_shapes[0])
    fx = enumerate_cells(net, params, box(0.0, 1.0, 2), progress=False)
    files.append(plot.save(plot.cell_map(fx, boundary=False, title=f"Montufar folding 2-{'-'.join(map(str, fold_shapes[0]))}: "
                                                                   f"{fx.regions} activation regions"),
                           os.path.join(out_dir, "cells_folding.png")))
    summary = {"setup": {"inputs": 2, "activation": "relu", "init": "he normal", "bias_std": 0.1,
                         "domain_random": [-1.0, 1.0], "domain_constructions": [0.0, 1.0], "seeds": list(SEEDS),
                         "method": "exact (activation regions)"},
               "depth_width": grid_rows, "deep_vs_shallow": {"neurons": n_total, "rows": ds_rows},
               "constructions": con_rows, "homeomorphisms": homeo_rows, "seconds": round(time.perf_counter() - t0, 2)}
    files.append(_save_json(os.path.join(out_dir, "summary.json"), summary))
    print(f"\nresults written to {os.path.abspath(out_dir)}: " + ", ".join(os.path.basename(f) for f in files))
    return summary
