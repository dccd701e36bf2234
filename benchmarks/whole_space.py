"""Whole-input-space counts: piecewise (the vertex engine on a proven box up to 6 inputs, the region-graph search
on 1 and 2 worker processes) against relucent 1.0 (one Gurobi LP per candidate facet, 1 worker) on the same
random ReLU nets of 3 to 8 inputs, in the same run.

    python benchmarks/whole_space.py [--quick] [--nets 6-12-1:0,8-11-1:0] [--no-relucent] [--json OUT.json]

Prints one JSON line per net: every count (they must agree), wall seconds and CPU seconds (this process and its
worker processes: relucent expands regions in one), and the ratios relucent / piecewise (the faster
single-process piecewise algorithm; by wall time and by CPU time) and search on 1 / on 2 workers. The nets
(:data:`NETS`) are sized so that relucent takes about 30 s each on an idle core (1,000 to 3,000 regions); on a
loaded machine read the CPU ratios. Then the search alone on 1 and 2 workers on larger nets
(:data:`WORKER_NETS`, 12,000 and 39,000 regions: a second process pays off only past a few thousand). relucent
is optional (pip install relucent; its bundled size-limited Gurobi licence covers these sizes); without it the
nets are drawn by NumPy and only piecewise is timed.
"""
from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

import piecewise as pw
from piecewise.regions.search import count_space

# (widths, seed): a one- and a two-hidden-layer net per input dimension where both fit ~30 s of relucent
NETS = [([3, 12, 12, 1], 1), ([4, 8, 8, 1], 0), ([5, 12, 1], 0), ([5, 7, 6, 1], 0), ([6, 11, 1], 0),
        ([6, 7, 6, 1], 0), ([7, 11, 1], 0), ([7, 7, 6, 1], 0), ([8, 11, 1], 0), ([8, 7, 5, 1], 0)]
WORKER_NETS = [([7, 8, 8, 1], 0), ([6, 10, 10, 1], 0)]  # the search alone, 1 against 2 workers


def _cpu() -> float:
    """CPU seconds of this process and its finished children."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def _relucent_net(widths, seed):
    import relucent

    relucent.set_seeds(seed)
    net = relucent.mlp(widths)
    lins = [layer for layer in net.layers.values()] if hasattr(net.layers, "values") else list(net.layers)
    lins = [layer for layer in lins if getattr(layer, "weight", None) is not None]
    params = [(np.asarray(layer.weight, np.float64).T, np.asarray(layer.bias, np.float64).ravel()) for layer in lins]
    return net, params


def _timed(fn):
    t, c = time.perf_counter(), _cpu()
    out = fn()
    return out, round(time.perf_counter() - t, 3), round(_cpu() - c, 3)


def _parse_nets(text):
    try:
        return [([int(w) for w in net.split("-")], int(seed)) for net, seed in (item.split(":") for item in text.split(","))]
    except ValueError as err:
        raise SystemExit(f"whole_space.py: error: --nets takes WIDTHS:SEED items such as 6-12-1:0, got {text!r}") from err


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="the first two nets only")
    ap.add_argument("--nets", default=None, help="comma-separated WIDTHS:SEED, e.g. 6-12-1:0,8-11-1:0")
    ap.add_argument("--no-relucent", action="store_true", help="time piecewise only")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    relucent = None
    if not args.no_relucent:
        try:
            import relucent
        except ImportError:
            pass
    have = relucent is not None
    nets = _parse_nets(args.nets) if args.nets else (NETS[:2] if args.quick else NETS)
    big = [] if args.nets or args.quick else WORKER_NETS
    # imports and first-call costs outside the timings
    warm = [(np.eye(3), np.zeros(3)), (np.ones((3, 1)), np.zeros(1))]
    for alg in ("vertex", "search"):
        count_space(pw.mlp(3, (3,), 1), warm, algorithm=alg, progress=False)
    rows = []
    for widths, seed in nets + big:
        alone = (widths, seed) in big and not args.nets
        if have:
            rnet, params = _relucent_net(widths, seed)
        else:
            rng = np.random.default_rng(seed)
            params = [(rng.uniform(-1, 1, (a, b)) / np.sqrt(a), rng.uniform(-1, 1, b) / np.sqrt(a))
                      for a, b in zip(widths[:-1], widths[1:])]
        net = pw.mlp(widths[0], tuple(widths[1:-1]), widths[-1])
        row = {"net": "-".join(map(str, widths)), "seed": seed}
        runs = [("vertex", "vertex", 1)] if widths[0] <= 6 and not alone else []
        runs += [("search", "search", 1), ("search_2_workers", "search", 2)]
        for name, alg, workers in runs:
            res, wall, cpu = _timed(lambda: count_space(net, params, algorithm=alg, progress=False, workers=workers))
            row[name] = {"regions": res.regions, "seconds": wall, "cpu_seconds": cpu, "exact": res.exact,
                         "lps": res.lps}
        if have and not alone:
            cx = relucent.Complex(rnet)
            _, wall, cpu = _timed(lambda: cx.bfs(nworkers=1, verbose=0))
            row["relucent"] = {"regions": len(cx), "seconds": wall, "cpu_seconds": cpu}
        counts = {v["regions"] for k, v in row.items() if isinstance(v, dict)}
        row["counts_agree"] = len(counts) == 1
        single = [row[k] for k in ("vertex", "search") if k in row]
        best_wall = min(v["seconds"] for v in single)
        best_cpu = min(v["cpu_seconds"] for v in single)
        if "relucent" in row:
            row["speedup_vs_relucent"] = round(row["relucent"]["seconds"] / best_wall, 1)
            row["speedup_vs_relucent_cpu"] = round(row["relucent"]["cpu_seconds"] / best_cpu, 1)
        row["search_2_workers_speedup"] = round(row["search"]["seconds"] / row["search_2_workers"]["seconds"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": rows}, f, indent=1)
    if not all(r["counts_agree"] for r in rows):
        raise SystemExit("whole_space.py: the counts disagree (see counts_agree above)")


if __name__ == "__main__":
    main()
