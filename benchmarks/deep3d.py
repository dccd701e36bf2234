"""Millions of 3-D cells in bounded memory (issue: real networks at real size): a deep 3-input MLP of the
shape of the edge-subdivision method's "bunny" nets (3 inputs, 8 hidden layers of 32 relu units, He init,
biases 0.1; random weights, not the trained net), counted exactly on [-1, 1]^3 from the CLI as a user runs it:
regions, the count's seconds, the command's wall time and peak RSS, for the default memory budget and a
smaller one.

    python benchmarks/deep3d.py [--seed 0] [--budgets default,1]
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budgets", default="default,1", help="comma list: 'default' or GB")
    a = ap.parse_args()
    import jax

    import piecewise as pw

    net = pw.mlp(3, (32,) * 8, 1)
    params = net.init(key=jax.random.key(a.seed), bias_std=0.1)
    path = os.path.join(tempfile.mkdtemp(prefix="pw-deep3d-"), "net.npz")
    pw.io.save_npz(path, params, net)
    for b in a.budgets.split(","):
        cmd = ["/usr/bin/time", "-f", "MAXRSS %M", sys.executable, "-m", "piecewise", "count", "--weights", path,
               "--box", "-1", "1", "--method", "exact", "--json", "--no-progress"]
        if b != "default":
            cmd += ["--memory-budget", b]
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if r.returncode:
            sys.exit(r.stderr)
        out = json.loads(r.stdout)
        rss = int(re.search(r"MAXRSS (\d+)", r.stderr).group(1)) / 1e6
        row = {"net": "3-32x8-1", "seed": a.seed, "budget": b, "regions": out["regions"],
               "count_seconds": round(out["seconds"], 1), "wall_seconds": round(wall, 1), "peak_rss_gb": round(rss, 2),
               "algorithm": out["engine"]["algorithm"], "chunks": out["engine"].get("chunks")}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
