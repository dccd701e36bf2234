"""Whole-input-space counts: piecewise (vertex engine on a proven box, and the region-graph search) against
relucent 1.0 (one Gurobi LP per facet, 1 worker) on the same random ReLU nets, in the same run.

    python benchmarks/whole_space.py [--quick] [--json OUT.json]

Prints, per net, both counts (they must agree), seconds and the speed ratio relucent / piecewise. relucent is
optional (pip install relucent; its bundled size-limited Gurobi licence covers these sizes); without it only
piecewise's two algorithms are timed against each other.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

import piecewise as pw
from piecewise.regions.search import count_space

NETS = [([4, 8, 8, 1], 0), ([3, 12, 12, 1], 1), ([4, 8, 8, 1], 2), ([6, 10, 1], 3), ([8, 8, 6, 1], 4)]


def _relucent_net(widths, seed):
    import relucent

    relucent.set_seeds(seed)
    net = relucent.mlp(widths)
    lins = [layer for layer in net.layers.values()] if hasattr(net.layers, "values") else list(net.layers)
    lins = [layer for layer in lins if getattr(layer, "weight", None) is not None]
    params = [(np.asarray(layer.weight, np.float64).T, np.asarray(layer.bias, np.float64).ravel()) for layer in lins]
    return net, params


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    try:
        import relucent  # noqa: F401
        have = True
    except ImportError:
        have = False
    rows = []
    nets = NETS[:2] if args.quick else NETS
    for widths, seed in nets:
        if have:
            rnet, params = _relucent_net(widths, seed)
        else:
            rng = np.random.default_rng(seed)
            params = [(rng.uniform(-1, 1, (a, b)) / np.sqrt(a), rng.uniform(-1, 1, b) / np.sqrt(a))
                      for a, b in zip(widths[:-1], widths[1:])]
        net = pw.mlp(widths[0], tuple(widths[1:-1]), widths[-1])
        row = {"net": "-".join(map(str, widths)), "seed": seed}
        for alg in ("vertex", "search"):
            if alg == "vertex" and widths[0] > 4:
                continue
            t = time.perf_counter()
            res = count_space(net, params, algorithm=alg, progress=False)
            row[alg] = {"regions": res.regions, "seconds": round(time.perf_counter() - t, 3), "exact": res.exact}
        if have:
            import relucent

            cx = relucent.Complex(rnet)
            t = time.perf_counter()
            cx.bfs(nworkers=1, verbose=0)
            row["relucent"] = {"regions": len(cx), "seconds": round(time.perf_counter() - t, 3)}
        best = min(v["seconds"] for k, v in row.items() if k in ("vertex", "search"))
        if "relucent" in row:
            row["speedup_vs_relucent"] = round(row["relucent"]["seconds"] / best, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
