"""Grid pattern counting throughput against a bare jitted forward pass over the same points.

Run: python benchmarks/grid_throughput.py [--resolution 2048] [--widths 128 128 128] [--big]

Prints points/second of ``count_grid`` (float32, with its float64 re-checks) and of two baselines measured
in the same run over the same grid points:
  * forward (same blocking): the network output only, points generated on the device in the same
    cache-sized blocks as the counter (the strictest baseline);
  * forward (plain jit): ``jax.jit(net.apply)`` on host-made batches of 65,536 points.
Ratio = baseline time / counting time (goal >= 0.7: counting costs at most ~40% more than a forward pass).
``--big`` also counts a 4096^2 grid and prints the process's peak resident memory (goal < 2 GB).
"""
from __future__ import annotations

import argparse
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np

import piecewise as pw
from piecewise.regions.grid import _forward_kernel


def best_of(fn, repeats=3):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--resolution", type=int, default=2048)
    ap.add_argument("--widths", type=int, nargs="+", default=[128, 128, 128])
    ap.add_argument("--big", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    net = pw.mlp(2, a.widths, 1)
    params = net.init(key=jax.random.key(0), bias_std=0.1)
    dom = pw.box(-1.0, 1.0, 2)
    res = (a.resolution, a.resolution)
    n = a.resolution ** 2
    chunk = 2**16

    g = pw.count_grid(net, params, dom, a.resolution, progress=False)  # warm-up (compiles)
    t_count = best_of(lambda: pw.count_grid(net, params, dom, a.resolution, progress=False), a.repeats)

    p = jax.tree_util.tree_map(jnp.asarray, params)
    origin, axes = jnp.asarray(dom.origin, jnp.float32), jnp.asarray(dom.axes, jnp.float32)

    def fwd_blocked():
        out = None
        for c in range(-(-n // chunk)):
            out = _forward_kernel(net, res, chunk, p, origin, axes, jnp.int32(c * chunk))
        jax.block_until_ready(out)

    apply = jax.jit(net.apply)
    u = np.stack(np.meshgrid(np.linspace(0, 1, a.resolution), np.linspace(0, 1, a.resolution), indexing="ij"), -1)
    X = dom.points(u.reshape(-1, 2)).astype(np.float32)

    def fwd_plain():
        out = None
        for c in range(0, n, chunk):
            out = apply(p, X[c:c + chunk])
        jax.block_until_ready(out)

    fwd_blocked(), fwd_plain()
    t_fb = best_of(fwd_blocked, a.repeats)
    t_fp = best_of(fwd_plain, a.repeats)
    name = f"2-{'x'.join(map(str, a.widths))}-1 relu (He, bias N(0, 0.1^2))"
    print(f"net {name}, grid {a.resolution}^2 = {n:,} points on [-1,1]^2, float32, {jax.devices()[0].platform}")
    print(f"regions found: {g.regions:,}; re-checked in float64: {g.n_rechecked:,} points; "
          f"on boundaries: {g.n_boundary}")
    print(f"{'count_grid':28s} {t_count:7.3f} s  {n / t_count / 1e6:7.2f} Mpoints/s")
    print(f"{'forward (same blocking)':28s} {t_fb:7.3f} s  {n / t_fb / 1e6:7.2f} Mpoints/s  ratio {t_fb / t_count:.2f}")
    print(f"{'forward (plain jit, 64k)':28s} {t_fp:7.3f} s  {n / t_fp / 1e6:7.2f} Mpoints/s  ratio {t_fp / t_count:.2f}")
    print("goal: ratio >= 0.70")
    if a.big:
        del X
        t = time.perf_counter()
        gb = pw.count_grid(net, params, dom, 4096, progress=False)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"4096^2 grid: {gb.regions:,} regions in {time.perf_counter() - t:.1f} s; "
              f"peak resident memory of this process {peak:.2f} GB (goal < 2 GB)")


if __name__ == "__main__":
    main()
