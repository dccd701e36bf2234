"""Shared runner of the exact-engine benchmarks (:mod:`exact2d`, :mod:`exact_nd`).

Each case runs in a fresh subprocess, so its first ``enumerate_cells`` call is cold (what the CLI reports in
``seconds`` for a one-off run) and its peak memory is its own. Per case: exact regions, cold and warm
seconds, CPU seconds (both threads), the floor measured in the same process (one float64 NumPy forward
pass over all the cells' vertices), and peak memory (RSS) per cell. He-init ReLU nets, biases N(0, 0.1^2),
box [-1, 1]^n, key 0.

Run directly for one case: ``python benchmarks/exact_common.py N_IN WIDTH DEPTH [THREADS]`` (prints JSON).
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time


def run_case(n_in: int, width: int, depth: int, threads: int = 2) -> dict:
    import jax
    import numpy as np

    import os

    import piecewise as pw

    os.environ["PIECEWISE_THREADS"] = str(threads)  # the engine's default threads in this process
    net = pw.mlp(n_in, (width,) * depth, 1)
    params = net.init(key=jax.random.key(0), bias_std=0.1)
    params = tuple((np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params)
    dom = pw.box(-1.0, 1.0, n_in)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    c0 = time.process_time()
    cx = pw.enumerate_cells(net, params, dom, progress=False)
    cpu = time.process_time() - c0
    cold = cx.seconds
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    warm = pw.enumerate_cells(net, params, dom, progress=False).seconds
    # the floor: one float64 forward pass over all cells' vertices (NumPy, same process)
    valid = np.arange(cx.vertices.shape[1])[None, :] < cx.n_vertices[:, None]
    X = dom.points(cx.vertices[valid])
    t0 = time.perf_counter()
    h = X
    for W, b in params[:-1]:
        h = np.maximum(h @ W + b, 0.0)
    _ = h @ params[-1][0] + params[-1][1]
    floor = time.perf_counter() - t0
    return {"net": f"{n_in}-{width}x{depth}", "regions": cx.regions, "cold_s": round(cold, 3), "warm_s": round(warm, 3),
            "cpu_s": round(cpu, 3), "floor_s": round(floor, 4), "x_floor": round(cold / max(floor, 1e-9), 1),
            "peak_MB": round((peak - base) / 1024, 1), "kB_per_cell": round((peak - base) / max(cx.regions, 1), 2),
            "threads": threads}


def in_subprocess(n_in: int, width: int, depth: int, threads: int = 2) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), str(n_in), str(width), str(depth), str(threads)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def load_note() -> str:
    """What else the machine was doing (the load average), to print beside the figures."""
    try:
        return "load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"
    except OSError:
        return ""


def table(cases, peer: dict, goal: dict, threads: int = 2) -> None:
    print(load_note())
    hdr = (f"{'net':>12} {'regions':>8} {'cold s':>7} {'warm s':>7} {'cpu s':>6} {'floor s':>8} {'x floor':>8} "
           f"{'peer s':>7} {'x peer':>7} {'goal s':>7} {'kB/cell':>8} {'peak MB':>8}")
    print(hdr)
    for n_in, width, depth in cases:
        r = in_subprocess(n_in, width, depth, threads)
        name = r["net"]
        p, g = peer.get(name), goal.get(name)
        speed = f"{p / r['cold_s']:7.2f}" if p else f"{'-':>7}"
        print(f"{name:>12} {r['regions']:8d} {r['cold_s']:7.3f} {r['warm_s']:7.3f} {r['cpu_s']:6.2f} {r['floor_s']:8.4f} "
              f"{r['x_floor']:8.1f} {p if p else '-':>7} {speed} {g if g else '-':>7} {r['kB_per_cell']:8.2f} "
              f"{r['peak_MB']:8.1f}", flush=True)
    print(load_note())


if __name__ == "__main__":
    a = [int(x) for x in sys.argv[1:]]
    print(json.dumps(run_case(*a)))
