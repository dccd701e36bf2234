"""The real-network check through the CLI, as a user runs it: a width-16 CIFAR ResNet-18 (no batch-norm) and a
VGG-11-style net with max-pool, random init with a seed the other benchmarks do not use, exported from PyTorch
to ONNX; ``piecewise plane --random`` draws a square of half-side r around a random input and ``piecewise
count --plane ... --cells OUT.npz --json`` counts it exactly. Then, independently of the library:

* PyTorch's own float64 forward at the exported ``points`` (one inside each cell) finds one distinct pattern
  per cell (the signs of every ReLU's input and every max-pool's argmax);
* every pattern PyTorch finds on a G x G grid of the plane is among them;
* the cells' measures sum to the JSON's ``measure_total``, which is the plane's area.

Wall seconds and peak RSS are those of the ``piecewise count`` process (GNU ``/usr/bin/time``); the JSON's
``engine.maps`` says what ran the maps (NumPy on the CPU, or JAX on its device).

    python benchmarks/real_nets_cli.py [--nets resnet18,vgg11] [--radius 0.1] [--seed 1] [--grid 96]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))


class Patterns:
    """Activation patterns of a PyTorch model in float64: relu input signs (torch.relu calls and nn.ReLU
    modules) and max-pool argmaxes, recorded during the forward pass."""

    def __init__(self, model):
        import torch

        self.torch, self.model = torch, model.double()
        self.rec = []
        for m in self.model.modules():
            if isinstance(m, torch.nn.ReLU):
                m.register_forward_hook(lambda mod, inp, out: self.rec.append((inp[0] > 0).flatten(1)))
            if isinstance(m, torch.nn.MaxPool2d):
                def hook(mod, inp, out):
                    _, idx = torch.nn.functional.max_pool2d(inp[0], mod.kernel_size, mod.stride, mod.padding,
                                                            mod.dilation, mod.ceil_mode, return_indices=True)
                    self.rec.append(idx.flatten(1).to(torch.int32))
                m.register_forward_hook(hook)

    def __call__(self, X, batch: int = 128) -> list:
        torch = self.torch
        relu = torch.relu

        def rec_relu(x):
            self.rec.append((x > 0).flatten(1))
            return relu(x)

        keys = []
        torch.relu = rec_relu
        try:
            with torch.no_grad():
                for i in range(0, len(X), batch):
                    self.rec = []
                    self.model(torch.from_numpy(np.ascontiguousarray(X[i:i + batch])).reshape(-1, 3, 32, 32))
                    # relu signs packed 8 to a byte (a width-16 ResNet-18 has 139k units: 17 kB a key, not 556 kB)
                    parts = [np.packbits(r.numpy(), axis=1) if r.dtype == torch.bool else r.numpy().view(np.uint8)
                             for r in self.rec]
                    row = np.concatenate(parts, 1)
                    keys += [r.tobytes() for r in row]
        finally:
            torch.relu = relu
        return keys


def run(name: str, radius: float, seed: int, grid: int, tmp: str) -> dict:
    import torch

    from models import resnet18, vgg11

    model = resnet18(16, seed=seed) if name == "resnet18" else vgg11(16, seed=seed)
    onnx = os.path.join(tmp, f"{name}.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros((1, 3, 32, 32)),), onnx, dynamo=False)
    plane = os.path.join(tmp, f"{name}_plane.npy")
    cells = os.path.join(tmp, f"{name}_cells.npz")
    exe = [sys.executable, "-m", "piecewise"]
    subprocess.run(exe + ["plane", "--weights", onnx, "--random", str(seed), "--radius", str(radius),
                          "--out", plane], check=True, capture_output=True)
    t = time.perf_counter()
    # the count's own peak RSS (GNU time's %M; RUSAGE_CHILDREN would be the largest of all children so far)
    out = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M"] + exe + ["count", "--weights", onnx, "--plane", plane,
                         "--json", "--no-progress", "--cells", cells], check=True, capture_output=True, text=True)
    secs = time.perf_counter() - t
    rss_kb = int(re.search(r"MAXRSS (\d+)", out.stderr).group(1))
    js = json.loads(out.stdout)
    z = np.load(cells)
    P = np.load(plane)
    pat = Patterns(model)
    t = time.perf_counter()
    at_points = pat(z["points"])
    s = (np.arange(grid) + 0.5) / grid
    S, T = np.meshgrid(s, s, indexing="ij")
    G = P[0] + S.reshape(-1, 1) * (P[1] - P[0]) + T.reshape(-1, 1) * (P[2] - P[0])
    on_grid = set(pat(G))
    check_s = time.perf_counter() - t
    area = float(np.sqrt(np.linalg.det(np.stack([P[1] - P[0], P[2] - P[0]]) @ np.stack([P[1] - P[0], P[2] - P[0]]).T)))
    import piecewise as pw

    dom_measure = float(pw.plane(P).measure())
    return {"net": name, "seed": seed, "radius": radius, "regions": js["regions"], "seconds": round(secs, 1),
            "peak_rss_gb": round(rss_kb / 1e6, 2),
            "engine": js.get("engine"), "points": len(at_points),
            "distinct_torch_patterns_at_points": len(set(at_points)),
            "grid": grid, "grid_patterns": len(on_grid), "grid_patterns_not_among_cells": len(on_grid - set(at_points)),
            "measure_sum": float(z["measure"].sum()), "measure_total": js.get("measure_total"),
            "domain_measure": dom_measure, "plane_area": area, "check_seconds": round(check_s, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default="resnet18,vgg11")
    ap.add_argument("--radius", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--grid", type=int, default=96)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.nets.split(","):
            r = run(name, a.radius, a.seed, a.grid, tmp)
            ok = (r["distinct_torch_patterns_at_points"] == r["points"] == r["regions"]
                  and r["grid_patterns_not_among_cells"] == 0
                  and abs(r["measure_sum"] - r["measure_total"]) <= 1e-9 * abs(r["measure_total"]))
            print(f"{name}: {r['regions']:,} regions in {r['seconds']} s, RSS {r['peak_rss_gb']} GB; torch: "
                  f"{r['distinct_torch_patterns_at_points']:,} distinct patterns at {r['points']:,} points, "
                  f"{r['grid_patterns']:,} on a {a.grid}^2 grid ({r['grid_patterns_not_among_cells']} not among "
                  f"the cells); measures {r['measure_sum']:.6g} / {r['measure_total']:.6g}: "
                  f"{'PASS' if ok else 'FAIL'}", flush=True)
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
