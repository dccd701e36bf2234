"""Exact 2D enumeration speed.

Run: python benchmarks/exact2d.py [--quick]

He-init ReLU nets with biases N(0, 0.1^2) on [-1,1]^2 (2-32x3, 2-64x4, 2-128x4, 2-64x8). For each: the
exact number of activation regions, the warm time of ``enumerate_cells`` (best of 2), regions/s, the time
per (cell x neuron), and the baseline measured in the same run: one jitted float64 forward pass over all
the cells' vertices (the floor for any method that evaluates the network at the vertices).
Reference points from the issue (same CPU class): edge subdivision (Berzins 2023, PyTorch, float32)
about 4.0 s and a plain Python polygon-clipping reference about 24 s for the 2-64x4 net (~24,000 regions).
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import piecewise as pw


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="only the two smaller nets")
    a = ap.parse_args()
    cases = [(32,) * 3, (64,) * 4] + ([] if a.quick else [(128,) * 4, (64,) * 8])
    print(f"{'net':>12} {'regions':>8} {'seconds':>8} {'regions/s':>10} {'us/(cell*neuron)':>17} "
          f"{'forward@vertices s':>18} {'x floor':>8}")
    for widths in cases:
        net = pw.mlp(2, widths, 1)
        params = net.init(key=jax.random.key(0), bias_std=0.1)
        dom = pw.box(-1.0, 1.0, 2)
        times = []
        for _ in range(2):
            cx = pw.enumerate_cells(net, params, dom, progress=False)
            times.append(cx.seconds)
        t = min(times)
        valid = np.arange(cx.vertices.shape[1])[None, :] < cx.n_vertices[:, None]
        X = dom.points(cx.vertices[valid])
        with jax.enable_x64(True):
            p64 = jax.tree_util.tree_map(lambda q: jnp.asarray(np.asarray(q, np.float64)), params)
            Xj = jnp.asarray(X)
            f = jax.jit(net.apply)
            f(p64, Xj).block_until_ready()
            t0 = time.perf_counter()
            f(p64, Xj).block_until_ready()
            t_fwd = time.perf_counter() - t0
        name = f"2-{widths[0]}x{len(widths)}"
        print(f"{name:>12} {cx.regions:8d} {t:8.3f} {cx.regions / t:10.0f} {1e6 * t / (cx.regions * net.n_neurons):17.3f} "
              f"{t_fwd:18.4f} {t / t_fwd:8.1f}")
    print("goal for 2-64x4: <= 0.4 s warm (10x faster than edge subdivision's ~4.0 s)")


if __name__ == "__main__":
    main()
