"""Scaling out on Dask: 1 vs 2 worker processes, measured in the same run.

1. A tiled exact count of a 2-256x3 ReLU net (He init, biases N(0, 0.1^2), box [-1, 1]^2), K tiles, on a
   LocalCluster of 1 and of 2 worker processes (goal: speed-up >= 1.6x with 2 workers).
2. Sweep throughput (networks per second) of a small exact sweep on the same two clusters.
3. Peak memory per worker as the number of tiles grows: for each K, a fresh 2-worker cluster runs the count;
   each tile task is measured with tracemalloc (peak bytes allocated by the task) and each worker's peak
   resident set size (VmHWM; it includes the ~0.3-0.5 GB of a Python process with JAX imported,
   measured before the count as "baseline"). Also the bytes a task sends back to the driver.

Cluster start-up and the workers' first imports are excluded from the timings (every cluster is warmed
up with a small task first); each timing is the best of ``--repeat`` runs. Besides wall-clock time, the CPU
seconds of the busiest worker are reported: on a machine shared with other jobs the wall-clock ratio says
how many cores the others left free, the CPU-time ratio (the critical path) what 2 idle cores give. The
untiled in-process count is the reference every tiled count must equal.

    python benchmarks/dask_scale.py                 # the full benchmark (several minutes on 2 cores)
    python benchmarks/dask_scale.py --quick         # a 2-64x3 net, for a smoke test
    python benchmarks/dask_scale.py --json out.json
"""
from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc

import jax
import numpy as np


def measured_tile(item, shared):
    """The tile task under tracemalloc: its result plus the peak bytes it allocated and the result's size."""
    from piecewise.regions.tiles import _tile_task

    tracemalloc.start()
    try:
        out = _tile_task(item, shared)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    sent = sum(v.nbytes for v in out.values() if isinstance(v, np.ndarray))
    return {"peak": peak, "sent": sent, "cells": len(out["patterns"])}


def _maxrss_mb() -> float:
    """This process's peak resident set size in MB: VmHWM (Linux; unlike ru_maxrss it is not inherited
    from the process that started this one), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(client, fn):
    """(wall seconds, CPU seconds of the busiest worker, CPU seconds of all workers) of ``fn()``."""
    before = client.run(_cpu_seconds)
    t = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t
    after = client.run(_cpu_seconds)
    cpu = [after[k] - before[k] for k in after if k in before]
    return out, wall, max(cpu), sum(cpu)


def _warm(client):
    """Import piecewise on every worker and run one tiny count (excluded from timings)."""
    import piecewise as pw
    from piecewise.regions.tiles import tiled_count

    client.run(lambda: __import__("piecewise"))
    net = pw.mlp(2, (8,), 1)
    tiled_count(net, net.init(key=jax.random.key(0), bias_std=0.1), pw.box(-1, 1, 2), 4, scheduler=client,
                progress=False)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a 2-64x3 net and a smaller sweep")
    ap.add_argument("--tiles", type=int, default=16, help="tiles for the 1 vs 2 workers timing (default 16)")
    ap.add_argument("--repeat", type=int, default=1, help="timings: best of this many runs")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--part", choices=("all", "speed", "memory"), default="all", help="which measurements to run")
    args = ap.parse_args(argv)

    import piecewise as pw

    width = 64 if args.quick else 256
    net = pw.mlp(2, (width,) * 3, 1)
    params = net.init(key=jax.random.key(0), scheme="he", bias_std=0.1)
    domain = pw.box(-1.0, 1.0, 2)
    spec = {"n_in": 2, "widths": [[32, 32], [48, 48], [32, 32, 32], [64, 64]],
            "seeds": list(range(4 if args.quick else 8)), "init": {"scheme": "he", "bias_std": 0.1}}
    n_nets = len(spec["widths"]) * len(spec["seeds"])
    report = {"net": f"2-{width}x3 relu, He init, biases N(0, 0.1^2)", "domain": "[-1, 1]^2", "cpus": os.cpu_count(),
              "load_average_at_start": list(os.getloadavg())}
    print(f"net 2-{width}x3 on [-1,1]^2; {os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.2f}")

    if args.part in ("all", "speed"):
        _speed(args, report, net, params, domain, spec, n_nets)
    if args.part in ("all", "memory"):
        _memory(args, report, net, params, domain)
    report["load_average_at_end"] = list(os.getloadavg())
    if args.json:
        from piecewise.files import write_json

        write_json(args.json, report)
    return report


def _speed(args, report, net, params, domain, spec, n_nets):
    import piecewise as pw
    from piecewise.distributed import dask_client
    from piecewise.regions.tiles import tiled_count
    from piecewise.sweep import run_sweep

    t = time.perf_counter()
    cx = pw.enumerate_cells(net, params, domain, progress=False)
    ref_regions, untiled_s = cx.regions, time.perf_counter() - t
    del cx
    report["untiled_in_process"] = {"regions": ref_regions, "seconds": round(untiled_s, 2)}
    print(f"untiled, in-process: {ref_regions} regions in {untiled_s:.1f} s")

    t = time.perf_counter()
    serial_rows = run_sweep(spec, progress=False)  # also compiles the inits in this process (the driver)
    report["sweep_in_process_seconds_incl_compile"] = round(time.perf_counter() - t, 2)
    timing = {}
    for n in (1, 2):
        with dask_client(workers=n) as client:
            _warm(client)
            tc = sc = None
            for _ in range(args.repeat):
                out, wall, cmax, csum = _timed(client, lambda: tiled_count(net, params, domain, args.tiles,
                                                                           scheduler=client, progress=False))
                assert out["regions"] == ref_regions, (out["regions"], ref_regions)
                tc = (wall, cmax, csum) if tc is None or wall < tc[0] else tc
            for _ in range(args.repeat):
                rows, wall, cmax, csum = _timed(client, lambda: run_sweep(spec, scheduler=client, progress=False))
                sc = (wall, cmax, csum) if sc is None or wall < sc[0] else sc
            timing[n] = {"load_average": round(os.getloadavg()[0], 2),
                         "tiled_count_seconds": round(tc[0], 2), "tiled_count_busiest_worker_cpu_s": round(tc[1], 2),
                         "tiled_count_all_workers_cpu_s": round(tc[2], 2),
                         "sweep_seconds": round(sc[0], 2), "sweep_busiest_worker_cpu_s": round(sc[1], 2),
                         "sweep_nets_per_second": round(n_nets / sc[0], 2)}
            print(f"{n} worker(s) [load {os.getloadavg()[0]:.1f}]: tiled count (K={args.tiles}) {tc[0]:.1f} s wall, "
                  f"busiest worker {tc[1]:.1f} s CPU (all workers {tc[2]:.1f}); sweep of {n_nets} nets {sc[0]:.1f} s "
                  f"({n_nets / sc[0]:.2f} nets/s), busiest worker {sc[1]:.1f} s CPU")
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
    assert strip(rows) == strip(serial_rows)
    speed = {"tiled_count_wall": round(timing[1]["tiled_count_seconds"] / timing[2]["tiled_count_seconds"], 2),
             "sweep_wall": round(timing[2]["sweep_nets_per_second"] / timing[1]["sweep_nets_per_second"], 2),
             # the critical path in CPU time: what the wall-clock ratio is on two otherwise idle cores
             "tiled_count_cpu_critical_path": round(timing[1]["tiled_count_busiest_worker_cpu_s"]
                                                    / timing[2]["tiled_count_busiest_worker_cpu_s"], 2),
             "sweep_cpu_critical_path": round(timing[1]["sweep_busiest_worker_cpu_s"]
                                              / timing[2]["sweep_busiest_worker_cpu_s"], 2)}
    report.update({"tiles": args.tiles, "workers": timing, "speedup_2_vs_1": speed})
    print(f"speed-up with 2 workers (goal >= 1.6x): wall clock: tiled count {speed['tiled_count_wall']:.2f}x, "
          f"sweep {speed['sweep_wall']:.2f}x; busiest worker's CPU time (= wall clock on 2 idle cores): "
          f"tiled count {speed['tiled_count_cpu_critical_path']:.2f}x, sweep {speed['sweep_cpu_critical_path']:.2f}x")


def _memory(args, report, net, params, domain):
    from piecewise.distributed import dask_client, run_tasks
    from piecewise.regions.tiles import tile_domains


    mem = []
    print(f"{'tiles':>6} {'cells/tile max':>14} {'task peak MB':>12} {'worker RSS MB':>13} {'baseline MB':>11} "
          f"{'sent/tile MB':>12}")
    for K in ((1, 4, 16) if args.quick else (1, 4, 16, 64)):
        with dask_client(workers=2) as client:
            client.run(lambda: __import__("piecewise"))
            base = max(client.run(_maxrss_mb).values())
            items = [(idx, tdom, False, 2_000_000, 1) for idx, tdom in tile_domains(domain, K)]
            P = tuple((np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in params)
            res = run_tasks(measured_tile, items, shared=(net, P), scheduler=client, progress=False)
            rss = max(client.run(_maxrss_mb).values())
        row = {"tiles": K, "cells_per_tile_max": max(r["cells"] for r in res),
               "task_peak_mb": round(max(r["peak"] for r in res) / 2**20, 1), "worker_maxrss_mb": round(rss, 1),
               "worker_baseline_mb": round(base, 1), "sent_per_tile_mb": round(max(r["sent"] for r in res) / 2**20, 2)}
        mem.append(row)
        print(f"{K:>6} {row['cells_per_tile_max']:>14} {row['task_peak_mb']:>12} {row['worker_maxrss_mb']:>13} "
              f"{row['worker_baseline_mb']:>11} {row['sent_per_tile_mb']:>12}")
    report["memory_vs_tiles"] = mem


if __name__ == "__main__":
    main()
