"""Exact slices of real-size image networks (issue: real networks at real size): a width-16 CIFAR ResNet-18
without batch-norm and a VGG-11-style net with max-pool (random init, 3 x 32 x 32 inputs), read from PyTorch.

For each: the exact regions of a plane of radius r around a random input (the operator engine, a count that
keeps no cells), its seconds, regions per second and peak memory (the engine's own figure of the maps in flight,
and the process's peak RSS), beside the *floor* measured in the same run: one batched forward pass of every
cell's affine map through the network (3 columns per cell of a plane: two directions and the offset) in
PyTorch, float64, on the same threads -- what any method that computes each cell's map once must spend --
and the same pass through the engine's own CPU operators (regions/opmaps.py: im2col + BLAS, ``numpy_floor``;
PyTorch's float64 convolutions on a CPU are slower than those, so this is the stricter floor).

    python benchmarks/real_nets.py [--nets resnet18,vgg11] [--radius 0.1] [--width 16] [--budget GB]
    python benchmarks/real_nets.py --lc 256 [--nets ...] [--radius R]   # exact local complexity at 256 points

Prints a table and one JSON line per net. ``maps`` says what ran the cells' float64 maps: NumPy's BLAS on the
CPU, or the operators jit-compiled in JAX on its device (``PIECEWISE_MAPS``, regions/jaxmaps.py; by default
JAX where it sees a GPU); the floor runs on CUDA where PyTorch sees it (``floor_device``), else the CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))


FLOOR_SAMPLE = 2048  # cells timed for the floor; more are extrapolated linearly (batches of 256: linear in n)


def floor_seconds(model, n_cells: int, repeats: int = 2) -> float:
    """Seconds of one float64 forward pass of 3 * n_cells inputs (batches of 256) through the PyTorch model;
    beyond :data:`FLOOR_SAMPLE` cells, the time of that many scaled by n_cells / FLOOR_SAMPLE."""
    if n_cells > FLOOR_SAMPLE:
        return floor_seconds(model, FLOOR_SAMPLE, repeats) * n_cells / FLOOR_SAMPLE
    import copy

    import torch

    dev = _floor_device()
    m = copy.deepcopy(model).double().to(dev)
    x = torch.randn(256, 3, 32, 32, dtype=torch.float64, device=dev)
    total = 3 * n_cells
    best = np.inf
    with torch.no_grad():
        for _ in range(repeats):
            t = time.perf_counter()
            done = 0
            while done < total:
                b = min(256, total - done)
                m(x[:b])
                done += b
            if dev == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
    return best


def numpy_floor_seconds(g, n_cells: int, batch: int = 96) -> float:
    """Seconds of one float64 forward pass of 3 * n_cells inputs through the graph with the engine's own CPU
    operators (regions/opmaps.py: im2col + BLAS on the engine's threads; the nonlinear nodes as the graph
    evaluates them), in batches of ``batch`` inputs; beyond :data:`FLOOR_SAMPLE` cells, scaled linearly."""
    from piecewise.graph import _eval
    from piecewise.regions import opmaps
    from piecewise.regions.parallel import default_threads

    n = min(n_cells, FLOOR_SAMPLE)
    threads = default_threads()
    last = {}
    for k, nd in enumerate(g.nodes):
        for i in nd.inputs:
            last[i] = k
    X = np.random.default_rng(0).uniform(0, 1, (3 * n, *g.input_shape))
    t = time.perf_counter()
    for b0 in range(0, 3 * n, batch):
        vals = {0: X[b0:b0 + batch]}
        for k, nd in enumerate(g.nodes):
            if k == 0:
                continue
            ins = [vals[i] for i in nd.inputs]
            if nd.op in ("act", "max"):
                y = _eval(nd, ins, np, True, len(ins[0]))
            else:
                y = opmaps.apply(nd, ins, threads)
                c = opmaps.bias(nd)
                if c is not None:
                    y = y + c
            vals[k] = y
            for i in nd.inputs:
                if last[i] == k:
                    del vals[i]
    return (time.perf_counter() - t) * n_cells / n


def _floor_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _maps() -> str:
    from piecewise.regions import jaxmaps

    return jaxmaps.describe(jaxmaps.backend())


def run(name: str, width: int, radius: float, budget: float | None, seed: int = 0) -> dict:
    import torch

    import piecewise as pw
    from models import plane_around, resnet18, vgg11

    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    model = resnet18(width) if name == "resnet18" else vgg11(width)
    t = time.perf_counter()
    g = pw.io.from_torch(model, (3, 32, 32))
    t_import = time.perf_counter() - t
    x = np.random.default_rng(seed).uniform(0, 1, 3 * 32 * 32)
    dom = pw.plane(plane_around(x, radius, seed))
    t = time.perf_counter()
    rc = pw.enumerate_cells(g, None, dom, keep_cells=False, memory_budget=budget, progress=None)
    secs = time.perf_counter() - t
    fl = floor_seconds(model, rc.regions)
    fl_np = numpy_floor_seconds(g, rc.regions)
    from piecewise.regions.graph_engine import Program

    units = sum(st.width for st in Program(g).stages)
    return {"net": name, "width": width, "relu_units": units, "radius": radius, "regions": rc.regions,
            "seconds": round(secs, 2), "regions_per_second": round(rc.regions / secs, 1),
            "floor_seconds": round(fl, 2), "ratio_to_floor": round(secs / fl, 2),
            "numpy_floor_seconds": round(fl_np, 2), "ratio_to_numpy_floor": round(secs / fl_np, 2), "import_seconds": round(t_import, 2),
            "peak_map_gb": round(rc.engine["peak_map_bytes"] / 1e9, 3), "chunks": rc.engine["chunks"],
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
            "maps": rc.engine.get("maps"), "floor_device": _floor_device(), "precision": rc.engine.get("precision"), "fallback_signs": rc.engine.get("fallback_signs"),
            "floor_extrapolated_from": min(rc.regions, FLOOR_SAMPLE), "threads": len(os.sched_getaffinity(0))}


def run_lc(name: str, width: int, radius: float, n_points: int, seed: int = 0) -> dict:
    """Exact local complexity (regions meeting the diamond of radius r in a random plane) at n_points random
    inputs in one batched search, beside the sampled estimate and the floor of the cells found."""
    import torch

    import piecewise as pw
    from models import resnet18, vgg11
    from piecewise.regions.local_complexity import local_complexity

    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    model = resnet18(width) if name == "resnet18" else vgg11(width)
    g = pw.io.from_torch(model, (3, 32, 32))
    X = np.random.default_rng(seed).uniform(0, 1, (n_points, 3 * 32 * 32))
    t = time.perf_counter()
    lc = local_complexity(g, None, X, radius, seed=seed)
    secs = time.perf_counter() - t
    s = lc.summary()
    cells = int(lc.exact_regions.sum())
    fl = floor_seconds(model, cells)
    return {"net": name, "width": width, "points": n_points, "radius": radius, "seconds": round(secs, 2),
            "exact_regions_mean": s["exact_regions"]["mean"], "exact_units_mean": s["exact_units"]["mean"],
            "sampled_mean": s["sampled_same_plane"]["mean"], "floor_seconds_of_cells_met": round(fl, 2),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2), "maps": _maps(),
            "floor_device": _floor_device()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default="resnet18,vgg11")
    ap.add_argument("--radius", type=float, default=0.1)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--budget", type=float, default=None, help="memory budget in GB")
    ap.add_argument("--lc", type=int, default=0, metavar="N", help="exact local complexity at N points instead")
    a = ap.parse_args()
    if a.lc:
        for name in a.nets.split(","):
            print(json.dumps(run_lc(name, a.width, a.radius, a.lc)), flush=True)
        return
    for name in a.nets.split(","):
        r = run(name, a.width, a.radius, None if a.budget is None else a.budget * 1e9)
        print(f"{r['net']:>9} w{r['width']} units {r['relu_units']:,}: {r['regions']:,} regions in {r['seconds']} s "
              f"({r['regions_per_second']}/s), floor {r['floor_seconds']} s (torch), {r['numpy_floor_seconds']} s "
              f"(opmaps), ratios {r['ratio_to_floor']} / {r['ratio_to_numpy_floor']}, "
              f"maps {r['peak_map_gb']} GB, RSS {r['peak_rss_gb']} GB")
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
